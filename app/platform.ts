import type { EventStore } from '../core-ledger';
import {
  InMemoryEventStore,
  KurrentDbEventStore,
  Ledger,
  openPgliteEventStore,
  openPostgresEventStore,
  PLATFORM_ACCOUNTS,
} from '../core-ledger';
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
