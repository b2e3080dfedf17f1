// The public face of security/: every other folder imports from here only.
export * from './crypto';
export * from './permissions';
export * from './request-signing';
export * from './nonce-store';
export * from './passwords';
export * from './operators';
export * from './audit-chain';
export * from './masking';
export * from './field-encryption';
export * from './encrypting-event-store';
export * from './ip-allow-list';
