import type { AccountKind } from '../chart-of-accounts';
import { ACCOUNT_KINDS } from '../chart-of-accounts';
import type { Amount, AssetCode } from '../money';
import { amountOf, formatAmount, ZERO } from '../money';
import type { JsonObject } from '../eventstore/port';
import type { AccountEvent, AccountStatus, PostingLine, TransferEvent } from './events';
import type { TransferType } from './commands';

/** An account as the decider sees it. `revision` is its stream's revision (-1: not opened). */
export interface AccountState {
  readonly accountId: string;
  readonly kind: AccountKind;
  readonly asset: AssetCode;
  readonly ownerId: string;
  readonly cardNumber: string | null;
  readonly accountNumber: string | null;
  readonly status: AccountStatus;
  readonly mayGoNegative: boolean;
  /** credits − debits of posted lines */
  readonly posted: Amount;
  readonly pendingDebits: Amount;
  readonly pendingCredits: Amount;
  readonly revision: number;
}

export type TransferStatus = 'posted' | 'pending' | 'captured' | 'voided' | 'expired';

export interface AuthorizationTerms {
  readonly debitAccountId: string;
  readonly creditAccountId: string;
  readonly amount: string;
  readonly expiresAt: string;
}

export interface TransferState {
  readonly transferId: string;
  readonly transferType: TransferType | 'reversal';
  readonly status: TransferStatus;
  readonly idempotencyKey: string;
  readonly requestHash: string;
  /** What the transfer moved (for an authorization: what its capture posted; empty before). */
  readonly postings: readonly PostingLine[];
  readonly asset: AssetCode | null;
  readonly authorization: AuthorizationTerms | null;
  readonly captureKey: string | null;
  readonly reverses: string | null;
  readonly reversedBy: string | null;
  readonly settlementId: string | null;
  readonly businessDate: string;
  readonly revision: number;
}

export class LedgerAssertionError extends Error {
  constructor(message: string) {
    super(`ledger assertion failed: ${message}`);
    this.name = 'LedgerAssertionError';
  }
}

export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new LedgerAssertionError(message);
}

/** Available to debit: posted balance less what holds have reserved. */
export function availableBalance(account: AccountState): Amount {
  // Most accounts hold nothing: then no new amount is made (checked on every posting, twice).
  return account.pendingDebits.isZero() ? account.posted : account.posted.minus(account.pendingDebits);
}

export function evolveAccount(state: AccountState | undefined, event: AccountEvent): AccountState {
  const revision = (state?.revision ?? -1) + 1;
  if (event.type === 'AccountOpened') {
    assert(state === undefined, `account ${event.data.accountId} opened twice`);
    const definition = ACCOUNT_KINDS[event.data.kind];
    return {
      accountId: event.data.accountId,
      kind: event.data.kind,
      asset: event.data.asset,
      ownerId: event.data.ownerId,
      cardNumber: event.data.cardNumber,
      accountNumber: event.data.accountNumber,
      status: 'open',
      mayGoNegative: definition.mayGoNegative,
      posted: ZERO,
      pendingDebits: ZERO,
      pendingCredits: ZERO,
      revision,
    };
  }
  assert(state !== undefined, `${event.type} on an account that was never opened`);
  switch (event.type) {
    case 'AccountStatusChanged':
      return { ...state, status: event.data.status, revision };
    case 'CardReplaced':
      return {
        ...state,
        cardNumber: event.data.newCardNumber,
        status: state.status === 'lost' ? 'open' : state.status,
        revision,
      };
    case 'AccountPosted': {
      const amount = amountOf(state.asset, event.data.amount);
      const posted = event.data.direction === 'credit' ? state.posted.plus(amount) : state.posted.minus(amount);
      assert(
        posted.eq(amountOf(state.asset, event.data.balance)),
        `running balance of ${state.accountId} at revision ${revision}`,
      );
      const next = { ...state, posted, revision };
      assertAccountWithinLimits(next);
      return next;
    }
    case 'HoldPlaced': {
      const amount = amountOf(state.asset, event.data.amount);
      const next =
        event.data.direction === 'debit'
          ? { ...state, pendingDebits: state.pendingDebits.plus(amount), revision }
          : { ...state, pendingCredits: state.pendingCredits.plus(amount), revision };
      assertAccountWithinLimits(next);
      return next;
    }
    case 'HoldReleased': {
      const amount = amountOf(state.asset, event.data.amount);
      const next =
        event.data.direction === 'debit'
          ? { ...state, pendingDebits: state.pendingDebits.minus(amount), revision }
          : { ...state, pendingCredits: state.pendingCredits.minus(amount), revision };
      assert(next.pendingDebits.gte(0) && next.pendingCredits.gte(0), `holds of ${state.accountId} below zero`);
      return next;
    }
  }
}

function assertAccountWithinLimits(account: AccountState): void {
  assert(account.mayGoNegative || availableBalance(account).gte(0), `${account.accountId} below zero`);
}

export function evolveTransfer(state: TransferState | undefined, event: TransferEvent): TransferState {
  const revision = (state?.revision ?? -1) + 1;
  switch (event.type) {
    case 'TransferPosted':
      assert(state === undefined, `transfer ${event.data.transferId} posted twice`);
      assertBalanced(event.data.postings);
      return {
        transferId: event.data.transferId,
        transferType: event.data.transferType,
        status: 'posted',
        idempotencyKey: event.data.idempotencyKey,
        requestHash: event.data.requestHash,
        postings: event.data.postings,
        asset: event.data.postings[0]?.asset ?? null,
        authorization: null,
        captureKey: null,
        reverses: event.data.reverses,
        reversedBy: null,
        settlementId: null,
        businessDate: event.data.businessDate,
        revision,
      };
    case 'TransferAuthorized':
      assert(state === undefined, `transfer ${event.data.transferId} authorized twice`);
      return {
        transferId: event.data.transferId,
        transferType: event.data.transferType,
        status: 'pending',
        idempotencyKey: event.data.idempotencyKey,
        requestHash: event.data.requestHash,
        postings: [],
        asset: event.data.asset,
        authorization: {
          debitAccountId: event.data.debitAccountId,
          creditAccountId: event.data.creditAccountId,
          amount: event.data.amount,
          expiresAt: event.data.expiresAt,
        },
        captureKey: null,
        reverses: null,
        reversedBy: null,
        settlementId: null,
        businessDate: event.data.businessDate,
        revision,
      };
  }
  assert(state !== undefined, `${event.type} on a transfer that does not exist`);
  switch (event.type) {
    case 'AuthorizationCaptured':
      assert(state.status === 'pending', `capture of ${state.transferId} in status ${state.status}`);
      assertBalanced(event.data.postings);
      return {
        ...state,
        status: 'captured',
        postings: event.data.postings,
        captureKey: event.data.captureKey,
        revision,
      };
    case 'AuthorizationVoided':
      assert(state.status === 'pending', `void of ${state.transferId} in status ${state.status}`);
      return { ...state, status: 'voided', revision };
    case 'AuthorizationExpired':
      assert(state.status === 'pending', `expiry of ${state.transferId} in status ${state.status}`);
      return { ...state, status: 'expired', revision };
    case 'TransferReversed':
      assert(state.reversedBy === null, `${state.transferId} reversed twice`);
      return { ...state, reversedBy: event.data.reversalTransferId, revision };
    case 'TransferSettled':
      return { ...state, settlementId: event.data.settlementId, revision };
  }
}

/** Per asset, debits equal credits; at least two lines. A violation in a stored event is a bug, not a refusal. */
export function assertBalanced(postings: readonly PostingLine[]): void {
  assert(postings.length >= 2, 'a transfer has at least two postings');
  const netByAsset = new Map<AssetCode, Amount>();
  for (const line of postings) {
    const amount = amountOf(line.asset, line.amount);
    assert(amount.gt(0), 'posting amounts are positive');
    const signed = line.direction === 'credit' ? amount : amount.neg();
    netByAsset.set(line.asset, (netByAsset.get(line.asset) ?? ZERO).plus(signed));
  }
  for (const [asset, net] of netByAsset) assert(net.isZero(), `postings in ${asset} do not balance`);
}

// Snapshots: the account state as JSON, amounts as decimal strings.
export function accountToSnapshot(account: AccountState): JsonObject {
  return {
    accountId: account.accountId,
    kind: account.kind,
    asset: account.asset,
    ownerId: account.ownerId,
    cardNumber: account.cardNumber,
    accountNumber: account.accountNumber,
    status: account.status,
    posted: formatAmount(account.asset, account.posted),
    pendingDebits: formatAmount(account.asset, account.pendingDebits),
    pendingCredits: formatAmount(account.asset, account.pendingCredits),
  };
}

export function accountFromSnapshot(snapshot: JsonObject, revision: number): AccountState {
  const kind = snapshot['kind'] as AccountKind;
  const asset = snapshot['asset'] as AssetCode;
  assert(ACCOUNT_KINDS[kind] !== undefined && ACCOUNT_KINDS[kind].asset === asset, 'snapshot kind and asset');
  return {
    accountId: String(snapshot['accountId']),
    kind,
    asset,
    ownerId: String(snapshot['ownerId']),
    cardNumber: (snapshot['cardNumber'] as string | null) ?? null,
    accountNumber: (snapshot['accountNumber'] as string | null) ?? null,
    status: snapshot['status'] as AccountStatus,
    mayGoNegative: ACCOUNT_KINDS[kind].mayGoNegative,
    posted: amountOf(asset, String(snapshot['posted'])),
    pendingDebits: amountOf(asset, String(snapshot['pendingDebits'])),
    pendingCredits: amountOf(asset, String(snapshot['pendingCredits'])),
    revision,
  };
}
