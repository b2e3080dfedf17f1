import type { AccountKind } from '../chart-of-accounts';

/** Every command carries `at`: the instant the application accepted it (ISO-8601). The domain has no clock. */
interface CommandBase {
  readonly at: string;
}

export type PostingDirection = 'debit' | 'credit';

/** One line of a transfer as a client gives it; `amount` is a positive decimal string at the account's scale. */
export interface PostingInput {
  readonly accountId: string;
  readonly direction: PostingDirection;
  readonly amount: string;
}

export type TransferType =
  | 'payment'
  | 'refund'
  | 'top_up'
  | 'withdrawal'
  | 'credit_issuance'
  | 'credit_redemption'
  | 'credit_expiry'
  | 'co2e_recording'
  | 'fee'
  | 'settlement'
  | 'adjustment'
  | 'internal';

export const TRANSFER_TYPES: readonly TransferType[] = [
  'payment',
  'refund',
  'top_up',
  'withdrawal',
  'credit_issuance',
  'credit_redemption',
  'credit_expiry',
  'co2e_recording',
  'fee',
  'settlement',
  'adjustment',
  'internal',
];

export interface OpenAccount extends CommandBase {
  readonly type: 'OpenAccount';
  readonly accountId: string;
  readonly kind: AccountKind;
  readonly ownerId: string;
  readonly cardNumber?: string;
  readonly accountNumber?: string;
}

/** Lifecycle of T13: freeze (止付), unfreeze, report loss (挂失), close (only at zero balance). */
export interface ChangeAccountStatus extends CommandBase {
  readonly type: 'FreezeAccount' | 'UnfreezeAccount' | 'ReportAccountLost' | 'CloseAccount';
  readonly accountId: string;
  readonly reason: string;
}

/** Replace card (补卡/换卡): a new card number; a lost account becomes open again. */
export interface ReplaceCard extends CommandBase {
  readonly type: 'ReplaceCard';
  readonly accountId: string;
  readonly newCardNumber: string;
  readonly reason: string;
}

export interface PostTransfer extends CommandBase {
  readonly type: 'PostTransfer';
  readonly transferId: string;
  readonly idempotencyKey: string;
  readonly transferType: TransferType;
  readonly postings: readonly PostingInput[];
  /** Required for adjustments; free text otherwise. */
  readonly reason?: string;
  /** The client's own reference (order number, terminal trace), kept for reconciliation. */
  readonly reference?: string;
  /** Business date (YYYY-MM-DD) of clearing; separate from the wall clock. */
  readonly businessDate: string;
}

/** Two-phase, phase one: hold `amount` on the debit account for the credit account until captured, voided or expired. */
export interface AuthorizeTransfer extends CommandBase {
  readonly type: 'AuthorizeTransfer';
  readonly transferId: string;
  readonly idempotencyKey: string;
  readonly transferType: TransferType;
  readonly debitAccountId: string;
  readonly creditAccountId: string;
  readonly amount: string;
  readonly expiresAt: string;
  readonly reference?: string;
  readonly businessDate: string;
}

/** Capture all of an authorization, or part of it (`amount` ≤ authorized); the rest is released. */
export interface CaptureTransfer extends CommandBase {
  readonly type: 'CaptureTransfer';
  readonly transferId: string;
  readonly idempotencyKey: string;
  readonly amount?: string;
}

export interface VoidTransfer extends CommandBase {
  readonly type: 'VoidTransfer';
  readonly transferId: string;
  readonly reason: string;
}

/** Releases an authorization whose `expiresAt` has passed; refused before that. */
export interface ExpireAuthorization extends CommandBase {
  readonly type: 'ExpireAuthorization';
  readonly transferId: string;
}

/** Reversal (冲正): a new transfer that mirrors every posting of the original; refused once the original is settled. */
export interface ReverseTransfer extends CommandBase {
  readonly type: 'ReverseTransfer';
  readonly transferId: string;
  readonly reversalTransferId: string;
  readonly idempotencyKey: string;
  readonly reason: string;
  readonly businessDate: string;
}

/** Marks a posted transfer as settled by a settlement run; after this it can no longer be reversed. */
export interface MarkTransferSettled extends CommandBase {
  readonly type: 'MarkTransferSettled';
  readonly transferId: string;
  readonly settlementId: string;
}

export type LedgerCommand =
  | OpenAccount
  | ChangeAccountStatus
  | ReplaceCard
  | PostTransfer
  | AuthorizeTransfer
  | CaptureTransfer
  | VoidTransfer
  | ExpireAuthorization
  | ReverseTransfer
  | MarkTransferSettled;

export type LedgerCommandType = LedgerCommand['type'];
