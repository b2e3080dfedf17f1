/**
 * MACs for POS messages.
 *
 * - `cupEcbMac`: the UnionPay POS "ECB" MAC (research §2.3 [V]): XOR the zero-padded MAB's blocks, hex-expand,
 *   encrypt the first half, XOR with the second half, encrypt again, keep the first 8 hex characters as ASCII.
 *   With DES (8-byte blocks) this is the published algorithm. With SM4 (16-byte blocks) it is the SM4 variant of
 *   research §2.4, which is from a single unverified source [1]: "take the first 8 bytes (hex)" is read as the first
 *   8 ASCII hex characters, so field 64 stays 8 bytes. Confirm with the acquirer.
 * - `x919RetailMac`: ANSI X9.19 / ISO 9797-1 algorithm 3 (2-key), zero padding (method 1).
 * - `x99CbcMac`: ANSI X9.9 / FIPS 113 CBC-MAC with single DES, zero padding.
 */
import { BLOCK_BYTES, type BlockAlgorithm, ecbDecrypt, ecbEncrypt, xorBytes } from './block-cipher';
import { type PosMessage, packMessage } from './codec';
import { err, ok, PosGatewayError, type Result } from './result';
import type { MessageSpec } from './spec';

export const MAC_FIELD = 64;
export const MAC_FIELD_BYTES = 8;

function zeroPad(data: Buffer, blockBytes: number): Buffer {
  const remainder = data.length % blockBytes;
  return remainder === 0 && data.length > 0 ? data : Buffer.concat([data, Buffer.alloc(blockBytes - remainder)]);
}

function blocks(data: Buffer, blockBytes: number): Buffer[] {
  const padded = zeroPad(data, blockBytes);
  const out: Buffer[] = [];
  for (let i = 0; i < padded.length; i += blockBytes) out.push(padded.subarray(i, i + blockBytes));
  return out;
}

/** Field 64 value: 8 ASCII upper-case hex characters. */
export function cupEcbMac(algorithm: BlockAlgorithm, mak: Buffer, mab: Buffer): Buffer {
  const blockBytes = BLOCK_BYTES[algorithm];
  const xored = blocks(mab, blockBytes).reduce((acc, block) => xorBytes(acc, block), Buffer.alloc(blockBytes));
  const expanded = Buffer.from(xored.toString('hex').toUpperCase(), 'latin1');
  const first = ecbEncrypt(algorithm, mak, expanded.subarray(0, blockBytes));
  const second = ecbEncrypt(algorithm, mak, xorBytes(first, expanded.subarray(blockBytes)));
  return Buffer.from(second.toString('hex').toUpperCase().slice(0, MAC_FIELD_BYTES), 'latin1');
}

/** ANSI X9.19 retail MAC: CBC-DES under K1 over all blocks, then D_K2, E_K1. Returns 8 bytes. */
export function x919RetailMac(key: Buffer, data: Buffer): Buffer {
  if (key.length !== 16) throw new PosGatewayError('X9.19 needs a 16-byte key');
  const k1 = key.subarray(0, 8);
  const k2 = key.subarray(8, 16);
  const chained = cbcLastBlock(k1, data);
  return ecbEncrypt('des', k1, ecbDecrypt('des', k2, chained));
}

/** ANSI X9.9 CBC-MAC with single DES. Returns 8 bytes (FIPS 113 publishes the first 4). */
export function x99CbcMac(key: Buffer, data: Buffer): Buffer {
  if (key.length !== 8) throw new PosGatewayError('X9.9 needs an 8-byte key');
  return cbcLastBlock(key, data);
}

function cbcLastBlock(key: Buffer, data: Buffer): Buffer {
  return blocks(data, 8).reduce((chain, block) => ecbEncrypt('des', key, xorBytes(chain, block)), Buffer.alloc(8));
}

// ---------------------------------------------------------------------------------------------------------------
// Message MAC (field 64)

export type MacScheme = 'cup-ecb' | 'x9.19';

export interface MacKey {
  readonly scheme: MacScheme;
  readonly algorithm: BlockAlgorithm;
  readonly key: Buffer;
}

export type MacErrorCode = 'mac_missing' | 'mac_mismatch' | 'not_macable';

export interface MacError {
  readonly code: MacErrorCode;
  readonly detail: string;
}

/**
 * The MAB: MTI through field 63, with bitmap bit 64 set (research §2.3 step 1). Packed with a placeholder field 64,
 * which is then cut off: field 64 is always the last field of a primary-bitmap message.
 */
export function macBlockOf(message: PosMessage, spec: MessageSpec): Result<Buffer, MacError> {
  const withPlaceholder = {
    mti: message.mti,
    fields: { ...message.fields, [MAC_FIELD]: Buffer.alloc(MAC_FIELD_BYTES) },
  };
  if (Object.keys(message.fields).some((n) => Number(n) > MAC_FIELD)) {
    return err({ code: 'not_macable', detail: 'a message with a secondary bitmap has no field-64 MAC' });
  }
  const packed = packMessage(withPlaceholder, spec);
  if (!packed.ok) return err({ code: 'not_macable', detail: packed.error.detail });
  return ok(packed.value.subarray(0, packed.value.length - MAC_FIELD_BYTES));
}

export function computeMac(macKey: MacKey, mab: Buffer): Buffer {
  if (macKey.scheme === 'cup-ecb') return cupEcbMac(macKey.algorithm, macKey.key, mab);
  if (macKey.algorithm !== 'des') throw new PosGatewayError('X9.19 is defined for DES only');
  // 8 ASCII hex characters, like the ECB MAC, so field 64 has one meaning whatever the scheme.
  return Buffer.from(x919RetailMac(macKey.key, mab).toString('hex').toUpperCase().slice(0, 8), 'latin1');
}

/** The message with field 64 set to its MAC. */
export function signMessage(message: PosMessage, macKey: MacKey, spec: MessageSpec): Result<PosMessage, MacError> {
  const mab = macBlockOf(message, spec);
  if (!mab.ok) return mab;
  return ok({ mti: message.mti, fields: { ...message.fields, [MAC_FIELD]: computeMac(macKey, mab.value) } });
}

/**
 * Checks field 64 of a decoded message, re-packing it to get the MAB. Canonical only: a terminal that pads odd BCD
 * with F instead of 0 is refused here but not by `verifyReceivedMac`, which is what a gateway should use.
 */
export function verifyMessageMac(message: PosMessage, macKey: MacKey, spec: MessageSpec): Result<true, MacError> {
  const received = message.fields[MAC_FIELD];
  if (!Buffer.isBuffer(received) || received.length !== MAC_FIELD_BYTES) {
    return err({ code: 'mac_missing', detail: 'field 64 absent' });
  }
  const mab = macBlockOf(message, spec);
  if (!mab.ok) return mab;
  return compareMac(computeMac(macKey, mab.value), received);
}

/**
 * Checks field 64 over the bytes exactly as received (`PosFrame.body`, MTI to the end): the MAB is everything but the
 * last 8 bytes, which are field 64 whenever bit 64 is set and there is no secondary bitmap. Pass only a body that
 * decoded successfully.
 */
export function verifyReceivedMac(body: Buffer, macKey: MacKey): Result<true, MacError> {
  const minimumBytes = 2 + 8 + MAC_FIELD_BYTES;
  if (body.length >= 3 && ((body[2] ?? 0) & 0x80) !== 0) {
    return err({ code: 'not_macable', detail: 'a message with a secondary bitmap has no field-64 MAC' });
  }
  if (body.length < minimumBytes || ((body[9] ?? 0) & 0x01) === 0) {
    return err({ code: 'mac_missing', detail: 'field 64 absent' });
  }
  const macStart = body.length - MAC_FIELD_BYTES;
  return compareMac(computeMac(macKey, body.subarray(0, macStart)), body.subarray(macStart));
}

/** Constant time with respect to the content. */
function compareMac(expected: Buffer, received: Buffer): Result<true, MacError> {
  let difference = expected.length ^ received.length;
  for (let i = 0; i < MAC_FIELD_BYTES; i++) difference |= (expected[i] ?? 0) ^ (received[i] ?? 0);
  return difference === 0 ? ok(true) : err({ code: 'mac_mismatch', detail: 'field 64 does not match' });
}
