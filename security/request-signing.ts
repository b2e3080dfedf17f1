import type { Role } from './permissions';
import { isMerchantBound, isRole } from './permissions';
import { IpAllowList } from './ip-allow-list';
import type { Sm2PrivateKey } from './crypto';
import {
  CryptoInputError,
  hmacSm3,
  hmacSm3Verify,
  sm2Sign,
  sm2Verify,
  Sm2PublicKey,
  sm3Digest,
  SM2_DEFAULT_USER_ID,
} from './crypto';

/**
 * Signed requests of partners and internal services (C3, C15, T21). The signature covers one canonical string:
 *
 *     METHOD \n PATH-WITH-QUERY \n TIMESTAMP \n NONCE \n hex(SM3(body))
 *
 * METHOD upper case; PATH-WITH-QUERY exactly as sent on the request line; TIMESTAMP Unix milliseconds in decimal;
 * NONCE 16–64 of [A-Za-z0-9_-]; the body's SM3 over its raw bytes (the SM3 of no bytes for a GET). Partners sign
 * with SM2 (GB/T 32918, raw r‖s in hex, user id `1234567812345678` unless their registration says otherwise);
 * internal services may use HMAC-SM3 with a shared key of at least 16 bytes, cheaper on the payment path.
 */
export const SIGNATURE_HEADERS = {
  clientId: 'x-cp-client-id',
  timestamp: 'x-cp-timestamp',
  nonce: 'x-cp-nonce',
  signature: 'x-cp-signature',
} as const;

export const SIGNING_LIMITS = {
  /** How far a request's timestamp may be from the server's clock, either way. */
  timestampWindowMs: 300_000,
  /** A nonce is remembered at least as long as a timestamp stays acceptable. */
  nonceRetentionMs: 600_000,
  nonceMinLength: 16,
  nonceMaxLength: 64,
  clientIdMaxLength: 64,
} as const;

const NONCE_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;
const CLIENT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const MERCHANT_ID_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;

export type SigningMethod = 'sm2' | 'hmac-sm3';

/** A registered caller: a partner platform (SM2) or an internal service (HMAC-SM3). */
export interface ClientCredential {
  readonly clientId: string;
  readonly role: Role;
  readonly method: SigningMethod;
  /** SM2 partners: their public key, precomputed for fast verification. */
  readonly publicKey?: Sm2PublicKey;
  readonly userId?: string;
  /** HMAC-SM3 services: the shared key. */
  readonly secret?: Buffer;
  /** During a key rotation, the key being replaced: still accepted until its registration is removed. */
  readonly previousPublicKey?: Sm2PublicKey;
  readonly previousSecret?: Buffer;
  /** Source addresses (and CIDR ranges) allowed to use this credential; undefined: any. */
  readonly allowedIps: IpAllowList | undefined;
  /** The SM4 key this client seals sensitive request fields with (`X-CP-Encrypted-Fields`); none: it may not. */
  readonly fieldKey?: Buffer;
  /** The merchant a merchant-bound role acts for (MERCHANT_BOUND_ROLES): it reaches that merchant's objects only. */
  readonly merchantId?: string;
}

/** A client registration as data (a JSON file kept apart from the database). Keys in hex. */
export interface ClientRegistration {
  readonly clientId: string;
  readonly role: string;
  readonly method: SigningMethod;
  readonly publicKeyHex?: string;
  readonly userId?: string;
  readonly secretHex?: string;
  readonly allowedIps?: readonly string[];
  /** 32 hex digits: the SM4 key for sealed request fields. */
  readonly fieldKeyHex?: string;
  /** Key rotation: the key being replaced, accepted beside the new one until this line is removed. */
  readonly previousPublicKeyHex?: string;
  readonly previousSecretHex?: string;
  /** Required for a merchant-bound role (`merchant`), refused for any other: the merchant this client acts for. */
  readonly merchantId?: string;
}

export class ClientRegistrationError extends Error {
  constructor(clientId: string, problem: string) {
    super(`client ${clientId}: ${problem}`);
    this.name = 'ClientRegistrationError';
  }
}

export function credentialOf(registration: ClientRegistration): ClientCredential {
  const { clientId } = registration;
  if (!CLIENT_ID_PATTERN.test(clientId))
    throw new ClientRegistrationError(clientId, 'the id must be 1–64 of [A-Za-z0-9._-]');
  if (!isRole(registration.role)) throw new ClientRegistrationError(clientId, `unknown role ${registration.role}`);
  let allowedIps: IpAllowList | undefined;
  try {
    allowedIps = registration.allowedIps?.length ? IpAllowList.from(registration.allowedIps) : undefined;
  } catch (error) {
    throw new ClientRegistrationError(clientId, (error as Error).message);
  }
  if (registration.fieldKeyHex !== undefined && !/^[0-9a-fA-F]{32}$/.test(registration.fieldKeyHex))
    throw new ClientRegistrationError(clientId, 'fieldKeyHex must be 32 hex digits (an SM4 key)');
  if (registration.previousSecretHex !== undefined && !/^[0-9a-fA-F]{32,}$/.test(registration.previousSecretHex))
    throw new ClientRegistrationError(clientId, 'previousSecretHex must be at least 16 bytes in hex');
  if (isMerchantBound(registration.role) !== (registration.merchantId !== undefined))
    throw new ClientRegistrationError(
      clientId,
      isMerchantBound(registration.role)
        ? `a ${registration.role} client names the merchant it acts for (merchantId)`
        : `merchantId is for merchant clients only, not ${registration.role}`,
    );
  if (registration.merchantId !== undefined && !MERCHANT_ID_PATTERN.test(registration.merchantId))
    throw new ClientRegistrationError(clientId, 'merchantId must be 1–64 of [A-Za-z0-9._:-]');
  const extras = {
    ...(registration.fieldKeyHex === undefined ? {} : { fieldKey: Buffer.from(registration.fieldKeyHex, 'hex') }),
    ...(registration.merchantId === undefined ? {} : { merchantId: registration.merchantId }),
  };
  try {
    if (registration.method === 'sm2') {
      if (!registration.publicKeyHex) throw new ClientRegistrationError(clientId, 'an sm2 client needs publicKeyHex');
      const publicKey = Sm2PublicKey.from(registration.publicKeyHex, { precompute: true });
      return {
        clientId,
        role: registration.role,
        method: 'sm2',
        publicKey,
        userId: registration.userId ?? SM2_DEFAULT_USER_ID,
        allowedIps,
        ...extras,
        ...(registration.previousPublicKeyHex
          ? { previousPublicKey: Sm2PublicKey.from(registration.previousPublicKeyHex, { precompute: true }) }
          : {}),
      };
    }
    if (registration.method === 'hmac-sm3') {
      if (!registration.secretHex || registration.secretHex.length < 32)
        throw new ClientRegistrationError(clientId, 'an hmac-sm3 client needs secretHex of at least 16 bytes');
      return {
        clientId,
        role: registration.role,
        method: 'hmac-sm3',
        secret: Buffer.from(registration.secretHex, 'hex'),
        allowedIps,
        ...extras,
        ...(registration.previousSecretHex
          ? { previousSecret: Buffer.from(registration.previousSecretHex, 'hex') }
          : {}),
      };
    }
  } catch (error) {
    if (error instanceof CryptoInputError) throw new ClientRegistrationError(clientId, error.message);
    throw error;
  }
  throw new ClientRegistrationError(clientId, `unknown method ${String(registration.method)}`);
}

export interface SignedRequestParts {
  readonly method: string;
  readonly pathWithQuery: string;
  readonly timestamp: string;
  readonly nonce: string;
  readonly body: Uint8Array;
}

export function canonicalRequest(parts: SignedRequestParts): Buffer {
  return Buffer.from(
    [
      parts.method.toUpperCase(),
      parts.pathWithQuery,
      parts.timestamp,
      parts.nonce,
      sm3Digest(parts.body).toString('hex'),
    ].join('\n'),
    'utf8',
  );
}

/** Why a signed request is refused; each maps to a stable API error. */
export type SignatureProblem = 'missing_headers' | 'malformed_headers' | 'stale_timestamp' | 'bad_signature';

/** Checks headers, clock window and signature; the nonce is claimed by the caller afterwards (it needs a store). */
export function checkSignedRequest(
  credential: ClientCredential,
  parts: SignedRequestParts,
  signatureHex: string,
  nowMs: number,
): SignatureProblem | undefined {
  if (
    !/^\d{1,15}$/.test(parts.timestamp) ||
    !NONCE_PATTERN.test(parts.nonce) ||
    !/^[0-9a-fA-F]{2,256}$/.test(signatureHex)
  )
    return 'malformed_headers';
  if (Math.abs(nowMs - Number(parts.timestamp)) > SIGNING_LIMITS.timestampWindowMs) return 'stale_timestamp';
  const message = canonicalRequest(parts);
  try {
    const verifies = (publicKey: Sm2PublicKey | undefined, secret: Buffer | undefined): boolean =>
      credential.method === 'sm2'
        ? publicKey !== undefined &&
          sm2Verify(message, signatureHex, publicKey, {
            signatureEncoding: 'raw',
            userId: credential.userId ?? SM2_DEFAULT_USER_ID,
          })
        : secret !== undefined && hmacSm3Verify(secret, message, signatureHex);
    const valid =
      verifies(credential.publicKey, credential.secret) ||
      verifies(credential.previousPublicKey, credential.previousSecret);
    return valid ? undefined : 'bad_signature';
  } catch (error) {
    if (error instanceof CryptoInputError) return 'bad_signature';
    throw error;
  }
}

/** What a client does (tests, benchmarks, the partner SDK example): the headers of a signed request. */
export function signRequest(
  signer:
    | { clientId: string; method: 'sm2'; privateKey: Sm2PrivateKey; userId?: string }
    | { clientId: string; method: 'hmac-sm3'; secret: Buffer },
  parts: SignedRequestParts,
): Record<string, string> {
  const message = canonicalRequest(parts);
  const signature =
    signer.method === 'sm2'
      ? sm2Sign(message, signer.privateKey, { signatureEncoding: 'raw', userId: signer.userId ?? SM2_DEFAULT_USER_ID })
      : hmacSm3(signer.secret, message);
  return {
    [SIGNATURE_HEADERS.clientId]: signer.clientId,
    [SIGNATURE_HEADERS.timestamp]: parts.timestamp,
    [SIGNATURE_HEADERS.nonce]: parts.nonce,
    [SIGNATURE_HEADERS.signature]: signature.toString('hex'),
  };
}

/**
 * Responses to a signed request are signed back (T21: integrity and non-repudiation both ways), over
 *
 *     STATUS \n TIMESTAMP \n NONCE-OF-THE-REQUEST \n hex(SM3(body))
 *
 * with the platform's SM2 key for SM2 partners and with the shared key for HMAC-SM3 services; the request's nonce
 * binds the answer to its question. Headers: `X-CP-Timestamp`, `X-CP-Signature`.
 */
export interface SignedResponseParts {
  readonly status: number;
  readonly timestamp: string;
  readonly requestNonce: string;
  readonly body: Uint8Array;
}

export function canonicalResponse(parts: SignedResponseParts): Buffer {
  return Buffer.from(
    [String(parts.status), parts.timestamp, parts.requestNonce, sm3Digest(parts.body).toString('hex')].join('\n'),
    'utf8',
  );
}

/** The signature of a response to `credential`'s request; undefined for SM2 partners when no platform key is set. */
export function responseSignature(
  credential: ClientCredential,
  platformKey: Sm2PrivateKey | undefined,
  parts: SignedResponseParts,
): string | undefined {
  const message = canonicalResponse(parts);
  if (credential.method === 'hmac-sm3') return hmacSm3(credential.secret!, message).toString('hex');
  if (!platformKey) return undefined;
  return sm2Sign(message, platformKey, { signatureEncoding: 'raw', userId: SM2_DEFAULT_USER_ID }).toString('hex');
}

/** What a partner does with an answer: check it came from the platform and was not altered. */
export function verifyResponse(
  verifier: { method: 'sm2'; platformPublicKey: Sm2PublicKey } | { method: 'hmac-sm3'; secret: Buffer },
  parts: SignedResponseParts,
  signatureHex: string,
): boolean {
  const message = canonicalResponse(parts);
  try {
    return verifier.method === 'sm2'
      ? sm2Verify(message, signatureHex, verifier.platformPublicKey, {
          signatureEncoding: 'raw',
          userId: SM2_DEFAULT_USER_ID,
        })
      : hmacSm3Verify(verifier.secret, message, signatureHex);
  } catch (error) {
    if (error instanceof CryptoInputError) return false;
    throw error;
  }
}
