// The public face of services/risk/: risk control (#14) for the payment and carbon paths.
export * from './response-codes';
export * from './rules';
export * from './facts';
export * from './evaluate';
export * from './risk-service';
export * from './memory-engine';
export { RISK_SQL } from './schema';
export { STARTER_RULE_SET } from './starter-rule-set';
