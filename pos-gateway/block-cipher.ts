/**
 * ECB block encryption with DES, 3DES and SM4 through node:crypto, every option written out (style.md).
 *
 * Node 20's OpenSSL 3 has no `des-ecb` (legacy provider). Single DES is 3DES-EDE with K1 = K2 = K3, since
 * E_K(D_K(E_K(x))) = E_K(x); a 16-byte key is 2-key 3DES (`des-ede-ecb`), a 24-byte key 3-key 3DES (research §2.5).
 */
import type { Cipher, Decipher } from 'node:crypto';
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { PosGatewayError } from './result';

/** `des` covers single, double and triple length DES keys (8, 16, 24 bytes); `sm4` takes 16-byte keys. */
export type BlockAlgorithm = 'des' | 'sm4';

export const BLOCK_BYTES: Readonly<Record<BlockAlgorithm, number>> = { des: 8, sm4: 16 };

function cipherFor(algorithm: BlockAlgorithm, key: Buffer): { name: string; key: Buffer } {
  if (algorithm === 'sm4') {
    if (key.length !== 16) throw new PosGatewayError(`SM4 key must be 16 bytes, got ${key.length}`);
    return { name: 'sm4-ecb', key };
  }
  if (key.length === 8) return { name: 'des-ede3-ecb', key: Buffer.concat([key, key, key]) };
  if (key.length === 16) return { name: 'des-ede-ecb', key };
  if (key.length === 24) return { name: 'des-ede3-ecb', key };
  throw new PosGatewayError(`DES key must be 8, 16 or 24 bytes, got ${key.length}`);
}

/**
 * ECB keeps no state between blocks, so one OpenSSL context per key and direction serves every call (padding off:
 * `update` answers each whole block at once, `final` is never needed). Creating a context costs more than a MAC's
 * two block encryptions; the contexts of the keys in use (working keys of signed-on terminals) are kept, a bounded
 * number, dropped all at once when full.
 */
const MAX_CACHED_CONTEXTS = 20_000;
const contexts = new Map<string, Cipher | Decipher>();

function contextFor(mode: 'encrypt' | 'decrypt', algorithm: BlockAlgorithm, key: Buffer): Cipher | Decipher {
  const id = `${mode}|${algorithm}|${key.toString('hex')}`;
  let context = contexts.get(id);
  if (!context) {
    const { name, key: cipherKey } = cipherFor(algorithm, key);
    context = mode === 'encrypt' ? createCipheriv(name, cipherKey, null) : createDecipheriv(name, cipherKey, null);
    context.setAutoPadding(false);
    if (contexts.size >= MAX_CACHED_CONTEXTS) contexts.clear();
    contexts.set(id, context);
  }
  return context;
}

function run(mode: 'encrypt' | 'decrypt', algorithm: BlockAlgorithm, key: Buffer, data: Buffer): Buffer {
  if (data.length % BLOCK_BYTES[algorithm] !== 0) {
    throw new PosGatewayError(`${algorithm} ECB data must be whole ${BLOCK_BYTES[algorithm]}-byte blocks`);
  }
  const out = contextFor(mode, algorithm, key).update(data);
  if (out.length !== data.length) throw new Error(`assertion: ECB of ${data.length} bytes gave ${out.length}`);
  return out;
}

export function ecbEncrypt(algorithm: BlockAlgorithm, key: Buffer, data: Buffer): Buffer {
  return run('encrypt', algorithm, key, data);
}

export function ecbDecrypt(algorithm: BlockAlgorithm, key: Buffer, data: Buffer): Buffer {
  return run('decrypt', algorithm, key, data);
}

/** Key check value: the first `lengthBytes` of E(key, zero block) (research §2.1 [V]). */
export function keyCheckValue(algorithm: BlockAlgorithm, key: Buffer, lengthBytes = 4): Buffer {
  return ecbEncrypt(algorithm, key, Buffer.alloc(BLOCK_BYTES[algorithm])).subarray(0, lengthBytes);
}

export function xorBytes(a: Buffer, b: Buffer): Buffer {
  if (a.length !== b.length) throw new PosGatewayError('xor of blocks of different lengths');
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] ?? 0) ^ (b[i] ?? 0);
  return out;
}

/** Sets the DES odd-parity bit of every byte (ignored by the cipher, expected by HSMs and terminals). */
export function withOddParity(key: Buffer): Buffer {
  const out = Buffer.from(key);
  for (let i = 0; i < out.length; i++) {
    const byte = (out[i] ?? 0) & 0xfe;
    let ones = 0;
    for (let bit = 1; bit < 8; bit++) ones += (byte >> bit) & 1;
    out[i] = ones % 2 === 0 ? byte | 1 : byte;
  }
  return out;
}
