import type { IncomingMessage } from 'node:http';
import type { ClientCredential, IpAllowList, NonceStore, OperatorDirectory, Role, Sm2PrivateKey } from '../security';
import { AuthenticationError, checkSignedRequest, isAllowed, SIGNATURE_HEADERS, SIGNING_LIMITS } from '../security';
import type { ErrorCode } from './errors';
import { ApiError } from './errors';

/** Who is calling: an operator with a session, or a registered client that signed the request. */
export interface Principal {
  readonly kind: 'operator' | 'client' | 'unauthenticated';
  readonly id: string;
  readonly role: Role | null;
  /** A signed request's client and nonce: its answer is signed back. */
  readonly signedBy?: { readonly credential: ClientCredential; readonly nonce: string };
  /** The merchant a merchant-bound principal acts for (its client registration's `merchantId`). */
  readonly merchantId?: string;
}

export const UNAUTHENTICATED: Principal = { kind: 'unauthenticated', id: 'unauthenticated', role: null };

/**
 * `required`: every operation but the public ones needs an operator session (`Authorization: Bearer`) or a signed
 * request (SM2 for partners, HMAC-SM3 for internal services), and the caller's role must hold the operation.
 * `off`: development on loopback only (the configuration refuses it elsewhere).
 */
export type AuthMode = 'required' | 'off';

export interface AuthDependencies {
  readonly mode: AuthMode;
  readonly operators: OperatorDirectory | undefined;
  readonly clients: ReadonlyMap<string, ClientCredential>;
  readonly nonces: NonceStore;
  /** The platform's SM2 key: answers to SM2 partners are signed with it (unsigned when absent). */
  readonly platformKey?: Sm2PrivateKey;
  /** Per role, where its callers may come from (C11); a role without a list may call from anywhere. */
  readonly roleAllowedIps?: ReadonlyMap<Role, IpAllowList>;
}

export async function authenticate(
  deps: AuthDependencies,
  request: IncomingMessage,
  rawBody: Buffer,
  now: Date,
): Promise<Principal> {
  if (deps.mode === 'off') return UNAUTHENTICATED;
  const authorization = request.headers.authorization;
  if (authorization !== undefined) {
    const token = /^Bearer ([A-Za-z0-9_-]{20,128})$/.exec(authorization)?.[1];
    if (!token || !deps.operators)
      throw new ApiError('unauthorized', 'Authorization must be Bearer <session token>', {});
    try {
      const operator = await deps.operators.authenticate(token, now);
      return { kind: 'operator', id: operator.operatorId, role: operator.role };
    } catch (error) {
      throw asApiError(error);
    }
  }
  const clientId = header(request, SIGNATURE_HEADERS.clientId);
  if (clientId === undefined) {
    throw new ApiError('unauthorized', 'a session token or a signed request is required', {});
  }
  const credential = deps.clients.get(clientId);
  if (!credential) throw new ApiError('unknown_client', 'no such client', {});
  const source = request.socket.remoteAddress ?? '';
  if (credential.allowedIps && !credential.allowedIps.allows(source)) {
    throw new ApiError('ip_not_allowed', 'this client may not call from this address', {});
  }
  const timestamp = header(request, SIGNATURE_HEADERS.timestamp);
  const nonce = header(request, SIGNATURE_HEADERS.nonce);
  const signature = header(request, SIGNATURE_HEADERS.signature);
  if (timestamp === undefined || nonce === undefined || signature === undefined) {
    throw new ApiError('unauthorized', `a signed request needs ${Object.values(SIGNATURE_HEADERS).join(', ')}`, {});
  }
  const problem = checkSignedRequest(
    credential,
    { method: request.method ?? 'GET', pathWithQuery: request.url ?? '/', timestamp, nonce, body: rawBody },
    signature,
    now.getTime(),
  );
  if (problem === 'malformed_headers') throw new ApiError('unauthorized', 'malformed signature headers', {});
  if (problem === 'stale_timestamp') {
    throw new ApiError(
      'stale_timestamp',
      `the timestamp is more than ${SIGNING_LIMITS.timestampWindowMs / 1000} s from the server's clock`,
      {
        serverTime: now.getTime(),
      },
    );
  }
  if (problem === 'bad_signature') throw new ApiError('bad_signature', 'the signature does not match the request', {});
  // Claimed only after the signature checks out, so nobody can burn another client's nonces.
  if (!(await deps.nonces.claim(clientId, nonce, SIGNING_LIMITS.nonceRetentionMs))) {
    throw new ApiError('replayed_request', 'this nonce was already used', {});
  }
  return {
    kind: 'client',
    id: clientId,
    role: credential.role,
    signedBy: { credential, nonce },
    ...(credential.merchantId === undefined ? {} : { merchantId: credential.merchantId }),
  };
}

export function authorize(deps: AuthDependencies, principal: Principal, operationId: string, source: string): void {
  if (deps.mode === 'off') return;
  const allowedIps = principal.role === null ? undefined : deps.roleAllowedIps?.get(principal.role);
  if (allowedIps && !allowedIps.allows(source)) {
    throw new ApiError('ip_not_allowed', `role ${principal.role} may not call from this address`, {});
  }
  if (principal.role === null || !isAllowed(principal.role, operationId)) {
    throw new ApiError('forbidden', `role ${principal.role ?? 'none'} may not ${operationId}`, { operationId });
  }
}

export function asApiError(error: unknown): unknown {
  if (!(error instanceof AuthenticationError)) return error;
  const details = error.retryAfterMs !== undefined ? { retryAfterSeconds: Math.ceil(error.retryAfterMs / 1000) } : {};
  // Each refusal of a login or session is an API error code of the same name.
  const code: ErrorCode = error.reason;
  return new ApiError(code, error.message, details);
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' ? value : undefined;
}
