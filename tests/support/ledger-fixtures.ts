import type {
  AccountKind,
  AccountState,
  CommandOutcome,
  EventStore,
  Ledger,
  LedgerCommand,
  PostingInput,
  TransferType,
} from '../../core-ledger';
import {
  ACCOUNT_KINDS,
  accountStreamId,
  evolveAccount,
  evolveTransfer,
  LOG_START,
  Money,
  PLATFORM_ACCOUNTS,
  toLedgerEvent,
} from '../../core-ledger';
import type { AccountEvent, TransferEvent, TransferState } from '../../core-ledger';

export const AT = '2026-11-23T10:00:00.000Z';
export const BUSINESS_DATE = '2026-11-23';

/** A T7 account id: 86 · class · type · area 794 · 9-digit sequence. */
export function coded(kind: AccountKind, sequence: number): string {
  const definition = ACCOUNT_KINDS[kind];
  const customerClass = definition.t7CustomerClasses?.includes('2') ? '2' : '1';
  return `86${customerClass}${definition.t7AccountType}794${String(sequence).padStart(9, '0')}`;
}

export const userWallet = (n: number): string => coded('user_main', n);
export const userPoints = (n: number): string => coded('user_points', n);
export const merchantPending = (n: number): string => coded('merchant_pending_settlement', 100_000 + n);
export const BANK = 'PLATFORM-BANK-CLEARING-CNY';
export const FEES = 'PLATFORM-FEE-INCOME-CNY';
export const CREDIT_ISSUANCE = 'PLATFORM-CREDIT-ISSUANCE-CCR';

export async function mustAccept(ledger: Ledger, command: LedgerCommand): Promise<CommandOutcome> {
  const outcome = await ledger.execute(command);
  if (outcome.status === 'refused')
    throw new Error(`refused ${command.type}: ${outcome.refusal.code} ${outcome.refusal.message}`);
  return outcome;
}

export async function openPlatformAccounts(ledger: Ledger): Promise<void> {
  await Promise.all(
    PLATFORM_ACCOUNTS.map((p) =>
      mustAccept(ledger, { type: 'OpenAccount', accountId: p.accountId, kind: p.kind, ownerId: 'platform', at: AT }),
    ),
  );
}

export function openAccount(accountId: string, kind: AccountKind, ownerId = `owner-${accountId}`): LedgerCommand {
  return { type: 'OpenAccount', accountId, kind, ownerId, at: AT };
}

let keySequence = 0;
export function transfer(
  postings: PostingInput[],
  options: { key?: string; type?: TransferType; reason?: string } = {},
): LedgerCommand {
  const key = options.key ?? `k-${++keySequence}`;
  return {
    type: 'PostTransfer',
    transferId: `t-${key}`,
    idempotencyKey: key,
    transferType: options.type ?? 'payment',
    postings,
    ...(options.reason !== undefined ? { reason: options.reason } : {}),
    businessDate: BUSINESS_DATE,
    at: AT,
  };
}

export function move(
  from: string,
  to: string,
  amount: string,
  options: { key?: string; type?: TransferType } = {},
): LedgerCommand {
  return transfer(
    [
      { accountId: from, direction: 'debit', amount },
      { accountId: to, direction: 'credit', amount },
    ],
    options,
  );
}

/** Folds the whole log into states: what a replay from position zero gives. */
export async function replay(
  store: EventStore,
): Promise<{ accounts: Map<string, AccountState>; transfers: Map<string, TransferState> }> {
  const accounts = new Map<string, AccountState>();
  const transfers = new Map<string, TransferState>();
  let after = LOG_START;
  for (;;) {
    const page = await store.readAll({ after, maxCount: 5_000 });
    for (const recorded of page) {
      const event = toLedgerEvent(recorded);
      if (recorded.streamId.startsWith('account-')) {
        const id = recorded.streamId.slice('account-'.length);
        accounts.set(id, evolveAccount(accounts.get(id), event as AccountEvent));
      } else if (recorded.streamId.startsWith('transfer-')) {
        const id = recorded.streamId.slice('transfer-'.length);
        transfers.set(id, evolveTransfer(transfers.get(id), event as TransferEvent));
      }
    }
    if (page.length < 5_000) return { accounts, transfers };
    after = page[page.length - 1]!.position;
  }
}

/** Σ posted balances per asset; zero for every asset in a sound ledger. */
export function sumsByAsset(accounts: Iterable<AccountState>): Map<string, string> {
  const sums = new Map<string, InstanceType<typeof Money>>();
  for (const a of accounts) sums.set(a.asset, (sums.get(a.asset) ?? new Money(0)).plus(a.posted));
  return new Map([...sums].map(([asset, sum]) => [asset, sum.toString()]));
}

export function comparableAccount(a: AccountState): Record<string, string | number | boolean | null> {
  return {
    accountId: a.accountId,
    status: a.status,
    posted: a.posted.toString(),
    pendingDebits: a.pendingDebits.toString(),
    pendingCredits: a.pendingCredits.toString(),
    revision: a.revision,
    cardNumber: a.cardNumber,
  };
}

export { accountStreamId };
