import type { BillParseOptions, BillParseResult } from './bill-record';
import { BillCollector } from './bill-record';
import { parseIsoDate } from './fields';
import type { BillLineParser } from './line-reader';
import { LineDecoder, parseBillWith } from './line-reader';
import type { BillRowSpec, SummaryMeasure } from './row-spec';
import { checkSummaryFigure, lineErrors, mapBillRow, SummaryTally } from './row-spec';

/**
 * "bank_sim": the statement format of our own bank-channel simulator. UTF-8, one record per line, fields separated
 * by '|' (no quoting; '|' may not occur in a value), the first field is the record type:
 *
 *   H|CARBONPAY-BANK-SIM|1|<business date YYYY-MM-DD>
 *   D|<bank txn id>|<merchant order no>|<refund no, empty on CREDIT>|<CREDIT or DEBIT>|<amount>|<fee>|<booked at>|<status>
 *   T|<D line count>|<CREDIT amount total>|<DEBIT amount total>|<fee total>
 *
 * - Exactly one H first and one T last; blank lines are allowed anywhere.
 * - CREDIT is a payment into the merchant's account, DEBIT a refund out of it; both amounts are positive yuan with at
 *   most 2 decimals. The fee is signed yuan: positive charged, negative returned.
 * - booked at: YYYY-MM-DDTHH:mm:ss+08:00. status: SUCCESS, FAILED or REVERSED (as booked by the simulator).
 * - The business date is the H line's date (the bank's booking day), not the calendar date of "booked at".
 *
 * Example:
 *   H|CARBONPAY-BANK-SIM|1|2024-03-21
 *   D|BS0001|ORD-1001||CREDIT|100.00|0.60|2024-03-21T10:00:00+08:00|SUCCESS
 *   D|BS0002|ORD-1001|RF-1001-1|DEBIT|30.00|-0.18|2024-03-21T11:00:00+08:00|SUCCESS
 *   T|2|100.00|30.00|0.42
 */

export const BANK_SIM_MAGIC = 'CARBONPAY-BANK-SIM';
export const BANK_SIM_VERSION = '1';

/** Column names by position, per record type. */
export const BANK_SIM_COLUMNS = {
  H: ['record_type', 'magic', 'version', 'business_date'],
  D: [
    'record_type',
    'bank_txn_id',
    'merchant_order_no',
    'refund_no',
    'direction',
    'amount',
    'fee',
    'booked_at',
    'status',
  ],
  T: ['record_type', 'count', 'credit_total', 'debit_total', 'fee_total'],
} as const;

export const BANK_SIM_SPEC: BillRowSpec = {
  channel: 'bank_sim',
  kindColumn: 'direction',
  kinds: {
    CREDIT: {
      kind: 'payment',
      channelTradeNo: 'bank_txn_id',
      merchantOrderNo: 'merchant_order_no',
      refundNo: null,
      amount: 'amount',
      amountSign: 'positive',
      fee: 'fee',
      status: { column: 'status' },
    },
    DEBIT: {
      kind: 'refund',
      channelTradeNo: 'bank_txn_id',
      merchantOrderNo: 'merchant_order_no',
      refundNo: 'refund_no',
      amount: 'amount',
      amountSign: 'positive',
      fee: 'fee',
      status: { column: 'status' },
    },
  },
  timeColumn: 'booked_at',
  timeFormat: 'iso_cst',
  amountFormat: 'yuan',
  feeFormat: 'yuan',
  feeSign: 'as_written',
  currencyColumn: null,
  businessDate: 'given',
};

/** Trailer column → what it measures. */
export const BANK_SIM_TRAILER_MEASURES: Readonly<Record<string, SummaryMeasure>> = {
  count: { count: 'all' },
  credit_total: { sumColumn: 'amount', of: 'payment' },
  debit_total: { sumColumn: 'amount', of: 'refund' },
  fee_total: { sumColumn: 'fee', of: 'all' },
};

type RecordType = keyof typeof BANK_SIM_COLUMNS;

export class BankSimStatementParser implements BillLineParser {
  readonly collector: BillCollector;
  private readonly decoder = new LineDecoder('utf-8');
  private readonly tally = SummaryTally.forMeasures(Object.values(BANK_SIM_TRAILER_MEASURES));
  private businessDate: string | null = null;
  private headerSeen = false;
  private trailer: { values: Map<string, string>; line: number } | null = null;

  constructor(options: BillParseOptions = {}) {
    this.collector = new BillCollector('bank_sim', options);
  }

  acceptLine(bytes: Uint8Array, lineNo: number): void {
    const decoded = this.decoder.decode(bytes);
    if (!decoded.ok) return this.reject(lineNo, 'bad_encoding', decoded.message);
    if (decoded.text.trim() === '') return this.collector.structural();
    const fields = decoded.text.split('|');
    const type = fields[0] ?? '';
    if (!Object.prototype.hasOwnProperty.call(BANK_SIM_COLUMNS, type)) {
      return this.reject(lineNo, 'unexpected_line', `record type ${JSON.stringify(type)} is not H, D or T`);
    }
    const names: readonly string[] = BANK_SIM_COLUMNS[type as RecordType];
    if (fields.length !== names.length) {
      return this.reject(lineNo, 'column_count', `${fields.length} fields, a ${type} record has ${names.length}`);
    }
    const values = new Map(names.map((name, index) => [name, fields[index]!]));
    if (this.trailer) return this.reject(lineNo, 'unexpected_line', 'a record after the trailer');
    if (type === 'H') return this.acceptHeader(values, lineNo);
    if (!this.headerSeen) return this.reject(lineNo, 'missing_header', 'the H record must come first');
    if (type === 'T') {
      this.trailer = { values, line: lineNo };
      return this.collector.structural();
    }
    return this.acceptDetail(values, lineNo);
  }

  finish(): BillParseResult {
    if (!this.headerSeen) this.collector.error({ line: 0, code: 'missing_header', message: 'no H record' });
    if (!this.trailer) this.collector.error({ line: 0, code: 'missing_summary', message: 'no T record' });
    else {
      const { values, line } = this.trailer;
      for (const [column, measure] of Object.entries(BANK_SIM_TRAILER_MEASURES)) {
        checkSummaryFigure(this.collector, this.tally, column, measure, values.get(column)!, line);
      }
    }
    return this.collector.result();
  }

  private acceptHeader(values: Map<string, string>, lineNo: number): void {
    if (this.headerSeen) return this.reject(lineNo, 'unexpected_line', 'a second H record');
    this.headerSeen = true;
    this.collector.structural();
    const date = parseIsoDate(values.get('business_date')!);
    if (values.get('magic') !== BANK_SIM_MAGIC || values.get('version') !== BANK_SIM_VERSION) {
      this.collector.error({ line: lineNo, code: 'bad_header', message: `not ${BANK_SIM_MAGIC} version 1` });
    } else if (!date.ok) {
      this.collector.error({ line: lineNo, code: 'bad_header', message: `business date: ${date.reason}` });
    } else {
      this.businessDate = date.value;
    }
  }

  private acceptDetail(values: Map<string, string>, lineNo: number): void {
    if (this.businessDate === null) return this.reject(lineNo, 'missing_header', 'no valid H record');
    const get = (column: string): string | undefined => values.get(column);
    const mapped = mapBillRow(BANK_SIM_SPEC, get, { lineNo, givenDate: this.businessDate });
    const tallied = this.tally.read(get, lineNo);
    if (!mapped.ok || !tallied.ok) return this.collector.reject(lineErrors(mapped, tallied));
    if (mapped.record.kind === 'payment' && values.get('refund_no') !== '') {
      return this.reject(lineNo, 'unexpected_line', 'a CREDIT record carries a refund number');
    }
    this.tally.add(mapped.record.kind, tallied.values);
    this.collector.record(mapped.record);
  }

  private reject(
    line: number,
    code: 'bad_encoding' | 'unexpected_line' | 'missing_header' | 'column_count',
    message: string,
  ): void {
    this.collector.reject([{ line, code, message }]);
  }
}

export function parseBankSimStatement(input: Uint8Array | string, options: BillParseOptions = {}): BillParseResult {
  return parseBillWith(new BankSimStatementParser(options), input);
}
