import fc from 'fast-check';
import type { AccountEvent, AccountState, LogPosition, SqlEventStore } from '../../core-ledger';
import {
  accountStreamId,
  amountOf,
  evolveAccount,
  formatAmount,
  InMemoryEventStore,
  Ledger,
  openPgliteEventStore,
  openPostgresEventStore,
  toLedgerEvent,
} from '../../core-ledger';
import type { CommittedBatch } from '../../projections';
import type { PgliteReadModels } from '../../projections';
import { LEDGER_READ_MODEL, pgliteReadModelsOf, PostgresReadModels, ProjectionRunner } from '../../projections';
import { createTestDatabase } from '../support/databases';
import { BANK, mustAccept, openAccount, openPlatformAccounts, userWallet } from '../support/ledger-fixtures';

jest.setTimeout(120_000);

function lastPosition(outcomes: readonly { status: string; position?: LogPosition }[]): LogPosition {
  const positions = outcomes.flatMap((o) => (o.status === 'accepted' && o.position ? [o.position] : []));
  return positions.sort().at(-1)!;
}

describe('two runners for one projection (PostgreSQL)', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let store: SqlEventStore;
  let readModels: PostgresReadModels;
  let ledger: Ledger;

  beforeAll(async () => {
    database = await createTestDatabase('runners');
    store = await openPostgresEventStore({ connectionString: database.url });
    readModels = new PostgresReadModels(database.url);
    ledger = new Ledger(store);
    await openPlatformAccounts(ledger);
  });

  afterAll(async () => {
    await ledger.close();
    await store.close();
    await readModels.close();
    await database.drop();
  });

  const topUps = async (from: number, count: number): Promise<LogPosition> => {
    const outcomes = [];
    for (let i = from; i < from + count; i++) {
      await mustAccept(ledger, openAccount(userWallet(i), 'user_main'));
      outcomes.push(
        await mustAccept(ledger, {
          type: 'PostTransfer',
          transferId: `t-top-${i}`,
          idempotencyKey: `top-${i}`,
          transferType: 'top_up',
          postings: [
            { accountId: BANK, direction: 'debit', amount: '10.00' },
            { accountId: userWallet(i), direction: 'credit', amount: '10.00' },
          ],
          businessDate: '2026-11-25',
          at: '2026-11-25T02:00:00.000Z',
        }),
      );
    }
    return lastPosition(outcomes);
  };

  test('exactly one applies; the other takes over after the first stops, and nothing is lost', async () => {
    const applied: Record<'a' | 'b', CommittedBatch[]> = { a: [], b: [] };
    const a = new ProjectionRunner(readModels, store, LEDGER_READ_MODEL, {
      standbyPollMs: 50,
      onBatchCommitted: (batch) => void applied.a.push(batch),
    });
    const b = new ProjectionRunner(readModels, store, LEDGER_READ_MODEL, {
      standbyPollMs: 50,
      onBatchCommitted: (batch) => void applied.b.push(batch),
    });
    a.start();
    b.start();
    try {
      const first = await topUps(0, 20);
      await Promise.race([a.waitUntilApplied(first), b.waitUntilApplied(first)]);
      await new Promise((r) => setTimeout(r, 300));
      expect([a.isLeader, b.isLeader].filter(Boolean)).toHaveLength(1);
      const [leader, standby, leaderName, standbyName] = a.isLeader
        ? ([a, b, 'a', 'b'] as const)
        : ([b, a, 'b', 'a'] as const);
      expect(applied[leaderName].length).toBeGreaterThan(0);
      expect(applied[standbyName]).toEqual([]);

      await leader.stop();
      const second = await topUps(20, 10);
      await standby.waitUntilApplied(second);
      expect(standby.isLeader).toBe(true);
      expect(applied[standbyName].length).toBeGreaterThan(0);

      const rows = await readModels.query<{ n: string; total: string }>(
        `SELECT count(*)::text AS n, sum(balance)::text AS total FROM cp_read.accounts WHERE kind = 'user_main'`,
      );
      expect(rows).toEqual([{ n: '30', total: '300.00' }]);
      const counted = await readModels.query<{ events_applied: string; n: string }>(
        `SELECT events_applied::text, (SELECT count(*)::text FROM cp_events) AS n
           FROM cp_projection_checkpoints WHERE projection = 'ledger'`,
      );
      expect(counted[0]!.events_applied).toBe(counted[0]!.n);
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});

describe('as-of balances (PGlite read models, in-memory log): property', () => {
  const store = new InMemoryEventStore();
  const ledger = new Ledger(store);
  let pglite: Awaited<ReturnType<typeof openPgliteEventStore>>;
  let runner: ProjectionRunner;
  let readModels: PgliteReadModels;

  beforeAll(async () => {
    pglite = await openPgliteEventStore(undefined);
    readModels = pgliteReadModelsOf(pglite);
    runner = new ProjectionRunner(readModels, store, LEDGER_READ_MODEL, { idlePollMs: 5 });
    runner.start();
    await openPlatformAccounts(ledger);
  });

  afterAll(async () => {
    await runner.stop();
    await ledger.close();
    await pglite.close();
  });

  let accountSequence = 1_000;

  test('the balance as of any time equals a replay of the account events up to that time', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            credit: fc.boolean(),
            fen: fc.integer({ min: 1, max: 100_000 }),
            gapMs: fc.integer({ min: 0, max: 90 * 86_400_000 }),
          }),
          { minLength: 1, maxLength: 25 },
        ),
        fc.array(fc.integer({ min: -86_400_000, max: 100 * 86_400_000 }), { minLength: 1, maxLength: 8 }),
        async (moves, probes) => {
          const accountId = userWallet(++accountSequence);
          const start = Date.parse('2026-09-01T00:00:00.000Z');
          await mustAccept(ledger, { ...openAccount(accountId, 'user_main'), at: new Date(start).toISOString() });
          let at = start;
          const outcomes = [];
          for (const [i, move] of moves.entries()) {
            at += move.gapMs;
            const amount = `${Math.floor(move.fen / 100)}.${String(move.fen % 100).padStart(2, '0')}`;
            const key = `asof-${accountId}-${i}`;
            outcomes.push(
              await ledger.execute({
                type: 'PostTransfer',
                transferId: `t-${key}`,
                idempotencyKey: key,
                transferType: move.credit ? 'top_up' : 'withdrawal',
                postings: move.credit
                  ? [
                      { accountId: BANK, direction: 'debit', amount },
                      { accountId, direction: 'credit', amount },
                    ]
                  : [
                      { accountId, direction: 'debit', amount },
                      { accountId: BANK, direction: 'credit', amount },
                    ],
                businessDate: new Date(at).toISOString().slice(0, 10),
                at: new Date(at).toISOString(),
              }),
            );
          }
          const head = (await store.readAll({ after: '', maxCount: 10_000 })).at(-1)!.position;
          await runner.waitUntilApplied(head);
          const events = await store.readStream(accountStreamId(accountId));
          for (const probe of probes) {
            const asOf = new Date(start + probe).toISOString();
            let state: AccountState | undefined;
            for (const recorded of events) {
              const event = toLedgerEvent(recorded) as AccountEvent;
              if (Date.parse((event.data as { at: string }).at) > Date.parse(asOf)) break;
              state = evolveAccount(state, event);
            }
            const expected = state ? formatAmount('CNY', state.posted) : formatAmount('CNY', amountOf('CNY', '0'));
            const rows = await readModels.query<{ balance: string | null }>(
              `SELECT (SELECT balance::text FROM cp_read.statement_lines
                        WHERE account_id = $1 AND at <= $2 ORDER BY revision DESC LIMIT 1) AS balance`,
              [accountId, asOf],
            );
            expect(formatAmount('CNY', amountOf('CNY', rows[0]!.balance ?? '0'))).toBe(expected);
          }
          expect(outcomes.length).toBe(moves.length);
        },
      ),
      {
        numRuns: Number(process.env['FC_RUNS'] ?? 40),
        seed: process.env['FC_SEED'] ? Number(process.env['FC_SEED']) : undefined,
      },
    );
  });
});
