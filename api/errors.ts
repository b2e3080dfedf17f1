import type { RefusalCode } from '../core-ledger';
import type { ServiceRefusalCode } from '../services';

/**
 * Every error code the API answers with, and its HTTP status: 4xx for what the client can fix or retry, 5xx only
 * for our own faults. Codes are stable: clients switch on them; messages are for people and may change.
 */
export const ERROR_STATUS = {
  validation_failed: 400,
  password_rejected: 400,
  unauthorized: 401,
  invalid_credentials: 401,
  totp_required: 401,
  session_expired: 401,
  bad_signature: 401,
  stale_timestamp: 401,
  replayed_request: 401,
  unknown_client: 401,
  forbidden: 403,
  ip_not_allowed: 403,
  password_expired: 403,
  not_found: 404,
  account_not_found: 404,
  transfer_not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  idempotency_conflict: 409,
  idempotency_key_in_use: 409,
  account_exists: 409,
  invalid_transfer_state: 409,
  authorization_not_expired: 409,
  already_reversed: 409,
  already_settled: 409,
  balance_not_zero: 409,
  payload_too_large: 413,
  account_locked: 423,
  payment_password_locked: 423,
  wallet_exists: 409,
  invalid_merchant_state: 409,
  wallet_not_open: 422,
  payment_password_not_set: 422,
  payment_password_wrong: 422,
  password_free_limit_exceeded: 422,
  category_not_allowed: 422,
  merchant_not_active: 422,
  refund_exceeds_paid: 422,
  payment_failed: 422,
  risk_refused: 422,
  risk_review: 422,
  unsupported_media_type: 415,
  insufficient_funds: 422,
  account_frozen: 422,
  account_reported_lost: 422,
  account_closed: 422,
  asset_mismatch: 422,
  unbalanced: 422,
  authorization_expired: 422,
  amount_exceeds_authorization: 422,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
  timeout: 503,
} as const;

// Every refusal of the ledger and of the services has its status here (a new code without one does not compile).
const _refusalStatuses: Readonly<Record<RefusalCode | ServiceRefusalCode, number>> = ERROR_STATUS;
void _refusalStatuses;

export type ErrorCode = keyof typeof ERROR_STATUS;

export const ERROR_CODES = Object.keys(ERROR_STATUS) as ErrorCode[];

export type ErrorDetails = Readonly<Record<string, unknown>>;

export interface ErrorBody {
  readonly code: ErrorCode;
  readonly message: string;
  readonly details: ErrorDetails;
}

/** An answer the API gives on purpose; anything else thrown in a handler is our fault (500). */
export class ApiError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: ErrorDetails = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = ERROR_STATUS[code];
  }

  body(): ErrorBody {
    return { code: this.code, message: this.message, details: this.details };
  }
}
