import type { EventStore } from '../core-ledger';
import {
  InMemoryEventStore,
  SqlEventStore,
  KurrentDbEventStore,
  Ledger,
  openPgliteEventStore,
  openPostgresEventStore,
  PLATFORM_ACCOUNTS,
} from '../core-ledger';
import type { ReadModelDatabase } from '../projections';
import {
  installSql,
  LEDGER_READ_MODEL,
  PgliteReadModels,
  pgliteReadModelsOf,
  PostgresReadModels,
  ProjectionRunner,
} from '../projections';
import type { Config } from './config';

/** Opens the configured event store. */
export async function openEventStore(config: Config): Promise<EventStore> {
  switch (config.eventStore) {
    case 'memory':
      return new InMemoryEventStore();
    case 'pglite':
      return openPgliteEventStore(config.dataDir);
    case 'postgres':
      return openPostgresEventStore({ connectionString: config.databaseUrl!, maxConnections: config.databasePoolSize });
    case 'kurrentdb':
      return KurrentDbEventStore.connect(config.kurrentDbUrl!);
  }
}

/** The ledger with the platform's own accounts opened (idempotent: a restart replays the same commands). */
export async function startLedger(
  store: EventStore,
  config: Pick<Config, 'batchMaxCommands' | 'snapshotEveryEvents'>,
  now: () => Date = () => new Date(),
): Promise<Ledger> {
  const ledger = new Ledger(store, {
    maxBatchCommands: config.batchMaxCommands,
    snapshotEveryEvents: config.snapshotEveryEvents,
  });
  const at = now().toISOString();
  const outcomes = await Promise.all(
    PLATFORM_ACCOUNTS.map((p) =>
      ledger.execute({ type: 'OpenAccount', accountId: p.accountId, kind: p.kind, ownerId: 'platform', at }),
    ),
  );
  const refused = outcomes.find((o) => o.status === 'refused');
  if (refused && refused.status === 'refused')
    throw new Error(`platform accounts could not be opened: ${refused.refusal.message}`);
  return ledger;
}

export interface ReadModels {
  readonly database: ReadModelDatabase;
  /** The ledger read model's runner; undefined when this process does not run projections. */
  readonly runner: ProjectionRunner | undefined;
  close(): Promise<void>;
}

const DEFAULT_READ_POOL_SIZE = 20;

/**
 * The read models: in their own PostgreSQL when configured, else beside the event store (its PostgreSQL, or the
 * same PGlite); an in-memory event store gets an in-memory PGlite. The runner starts unless turned off.
 */
export async function startReadModels(
  config: Pick<Config, 'eventStore' | 'databaseUrl' | 'readModelUrl' | 'runProjections'> &
    Partial<Pick<Config, 'readPoolSize'>>,
  store: EventStore,
): Promise<ReadModels> {
  let database: ReadModelDatabase;
  let ownsDatabase: { close(): Promise<void> } | undefined;
  const url = config.readModelUrl ?? (config.eventStore === 'postgres' ? config.databaseUrl : undefined);
  if (url !== undefined) {
    // The services (wallets, payments, carbon, outbox) work in this database too: size its pool for them.
    database = new PostgresReadModels(url, config.readPoolSize ?? DEFAULT_READ_POOL_SIZE);
    ownsDatabase = database;
  } else if (store instanceof SqlEventStore) {
    database = pgliteReadModelsOf(store);
  } else {
    const { PGlite } = await import('@electric-sql/pglite');
    const pglite = await PGlite.create();
    database = new PgliteReadModels(pglite);
    ownsDatabase = pglite;
  }
  // Readers need the registry and the views before the first runner leads.
  await database.exec(installSql(LEDGER_READ_MODEL));
  const runner = config.runProjections ? new ProjectionRunner(database, store, LEDGER_READ_MODEL) : undefined;
  runner?.start();
  return {
    database,
    runner,
    close: async () => {
      await runner?.stop();
      await ownsDatabase?.close();
    },
  };
}
