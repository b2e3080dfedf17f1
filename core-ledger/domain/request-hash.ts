import { Money } from '../money';
import { sha256Hex } from '../sha256';
import type { LedgerCommand } from './commands';

/**
 * The hash an idempotency key is bound to: the command's business content, canonicalised (keys sorted, amounts
 * normalised so "10.0" and "10" are the same request), without the server-set fields `at` and `businessDate`.
 */
export function requestHashOf(command: LedgerCommand): string {
  let hash = computed.get(command);
  if (hash === undefined) {
    const canonical =
      command.type === 'PostTransfer' ? postTransferCanonical(command) : canonicalJson(businessContent(command));
    hash = sha256Hex(canonical);
    computed.set(command, hash);
  }
  return hash;
}

/** Commands are immutable values: a command's hash is computed once, however often it is asked for. */
const computed = new WeakMap<LedgerCommand, string>();

/** The hot path's command in a fixed shape: field order is fixed by this function, not by the client's JSON. */
function postTransferCanonical(command: Extract<LedgerCommand, { type: 'PostTransfer' }>): string {
  return JSON.stringify([
    'PostTransfer/1',
    command.transferId,
    command.idempotencyKey,
    command.transferType,
    command.postings.map((p) => [p.accountId, p.direction, normalisedAmount(p.amount)]),
    command.reason ?? null,
    command.reference ?? null,
  ]);
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

function normalisedAmount(text: unknown): unknown {
  if (typeof text !== 'string') return text;
  const plain = plainDecimalText(text);
  if (plain !== undefined) return plain;
  try {
    return new Money(text).toString();
  } catch {
    return text;
  }
}

/**
 * What `new Money(text).toString()` gives for a plain decimal (`-?digits(.digits)?`, up to 30 digits each side),
 * without a Decimal: leading zeros and trailing fraction zeros dropped, no sign on zero. Anything else: undefined.
 */
function plainDecimalText(text: string): string | undefined {
  const length = text.length;
  const negative = length > 0 && text.charCodeAt(0) === MINUS;
  let i = negative ? 1 : 0;
  const integerStart = i;
  while (i < length && isDigit(text.charCodeAt(i))) i++;
  const integerEnd = i;
  let fractionEnd = integerEnd;
  if (i < length) {
    if (text.charCodeAt(i) !== POINT) return undefined;
    i++;
    while (i < length && isDigit(text.charCodeAt(i))) i++;
    if (i !== length || i === integerEnd + 1) return undefined;
    fractionEnd = length;
  }
  if (integerEnd === integerStart || integerEnd - integerStart > 30 || fractionEnd - integerEnd > 31) return undefined;
  let significantStart = integerStart;
  while (significantStart < integerEnd - 1 && text.charCodeAt(significantStart) === ZERO_DIGIT) significantStart++;
  while (fractionEnd > integerEnd + 1 && text.charCodeAt(fractionEnd - 1) === ZERO_DIGIT) fractionEnd--;
  if (fractionEnd === integerEnd + 1) fractionEnd = integerEnd;
  const isZero =
    integerEnd - significantStart === 1 &&
    text.charCodeAt(significantStart) === ZERO_DIGIT &&
    fractionEnd === integerEnd;
  if (isZero) return '0';
  if (!negative && significantStart === 0 && fractionEnd === length) return text;
  return `${negative ? '-' : ''}${text.slice(significantStart, fractionEnd)}`;
}

const MINUS = 45;
const POINT = 46;
const ZERO_DIGIT = 48;
const isDigit = (code: number): boolean => code >= ZERO_DIGIT && code <= 57;

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}
