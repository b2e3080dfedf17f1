/**
 * The read-model runner as its own process (as it is deployed beside the API), for the bench: feeds the ledger read
 * model from DATABASE_URL and prints one JSON line per committed batch: `{"kind":"batch",...}`.
 */
import { openPostgresEventStore } from '../core-ledger';
import { LEDGER_READ_MODEL, PostgresReadModels, ProjectionRunner } from '../projections';

async function main(): Promise<void> {
  const url = process.env['DATABASE_URL']!;
  const store = await openPostgresEventStore({ connectionString: url, maxConnections: 2 });
  const readModels = new PostgresReadModels(url, 2);
  const runner = new ProjectionRunner(readModels, store, LEDGER_READ_MODEL, {
    onBatchCommitted: (batch) => {
      process.stdout.write(`${JSON.stringify({ kind: 'batch', at: Date.now(), ...batch })}\n`);
    },
  });
  runner.start();
  const stop = async (): Promise<void> => {
    await runner.stop();
    await readModels.close();
    await store.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
}

main().catch((error: unknown) => {
  process.stderr.write(`projection worker: ${String(error)}\n`);
  process.exit(1);
});
