import Decimal from 'decimal.js';

/**
 * Money and quantities. Every amount is a decimal.js value held at its asset's fixed scale; it crosses every
 * boundary (JSON, SQL, events) as a decimal string. A JS number is never used for an amount.
 */

// One configured Decimal class: 40 significant digits, no silent rounding in arithmetic on ledger amounts.
export const Money = Decimal.clone({ precision: 40, rounding: Decimal.ROUND_HALF_UP, toExpNeg: -40, toExpPos: 40 });
export type Amount = Decimal;

export type AssetCode = 'CNY' | 'CCR' | 'CO2E';

export interface AssetDefinition {
  readonly code: AssetCode;
  /** Digits after the decimal point; amounts with more are refused, never rounded silently. */
  readonly scale: number;
  readonly description: string;
}

/** Chart of assets. CCR (carbon credits) at scale 2 so methodologies may credit fractions; CO2E in whole grams. */
export const ASSETS: Readonly<Record<AssetCode, AssetDefinition>> = {
  CNY: { code: 'CNY', scale: 2, description: 'Renminbi, in yuan with 2 decimals (fen)' },
  CCR: { code: 'CCR', scale: 2, description: 'Carbon credits (碳积分), 2 decimals' },
  CO2E: {
    code: 'CO2E',
    scale: 0,
    description: 'Emission reduction in grams of CO2 equivalent (a quantity, not money)',
  },
};

/** Largest absolute amount accepted: 10^15 units of any asset, far beyond any real balance. */
export const MAX_AMOUNT_DIGITS_BEFORE_POINT = 15;

export function isAssetCode(value: unknown): value is AssetCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ASSETS, value);
}

export type AmountParseError =
  | { readonly kind: 'not_a_decimal_string' }
  | { readonly kind: 'too_many_decimals'; readonly scale: number }
  | { readonly kind: 'too_large' }
  | { readonly kind: 'not_positive' };

/**
 * Parses a decimal string for an asset: plain digits, optional fraction, no exponent, no leading '+',
 * at most the asset's scale in decimals. With `positive`, zero and negatives are refused.
 */
export function parseAmount(
  asset: AssetCode,
  text: unknown,
  options: { positive: boolean },
): { ok: true; amount: Amount } | { ok: false; error: AmountParseError } {
  if (typeof text !== 'string') return { ok: false, error: { kind: 'not_a_decimal_string' } };
  const error = shapeErrorOf(text, ASSETS[asset].scale);
  if (error !== undefined) return { ok: false, error };
  const amount = moneyOf(text);
  if (options.positive && amount.lte(0)) return { ok: false, error: { kind: 'not_positive' } };
  return { ok: true, amount };
}

/**
 * The value of a well-formed decimal text, parsed once while it is read again and again: a payment's amount is read
 * from its command, its events and its postings' check (decimal.js's parse was a fifth of the writer's garbage).
 * Amounts are immutable, so one may be shared. A slot is soon taken by another text: nothing kept lives long enough
 * to burden the old generation.
 */
function moneyOf(text: string): Amount {
  const slot = slotOf(text);
  if (recentTexts[slot] === text) return recentAmounts[slot]!;
  const amount = new Money(text);
  recentTexts[slot] = text;
  recentAmounts[slot] = amount;
  return amount;
}

/** Keeps an amount as the value of the text it was just written as (a running balance is read back from its event). */
function rememberParsed(text: string, amount: Amount): void {
  const slot = slotOf(text);
  recentTexts[slot] = text;
  recentAmounts[slot] = amount;
}

function slotOf(text: string): number {
  let hash = text.length;
  for (let i = 0; i < text.length; i++) hash = (hash * 31 + text.charCodeAt(i)) | 0;
  return hash & (RECENTLY_PARSED_SLOTS - 1);
}

/** Slots by a hash of the text, each overwritten by the next text that falls in it (no map to grow or empty). */
const RECENTLY_PARSED_SLOTS = 1_024;
const recentTexts: (string | undefined)[] = new Array<string | undefined>(RECENTLY_PARSED_SLOTS).fill(undefined);
const recentAmounts: (Amount | undefined)[] = new Array<Amount | undefined>(RECENTLY_PARSED_SLOTS).fill(undefined);

/**
 * What is wrong with the shape of `text` as `-?digits(.digits)?` for an asset of `scale`, if anything: fraction
 * digits beyond the scale (trailing zeros aside), integer digits beyond the limit (leading zeros aside). Scanned
 * without allocating: every payment checks a dozen amounts, and a regular expression's match and trimmed copies were
 * a tenth of the writer's garbage. Digits are ASCII only, as `\d` is.
 */
function shapeErrorOf(text: string, scale: number): AmountParseError | undefined {
  const length = text.length;
  let i = length > 0 && text.charCodeAt(0) === MINUS ? 1 : 0;
  const integerStart = i;
  while (i < length && isDigit(text.charCodeAt(i))) i++;
  const integerEnd = i;
  if (integerEnd === integerStart) return { kind: 'not_a_decimal_string' };
  if (i < length) {
    if (text.charCodeAt(i) !== POINT) return { kind: 'not_a_decimal_string' };
    const fractionStart = ++i;
    while (i < length && isDigit(text.charCodeAt(i))) i++;
    if (i === fractionStart || i !== length) return { kind: 'not_a_decimal_string' };
    let fractionEnd = length;
    while (fractionEnd > fractionStart && text.charCodeAt(fractionEnd - 1) === ZERO_DIGIT) fractionEnd--;
    if (fractionEnd - fractionStart > scale) return { kind: 'too_many_decimals', scale };
  }
  let significantStart = integerStart;
  while (significantStart < integerEnd - 1 && text.charCodeAt(significantStart) === ZERO_DIGIT) significantStart++;
  if (integerEnd - significantStart > MAX_AMOUNT_DIGITS_BEFORE_POINT) return { kind: 'too_large' };
  return undefined;
}

/**
 * What `new Money(text).toString()` gives for a plain decimal (`-?digits(.digits)?`, up to 30 digits each side),
 * without a Decimal: leading zeros and trailing fraction zeros dropped, no sign on zero. Anything else: undefined.
 */
export function plainDecimalText(text: string): string | undefined {
  const length = text.length;
  const negative = length > 0 && text.charCodeAt(0) === MINUS;
  let i = negative ? 1 : 0;
  const integerStart = i;
  while (i < length && isDigit(text.charCodeAt(i))) i++;
  const integerEnd = i;
  let fractionEnd = integerEnd;
  if (i < length) {
    if (text.charCodeAt(i) !== POINT) return undefined;
    i++;
    while (i < length && isDigit(text.charCodeAt(i))) i++;
    if (i !== length || i === integerEnd + 1) return undefined;
    fractionEnd = length;
  }
  if (integerEnd === integerStart || integerEnd - integerStart > 30 || fractionEnd - integerEnd > 31) return undefined;
  let significantStart = integerStart;
  while (significantStart < integerEnd - 1 && text.charCodeAt(significantStart) === ZERO_DIGIT) significantStart++;
  while (fractionEnd > integerEnd + 1 && text.charCodeAt(fractionEnd - 1) === ZERO_DIGIT) fractionEnd--;
  if (fractionEnd === integerEnd + 1) fractionEnd = integerEnd;
  const isZero =
    integerEnd - significantStart === 1 &&
    text.charCodeAt(significantStart) === ZERO_DIGIT &&
    fractionEnd === integerEnd;
  if (isZero) return '0';
  if (!negative && significantStart === 0 && fractionEnd === length) return text;
  return `${negative ? '-' : ''}${text.slice(significantStart, fractionEnd)}`;
}

const MINUS = 45;
const POINT = 46;
const ZERO_DIGIT = 48;
const isDigit = (code: number): boolean => code >= ZERO_DIGIT && code <= 57;

/** Parses an amount that is known to be valid (from our own events); a malformed one is a bug. */
export function amountOf(asset: AssetCode, text: string): Amount {
  const parsed = parseAmount(asset, text, { positive: false });
  if (!parsed.ok) throw new Error(`assertion: stored ${asset} amount ${JSON.stringify(text)} is malformed`);
  return parsed.amount;
}

/** The canonical decimal string of an amount at its asset's scale, e.g. CNY 5 → "5.00". */
export function formatAmount(asset: AssetCode, amount: Amount): string {
  const scale = ASSETS[asset].scale;
  if (amount.decimalPlaces() > scale) {
    throw new Error(`assertion: ${asset} amount ${amount.toString()} has more than ${scale} decimals`);
  }
  const text = amount.toFixed(scale);
  // Exactly its value (no more decimals than the scale); kept only if it computes as a parsed amount would, and not
  // a zero (a negative zero prints as "0.00" but says it is negative).
  if (amount.constructor === Money && !amount.isZero()) rememberParsed(text, amount);
  return text;
}

/**
 * A stored amount's text at its asset's scale, as {@link formatAmount} writes it. Read back from a numeric column, it
 * mostly is so already: then it is returned as it is, without a Decimal made and printed again (views of payments
 * print eight amounts each). Never rounded: a text with more decimals than the scale is a bug, and throws.
 */
export function atScale(asset: AssetCode, text: string): string {
  return isAtScale(text, ASSETS[asset].scale) ? text : formatAmount(asset, amountOf(asset, text));
}

/** `-?(0|[1-9]digits*)` then, for a scale above 0, a point and exactly `scale` digits; not a negative zero. */
function isAtScale(text: string, scale: number): boolean {
  const length = text.length;
  const negative = length > 0 && text.charCodeAt(0) === MINUS;
  let i = negative ? 1 : 0;
  const integerStart = i;
  while (i < length && isDigit(text.charCodeAt(i))) i++;
  const integerDigits = i - integerStart;
  if (integerDigits === 0 || integerDigits > MAX_AMOUNT_DIGITS_BEFORE_POINT) return false;
  if (integerDigits > 1 && text.charCodeAt(integerStart) === ZERO_DIGIT) return false;
  let nonZero = integerDigits > 1 || text.charCodeAt(integerStart) !== ZERO_DIGIT;
  if (scale > 0) {
    if (i !== length - scale - 1 || text.charCodeAt(i) !== POINT) return false;
    for (i++; i < length; i++) {
      const code = text.charCodeAt(i);
      if (!isDigit(code)) return false;
      if (code !== ZERO_DIGIT) nonZero = true;
    }
  } else if (i !== length) return false;
  return !negative || nonZero;
}

export const ZERO: Amount = new Money(0);

/** Basis points (1/10 000) for rates such as merchant fees. */
export type RateBasisPoints = number;

/**
 * A fee on one transaction: amount × rate, rounded half-up to the asset's scale (to the fen for CNY),
 * per transaction and never aggregated before rounding (design: "fees: half-up per transaction to the fen").
 */
export function feeFor(asset: AssetCode, amount: Amount, rateBasisPoints: RateBasisPoints): Amount {
  if (!Number.isInteger(rateBasisPoints) || rateBasisPoints < 0 || rateBasisPoints > 10_000) {
    throw new RangeError('fee rate must be an integer number of basis points in 0..10000');
  }
  return amount.mul(rateBasisPoints).div(10_000).toDecimalPlaces(ASSETS[asset].scale, Decimal.ROUND_HALF_UP);
}

/** Rounds a computed quantity to an asset's scale with the rounding mode named at the call site. */
export function roundTo(asset: AssetCode, value: Amount, mode: 'half_up' | 'down' | 'half_even'): Amount {
  const rounding =
    mode === 'half_up' ? Decimal.ROUND_HALF_UP : mode === 'down' ? Decimal.ROUND_DOWN : Decimal.ROUND_HALF_EVEN;
  return value.toDecimalPlaces(ASSETS[asset].scale, rounding);
}
