import type { AccountKind } from '../chart-of-accounts';
import type { AssetCode } from '../money';
import type { PostingDirection, TransferType } from './commands';

/**
 * Every event of the ledger. Amounts are decimal strings at their asset's scale. Events are immutable: a
 * correction is a new event (a reversal, an adjustment), never an update.
 *
 * Streams: `account-<accountId>` holds an account's lifecycle and its journal lines (with the running balance);
 * `transfer-<transferId>` holds a transfer's header and later fate (captured, voided, reversed, settled). The
 * transfer stream doubles as the idempotency record: its first event carries the key and the request's hash.
 */

export interface AccountOpened {
  readonly type: 'AccountOpened';
  readonly data: {
    readonly accountId: string;
    readonly kind: AccountKind;
    readonly asset: AssetCode;
    readonly ownerId: string;
    readonly cardNumber: string | null;
    readonly accountNumber: string | null;
    readonly at: string;
  };
}

export type AccountStatus = 'open' | 'frozen' | 'lost' | 'closed';

export interface AccountStatusChanged {
  readonly type: 'AccountStatusChanged';
  readonly data: {
    readonly accountId: string;
    readonly action: 'freeze' | 'unfreeze' | 'report_loss' | 'close';
    readonly status: AccountStatus;
    readonly reason: string;
    readonly at: string;
  };
}

export interface CardReplaced {
  readonly type: 'CardReplaced';
  readonly data: {
    readonly accountId: string;
    readonly oldCardNumber: string | null;
    readonly newCardNumber: string;
    readonly reason: string;
    readonly at: string;
  };
}

/** A journal line: posted on the account, with the account's posted balance after it. */
export interface AccountPosted {
  readonly type: 'AccountPosted';
  readonly data: {
    readonly accountId: string;
    readonly transferId: string;
    readonly direction: PostingDirection;
    readonly amount: string;
    readonly balance: string;
    readonly at: string;
  };
}

export interface HoldPlaced {
  readonly type: 'HoldPlaced';
  readonly data: {
    readonly accountId: string;
    readonly transferId: string;
    readonly direction: PostingDirection;
    readonly amount: string;
    readonly at: string;
  };
}

export interface HoldReleased {
  readonly type: 'HoldReleased';
  readonly data: {
    readonly accountId: string;
    readonly transferId: string;
    readonly direction: PostingDirection;
    readonly amount: string;
    readonly at: string;
  };
}

export interface PostingLine {
  readonly accountId: string;
  readonly asset: AssetCode;
  readonly direction: PostingDirection;
  readonly amount: string;
}

export interface TransferPosted {
  readonly type: 'TransferPosted';
  readonly data: {
    readonly transferId: string;
    readonly transferType: TransferType | 'reversal';
    readonly idempotencyKey: string;
    readonly requestHash: string;
    readonly postings: readonly PostingLine[];
    readonly reason: string | null;
    readonly reference: string | null;
    /** Set on a reversal: the transfer it reverses. */
    readonly reverses: string | null;
    readonly businessDate: string;
    readonly at: string;
  };
}

export interface TransferAuthorized {
  readonly type: 'TransferAuthorized';
  readonly data: {
    readonly transferId: string;
    readonly transferType: TransferType;
    readonly idempotencyKey: string;
    readonly requestHash: string;
    readonly debitAccountId: string;
    readonly creditAccountId: string;
    readonly asset: AssetCode;
    readonly amount: string;
    readonly expiresAt: string;
    readonly reference: string | null;
    readonly businessDate: string;
    readonly at: string;
  };
}

export interface AuthorizationCaptured {
  readonly type: 'AuthorizationCaptured';
  readonly data: {
    readonly transferId: string;
    readonly captureKey: string;
    readonly capturedAmount: string;
    readonly releasedAmount: string;
    readonly postings: readonly PostingLine[];
    readonly at: string;
  };
}

export interface AuthorizationVoided {
  readonly type: 'AuthorizationVoided';
  readonly data: {
    readonly transferId: string;
    readonly releasedAmount: string;
    readonly reason: string;
    readonly at: string;
  };
}

export interface AuthorizationExpired {
  readonly type: 'AuthorizationExpired';
  readonly data: { readonly transferId: string; readonly releasedAmount: string; readonly at: string };
}

export interface TransferReversed {
  readonly type: 'TransferReversed';
  readonly data: {
    readonly transferId: string;
    readonly reversalTransferId: string;
    readonly reason: string;
    readonly at: string;
  };
}

export interface TransferSettled {
  readonly type: 'TransferSettled';
  readonly data: { readonly transferId: string; readonly settlementId: string; readonly at: string };
}

export type AccountEvent =
  AccountOpened | AccountStatusChanged | CardReplaced | AccountPosted | HoldPlaced | HoldReleased;
export type TransferEvent =
  | TransferPosted
  | TransferAuthorized
  | AuthorizationCaptured
  | AuthorizationVoided
  | AuthorizationExpired
  | TransferReversed
  | TransferSettled;
export type LedgerEvent = AccountEvent | TransferEvent;

export const ACCOUNT_STREAM_PREFIX = 'account-';
export const TRANSFER_STREAM_PREFIX = 'transfer-';
export const accountStreamId = (accountId: string): string => ACCOUNT_STREAM_PREFIX + accountId;
export const transferStreamId = (transferId: string): string => TRANSFER_STREAM_PREFIX + transferId;

/** An event decided for one stream; the application appends it with the stream's expected revision. */
export type StreamEvent =
  | { readonly streamId: string; readonly kind: 'account'; readonly accountId: string; readonly event: AccountEvent }
  | {
      readonly streamId: string;
      readonly kind: 'transfer';
      readonly transferId: string;
      readonly event: TransferEvent;
    };
