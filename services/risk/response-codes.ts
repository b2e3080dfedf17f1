/**
 * Why a risk rule fires, and what that answers at the POS door in field 39, as data. The ISO 8583:1987 meanings are
 * the ones the CUP table shares (research/iso8583.md §1.5 lists only part of the table: 57, 58, 59, 61, 62 and 65 are
 * not in the notes — confirm them with the acquirer table, as pos-gateway/refusal-codes.ts says of 57 and 61).
 * A rule may name another code (`isoResponseCode`) where an acquirer wants one.
 */

export type RiskReason =
  | 'amount_limit'
  | 'velocity'
  | 'blocked_card'
  | 'blocked_account'
  | 'blocked_terminal'
  | 'blocked_other'
  | 'implausible_data';

export interface RiskResponseCode {
  readonly isoResponseCode: string;
  readonly meaning: string;
  readonly source: string;
}

const ISO = 'ISO 8583:1987 response code (not in research/iso8583.md §1.5; confirm with the acquirer table)';

export const RISK_RESPONSE_CODES: Readonly<Record<RiskReason, RiskResponseCode>> = {
  amount_limit: { isoResponseCode: '61', meaning: 'exceeds amount limit', source: ISO },
  velocity: { isoResponseCode: '65', meaning: 'exceeds frequency limit', source: ISO },
  blocked_card: { isoResponseCode: '62', meaning: 'restricted card', source: ISO },
  blocked_account: { isoResponseCode: '62', meaning: 'restricted card (the card’s account is blocked)', source: ISO },
  blocked_terminal: { isoResponseCode: '58', meaning: 'transaction not permitted to terminal', source: ISO },
  // Devices, addresses, merchants and partners: the cardholder may not transact from there.
  blocked_other: { isoResponseCode: '57', meaning: 'transaction not permitted to cardholder', source: ISO },
  implausible_data: { isoResponseCode: '59', meaning: 'suspected fraud', source: ISO },
};

/** The stable refusal codes of the engine (ServiceRefusal codes once the lead wires them). */
export const RISK_REFUSAL_CODES = { refuse: 'risk_refused', hold: 'risk_review' } as const;
export type RiskRefusalCode = (typeof RISK_REFUSAL_CODES)[keyof typeof RISK_REFUSAL_CODES];
