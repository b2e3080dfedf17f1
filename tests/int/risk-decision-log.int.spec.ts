import fc from 'fast-check';
import { PostgresReadModels } from '../../projections';
import type { DeferredDecision, PaymentFacts } from '../../services/risk';
import { RISK_LIMITS, RiskService } from '../../services/risk';
import type { ServiceDatabase, SqlStatement } from '../../services';
import { createTestDatabase } from '../support/databases';
import { countingRuleSet } from '../support/risk-fixtures';

/**
 * The decision log in two tables (a row each in cp_risk_decisions, or an element of a row of many in
 * cp_risk_allows, copied out when released), on the real PostgreSQL: whatever the order of plain allows written by
 * two processes, releases by either and their looks, every process's counters end equal to the reservations the
 * log holds unreleased — and so does a process started afterwards.
 */

const NOW = new Date('2026-11-23T04:00:00.000Z');

let drop: () => Promise<void>;
let database: PostgresReadModels;

beforeAll(async () => {
  const db = await createTestDatabase('risklog');
  drop = db.drop;
  database = new PostgresReadModels(db.url, 10);
  const publisher = await engine();
  await publisher.publishRuleSet(countingRuleSet('log'), 'risk-officer', NOW);
});

afterAll(async () => {
  await database.close();
  await drop();
});

async function engine(): Promise<RiskService> {
  // Looks only when told (catchUp), so the test decides when each process reads the other's writes.
  const service = new RiskService(database, { dryRun: false, ruleSetRefreshMs: 3_600_000, syncIntervalMs: 3_600_000 });
  await service.install();
  return service;
}

type Action =
  | { readonly kind: 'write'; readonly by: 0 | 1; readonly accounts: readonly number[]; readonly apart: boolean }
  | { readonly kind: 'release'; readonly by: 0 | 1; readonly pick: number }
  | { readonly kind: 'look'; readonly by: 0 | 1 };

const actionArbitrary: fc.Arbitrary<Action> = fc.oneof(
  fc.record({
    kind: fc.constant('write' as const),
    by: fc.constantFrom(0 as const, 1 as const),
    accounts: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 4 }),
    apart: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('release' as const), by: fc.constantFrom(0 as const, 1 as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('look' as const), by: fc.constantFrom(0 as const, 1 as const) }),
);

let run = 0;
let subject = 0;

test('two processes writing, releasing and looking: their counters, and a new one, equal the unreleased log', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(actionArbitrary, { minLength: 1, maxLength: 12 }), async (actions) => {
      run += 1;
      const accountOf = (n: number): string => `W-log-${run}-${n}`;
      const processes = [await engine(), await engine()] as const;
      const decided: string[] = [];
      for (const action of actions) {
        const by = processes[action.by];
        if (action.kind === 'look') await by.catchUp();
        else if (action.kind === 'release') {
          if (decided.length > 0) await by.release(decided[action.pick % decided.length]!, NOW);
        } else {
          // One statement's plain allows: in one row of many, or (decided further apart than a row spans) a row each.
          const deferred: DeferredDecision[] = [];
          for (const [i, account] of action.accounts.entries()) {
            subject += 1;
            const facts: PaymentFacts = {
              subjectRef: `payment:log-${subject}`,
              amount: '1.00',
              accountId: accountOf(account),
              customerClass: '2',
              walletPurpose: 'general',
              merchantId: 'M1',
              merchantCategory: 'food',
              channel: 'api',
            };
            const at = new Date(NOW.getTime() + (action.apart ? i * (RISK_LIMITS.allowRowSpanMs + 1) : i));
            const taken = await by.assessDeferred('payment', facts, at);
            if (!('deferred' in taken)) throw new Error('assertion: a plain allow is deferred');
            deferred.push(taken.deferred);
          }
          const { ctes, params } = by.recordingSql(deferred, 1);
          await database.query(`WITH ${ctes} SELECT 1`, params);
          for (const d of deferred) by.settleDeferred(d, 'written');
          decided.push(...deferred.map((d) => d.decisionId));
        }
      }
      const unreleased = await database.query<{ account: string; count: string }>(
        `SELECT substring(counted from 'account:([^|]*)') AS account, count(*)::text AS count
           FROM cp_risk_decision_log
          WHERE decision_id = ANY($1) AND reserved AND released_at IS NULL GROUP BY 1`,
        [decided],
      );
      const expected = new Map(unreleased.map((r) => [r.account, Number(r.count)]));
      const total = (service: RiskService, n: number): number =>
        service.counterTotals(`payment|account:${accountOf(n)}|`).count;
      // Each reads the other's writes and releases (a second look: one within the overlap reads them again).
      for (let i = 0; i < 2; i++) for (const p of processes) await p.catchUp();
      const late = await engine();
      for (const n of [0, 1, 2]) {
        const want = expected.get(accountOf(n)) ?? 0;
        expect([total(processes[0], n), total(processes[1], n), total(late, n)]).toEqual([want, want, want]);
      }
      // Every decision is in the log once, and found by id.
      const logged = await database.query<{ decision_id: string }>(
        'SELECT decision_id FROM cp_risk_decision_log WHERE decision_id = ANY($1)',
        [decided],
      );
      expect(logged.map((r) => r.decision_id).sort()).toEqual([...decided].sort());
      for (const id of decided) expect((await processes[0].decision(id))?.decisionId).toBe(id);
    }),
    { numRuns: 12 },
  );
});

/**
 * A process whose first look (its registration) waits until `letRegister`, with one plain allow for `account` taken
 * and not yet recorded: what a process does when its first payment comes before its first look is done.
 */
async function unregisteredWriter(account: string): Promise<{
  writer: RiskService;
  letRegister: () => void;
  deferred: DeferredDecision;
  recording: { ctes: string; params: unknown[] };
}> {
  let letRegister!: () => void;
  const registration = new Promise<void>((resolve) => (letRegister = resolve));
  const gated: ServiceDatabase = {
    exec: (script) => database.exec(script),
    transaction: (work) => database.transaction(work),
    query: async <Row>(statement: SqlStatement, params?: readonly unknown[]): Promise<Row[]> => {
      const text = typeof statement === 'string' ? statement : statement.text;
      if (text.includes('INSERT INTO cp_risk_instances')) await registration;
      return database.query<Row>(statement, params);
    },
  };
  const writer = new RiskService(gated, { dryRun: false, ruleSetRefreshMs: 3_600_000, syncIntervalMs: 3_600_000 });
  subject += 1;
  const taken = await writer.assessDeferred(
    'payment',
    {
      subjectRef: `payment:unregistered-${subject}`,
      amount: '1.00',
      accountId: account,
      customerClass: '2',
      walletPurpose: 'general',
      merchantId: 'M1',
      merchantCategory: 'food',
      channel: 'api',
    },
    NOW,
  );
  if (!('deferred' in taken)) throw new Error('assertion: a plain allow is deferred');
  const { ctes, params } = writer.recordingSql([taken.deferred], 1);
  return { writer, letRegister, deferred: taken.deferred, recording: { ctes, params: [...params] } };
}

test('a process that records before it has registered is read in full by the next look after it registers', async () => {
  run += 1;
  const account = `W-log-${run}-early`;
  const reader = await engine();
  const { writer, letRegister, deferred, recording } = await unregisteredWriter(account);
  await database.query(`WITH ${recording.ctes} SELECT 1`, recording.params);
  writer.settleDeferred(deferred, 'written');
  // The reader looks while the row is committed and its writer unregistered: not one of the processes it reads.
  await reader.catchUp();
  expect(reader.counterTotals(`payment|account:${account}|`).count).toBe(0);
  letRegister();
  await writer.catchUp();
  // Its row was in the reader's last snapshot, but its process was not among those read: read now, once.
  await reader.catchUp();
  await reader.catchUp();
  expect(reader.counterTotals(`payment|account:${account}|`).count).toBe(1);
  expect(writer.counterTotals(`payment|account:${account}|`).count).toBe(1);
});

test('a decision recorded before its process registered and committed after is read once it commits', async () => {
  run += 1;
  const account = `W-log-${run}-late`;
  const reader = await engine();
  const { writer, letRegister, deferred, recording } = await unregisteredWriter(account);
  // The record is written (its database time taken) before the writer registers, and commits after the reader's
  // looks have come to know the writer.
  let commit!: () => void;
  const held = new Promise<void>((resolve) => (commit = resolve));
  let written!: () => void;
  const isWritten = new Promise<void>((resolve) => (written = resolve));
  const committed = database.transaction(async (tx) => {
    await tx.query(`WITH ${recording.ctes} SELECT 1`, recording.params);
    written();
    await held;
  });
  await isWritten;
  letRegister();
  await writer.catchUp();
  await reader.catchUp();
  await reader.catchUp();
  expect(reader.counterTotals(`payment|account:${account}|`).count).toBe(0);
  commit();
  await committed;
  writer.settleDeferred(deferred, 'written');
  await reader.catchUp();
  await reader.catchUp();
  expect(reader.counterTotals(`payment|account:${account}|`).count).toBe(1);
});
