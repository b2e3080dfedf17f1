// The public face of api/: the HTTP door (OpenAPI document, validators, handlers, server, observability).
export { ApiError, ERROR_CODES, ERROR_STATUS } from './errors';
export type { ErrorBody, ErrorCode } from './errors';
export { OPENAPI_DOCUMENT } from './openapi';
export { compileOperations } from './validation';
export type { OperationValidators } from './validation';
export { IdempotencyRecords } from './idempotency';
export { readJsonBody } from './json-body';
export { REPLAY_HEADER } from './handlers';
export { createLogger, createMetrics } from './observability';
export type { ApiMetrics, Logger } from './observability';
export { createApi, DEFAULT_API_LIMITS, drainAndClose, listenHttp } from './server';
export type { Api, ApiDependencies, ApiLimits, TlsFiles } from './server';
