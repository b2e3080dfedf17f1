import type { CommandContext, LedgerCommand, SqlEventStore } from '../../core-ledger';
import { Ledger, makeCardNumber, openPostgresEventStore, PLATFORM_ACCOUNTS } from '../../core-ledger';
import type { JournalLine, StatementLine, TransferView } from '../../projections';
import {
  LEDGER_READ_MODEL,
  PostgresReadModels,
  ProjectionRunner,
  QueryError,
  ReadModelQueries,
} from '../../projections';
import { createTestDatabase } from '../support/databases';
import { BANK, CREDIT_ISSUANCE, FEES, merchantPending, userPoints, userWallet } from '../support/ledger-fixtures';

jest.setTimeout(60_000);

/**
 * A small hand-written ledger with known amounts, projected into PostgreSQL, and every query of ReadModelQueries
 * read back against values worked out by hand:
 *
 *   11-20 02:00  top-up   BANK → U1 500.00                          U1 500.00
 *   11-20 03:00  payment  U1 → M1 120.00                            U1 380.00  M1 120.00
 *   11-20 03:05  fee      M1 → FEES 0.72 (the payment's fee)        M1 119.28  FEES 0.72
 *   11-20 03:30  payment  U1 → M2 10.00                             U1 370.00  M2 10.00
 *   11-21 02:00  refund   M1 → U1 20.00                             U1 390.00  M1 99.28
 *   11-21 03:00  credits  ISSUANCE → P1 15.50 (metro, 021)          P1 15.50
 *   11-21 04:00  credits  ISSUANCE → P1 4.50 (no tags: area 794)    P1 20.00
 *   11-22 01:00  redeem   P1 → EXPIRY 5.25 (metro, 021)             P1 14.75
 *   11-22 01:30  expire   P1 → EXPIRY 1.00 (cycling, 010)           P1 13.75
 *   11-22 02:00  authorize U1 → M1 80.00 (hold)
 *   11-22 02:30  capture 50.00 of it                                U1 340.00  M1 149.28
 *   11-22 04:00  reversal of the 120.00 payment (not its fee)       U1 460.00  M1 29.28
 *   11-22 05:00  authorize U1 → M1 30.00, left pending              U1 available 430.00
 *   11-22 06:00  the refund marked settled
 */

const U1 = userWallet(1);
const P1 = userPoints(1);
const M1 = merchantPending(1);
const M2 = merchantPending(2);
const EXPIRY = 'PLATFORM-CREDIT-EXPIRY-CCR';
const SUSPENSE = 'PLATFORM-SUSPENSE-CNY';
const REGISTRY = 'PLATFORM-CO2E-REGISTRY';
const CARD = makeCardNumber({ areaCode: '0794', sequence: 1 });
const OPENED_AT = '2026-11-20T00:00:00.000Z';

const ONBOARDING: CommandContext = { actor: 'onboarding', channel: 'batch' };
const BANK_GATEWAY: CommandContext = { actor: 'bank-gateway', channel: 'api', requestId: 'req-topup' };
const POS: CommandContext = { actor: 'pos-gateway', channel: 'pos', source: 'T-0001' };
const MALL: CommandContext = { actor: 'mall-service', channel: 'api' };
const CARBON_METRO: CommandContext = {
  actor: 'carbon-service',
  channel: 'api',
  tags: { behaviour: 'metro', area: '021' },
};
const CARBON_UNTAGGED: CommandContext = { actor: 'carbon-service', channel: 'api' };
const CARBON_CYCLING: CommandContext = {
  actor: 'carbon-service',
  channel: 'batch',
  tags: { behaviour: 'cycling', area: '010' },
};
const CLEARING: CommandContext = { actor: 'clearing', channel: 'batch' };

function post(
  key: string,
  transferType: 'top_up' | 'payment' | 'fee' | 'refund' | 'credit_issuance' | 'credit_redemption' | 'credit_expiry',
  postings: [string, 'debit' | 'credit', string][],
  businessDate: string,
  at: string,
  reference?: string,
): LedgerCommand {
  return {
    type: 'PostTransfer',
    transferId: `t-${key}`,
    idempotencyKey: key,
    transferType,
    postings: postings.map(([accountId, direction, amount]) => ({ accountId, direction, amount })),
    ...(reference !== undefined ? { reference } : {}),
    businessDate,
    at,
  };
}

const SCENARIO: [LedgerCommand, CommandContext][] = [
  ...PLATFORM_ACCOUNTS.map((p): [LedgerCommand, CommandContext] => [
    { type: 'OpenAccount', accountId: p.accountId, kind: p.kind, ownerId: 'platform', at: OPENED_AT },
    ONBOARDING,
  ]),
  [
    { type: 'OpenAccount', accountId: U1, kind: 'user_main', ownerId: 'user-1', cardNumber: CARD, at: OPENED_AT },
    ONBOARDING,
  ],
  [{ type: 'OpenAccount', accountId: P1, kind: 'user_points', ownerId: 'user-1', at: OPENED_AT }, ONBOARDING],
  [
    { type: 'OpenAccount', accountId: M1, kind: 'merchant_pending_settlement', ownerId: 'merchant-1', at: OPENED_AT },
    ONBOARDING,
  ],
  [
    { type: 'OpenAccount', accountId: M2, kind: 'merchant_pending_settlement', ownerId: 'merchant-2', at: OPENED_AT },
    ONBOARDING,
  ],
  [
    post(
      'topup',
      'top_up',
      [
        [BANK, 'debit', '500.00'],
        [U1, 'credit', '500.00'],
      ],
      '2026-11-20',
      '2026-11-20T02:00:00.000Z',
    ),
    BANK_GATEWAY,
  ],
  [
    post(
      'pay',
      'payment',
      [
        [U1, 'debit', '120.00'],
        [M1, 'credit', '120.00'],
      ],
      '2026-11-20',
      '2026-11-20T03:00:00.000Z',
      'order-1001',
    ),
    POS,
  ],
  [
    post(
      'fee',
      'fee',
      [
        [M1, 'debit', '0.72'],
        [FEES, 'credit', '0.72'],
      ],
      '2026-11-20',
      '2026-11-20T03:05:00.000Z',
    ),
    CLEARING,
  ],
  [
    post(
      'pay2',
      'payment',
      [
        [U1, 'debit', '10.00'],
        [M2, 'credit', '10.00'],
      ],
      '2026-11-20',
      '2026-11-20T03:30:00.000Z',
    ),
    POS,
  ],
  [
    post(
      'refund',
      'refund',
      [
        [M1, 'debit', '20.00'],
        [U1, 'credit', '20.00'],
      ],
      '2026-11-21',
      '2026-11-21T02:00:00.000Z',
    ),
    MALL,
  ],
  [
    post(
      'iss1',
      'credit_issuance',
      [
        [CREDIT_ISSUANCE, 'debit', '15.50'],
        [P1, 'credit', '15.50'],
      ],
      '2026-11-21',
      '2026-11-21T03:00:00.000Z',
    ),
    CARBON_METRO,
  ],
  [
    post(
      'iss2',
      'credit_issuance',
      [
        [CREDIT_ISSUANCE, 'debit', '4.50'],
        [P1, 'credit', '4.50'],
      ],
      '2026-11-21',
      '2026-11-21T04:00:00.000Z',
    ),
    CARBON_UNTAGGED,
  ],
  [
    post(
      'redeem',
      'credit_redemption',
      [
        [P1, 'debit', '5.25'],
        [EXPIRY, 'credit', '5.25'],
      ],
      '2026-11-22',
      '2026-11-22T01:00:00.000Z',
    ),
    CARBON_METRO,
  ],
  [
    post(
      'expire',
      'credit_expiry',
      [
        [P1, 'debit', '1.00'],
        [EXPIRY, 'credit', '1.00'],
      ],
      '2026-11-22',
      '2026-11-22T01:30:00.000Z',
    ),
    CARBON_CYCLING,
  ],
  [
    {
      type: 'AuthorizeTransfer',
      transferId: 't-auth1',
      idempotencyKey: 'auth1',
      transferType: 'payment',
      debitAccountId: U1,
      creditAccountId: M1,
      amount: '80.00',
      expiresAt: '2026-11-22T03:00:00.000Z',
      reference: 'pos-trace-77',
      businessDate: '2026-11-22',
      at: '2026-11-22T02:00:00.000Z',
    },
    POS,
  ],
  [
    {
      type: 'CaptureTransfer',
      transferId: 't-auth1',
      idempotencyKey: 'cap-auth1',
      amount: '50.00',
      at: '2026-11-22T02:30:00.000Z',
    },
    POS,
  ],
  [
    {
      type: 'ReverseTransfer',
      transferId: 't-pay',
      reversalTransferId: 'rev-pay',
      idempotencyKey: 'rev-pay',
      reason: 'terminal timeout',
      businessDate: '2026-11-22',
      at: '2026-11-22T04:00:00.000Z',
    },
    POS,
  ],
  [
    {
      type: 'AuthorizeTransfer',
      transferId: 't-auth2',
      idempotencyKey: 'auth2',
      transferType: 'payment',
      debitAccountId: U1,
      creditAccountId: M1,
      amount: '30.00',
      expiresAt: '2026-11-23T05:00:00.000Z',
      businessDate: '2026-11-22',
      at: '2026-11-22T05:00:00.000Z',
    },
    POS,
  ],
  [
    {
      type: 'MarkTransferSettled',
      transferId: 't-refund',
      settlementId: 's-2026-11-21',
      at: '2026-11-22T06:00:00.000Z',
    },
    CLEARING,
  ],
];

type Line = [
  string,
  string,
  number,
  JournalLine['transferType'],
  string,
  'CNY' | 'CCR',
  'debit' | 'credit',
  string,
  string,
];

/** Every posting line in log order: date, transfer, line, type, account, asset, direction, amount, at. */
const JOURNAL: Line[] = [
  ['2026-11-20', 't-topup', 0, 'top_up', BANK, 'CNY', 'debit', '500.00', '2026-11-20T02:00:00.000Z'],
  ['2026-11-20', 't-topup', 1, 'top_up', U1, 'CNY', 'credit', '500.00', '2026-11-20T02:00:00.000Z'],
  ['2026-11-20', 't-pay', 0, 'payment', U1, 'CNY', 'debit', '120.00', '2026-11-20T03:00:00.000Z'],
  ['2026-11-20', 't-pay', 1, 'payment', M1, 'CNY', 'credit', '120.00', '2026-11-20T03:00:00.000Z'],
  ['2026-11-20', 't-fee', 0, 'fee', M1, 'CNY', 'debit', '0.72', '2026-11-20T03:05:00.000Z'],
  ['2026-11-20', 't-fee', 1, 'fee', FEES, 'CNY', 'credit', '0.72', '2026-11-20T03:05:00.000Z'],
  ['2026-11-20', 't-pay2', 0, 'payment', U1, 'CNY', 'debit', '10.00', '2026-11-20T03:30:00.000Z'],
  ['2026-11-20', 't-pay2', 1, 'payment', M2, 'CNY', 'credit', '10.00', '2026-11-20T03:30:00.000Z'],
  ['2026-11-21', 't-refund', 0, 'refund', M1, 'CNY', 'debit', '20.00', '2026-11-21T02:00:00.000Z'],
  ['2026-11-21', 't-refund', 1, 'refund', U1, 'CNY', 'credit', '20.00', '2026-11-21T02:00:00.000Z'],
  ['2026-11-21', 't-iss1', 0, 'credit_issuance', CREDIT_ISSUANCE, 'CCR', 'debit', '15.50', '2026-11-21T03:00:00.000Z'],
  ['2026-11-21', 't-iss1', 1, 'credit_issuance', P1, 'CCR', 'credit', '15.50', '2026-11-21T03:00:00.000Z'],
  ['2026-11-21', 't-iss2', 0, 'credit_issuance', CREDIT_ISSUANCE, 'CCR', 'debit', '4.50', '2026-11-21T04:00:00.000Z'],
  ['2026-11-21', 't-iss2', 1, 'credit_issuance', P1, 'CCR', 'credit', '4.50', '2026-11-21T04:00:00.000Z'],
  ['2026-11-22', 't-redeem', 0, 'credit_redemption', P1, 'CCR', 'debit', '5.25', '2026-11-22T01:00:00.000Z'],
  ['2026-11-22', 't-redeem', 1, 'credit_redemption', EXPIRY, 'CCR', 'credit', '5.25', '2026-11-22T01:00:00.000Z'],
  ['2026-11-22', 't-expire', 0, 'credit_expiry', P1, 'CCR', 'debit', '1.00', '2026-11-22T01:30:00.000Z'],
  ['2026-11-22', 't-expire', 1, 'credit_expiry', EXPIRY, 'CCR', 'credit', '1.00', '2026-11-22T01:30:00.000Z'],
  ['2026-11-22', 't-auth1', 0, 'payment', U1, 'CNY', 'debit', '50.00', '2026-11-22T02:30:00.000Z'],
  ['2026-11-22', 't-auth1', 1, 'payment', M1, 'CNY', 'credit', '50.00', '2026-11-22T02:30:00.000Z'],
  ['2026-11-22', 'rev-pay', 0, 'reversal', U1, 'CNY', 'credit', '120.00', '2026-11-22T04:00:00.000Z'],
  ['2026-11-22', 'rev-pay', 1, 'reversal', M1, 'CNY', 'debit', '120.00', '2026-11-22T04:00:00.000Z'],
];

const journalLine = ([
  businessDate,
  transferId,
  lineNo,
  transferType,
  accountId,
  asset,
  direction,
  amount,
  at,
]: Line) => ({
  businessDate,
  transferId,
  lineNo,
  transferType,
  accountId,
  asset,
  direction,
  amount,
  at,
});

/** U1's statement, by revision: 5, 6 and 9 are the authorizations' holds and a release, not lines. */
const U1_STATEMENT: StatementLine[] = [
  {
    revision: 1,
    at: '2026-11-20T02:00:00.000Z',
    transferId: 't-topup',
    direction: 'credit',
    amount: '500.00',
    balance: '500.00',
  },
  {
    revision: 2,
    at: '2026-11-20T03:00:00.000Z',
    transferId: 't-pay',
    direction: 'debit',
    amount: '120.00',
    balance: '380.00',
  },
  {
    revision: 3,
    at: '2026-11-20T03:30:00.000Z',
    transferId: 't-pay2',
    direction: 'debit',
    amount: '10.00',
    balance: '370.00',
  },
  {
    revision: 4,
    at: '2026-11-21T02:00:00.000Z',
    transferId: 't-refund',
    direction: 'credit',
    amount: '20.00',
    balance: '390.00',
  },
  {
    revision: 7,
    at: '2026-11-22T02:30:00.000Z',
    transferId: 't-auth1',
    direction: 'debit',
    amount: '50.00',
    balance: '340.00',
  },
  {
    revision: 8,
    at: '2026-11-22T04:00:00.000Z',
    transferId: 'rev-pay',
    direction: 'credit',
    amount: '120.00',
    balance: '460.00',
  },
];

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

async function validationError(promise: Promise<unknown>, message: RegExp): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(QueryError);
  expect(error).toMatchObject({
    name: 'QueryError',
    code: 'validation_failed',
    message: expect.stringMatching(message),
  });
}

/** Reads every page of a paginated query; the pages must end with a null cursor. */
async function allPages<T>(read: (cursor: string | undefined) => Promise<{ items: T[]; nextCursor: string | null }>) {
  const pages: T[][] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await read(cursor);
    pages.push(page.items);
    if (page.nextCursor === null) return pages;
    expect(page.nextCursor).toMatch(/^[A-Za-z0-9_-]+$/);
    cursor = page.nextCursor;
    expect(pages.length).toBeLessThan(100);
  }
}

describe('ReadModelQueries on PostgreSQL: a hand-written ledger read back exactly', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let store: SqlEventStore;
  let ledger: Ledger;
  let readModels: PostgresReadModels;
  let runner: ProjectionRunner;
  let queries: ReadModelQueries;

  beforeAll(async () => {
    database = await createTestDatabase('queries');
    store = await openPostgresEventStore({ connectionString: database.url });
    ledger = new Ledger(store);
    readModels = new PostgresReadModels(database.url);
    runner = new ProjectionRunner(readModels, store, LEDGER_READ_MODEL);
    runner.start();
    queries = new ReadModelQueries(readModels);
    let last = '';
    for (const [command, context] of SCENARIO) {
      const outcome = await ledger.execute(command, context);
      if (outcome.status !== 'accepted') throw new Error(`${command.type} not accepted: ${JSON.stringify(outcome)}`);
      last = outcome.position;
    }
    await runner.waitUntilApplied(last);
  });

  afterAll(async () => {
    await runner?.stop();
    await ledger?.close();
    await store?.close();
    await readModels?.close();
    await database?.drop();
  });

  describe('getAccount', () => {
    test('a user wallet with a pending authorization: balances, holds, card and times', async () => {
      expect(await queries.getAccount(U1)).toEqual({
        accountId: U1,
        kind: 'user_main',
        asset: 'CNY',
        ownerId: 'user-1',
        cardNumber: CARD,
        accountNumber: null,
        status: 'open',
        balance: '460.00',
        available: '430.00',
        heldDebits: '30.00',
        heldCredits: '0.00',
        revision: 9,
        openedAt: OPENED_AT,
        updatedAt: '2026-11-22T05:00:00.000Z',
      });
    });

    test('the merchant holds the pending credit; other accounts are formatted at their scale', async () => {
      expect(await queries.getAccount(M1)).toMatchObject({
        balance: '29.28',
        available: '29.28',
        heldDebits: '0.00',
        heldCredits: '30.00',
        revision: 8,
      });
      expect(await queries.getAccount(P1)).toMatchObject({ asset: 'CCR', balance: '13.75', available: '13.75' });
      expect(await queries.getAccount(FEES)).toMatchObject({ balance: '0.72', revision: 1 });
      expect(await queries.getAccount(SUSPENSE)).toMatchObject({
        kind: 'platform_suspense',
        ownerId: 'platform',
        balance: '0.00',
        heldDebits: '0.00',
        revision: 0,
        updatedAt: OPENED_AT,
      });
      expect(await queries.getAccount(REGISTRY)).toMatchObject({ asset: 'CO2E', balance: '0', available: '0' });
    });

    test('an unknown account is undefined', async () => {
      expect(await queries.getAccount('no-such-account')).toBeUndefined();
    });
  });

  describe('getBalance', () => {
    test('without asOf: the current balance and revision', async () => {
      expect(await queries.getBalance(U1)).toEqual({
        accountId: U1,
        asset: 'CNY',
        balance: '460.00',
        asOf: null,
        revision: 9,
      });
      expect(await queries.getBalance(EXPIRY)).toEqual({
        accountId: EXPIRY,
        asset: 'CCR',
        balance: '6.25',
        asOf: null,
        revision: 2,
      });
    });

    test('as of several instants: the balance after the last line at or before it, zero before any', async () => {
      const cases: [string, string, string, number | null][] = [
        ['2026-11-19T23:59:59Z', '2026-11-19T23:59:59.000Z', '0.00', null],
        ['2026-11-20T02:00:00Z', '2026-11-20T02:00:00.000Z', '500.00', 1],
        ['2026-11-20T02:59:59.999Z', '2026-11-20T02:59:59.999Z', '500.00', 1],
        ['2026-11-20T03:15:00Z', '2026-11-20T03:15:00.000Z', '380.00', 2],
        ['2026-11-21T10:00:00+08:00', '2026-11-21T02:00:00.000Z', '390.00', 4],
        ['2026-11-22T03:00:00.000Z', '2026-11-22T03:00:00.000Z', '340.00', 7],
        ['2030-01-01T00:00Z', '2030-01-01T00:00:00.000Z', '460.00', 8],
      ];
      for (const [asOf, normalised, balance, revision] of cases) {
        expect(await queries.getBalance(U1, asOf)).toEqual({
          accountId: U1,
          asset: 'CNY',
          balance,
          asOf: normalised,
          revision,
        });
      }
      expect(await queries.getBalance(P1, '2026-11-22T01:15:00Z')).toMatchObject({ balance: '14.75', revision: 3 });
      expect(await queries.getBalance(REGISTRY, '2026-11-22T00:00:00Z')).toMatchObject({
        balance: '0',
        revision: null,
      });
    });

    test('an unknown account is undefined, with or without asOf', async () => {
      expect(await queries.getBalance('no-such-account')).toBeUndefined();
      expect(await queries.getBalance('no-such-account', '2026-11-22T00:00:00Z')).toBeUndefined();
    });
  });

  describe('getStatement', () => {
    test('every line by revision, each with its running balance', async () => {
      expect(await queries.getStatement(U1)).toEqual({ lines: U1_STATEMENT, nextCursor: null });
    });

    test('pages of 2 and of 4 read back the whole statement, and the last page has no cursor', async () => {
      const byTwo = await allPages(async (cursor) => {
        const page = await queries.getStatement(U1, { limit: 2, ...(cursor ? { cursor } : {}) });
        return { items: page.lines, nextCursor: page.nextCursor };
      });
      expect(byTwo.map((p) => p.length)).toEqual([2, 2, 2]);
      expect(byTwo.flat()).toEqual(U1_STATEMENT);
      const byFour = await allPages(async (cursor) => {
        const page = await queries.getStatement(U1, { limit: 4, ...(cursor ? { cursor } : {}) });
        return { items: page.lines, nextCursor: page.nextCursor };
      });
      expect(byFour.map((p) => p.length)).toEqual([4, 2]);
      expect(byFour.flat()).toEqual(U1_STATEMENT);
    });

    test('a time range includes from and excludes to, and pages within it', async () => {
      const inRange = { from: '2026-11-21T00:00:00Z', to: '2026-11-22T04:00:00Z' };
      expect((await queries.getStatement(U1, inRange)).lines.map((l) => l.revision)).toEqual([4, 7]);
      const first = await queries.getStatement(U1, { ...inRange, limit: 1 });
      expect(first.lines.map((l) => l.revision)).toEqual([4]);
      const second = await queries.getStatement(U1, { ...inRange, limit: 1, cursor: first.nextCursor! });
      expect(second).toEqual({ lines: [U1_STATEMENT[4]], nextCursor: null });
      expect((await queries.getStatement(U1, { from: '2026-11-22T04:00:00Z' })).lines).toEqual([U1_STATEMENT[5]]);
    });

    test('other assets and unknown accounts', async () => {
      expect((await queries.getStatement(P1)).lines.map((l) => [l.amount, l.balance])).toEqual([
        ['15.50', '15.50'],
        ['4.50', '20.00'],
        ['5.25', '14.75'],
        ['1.00', '13.75'],
      ]);
      expect(await queries.getStatement('no-such-account')).toEqual({ lines: [], nextCursor: null });
    });
  });

  describe('getJournal', () => {
    test('every posting line in log order', async () => {
      expect(await queries.getJournal()).toEqual({ lines: JOURNAL.map(journalLine), nextCursor: null });
    });

    test('pages of 5 read back the whole journal', async () => {
      const pages = await allPages(async (cursor) => {
        const page = await queries.getJournal({ limit: 5, ...(cursor ? { cursor } : {}) });
        return { items: page.lines, nextCursor: page.nextCursor };
      });
      expect(pages.map((p) => p.length)).toEqual([5, 5, 5, 5, 2]);
      expect(pages.flat()).toEqual(JOURNAL.map(journalLine));
    });

    test('filters: business dates, account, transfer and transfer type', async () => {
      const ids = (lines: JournalLine[]) => lines.map((l) => `${l.transferId}/${l.lineNo}`);
      const expected = (keep: (line: Line) => boolean) => JOURNAL.filter(keep).map((l) => `${l[1]}/${l[2]}`);
      expect(
        ids((await queries.getJournal({ businessDateFrom: '2026-11-21', businessDateTo: '2026-11-21' })).lines),
      ).toEqual(expected((l) => l[0] === '2026-11-21'));
      expect(ids((await queries.getJournal({ businessDateFrom: '2026-11-22' })).lines)).toHaveLength(8);
      expect(ids((await queries.getJournal({ businessDateTo: '2026-11-20' })).lines)).toEqual(
        expected((l) => l[0] === '2026-11-20'),
      );
      expect(ids((await queries.getJournal({ accountId: M1 })).lines)).toEqual([
        't-pay/1',
        't-fee/0',
        't-refund/0',
        't-auth1/1',
        'rev-pay/1',
      ]);
      expect((await queries.getJournal({ transferId: 'rev-pay' })).lines).toEqual(
        JOURNAL.filter((l) => l[1] === 'rev-pay').map(journalLine),
      );
      expect(ids((await queries.getJournal({ transferType: 'refund' })).lines)).toEqual(['t-refund/0', 't-refund/1']);
      expect(
        ids(
          (await queries.getJournal({ accountId: U1, transferType: 'payment', businessDateFrom: '2026-11-21' })).lines,
        ),
      ).toEqual(['t-auth1/0']);
      expect((await queries.getJournal({ businessDateFrom: '2026-12-01' })).lines).toEqual([]);
    });

    test('a filtered journal pages too', async () => {
      const pages = await allPages(async (cursor) => {
        const page = await queries.getJournal({ accountId: U1, limit: 2, ...(cursor ? { cursor } : {}) });
        return { items: page.lines, nextCursor: page.nextCursor };
      });
      expect(pages.flat().map((l) => [l.transferId, l.amount])).toEqual(
        U1_STATEMENT.map((s) => [s.transferId, s.amount]),
      );
    });
  });

  describe('getTransfer and listTransfers', () => {
    const ORDER = [
      't-topup',
      't-pay',
      't-fee',
      't-pay2',
      't-refund',
      't-iss1',
      't-iss2',
      't-redeem',
      't-expire',
      't-auth1',
      'rev-pay',
      't-auth2',
    ];

    test('a reversed payment', async () => {
      expect(await queries.getTransfer('t-pay')).toEqual({
        transferId: 't-pay',
        transferType: 'payment',
        status: 'posted',
        idempotencyKey: 'pay',
        businessDate: '2026-11-20',
        asset: 'CNY',
        amount: '120.00',
        debitAccountId: U1,
        creditAccountId: M1,
        postings: [
          { accountId: U1, asset: 'CNY', direction: 'debit', amount: '120.00' },
          { accountId: M1, asset: 'CNY', direction: 'credit', amount: '120.00' },
        ],
        reference: 'order-1001',
        reason: null,
        reverses: null,
        reversedBy: 'rev-pay',
        capturedAmount: null,
        expiresAt: null,
        settlementId: null,
        createdAt: '2026-11-20T03:00:00.000Z',
        updatedAt: '2026-11-22T04:00:00.000Z',
        revision: 1,
      });
    });

    test('the reversal, the partial capture, the pending authorization and the settled refund', async () => {
      expect(await queries.getTransfer('rev-pay')).toMatchObject({
        transferType: 'reversal',
        status: 'posted',
        businessDate: '2026-11-22',
        amount: '120.00',
        debitAccountId: M1,
        creditAccountId: U1,
        reverses: 't-pay',
        reason: 'terminal timeout',
        reversedBy: null,
      });
      expect(await queries.getTransfer('t-auth1')).toMatchObject({
        transferType: 'payment',
        status: 'captured',
        asset: 'CNY',
        amount: '80.00',
        capturedAmount: '50.00',
        debitAccountId: U1,
        creditAccountId: M1,
        reference: 'pos-trace-77',
        expiresAt: '2026-11-22T03:00:00.000Z',
        postings: [
          { accountId: U1, asset: 'CNY', direction: 'debit', amount: '50.00' },
          { accountId: M1, asset: 'CNY', direction: 'credit', amount: '50.00' },
        ],
        createdAt: '2026-11-22T02:00:00.000Z',
        updatedAt: '2026-11-22T02:30:00.000Z',
      });
      expect(await queries.getTransfer('t-auth2')).toMatchObject({
        status: 'pending',
        amount: '30.00',
        capturedAmount: null,
        postings: [],
        expiresAt: '2026-11-23T05:00:00.000Z',
      });
      expect(await queries.getTransfer('t-refund')).toMatchObject({ settlementId: 's-2026-11-21', revision: 1 });
      expect(await queries.getTransfer('t-fee')).toMatchObject({
        transferType: 'fee',
        amount: '0.72',
        debitAccountId: M1,
      });
      expect(await queries.getTransfer('t-iss1')).toMatchObject({ asset: 'CCR', amount: '15.50' });
      expect(await queries.getTransfer('no-such-transfer')).toBeUndefined();
    });

    test('listed in log order, and pages of 3 read back the whole list', async () => {
      const all = await queries.listTransfers();
      expect(all.transfers.map((t) => t.transferId)).toEqual(ORDER);
      expect(all.nextCursor).toBeNull();
      const pages = await allPages<TransferView>(async (cursor) => {
        const page = await queries.listTransfers({ limit: 3, ...(cursor ? { cursor } : {}) });
        return { items: page.transfers, nextCursor: page.nextCursor };
      });
      expect(pages.map((p) => p.length)).toEqual([3, 3, 3, 3]);
      expect(pages.flat()).toEqual(all.transfers);
    });

    test('filters: business date, type, status', async () => {
      const list = async (query: Parameters<ReadModelQueries['listTransfers']>[0]) =>
        (await queries.listTransfers(query)).transfers.map((t) => t.transferId);
      expect(await list({ businessDate: '2026-11-22' })).toEqual([
        't-redeem',
        't-expire',
        't-auth1',
        'rev-pay',
        't-auth2',
      ]);
      expect(await list({ transferType: 'payment' })).toEqual(['t-pay', 't-pay2', 't-auth1', 't-auth2']);
      expect(await list({ status: 'pending' })).toEqual(['t-auth2']);
      expect(await list({ businessDate: '2026-11-22', transferType: 'payment', status: 'captured' })).toEqual([
        't-auth1',
      ]);
      expect(await list({ transferType: 'reversal' })).toEqual(['rev-pay']);
      expect(await list({ businessDate: '2026-11-19' })).toEqual([]);
    });
  });

  describe('getTrialBalance', () => {
    test('all of the journal: debits equal credits per asset and balances sum to zero', async () => {
      expect(await queries.getTrialBalance()).toEqual([
        { asset: 'CCR', debits: '26.25', credits: '26.25', balance: '0.00', accounts: 4 },
        { asset: 'CNY', debits: '820.72', credits: '820.72', balance: '0.00', accounts: 7 },
        { asset: 'CO2E', debits: '0', credits: '0', balance: '0', accounts: 1 },
      ]);
    });

    test('up to a business date', async () => {
      expect(await queries.getTrialBalance({ businessDateTo: '2026-11-20' })).toEqual([
        { asset: 'CCR', debits: '0.00', credits: '0.00', balance: '0.00', accounts: 4 },
        { asset: 'CNY', debits: '630.72', credits: '630.72', balance: '0.00', accounts: 7 },
        { asset: 'CO2E', debits: '0', credits: '0', balance: '0', accounts: 1 },
      ]);
      const upTo21 = await queries.getTrialBalance({ businessDateTo: '2026-11-21' });
      expect(upTo21.map((r) => [r.asset, r.debits, r.credits])).toEqual([
        ['CCR', '20.00', '20.00'],
        ['CNY', '650.72', '650.72'],
        ['CO2E', '0', '0'],
      ]);
    });
  });

  describe('getMerchantDailyTotals', () => {
    test('payments with their fee, per merchant account', async () => {
      expect(await queries.getMerchantDailyTotals({ businessDate: '2026-11-20' })).toEqual([
        {
          businessDate: '2026-11-20',
          accountId: M1,
          asset: 'CNY',
          payments: { count: 1, amount: '120.00' },
          refunds: { count: 0, amount: '0.00' },
          fees: '0.72',
          net: '119.28',
        },
        {
          businessDate: '2026-11-20',
          accountId: M2,
          asset: 'CNY',
          payments: { count: 1, amount: '10.00' },
          refunds: { count: 0, amount: '0.00' },
          fees: '0.00',
          net: '10.00',
        },
      ]);
    });

    test('a refund day, and a day with a capture and a reversal (net over every type)', async () => {
      expect(await queries.getMerchantDailyTotals({ businessDate: '2026-11-21', accountId: M1 })).toEqual([
        {
          businessDate: '2026-11-21',
          accountId: M1,
          asset: 'CNY',
          payments: { count: 0, amount: '0.00' },
          refunds: { count: 1, amount: '20.00' },
          fees: '0.00',
          net: '-20.00',
        },
      ]);
      expect(await queries.getMerchantDailyTotals({ businessDate: '2026-11-22' })).toEqual([
        {
          businessDate: '2026-11-22',
          accountId: M1,
          asset: 'CNY',
          payments: { count: 1, amount: '50.00' },
          refunds: { count: 0, amount: '0.00' },
          fees: '0.00',
          net: '-70.00',
        },
      ]);
      expect(await queries.getMerchantDailyTotals({ businessDate: '2026-11-20', accountId: M2 })).toHaveLength(1);
      expect(await queries.getMerchantDailyTotals({ businessDate: '2026-11-22', accountId: M2 })).toEqual([]);
    });
  });

  describe('getCarbonStatistics', () => {
    const ALL = [
      {
        businessDate: '2026-11-21',
        behaviour: 'metro',
        area: '021',
        co2eGrams: '0',
        creditsIssued: '15.50',
        creditsRedeemed: '0.00',
        creditsExpired: '0.00',
        issuances: 1,
        redemptions: 0,
        expiries: 0,
      },
      {
        businessDate: '2026-11-21',
        behaviour: 'unspecified',
        area: '794',
        co2eGrams: '0',
        creditsIssued: '4.50',
        creditsRedeemed: '0.00',
        creditsExpired: '0.00',
        issuances: 1,
        redemptions: 0,
        expiries: 0,
      },
      {
        businessDate: '2026-11-22',
        behaviour: 'cycling',
        area: '010',
        co2eGrams: '0',
        creditsIssued: '0.00',
        creditsRedeemed: '0.00',
        creditsExpired: '1.00',
        issuances: 0,
        redemptions: 0,
        expiries: 1,
      },
      {
        businessDate: '2026-11-22',
        behaviour: 'metro',
        area: '021',
        co2eGrams: '0',
        creditsIssued: '0.00',
        creditsRedeemed: '5.25',
        creditsExpired: '0.00',
        issuances: 0,
        redemptions: 1,
        expiries: 0,
      },
    ];

    test('per business date, behaviour (from the command tags) and area', async () => {
      expect(await queries.getCarbonStatistics({ from: '2026-11-20', to: '2026-11-22' })).toEqual(ALL);
    });

    test('filters: dates (both included), behaviour, area', async () => {
      expect(await queries.getCarbonStatistics({ from: '2026-11-22', to: '2026-11-22' })).toEqual(ALL.slice(2));
      expect(await queries.getCarbonStatistics({ from: '2026-11-01', to: '2026-11-30', behaviour: 'metro' })).toEqual([
        ALL[0],
        ALL[3],
      ]);
      expect(await queries.getCarbonStatistics({ from: '2026-11-01', to: '2026-11-30', area: '794' })).toEqual([
        ALL[1],
      ]);
      expect(
        await queries.getCarbonStatistics({ from: '2026-11-21', to: '2026-11-21', behaviour: 'metro', area: '021' }),
      ).toEqual([ALL[0]]);
      expect(await queries.getCarbonStatistics({ from: '2026-11-23', to: '2026-12-31' })).toEqual([]);
    });
  });

  describe('getAuditTrail', () => {
    test('one entry per accepted command, in log order, with who sent it', async () => {
      const { entries, nextCursor } = await queries.getAuditTrail();
      expect(nextCursor).toBeNull();
      expect(entries).toHaveLength(SCENARIO.length);
      expect(entries.map((e) => e.command)).toEqual(SCENARIO.map(([c]) => c.type));
      expect(entries.map((e) => e.actor)).toEqual(SCENARIO.map(([, context]) => context.actor));
      const positions = entries.map((e) => e.position);
      expect([...positions].sort()).toEqual(positions);
      expect(new Set(positions).size).toBe(positions.length);
      const topUp = entries.find((e) => e.subject === 'transfer-t-topup')!;
      expect(topUp).toMatchObject({
        command: 'PostTransfer',
        actor: 'bank-gateway',
        channel: 'api',
        source: null,
        requestId: 'req-topup',
        at: '2026-11-20T02:00:00.000Z',
      });
      expect(topUp.eventId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(topUp.recordedAt).toMatch(ISO_INSTANT);
      expect(entries.find((e) => e.subject === `account-${U1}`)).toMatchObject({
        command: 'OpenAccount',
        actor: 'onboarding',
        channel: 'batch',
        at: OPENED_AT,
      });
    });

    test('filters: a time range (from included, to excluded), actor, command', async () => {
      const range = await queries.getAuditTrail({ from: '2026-11-22T00:00:00Z', to: '2026-11-22T05:00:00Z' });
      expect(range.entries.map((e) => [e.command, e.at])).toEqual([
        ['PostTransfer', '2026-11-22T01:00:00.000Z'],
        ['PostTransfer', '2026-11-22T01:30:00.000Z'],
        ['AuthorizeTransfer', '2026-11-22T02:00:00.000Z'],
        ['CaptureTransfer', '2026-11-22T02:30:00.000Z'],
        ['ReverseTransfer', '2026-11-22T04:00:00.000Z'],
      ]);
      const pos = await queries.getAuditTrail({ actor: 'pos-gateway' });
      expect(pos.entries.map((e) => e.subject)).toEqual([
        'transfer-t-pay',
        'transfer-t-pay2',
        'transfer-t-auth1',
        'transfer-t-auth1',
        'transfer-rev-pay',
        'transfer-t-auth2',
      ]);
      expect(pos.entries.every((e) => e.channel === 'pos' && e.source === 'T-0001')).toBe(true);
      expect((await queries.getAuditTrail({ command: 'OpenAccount' })).entries).toHaveLength(12);
      expect(
        (await queries.getAuditTrail({ command: 'PostTransfer', actor: 'carbon-service', to: '2026-11-22T00:00:00Z' }))
          .entries,
      ).toHaveLength(2);
      expect((await queries.getAuditTrail({ actor: 'nobody' })).entries).toEqual([]);
    });

    test('pages of 7 read back the whole trail', async () => {
      const whole = (await queries.getAuditTrail({ limit: 1000 })).entries;
      const pages = await allPages(async (cursor) => {
        const page = await queries.getAuditTrail({ limit: 7, ...(cursor ? { cursor } : {}) });
        return { items: page.entries, nextCursor: page.nextCursor };
      });
      expect(pages.map((p) => p.length)).toEqual([7, 7, 7, 5]);
      expect(pages.flat()).toEqual(whole);
    });
  });

  describe('validation', () => {
    test('a limit outside 1..1000 or not an integer', async () => {
      for (const limit of [0, -1, 1001, 2.5, Number.NaN]) {
        await validationError(queries.getStatement(U1, { limit }), /limit must be an integer in 1\.\.1000/);
      }
      await validationError(queries.getJournal({ limit: 0 }), /limit/);
      await validationError(queries.listTransfers({ limit: 1001 }), /limit/);
      await validationError(queries.getAuditTrail({ limit: 1.5 }), /limit/);
      expect((await queries.getJournal({ limit: 1000 })).lines).toHaveLength(JOURNAL.length);
      expect((await queries.getJournal({ limit: 1 })).lines).toHaveLength(1);
    });

    test('a malformed cursor, or one from another query', async () => {
      const json = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
      const statementCursor = (await queries.getStatement(U1, { limit: 1 })).nextCursor!;
      const journalCursor = (await queries.getJournal({ limit: 1 })).nextCursor!;
      await validationError(queries.getJournal({ cursor: 'not a cursor!' }), /cursor/);
      await validationError(queries.getJournal({ cursor: '' }), /cursor/);
      await validationError(
        queries.getJournal({ cursor: Buffer.from('{"q":"journal"').toString('base64url') }),
        /cursor/,
      );
      await validationError(queries.getJournal({ cursor: statementCursor }), /cursor/);
      await validationError(queries.getStatement(U1, { cursor: journalCursor }), /cursor/);
      await validationError(queries.listTransfers({ cursor: journalCursor }), /cursor/);
      await validationError(queries.getAuditTrail({ cursor: statementCursor }), /cursor/);
      await validationError(queries.getStatement(U1, { cursor: json({ q: 'statement', k: ['x'] }) }), /cursor/);
      await validationError(queries.getStatement(U1, { cursor: json({ q: 'statement', k: [-1] }) }), /cursor/);
      await validationError(queries.getJournal({ cursor: json({ q: 'journal', k: ['p'] }) }), /cursor/);
      await validationError(queries.getJournal({ cursor: json(['journal']) }), /cursor/);
      await validationError(queries.getJournal({ cursor: 'x'.repeat(2000) }), /cursor/);
    });

    test('a malformed business date, or a range that ends before it starts', async () => {
      await validationError(queries.getJournal({ businessDateFrom: '2026-02-30' }), /businessDateFrom must be a date/);
      await validationError(queries.getJournal({ businessDateTo: '2026-11-22T00:00:00Z' }), /businessDateTo/);
      await validationError(
        queries.getJournal({ businessDateFrom: '2026-11-22', businessDateTo: '2026-11-21' }),
        /businessDateFrom must not be after businessDateTo/,
      );
      await validationError(queries.listTransfers({ businessDate: '20261120' }), /businessDate must be a date/);
      await validationError(queries.getTrialBalance({ businessDateTo: 'yesterday' }), /businessDateTo/);
      await validationError(queries.getMerchantDailyTotals({ businessDate: '2026-13-01' }), /businessDate/);
      await validationError(
        queries.getCarbonStatistics({ from: '2026-11-22', to: '2026-11-21' }),
        /from must not be after to/,
      );
      await validationError(
        queries.getCarbonStatistics({ from: '2025-02-29', to: '2026-11-21' }),
        /from must be a date/,
      );
      expect(await queries.getCarbonStatistics({ from: '2028-02-29', to: '2028-02-29' })).toEqual([]);
    });

    test('a malformed instant', async () => {
      for (const asOf of [
        '2026-11-20',
        'yesterday',
        '2026-11-20T25:00:00Z',
        '2026-11-20T10:00:00',
        '2026-02-30T00:00:00Z',
      ]) {
        await validationError(queries.getBalance(U1, asOf), /asOf must be an ISO-8601 instant/);
      }
      await validationError(queries.getStatement(U1, { from: '2026-11-20 10:00' }), /from must be an ISO-8601 instant/);
      await validationError(queries.getAuditTrail({ to: '1700000000000' }), /to must be an ISO-8601 instant/);
      await validationError(
        queries.getAuditTrail({ from: '2026-11-22T00:00:00Z', to: '2026-11-21T00:00:00Z' }),
        /from must not be after to/,
      );
    });

    test('unknown enumerated values and empty ids', async () => {
      await validationError(queries.listTransfers({ status: 'bogus' as never }), /status must be one of posted/);
      await validationError(queries.listTransfers({ transferType: 'gift' as never }), /transferType must be one of/);
      await validationError(queries.getJournal({ transferType: 'gift' as never }), /transferType/);
      await validationError(queries.getAccount(''), /accountId must be a string/);
      await validationError(queries.getTransfer('x'.repeat(300)), /transferId/);
      await validationError(queries.getJournal({ accountId: 'a\u0000b' }), /control characters/);
    });
  });

  describe('cp_read', () => {
    test('reads only through cp_read: after a rebuild swaps generations, every answer is the same', async () => {
      const snapshot = async () => ({
        account: await queries.getAccount(U1),
        statement: await queries.getStatement(U1),
        journal: await queries.getJournal(),
        transfers: await queries.listTransfers(),
        trial: await queries.getTrialBalance(),
        merchants: await queries.getMerchantDailyTotals({ businessDate: '2026-11-22' }),
        carbon: await queries.getCarbonStatistics({ from: '2026-11-01', to: '2026-11-30' }),
        audit: await queries.getAuditTrail(),
      });
      const before = await snapshot();
      expect(await runner.rebuild(30_000)).toBe(2);
      expect(await snapshot()).toEqual(before);
    });
  });
});
