import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { SqlEventStore } from '../../core-ledger';
import { Ledger, openPostgresEventStore } from '../../core-ledger';
import { LEDGER_READ_MODEL, PostgresReadModels, ProjectionRunner, tableChecksums } from '../../projections';
import { createTestDatabase } from '../support/databases';
import { logHead, Workload } from '../support/workload';

jest.setTimeout(240_000);

/** Starts a runner process; resolves when it printed `until` lines of BATCH (then it is killed) or caught up. */
function runChild(
  url: string,
  head: string,
  killAfterBatches: number | undefined,
): Promise<{ batches: number; killed: boolean }> {
  const child = spawn(
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', join(__dirname, '..', 'support', 'projection-child.ts')],
    { env: { ...process.env, DATABASE_URL: url, HEAD: head, BATCH_SIZE: '500' }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let batches = 0;
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith('BATCH ')) {
        batches++;
        // Killed just after a commit, while it reads and applies the next batch: mid-batch.
        if (killAfterBatches !== undefined && batches === killAfterBatches)
          setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * 40));
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve({ batches, killed: true });
      else if (code === 0) resolve({ batches, killed: false });
      else reject(new Error(`runner child exited with ${code}`));
    });
  });
}

describe('a projection runner killed mid-batch and restarted', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let store: SqlEventStore;
  let readModels: PostgresReadModels;

  beforeAll(async () => {
    database = await createTestDatabase('projection_kill');
    store = await openPostgresEventStore({ connectionString: database.url });
    readModels = new PostgresReadModels(database.url);
  });

  afterAll(async () => {
    await readModels.close();
    await store.close();
    await database.drop();
  });

  test('applies nothing twice and skips nothing: the same tables as a rebuild, every event counted once', async () => {
    const ledger = new Ledger(store);
    const workload = new Workload(ledger, {
      seed: 7,
      users: 200,
      merchants: 10,
      concurrency: 128,
      days: 40,
      startDay: '2026-11-10',
    });
    await workload.openAccounts();
    const countEvents = async (): Promise<number> =>
      Number((await readModels.query<{ n: string }>('SELECT count(*)::text AS n FROM cp_events'))[0]!.n);
    await workload.run(20_000, countEvents);
    await ledger.close();
    const events = await countEvents();
    const head = await logHead(readModels);

    let kills = 0;
    for (const after of [3, 5, 2, 6]) {
      const run = await runChild(database.url, head, after);
      if (run.killed) kills++;
    }
    const last = await runChild(database.url, head, undefined);
    expect(last.killed).toBe(false);
    expect(kills).toBe(4);

    const checkpoint = await readModels.query<{ position: string; events_applied: string }>(
      `SELECT position, events_applied::text FROM cp_projection_checkpoints WHERE projection = 'ledger'`,
    );
    expect(checkpoint).toEqual([{ position: head, events_applied: String(events) }]);
    const afterKills = await tableChecksums(readModels, LEDGER_READ_MODEL);

    const runner = new ProjectionRunner(readModels, store, LEDGER_READ_MODEL);
    runner.start();
    try {
      await runner.rebuild();
    } finally {
      await runner.stop();
    }
    expect(await tableChecksums(readModels, LEDGER_READ_MODEL)).toEqual(afterKills);
  });
});
