// Carbon-inclusive methodologies (versioned data) and their arithmetic; re-exported by core-ledger/index.ts.
export * from './methodologies';
export * from './reduction';
export * from './behaviour-records';
