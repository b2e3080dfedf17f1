/**
 * A projection runner process, to be killed: feeds the ledger read model from DATABASE_URL and prints
 * `BATCH <position>` after each committed batch, then `CAUGHT-UP` once it has applied everything up to HEAD.
 */
import { openPostgresEventStore } from '../../core-ledger';
import { LEDGER_READ_MODEL, PostgresReadModels, ProjectionRunner } from '../../projections';

async function main(): Promise<void> {
  const url = process.env['DATABASE_URL']!;
  const store = await openPostgresEventStore({ connectionString: url });
  const readModels = new PostgresReadModels(url);
  const runner = new ProjectionRunner(readModels, store, LEDGER_READ_MODEL, {
    batchSize: Number(process.env['BATCH_SIZE'] ?? 500),
    onBatchCommitted: (batch) => {
      process.stdout.write(`BATCH ${batch.position}\n`);
    },
  });
  runner.start();
  await runner.waitUntilApplied(process.env['HEAD']!);
  process.stdout.write('CAUGHT-UP\n');
  await runner.stop();
  await readModels.close();
  await store.close();
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
