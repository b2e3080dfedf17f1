// The public face of clearing/: other folders import from here only.

// Channel bills → normalised records (pure, streaming, line-numbered typed errors).
export * from './bills/bill-record';
export * from './bills/line-reader';
export * from './bills/row-spec';
export * from './bills/wechat-trade-bill';
export * from './bills/alipay-bill';
export * from './bills/unionpay-zm';
export * from './bills/bank-sim-statement';

// Files we write, and the SM3 manifest that keeps them.
export * from './files/fixed-width';
export * from './files/bank-payment-file';
export * from './files/clearing-report';
export * from './files/sm3-manifest';
export { splitCsvLine, csvField } from './files/csv';

// The runs (#10): clearing, settlement, reconciliation and discrepancy cases, gated by run rows and advisory locks.
export * from './schema';
export * from './context';
export * from './discrepancy-classes';
export * from './run-gate';
export * from './output-files';
export * from './clearing-step';
export * from './settlement-step';
export * from './reconciliation-step';
export * from './suspense';
export * from './resolutions';
export * from './clearing-service';
export * from './jobs';
