import type { Amount } from '../../core-ledger';
import { formatAmount, Money, ZERO } from '../../core-ledger';

/**
 * The normalised bill record every channel parser produces (notes §2.4, reduced to what the matcher needs), and the
 * collector that keeps a parse honest: every input line ends up as exactly one of record, rejected or structural.
 */

export type BillChannel = 'wechat' | 'alipay' | 'unionpay' | 'bank_sim';
export type BillKind = 'payment' | 'refund';

export interface BillRecord {
  readonly channel: BillChannel;
  /** The channel's own number for this line (WeChat refund lines: the WeChat refund number). */
  readonly channelTradeNo: string;
  /** Our order reference as the channel echoes it. */
  readonly merchantOrderNo: string;
  /** Our refund reference (out_refund_no / out_request_no) on refund lines; null on payments. */
  readonly refundNo: string | null;
  /** Local time in China Standard Time, ISO 8601 with the offset: 2024-03-21T13:51:31+08:00. */
  readonly tradeTime: string;
  /** The channel's bill or settle date (YYYY-MM-DD), which is not always the date of tradeTime (UnionPay). */
  readonly businessDate: string;
  readonly kind: BillKind;
  /** CNY with exactly 2 decimals, always positive; the kind carries the direction. */
  readonly amount: string;
  /** Channel fee on this line, signed: positive is charged to us, negative is returned (a refunded fee). */
  readonly fee: string;
  /** The channel's status word as written (SUCCESS, REVOKED, PROCESSING, …); the matcher interprets it. */
  readonly status: string;
  /** 1-based line number in the file. */
  readonly rawLine: number;
}

export type BillErrorCode =
  | 'column_count'
  | 'line_length'
  | 'bad_layout'
  | 'missing_field'
  | 'bad_amount'
  | 'bad_fee'
  | 'bad_date'
  | 'bad_kind'
  | 'bad_currency'
  | 'bad_encoding'
  | 'line_too_long'
  | 'unexpected_line'
  | 'missing_header'
  | 'bad_header'
  | 'bad_summary'
  | 'missing_summary'
  | 'summary_mismatch'
  | 'too_many_lines'
  | 'too_many_errors';

/** A typed parse error. `line` is 1-based; 0 means the file as a whole (e.g. no summary found). */
export interface BillLineError {
  readonly line: number;
  readonly code: BillErrorCode;
  readonly message: string;
}

/** Totals of the parsed records: counts, and amounts as decimal strings (CNY 2 dp; fee at its own scale). */
export interface BillTotals {
  readonly paymentCount: number;
  readonly paymentAmount: string;
  readonly refundCount: number;
  readonly refundAmount: string;
  readonly fee: string;
}

export interface BillParseResult {
  readonly channel: BillChannel;
  /** Empty when the caller streamed records out through `onRecord`. */
  readonly records: readonly BillRecord[];
  readonly errors: readonly BillLineError[];
  readonly totals: BillTotals;
  /**
   * total = records + rejected + structural (headers, summaries, comments, blank lines) + unread (beyond
   * MAX_BILL_LINES, reported as too_many_lines): nothing is dropped without a trace.
   */
  readonly lines: {
    readonly total: number;
    readonly records: number;
    readonly rejected: number;
    readonly structural: number;
    readonly unread: number;
  };
}

export interface BillParseOptions {
  /** Receives each record as it is parsed; the result's `records` then stays empty (for 1M-line files). */
  readonly onRecord?: (record: BillRecord) => void;
  /** Totals known from outside the file (e.g. a summary file, or formats without a summary row) to check against. */
  readonly expectedTotals?: Partial<BillTotals>;
}

/** Bounds (TigerBeetle style: a limit on everything). */
export const MAX_BILL_LINE_BYTES = 64 * 1024;
export const MAX_BILL_LINES = 20_000_000;
/** Errors kept in the result; beyond this only a final too_many_errors entry says how many more there were. */
export const MAX_BILL_ERRORS_KEPT = 10_000;

/** Fee text may carry up to 5 decimals (WeChat shows 0.00000); shown with at least 2. */
export function formatFee(fee: Amount): string {
  const value = fee.isZero() ? ZERO : fee;
  return value.toFixed(Math.max(2, value.decimalPlaces()));
}

/** Holds records, errors and counters for one file; parsers call it, never touch the result directly. */
export class BillCollector {
  readonly records: BillRecord[] = [];
  private readonly errors: BillLineError[] = [];
  private errorsDropped = 0;
  private total = 0;
  private recordLines = 0;
  private rejectedLines = 0;
  private structuralLines = 0;
  private paymentCount = 0;
  private refundCount = 0;
  private paymentAmount: Amount = ZERO;
  private refundAmount: Amount = ZERO;
  private feeSum: Amount = ZERO;

  constructor(
    readonly channel: BillChannel,
    private readonly options: BillParseOptions = {},
  ) {}

  /** Called once per physical line before the parser classifies it; false when the line bound is hit. */
  countLine(): boolean {
    this.total += 1;
    return this.total <= MAX_BILL_LINES;
  }

  record(record: BillRecord): void {
    this.recordLines += 1;
    const amount = new Money(record.amount);
    if (record.kind === 'payment') {
      this.paymentCount += 1;
      this.paymentAmount = this.paymentAmount.plus(amount);
    } else {
      this.refundCount += 1;
      this.refundAmount = this.refundAmount.plus(amount);
    }
    this.feeSum = this.feeSum.plus(new Money(record.fee));
    if (this.options.onRecord) this.options.onRecord(record);
    else this.records.push(record);
  }

  reject(errors: readonly BillLineError[]): void {
    if (errors.length === 0) throw new Error('assertion: a rejected line carries at least one error');
    this.rejectedLines += 1;
    for (const error of errors) this.error(error);
  }

  structural(): void {
    this.structuralLines += 1;
  }

  /** An error that does not reject a line by itself: file-level problems and summary mismatches. */
  error(error: BillLineError): void {
    if (this.errors.length < MAX_BILL_ERRORS_KEPT) this.errors.push(error);
    else this.errorsDropped += 1;
  }

  totals(): BillTotals {
    return {
      paymentCount: this.paymentCount,
      paymentAmount: formatAmount('CNY', this.paymentAmount),
      refundCount: this.refundCount,
      refundAmount: formatAmount('CNY', this.refundAmount),
      fee: formatFee(this.feeSum),
    };
  }

  result(): BillParseResult {
    this.checkExpectedTotals();
    const classified = this.recordLines + this.rejectedLines + this.structuralLines;
    const overLimit = Math.max(0, this.total - MAX_BILL_LINES);
    if (classified + overLimit !== this.total) {
      throw new Error(`assertion: ${this.total} lines read but ${classified} classified`);
    }
    const errors = [...this.errors];
    if (overLimit > 0) {
      errors.push({ line: 0, code: 'too_many_lines', message: `${overLimit} lines beyond ${MAX_BILL_LINES} not read` });
    }
    if (this.errorsDropped > 0) {
      errors.push({ line: 0, code: 'too_many_errors', message: `${this.errorsDropped} more errors not listed` });
    }
    return {
      channel: this.channel,
      records: this.records,
      errors,
      totals: this.totals(),
      lines: {
        total: this.total,
        records: this.recordLines,
        rejected: this.rejectedLines,
        structural: this.structuralLines,
        unread: overLimit,
      },
    };
  }

  private checkExpectedTotals(): void {
    const expected = this.options.expectedTotals;
    if (!expected) return;
    const parsed = this.totals();
    for (const key of Object.keys(expected) as (keyof BillTotals)[]) {
      const want = expected[key];
      if (want === undefined) continue;
      const got = parsed[key];
      const same = typeof want === 'number' ? want === got : new Money(want).eq(new Money(String(got)));
      if (!same) {
        this.error({
          line: 0,
          code: 'summary_mismatch',
          message: `expected ${key} ${String(want)}, parsed ${String(got)}`,
        });
      }
    }
  }
}
