import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SM4_GCM_IV_BYTES, SM4_KEY_BYTES, sm4GcmDecrypt, sm4GcmEncrypt } from './crypto';
import type { SecurityDatabase } from './operators';

/**
 * Personal data at rest (C17, C18, T19): each sensitive field is sealed with SM4-GCM under a data key; data keys are
 * stored in the database wrapped (SM4-GCM) by a master key that never enters the database (a file, or a KMS behind
 * the same interface). A sealed value names its key, so keys rotate without re-encrypting history, and its field
 * (authenticated data), so a value cannot be moved to another field unnoticed.
 *
 *     sm4gcm:v1:<keyId>:<iv base64url>:<ciphertext base64url>:<tag base64url>
 */
export const SEALED_PREFIX = 'sm4gcm:v1:';

export class FieldEncryptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FieldEncryptionError';
  }
}

export interface FieldCipher {
  seal(field: string, plaintext: string): string;
  open(field: string, stored: string): string;
}

export function isSealed(value: string): boolean {
  return value.startsWith(SEALED_PREFIX);
}

/** Reads a master key: 32 hex digits (an SM4 key) in a file readable by the service only. */
export function readMasterKey(file: string): Buffer {
  const text = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-fA-F]{32}$/.test(text))
    throw new FieldEncryptionError(`${file} must hold a 128-bit SM4 key as 32 hex digits`);
  return Buffer.from(text, 'hex');
}

export const DATA_KEYS_SQL = `CREATE TABLE IF NOT EXISTS cp_data_keys (
  key_id text PRIMARY KEY,
  wrapped text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  retired_at timestamptz
)`;

/** The data keys, unwrapped in memory only; the newest unretired one seals, every one opens. */
export class DataKeyRing implements FieldCipher {
  private constructor(
    private readonly keys: ReadonlyMap<string, Buffer>,
    private readonly activeKeyId: string,
  ) {}

  static async open(db: SecurityDatabase, masterKey: Buffer): Promise<DataKeyRing> {
    if (masterKey.length !== SM4_KEY_BYTES) throw new FieldEncryptionError('the master key must be 16 bytes');
    await db.query(DATA_KEYS_SQL);
    let rows = await db.query<{ key_id: string; wrapped: string; retired_at: string | null }>(
      'SELECT key_id, wrapped, retired_at FROM cp_data_keys ORDER BY created_at, key_id',
    );
    if (!rows.some((r) => r.retired_at === null)) {
      await DataKeyRing.createKey(db, masterKey);
      rows = await db.query('SELECT key_id, wrapped, retired_at FROM cp_data_keys ORDER BY created_at, key_id');
    }
    const keys = new Map(rows.map((r) => [r.key_id, unwrap(masterKey, r.key_id, r.wrapped)]));
    const active = rows.filter((r) => r.retired_at === null).at(-1)!;
    return new DataKeyRing(keys, active.key_id);
  }

  /** A new data key: it seals from the next start on; the keys before it are retired but still open history. */
  static async rotate(db: SecurityDatabase, masterKey: Buffer): Promise<string> {
    await db.query(DATA_KEYS_SQL);
    await db.query('UPDATE cp_data_keys SET retired_at = now() WHERE retired_at IS NULL');
    return DataKeyRing.createKey(db, masterKey);
  }

  private static async createKey(db: SecurityDatabase, masterKey: Buffer): Promise<string> {
    const keyId = `dk-${randomBytes(6).toString('hex')}`;
    const dataKey = randomBytes(SM4_KEY_BYTES);
    const iv = randomBytes(SM4_GCM_IV_BYTES);
    const sealed = sm4GcmEncrypt(dataKey, { key: masterKey, iv, associatedData: Buffer.from(keyId) });
    const wrapped = [iv, sealed.ciphertext, sealed.tag].map((b) => b.toString('base64url')).join(':');
    await db.query('INSERT INTO cp_data_keys (key_id, wrapped) VALUES ($1, $2)', [keyId, wrapped]);
    return keyId;
  }

  seal(field: string, plaintext: string): string {
    const iv = randomBytes(SM4_GCM_IV_BYTES);
    const sealed = sm4GcmEncrypt(Buffer.from(plaintext, 'utf8'), {
      key: this.keys.get(this.activeKeyId)!,
      iv,
      associatedData: Buffer.from(field),
    });
    return `${SEALED_PREFIX}${this.activeKeyId}:${[iv, sealed.ciphertext, sealed.tag].map((b) => b.toString('base64url')).join(':')}`;
  }

  open(field: string, stored: string): string {
    if (!isSealed(stored)) return stored; // written before encryption was configured
    const [keyId, iv, ciphertext, tag] = stored.slice(SEALED_PREFIX.length).split(':');
    const key = keyId === undefined ? undefined : this.keys.get(keyId);
    if (!key || iv === undefined || ciphertext === undefined || tag === undefined)
      throw new FieldEncryptionError(`cannot open ${field}: unknown key or malformed value`);
    return sm4GcmDecrypt(Buffer.from(ciphertext, 'base64url'), {
      key,
      iv: Buffer.from(iv, 'base64url'),
      associatedData: Buffer.from(field),
      tag: Buffer.from(tag, 'base64url'),
    }).toString('utf8');
  }
}

function unwrap(masterKey: Buffer, keyId: string, wrapped: string): Buffer {
  const [iv, ciphertext, tag] = wrapped.split(':');
  if (iv === undefined || ciphertext === undefined || tag === undefined)
    throw new FieldEncryptionError(`data key ${keyId} is malformed`);
  try {
    return sm4GcmDecrypt(Buffer.from(ciphertext, 'base64url'), {
      key: masterKey,
      iv: Buffer.from(iv, 'base64url'),
      associatedData: Buffer.from(keyId),
      tag: Buffer.from(tag, 'base64url'),
    });
  } catch {
    throw new FieldEncryptionError(`data key ${keyId} does not open with this master key`);
  }
}

/**
 * Sensitive fields inside a partner's request body (C3: card numbers, phone numbers) travel sealed with SM4-GCM
 * under the client's field key, agreed at onboarding: `base64url(iv ‖ ciphertext ‖ tag)`, the field's name as
 * authenticated data; the request names them in `X-CP-Encrypted-Fields`. The signature covers the sealed body.
 */
export const ENCRYPTED_FIELDS_HEADER = 'x-cp-encrypted-fields';

export function sealRequestField(fieldKey: Buffer, field: string, plaintext: string): string {
  const iv = randomBytes(SM4_GCM_IV_BYTES);
  const sealed = sm4GcmEncrypt(Buffer.from(plaintext, 'utf8'), {
    key: fieldKey,
    iv,
    associatedData: Buffer.from(field),
  });
  return Buffer.concat([iv, sealed.ciphertext, sealed.tag]).toString('base64url');
}

export function openRequestField(fieldKey: Buffer, field: string, sealed: string): string {
  const bytes = Buffer.from(sealed, 'base64url');
  if (!/^[A-Za-z0-9_-]+$/.test(sealed) || bytes.length < SM4_GCM_IV_BYTES + 16 + 1)
    throw new FieldEncryptionError(`${field} is not a sealed value`);
  try {
    return sm4GcmDecrypt(bytes.subarray(SM4_GCM_IV_BYTES, bytes.length - 16), {
      key: fieldKey,
      iv: bytes.subarray(0, SM4_GCM_IV_BYTES),
      associatedData: Buffer.from(field),
      tag: bytes.subarray(bytes.length - 16),
    }).toString('utf8');
  } catch {
    throw new FieldEncryptionError(`${field} does not open with this client's field key`);
  }
}
