import { createHash } from 'node:crypto';
import { Money } from '../money';
import type { LedgerCommand } from './commands';

/**
 * The hash an idempotency key is bound to: the command's business content, canonicalised (keys sorted, amounts
 * normalised so "10.0" and "10" are the same request), without the server-set fields `at` and `businessDate`.
 */
export function requestHashOf(command: LedgerCommand): string {
  return createHash('sha256').update(canonicalJson(businessContent(command))).digest('hex');
}

function businessContent(command: LedgerCommand): unknown {
  const { at: _at, ...rest } = command;
  const content: Record<string, unknown> = { ...rest };
  delete content['businessDate'];
  if ('postings' in command) {
    content['postings'] = command.postings.map((p) => ({ ...p, amount: normalisedAmount(p.amount) }));
  }
  if ('amount' in command && typeof command.amount === 'string') content['amount'] = normalisedAmount(command.amount);
  return content;
}

function normalisedAmount(text: string): string {
  try {
    return new Money(text).toString();
  } catch {
    return text;
  }
}

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}
