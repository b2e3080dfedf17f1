import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';

/**
 * One-shot digests, with Node's `crypto.hash` where it has one (from 20.12): no Hash object per call. Every payment
 * hashes its request, its events' ids and its risk facts with SHA-256, and a client names its transfer with SHA-1.
 */
export function sha256(text: string): Buffer {
  return oneShot !== undefined ? oneShot('sha256', text, 'buffer') : createHash('sha256').update(text, 'utf8').digest();
}

/** {@link sha256} in lower-case hex. */
export function sha256Hex(text: string): string {
  return oneShot !== undefined
    ? oneShot('sha256', text, 'hex')
    : createHash('sha256').update(text, 'utf8').digest('hex');
}

/** SHA-1 of `prefix` followed by `text` in UTF-8 (a name-based UUID's namespace and name). */
export function sha1Of(prefix: Uint8Array, text: string): Buffer {
  if (oneShot !== undefined && prefix.length + text.length * MAX_UTF8_BYTES_PER_UNIT <= scratch.length) {
    scratch.set(prefix, 0);
    const written = scratch.write(text, prefix.length, 'utf8');
    return oneShot('sha1', scratch.subarray(0, prefix.length + written), 'buffer');
  }
  return createHash('sha1').update(prefix).update(text, 'utf8').digest();
}

/** A UTF-16 code unit is at most three bytes of UTF-8 (a surrogate pair, two units, is four). */
const MAX_UTF8_BYTES_PER_UNIT = 3;
const scratch = Buffer.alloc(1_024);

const oneShot = (
  crypto as {
    hash?: ((algorithm: string, data: string | Uint8Array, encoding: 'buffer') => Buffer) &
      ((algorithm: string, data: string | Uint8Array, encoding: 'hex') => string);
  }
).hash;
