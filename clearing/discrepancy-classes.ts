/**
 * Discrepancy classes and resolutions, as data (research/clearing.md §1.8). The matcher (reconciliation.ts)
 * classifies in SQL; this table says what each class means and which resolutions an operator may choose.
 *
 * Money: a case's `delta` is channel − ours, payments positive and refunds negative. It is held in
 * PLATFORM-SUSPENSE-CNY against PLATFORM-BANK-CLEARING-CNY from the moment the case is found (挂账), and every
 * resolution but `hold` moves exactly that amount out of suspense again, so once every case is resolved the suspense
 * account is back to zero.
 */

export type DiscrepancyClass = 'long' | 'short' | 'amount_mismatch' | 'status_mismatch' | 'duplicate' | 'cross_day';

export type Resolution = 'book_missing' | 'refund' | 'reversal' | 'adjustment' | 'hold';

/** `rematched` is set by the matcher itself (cross-day, or a held case found on a later bill); never by an operator. */
export type CaseResolution = Resolution | 'rematched';

export interface DiscrepancyClassDefinition {
  readonly label: string;
  readonly meaning: string;
  /** What an operator may choose; empty: the matcher resolves it by itself. */
  readonly resolutions: readonly Resolution[];
}

export const DISCREPANCY_CLASSES: Readonly<Record<DiscrepancyClass, DiscrepancyClassDefinition>> = {
  long: {
    label: '长款 · 渠道单边',
    meaning: 'in the channel bill, not in our records within the date window',
    resolutions: ['book_missing', 'refund', 'adjustment', 'hold'],
  },
  short: {
    label: '短款 · 我方单边',
    meaning: 'successful in our records on the bill date, missing from the channel bill',
    resolutions: ['reversal', 'adjustment', 'hold'],
  },
  amount_mismatch: {
    label: '金额不符',
    meaning: 'both sides have it with the same status, the amounts differ',
    resolutions: ['adjustment', 'hold'],
  },
  status_mismatch: {
    label: '状态不符',
    meaning: 'one side successful, the other failed, revoked or still pending',
    resolutions: ['book_missing', 'refund', 'reversal', 'adjustment', 'hold'],
  },
  duplicate: {
    label: '重复',
    meaning: 'the channel billed one order (or refund) more than once',
    resolutions: ['refund', 'hold'],
  },
  cross_day: {
    label: '跨日',
    meaning: 'matched on an adjacent bill date within the window; no money moves',
    resolutions: [],
  },
};

export const RESOLUTIONS: Readonly<Record<Resolution, string>> = {
  book_missing: '补单: book what the channel has and we lack (a pending top-up confirmed; a merchant credited)',
  refund: '退款: the money the channel holds goes back to the payer',
  reversal: '冲正: our own record is reversed (payment cancelled, top-up or refund reversed)',
  adjustment: '调账: the difference is booked to the merchant or the wallet',
  hold: '挂账: kept in suspense and matched again on later bills',
};

export const DISCREPANCY_CLASS_NAMES = Object.keys(DISCREPANCY_CLASSES) as DiscrepancyClass[];
export const RESOLUTION_NAMES = Object.keys(RESOLUTIONS) as Resolution[];

export function isResolution(value: string): value is Resolution {
  return Object.prototype.hasOwnProperty.call(RESOLUTIONS, value);
}

/**
 * How a channel's status word counts: `ok` moved money, `void` did not. Words not listed are `void` and make the
 * line a status mismatch if we booked it (a channel's new word is then seen, never silently taken as success).
 * WeChat: 交易状态 SUCCESS / REVOKED, 退款状态 SUCCESS / PROCESSING (PROCESSING counts as success, notes §1.8);
 * bank simulator: SUCCESS / FAILED / REVERSED; Alipay and UnionPay lines are SUCCESS (UnionPay 31 REVOKED).
 */
export const CHANNEL_STATUS_OK: readonly string[] = ['SUCCESS', 'PROCESSING'];

/** How our records' statuses count (services/payments.ts). `pending` is neither: the record is still moving. */
export const OUR_STATUS_EFFECT = {
  payment: { captured: 'ok', failed: 'void', reversed: 'void' },
  refund: { done: 'ok' },
  top_up: { confirmed: 'ok', failed: 'void' },
} as const;

/** Cross-day matching: our records this many business dates either side of the bill date are candidates. */
export const DEFAULT_MATCH_WINDOW_DAYS = 1;
export const MAX_MATCH_WINDOW_DAYS = 7;
