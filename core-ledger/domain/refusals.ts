/** An expected outcome: the command was understood and the ledger says no. Never an exception. */
export type RefusalCode =
  | 'validation_failed'
  | 'account_not_found'
  | 'account_exists'
  | 'account_frozen'
  | 'account_reported_lost'
  | 'account_closed'
  | 'insufficient_funds'
  | 'asset_mismatch'
  | 'unbalanced'
  | 'idempotency_conflict'
  | 'transfer_not_found'
  | 'invalid_transfer_state'
  | 'authorization_expired'
  | 'authorization_not_expired'
  | 'amount_exceeds_authorization'
  | 'already_reversed'
  | 'already_settled'
  | 'balance_not_zero'
  | 'conflict';

export interface Refusal {
  readonly code: RefusalCode;
  readonly message: string;
  readonly details?: Readonly<Record<string, string | number | boolean | null>>;
}

export function refuse(code: RefusalCode, message: string, details?: Refusal['details']): Refusal {
  return details === undefined ? { code, message } : { code, message, details };
}
