import type { CommandContext, EventStore } from '../../core-ledger';
import { Ledger, openPostgresEventStore } from '../../core-ledger';
import { PostgresReadModels, preparedStatements } from '../../projections';
import type { PaymentView, WalletRecord } from '../../services';
import { BankChannelSimulator, PaymentService, PLAINTEXT, ServiceRefusal, WalletService } from '../../services';
import type { PaymentFacts, RiskRule } from '../../services/risk';
import { RISK_LIMITS, RiskService } from '../../services/risk';
import { createTestDatabase } from '../support/databases';
import { openPlatformAccounts } from '../support/ledger-fixtures';

/**
 * Payments with risk control attached, on the real PostgreSQL: an allowing decision is written by the payment's own
 * first statement (one commit for both), and given back when the payment does not go ahead.
 */

const CONTEXT: CommandContext = { actor: 'mall-test', channel: 'api' };
const NOW = new Date('2026-11-23T04:00:00.000Z');

let drop: () => Promise<void>;
let store: EventStore;
let database: PostgresReadModels;
let ledger: Ledger;
let wallets: WalletService;
let payments: PaymentService;
let risk: RiskService;
let simulator: BankChannelSimulator;
let merchantId: string;

const VELOCITY: RiskRule = {
  id: 'five-a-wallet',
  kind: 'velocity',
  action: 'refuse',
  appliesTo: 'payment',
  dimension: 'account',
  windowSeconds: 600,
  maxCount: 5,
};

beforeAll(async () => {
  const db = await createTestDatabase('payrisk');
  drop = db.drop;
  store = await openPostgresEventStore({ connectionString: db.url, maxConnections: 8 });
  database = new PostgresReadModels(db.url, 30);
  ledger = new Ledger(store);
  await openPlatformAccounts(ledger);
  wallets = new WalletService(database, ledger, PLAINTEXT, Buffer.alloc(32, 9));
  payments = new PaymentService(database, ledger, wallets, PLAINTEXT);
  await wallets.install();
  await payments.install();
  // Looks at other processes' decisions and reviews only when told: the conflict test needs a review it has not read.
  risk = new RiskService(database, { dryRun: false, ruleSetRefreshMs: 3_600_000, syncIntervalMs: 3_600_000 });
  await risk.install();
  await risk.publishRuleSet({ schema: 1, name: 'int', rules: [VELOCITY] }, 'risk-officer', NOW);
  payments.attachRisk(risk);
  simulator = new BankChannelSimulator(async () => undefined, {
    delayMs: 600_000,
    deliveries: 1,
    declineAbove: '1000000000.00',
  });
  payments.attachChannel(simulator);
  const applied = await payments.applyMerchant(
    {
      name: 'Risky Shop',
      category: 'food',
      feeRateBps: 60,
      settlementBankAccount: '6222020200112233445',
      areaCode: '0794',
    },
    NOW,
  );
  await payments.reviewMerchant(applied.merchantId, 'approve', 'ok', { actor: 'op-1', channel: 'api' }, NOW);
  merchantId = applied.merchantId;
});

afterAll(async () => {
  simulator.close();
  await ledger.close();
  await database.close();
  await store.close();
  await drop();
});

let nextNumber = 13_700_000_000;
async function fundedWallet(amount: string): Promise<WalletRecord> {
  nextNumber += 1;
  const wallet = await wallets.openWallet(
    { accountNumber: String(nextNumber), name: 'Shopper', areaCode: '0794', customerClass: '2', purpose: 'general' },
    CONTEXT,
    NOW,
  );
  const topUp = await payments.requestTopUp(wallet.walletId, amount, 'bank_sim', NOW);
  await payments.confirmTopUp(
    { topUpId: topUp.topUpId, result: 'success', channelTradeNo: `T${nextNumber}` },
    CONTEXT,
    NOW,
  );
  return wallet;
}

let order = 0;
function pay(wallet: WalletRecord, amount: string, orderId = `o-${++order}`): Promise<PaymentView> {
  return payments.pay(
    { merchantId, orderId, walletId: wallet.walletId, amount, tenders: { wallet: amount } },
    CONTEXT,
    NOW,
  );
}

async function balanceOf(wallet: WalletRecord): Promise<string> {
  const account = await ledger.getAccount(wallet.accounts.main);
  return account!.posted.toFixed(2);
}

interface DecisionRow {
  subject_ref: string;
  outcome: string;
  reserved: boolean;
  released: boolean;
}

async function decisionsOf(wallet: WalletRecord): Promise<DecisionRow[]> {
  // The velocity rule's reservation names the wallet; refusals store their facts in full.
  return database.query<DecisionRow>(
    `SELECT subject_ref, outcome, reserved, released_at IS NOT NULL AS released FROM cp_risk_decision_log
      WHERE coalesce(counted, reservations::text) LIKE '%' || $1 || '%' OR facts->>'accountId' = $1 ORDER BY decided_at, subject_ref`,
    [wallet.walletId],
  );
}

const refusalCode = async (attempt: Promise<unknown>): Promise<string> => {
  try {
    await attempt;
    return 'none';
  } catch (error) {
    if (error instanceof ServiceRefusal) return error.code;
    throw error;
  }
};

describe('a payment and the risk decision that allowed it', () => {
  test('8 payments at once from one wallet, at most 5 in 10 minutes: 5 captured, each with its decision on record', async () => {
    const wallet = await fundedWallet('100.00');
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => pay(wallet, '1.00')));
    const captured = results.filter((r) => r.status === 'fulfilled' && r.value.status === 'captured');
    const refused = results.filter(
      (r) => r.status === 'rejected' && r.reason instanceof ServiceRefusal && r.reason.code === 'risk_refused',
    );
    expect(captured).toHaveLength(5);
    expect(refused).toHaveLength(3);
    const decisions = await decisionsOf(wallet);
    const allowed = decisions.filter((d) => d.outcome === 'allow');
    expect(allowed).toHaveLength(5);
    expect(allowed.every((d) => d.reserved && !d.released)).toBe(true);
    expect(decisions.filter((d) => d.outcome === 'refuse')).toHaveLength(3);
    // Every captured payment has the decision that allowed it, by subject.
    const subjects = new Set(allowed.map((d) => d.subject_ref));
    for (const r of captured)
      expect(subjects.has(`payment:${(r as PromiseFulfilledResult<PaymentView>).value.paymentId}`)).toBe(true);
    expect(risk.counterTotals(`payment|account:${wallet.walletId}|`).count).toBe(5);
    expect(await balanceOf(wallet)).toBe('95.00');
  });

  test('allowed, then refused by the ledger: the decision is given back, in memory and on record', async () => {
    const wallet = await fundedWallet('10.00');
    expect((await pay(wallet, '6.00')).status).toBe('captured');
    expect(await refusalCode(pay(wallet, '6.00'))).toBe('insufficient_funds');
    const decisions = await decisionsOf(wallet);
    expect(decisions.map((d) => [d.outcome, d.released]).sort()).toEqual([
      ['allow', false],
      ['allow', true],
    ]);
    expect(risk.counterTotals(`payment|account:${wallet.walletId}|`)).toEqual({ count: 1, amount: '6' });
  });

  test('a retransmission of a paid order: the payment again, and the second decision released', async () => {
    const wallet = await fundedWallet('10.00');
    const first = await pay(wallet, '2.00', 'retransmitted');
    const again = await pay(wallet, '2.00', 'retransmitted');
    expect(again).toEqual(first);
    const decisions = await decisionsOf(wallet);
    expect(decisions.map((d) => d.released).sort()).toEqual([false, true]);
    expect(risk.counterTotals(`payment|account:${wallet.walletId}|`).count).toBe(1);
  });

  test('a review of the same payment opened by another process meanwhile: refused as a conflict, nothing moves', async () => {
    const wallet = await fundedWallet('10.00');
    // Another process, on a newer rule set, holds this very payment for review; this process has not read it.
    const other = new RiskService(database, { dryRun: false, ruleSetRefreshMs: 0, syncIntervalMs: 3_600_000 });
    await other.install();
    const original = risk.assessDeferred.bind(risk);
    const spy = jest.spyOn(risk, 'assessDeferred').mockImplementationOnce(async (kind, facts: PaymentFacts, now) => {
      await other.publishRuleSet(
        {
          schema: 1,
          name: 'int-review',
          rules: [{ id: 'all', kind: 'transaction_limit', action: 'review', maxAmount: '0.01' }],
        },
        'risk-officer',
        NOW,
      );
      expect((await other.assess('payment', facts, now)).outcome).toBe('hold');
      return original(kind, facts, now);
    });
    try {
      expect(await refusalCode(pay(wallet, '3.00', 'reviewed-elsewhere'))).toBe('conflict');
    } finally {
      spy.mockRestore();
      // Back to the velocity rule for the tests after this one.
      await other.publishRuleSet({ schema: 1, name: 'int', rules: [VELOCITY] }, 'risk-officer', NOW);
    }
    // This process's decision: written, and written released; the other's hold stays in the review queue.
    const decisions = await decisionsOf(wallet);
    expect(decisions.map((d) => d.outcome).sort()).toEqual(['allow', 'hold']);
    const allowed = decisions.find((d) => d.outcome === 'allow')!;
    expect([allowed.reserved, allowed.released]).toEqual([true, true]);
    expect((await payments.getPayment(allowed.subject_ref.slice('payment:'.length)))?.status).toBe('failed');
    expect(risk.counterTotals(`payment|account:${wallet.walletId}|`).count).toBe(0);
    expect(await balanceOf(wallet)).toBe('10.00');
  });
});

describe('plain allows written a row of many (cp_risk_allows)', () => {
  const subjectsOf = (views: readonly PaymentView[]): string[] => views.map((v) => `payment:${v.paymentId}`);

  test('found by id, released once (then a row of its own), and counted by other processes from the row', async () => {
    const wallet = await fundedWallet('10.00');
    const paid = await Promise.all([1, 2, 3].map(() => pay(wallet, '1.00')));
    const subjects = subjectsOf(paid);
    expect(
      await database.query('SELECT 1 FROM cp_risk_decisions WHERE subject_ref = ANY($1)', [subjects]),
    ).toHaveLength(0);
    const inRows = await database.query<{ decision_id: string }>(
      'SELECT decision_id FROM cp_risk_allowed_decisions WHERE subject_ref = ANY($1) ORDER BY decided_at, decision_id',
      [subjects],
    );
    expect(inRows).toHaveLength(3);
    const ids = inRows.map((r) => r.decision_id);
    for (const id of ids) {
      const record = (await risk.decision(id))!;
      expect([record.outcome, record.reserved, record.releasedAt, record.facts]).toEqual(['allow', true, null, null]);
      expect(record.reservations.map((r) => r.count)).toEqual([1]);
    }
    // Another process counts them from the rows at its start.
    const other = new RiskService(database, { dryRun: false, ruleSetRefreshMs: 3_600_000, syncIntervalMs: 3_600_000 });
    await other.install();
    const key = `payment|account:${wallet.walletId}|`;
    expect(other.counterTotals(key)).toEqual({ count: 3, amount: '3' });

    expect(await risk.release(ids[0]!, NOW)).toEqual({ status: 'released' });
    expect(await risk.release(ids[0]!, NOW)).toEqual({ status: 'already_released' });
    expect(risk.counterTotals(key)).toEqual({ count: 2, amount: '2' });
    expect((await risk.decision(ids[0]!))!.releasedAt).toBe(NOW.toISOString());
    // Once in the log: its own row (released) wins over its place in the row of many.
    const logged = await database.query<{ decision_id: string; released: boolean }>(
      `SELECT decision_id, released_at IS NOT NULL AS released FROM cp_risk_decision_log
        WHERE subject_ref = ANY($1) ORDER BY decided_at, decision_id`,
      [subjects],
    );
    expect(logged).toEqual(ids.map((id, i) => ({ decision_id: id, released: i === 0 })));
    await other.catchUp();
    expect(other.counterTotals(key)).toEqual({ count: 2, amount: '2' });
    const late = new RiskService(database, { dryRun: false, ruleSetRefreshMs: 3_600_000, syncIntervalMs: 3_600_000 });
    await late.install();
    expect(late.counterTotals(key)).toEqual({ count: 2, amount: '2' });
    await expect(risk.release('01a24d7c-4e48-720d-86f0-4313f1f216d8', NOW)).rejects.toMatchObject({
      code: 'not_found',
    });
  });

  test('decisions of one statement further apart than a row may span are written a row each', async () => {
    const facts = (n: number): PaymentFacts => ({
      subjectRef: `payment:span-${n}`,
      amount: '1.00',
      accountId: `W-span-${n}`,
      customerClass: '2',
      walletPurpose: 'general',
      merchantId,
      merchantCategory: 'food',
      channel: 'api',
    });
    const record = async (at: readonly Date[]): Promise<{ own: number; inRows: number }> => {
      const taken = await Promise.all(
        at.map((when, i) => risk.assessDeferred('payment', facts(i + at.length * 10), when)),
      );
      const deferred = taken.map((t) => {
        if (!('deferred' in t)) throw new Error('a plain allow is deferred');
        return t.deferred;
      });
      const { ctes, params } = risk.recordingSql(deferred, 1);
      await database.query(`WITH ${ctes} SELECT 1`, params);
      for (const d of deferred) risk.settleDeferred(d, 'written');
      const ids = deferred.map((d) => d.decisionId);
      const [own, inRows] = await Promise.all([
        database.query('SELECT 1 FROM cp_risk_decisions WHERE decision_id = ANY($1)', [ids]),
        database.query('SELECT 1 FROM cp_risk_allowed_decisions WHERE decision_id = ANY($1)', [ids]),
      ]);
      for (const id of ids) expect((await risk.decision(id))?.outcome).toBe('allow');
      return { own: own.length, inRows: inRows.length };
    };
    const later = (ms: number): Date => new Date(NOW.getTime() + ms);
    expect(await record([NOW, later(RISK_LIMITS.allowRowSpanMs)])).toEqual({ own: 0, inRows: 2 });
    expect(await record([NOW, later(RISK_LIMITS.allowRowSpanMs + 1), later(1)])).toEqual({ own: 3, inRows: 0 });
  });
});

/**
 * A prepared statement is planned once per connection, on its sixth run: in a fresh database, on empty tables. Its
 * generic plan must still find rows by key, never scan a table that grows with every payment (a capture that scanned
 * the partial index of unfinished payments grew slower with every payment until a vacuum).
 */
test('the generic plan of every prepared statement reaches growing tables by key, planned on near-empty tables', async () => {
  const prepared = preparedStatements();
  expect([...prepared.keys()].sort()).toEqual(
    expect.arrayContaining([
      'cp_payment_begin_risk',
      'cp_payment_capture',
      'cp_risk_record',
      'cp_wallets_by_wallet_id',
    ]),
  );
  const growing =
    'cp_payments|cp_risk_decisions|cp_risk_allows|cp_risk_reviews|cp_events|cp_outbox|cp_password_free_usage|cp_wallets';
  const scans = new RegExp(`(Seq Scan|Bitmap Heap Scan) on (${growing})\\b`, 'g');
  const found: string[] = [];
  await database.transaction(async (tx) => {
    await tx.query('SET LOCAL plan_cache_mode = force_generic_plan');
    for (const [name, text] of prepared) {
      const parameters = Math.max(0, ...[...text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])));
      await tx.query(`PREPARE plan_probe_${name} AS ${text}`);
      const plan = await tx.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN EXECUTE plan_probe_${name}(${Array.from({ length: parameters }, () => 'NULL').join(', ')})`,
      );
      for (const match of plan
        .map((row) => row['QUERY PLAN'])
        .join('\n')
        .matchAll(scans))
        found.push(`${name}: ${match[0]}`);
      await tx.query(`DEALLOCATE plan_probe_${name}`);
    }
  });
  expect(found).toEqual([]);
});

/** A value of each type a statement casts its parameters to: arrays of one, the batch whose custom plan is cheapest. */
const SAMPLE_OF_TYPE: Readonly<Record<string, string>> = {
  text: 'x',
  uuid: '00000000-0000-7000-8000-000000000000',
  integer: '1',
  bigint: '1',
  numeric: '1',
  boolean: 'true',
  date: '2026-11-23',
  timestamptz: '2026-11-23T04:00:00Z',
  json: '{}',
  jsonb: '{}',
};

/**
 * PostgreSQL plans a prepared statement afresh on every run for as long as its generic plan looks costlier than the
 * custom plans so far. A custom plan sees each array's length and a generic one guesses, so a statement that joins an
 * unnested parameter could be planned again on every run, forever: the payment's first statement with risk control
 * spent ~440 µs a run planning (pg_stat_statements, session 12). Each named statement, run six times with arrays of
 * one element, must have been planned generically by then.
 */
test('every prepared statement settles on its generic plan, even for batches of one', async () => {
  const prepared = preparedStatements();
  expect(prepared.size).toBeGreaterThanOrEqual(3);
  const customForever: string[] = [];
  await database.transaction(async (tx) => {
    for (const [name, text] of prepared) {
      const literals = new Map<number, string>();
      for (const m of text.matchAll(/\$(\d+)::(\w+)(\[\])?/g)) {
        const sample = SAMPLE_OF_TYPE[m[2]!];
        if (sample === undefined) throw new Error(`${name}: no sample of type ${m[2]!}`);
        literals.set(Number(m[1]), `'${m[3] === undefined ? sample : `{"${sample}"}`}'`);
      }
      const parameters = Math.max(0, ...[...text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])));
      // A NULL would let the planner fold what it touches: every parameter is cast, and given a value of its type.
      const values = Array.from({ length: parameters }, (_, i) => {
        const literal = literals.get(i + 1);
        if (literal === undefined) throw new Error(`${name}: $${i + 1} has no cast`);
        return literal;
      }).join(', ');
      await tx.query(`PREPARE plan_choice_${name} AS ${text}`);
      for (let run = 0; run < 6; run++) await tx.query(`EXPLAIN EXECUTE plan_choice_${name}(${values})`);
      const [choice] = await tx.query<{ generic_plans: string }>(
        'SELECT generic_plans::text FROM pg_prepared_statements WHERE name = $1',
        [`plan_choice_${name}`],
      );
      if (Number(choice!.generic_plans) === 0) customForever.push(name);
      await tx.query(`DEALLOCATE plan_choice_${name}`);
    }
  });
  expect(customForever).toEqual([]);
});
