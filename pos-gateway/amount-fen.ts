/**
 * Field 4 (n12, fen) ↔ the ledger's CNY decimal strings. String operations and decimal.js only: an amount never
 * passes through a JS number (style.md, core-ledger/money.ts).
 */
import { Money, type Amount } from '../core-ledger';
import { err, ok, type Result } from './result';

/** Field 4 and the amounts of fields 48 and 54 are 12 digits of fen. */
export const AMOUNT_FEN_DIGITS = 12;

/** '000000001234' → '12.34'; '000000000005' → '0.05'. Any run of 1..12 digits. */
export function fenToYuan(fen: string): Result<string, string> {
  if (!/^[0-9]{1,12}$/.test(fen)) return err(`an amount in fen is 1..${AMOUNT_FEN_DIGITS} digits`);
  const digits = fen.replace(/^0+/, '').padStart(3, '0');
  return ok(`${digits.slice(0, -2)}.${digits.slice(-2)}`);
}

/** A non-negative CNY amount (at most 2 decimals) as `width` digits of fen; an error when it does not fit. */
export function yuanToFen(amount: Amount | string, width = AMOUNT_FEN_DIGITS): Result<string, string> {
  const fen = new Money(amount).mul(100);
  if (!fen.isInteger() || fen.isNegative()) return err(`${amount.toString()} is not a whole number of fen ≥ 0`);
  const text = fen.toFixed(0);
  return text.length > width ? err(`${text} fen does not fit ${width} digits`) : ok(text.padStart(width, '0'));
}

/** True when the 12-digit fen field is all zeros. */
export function isZeroFen(fen: string): boolean {
  return /^0+$/.test(fen);
}
