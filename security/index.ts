// The public face of security/: every other folder imports from here only.
export * from './crypto';
