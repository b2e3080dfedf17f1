import type { Amount } from '../../core-ledger';
import { formatAmount, Money, parseAmount } from '../../core-ledger';

/**
 * Field-level parsers shared by every bill format. Each returns a typed outcome; none throws on bad input, and no
 * amount ever passes through a JS number.
 */

export type FieldOutcome<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

const ok = <T>(value: T): FieldOutcome<T> => ({ ok: true, value });
const fail = <T>(reason: string): FieldOutcome<T> => ({ ok: false, reason });

/** A signed CNY amount in yuan with at most 2 decimals ('12.30', '-0.01'); no exponent, no '+', no spaces. */
export function parseYuan(text: string): FieldOutcome<Amount> {
  const parsed = parseAmount('CNY', text, { positive: false });
  if (!parsed.ok) return fail(`${JSON.stringify(text)} is not a CNY amount (${parsed.error.kind})`);
  return ok(parsed.amount);
}

/** Fen as zero-padded digits ('000000001230' → 12.30 yuan). */
export function parseFenDigits(text: string): FieldOutcome<Amount> {
  if (!/^\d{1,17}$/.test(text)) return fail(`${JSON.stringify(text)} is not a fen amount (digits only)`);
  return ok(new Money(text).div(100));
}

/**
 * A fen amount with a leading C (credit, +) or D (debit, −), as in UnionPay's 13-byte fee/net fields.
 * [unverified against the spec PDF: notes §2.3]
 */
export function parseSignedFen(text: string): FieldOutcome<Amount> {
  const match = /^([CD])(\d{1,16})$/.exec(text);
  if (!match) return fail(`${JSON.stringify(text)} is not a C/D-signed fen amount`);
  const value = new Money(match[2]!).div(100);
  return ok(match[1] === 'D' ? value.neg() : value);
}

/** Fee columns may show up to 5 decimals (WeChat's 手续费 is 0.00000 in the official sample). */
const FEE_TEXT = /^-?\d{1,15}(?:\.\d{1,5})?$/;

export function parseFeeYuan(text: string): FieldOutcome<Amount> {
  if (!FEE_TEXT.test(text)) return fail(`${JSON.stringify(text)} is not a fee amount (up to 5 decimals)`);
  return ok(new Money(text));
}

export const formatYuan = (amount: Amount): string => formatAmount('CNY', amount);

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const;

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

function validDate(year: number, month: number, day: number): boolean {
  if (year < 1970 || year > 2999 || month < 1 || month > 12 || day < 1) return false;
  const days = month === 2 && isLeapYear(year) ? 29 : DAYS_IN_MONTH[month - 1]!;
  return day <= days;
}

function validTime(hour: number, minute: number, second: number): boolean {
  return hour <= 23 && minute <= 59 && second <= 59;
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

function isoLocal(y: number, mo: number, d: number, h: number, mi: number, s: number): string {
  return `${y}-${pad2(mo)}-${pad2(d)}T${pad2(h)}:${pad2(mi)}:${pad2(s)}+08:00`;
}

/** A calendar date YYYY-MM-DD that exists. */
export function parseIsoDate(text: string): FieldOutcome<string> {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!m || !validDate(Number(m[1]), Number(m[2]), Number(m[3]))) return fail(`${JSON.stringify(text)} is not a date`);
  return ok(text);
}

/** 'YYYY-MM-DD HH:mm:ss' in China Standard Time (WeChat, Alipay) → ISO with +08:00. */
export function parseLocalDateTime(text: string): FieldOutcome<string> {
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(text);
  if (!m) return fail(`${JSON.stringify(text)} is not 'YYYY-MM-DD HH:mm:ss'`);
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  if (!validDate(y, mo, d) || !validTime(h, mi, s)) return fail(`${JSON.stringify(text)} is not a real date-time`);
  return ok(isoLocal(y, mo, d, h, mi, s));
}

/** Already ISO with the +08:00 offset (our own bank_sim format); other offsets are refused, not converted. */
export function parseIsoCst(text: string): FieldOutcome<string> {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\+08:00$/.exec(text);
  if (!m) return fail(`${JSON.stringify(text)} is not 'YYYY-MM-DDTHH:mm:ss+08:00'`);
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  if (!validDate(y, mo, d) || !validTime(h, mi, s)) return fail(`${JSON.stringify(text)} is not a real date-time`);
  return ok(text);
}

/**
 * UnionPay's MMDDhhmmss has no year. It is taken from the settle date: a transaction month after the settle
 * month belongs to the year before (a 12-31 transaction settled on 01-02).
 */
export function parseMonthDayTime(text: string, settleDate: string): FieldOutcome<string> {
  const m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(text);
  if (!m) return fail(`${JSON.stringify(text)} is not MMDDhhmmss`);
  const [mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number];
  const settleYear = Number(settleDate.slice(0, 4));
  const settleMonth = Number(settleDate.slice(5, 7));
  const year = mo > settleMonth ? settleYear - 1 : settleYear;
  if (!validDate(year, mo, d) || !validTime(h, mi, s)) return fail(`${JSON.stringify(text)} is not a real date-time`);
  return ok(isoLocal(year, mo, d, h, mi, s));
}
