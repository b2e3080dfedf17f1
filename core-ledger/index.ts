// The public face of core-ledger: every other folder imports from here only.
export * from './money';
export * from './chart-of-accounts';
export * from './ids';
export { sha1Of, sha256, sha256Hex } from './digests';
export { canonicalJson, digestOf } from './canonical-json';
export * from './account-codes';
export * from './business-date';
export * from './domain/commands';
export * from './domain/events';
export * from './domain/refusals';
export * from './domain/request-hash';
export * from './domain/state';
export * from './domain/decide';
export * from './ledger';
export { BoundedCache } from './bounded-cache';
export * from './eventstore/port';
export { InMemoryEventStore } from './eventstore/memory';
export { SqlEventStore } from './eventstore/sql-store';
export type { SqlDriver } from './eventstore/sql-store';
export { EVENT_STORE_FUNCTIONS } from './eventstore/sql-schema';
export { PostgresDriver, openPostgresEventStore } from './eventstore/postgres';
export type { PostgresOptions } from './eventstore/postgres';
export { PgliteDriver, openPgliteEventStore, DataFolderLockedError } from './eventstore/pglite';
export {
  KurrentDbEventStore,
  validateConnectionString as validateKurrentDbConnectionString,
} from './eventstore/kurrentdb';
/** The KurrentDB adapter's pure mappings, for its tests (no server can run here). */
export * as KurrentDbMappings from './eventstore/kurrentdb';
export * from './carbon';
