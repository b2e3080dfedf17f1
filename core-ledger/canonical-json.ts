import { sha256Hex } from './digests';

/**
 * JSON with object keys sorted at every depth (by UTF-16 code units, as `sort()` does) and undefined members left
 * out: equal data, equal text (request hashes, digests of rule sets and facts). An undefined item, or an undefined
 * value, is null. Built by appending, not by mapping and joining: it runs for every payment's risk facts.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    let text = '[';
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      text += `${i === 0 ? '' : ','}${canonicalJson(item === undefined ? null : item)}`;
    }
    return `${text}]`;
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  // Facts are mostly built with their keys in order already: sorting is then skipped, not redone.
  if (!inOrder(keys)) keys.sort();
  // A plain object of plain values whose keys are in order is written by JSON.stringify exactly so, in one call (it
  // follows the same key order, Object.keys', and leaves out undefined): a payment's facts are such an object.
  else if (isPlainFlat(record, keys)) return JSON.stringify(record);
  let text = '{';
  for (const key of keys) {
    const item = record[key];
    if (item === undefined) continue;
    text += `${text.length === 1 ? '' : ','}${JSON.stringify(key)}:${canonicalJson(item)}`;
  }
  return `${text}}`;
}

/** An object of Object's own making whose values are strings, finite or not numbers, booleans, null or undefined. */
function isPlainFlat(record: Record<string, unknown>, keys: readonly string[]): boolean {
  const prototype: unknown = Object.getPrototypeOf(record);
  if (prototype !== Object.prototype && prototype !== null) return false;
  for (const key of keys) {
    const item = record[key];
    const kind = typeof item;
    if (item !== null && kind !== 'string' && kind !== 'number' && kind !== 'boolean' && kind !== 'undefined')
      return false;
  }
  return true;
}

/** Whether `keys` are in `sort()`'s order (by UTF-16 code units). */
function inOrder(keys: readonly string[]): boolean {
  for (let i = 1; i < keys.length; i++) if (keys[i - 1]! > keys[i]!) return false;
  return true;
}

/** SHA-256 (hex) of the canonical JSON. */
export function digestOf(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}
