// The public face of projections: the read models, their runner and their queries.
export * from './database';
export * from './projection';
export * from './runner';
export { LEDGER_READ_MODEL } from './ledger-read-model';
export * from './queries';
