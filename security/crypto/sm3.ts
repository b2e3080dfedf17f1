/**
 * SM3 (GB/T 32905-2016) and HMAC-SM3 (GM/T 0042-2015), both native in Node's OpenSSL.
 *
 * This file also holds what the SM2 and SM4 files share: the error types and the parsing of byte inputs. SM3 is
 * the primitive the other two build on, so the shared pieces live with it rather than in a file of their own.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

// ---- shared: errors -------------------------------------------------------------------------------------------

export type CryptoInputErrorCode =
  | 'invalid_input_type'
  | 'invalid_hex'
  | 'invalid_key_length'
  | 'invalid_iv_length'
  | 'invalid_tag_length'
  | 'invalid_data_length'
  | 'invalid_key'
  | 'invalid_user_id'
  | 'malformed_signature'
  | 'malformed_ciphertext';

/** The caller handed over something that cannot be used: wrong length, not hex, not a point, not DER. */
export class CryptoInputError extends Error {
  override readonly name = 'CryptoInputError';
  constructor(
    readonly code: CryptoInputErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export type CryptoDecryptionErrorCode = 'bad_padding' | 'authentication_failed';

/**
 * Well-formed input that does not decrypt: the wrong key, or data that was altered. The message never describes
 * the data; tell the sender no more than "failed" (see sm4CbcDecrypt on padding oracles).
 */
export class CryptoDecryptionError extends Error {
  override readonly name = 'CryptoDecryptionError';
  constructor(
    readonly code: CryptoDecryptionErrorCode,
    message: string,
  ) {
    super(message);
  }
}

// ---- shared: byte inputs --------------------------------------------------------------------------------------

/**
 * Binary input: bytes (a Buffer is a Uint8Array), or the same bytes as a hex string (either case, even length,
 * no `0x`, no spaces). Messages and plaintexts are never strings, so UTF-8 text is never mistaken for hex.
 */
export type BytesOrHex = Uint8Array | string;

const HEX_PATTERN = /^(?:[0-9a-fA-F]{2})*$/;

/**
 * `what` names the input in the error ("SM4 key"); the error never repeats the input, which may be a secret.
 * Returns a Buffer viewing the caller's bytes when given bytes (no copy).
 */
export function bytesFrom(input: BytesOrHex, what: string): Buffer {
  if (typeof input === 'string') {
    if (!HEX_PATTERN.test(input)) {
      throw new CryptoInputError(
        'invalid_hex',
        `${what} is not hex: expected an even number of 0-9a-f characters (got ${input.length} characters)`,
      );
    }
    return Buffer.from(input, 'hex');
  }
  if (!(input instanceof Uint8Array)) {
    throw new CryptoInputError('invalid_input_type', `${what} must be a Uint8Array or a hex string`);
  }
  return Buffer.from(input.buffer, input.byteOffset, input.byteLength);
}

export function bytesOfLength(
  input: BytesOrHex,
  lengthBytes: number,
  what: string,
  code: CryptoInputErrorCode,
): Buffer {
  const bytes = bytesFrom(input, what);
  if (bytes.length !== lengthBytes) {
    throw new CryptoInputError(code, `${what} must be ${lengthBytes} bytes, got ${bytes.length}`);
  }
  return bytes;
}

export function messageBytes(message: Uint8Array, what: string): Buffer {
  if (!(message instanceof Uint8Array)) {
    throw new CryptoInputError('invalid_input_type', `${what} must be a Uint8Array (encode text first)`);
  }
  return Buffer.from(message.buffer, message.byteOffset, message.byteLength);
}

// ---- SM3 ------------------------------------------------------------------------------------------------------

export const SM3_DIGEST_BYTES = 32;

/**
 * RFC 2104 discourages HMAC keys shorter than the digest (32 bytes); 16 bytes keeps the 128-bit strength of an SM4
 * key and still admits the shortest GM/T 0042 test key ("Jefe Jeferson Jr").
 */
export const HMAC_SM3_KEY_MIN_BYTES = 16;

export function sm3Digest(data: Uint8Array): Buffer {
  return createHash('sm3').update(messageBytes(data, 'SM3 input')).digest();
}

export function hmacSm3(key: BytesOrHex, data: Uint8Array): Buffer {
  return createHmac('sm3', hmacKey(key)).update(messageBytes(data, 'HMAC-SM3 input')).digest();
}

/** Constant-time check of a received MAC. A MAC of the wrong length is a mismatch, not an error. */
export function hmacSm3Verify(key: BytesOrHex, data: Uint8Array, receivedMac: BytesOrHex): boolean {
  const expectedMac = hmacSm3(key, data);
  const received = bytesFrom(receivedMac, 'HMAC-SM3 value');
  // The length of a MAC is public; timingSafeEqual needs equal lengths.
  if (received.length !== expectedMac.length) return false;
  return timingSafeEqual(received, expectedMac);
}

function hmacKey(key: BytesOrHex): Buffer {
  const keyBytes = bytesFrom(key, 'HMAC-SM3 key');
  if (keyBytes.length < HMAC_SM3_KEY_MIN_BYTES) {
    throw new CryptoInputError(
      'invalid_key_length',
      `HMAC-SM3 key must be at least ${HMAC_SM3_KEY_MIN_BYTES} bytes, got ${keyBytes.length}`,
    );
  }
  return keyBytes;
}
