import { Money, plainDecimalText } from '../money';
import { canonicalJson } from '../canonical-json';
import { sha256Hex } from '../digests';
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
