import Decimal from 'decimal.js';
import { Money, roundTo, type Amount } from '../money';
import { COUNT_UNITS, type MethodologyVersion } from './methodologies';

/**
 * The arithmetic of a methodology: quantity → integer grams CO2e → carbon credits. Pure; no I/O, no clock.
 * Every rounding is down (toward zero, and every value here is ≥ 0, so floor): a user is never credited more than the
 * evidence supports, and the mode is written out at each call.
 */

/** Decimals allowed in a quantity (metres for km, grams for kg); more is refused, never rounded. */
export const QUANTITY_MAX_DECIMALS = 3;
/** Longest quantity text accepted: bounds the work of parsing a hostile string. */
export const QUANTITY_MAX_TEXT_LENGTH = 32;

export type ReductionRefusal = 'bad_quantity' | 'unit_mismatch' | 'above_record_maximum' | 'not_positive';

export type ReductionResult = { ok: true; grams: Amount } | { ok: false; reason: ReductionRefusal };

const QUANTITY_TEXT = /^(-?)(\d+)(?:\.(\d+))?$/;

/** Net grams of CO2e per unit of quantity: baseline − project, or the fixed amount. Exact, before any rounding. */
export function netGramsPerUnit(m: MethodologyVersion): Amount {
  if (m.formula.kind === 'fixed_per_action') return new Money(m.formula.gramsPerAction);
  return new Money(m.formula.baselineGramsPerUnit).minus(new Money(m.formula.projectGramsPerUnit));
}

/**
 * Integer grams CO2e for a quantity (a decimal string, > 0, at most 3 decimals; an integer for counted units such as
 * steps and rides) under a methodology, rounded DOWN to the whole gram. With `unit`, the record's declared unit must
 * be the version's (a version may change unit, e.g. per ride → per km). A result of 0 g is possible (10 steps) and is
 * still `ok`: the caller decides whether to issue nothing.
 */
export function reductionGramsFor(m: MethodologyVersion, quantity: string, unit?: string): ReductionResult {
  if (unit !== undefined && unit !== m.unit) return { ok: false, reason: 'unit_mismatch' };
  const parsed = parseQuantity(quantity);
  if (!parsed.ok) return parsed;
  const amount = parsed.quantity;
  if (amount.lte(0)) return { ok: false, reason: 'not_positive' };
  if (COUNT_UNITS.includes(m.unit) && !amount.isInteger()) return { ok: false, reason: 'bad_quantity' };
  if (amount.gt(new Money(m.maxQuantityPerRecord))) return { ok: false, reason: 'above_record_maximum' };
  const exactGrams = netGramsPerUnit(m).times(amount);
  return { ok: true, grams: roundTo('CO2E', exactGrams, 'down') };
}

/**
 * Credits (CCR, 2 decimals) for integer grams at a ratio "credits per gram" given as a decimal string (e.g. '1',
 * '0.01'), rounded DOWN to 0.01. Bad grams or a bad ratio are configuration or caller bugs, so they throw.
 */
export function creditsForGrams(grams: Amount, creditsPerGram: string): Amount {
  if (!Decimal.isDecimal(grams) || !grams.isInteger() || grams.isNegative()) {
    throw new RangeError(`grams must be a non-negative integer amount, got ${String(grams)}`);
  }
  if (typeof creditsPerGram !== 'string' || !/^\d+(?:\.\d+)?$/.test(creditsPerGram) || !/[1-9]/.test(creditsPerGram)) {
    throw new RangeError(`credits per gram must be a positive decimal string, got ${JSON.stringify(creditsPerGram)}`);
  }
  return roundTo('CCR', grams.times(new Money(creditsPerGram)), 'down');
}

function parseQuantity(text: unknown): { ok: true; quantity: Amount } | { ok: false; reason: ReductionRefusal } {
  if (typeof text !== 'string' || text.length > QUANTITY_MAX_TEXT_LENGTH) return { ok: false, reason: 'bad_quantity' };
  const match = QUANTITY_TEXT.exec(text);
  if (!match) return { ok: false, reason: 'bad_quantity' };
  const fraction = (match[3] ?? '').replace(/0+$/, '');
  if (fraction.length > QUANTITY_MAX_DECIMALS) return { ok: false, reason: 'bad_quantity' };
  return { ok: true, quantity: new Money(text) };
}
