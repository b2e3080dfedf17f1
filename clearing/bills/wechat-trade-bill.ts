import type { BillParseOptions, BillParseResult } from './bill-record';
import { BillCollector } from './bill-record';
import type { BillLineParser } from './line-reader';
import { LineDecoder, parseBillWith } from './line-reader';
import type { BillRowSpec, SummaryMeasure } from './row-spec';
import { checkSummaryFigure, lineErrors, mapBillRow, SummaryTally } from './row-spec';

/**
 * WeChat Pay trade bill (交易账单, V2 downloadbill / V3 tradebill), notes §2.1 [official]. Four parts: detail
 * header, detail rows, summary header, summary row. Every detail and summary value starts with a backtick, so the
 * field separator is effectively ",`" (a comma inside 商品名称 does not split a field). Columns are mapped by header
 * name, so the ALL, SUCCESS and REFUND variants (and column order changes) need no code. UTF-8.
 */

export const WECHAT_TRADE_BILL_SPEC: BillRowSpec = {
  channel: 'wechat',
  kindColumn: '交易状态',
  kinds: {
    SUCCESS: {
      kind: 'payment',
      channelTradeNo: '微信订单号',
      merchantOrderNo: '商户订单号',
      refundNo: null,
      amount: '应结订单金额',
      amountSign: 'positive',
      fee: '手续费',
      status: { column: '交易状态' },
    },
    // A revoked (撤销) payment appears under its original order number (notes §1.8); the matcher decides.
    REVOKED: {
      kind: 'payment',
      channelTradeNo: '微信订单号',
      merchantOrderNo: '商户订单号',
      refundNo: null,
      amount: '应结订单金额',
      amountSign: 'positive',
      fee: '手续费',
      status: { column: '交易状态' },
    },
    // Refund lines: the refund's own numbers, the refund amount and 退款状态 (PROCESSING counts as success, §1.8).
    REFUND: {
      kind: 'refund',
      channelTradeNo: '微信退款单号',
      merchantOrderNo: '商户订单号',
      refundNo: '商户退款单号',
      amount: '退款金额',
      amountSign: 'positive',
      fee: '手续费',
      status: { column: '退款状态' },
    },
  },
  timeColumn: '交易时间',
  timeFormat: 'local_datetime',
  amountFormat: 'yuan',
  feeFormat: 'yuan',
  // Fees charged are written positive; a refund line's fee (returned with the refund) negative.
  feeSign: 'as_written',
  currencyColumn: '货币种类',
  // Natural-day bill: the date of payment success / refund acceptance (notes §1.2).
  businessDate: 'trade_date',
};

/** Columns every variant (ALL, SUCCESS, REFUND) has; the refund columns are needed only by REFUND lines. */
export const WECHAT_REQUIRED_COLUMNS = ['交易时间', '微信订单号', '商户订单号', '交易状态', '应结订单金额', '手续费'];

/** Summary header name → what it measures over the detail lines. Unknown summary columns are not checked. */
export const WECHAT_SUMMARY_MEASURES: Readonly<Record<string, SummaryMeasure>> = {
  总交易单数: { count: 'all' },
  应结订单总金额: { sumColumn: '应结订单金额', of: 'all' },
  退款总金额: { sumColumn: '退款金额', of: 'all' },
  充值券退款总金额: { sumColumn: '充值券退款金额', of: 'all' },
  手续费总金额: { sumColumn: '手续费', of: 'all' },
  订单总金额: { sumColumn: '订单金额', of: 'all' },
  申请退款总金额: { sumColumn: '申请退款金额', of: 'all' },
};

const SUMMARY_FIRST_TOKEN = '总交易单数';
const BACKTICK = '`';

type Phase = 'header' | 'details' | 'summary_row' | 'done';

interface PendingFigure {
  readonly label: string;
  readonly measure: SummaryMeasure;
  readonly text: string;
  readonly line: number;
}

export class WechatTradeBillParser implements BillLineParser {
  readonly collector: BillCollector;
  private readonly decoder = new LineDecoder('utf-8');
  private readonly tally = SummaryTally.forMeasures(Object.values(WECHAT_SUMMARY_MEASURES));
  private phase: Phase = 'header';
  private header: Map<string, number> | null = null;
  private headerWidth = 0;
  private summaryHeader: string[] = [];
  private summaryFigures: PendingFigure[] = [];
  private summarySeen = false;

  constructor(options: BillParseOptions = {}) {
    this.collector = new BillCollector('wechat', options);
  }

  acceptLine(bytes: Uint8Array, lineNo: number): void {
    const decoded = this.decoder.decode(bytes);
    if (!decoded.ok) return this.reject(lineNo, 'bad_encoding', decoded.message);
    const text = decoded.text;
    if (text.trim() === '') return this.collector.structural();
    switch (this.phase) {
      case 'header':
        return this.acceptHeader(text, lineNo);
      case 'details':
        if (text.split(',', 1)[0] === SUMMARY_FIRST_TOKEN) return this.acceptSummaryHeader(text);
        return this.acceptDetail(text, lineNo);
      case 'summary_row':
        return this.acceptSummaryRow(text, lineNo);
      case 'done':
        return this.reject(lineNo, 'unexpected_line', 'text after the summary row');
    }
  }

  finish(): BillParseResult {
    if (this.phase === 'header') {
      this.collector.error({ line: 0, code: 'missing_header', message: 'no detail header line' });
    }
    if (!this.summarySeen) {
      this.collector.error({ line: 0, code: 'missing_summary', message: 'no summary row (总交易单数…)' });
    }
    for (const figure of this.summaryFigures) {
      checkSummaryFigure(this.collector, this.tally, figure.label, figure.measure, figure.text, figure.line);
    }
    return this.collector.result();
  }

  private acceptHeader(text: string, lineNo: number): void {
    this.phase = 'details';
    if (text.startsWith(BACKTICK)) {
      // The header is missing: say so once, and still account for this line as a detail that cannot be read.
      this.collector.error({ line: lineNo, code: 'missing_header', message: 'the file starts with a data line' });
      return this.reject(lineNo, 'missing_header', 'no header to map columns by');
    }
    const names = text.split(',');
    const missing = WECHAT_REQUIRED_COLUMNS.filter((name) => !names.includes(name));
    if (missing.length > 0) {
      this.collector.error({ line: lineNo, code: 'bad_header', message: `header lacks ${missing.join(', ')}` });
    } else {
      this.header = new Map(names.map((name, index) => [name, index]));
      this.headerWidth = names.length;
    }
    this.collector.structural();
  }

  private acceptDetail(text: string, lineNo: number): void {
    if (!text.startsWith(BACKTICK)) return this.reject(lineNo, 'unexpected_line', 'a detail line starts with "`"');
    const header = this.header;
    if (!header) return this.reject(lineNo, 'missing_header', 'no usable header to map columns by');
    const values = splitBackticked(text);
    if (values.length !== this.headerWidth) {
      return this.reject(lineNo, 'column_count', `${values.length} fields, the header has ${this.headerWidth}`);
    }
    const get = (column: string): string | undefined => {
      const index = header.get(column);
      return index === undefined ? undefined : values[index];
    };
    const mapped = mapBillRow(WECHAT_TRADE_BILL_SPEC, get, { lineNo, givenDate: null });
    const tallied = this.tally.read(get, lineNo);
    if (!mapped.ok || !tallied.ok) {
      return this.collector.reject(lineErrors(mapped, tallied));
    }
    this.tally.add(mapped.record.kind, tallied.values);
    this.collector.record(mapped.record);
  }

  private acceptSummaryHeader(text: string): void {
    this.summaryHeader = text.split(',');
    this.phase = 'summary_row';
    this.collector.structural();
  }

  private acceptSummaryRow(text: string, lineNo: number): void {
    this.phase = 'done';
    this.summarySeen = true;
    this.collector.structural();
    const values = text.startsWith(BACKTICK) ? splitBackticked(text) : [];
    if (values.length !== this.summaryHeader.length) {
      this.collector.error({
        line: lineNo,
        code: 'bad_summary',
        message: `${values.length} summary values for ${this.summaryHeader.length} summary columns`,
      });
      return;
    }
    this.summaryHeader.forEach((label, index) => {
      const measure = WECHAT_SUMMARY_MEASURES[label];
      if (measure) this.summaryFigures.push({ label, measure, text: values[index]!, line: lineNo });
    });
  }

  private reject(
    line: number,
    code: 'bad_encoding' | 'unexpected_line' | 'missing_header' | 'column_count',
    message: string,
  ): void {
    this.collector.reject([{ line, code, message }]);
  }
}

/** "`a,`b,`" → ['a', 'b', '']: drop the first backtick, split on ",`". */
function splitBackticked(text: string): string[] {
  return text.slice(1).split(',' + BACKTICK);
}

export function parseWechatTradeBill(input: Uint8Array | string, options: BillParseOptions = {}): BillParseResult {
  return parseBillWith(new WechatTradeBillParser(options), input);
}
