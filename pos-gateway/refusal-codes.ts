/**
 * What a service's refusal (ServiceRefusal.code: the services' codes and the ledger's RefusalCode) answers in field 39,
 * as data. One row per code; a refusal not in the table answers 96 (system malfunction), which an operator then reads
 * in the log — never an approval.
 *
 * Codes 03, 57 and 61 are not in the research notes (§1.5) nor in response-codes.ts: they are the ISO 8583:1987
 * meanings that the CUP table shares, kept here until response-codes.ts takes them (confirm with the acquirer).
 */
import type { RefusalCode } from '../core-ledger';
import type { ServiceRefusalCode } from '../services';
import { RESPONSE_CODES, type ResponseCode } from './response-codes';

const ISO = 'ISO 8583:1987 response code (not in the research notes; confirm with the acquirer table)';

/** Field 39 codes the ledger wiring needs beyond RESPONSE_CODES. */
export const LEDGER_RESPONSE_CODES = {
  invalidMerchant: {
    code: '03',
    meaning: 'invalid merchant',
    meaningZh: '无效商户',
    terminalAction: 'fail',
    source: ISO,
  },
  notPermittedToCardholder: {
    code: '57',
    meaning: 'transaction not permitted to cardholder',
    meaningZh: '不允许持卡人进行的交易',
    terminalAction: 'fail',
    source: ISO,
  },
  suspectedFraud: {
    code: '59',
    meaning: 'suspected fraud',
    meaningZh: '有作弊嫌疑',
    terminalAction: 'fail',
    source: ISO,
  },
  exceedsAmountLimit: {
    code: '61',
    meaning: 'exceeds amount limit',
    meaningZh: '超出金额限制',
    terminalAction: 'fail',
    source: ISO,
  },
} as const satisfies Record<string, ResponseCode>;

type Row = { readonly responseCode: ResponseCode; readonly why: string };

/** Every refusal code of the services and the ledger → field 39. `satisfies` makes a new code a compile error here. */
export const REFUSAL_RESPONSE_CODES = {
  insufficient_funds: { responseCode: RESPONSE_CODES.insufficientFunds, why: 'the wallet cannot pay the amount' },
  not_found: { responseCode: RESPONSE_CODES.invalidCardNumber, why: 'the card (wallet) or merchant is unknown' },
  wallet_not_open: { responseCode: RESPONSE_CODES.invalidCardNumber, why: 'the card’s wallet is not open' },
  account_not_found: { responseCode: RESPONSE_CODES.invalidCardNumber, why: 'the card’s account is unknown' },
  account_frozen: {
    responseCode: LEDGER_RESPONSE_CODES.notPermittedToCardholder,
    why: 'the account is frozen',
  },
  account_reported_lost: {
    responseCode: LEDGER_RESPONSE_CODES.notPermittedToCardholder,
    why: 'the card is reported lost',
  },
  account_closed: { responseCode: RESPONSE_CODES.invalidCardNumber, why: 'the account is closed' },
  merchant_not_active: { responseCode: LEDGER_RESPONSE_CODES.invalidMerchant, why: 'the merchant is not active' },
  invalid_merchant_state: { responseCode: LEDGER_RESPONSE_CODES.invalidMerchant, why: 'the merchant is not active' },
  password_free_limit_exceeded: {
    responseCode: LEDGER_RESPONSE_CODES.exceedsAmountLimit,
    why: 'above the password-free (免密) limit: the terminal asks for the PIN',
  },
  payment_password_wrong: { responseCode: RESPONSE_CODES.incorrectPin, why: 'wrong PIN (payment password)' },
  payment_password_not_set: {
    responseCode: RESPONSE_CODES.incorrectPin,
    why: 'no payment password set, so no PIN can be right',
  },
  payment_password_locked: { responseCode: RESPONSE_CODES.pinTriesExceeded, why: 'too many wrong PINs' },
  category_not_allowed: {
    responseCode: LEDGER_RESPONSE_CODES.notPermittedToCardholder,
    why: 'earmarked funds may not pay this merchant category',
  },
  validation_failed: { responseCode: RESPONSE_CODES.invalidAmount, why: 'the amount is not a payable CNY amount' },
  idempotency_conflict: {
    responseCode: RESPONSE_CODES.duplicateTransaction,
    why: 'the batch and trace were already used for another card or amount',
  },
  invalid_transfer_state: {
    responseCode: RESPONSE_CODES.invalidTransaction,
    why: 'the original cannot be cancelled (refunded, or not approved)',
  },
  already_reversed: { responseCode: RESPONSE_CODES.invalidTransaction, why: 'the original is already reversed' },
  already_settled: { responseCode: RESPONSE_CODES.invalidTransaction, why: 'the original is settled' },
  transfer_not_found: { responseCode: RESPONSE_CODES.originalNotFound, why: 'no such original' },
  authorization_expired: {
    responseCode: RESPONSE_CODES.systemMalfunction,
    why: 'a hold expired before its capture',
  },
  refund_exceeds_paid: { responseCode: RESPONSE_CODES.invalidAmount, why: 'more than was paid' },
  rate_limited: { responseCode: RESPONSE_CODES.systemMalfunction, why: 'try again later' },
  conflict: { responseCode: RESPONSE_CODES.systemMalfunction, why: 'concurrent change; try again' },
  payment_failed: { responseCode: RESPONSE_CODES.systemMalfunction, why: 'the payment failed' },
  // Risk control answers the code of the rule that fired (details.isoResponseCode); these rows are the fallback.
  risk_refused: { responseCode: LEDGER_RESPONSE_CODES.suspectedFraud, why: 'refused by risk control' },
  risk_review: { responseCode: LEDGER_RESPONSE_CODES.suspectedFraud, why: 'held for review by risk control' },
  forbidden: { responseCode: RESPONSE_CODES.systemMalfunction, why: 'not a POS outcome' },
  bad_signature: { responseCode: RESPONSE_CODES.systemMalfunction, why: 'not a POS outcome' },
  wallet_exists: { responseCode: RESPONSE_CODES.systemMalfunction, why: 'not a POS outcome' },
  account_exists: { responseCode: RESPONSE_CODES.systemMalfunction, why: 'not a POS outcome' },
  asset_mismatch: { responseCode: RESPONSE_CODES.systemMalfunction, why: 'not a POS outcome' },
  unbalanced: { responseCode: RESPONSE_CODES.systemMalfunction, why: 'not a POS outcome' },
  authorization_not_expired: { responseCode: RESPONSE_CODES.systemMalfunction, why: 'not a POS outcome' },
  amount_exceeds_authorization: { responseCode: RESPONSE_CODES.systemMalfunction, why: 'not a POS outcome' },
  balance_not_zero: { responseCode: RESPONSE_CODES.systemMalfunction, why: 'not a POS outcome' },
} as const satisfies Record<ServiceRefusalCode | RefusalCode, Row>;

/** Field 39 for a refusal code; 96 for a code outside the table (an unknown string from a newer service). */
export function responseCodeOfRefusal(code: string): string {
  const row = (REFUSAL_RESPONSE_CODES as Readonly<Record<string, Row>>)[code];
  return (row?.responseCode ?? RESPONSE_CODES.systemMalfunction).code;
}
