import { randomFillSync } from 'node:crypto';
import { sha1Of, sha256 } from './digests';

/** RFC 4122 name-based UUID, version 5 (SHA-1). Deterministic: the same name gives the same id. */
export function uuidV5(name: string, namespace: string = CARBONPAY_NAMESPACE): string {
  const namespaceBytes =
    namespace === CARBONPAY_NAMESPACE ? CARBONPAY_NAMESPACE_BYTES : Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const hash = sha1Of(namespaceBytes, name);
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  return uuidText(hash);
}

/** carbonpay's own namespace for name-based ids (a v4 UUID chosen once). */
export const CARBONPAY_NAMESPACE = '6f1c3a5e-2b7d-4c1e-9a8f-3d5b7e9c1a2f';
/** Its bytes, read once: every payment names a transfer with it. */
const CARBONPAY_NAMESPACE_BYTES = Buffer.from(CARBONPAY_NAMESPACE.replace(/-/g, ''), 'hex');

/** The transfer id a client's idempotency key stands for: one key, one transfer, whichever process sees it. */
export function transferIdFor(clientId: string, idempotencyKey: string): string {
  return uuidV5(`transfer|${clientId}|${idempotencyKey}`);
}

/**
 * Deterministic ids for the events one decision produces: one SHA-256 of the decision's key, then the event's
 * index in the decision in the last two bytes. Version 8 (RFC 9562, custom): not a name-based v5 UUID, and says so.
 */
export function eventIdsFor(decisionKey: string, count: number): string[] {
  if (!Number.isInteger(count) || count < 0 || count > 0xffff) throw new RangeError('a decision has 0..65535 events');
  const base = sha256(decisionKey);
  base[6] = (base[6]! & 0x0f) | 0x80;
  base[8] = (base[8]! & 0x3f) | 0x80;
  const ids: string[] = [];
  for (let index = 0; index < count; index++) {
    base[14] = index >> 8;
    base[15] = index & 0xff;
    ids.push(uuidText(base));
  }
  return ids;
}

/**
 * Time-ordered UUID, version 7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits. Rows keyed by it are
 * appended at the right edge of their index instead of dirtying pages all over it.
 */
export function uuidV7(nowMs: number = Date.now()): string {
  if (!Number.isSafeInteger(nowMs) || nowMs < 0 || nowMs >= 2 ** 48) throw new RangeError('a v7 UUID takes 48-bit ms');
  const bytes = Buffer.allocUnsafe(16);
  randomPart(bytes);
  bytes.writeUIntBE(nowMs, 0, 6);
  bytes[6] = (bytes[6]! & 0x0f) | 0x70;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  return uuidText(bytes);
}

/** The milliseconds a v7 UUID was made at; undefined for any other text (another version, not a UUID). */
export function msOfUuidV7(id: string): number | undefined {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id)) return undefined;
  return Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}

/** Random bytes drawn 4 KiB at a time: one system call per 256 ids, not one each (as `randomUUID` does). */
const randomPool = Buffer.alloc(4_096);
let randomOffset = randomPool.length;

/** Fills bytes 6..15 of `bytes` at random (the first six take the time). */
function randomPart(bytes: Buffer): void {
  if (randomOffset + 10 > randomPool.length) {
    randomFillSync(randomPool);
    randomOffset = 0;
  }
  randomPool.copy(bytes, 6, randomOffset, randomOffset + 10);
  randomOffset += 10;
}

/** The canonical 8-4-4-4-12 text of a UUID's first 16 bytes, written into one buffer and read out as one string. */
function uuidText(bytes: Uint8Array): string {
  let at = 0;
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) uuidScratch[at++] = HYPHEN;
    const byte = bytes[i]!;
    uuidScratch[at++] = HEX_DIGITS[byte >> 4]!;
    uuidScratch[at++] = HEX_DIGITS[byte & 0x0f]!;
  }
  return uuidScratch.toString('latin1', 0, UUID_TEXT_LENGTH);
}

const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');
const HYPHEN = 0x2d;
const UUID_TEXT_LENGTH = 36;
const uuidScratch = Buffer.alloc(UUID_TEXT_LENGTH);
