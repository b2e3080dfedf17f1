import type { Amount } from '../../core-ledger';
import { amountOf, formatAmount, ZERO } from '../../core-ledger';
import { csvField, hasControlCharacter } from './csv';

/**
 * The clearing report (清分报表): one row per merchant per business date, written as CSV. The clearing step decides
 * the figures; this writer only lays them out, and asserts the arithmetic once more (an inconsistent row is a bug
 * upstream, not an input to refuse): net = payments − refunds − fees + adjustments + carried in;
 * payout = max(net, 0); carried out = min(net, 0) (a negative net is carried forward, notes §1.4).
 */

export interface ClearingReportRow {
  readonly businessDate: string;
  readonly merchantId: string;
  readonly paymentCount: number;
  /** CNY decimal strings. */
  readonly paymentAmount: string;
  readonly refundCount: number;
  readonly refundAmount: string;
  readonly fee: string;
  /** Signed. */
  readonly adjustment: string;
  /** ≤ 0: a negative net carried forward from earlier dates. */
  readonly carriedIn: string;
  readonly net: string;
  readonly payout: string;
  /** ≤ 0: the negative net carried to the next date. */
  readonly carriedOut: string;
}

const AMOUNT_COLUMNS = [
  'paymentAmount',
  'refundAmount',
  'fee',
  'adjustment',
  'carriedIn',
  'net',
  'payout',
  'carriedOut',
] as const satisfies readonly (keyof ClearingReportRow)[];

const COLUMNS: readonly [string, keyof ClearingReportRow][] = [
  ['business_date', 'businessDate'],
  ['merchant_id', 'merchantId'],
  ['payment_count', 'paymentCount'],
  ['payment_amount', 'paymentAmount'],
  ['refund_count', 'refundCount'],
  ['refund_amount', 'refundAmount'],
  ['fee', 'fee'],
  ['adjustment', 'adjustment'],
  ['carried_in', 'carriedIn'],
  ['net', 'net'],
  ['payout', 'payout'],
  ['carried_out', 'carriedOut'],
];

export const CLEARING_REPORT_LINE_ENDING = '\n';
export const MAX_CLEARING_REPORT_ROWS = 1_000_000;

function assertRow(row: ClearingReportRow): Record<(typeof AMOUNT_COLUMNS)[number], Amount> {
  const where = `${row.businessDate}/${row.merchantId}`;
  if (!/^\d{4}-\d{2}-\d{2}$/.test(row.businessDate)) throw new Error(`assertion: ${where}: business date`);
  if (row.merchantId === '' || hasControlCharacter(row.merchantId)) throw new Error(`assertion: ${where}: merchant id`);
  for (const count of [row.paymentCount, row.refundCount]) {
    if (!Number.isSafeInteger(count) || count < 0) throw new Error(`assertion: ${where}: count ${count}`);
  }
  const a = Object.fromEntries(AMOUNT_COLUMNS.map((key) => [key, amountOf('CNY', row[key])])) as Record<
    (typeof AMOUNT_COLUMNS)[number],
    Amount
  >;
  const net = a.paymentAmount.minus(a.refundAmount).minus(a.fee).plus(a.adjustment).plus(a.carriedIn);
  const consistent =
    net.eq(a.net) &&
    a.payout.eq(a.net.gt(0) ? a.net : ZERO) &&
    a.carriedOut.eq(a.net.lt(0) ? a.net : ZERO) &&
    a.carriedIn.lte(0);
  if (!consistent) throw new Error(`assertion: clearing report row ${where} does not add up`);
  return a;
}

/** Rows sorted by (business date, merchant id), then one TOTAL row; same rows → same bytes. */
export function writeClearingReportCsv(rows: readonly ClearingReportRow[]): Buffer {
  if (rows.length > MAX_CLEARING_REPORT_ROWS) throw new RangeError(`more than ${MAX_CLEARING_REPORT_ROWS} rows`);
  const sorted = [...rows].sort(
    (x, y) => compare(x.businessDate, y.businessDate) || compare(x.merchantId, y.merchantId),
  );
  const totals = Object.fromEntries(AMOUNT_COLUMNS.map((key) => [key, ZERO])) as Record<
    (typeof AMOUNT_COLUMNS)[number],
    Amount
  >;
  let paymentCount = 0;
  let refundCount = 0;
  const lines = [COLUMNS.map(([header]) => header).join(',')];
  for (let index = 0; index < sorted.length; index += 1) {
    const row = sorted[index]!;
    const previous = sorted[index - 1];
    if (previous && previous.businessDate === row.businessDate && previous.merchantId === row.merchantId) {
      throw new Error(`assertion: two report rows for ${row.businessDate}/${row.merchantId}`);
    }
    const amounts = assertRow(row);
    for (const key of AMOUNT_COLUMNS) totals[key] = totals[key].plus(amounts[key]);
    paymentCount += row.paymentCount;
    refundCount += row.refundCount;
    lines.push(
      COLUMNS.map(([, key]) => {
        const value = row[key];
        return typeof value === 'number'
          ? String(value)
          : csvField(key in amounts ? formatAmount('CNY', amounts[key as keyof typeof amounts]) : value);
      }).join(','),
    );
  }
  const totalRow: Record<string, string> = {
    businessDate: 'TOTAL',
    merchantId: '',
    paymentCount: String(paymentCount),
    refundCount: String(refundCount),
  };
  for (const key of AMOUNT_COLUMNS) totalRow[key] = formatAmount('CNY', totals[key]);
  lines.push(COLUMNS.map(([, key]) => totalRow[key]!).join(','));
  return Buffer.from(lines.join(CLEARING_REPORT_LINE_ENDING) + CLEARING_REPORT_LINE_ENDING, 'utf8');
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
