import { createHash } from 'node:crypto';

/** RFC 4122 name-based UUID, version 5 (SHA-1). Deterministic: the same name gives the same id. */
export function uuidV5(name: string, namespace: string = CARBONPAY_NAMESPACE): string {
  const namespaceBytes = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const hash = createHash('sha1').update(namespaceBytes).update(name, 'utf8').digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** carbonpay's own namespace for name-based ids (a v4 UUID chosen once). */
export const CARBONPAY_NAMESPACE = '6f1c3a5e-2b7d-4c1e-9a8f-3d5b7e9c1a2f';

/** The transfer id a client's idempotency key stands for: one key, one transfer, whichever process sees it. */
export function transferIdFor(clientId: string, idempotencyKey: string): string {
  return uuidV5(`transfer|${clientId}|${idempotencyKey}`);
}
