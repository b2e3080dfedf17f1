import { Client } from 'pg';
import type { SqlEventStore } from '../../core-ledger';
import { Ledger, openPostgresEventStore } from '../../core-ledger';
import type { CommittedBatch } from '../../projections';
import { LEDGER_READ_MODEL, PostgresReadModels, ProjectionRunner, tableChecksums } from '../../projections';
import { createTestDatabase } from '../support/databases';
import { logHead, Workload } from '../support/workload';

jest.setTimeout(240_000);

describe('read models on PostgreSQL: live, rebuilt, and balanced at every checkpoint', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let store: SqlEventStore;
  let ledger: Ledger;
  let readModels: PostgresReadModels;
  let sql: Client;

  beforeAll(async () => {
    database = await createTestDatabase('read_models');
    store = await openPostgresEventStore({ connectionString: database.url });
    ledger = new Ledger(store);
    readModels = new PostgresReadModels(database.url);
    sql = new Client({ connectionString: database.url });
    await sql.connect();
  });

  afterAll(async () => {
    await ledger.close();
    await store.close();
    await readModels.close();
    await sql.end();
    await database.drop();
  });

  const countEvents = async (): Promise<number> =>
    Number((await sql.query<{ n: string }>('SELECT count(*)::text AS n FROM cp_events')).rows[0]!.n);

  const unbalancedAssets = async (): Promise<{ asset: string; total: string }[]> =>
    (
      await sql.query<{ asset: string; total: string }>(
        `SELECT asset, sum(balance)::text AS total FROM cp_read.accounts GROUP BY asset HAVING sum(balance) <> 0`,
      )
    ).rows;

  /** Every index of a generation's tables and partitions: its table, its name, its definition (schema left out). */
  const indexesOf = async (schema: string): Promise<string[]> =>
    (
      await sql.query<{ index: string }>(
        `SELECT c.relname || ' ' || i.relname || ' ' || replace(pg_get_indexdef(i.oid), $1 || '.', '') AS index
           FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 ORDER BY 1`,
        [schema],
      )
    ).rows.map((r) => r.index);

  test('a randomized workload: live tables equal a rebuild from zero, and the trial balance is zero at every batch', async () => {
    const samples: { batch: CommittedBatch; unbalanced: { asset: string; total: string }[] }[] = [];
    const runner = new ProjectionRunner(readModels, store, LEDGER_READ_MODEL, {
      batchSize: 2_000,
      onBatchCommitted: async (batch) => {
        if (!batch.rebuilding && samples.length < 200) samples.push({ batch, unbalanced: await unbalancedAssets() });
      },
    });
    runner.start();
    try {
      const workload = new Workload(ledger, {
        seed: Number(process.env['WORKLOAD_SEED'] ?? 20261125),
        users: 400,
        merchants: 20,
        concurrency: 64,
        days: 70,
        startDay: '2026-10-20',
      });
      await workload.openAccounts();
      await workload.run(Number(process.env['WORKLOAD_EVENTS'] ?? 100_000), countEvents);
      await runner.waitUntilApplied(await logHead(readModels));

      // The workload reached every kind of change (a generator whose commands were all refused would prove nothing).
      const kinds = await readModels.query<{ transfer_type: string; status: string }>(
        `SELECT DISTINCT transfer_type, status FROM cp_read.transfers`,
      );
      const seen = new Set(kinds.map((k) => `${k.transfer_type}/${k.status}`));
      for (const kind of [
        'payment/posted',
        'payment/captured',
        'payment/voided',
        'refund/posted',
        'fee/posted',
        'top_up/posted',
        'credit_issuance/posted',
        'credit_redemption/posted',
        'reversal/posted',
      ])
        expect(seen).toContain(kind);
      const totals = await readModels.query<{ fees: string; carbon: string; audited: string; settled: string }>(
        `SELECT (SELECT sum(fees)::text FROM cp_read.merchant_daily) AS fees,
                (SELECT sum(credits_issued)::text FROM cp_read.carbon_daily) AS carbon,
                (SELECT count(*)::text FROM cp_read.audit_trail) AS audited,
                (SELECT count(*)::text FROM cp_read.transfers WHERE settlement_id IS NOT NULL) AS settled`,
      );
      expect(Number(totals[0]!.fees)).toBeGreaterThan(0);
      expect(Number(totals[0]!.carbon)).toBeGreaterThan(0);
      expect(Number(totals[0]!.audited)).toBeGreaterThan(1_000);
      expect(Number(totals[0]!.settled)).toBeGreaterThan(0);
      expect(samples.length).toBeGreaterThan(5);
      for (const sample of samples) expect(sample.unbalanced).toEqual([]);
      const live = await tableChecksums(readModels, LEDGER_READ_MODEL);
      const liveIndexes = await indexesOf('cp_rm_ledger_g1');
      const generation = await runner.rebuild();
      expect(generation).toBe(2);
      const rebuilt = await tableChecksums(readModels, LEDGER_READ_MODEL);
      expect(rebuilt).toEqual(live);
      // The rebuilt generation was filled without readers' indexes; it has them all when swapped in.
      expect(liveIndexes.length).toBeGreaterThan(10);
      expect(await indexesOf('cp_rm_ledger_g2')).toEqual(liveIndexes);
      const partitions = await sql.query<{ name: string }>(
        `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace
        WHERE n.nspname = 'cp_rm_ledger_g2' AND p.relname = 'journal' ORDER BY 1`,
      );
      expect(partitions.rows.map((r) => r.name)).toEqual(['journal_2026_10', 'journal_2026_11', 'journal_2026_12']);
    } finally {
      await runner.stop();
    }
  });
});
