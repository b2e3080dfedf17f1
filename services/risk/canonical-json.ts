import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';

/**
 * JSON with object keys sorted at every depth (by UTF-16 code units, as `sort()` does): equal data, equal text
 * (digests of rule sets and facts). Built by appending, not by mapping and joining: it runs for every payment's facts.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) {
    let text = '[';
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      text += `${i === 0 ? '' : ','}${canonicalJson(item === undefined ? null : item)}`;
    }
    return `${text}]`;
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  let text = '{';
  for (const key of keys) {
    const item = record[key];
    if (item === undefined) continue;
    text += `${text.length === 1 ? '' : ','}${JSON.stringify(key)}:${canonicalJson(item)}`;
  }
  return `${text}}`;
}

/** Node's one-shot hash (from 20.12): half the cost of a Hash object for a payment's facts. */
const oneShotHash = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;

export function digestOf(value: unknown): string {
  const text = canonicalJson(value);
  return oneShotHash !== undefined
    ? oneShotHash('sha256', text, 'hex')
    : createHash('sha256').update(text, 'utf8').digest('hex');
}
