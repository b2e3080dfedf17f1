import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';

/**
 * SHA-256 of a text (UTF-8), with Node's one-shot hash where it has one (from 20.12): no Hash object per call. Every
 * payment hashes its request, its events' ids and its risk facts with it.
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

const oneShot = (
  crypto as {
    hash?: ((algorithm: string, data: string, encoding: 'buffer') => Buffer) &
      ((algorithm: string, data: string, encoding: 'hex') => string);
  }
).hash;
