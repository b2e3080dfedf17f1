import type { Amount } from '../../core-ledger';
import { Money } from '../../core-ledger';
import { PostgresReadModels } from '../../projections';
import { IpAllowList } from '../../security';
import type { ServiceDatabase, SqlStatement } from '../../services';
import { ServiceRefusal } from '../../services';
import type {
  CarbonRecordFacts,
  DecisionRecord,
  FiredRule,
  PaymentFacts,
  RiskAssessment,
  RiskRule,
  RuleSet,
} from '../../services/risk';
import { compileRuleSet, InMemoryRiskEngine, RiskService } from '../../services/risk';
import { DEFAULT_DAY, simulateDay } from '../../services/risk/simulated-day';
import { STARTER_RULE_SET } from '../../services/risk/starter-rule-set';
import { createTestDatabase } from '../support/databases';

/** The risk engine on the real PostgreSQL: counters under concurrency, decision records, reviews, rule versions. */

const NOW = new Date('2026-11-23T04:00:00.000Z');
const MINUTE = 60_000;

let drop: () => Promise<void>;
let database: PostgresReadModels;
let risk: RiskService;

beforeAll(async () => {
  const db = await createTestDatabase('risk');
  drop = db.drop;
  database = new PostgresReadModels(db.url, 25);
  risk = new RiskService(database, { dryRun: false, ruleSetRefreshMs: 60_000, syncIntervalMs: 200 });
  await risk.install();
});

afterAll(async () => {
  await database.close();
  await drop();
});

let seq = 0;
function pay(amount: string, extra: Partial<PaymentFacts> = {}): PaymentFacts {
  seq += 1;
  return {
    subjectRef: `payment:int-${seq}`,
    amount,
    accountId: `W-${seq}`,
    customerClass: '2',
    walletPurpose: 'general',
    merchantId: 'M1',
    merchantCategory: 'food',
    channel: 'pos',
    ...extra,
  };
}

function walk(accountId: string, steps: string, partnerId = 'P-health'): CarbonRecordFacts {
  seq += 1;
  return {
    subjectRef: `carbon:${partnerId}:int-${seq}`,
    partnerId,
    accountId,
    behaviour: 'walking',
    quantity: steps,
    unit: 'step',
    startAt: new Date(NOW.getTime() - 70 * MINUTE).toISOString(),
    endAt: new Date(NOW.getTime() - 10 * MINUTE).toISOString(),
  };
}

async function publish(rules: RiskRule[], extra: Partial<RuleSet> = {}): Promise<number> {
  return (await risk.publishRuleSet({ schema: 1, name: 'int', rules, ...extra }, 'risk-officer', NOW)).version;
}

function counter(prefix: string): { count: number; amount: string } {
  const totals = risk.counterTotals(prefix);
  return { count: totals.count, amount: new Money(totals.amount).toString() };
}

const outcomes = (results: readonly RiskAssessment[]): Record<string, number> =>
  results.reduce<Record<string, number>>((acc, r) => ({ ...acc, [r.outcome]: (acc[r.outcome] ?? 0) + 1 }), {});

describe('rule sets', () => {
  test('every version is kept and audited; decisions name the version in force; an invalid set is refused', async () => {
    const v1 = await publish([{ id: 'limit', kind: 'transaction_limit', action: 'refuse', maxAmount: '100.00' }]);
    const first = await risk.assess('payment', pay('150.00'), NOW);
    expect(first).toMatchObject({ outcome: 'refuse', ruleSetVersion: v1, isoResponseCode: '61' });
    const v2 = await publish([{ id: 'limit', kind: 'transaction_limit', action: 'refuse', maxAmount: '200.00' }]);
    expect(v2).toBe(v1 + 1);
    expect(await risk.assess('payment', pay('150.00'), NOW)).toMatchObject({ outcome: 'allow', ruleSetVersion: v2 });
    expect((await risk.ruleSet(v1))?.ruleSet.rules[0]).toMatchObject({ maxAmount: '100.00' });
    expect((await risk.listRuleSets()).map((r) => r.version)).toEqual(expect.arrayContaining([v1, v2]));
    const audit = await risk.auditTrail(10);
    expect(audit.filter((a) => a.action === 'publish_rule_set').map((a) => a.subject)).toEqual(
      expect.arrayContaining([`rule-set:${v1}`, `rule-set:${v2}`]),
    );
    expect(audit[0]).toMatchObject({ actor: 'risk-officer', detail: expect.objectContaining({ version: v2 }) });
    const refused = risk.publishRuleSet({ schema: 1, name: 'bad', rules: [{ id: 'x', kind: 'teleport' }] }, 'eve', NOW);
    await expect(refused).rejects.toMatchObject({ code: 'validation_failed' });
    expect(risk.activeVersion).toBe(v2);
    // The first decision is still explained under the version it was made with.
    expect((await risk.explain(first.decisionId)).consistent).toBe(true);
  });
});

describe('thresholds on PostgreSQL', () => {
  test('each rule kind at, just below and just above its threshold', async () => {
    await publish([
      { id: 'tx', kind: 'transaction_limit', action: 'refuse', maxAmount: '500.00' },
      { id: 'day', kind: 'daily_limit', action: 'refuse', per: 'account', maxAmount: '1000.00' },
      {
        id: 'vel',
        kind: 'velocity',
        action: 'refuse',
        appliesTo: 'payment',
        dimension: 'card',
        windowSeconds: 300,
        maxCount: 2,
      },
      { id: 'ip', kind: 'block_list', action: 'refuse', list: 'ip', entries: ['198.51.100.0/30'] },
      { id: 'speed', kind: 'trip_speed', action: 'refuse', maxKmPerHour: { metro: '120' } },
      { id: 'steps', kind: 'daily_quantity', action: 'refuse', behaviour: 'walking', maxQuantity: '80000' },
    ]);
    const o = async (kind: 'payment' | 'carbon_record', facts: PaymentFacts | CarbonRecordFacts, at = NOW) =>
      (await risk.assess(kind, facts, at)).outcome;
    // per transaction
    expect(await o('payment', pay('499.99'))).toBe('allow');
    expect(await o('payment', pay('500.00'))).toBe('allow');
    expect(await o('payment', pay('500.01'))).toBe('refuse');
    // per day: 500 + 499.99 below, + 0.01 at, + 0.01 above
    const d = { accountId: 'W-day', businessDate: '2026-11-23' };
    expect(await o('payment', pay('500.00', d))).toBe('allow');
    expect(await o('payment', pay('499.99', d))).toBe('allow');
    expect(await o('payment', pay('0.01', d))).toBe('allow');
    expect(await o('payment', pay('0.01', d))).toBe('refuse');
    // velocity: 2 per 5 minutes per card
    expect(await o('payment', pay('1.00', { cardRef: 'card-v' }))).toBe('allow');
    expect(await o('payment', pay('1.00', { cardRef: 'card-v' }), new Date(NOW.getTime() + 4 * MINUTE))).toBe('allow');
    expect(await o('payment', pay('1.00', { cardRef: 'card-v' }), new Date(NOW.getTime() + 4 * MINUTE))).toBe('refuse');
    expect(await o('payment', pay('1.00', { cardRef: 'card-v' }), new Date(NOW.getTime() + 5 * MINUTE))).toBe('allow');
    // block list: the /30 holds .0 to .3
    expect(await o('payment', pay('1.00', { ip: '198.51.100.3' }))).toBe('refuse');
    expect(await o('payment', pay('1.00', { ip: '198.51.100.4' }))).toBe('allow');
    // trip speed: 40 km in 20 minutes is 120 km/h
    const metro = (km: string): CarbonRecordFacts => ({
      ...walk('A-metro', '1'),
      behaviour: 'metro',
      unit: 'km',
      quantity: km,
      startAt: new Date(NOW.getTime() - 30 * MINUTE).toISOString(),
      endAt: new Date(NOW.getTime() - 10 * MINUTE).toISOString(),
    });
    expect(await o('carbon_record', metro('39.99'))).toBe('allow');
    expect(await o('carbon_record', metro('40.00'))).toBe('allow');
    expect(await o('carbon_record', metro('40.01'))).toBe('refuse');
    // steps per day
    expect(await o('carbon_record', walk('A-steps', '79999'))).toBe('allow');
    expect(await o('carbon_record', walk('A-steps', '1'))).toBe('allow');
    expect(await o('carbon_record', walk('A-steps', '1'))).toBe('refuse');
  });
});

describe('50 concurrent requests for the same account', () => {
  test.each([
    [49, 49],
    [50, 50],
    [51, 50],
  ])('velocity of at most %i: exactly %i of 50 allowed, and the counter says so', async (maxCount, allowed) => {
    await publish([
      {
        id: 'vel',
        kind: 'velocity',
        action: 'refuse',
        appliesTo: 'payment',
        dimension: 'account',
        windowSeconds: 600,
        maxCount,
      },
    ]);
    const account = `W-conc-${maxCount}`;
    // One process: its decisions settle one after another on its counters, whatever the concurrency.
    const results = await Promise.all(
      Array.from({ length: 50 }, () => risk.assess('payment', pay('1.00', { accountId: account }), NOW)),
    );
    expect(outcomes(results)).toEqual({ allow: allowed, ...(allowed < 50 ? { refuse: 50 - allowed } : {}) });
    expect(counter(`payment|account:${account}|`)).toEqual({ count: allowed, amount: String(allowed) });
    // Another process sees them once it has looked at the decision log: its next one is refused at the limit.
    const other = new RiskService(database, { dryRun: false, ruleSetRefreshMs: 60_000, syncIntervalMs: 200 });
    await other.install();
    expect(other.counterTotals(`payment|account:${account}|`)).toEqual({ count: allowed, amount: String(allowed) });
    const next = await other.assess('payment', pay('1.00', { accountId: account }), NOW);
    expect(next.outcome).toBe(allowed < maxCount ? 'allow' : 'refuse');
  });

  test('ten processes: a decision of one is counted by the others at their next look, and a release too', async () => {
    await publish([
      {
        id: 'vel',
        kind: 'velocity',
        action: 'refuse',
        appliesTo: 'payment',
        dimension: 'account',
        windowSeconds: 600,
        maxCount: 20,
      },
    ]);
    const account = 'W-ten';
    const engines = await Promise.all(
      Array.from({ length: 10 }, async () => {
        const engine = new RiskService(database, { dryRun: false, ruleSetRefreshMs: 60_000, syncIntervalMs: 60_000 });
        await engine.install();
        return engine;
      }),
    );
    // Each decides twice, then every one looks: each counts all 20, and a 21st is refused by any of them.
    const decided: RiskAssessment[] = [];
    for (const engine of engines)
      for (let i = 0; i < 2; i++)
        decided.push(await engine.assess('payment', pay('1.00', { accountId: account }), NOW));
    expect(outcomes(decided)).toEqual({ allow: 20 });
    for (const engine of engines) await engine.catchUp();
    for (const engine of engines) expect(engine.counterTotals(`payment|account:${account}|`).count).toBe(20);
    expect((await engines[3]!.assess('payment', pay('1.00', { accountId: account }), NOW)).outcome).toBe('refuse');
    // A payment that failed gives its count back, in every process once it has looked.
    expect(await engines[0]!.release(decided[0]!.decisionId, NOW)).toEqual({ status: 'released' });
    for (const engine of engines) await engine.catchUp();
    for (const engine of engines) expect(engine.counterTotals(`payment|account:${account}|`).count).toBe(19);
    expect((await engines[7]!.assess('payment', pay('1.00', { accountId: account }), NOW)).outcome).toBe('allow');
  });
});

describe('counting across processes, without a record per decision', () => {
  const velocity = (id: string): RiskRule => ({
    id,
    kind: 'velocity',
    action: 'refuse',
    appliesTo: 'payment',
    dimension: 'account',
    windowSeconds: 600,
    maxCount: 100,
  });
  const engine = async (): Promise<RiskService> => {
    const started = new RiskService(database, { dryRun: false, ruleSetRefreshMs: 60_000, syncIntervalMs: 60_000 });
    await started.install();
    return started;
  };

  test('a process releasing another process’s decision before it has read it counts it never, nor below zero', async () => {
    await publish([velocity('vel-cross')]);
    const [first, second] = [await engine(), await engine()];
    const account = 'W-cross-unread';
    const decided = await first.assess('payment', pay('2.00', { accountId: account }), NOW);
    expect(decided.outcome).toBe('allow');
    // The second has not looked since: it never counted the decision, so its release takes nothing out.
    expect(await second.release(decided.decisionId, NOW)).toEqual({ status: 'released' });
    expect(second.counterTotals(`payment|account:${account}|`).count).toBe(0);
    for (let i = 0; i < 2; i++) {
      await second.catchUp();
      await first.catchUp();
    }
    expect(second.counterTotals(`payment|account:${account}|`).count).toBe(0);
    expect(first.counterTotals(`payment|account:${account}|`).count).toBe(0);
  });

  test('a decision read, then released elsewhere, is taken out once however often the looks read it again', async () => {
    await publish([velocity('vel-again')]);
    const [first, second, third] = [await engine(), await engine(), await engine()];
    const account = 'W-cross-read';
    const decided = await Promise.all(
      [1, 2, 3].map(async () => first.assess('payment', pay('2.00', { accountId: account }), NOW)),
    );
    await second.catchUp();
    await third.catchUp();
    expect(second.counterTotals(`payment|account:${account}|`).count).toBe(3);
    // The third releases one the second has counted; every look within the overlap reads the release again.
    expect(await third.release(decided[0]!.decisionId, NOW)).toEqual({ status: 'released' });
    expect(third.counterTotals(`payment|account:${account}|`).count).toBe(2);
    for (let i = 0; i < 3; i++) for (const e of [first, second, third]) await e.catchUp();
    for (const e of [first, second, third]) expect(e.counterTotals(`payment|account:${account}|`).count).toBe(2);
  });

  test('a process started just after a release does not take it out again', async () => {
    await publish([velocity('vel-start')]);
    const account = 'W-cross-start';
    const decided = await Promise.all(
      [1, 2].map(async () => risk.assess('payment', pay('2.00', { accountId: account }), NOW)),
    );
    // Recorded a minute ago: before what the first look after a start reads again.
    await database.query(
      `UPDATE cp_risk_decisions SET recorded_at = recorded_at - interval '1 minute' WHERE decision_id = ANY($1)`,
      [decided.map((d) => d.decisionId)],
    );
    expect(await risk.release(decided[0]!.decisionId, NOW)).toEqual({ status: 'released' });
    const late = await engine();
    expect(late.counterTotals(`payment|account:${account}|`).count).toBe(1);
    for (let i = 0; i < 2; i++) await late.catchUp();
    expect(late.counterTotals(`payment|account:${account}|`).count).toBe(1);
    expect(counter(`payment|account:${account}|`).count).toBe(1);
  });
});

describe('limits over time', () => {
  test('daily amount: 50 × 30.00 against 1000.00 allows exactly 33 (990.00), then releases give room back', async () => {
    await publish([{ id: 'day', kind: 'daily_limit', action: 'refuse', per: 'account', maxAmount: '1000.00' }]);
    const facts = (): PaymentFacts => pay('30.00', { accountId: 'W-conc-day', businessDate: '2026-11-23' });
    const results = await Promise.all(Array.from({ length: 50 }, () => risk.assess('payment', facts(), NOW)));
    expect(outcomes(results)).toEqual({ allow: 33, refuse: 17 });
    expect(counter('payment|account:W-conc-day|')).toEqual({ count: 33, amount: '990' });
    // Payments that failed after being allowed give their reservation back, once, even when released concurrently.
    const allowed = results.filter((r) => r.outcome === 'allow');
    const released = await Promise.all(
      [...allowed.slice(0, 3), ...allowed.slice(0, 3)].map((r) => risk.release(r.decisionId)),
    );
    expect(released.map((r) => r.status).sort()).toEqual([
      ...Array(3).fill('already_released'),
      ...Array(3).fill('released'),
    ]);
    expect(counter('payment|account:W-conc-day|')).toEqual({ count: 30, amount: '900' });
    const refusedOne = results.find((r) => r.outcome === 'refuse')!;
    expect(await risk.release(refusedOne.decisionId)).toEqual({ status: 'nothing_reserved' });
    await expect(risk.release('no-such-decision')).rejects.toBeInstanceOf(ServiceRefusal);
    const again = await Promise.all(Array.from({ length: 10 }, () => risk.assess('payment', facts(), NOW)));
    expect(outcomes(again)).toEqual({ allow: 3, refuse: 7 });
  });

  test('steps per day and partner bursts hold under concurrency too', async () => {
    await publish([
      { id: 'steps', kind: 'daily_quantity', action: 'refuse', behaviour: 'walking', maxQuantity: '80000' },
      {
        id: 'burst',
        kind: 'velocity',
        action: 'review',
        appliesTo: 'carbon_record',
        dimension: 'partner',
        windowSeconds: 60,
        maxCount: 20,
      },
    ]);
    const steps = await Promise.all(
      Array.from({ length: 50 }, () => risk.assess('carbon_record', walk('A-conc', '3000', `P-s${seq}`), NOW)),
    );
    expect(outcomes(steps)).toEqual({ allow: 26, refuse: 24 }); // 26 × 3,000 = 78,000; the 27th would be 81,000
    const burst = await Promise.all(
      Array.from({ length: 50 }, (_, i) => risk.assess('carbon_record', walk(`A-b${i}`, '100', 'P-burst'), NOW)),
    );
    expect(outcomes(burst)).toEqual({ allow: 20, hold: 30 });
  });
});

describe('reviews', () => {
  test('a hold waits in the queue; approved, the same event passes once; rejected, it is refused', async () => {
    await publish([{ id: 'big', kind: 'transaction_limit', action: 'review', maxAmount: '2000.00' }]);
    const engine = risk;
    const facts = pay('2500.00');
    const held = await engine.assess('payment', facts, NOW);
    expect(held).toMatchObject({
      outcome: 'hold',
      code: 'risk_review',
      isoResponseCode: '61',
      reviewId: held.decisionId,
    });
    // Asked again before anyone looked: still held, no second review.
    expect(await engine.assess('payment', facts, NOW)).toMatchObject({ outcome: 'hold', reviewId: held.decisionId });
    const queue = await engine.listReviews({ status: 'open', limit: 500 });
    expect(queue.reviews.filter((r) => r.subjectRef === facts.subjectRef)).toHaveLength(1);
    const view = queue.reviews.find((r) => r.reviewId === held.reviewId)!;
    expect(view).toMatchObject({ primaryRule: 'big', facts: expect.objectContaining({ amount: '2500.00' }) });
    expect(view.firedRules[0]).toMatchObject({ ruleId: 'big', inputs: { amount: '2500.00', maxAmount: '2000.00' } });

    const approved = await engine.approveReview(held.reviewId!, 'operator-1', 'customer called: buying a fridge', NOW);
    expect(approved).toMatchObject({ status: 'approved', reviewer: 'operator-1' });
    await expect(engine.approveReview(held.reviewId!, 'operator-2', 'again', NOW)).rejects.toMatchObject({
      code: 'conflict',
    });
    await expect(engine.rejectReview('nope', 'operator-2', 'x', NOW)).rejects.toMatchObject({ code: 'not_found' });
    const through = await engine.assess('payment', facts, NOW);
    expect(through).toMatchObject({ outcome: 'allow', reviewOverride: 'approved', wouldOutcome: 'hold' });
    expect((await engine.review(held.reviewId!))?.consumedBy).toBe(through.decisionId);
    // The approval is used up; other facts under the same subject are a new event.
    expect((await engine.assess('payment', facts, NOW)).outcome).toBe('hold');
    expect((await engine.assess('payment', { ...facts, amount: '2600.00' }, NOW)).outcome).toBe('hold');

    const other = pay('3000.00');
    const held2 = await engine.assess('payment', other, NOW);
    await engine.rejectReview(held2.reviewId!, 'operator-1', 'card reported stolen', NOW);
    expect(await engine.assess('payment', other, NOW)).toMatchObject({
      outcome: 'refuse',
      code: 'risk_refused',
      isoResponseCode: '61',
      reviewOverride: 'rejected',
    });
    const audit = await engine.auditTrail(5);
    expect(audit.map((a) => `${a.action} ${a.subject}`)).toEqual(
      expect.arrayContaining([`approve_review review:${held.reviewId}`, `reject_review review:${held2.reviewId}`]),
    );
    // Pages: one at a time, in order, to the end.
    const seen: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await engine.listReviews({ status: 'open', limit: 1, ...(after ? { after } : {}) });
      seen.push(...page.reviews.map((r) => r.reviewId));
      if (!page.next) break;
      after = page.next;
    }
    expect(seen).toEqual((await engine.listReviews({ status: 'open', limit: 500 })).reviews.map((r) => r.reviewId));
  });

  test('a look that read a review before this process decided it does not put the older status back', async () => {
    await publish([{ id: 'big', kind: 'transaction_limit', action: 'review', maxAmount: '2000.00' }]);
    // The next look's read of the reviews runs at once; its answer is held until the approval has been made here.
    let holdNextReviewRead = false;
    let reviewRead!: () => void;
    const reviewReadDone = new Promise<void>((resolve) => (reviewRead = resolve));
    let releaseAnswer!: () => void;
    const answerReleased = new Promise<void>((resolve) => (releaseAnswer = resolve));
    const lookReadsReviews = /FROM cp_risk_reviews\s+WHERE recorded_at/;
    const slowReviews: ServiceDatabase = {
      exec: (script) => database.exec(script),
      transaction: (work) => database.transaction(work),
      query: async <Row>(statement: SqlStatement, params?: readonly unknown[]): Promise<Row[]> => {
        const rows = await database.query<Row>(statement, params);
        if (holdNextReviewRead && typeof statement === 'string' && lookReadsReviews.test(statement)) {
          holdNextReviewRead = false;
          reviewRead();
          await answerReleased;
        }
        return rows;
      },
    };
    const engine = new RiskService(slowReviews, { dryRun: false, ruleSetRefreshMs: 60_000, syncIntervalMs: 60_000 });
    await engine.install();
    const facts = pay('2500.00');
    const held = await engine.assess('payment', facts, NOW);
    expect(held).toMatchObject({ outcome: 'hold', reviewId: held.decisionId });

    holdNextReviewRead = true;
    const look = engine.catchUp();
    await reviewReadDone; // the look has read the review open
    await engine.approveReview(held.reviewId!, 'operator-1', 'customer called', NOW);
    releaseAnswer();
    await look;

    expect(await engine.assess('payment', facts, NOW)).toMatchObject({ outcome: 'allow', reviewOverride: 'approved' });
    expect((await engine.assess('payment', facts, NOW)).outcome).toBe('hold');
  });
});

describe('the registry of processes', () => {
  test('a starting process forgets processes unseen beyond the longest window, and keeps the others', async () => {
    await database.query(
      `INSERT INTO cp_risk_instances (instance_id, started_at, seen_at) VALUES
         ('gone', now() - interval '5 days', now() - interval '3 days'),
         ('recent', now() - interval '5 days', now() - interval '1 hour')`,
    );
    const starting = new RiskService(database, { dryRun: false, ruleSetRefreshMs: 60_000, syncIntervalMs: 200 });
    await starting.install();
    const left = await database.query<{ instance_id: string }>(
      `SELECT instance_id FROM cp_risk_instances WHERE instance_id IN ('gone', 'recent')`,
    );
    expect(left.map((r) => r.instance_id)).toEqual(['recent']);
  });
});

describe('decision records', () => {
  test('an approval asked for by two processes at once lets the event through once', async () => {
    await publish([{ id: 'big', kind: 'transaction_limit', action: 'review', maxAmount: '2000.00' }]);
    const facts = pay('2700.00');
    const held = await risk.assess('payment', facts, NOW);
    await risk.approveReview(held.reviewId!, 'operator-1', 'verified by phone', NOW);
    const engines = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const engine = new RiskService(database, { dryRun: false, ruleSetRefreshMs: 60_000, syncIntervalMs: 200 });
        await engine.install();
        return engine;
      }),
    );
    // Every process reads the approval as unused; only one statement may use it. The others' decisions are not
    // recorded: they answer conflict (send again), and sent again the event is the rules' to decide.
    const settled = await Promise.allSettled(engines.map((engine) => engine.assess('payment', facts, NOW)));
    const results = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    expect(results.map((r) => [r.outcome, r.reviewOverride])).toEqual([['allow', 'approved']]);
    for (const r of settled) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'conflict' });
    const loser = engines[settled.findIndex((r) => r.status === 'rejected')]!;
    await loser.catchUp();
    expect(await loser.assess('payment', facts, NOW)).toMatchObject({ outcome: 'hold' });
    const winner = results.find((r) => r.reviewOverride === 'approved')!;
    expect((await risk.review(held.reviewId!))?.consumedBy).toBe(winner.decisionId);
  });

  test('a plain allow keeps digest, version and reservations only; anything that fired is kept in full', async () => {
    await publish([{ id: 'tx', kind: 'transaction_limit', action: 'refuse', maxAmount: '100.00' }]);
    const allowed = await risk.assess('payment', pay('10.00'), NOW);
    const record = (await risk.decision(allowed.decisionId))!;
    expect(record).toMatchObject({ outcome: 'allow', facts: null, firedRules: [], reserved: false });
    expect(record.factsDigest).toMatch(/^[0-9a-f]{64}$/);
    await expect(risk.explain(allowed.decisionId)).rejects.toMatchObject({ code: 'not_found' });
    const refused = await risk.assess('payment', pay('100.01'), NOW);
    const full = (await risk.decision(refused.decisionId))!;
    expect(full.facts).toMatchObject({ amount: '100.01' });
    expect(full.firedRules).toEqual([
      expect.objectContaining({ ruleId: 'tx', inputs: { amount: '100.01', maxAmount: '100.00' } }),
    ]);
  });
});

describe('dry run', () => {
  test('an engine in dry run scores, records what it would have done and allows; its counters still count', async () => {
    const version = await publish([
      { id: 'tx', kind: 'transaction_limit', action: 'refuse', maxAmount: '100.00' },
      {
        id: 'vel',
        kind: 'velocity',
        action: 'refuse',
        appliesTo: 'payment',
        dimension: 'account',
        windowSeconds: 600,
        maxCount: 1,
      },
    ]);
    const shadow = new RiskService(database, { dryRun: true, ruleSetRefreshMs: 60_000, syncIntervalMs: 200 });
    await shadow.refresh();
    const results = [
      await shadow.assess('payment', pay('150.00', { accountId: 'W-dry' }), NOW),
      await shadow.assess('payment', pay('10.00', { accountId: 'W-dry' }), NOW),
    ];
    expect(results.map((r) => [r.outcome, r.wouldOutcome, r.dryRun, r.ruleSetVersion])).toEqual([
      ['allow', 'refuse', true, version],
      ['allow', 'refuse', true, version],
    ]);
    const record = (await shadow.decision(results[1]!.decisionId))!;
    expect(record).toMatchObject({ outcome: 'allow', engineDryRun: true, reserved: true });
    expect(record.firedRules.map((f) => [f.ruleId, f.enforced])).toEqual([['vel', false]]);
    expect(shadow.counterTotals('payment|account:W-dry|')).toEqual({ count: 2, amount: '160' });
  });
});

describe('a generated day on PostgreSQL', () => {
  test('same outcomes as the pure evaluator; every refusal and hold explained from its stored record', async () => {
    // The starter set, its partner-burst threshold scaled to this smaller day (500 → 50 records a minute).
    const ruleSet: RuleSet = {
      ...STARTER_RULE_SET,
      rules: STARTER_RULE_SET.rules.map((r) => (r.id === 'partner-burst' ? { ...r, maxCount: 50 } : r)),
    };
    const version = (await risk.publishRuleSet(ruleSet, 'risk-officer', NOW)).version;
    const day = simulateDay({
      ...DEFAULT_DAY,
      seed: 7,
      customers: 100,
      merchants: 20,
      payments: 400,
      carbonRecords: 150,
      partnerBurstRecords: 200,
    });
    const memory = new InMemoryRiskEngine(compileRuleSet(ruleSet, version));
    const stored: RiskAssessment[] = [];
    for (const e of day) {
      const expected = memory.assess(e.kind, e.facts, e.at);
      const actual = await risk.assess(e.kind, e.facts, e.at);
      expect([actual.outcome, actual.primaryRuleId]).toEqual([expected.outcome, expected.primaryRuleId]);
      stored.push(actual);
    }
    const legit = stored.filter((_, i) => day[i]!.label === 'legit');
    expect(legit.filter((r) => r.outcome !== 'allow').length / legit.length).toBeLessThan(0.001);
    const stopped = stored.filter((r) => r.outcome !== 'allow');
    expect(new Set(stopped.map((r) => r.primaryRuleId))).toEqual(
      new Set([
        'velocity-account-10m',
        'card-testing',
        'block-device',
        'block-ip',
        'trip-speed',
        'steps-per-day',
        'partner-burst',
      ]),
    );
    const rules = new Map(ruleSet.rules.map((r) => [r.id, r]));
    for (const decision of stopped) {
      const explanation = await risk.explain(decision.decisionId);
      expect(explanation.consistent).toBe(true);
      const record = explanation.record;
      expect(record).toMatchObject({
        ruleSetVersion: version,
        outcome: decision.outcome,
        primaryRule: decision.primaryRuleId,
      });
      const fired = record.firedRules.find((f) => f.ruleId === record.primaryRule)!;
      expect(firesAgain(rules.get(fired.ruleId)!, record, fired)).toBe(true);
    }
  });
});

/** The rule checked by hand on the stored facts and counter totals, without the engine's evaluator. */
function firesAgain(rule: RiskRule, record: DecisionRecord, fired: FiredRule): boolean {
  const facts = record.facts as unknown as Record<string, string>;
  const over = (before: Amount, amount: string, max: string | undefined): boolean =>
    max !== undefined && before.plus(amount).gt(max);
  switch (rule.kind) {
    case 'transaction_limit':
      return new Money(facts['amount']!).gt(rule.maxAmount);
    case 'block_list': {
      const field = {
        account: 'accountId',
        card: 'cardRef',
        terminal: 'terminalId',
        device: 'deviceId',
        ip: 'ip',
        merchant: 'merchantId',
        partner: 'partnerId',
      }[rule.list];
      const value = facts[field];
      if (value === undefined) return false;
      return rule.list === 'ip' ? IpAllowList.from(rule.entries).allows(value) : rule.entries.includes(value);
    }
    case 'trip_speed': {
      const durationMs = Date.parse(facts['endAt']!) - Date.parse(facts['startAt']!);
      const max = rule.maxKmPerHour[facts['behaviour']!];
      return max !== undefined && new Money(facts['quantity']!).mul(3_600_000).gt(new Money(max).mul(durationMs));
    }
    case 'velocity':
    case 'daily_limit':
    case 'daily_quantity': {
      const i = record.checks.findIndex((c) => c.ruleId === rule.id);
      const check = record.checks[i]!;
      const observed = record.observed![i]!;
      if (rule.kind === 'velocity' && check.windowSeconds !== rule.windowSeconds) return false;
      const amount = facts[rule.kind === 'daily_quantity' ? 'quantity' : 'amount']!;
      const maxAmount = rule.kind === 'daily_quantity' ? rule.maxQuantity : rule.maxAmount;
      const maxCount = rule.kind === 'daily_quantity' ? undefined : rule.maxCount;
      return (
        fired.inputs['countBefore'] === observed.count &&
        ((maxCount !== undefined && observed.count + 1 > maxCount) ||
          over(new Money(observed.amount), amount, maxAmount))
      );
    }
  }
}
