import type { Amount } from '../../core-ledger';
import { Money, ZERO } from '../../core-ledger';
import type { BillChannel, BillCollector, BillKind, BillLineError, BillRecord } from './bill-record';
import { formatFee } from './bill-record';
import type { FieldOutcome } from './fields';
import {
  formatYuan,
  parseFeeYuan,
  parseFenDigits,
  parseIsoCst,
  parseLocalDateTime,
  parseMonthDayTime,
  parseSignedFen,
  parseYuan,
} from './fields';

/**
 * The data-driven core shared by all bill formats (jPOS style: a format is a table, the code reads the table).
 * A format's framing (CSV with a header, '#' comments, fixed-width bytes…) turns a line into named values; a
 * BillRowSpec says which named value feeds which record field, per kind of line, and how each is written.
 */

export interface KindRule {
  readonly kind: BillKind;
  readonly channelTradeNo: string;
  readonly merchantOrderNo: string;
  /** Required (non-empty) when set. */
  readonly refundNo: string | null;
  readonly amount: string;
  /** The sign the file writes this kind's amount with (Alipay writes refunds negative). */
  readonly amountSign: 'positive' | 'negative';
  readonly fee: string;
  readonly status: { readonly column: string } | { readonly fixed: string };
}

export type AmountFormat = 'yuan' | 'fen_digits';
export type FeeFormat = 'yuan' | 'signed_fen';
export type TimeFormat = 'local_datetime' | 'iso_cst' | 'mmddhhmmss';

export interface BillRowSpec {
  readonly channel: BillChannel;
  /** The column whose value selects a KindRule (WeChat 交易状态, Alipay 业务类型, UnionPay 交易类型…). */
  readonly kindColumn: string;
  readonly kinds: Readonly<Record<string, KindRule>>;
  readonly timeColumn: string;
  readonly timeFormat: TimeFormat;
  readonly amountFormat: AmountFormat;
  readonly feeFormat: FeeFormat;
  /** 'as_written' when the file writes a fee charged to us as positive; 'negated' when it writes it negative. */
  readonly feeSign: 'as_written' | 'negated';
  /** When set, the line's currency must be CNY. */
  readonly currencyColumn: string | null;
  /** 'trade_date': the date of the trade time (natural-day bills); 'given': the file's bill/settle date. */
  readonly businessDate: 'trade_date' | 'given';
}

/** Named values of one line; undefined when the file has no such column. */
export type FieldGetter = (column: string) => string | undefined;

export interface RowContext {
  readonly lineNo: number;
  /** The bill/settle date of the whole file, for specs with businessDate 'given' and for MMDD times. */
  readonly givenDate: string | null;
}

/** Every column a spec reads, so a header can be checked before any line is mapped. */
export function columnsOf(spec: BillRowSpec): string[] {
  const columns = new Set<string>([spec.kindColumn, spec.timeColumn]);
  if (spec.currencyColumn) columns.add(spec.currencyColumn);
  for (const rule of Object.values(spec.kinds)) {
    for (const column of [rule.channelTradeNo, rule.merchantOrderNo, rule.amount, rule.fee]) columns.add(column);
    if (rule.refundNo) columns.add(rule.refundNo);
    if ('column' in rule.status) columns.add(rule.status.column);
  }
  return [...columns];
}

const AMOUNT_PARSERS: Record<AmountFormat, (text: string) => FieldOutcome<Amount>> = {
  yuan: parseYuan,
  fen_digits: parseFenDigits,
};
const FEE_PARSERS: Record<FeeFormat, (text: string) => FieldOutcome<Amount>> = {
  yuan: parseFeeYuan,
  signed_fen: parseSignedFen,
};

function parseTime(spec: BillRowSpec, text: string, ctx: RowContext): FieldOutcome<string> {
  switch (spec.timeFormat) {
    case 'local_datetime':
      return parseLocalDateTime(text);
    case 'iso_cst':
      return parseIsoCst(text);
    case 'mmddhhmmss':
      if (ctx.givenDate === null) return { ok: false, reason: 'no settle date given for an MMDDhhmmss time' };
      return parseMonthDayTime(text, ctx.givenDate);
  }
}

export type RowOutcome =
  { readonly ok: true; readonly record: BillRecord } | { readonly ok: false; readonly errors: BillLineError[] };

/** Maps one line's named values to a record, collecting every field error of the line (not just the first). */
export function mapBillRow(spec: BillRowSpec, get: FieldGetter, ctx: RowContext): RowOutcome {
  const errors: BillLineError[] = [];
  const problem = (code: BillLineError['code'], message: string): void => {
    errors.push({ line: ctx.lineNo, code, message });
  };
  const required = (column: string): string => {
    const value = get(column);
    if (value === undefined || value === '') problem('missing_field', `${column} is empty`);
    return value ?? '';
  };

  const kindText = required(spec.kindColumn);
  const rule = Object.prototype.hasOwnProperty.call(spec.kinds, kindText) ? spec.kinds[kindText] : undefined;
  if (!rule) {
    if (kindText !== '') problem('bad_kind', `${spec.kindColumn} ${JSON.stringify(kindText)} is not a known kind`);
    return { ok: false, errors };
  }
  if (spec.currencyColumn) {
    const currency = get(spec.currencyColumn);
    if (currency !== undefined && currency !== 'CNY') {
      problem('bad_currency', `${spec.currencyColumn} ${JSON.stringify(currency)} is not CNY`);
    }
  }

  const channelTradeNo = required(rule.channelTradeNo);
  const merchantOrderNo = required(rule.merchantOrderNo);
  const refundNo = rule.refundNo ? required(rule.refundNo) : null;
  const status = 'fixed' in rule.status ? rule.status.fixed : required(rule.status.column);

  const time = parseTime(spec, required(spec.timeColumn), ctx);
  if (!time.ok && get(spec.timeColumn)) problem('bad_date', `${spec.timeColumn}: ${time.reason}`);

  const amountText = required(rule.amount);
  const amount = signedAmount(spec, rule, amountText);
  if (!amount.ok && amountText !== '') problem('bad_amount', `${rule.amount}: ${amount.reason}`);

  const feeText = required(rule.fee);
  const fee = FEE_PARSERS[spec.feeFormat](feeText);
  if (!fee.ok && feeText !== '') problem('bad_fee', `${rule.fee}: ${fee.reason}`);

  if (errors.length > 0 || !time.ok || !amount.ok || !fee.ok) return { ok: false, errors };
  const businessDate = spec.businessDate === 'given' ? ctx.givenDate : time.value.slice(0, 10);
  if (businessDate === null) throw new Error('assertion: a spec with a given business date was parsed without one');
  return {
    ok: true,
    record: {
      channel: spec.channel,
      channelTradeNo,
      merchantOrderNo,
      refundNo,
      tradeTime: time.value,
      businessDate,
      kind: rule.kind,
      amount: formatYuan(amount.value),
      fee: formatFee(spec.feeSign === 'negated' ? fee.value.neg() : fee.value),
      status,
      rawLine: ctx.lineNo,
    },
  };
}

/** The amount as a positive value; the file's sign must be the one its kind is written with, and never zero. */
function signedAmount(spec: BillRowSpec, rule: KindRule, text: string): FieldOutcome<Amount> {
  if (text === '') return { ok: false, reason: 'empty' };
  const parsed = AMOUNT_PARSERS[spec.amountFormat](text);
  if (!parsed.ok) return parsed;
  const value = rule.amountSign === 'negative' ? parsed.value.neg() : parsed.value;
  if (value.lte(0)) {
    return { ok: false, reason: `${JSON.stringify(text)} must be ${rule.amountSign === 'negative' ? '< 0' : '> 0'}` };
  }
  return { ok: true, value };
}

// ---- summary checks -------------------------------------------------------------------------------------------

export type KindFilter = BillKind | 'all';

/** What a summary figure measures over the detail lines that became records. */
export type SummaryMeasure =
  | { readonly count: KindFilter }
  /** The sum of a column as written in the file (so Alipay refund totals stay negative). */
  | { readonly sumColumn: string; readonly of: KindFilter };

/** Sums, per kind, the columns that summary figures refer to, over accepted lines only. */
export class SummaryTally {
  private readonly counts: Record<BillKind, number> = { payment: 0, refund: 0 };
  private readonly sums = new Map<string, Record<BillKind, Amount>>();

  constructor(
    private readonly columns: readonly string[],
    private readonly parse: (text: string) => FieldOutcome<Amount> = parseFeeYuan,
  ) {
    for (const column of columns) this.sums.set(column, { payment: ZERO, refund: ZERO });
  }

  static forMeasures(
    measures: readonly SummaryMeasure[],
    parse?: (text: string) => FieldOutcome<Amount>,
  ): SummaryTally {
    const columns = new Set<string>();
    for (const measure of measures) if ('sumColumn' in measure) columns.add(measure.sumColumn);
    return new SummaryTally([...columns], parse);
  }

  /** Reads the tallied columns of a line; errors when one is present but malformed. */
  read(
    get: FieldGetter,
    lineNo: number,
  ): { ok: true; values: Map<string, Amount> } | { ok: false; errors: BillLineError[] } {
    const values = new Map<string, Amount>();
    const errors: BillLineError[] = [];
    for (const column of this.columns) {
      const text = get(column);
      if (text === undefined || text === '') continue;
      const parsed = this.parse(text);
      if (parsed.ok) values.set(column, parsed.value);
      else errors.push({ line: lineNo, code: 'bad_amount', message: `${column}: ${parsed.reason}` });
    }
    return errors.length > 0 ? { ok: false, errors } : { ok: true, values };
  }

  add(kind: BillKind, values: Map<string, Amount>): void {
    this.counts[kind] += 1;
    for (const [column, value] of values) {
      const sums = this.sums.get(column)!;
      sums[kind] = sums[kind].plus(value);
    }
  }

  /** The measured value: an integer count or a decimal sum. Undefined for a column the tally does not track. */
  measure(measure: SummaryMeasure): Amount | undefined {
    if ('count' in measure) {
      const count = measure.count === 'all' ? this.counts.payment + this.counts.refund : this.counts[measure.count];
      return new Money(count);
    }
    const sums = this.sums.get(measure.sumColumn);
    if (!sums) return undefined;
    return measure.of === 'all' ? sums.payment.plus(sums.refund) : sums[measure.of];
  }
}

/** Compares one declared summary figure with the tally; a mismatch or an unreadable figure is an error. */
export function checkSummaryFigure(
  collector: BillCollector,
  tally: SummaryTally,
  label: string,
  measure: SummaryMeasure,
  declaredText: string,
  lineNo: number,
): void {
  const declared = 'count' in measure ? countText(declaredText) : parseFeeYuan(declaredText);
  if (!declared.ok) {
    collector.error({ line: lineNo, code: 'bad_summary', message: `${label}: ${declared.reason}` });
    return;
  }
  const parsed = tally.measure(measure);
  if (parsed === undefined) throw new Error(`assertion: summary measure for ${label} is not tallied`);
  if (!parsed.eq(declared.value)) {
    collector.error({
      line: lineNo,
      code: 'summary_mismatch',
      message: `${label}: file says ${declaredText}, parsed lines give ${'count' in measure ? parsed.toFixed(0) : formatFee(parsed)}`,
    });
  }
}

function countText(text: string): FieldOutcome<Amount> {
  if (!/^\d{1,12}$/.test(text)) return { ok: false, reason: `${JSON.stringify(text)} is not a count` };
  return { ok: true, value: new Money(text) };
}

/** A line's errors from mapping and from the tally, with one error per column (a bad amount is not told twice). */
export function lineErrors(mapped: RowOutcome, tallied: ReturnType<SummaryTally['read']>): BillLineError[] {
  const errors = mapped.ok ? [] : [...mapped.errors];
  if (!tallied.ok) {
    for (const error of tallied.errors) {
      const column = error.message.split(':', 1)[0]!;
      if (!errors.some((e) => e.message.startsWith(`${column}:`))) errors.push(error);
    }
  }
  return errors;
}
