/**
 * SM4 (GB/T 32907-2016). ECB and CBC run on Node's OpenSSL. GCM comes from sm-crypto-v2, because the OpenSSL 3.0
 * bundled with Node 20 has no `sm4-gcm` (`crypto.getCiphers()` lists sm4, -cbc, -cfb, -ctr, -ecb, -ofb only); the
 * library's GCM is proven here against the RFC 8998 vector.
 *
 * Parameters are named objects because the key and the CBC IV are both 16 bytes: positional arguments would let
 * them swap silently.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { sm4 as sm4Library } from 'sm-crypto-v2';
import type { BytesOrHex } from './sm3';
import { bytesFrom, bytesOfLength, CryptoDecryptionError, CryptoInputError, messageBytes } from './sm3';

export const SM4_KEY_BYTES = 16;
export const SM4_BLOCK_BYTES = 16;
export const SM4_CBC_IV_BYTES = 16;
/** 96-bit IVs only: the IV then becomes the counter block directly; other lengths go through GHASH. */
export const SM4_GCM_IV_BYTES = 12;
/** Full tags only: a truncated tag weakens authentication, and an empty one would switch the check off. */
export const SM4_GCM_TAG_BYTES = 16;

/** `pkcs7` pads to a whole block (always at least one byte); `none` requires whole blocks. */
export type Sm4Padding = 'pkcs7' | 'none';

export interface Sm4EcbParams {
  readonly key: BytesOrHex;
  readonly padding: Sm4Padding;
}

export interface Sm4CbcParams {
  readonly key: BytesOrHex;
  /** Unpredictable and fresh for every message under a key. */
  readonly iv: BytesOrHex;
  readonly padding: Sm4Padding;
}

export interface Sm4GcmEncryptParams {
  readonly key: BytesOrHex;
  /** Never reuse an IV under the same key: a repeat reveals the XOR of the plaintexts and allows forgeries. */
  readonly iv: BytesOrHex;
  /** Authenticated, not encrypted; pass an empty array when there is none. */
  readonly associatedData: Uint8Array;
}

export interface Sm4GcmDecryptParams extends Sm4GcmEncryptParams {
  readonly tag: BytesOrHex;
}

export interface Sm4GcmSealed {
  readonly ciphertext: Buffer;
  readonly tag: Buffer;
}

/**
 * ECB encrypts equal blocks to equal blocks, so it leaks patterns: use it for single-block values (key wrapping
 * under a KEK), known-answer tests and partners that insist on it, never for records.
 */
export function sm4EcbEncrypt(plaintext: Uint8Array, params: Sm4EcbParams): Buffer {
  const data = messageBytes(plaintext, 'SM4-ECB plaintext');
  requireWholeBlocksUnlessPadded(data.length, params.padding, 'SM4-ECB plaintext');
  const cipher = createCipheriv('sm4-ecb', sm4Key(params.key), null);
  cipher.setAutoPadding(params.padding === 'pkcs7');
  return Buffer.concat([cipher.update(data), cipher.final()]);
}

export function sm4EcbDecrypt(ciphertext: BytesOrHex, params: Sm4EcbParams): Buffer {
  const data = bytesFrom(ciphertext, 'SM4-ECB ciphertext');
  requireWholeBlocks(data.length, params.padding, 'SM4-ECB ciphertext');
  const decipher = createDecipheriv('sm4-ecb', sm4Key(params.key), null);
  decipher.setAutoPadding(params.padding === 'pkcs7');
  return finishDecryption(decipher, data);
}

export function sm4CbcEncrypt(plaintext: Uint8Array, params: Sm4CbcParams): Buffer {
  const data = messageBytes(plaintext, 'SM4-CBC plaintext');
  requireWholeBlocksUnlessPadded(data.length, params.padding, 'SM4-CBC plaintext');
  const cipher = createCipheriv('sm4-cbc', sm4Key(params.key), cbcIv(params.iv));
  cipher.setAutoPadding(params.padding === 'pkcs7');
  return Buffer.concat([cipher.update(data), cipher.final()]);
}

/**
 * CBC has no integrity: a `bad_padding` failure tells whoever sent the ciphertext something about the plaintext
 * (a padding oracle). Answer every decryption failure the same way, and prefer GCM, or CBC with HMAC-SM3 over the
 * ciphertext checked first.
 */
export function sm4CbcDecrypt(ciphertext: BytesOrHex, params: Sm4CbcParams): Buffer {
  const data = bytesFrom(ciphertext, 'SM4-CBC ciphertext');
  requireWholeBlocks(data.length, params.padding, 'SM4-CBC ciphertext');
  const decipher = createDecipheriv('sm4-cbc', sm4Key(params.key), cbcIv(params.iv));
  decipher.setAutoPadding(params.padding === 'pkcs7');
  return finishDecryption(decipher, data);
}

export function sm4GcmEncrypt(plaintext: Uint8Array, params: Sm4GcmEncryptParams): Sm4GcmSealed {
  const sealed = sm4Library.encrypt(messageBytes(plaintext, 'SM4-GCM plaintext'), sm4Key(params.key), {
    mode: 'gcm',
    iv: gcmIv(params.iv),
    associatedData: messageBytes(params.associatedData, 'SM4-GCM associated data'),
    padding: 'none',
    output: 'array',
    outputTag: true,
  });
  if (sealed.tag === undefined || sealed.tag.length !== SM4_GCM_TAG_BYTES) {
    throw new Error(`assertion: sm-crypto-v2 returned no ${SM4_GCM_TAG_BYTES}-byte GCM tag`);
  }
  return { ciphertext: Buffer.from(sealed.output), tag: Buffer.from(sealed.tag) };
}

/** Throws CryptoDecryptionError('authentication_failed') when the tag does not match; no plaintext is released. */
export function sm4GcmDecrypt(ciphertext: BytesOrHex, params: Sm4GcmDecryptParams): Buffer {
  const data = bytesFrom(ciphertext, 'SM4-GCM ciphertext');
  const tag = bytesOfLength(params.tag, SM4_GCM_TAG_BYTES, 'SM4-GCM tag', 'invalid_tag_length');
  try {
    // The library checks the tag only when one is passed; it always is (length checked above).
    const plaintext = sm4Library.decrypt(data, sm4Key(params.key), {
      mode: 'gcm',
      iv: gcmIv(params.iv),
      associatedData: messageBytes(params.associatedData, 'SM4-GCM associated data'),
      tag,
      padding: 'none',
      output: 'array',
    });
    return Buffer.from(plaintext);
  } catch (error) {
    if (error instanceof Error && /authentication tag mismatch/.test(error.message)) {
      throw new CryptoDecryptionError('authentication_failed', 'SM4-GCM: the data or its tag was altered');
    }
    throw error;
  }
}

function sm4Key(key: BytesOrHex): Buffer {
  return bytesOfLength(key, SM4_KEY_BYTES, 'SM4 key', 'invalid_key_length');
}

function cbcIv(iv: BytesOrHex): Buffer {
  return bytesOfLength(iv, SM4_CBC_IV_BYTES, 'SM4-CBC IV', 'invalid_iv_length');
}

function gcmIv(iv: BytesOrHex): Buffer {
  return bytesOfLength(iv, SM4_GCM_IV_BYTES, 'SM4-GCM IV', 'invalid_iv_length');
}

function requireWholeBlocksUnlessPadded(lengthBytes: number, padding: Sm4Padding, what: string): void {
  if (padding === 'none' && lengthBytes % SM4_BLOCK_BYTES !== 0) {
    throw new CryptoInputError(
      'invalid_data_length',
      `${what} is ${lengthBytes} bytes: without padding it must be a whole number of ${SM4_BLOCK_BYTES}-byte blocks`,
    );
  }
}

function requireWholeBlocks(lengthBytes: number, padding: Sm4Padding, what: string): void {
  const minimumBytes = padding === 'pkcs7' ? SM4_BLOCK_BYTES : 0;
  if (lengthBytes % SM4_BLOCK_BYTES !== 0 || lengthBytes < minimumBytes) {
    throw new CryptoInputError(
      'invalid_data_length',
      `${what} is ${lengthBytes} bytes: it must be a whole number of ${SM4_BLOCK_BYTES}-byte blocks` +
        (padding === 'pkcs7' ? ', at least one' : ''),
    );
  }
}

function finishDecryption(decipher: ReturnType<typeof createDecipheriv>, data: Buffer): Buffer {
  try {
    return Buffer.concat([decipher.update(data), decipher.final()]);
  } catch (error) {
    // OpenSSL reports a PKCS#7 check failure as "bad decrypt"; lengths were checked above, so nothing else is left.
    if ((error as { code?: unknown }).code === 'ERR_OSSL_BAD_DECRYPT') {
      throw new CryptoDecryptionError('bad_padding', 'SM4: the padding is invalid (wrong key or altered data)');
    }
    throw error;
  }
}
