import type { AccountState, BehaviourRecordInput, CommandContext, EventStore } from '../../core-ledger';
import { Ledger, Money, openPostgresEventStore } from '../../core-ledger';
import { PostgresReadModels } from '../../projections';
import type { PaymentView, SqlStatement, WalletRecord } from '../../services';
import {
  BankChannelSimulator,
  CarbonService,
  DEFAULT_CARBON_POLICY,
  PaymentService,
  paymentIdOf,
  PLAINTEXT,
  ServiceRefusal,
  WalletService,
} from '../../services';
import { createTestDatabase } from '../support/databases';
import { openPlatformAccounts } from '../support/ledger-fixtures';

/** Carbon inclusion (#7) and mall payments (#8) over the real PostgreSQL: event store and service tables. */

const CONTEXT: CommandContext = { actor: 'partner-test', channel: 'api' };
const NOW = new Date('2026-11-23T04:00:00.000Z'); // 12:00 in Shanghai
const INDEX_KEY = Buffer.alloc(32, 7);

let drop: () => Promise<void>;
let store: EventStore;
let database: PostgresReadModels;
let ledger: Ledger;
let wallets: WalletService;
let carbon: CarbonService;
let payments: PaymentService;
let simulator: BankChannelSimulator;

beforeAll(async () => {
  const db = await createTestDatabase('carbon');
  drop = db.drop;
  store = await openPostgresEventStore({ connectionString: db.url, maxConnections: 8 });
  database = new PostgresReadModels(db.url, 60);
  ledger = new Ledger(store);
  await openPlatformAccounts(ledger);
  wallets = new WalletService(database, ledger, PLAINTEXT, INDEX_KEY);
  carbon = new CarbonService(database, ledger, wallets, { ...DEFAULT_CARBON_POLICY, creditsPerGram: '1' });
  payments = new PaymentService(database, ledger, wallets, PLAINTEXT);
  await wallets.install();
  await carbon.install();
  await payments.install();
  // The callbacks of these tests are delivered by hand; the simulator's own come too late to matter.
  simulator = new BankChannelSimulator(async () => undefined, {
    delayMs: 600_000,
    deliveries: 1,
    declineAbove: '1000000000.00',
  });
  payments.attachChannel(simulator);
});

afterAll(async () => {
  simulator.close();
  await ledger.close();
  await database.close();
  await store.close();
  await drop();
});

let nextNumber = 13_900_000_000;
async function newWallet(purpose: 'general' | 'earmarked' = 'general', allowed: string[] = []): Promise<WalletRecord> {
  nextNumber += 1;
  return wallets.openWallet(
    {
      accountNumber: String(nextNumber),
      name: 'Test User',
      areaCode: '0794',
      customerClass: '2',
      purpose,
      allowedCategories: allowed,
    },
    CONTEXT,
    NOW,
  );
}

function walk(accountNumber: string, externalId: string, steps: number, hour = 8): BehaviourRecordInput {
  const start = new Date(NOW.getTime() - (12 - hour) * 3_600_000);
  return {
    externalId,
    accountNumber,
    behaviour: 'walking',
    quantity: String(steps),
    unit: 'step',
    startAt: start.toISOString(),
    endAt: new Date(start.getTime() + 3_600_000).toISOString(),
  };
}

function bus(accountNumber: string, externalId: string, startMinute: number, minutes = 30): BehaviourRecordInput {
  const start = new Date(NOW.getTime() - 6 * 3_600_000 + startMinute * 60_000);
  return {
    externalId,
    accountNumber,
    behaviour: 'bus',
    quantity: '1',
    unit: 'ride',
    startAt: start.toISOString(),
    endAt: new Date(start.getTime() + minutes * 60_000).toISOString(),
  };
}

async function account(id: string): Promise<AccountState> {
  ledger.invalidate();
  const state = await ledger.getAccount(id);
  if (!state) throw new Error(`no account ${id}`);
  return state;
}

async function sumOfBalances(asset: string): Promise<string> {
  const rows = await database.query<{ sum: string }>(
    `SELECT coalesce(sum((data->>'amount')::numeric * CASE WHEN data->>'direction' = 'credit' THEN 1 ELSE -1 END), 0)::text AS sum
       FROM cp_events e WHERE type = 'AccountPosted' AND EXISTS (
         SELECT 1 FROM cp_events o WHERE o.type = 'AccountOpened' AND o.data->>'accountId' = e.data->>'accountId' AND o.data->>'asset' = $1)`,
    [asset],
  );
  return new Money(rows[0]!.sum).toFixed(2);
}

describe('wallets', () => {
  test('opening a wallet gives five T7 sub-accounts in the ledger and a T6 card; opening it again is a replay', async () => {
    const wallet = await newWallet();
    expect(wallet.status).toBe('open');
    expect(wallet.accounts.main).toMatch(/^8620794\d{9}$/);
    expect(wallet.accounts.points).toBe(`8624794${wallet.accounts.main.slice(7)}`);
    expect(wallet.cardNumber).toMatch(/^86007940\d{8}$/);
    for (const id of Object.values(wallet.accounts)) expect((await account(id)).status).toBe('open');
    const again = await wallets.openWallet(
      {
        accountNumber: wallet.accountNumber,
        name: 'Test User',
        areaCode: '0794',
        customerClass: '2',
        purpose: 'general',
      },
      CONTEXT,
      NOW,
    );
    expect(again.walletId).toBe(wallet.walletId);
    await expect(
      wallets.openWallet(
        {
          accountNumber: wallet.accountNumber,
          name: 'Someone Else',
          areaCode: '0794',
          customerClass: '2',
          purpose: 'general',
        },
        CONTEXT,
        NOW,
      ),
    ).rejects.toMatchObject({ code: 'wallet_exists' });
  });
});

describe('numbers of an area', () => {
  test('30 wallets opened at once in one area get 30 distinct account and card numbers', async () => {
    const opened = await Promise.all(Array.from({ length: 30 }, () => newWallet()));
    expect(new Set(opened.map((w) => w.accounts.main)).size).toBe(30);
    expect(new Set(opened.map((w) => w.cardNumber)).size).toBe(30);
  });

  test('numbers taken at once by four processes are never given twice; one not used stays a gap', async () => {
    const scope = 'card|test-gaps';
    const processes = Array.from({ length: 4 }, () => new WalletService(database, ledger, PLAINTEXT, INDEX_KEY));
    const taken = await Promise.all(
      Array.from({ length: 40 }, async (_, i) =>
        (await processes[i % 4]!.takeCodeNumbers([scope, 'account|test-gaps'])).get(scope)!,
      ),
    );
    expect([...taken].sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    // A number taken in a transaction that then rolls back is not taken again (the statement committed on its own).
    await expect(
      database.transaction(async () => {
        await processes[0]!.takeCodeNumbers([scope]);
        throw new Error('the opening failed');
      }),
    ).rejects.toThrow('the opening failed');
    expect((await processes[1]!.takeCodeNumbers([scope])).get(scope)).toBe(42);
  });

  test('numbers taken at once through the service go in one statement per batch, each scope a block in order', async () => {
    const statements: string[] = [];
    const counting = new WalletService(
      {
        exec: (script) => database.exec(script),
        transaction: (work) => database.transaction(work),
        query: async <Row>(statement: SqlStatement, params?: readonly unknown[]): Promise<Row[]> => {
          statements.push(typeof statement === 'string' ? statement : statement.text);
          return database.query<Row>(statement, params);
        },
      },
      ledger,
      PLAINTEXT,
      INDEX_KEY,
    );
    // Each names the card scope twice: still one number of it each.
    const taken = await Promise.all(
      Array.from({ length: 40 }, () =>
        counting.takeCodeNumbers(['card|test-block', 'account|test-block', 'card|test-block']),
      ),
    );
    for (const numbers of taken) expect([...numbers.keys()].sort()).toEqual(['account|test-block', 'card|test-block']);
    const sorted = (scope: string): number[] => taken.map((n) => n.get(scope)!).sort((a, b) => a - b);
    const oneToForty = Array.from({ length: 40 }, (_, i) => i + 1);
    expect(sorted('card|test-block')).toEqual(oneToForty);
    expect(sorted('account|test-block')).toEqual(oneToForty);
    // The first call goes alone; the 39 that waited for it, together.
    expect(statements.filter((s) => s.includes('cp_code_sequences'))).toHaveLength(2);
    // Taken by another process afterwards: the counter went on from the block.
    expect((await wallets.takeCodeNumbers(['card|test-block'])).get('card|test-block')).toBe(41);
  });
});

describe('carbon ingestion', () => {
  test('a batch answers each record: accepted with grams, credits and methodology version, duplicate, rejected', async () => {
    const wallet = await newWallet();
    const result = await carbon.submitBehaviours(
      'partner-a',
      'batch-1',
      [
        walk(wallet.accountNumber, 'w-1', 7_250),
        walk(wallet.accountNumber, 'w-1', 7_250),
        { ...walk(wallet.accountNumber, 'w-2', 10), behaviour: 'teleporting' },
        walk('13000000000', 'w-3', 100),
        { ...walk(wallet.accountNumber, 'w-4', 100), unit: 'km' },
      ],
      CONTEXT,
      NOW,
    );
    expect(result.records.map((r) => [r.externalId, r.status, 'reason' in r ? r.reason : null])).toEqual([
      ['w-1', 'accepted', null],
      ['w-1', 'duplicate', 'same_external_id'],
      ['w-2', 'rejected', 'unknown_behaviour'],
      ['w-3', 'rejected', 'unknown_user'],
      ['w-4', 'rejected', 'unit_mismatch'],
    ]);
    expect(result.records[0]).toMatchObject({
      grams: '145',
      credits: '145.00',
      methodologyVersion: 'walking@2021-wuhan',
      creditStatus: 'credited',
    });
    expect((await account(wallet.accounts.points)).posted.toFixed(2)).toBe('145.00');
    const view = await carbon.carbonAccount(wallet.accountNumber);
    expect(view).toMatchObject({ totalGrams: '145', creditBalance: '145.00', records: 1 });
    // The same batch again: every record a duplicate, nothing credited twice.
    const again = await carbon.submitBehaviours(
      'partner-a',
      'batch-1',
      [walk(wallet.accountNumber, 'w-1', 7_250)],
      CONTEXT,
      NOW,
    );
    expect(again.records[0]).toMatchObject({ status: 'duplicate' });
    expect((await account(wallet.accounts.points)).posted.toFixed(2)).toBe('145.00');
  });

  test('the same trip from two partners, or overlapping in time, counts once', async () => {
    const wallet = await newWallet();
    const first = await carbon.submitBehaviours(
      'partner-a',
      'b-a',
      [bus(wallet.accountNumber, 'trip-a', 0)],
      CONTEXT,
      NOW,
    );
    const second = await carbon.submitBehaviours(
      'partner-b',
      'b-b',
      [bus(wallet.accountNumber, 'trip-b', 10), bus(wallet.accountNumber, 'trip-c', 30)],
      CONTEXT,
      NOW,
    );
    expect(first.records[0]!.status).toBe('accepted');
    expect(second.records.map((r) => r.status)).toEqual(['duplicate', 'accepted']);
    expect(second.records[0]).toMatchObject({ reason: 'overlapping_trip' });
  });

  test('caps hold under 50 concurrent submissions for one user: no overshoot', async () => {
    const wallet = await newWallet();
    // 50 batches at once, each 10,000 steps (200 g) on the same day; walking's daily cap is 296 g.
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        carbon.submitBehaviours(
          `partner-${i % 5}`,
          `cap-${i}`,
          [walk(wallet.accountNumber, `cap-${i}`, 10_000)],
          CONTEXT,
          NOW,
        ),
      ),
    );
    const accepted = results.flatMap((r) => r.records).filter((r) => r.status === 'accepted');
    const grams = accepted.reduce((sum, r) => sum.plus(r.status === 'accepted' ? r.grams : '0'), new Money(0));
    expect(grams.toFixed(0)).toBe('296');
    expect(accepted).toHaveLength(2);
    expect(results.flatMap((r) => r.records).filter((r) => r.status === 'rejected')).toHaveLength(48);
    expect((await account(wallet.accounts.points)).posted.toFixed(2)).toBe('296.00');
  });

  test('a partner beyond its rate is refused as a whole batch', async () => {
    const wallet = await newWallet();
    const limited = new CarbonService(database, ledger, wallets, {
      ...DEFAULT_CARBON_POLICY,
      partnerRecordsPerMinute: 2,
    });
    await limited.submitBehaviours(
      'partner-r',
      'r-1',
      [walk(wallet.accountNumber, 'r-1', 100), walk(wallet.accountNumber, 'r-2', 100, 9)],
      CONTEXT,
      NOW,
    );
    await expect(
      limited.submitBehaviours('partner-r', 'r-2', [walk(wallet.accountNumber, 'r-3', 100, 10)], CONTEXT, NOW),
    ).rejects.toMatchObject({ code: 'rate_limited' });
  });

  test('the expiry job run twice expires each credit once; Σ CCR balances stays 0', async () => {
    const wallet = await newWallet();
    const shortLived = new CarbonService(database, ledger, wallets, {
      ...DEFAULT_CARBON_POLICY,
      creditsPerGram: '1',
      creditLifetimeDays: 1,
    });
    await shortLived.submitBehaviours('partner-x', 'x-1', [walk(wallet.accountNumber, 'x-1', 5_000)], CONTEXT, NOW); // 100 g → 100 credits
    const later = new Date(NOW.getTime() + 12 * 3_600_000);
    await shortLived.submitBehaviours(
      'partner-x',
      'x-2',
      [walk(wallet.accountNumber, 'x-2', 2_500, 10)],
      CONTEXT,
      later,
    ); // 50 next day? same window
    expect((await account(wallet.accounts.points)).posted.toFixed(2)).toBe('150.00');
    const asOf = new Date(NOW.getTime() + 25 * 3_600_000); // the first lot has expired, the second not
    const [first, second] = [
      await shortLived.expireCredits(asOf, CONTEXT),
      await shortLived.expireCredits(asOf, CONTEXT),
    ];
    expect(first.expired).not.toBe('0.00');
    expect(second.expired).toBe('0.00');
    expect((await account(wallet.accounts.points)).posted.toFixed(2)).toBe('50.00');
    const concurrent = await Promise.all([
      shortLived.expireCredits(new Date(asOf.getTime() + 86_400_000), CONTEXT),
      shortLived.expireCredits(new Date(asOf.getTime() + 86_400_000), CONTEXT),
    ]);
    expect(concurrent.map((c) => c.expired).sort()).toEqual(['0.00', '50.00'].sort());
    expect((await account(wallet.accounts.points)).posted.toFixed(2)).toBe('0.00');
    expect(await sumOfBalances('CCR')).toBe('0.00');
  });

  test('records left pending by a crash are issued once by resumeIssuances', async () => {
    const wallet = await newWallet();
    await carbon.submitBehaviours('partner-p', 'p-1', [walk(wallet.accountNumber, 'p-1', 1_000)], CONTEXT, NOW);
    // As if the process died after committing the batch and before the ledger answered: set it back to pending.
    await database.query(`UPDATE cp_carbon_records SET status = 'pending' WHERE partner_id = 'partner-p'`);
    expect(await carbon.resumeIssuances(CONTEXT, NOW)).toBeGreaterThanOrEqual(1);
    expect((await account(wallet.accounts.points)).posted.toFixed(2)).toBe('20.00');
    const rows = await database.query<{ status: string }>(
      `SELECT status FROM cp_carbon_records WHERE partner_id = 'partner-p'`,
    );
    expect(rows.map((r) => r.status)).toEqual(['credited']);
  });
});

describe('mall payments with mixed tender', () => {
  async function activeMerchant(category = 'green_mall', feeRateBps = 60): Promise<string> {
    const applied = await payments.applyMerchant(
      { name: 'Green Shop', category, feeRateBps, settlementBankAccount: '6222020200112233445', areaCode: '0794' },
      NOW,
    );
    const reviewed = await payments.reviewMerchant(
      applied.merchantId,
      'approve',
      'documents checked',
      { actor: 'op-1', channel: 'api' },
      NOW,
    );
    expect(reviewed.status).toBe('active');
    return applied.merchantId;
  }

  async function fundedWallet(): Promise<WalletRecord> {
    const wallet = await newWallet();
    const topUp = await payments.requestTopUp(wallet.walletId, '100.00', 'bank_sim', NOW);
    await payments.confirmTopUp(
      { topUpId: topUp.topUpId, result: 'success', channelTradeNo: `T${topUp.topUpId.slice(0, 8)}` },
      CONTEXT,
      NOW,
    );
    await carbon.submitBehaviours(
      'partner-m',
      `m-${wallet.walletId}`,
      [walk(wallet.accountNumber, `m-${wallet.walletId}`, 10_000)],
      CONTEXT,
      NOW,
    ); // 200 credits
    return wallet;
  }

  test('a failure injected between the legs: neither leg moves; after the commit point: both', async () => {
    const merchantId = await activeMerchant();
    const wallet = await fundedWallet();
    const before = {
      cny: (await account(wallet.accounts.main)).posted.toFixed(2),
      ccr: (await account(wallet.accounts.points)).posted.toFixed(2),
    };

    payments.faultAt = (point) => {
      if (point === 'after_first_hold') throw new Error('injected: process fails between the legs');
    };
    await expect(
      payments.pay(
        {
          merchantId,
          orderId: 'o-fail',
          walletId: wallet.walletId,
          amount: '30.00',
          tenders: { wallet: '29.00', credits: '100.00' },
        },
        CONTEXT,
        NOW,
      ),
    ).rejects.toThrow('injected');
    payments.faultAt = undefined;
    const main = await account(wallet.accounts.main);
    const points = await account(wallet.accounts.points);
    expect([main.posted.toFixed(2), points.posted.toFixed(2)]).toEqual([before.cny, before.ccr]);
    expect([main.pendingDebits.toFixed(2), points.pendingDebits.toFixed(2)]).toEqual(['0.00', '0.00']);

    payments.faultAt = (point) => {
      if (point === 'after_first_capture') throw new Error('injected: process fails between the captures');
    };
    await expect(
      payments.pay(
        {
          merchantId,
          orderId: 'o-both',
          walletId: wallet.walletId,
          amount: '30.00',
          tenders: { wallet: '29.00', credits: '100.00' },
        },
        CONTEXT,
        NOW,
      ),
    ).rejects.toThrow('injected');
    payments.faultAt = undefined;
    expect(await payments.resumePayments(CONTEXT, NOW)).toBe(1);
    expect((await account(wallet.accounts.main)).posted.toFixed(2)).toBe(new Money(before.cny).minus(29).toFixed(2));
    expect((await account(wallet.accounts.points)).posted.toFixed(2)).toBe(new Money(before.ccr).minus(100).toFixed(2));
    const payment = await payments.getPayment(
      (await database.query<{ payment_id: string }>(`SELECT payment_id FROM cp_payments WHERE order_id = 'o-both'`))[0]!
        .payment_id,
    );
    expect(payment).toMatchObject({ status: 'captured', amount: '30.00', fee: '0.18', merchantNet: '29.82' });
    expect(await sumOfBalances('CNY')).toBe('0.00');
    expect(await sumOfBalances('CCR')).toBe('0.00');
  });

  test('refunds: part twice, then beyond the amount paid is refused; credits come back last', async () => {
    const merchantId = await activeMerchant();
    const wallet = await fundedWallet();
    const paid = await payments
      .pay(
        {
          merchantId,
          orderId: 'o-refund',
          walletId: wallet.walletId,
          amount: '30.00',
          tenders: { wallet: '20.00', credits: '1000.00' },
        },
        CONTEXT,
        NOW,
      )
      .catch((e: unknown) => e);
    // 1000 credits is more than the wallet holds (200): the whole payment is refused, nothing held.
    expect(paid).toBeInstanceOf(ServiceRefusal);
    expect((await account(wallet.accounts.points)).pendingDebits.toFixed(2)).toBe('0.00');
    const payment = await payments.pay(
      {
        merchantId,
        orderId: 'o-refund-2',
        walletId: wallet.walletId,
        amount: '30.00',
        tenders: { wallet: '29.00', credits: '100.00' },
      },
      CONTEXT,
      NOW,
    );
    const first = await payments.refund(
      { paymentId: payment.paymentId, refundId: 'r1', amount: '20.00' },
      CONTEXT,
      NOW,
    );
    expect(first).toMatchObject({ wallet: '20.00', credits: '0.00' });
    const second = await payments.refund(
      { paymentId: payment.paymentId, refundId: 'r2', amount: '9.50' },
      CONTEXT,
      NOW,
    );
    expect(second).toMatchObject({ wallet: '9.00', credits: '50.00' });
    await expect(
      payments.refund({ paymentId: payment.paymentId, refundId: 'r3', amount: '0.60' }, CONTEXT, NOW),
    ).rejects.toMatchObject({
      code: 'refund_exceeds_paid',
    });
    const replay = await payments.refund(
      { paymentId: payment.paymentId, refundId: 'r2', amount: '9.50' },
      CONTEXT,
      NOW,
    );
    expect(replay.replayed).toBe(true);
    expect(await sumOfBalances('CNY')).toBe('0.00');
  });

  test('cancelling a payment (POS void or reversal) reverses every tender and the fee; again answers the same', async () => {
    const merchantId = await activeMerchant();
    const wallet = await fundedWallet();
    const before = {
      cny: (await account(wallet.accounts.main)).posted.toFixed(2),
      ccr: (await account(wallet.accounts.points)).posted.toFixed(2),
    };
    const payment = await payments.pay(
      {
        merchantId,
        orderId: 'o-cancel',
        walletId: wallet.walletId,
        amount: '30.00',
        tenders: { wallet: '29.00', credits: '100.00' },
      },
      CONTEXT,
      NOW,
    );
    const merchant = (await payments.getMerchant(merchantId))!;
    expect((await account(merchant.pendingAccount)).posted.toFixed(2)).toBe('29.82');
    const cancelled = await payments.cancel(payment.paymentId, 'void at the terminal', CONTEXT, NOW);
    expect(cancelled.status).toBe('reversed');
    expect((await payments.cancel(payment.paymentId, 'void at the terminal', CONTEXT, NOW)).status).toBe('reversed');
    expect((await account(wallet.accounts.main)).posted.toFixed(2)).toBe(before.cny);
    expect((await account(wallet.accounts.points)).posted.toFixed(2)).toBe(before.ccr);
    expect((await account(merchant.pendingAccount)).posted.toFixed(2)).toBe('0.00');
    await expect(
      payments.refund({ paymentId: payment.paymentId, refundId: 'after-cancel', amount: '1.00' }, CONTEXT, NOW),
    ).rejects.toMatchObject({ code: 'invalid_transfer_state' });
    expect(await sumOfBalances('CNY')).toBe('0.00');
  });

  test('earmarked funds are refused at a merchant outside the allowed categories', async () => {
    const grocery = await activeMerchant('grocery');
    const wallet = await newWallet('earmarked', ['public_transport']);
    await expect(
      payments.pay(
        { merchantId: grocery, orderId: 'o-e', walletId: wallet.walletId, amount: '1.00', tenders: { wallet: '1.00' } },
        CONTEXT,
        NOW,
      ),
    ).rejects.toMatchObject({ code: 'category_not_allowed' });
  });

  test('the bank-channel simulator calls back at least once: success credits once, above the limit fails', async () => {
    const delivered: string[] = [];
    const channel = new BankChannelSimulator(
      async (callback) => {
        delivered.push(callback.result);
        return payments.confirmTopUp(callback, CONTEXT, NOW);
      },
      { delayMs: 5, deliveries: 3, declineAbove: '500.00' },
    );
    const service = new PaymentService(database, ledger, wallets, PLAINTEXT);
    service.attachChannel(channel);
    const wallet = await newWallet();
    const ok = await service.requestTopUp(wallet.walletId, '120.00', 'bank_sim', NOW);
    const declined = await service.requestTopUp(wallet.walletId, '600.00', 'bank_sim', NOW);
    await expect(service.requestTopUp(wallet.walletId, '1.00', 'no_such_bank', NOW)).rejects.toMatchObject({
      code: 'validation_failed',
    });
    for (let i = 0; i < 200 && channel.pendingCallbacks > 0; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100));
    expect(delivered.sort()).toEqual(['failed', 'failed', 'failed', 'success', 'success', 'success']);
    const rows = await database.query<{ top_up_id: string; status: string; callbacks: number }>(
      'SELECT top_up_id, status, callbacks FROM cp_top_ups WHERE top_up_id = ANY($1::text[]) ORDER BY status',
      [[ok.topUpId, declined.topUpId]],
    );
    expect(rows.map((r) => [r.top_up_id, r.status, r.callbacks])).toEqual([
      [ok.topUpId, 'confirmed', 3],
      [declined.topUpId, 'failed', 3],
    ]);
    expect((await account(wallet.accounts.main)).posted.toFixed(2)).toBe('120.00');
  });

  test('a top-up callback delivered 100 times credits once', async () => {
    const wallet = await newWallet();
    const topUp = await payments.requestTopUp(wallet.walletId, '88.88', 'bank_sim', NOW);
    await Promise.all(
      Array.from({ length: 100 }, () =>
        payments.confirmTopUp({ topUpId: topUp.topUpId, result: 'success', channelTradeNo: 'BANK-0001' }, CONTEXT, NOW),
      ),
    );
    expect((await account(wallet.accounts.main)).posted.toFixed(2)).toBe('88.88');
    await expect(
      payments.confirmTopUp({ topUpId: topUp.topUpId, result: 'failed', channelTradeNo: 'BANK-0001' }, CONTEXT, NOW),
    ).rejects.toMatchObject({ code: 'conflict' });
  });

  test('the payment password locks after 5 failures; the password-free daily limit holds under 50 concurrent payments', async () => {
    const merchantId = await activeMerchant();
    const wallet = await fundedWallet();
    await wallets.setPaymentPassword(wallet.walletId, '135790');
    for (let i = 0; i < 4; i++) {
      await expect(wallets.verifyPaymentPassword(wallet.walletId, '000000', NOW)).rejects.toMatchObject({
        code: 'payment_password_wrong',
      });
    }
    await expect(wallets.verifyPaymentPassword(wallet.walletId, '000000', NOW)).rejects.toMatchObject({
      code: 'payment_password_locked',
    });
    await expect(wallets.verifyPaymentPassword(wallet.walletId, '135790', NOW)).rejects.toMatchObject({
      code: 'payment_password_locked',
    });

    // Default limits: 200.00 a payment, 1000.00 a day; the wallet holds 100.00, so top up first.
    const topUp = await payments.requestTopUp(wallet.walletId, '2000.00', 'bank_sim', NOW);
    await payments.confirmTopUp(
      { topUpId: topUp.topUpId, result: 'success', channelTradeNo: 'BANK-0002' },
      CONTEXT,
      NOW,
    );
    const outcomes = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        payments.pay(
          {
            merchantId,
            orderId: `free-${i}`,
            walletId: wallet.walletId,
            amount: '30.00',
            tenders: { wallet: '30.00' },
          },
          CONTEXT,
          NOW,
        ),
      ),
    );
    const paid = outcomes.filter((o) => o.status === 'fulfilled').length;
    expect(paid).toBe(33); // 33 × 30 = 990 ≤ 1000 < 34 × 30
    for (const o of outcomes)
      if (o.status === 'rejected') expect(o.reason).toMatchObject({ code: 'password_free_limit_exceeded' });
  });
  /** An order paid wholly from the wallet. */
  function walletOrder(merchantId: string, wallet: WalletRecord, orderId: string, amount: string) {
    return { merchantId, orderId, walletId: wallet.walletId, amount, tenders: { wallet: amount } };
  }

  test('one order sent 20 times at once (one group commit) is paid once: one payment, one transfer, one reservation', async () => {
    const merchantId = await activeMerchant();
    const wallet = await fundedWallet();
    const before = (await account(wallet.accounts.main)).posted;
    const input = walletOrder(merchantId, wallet, 'retransmitted-order', '12.34');
    const views = await Promise.all(Array.from({ length: 20 }, () => payments.pay(input, CONTEXT, NOW)));
    expect(new Set(views.map((v) => v.paymentId)).size).toBe(1);
    // A replay that arrived while the first was under way here waited for its end: every answer is the captured one.
    expect(views.map((v) => v.status)).toEqual(views.map(() => 'captured'));
    expect(await payments.getPayment(views[0]!.paymentId)).toMatchObject({ status: 'captured', amount: '12.34' });
    expect(before.minus((await account(wallet.accounts.main)).posted).toFixed(2)).toBe('12.34');
    const usage = await database.query<{ used: string }>(
      'SELECT used::text AS used FROM cp_password_free_usage WHERE wallet_id = $1',
      [wallet.walletId],
    );
    expect(usage.map((u) => u.used)).toEqual(['12.34']);
    // A replay with other details is a conflict, not a second payment.
    await expect(
      payments.pay({ ...input, amount: '12.35', tenders: { wallet: '12.35' } }, CONTEXT, NOW),
    ).rejects.toMatchObject({
      code: 'idempotency_conflict',
    });
  });

  test('a replay whose read saw the order under way, answered after it ended here, is answered as it ended', async () => {
    const merchantId = await activeMerchant();
    const wallet = await fundedWallet();
    const input = walletOrder(merchantId, wallet, 'read-overtaken', '2.50');
    const read = payments.getPayment.bind(payments);
    const execute = ledger.execute.bind(ledger);
    const underWay = (view: PaymentView | undefined): boolean =>
      view !== undefined && ['authorizing', 'capturing'].includes(view.status);
    let replayRead!: () => void;
    const replayHasRead = new Promise<void>((resolve) => (replayRead = resolve));
    // The payment's transfer waits until the replay has read the order under way; that read is answered only once the
    // payment has ended: a stale "under way".
    const held = jest.spyOn(ledger, 'execute').mockImplementation(async (...args) => {
      await replayHasRead;
      return execute(...args);
    });
    let overtaken = 0;
    const stale = jest.spyOn(payments, 'getPayment').mockImplementation(async (paymentId) => {
      const view = await read(paymentId);
      if (overtaken > 0 || !underWay(view)) return view;
      overtaken += 1;
      replayRead();
      while (underWay(await read(paymentId))) await new Promise((resolve) => setTimeout(resolve, 2));
      return view;
    });
    try {
      const [original, again] = await Promise.all([
        payments.pay(input, CONTEXT, NOW),
        payments.pay(input, CONTEXT, NOW),
      ]);
      expect(overtaken).toBe(1);
      expect(original).toMatchObject({ orderId: 'read-overtaken', status: 'captured' });
      expect(again).toEqual(original);
    } finally {
      held.mockRestore();
      stale.mockRestore();
    }
  });

  test('an order under way at another process is answered conflict (ask again), then as it ended', async () => {
    const merchantId = await activeMerchant();
    const wallet = await fundedWallet();
    const input = walletOrder(merchantId, wallet, 'elsewhere', '3.00');
    // What another process's begin leaves before its ledger transfer: the row, authorizing.
    await database.query(
      `INSERT INTO cp_payments (payment_id, merchant_id, order_id, wallet_id, gross, wallet_amount, coupon_amount, credits,
         credits_value, fee, status, business_date, created_at)
       VALUES ($1, $2, 'elsewhere', $3, 3.00, 3.00, 0, 0, 0, 0.02, 'authorizing', '2026-11-23', $4)`,
      [paymentIdOf(merchantId, 'elsewhere'), merchantId, wallet.walletId, NOW.toISOString()],
    );
    await expect(payments.pay(input, CONTEXT, NOW)).rejects.toMatchObject({
      code: 'conflict',
      details: { status: 'authorizing' },
    });
    // The sweep ends it (nothing had moved: failed); asked again, the order is answered as it ended.
    expect(await payments.resumePayments(CONTEXT, NOW)).toBeGreaterThanOrEqual(1);
    expect(await payments.pay(input, CONTEXT, NOW)).toMatchObject({ orderId: 'elsewhere', status: 'failed' });
  });
});

/** A count of fen as a yuan decimal string, by string arithmetic only. */
function fenText(fen: bigint): string {
  const digits = fen.toString().padStart(3, '0');
  return `${digits.slice(0, -2)}.${digits.slice(-2)}`;
}

describe('fees', () => {
  test('property: for every payment, merchant net + fee = gross, the fee half-up to the fen', async () => {
    const fc = (await import('fast-check')).default;
    const wallet = await newWallet();
    const topUp = await payments.requestTopUp(wallet.walletId, '2000000.00', 'bank_sim', NOW);
    await payments.confirmTopUp(
      { topUpId: topUp.topUpId, result: 'success', channelTradeNo: 'FEE-PROP' },
      CONTEXT,
      NOW,
    );
    await wallets.setPaymentPassword(wallet.walletId, '112233');
    const merchants = new Map<number, string>();
    let order = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 5_000_000 }),
        fc.integer({ min: 0, max: 10_000 }),
        async (grossFen, bps) => {
          if (!merchants.has(bps)) {
            const applied = await payments.applyMerchant(
              {
                name: `Fee ${bps}`,
                category: 'green_mall',
                feeRateBps: bps,
                settlementBankAccount: '6222020200112233445',
                areaCode: '0791',
              },
              NOW,
            );
            await payments.reviewMerchant(applied.merchantId, 'approve', 'ok', CONTEXT, NOW);
            merchants.set(bps, applied.merchantId);
          }
          const merchantId = merchants.get(bps)!;
          const pendingAccount = (await payments.getMerchant(merchantId))!.pendingAccount;
          const before = (await account(pendingAccount)).posted;
          const gross = fenText(BigInt(grossFen));
          const paid = await payments
            .pay(
              {
                merchantId,
                orderId: `fee-${++order}`,
                walletId: wallet.walletId,
                amount: gross,
                tenders: { wallet: gross },
                paymentPassword: undefined,
              },
              CONTEXT,
              NOW,
            )
            .catch(async (error: unknown) => {
              // Password-free limits are not what this property is about: pay with the password instead.
              if ((error as { code?: string }).code !== 'password_free_limit_exceeded') throw error;
              return payments.pay(
                {
                  merchantId,
                  orderId: `fee-${order}-pw`,
                  walletId: wallet.walletId,
                  amount: gross,
                  tenders: { wallet: gross },
                  paymentPassword: '112233',
                },
                CONTEXT,
                NOW,
              );
            });
          // The model: integer fen, half-up, independent of decimal.js.
          const feeFen = (BigInt(grossFen) * BigInt(bps) + 5_000n) / 10_000n;
          const fee = fenText(feeFen);
          expect(paid.fee).toBe(fee);
          const credited = (await account(pendingAccount)).posted.minus(before);
          expect(credited.plus(paid.fee).toFixed(2)).toBe(paid.amount);
          expect(new Money(paid.merchantNet).plus(paid.fee).toFixed(2)).toBe(gross);
        },
      ),
      { numRuns: 40 },
    );
  }, 120_000);
});
