// The public face of services/: wallets, merchants, mall payments and carbon inclusion over the ledger.
export * from './database';
export * from './group-commit';
export * from './wallets';
export * from './carbon';
export * from './payments';
export * from './bank-channel';
export * from './outbox';
export * from './notifications';
export * from './crm';
export * from './risk';
export * from './exchange';
