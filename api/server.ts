import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { Server } from 'node:http';
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import type { EventStore, Ledger } from '../core-ledger';
import { accountsNamedBy } from '../core-ledger';
import type { ProjectionRunner, ReadModelQueries } from '../projections';
import type { ErrorCode } from './errors';
import { ApiError } from './errors';
import type { Handler, HandlerDependencies, OperationResult } from './handlers';
import { createHandlers, REPLAY_HEADER, withStoredResponse } from './handlers';
import type { ServiceDependencies } from './service-operations';
import { createServiceHandlers, SERVICE_OPERATION_IDS } from './service-operations';
import type { ConsoleDependencies } from './console-operations';
import { CONSOLE_OPERATION_IDS, createConsoleHandlers, mountConsole } from './console-operations';
import type { IdempotencyRecords } from './idempotency';
import { parseJsonBody, readRawBody } from './json-body';
import type { AuthDependencies } from './auth';
import type { Principal } from './auth';
import { authenticate, authorize, UNAUTHENTICATED } from './auth';
import type { MerchantScopeLookups } from './merchant-scope';
import { checkMerchantScope } from './merchant-scope';
import type { AuditChain } from '../security';
import {
  ENCRYPTED_FIELDS_HEADER,
  openRequestField,
  PUBLIC_OPERATIONS,
  responseSignature,
  SIGNATURE_HEADERS,
} from '../security';
import type { ApiMetrics, Logger } from './observability';
import { OPENAPI_DOCUMENT } from './openapi';
import type { OperationValidators } from './validation';
import { compileOperations, validationError } from './validation';

/** Every bound of the HTTP door in one place. */
const EMPTY_BODY = Buffer.alloc(0);

export interface ApiLimits {
  readonly maxBodyBytes: number;
  /** A handler that has not answered by then gets 503 `timeout` (the command may still commit: retry with its key). */
  readonly handlerTimeoutMs: number;
  /** Node's own bounds on a slow client. */
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
}

export const DEFAULT_API_LIMITS: ApiLimits = {
  maxBodyBytes: 64 * 1024,
  handlerTimeoutMs: 10_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
};

export interface ApiDependencies {
  readonly ledger: Ledger;
  readonly store: EventStore;
  readonly queries: ReadModelQueries;
  readonly idempotency: IdempotencyRecords;
  readonly runner: ProjectionRunner | undefined;
  readonly logger: Logger;
  readonly metrics: ApiMetrics;
  readonly cutoffHourLocal: number;
  readonly auth: AuthDependencies;
  /** Where unmasked reads of personal data are recorded; the log when absent. */
  readonly recordUnmask?: HandlerDependencies['recordUnmask'];
  /** The tamper-evident audit log (C14, T23): operators' actions and every refused or denied request go there. */
  readonly audit?: AuditChain;
  readonly limits?: ApiLimits;
  readonly now?: () => Date;
  /** Wallets, merchants, mall payments and carbon inclusion; their operations answer 404 without them. */
  readonly services?: ServiceDependencies;
  /** The console's reads and the discrepancy resolutions (#12); their operations answer 503 without them. */
  readonly console?: ConsoleDependencies;
}

/** The app and what shutting it down needs: whether it drains, and how many requests are still being answered. */
export interface Api {
  readonly app: express.Express;
  readonly operations: ReadonlyMap<string, OperationValidators>;
  /** From now on /ready answers 503 and every answer closes its connection. */
  startDraining(): void;
  readonly inFlight: () => number;
}

/** An instance built without the services (some tests, tools) says so for their operations. */
const servicesAbsent: Handler = async () => {
  throw new ApiError('unavailable', 'this instance serves no wallets, payments or carbon accounts');
};

export function createApi(deps: ApiDependencies): Api {
  const limits = deps.limits ?? DEFAULT_API_LIMITS;
  const now = deps.now ?? (() => new Date());
  const operations = compileOperations();
  const scopeLookups: MerchantScopeLookups = {
    merchantAccounts: async (merchantId) => {
      const merchant = await deps.services?.payments.getMerchant(merchantId);
      return merchant === undefined ? undefined : [merchant.pendingAccount, merchant.settledAccount];
    },
    paymentMerchant: async (paymentId) => (await deps.services?.payments.getPayment(paymentId))?.merchantId,
    transferAccounts: async (transferId) => {
      const transfer = await deps.ledger.getTransfer(transferId);
      return transfer === undefined ? undefined : accountsNamedBy(transfer);
    },
  };
  const handlerDeps: HandlerDependencies = {
    ...deps,
    operators: deps.auth.operators,
    recordUnmask:
      deps.recordUnmask ??
      (async (use) =>
        deps.logger.info(
          {
            event: 'unmask',
            actor: use.actor,
            role: use.role,
            subject: use.subject,
            requestId: use.context.requestId,
          },
          'personal data shown unmasked',
        )),
  };
  const handlers: Record<string, Handler> = {
    ...createHandlers(handlerDeps),
    ...(deps.services
      ? createServiceHandlers(deps.services, (input, tag, run) => withStoredResponse(handlerDeps, input, tag, run))
      : {}),
    ...(deps.console
      ? createConsoleHandlers(
          deps.console,
          { clients: deps.auth.clients, platformSigningKey: deps.auth.platformKey !== undefined },
          (input, tag, run) => withStoredResponse(handlerDeps, input, tag, run),
        )
      : {}),
    health: async () => health(deps),
  };
  let draining = false;
  let inFlight = 0;

  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');

  app.get('/openapi.json', (_request, response) => {
    response.json(OPENAPI_DOCUMENT);
  });
  app.get('/ready', async (_request, response) => {
    const ok = !draining && (await health(deps)).status === 200;
    response
      .status(ok ? 200 : 503)
      .json(
        ok
          ? { status: 'ready' }
          : { code: 'unavailable', message: draining ? 'shutting down' : 'not ready', details: {} },
      );
  });
  app.get('/metrics', async (_request, response) => {
    response.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
  mountConsole(app);

  const paths = new Set<string>();
  for (const operation of operations.values()) {
    const handler =
      handlers[operation.operationId] ??
      (SERVICE_OPERATION_IDS.has(operation.operationId) || CONSOLE_OPERATION_IDS.has(operation.operationId)
        ? servicesAbsent
        : undefined);
    if (!handler) throw new Error(`no handler for operation ${operation.operationId}`);
    const expressPath = operation.path.replace(/\{(\w+)\}/g, ':$1');
    paths.add(expressPath);
    app[operation.method](expressPath, (request: Request, response: Response) => {
      inFlight += 1;
      deps.metrics.requestsInFlight.inc();
      const started = process.hrtime.bigint();
      void answer(operation, handler, request, response).finally(() => {
        inFlight -= 1;
        deps.metrics.requestsInFlight.dec();
        deps.metrics.requestSeconds
          .labels(operation.operationId, String(response.statusCode))
          .observe(Number(process.hrtime.bigint() - started) / 1e9);
      });
    });
  }
  for (const path of paths) {
    app.all(path, (request, response) => {
      sendError(response, new ApiError('method_not_allowed', `${request.method} is not allowed here`, {}));
    });
  }
  app.use((_request, response) => {
    sendError(response, new ApiError('not_found', 'no such route', {}));
  });
  // Express's own failures (a malformed %-escape in the path, …) are the client's when it says so.
  app.use((error: unknown, _request: Request, response: Response, _next: NextFunction) => {
    const status = (error as { status?: number }).status;
    const apiError =
      typeof status === 'number' && status >= 400 && status < 500
        ? new ApiError('validation_failed', 'the request could not be parsed', {
            reason: String((error as Error).message).slice(0, 120),
          })
        : new ApiError('internal', 'internal error', {});
    if (apiError.status >= 500) deps.logger.error({ err: error }, 'unhandled error');
    sendError(response, apiError);
  });

  async function answer(
    operation: OperationValidators,
    handler: Handler,
    request: Request,
    response: Response,
  ): Promise<void> {
    const requestId = requestIdOf(request);
    response.setHeader('X-Request-Id', requestId);
    if (draining) response.setHeader('Connection', 'close');
    let signedBy: Principal['signedBy'];
    let principal: Principal = UNAUTHENTICATED;
    let loginName: string | undefined;
    try {
      const startedAt = now();
      const raw = operation.body ? await readRawBody(request, limits.maxBodyBytes) : EMPTY_BODY;
      const isPublic = PUBLIC_OPERATIONS.includes(operation.operationId);
      principal = isPublic ? UNAUTHENTICATED : await authenticate(deps.auth, request, raw, startedAt);
      signedBy = principal.signedBy;
      if (!isPublic) authorize(deps.auth, principal, operation.operationId, request.socket.remoteAddress ?? '');
      const parameters = parametersOf(request);
      if (!operation.parameters(parameters)) throw validationError('parameters', operation.parameters.errors);
      if (!isPublic) await checkMerchantScope(scopeLookups, principal, operation.operationId, parameters);
      let idempotencyKey: string | undefined;
      if (operation.requiresIdempotencyKey) {
        idempotencyKey = request.get('Idempotency-Key');
        if (idempotencyKey === undefined) {
          throw new ApiError('validation_failed', 'header Idempotency-Key is required', {
            in: 'header',
            field: 'Idempotency-Key',
            rule: 'required',
          });
        }
        if (!operation.idempotencyKey!(idempotencyKey))
          throw validationError('header', operation.idempotencyKey!.errors);
      }
      let body: Record<string, unknown> = {};
      if (operation.body) {
        body = openSealedFields(parseJsonBody(raw) as Record<string, unknown>, request, principal);
        if (!operation.body(body)) throw validationError('body', operation.body.errors);
        if (operation.operationId === 'login') loginName = String(body['username']);
      }
      const result = await withTimeout(
        handler({
          parameters,
          body,
          idempotencyKey,
          now: startedAt,
          principal,
          sessionToken: /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1],
          context: {
            actor: principal.id,
            channel: principal.kind === 'operator' ? 'console' : 'api',
            source: request.socket.remoteAddress ?? 'unknown',
            requestId,
          },
        }),
        limits.handlerTimeoutMs,
      );
      await record(
        operation,
        request,
        principal,
        requestId,
        result.status,
        undefined,
        result.headers?.[REPLAY_HEADER] === 'true',
        loginName,
      );
      send(operation, response, result, signedBy);
    } catch (error) {
      const apiError = asApiError(error);
      if (apiError.status >= 500)
        deps.logger.error({ err: error, operation: operation.operationId, requestId }, 'request failed');
      if ((error as { replayed?: boolean }).replayed) response.setHeader(REPLAY_HEADER, 'true');
      deps.metrics.errors.labels(operation.operationId, apiError.code).inc();
      await record(operation, request, principal, requestId, apiError.status, apiError.code, false, loginName);
      sendError(response, apiError, signedBy);
    }
  }

  function send(
    operation: OperationValidators,
    response: Response,
    result: OperationResult,
    signedBy: Principal['signedBy'],
  ): void {
    const validate = operation.responses.get(result.status);
    if (!validate || !validate(result.body)) {
      // Our own answer broke the contract: a bug, never the client's fault.
      deps.logger.error(
        { operation: operation.operationId, status: result.status, errors: validate?.errors },
        'response does not match the API document',
      );
      throw new ApiError('internal', 'internal error: the answer did not match the API document', {});
    }
    for (const [name, value] of Object.entries(result.headers ?? {})) response.setHeader(name, value);
    sendJson(response, result.status, result.body, signedBy);
  }

  /**
   * The audit log gets what an operator did, and every request refused or denied, whoever sent it. Accepted
   * commands of clients are in the event log already, each with its actor and request id (the audit trail read
   * model): writing them twice would cost the payment path a second write for nothing.
   */
  async function record(
    operation: OperationValidators,
    request: Request,
    principal: Principal,
    requestId: string,
    status: number,
    code: string | undefined,
    replayed: boolean,
    loginName?: string,
  ): Promise<void> {
    if (!deps.audit) return;
    const byOperator = principal.kind === 'operator' || operation.operationId === 'login';
    if (!byOperator && status < 400) return;
    if (!byOperator && operation.method === 'get' && status < 401) return;
    const params = request.params as Record<string, string | undefined>;
    const subject = params['accountId'] ?? params['transferId'] ?? loginName;
    try {
      await deps.audit.append({
        actor: loginName !== undefined && principal.kind === 'unauthenticated' ? `login:${loginName}` : principal.id,
        ...(principal.role !== null ? { role: principal.role } : {}),
        action: `api.${snakeCase(operation.operationId)}`,
        ...(subject !== undefined ? { subject } : {}),
        outcome:
          status < 400
            ? replayed
              ? 'replayed'
              : 'succeeded'
            : status === 401 || status === 403
              ? 'denied'
              : 'refused',
        source: request.socket.remoteAddress ?? 'unknown',
        requestId,
        details: { status: String(status), ...(code !== undefined ? { code } : {}) },
      });
    } catch (error) {
      deps.logger.error({ err: error, requestId }, 'the audit log did not take an entry');
    }
  }

  /** One serialisation: the bytes signed are the bytes sent. */
  function sendJson(response: Response, status: number, body: unknown, signedBy: Principal['signedBy']): void {
    const text = JSON.stringify(body);
    if (signedBy) {
      const timestamp = String(now().getTime());
      const signature = responseSignature(signedBy.credential, deps.auth.platformKey, {
        status,
        timestamp,
        requestNonce: signedBy.nonce,
        body: Buffer.from(text),
      });
      if (signature !== undefined) {
        response.setHeader(SIGNATURE_HEADERS.timestamp, timestamp);
        response.setHeader(SIGNATURE_HEADERS.signature, signature);
      }
    }
    response.status(status).type('application/json').send(text);
  }

  function sendError(response: Response, error: ApiError, signedBy: Principal['signedBy'] = undefined): void {
    if (response.headersSent) {
      response.end();
      return;
    }
    if (error.code === 'conflict' || error.code === 'unavailable' || error.code === 'timeout')
      response.setHeader('Retry-After', '1');
    sendJson(response, error.status, error.body(), signedBy);
  }

  return {
    app,
    operations,
    startDraining: () => {
      draining = true;
    },
    inFlight: () => inFlight,
  };
}

async function health(deps: ApiDependencies): Promise<OperationResult> {
  try {
    await deps.store.streamRevision('health-probe');
    return {
      status: 200,
      body: {
        status: 'ok',
        eventStore: deps.store.name,
        ledger: deps.ledger.stats,
        readModels: deps.runner?.status() ?? null,
      },
    };
  } catch (error) {
    return {
      status: 503,
      body: { code: 'unavailable', message: 'event store unreachable', details: { reason: (error as Error).message } },
    };
  }
}

function parametersOf(request: Request): Record<string, string> {
  const parameters: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.query as Record<string, unknown>)) {
    // A repeated parameter arrives as an array: the schema (strings only) refuses it.
    parameters[name] = value as string;
  }
  for (const [name, value] of Object.entries(request.params as Record<string, string>)) parameters[name] = value;
  return parameters;
}

function requestIdOf(request: Request): string {
  const given = request.get('X-Request-Id');
  return given !== undefined && /^[\x21-\x7e]{1,64}$/.test(given) ? given : randomUUID();
}

function asApiError(error: unknown): ApiError {
  return error instanceof ApiError ? error : new ApiError('internal', 'internal error', {});
}

function withTimeout<T>(work: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new ApiError('timeout', 'no answer in time; the outcome is unknown: retry with the same Idempotency-Key', {
            timeoutMs,
          }),
        ),
      timeoutMs,
    );
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export interface TlsFiles {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** Listens with TLS 1.2+ when given a certificate, plain HTTP otherwise (the configuration allows that on loopback only). */
export function listenHttp(
  api: Api,
  host: string,
  port: number,
  tls: TlsFiles | undefined,
  limits: ApiLimits = DEFAULT_API_LIMITS,
): Promise<Server> {
  const server: Server = tls
    ? https.createServer({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }, api.app)
    : http.createServer(api.app);
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/**
 * Graceful shutdown: stop accepting connections, answer what is in flight (each answer closes its connection),
 * then close what is left. Resolves with the number of requests still unanswered at the deadline (0 normally).
 */
export async function drainAndClose(api: Api, server: Server, graceMs: number): Promise<number> {
  api.startDraining();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const deadline = Date.now() + graceMs;
  while (api.inFlight() > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    server.closeIdleConnections();
  }
  const unanswered = api.inFlight();
  server.closeAllConnections();
  await closed;
  return unanswered;
}

export type { ErrorCode };

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Opens the fields a client sealed with its field key (named in `X-CP-Encrypted-Fields`) before validation. */
function openSealedFields(
  body: Record<string, unknown>,
  request: Request,
  principal: Principal,
): Record<string, unknown> {
  const header = request.headers[ENCRYPTED_FIELDS_HEADER];
  if (header === undefined) return body;
  const fieldKey = principal.signedBy?.credential.fieldKey;
  if (typeof header !== 'string' || fieldKey === undefined) {
    throw new ApiError('validation_failed', 'sealed fields need a signed request from a client with a field key', {
      in: 'header',
      field: ENCRYPTED_FIELDS_HEADER,
    });
  }
  const opened = { ...body };
  for (const field of header.split(',').map((f) => f.trim())) {
    const value = opened[field];
    if (typeof value !== 'string') {
      throw new ApiError('validation_failed', `sealed field ${field.slice(0, 64)} is missing or not a string`, {
        in: 'body',
        field,
      });
    }
    try {
      opened[field] = openRequestField(fieldKey, field, value);
    } catch (error) {
      throw new ApiError('validation_failed', (error as Error).message.slice(0, 200), { in: 'body', field });
    }
  }
  return opened;
}
