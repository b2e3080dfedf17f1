import { splitCsvLine } from '../files/csv';
import type { BillParseOptions, BillParseResult } from './bill-record';
import { BillCollector } from './bill-record';
import type { BillEncoding, BillLineParser } from './line-reader';
import { LineDecoder, parseBillWith } from './line-reader';
import type { BillRowSpec, SummaryMeasure } from './row-spec';
import { checkSummaryFigure, columnsOf, lineErrors, mapBillRow, SummaryTally } from './row-spec';

/**
 * Alipay trade bill, 业务明细 file (notes §2.2 [secondary, consistent across parsers]). GBK in practice; UTF-8 is
 * accepted too (encoding 'auto' decides on the first non-ASCII line). Lines starting with '#' are the preface and the
 * footer; the footer's 交易合计/退款合计 lines are the summary. ID fields carry a trailing TAB (Alipay's answer to
 * Excel), so every field is trimmed. Columns are mapped by header name.
 */

export const ALIPAY_BILL_SPEC: BillRowSpec = {
  channel: 'alipay',
  kindColumn: '业务类型',
  kinds: {
    交易: {
      kind: 'payment',
      channelTradeNo: '支付宝交易号',
      merchantOrderNo: '商户订单号',
      refundNo: null,
      // 商家实收 (what the merchant receives before the service fee) is the figure the footer totals.
      amount: '商家实收（元）',
      amountSign: 'positive',
      fee: '服务费（元）',
      status: { fixed: 'SUCCESS' },
    },
    退款: {
      kind: 'refund',
      channelTradeNo: '支付宝交易号',
      merchantOrderNo: '商户订单号',
      refundNo: '退款批次号/请求号',
      amount: '商家实收（元）',
      // Refund lines are written negative.
      amountSign: 'negative',
      fee: '服务费（元）',
      status: { fixed: 'SUCCESS' },
    },
  },
  timeColumn: '完成时间',
  timeFormat: 'local_datetime',
  amountFormat: 'yuan',
  feeFormat: 'yuan',
  // [unverified, notes §2.2] parser fixtures write a charged fee as negative (-0.12), so the sign is turned.
  feeSign: 'negated',
  currencyColumn: null,
  businessDate: 'trade_date',
};

interface FooterFigure {
  readonly group: number;
  readonly label: string;
  readonly measure: SummaryMeasure;
}

interface FooterLine {
  readonly name: string;
  readonly pattern: RegExp;
  readonly figures: readonly FooterFigure[];
}

const NUMBER = '(-?\\d+(?:\\.\\d+)?)';

/** The footer's summary lines, as in the sample: "#交易合计：10374笔，商家实收共28790.16元，商家优惠共0.00元". */
export const ALIPAY_FOOTER_LINES: readonly FooterLine[] = [
  {
    name: '交易合计',
    pattern: new RegExp(`^#交易合计：(\\d+)笔，商家实收共${NUMBER}元，商家优惠共${NUMBER}元`),
    figures: [
      { group: 1, label: '交易合计笔数', measure: { count: 'payment' } },
      { group: 2, label: '交易合计商家实收', measure: { sumColumn: '商家实收（元）', of: 'payment' } },
      { group: 3, label: '交易合计商家优惠', measure: { sumColumn: '商家优惠（元）', of: 'payment' } },
    ],
  },
  {
    name: '退款合计',
    pattern: new RegExp(`^#退款合计：(\\d+)笔，商家实收退款共${NUMBER}元，商家优惠退款共${NUMBER}元`),
    figures: [
      { group: 1, label: '退款合计笔数', measure: { count: 'refund' } },
      { group: 2, label: '退款合计商家实收', measure: { sumColumn: '商家实收（元）', of: 'refund' } },
      { group: 3, label: '退款合计商家优惠', measure: { sumColumn: '商家优惠（元）', of: 'refund' } },
    ],
  },
];

const REQUIRED_COLUMNS = [...columnsOf(ALIPAY_BILL_SPEC), '商家优惠（元）'];

export interface AlipayBillOptions extends BillParseOptions {
  /** 'auto' by default: GBK as downloaded, or UTF-8 after someone re-saved it. */
  readonly encoding?: BillEncoding;
}

interface PendingFigure {
  readonly label: string;
  readonly measure: SummaryMeasure;
  readonly text: string;
  readonly line: number;
}

export class AlipayBillParser implements BillLineParser {
  readonly collector: BillCollector;
  private readonly decoder: LineDecoder;
  private readonly tally = SummaryTally.forMeasures(
    ALIPAY_FOOTER_LINES.flatMap((f) => f.figures.map((g) => g.measure)),
  );
  private header: Map<string, number> | null = null;
  private headerWidth = 0;
  private headerSeen = false;
  private readonly footerSeen = new Set<string>();
  private readonly figures: PendingFigure[] = [];

  constructor(options: AlipayBillOptions = {}) {
    this.collector = new BillCollector('alipay', options);
    this.decoder = new LineDecoder(options.encoding ?? 'auto');
  }

  /** The encoding the file was read in, once a non-ASCII line decided it. */
  get encoding(): 'utf-8' | 'gbk' | null {
    return this.decoder.encoding;
  }

  acceptLine(bytes: Uint8Array, lineNo: number): void {
    const decoded = this.decoder.decode(bytes);
    if (!decoded.ok) return this.collector.reject([{ line: lineNo, code: 'bad_encoding', message: decoded.message }]);
    const text = decoded.text;
    if (text.trim() === '') return this.collector.structural();
    if (text.startsWith('#')) return this.acceptComment(text, lineNo);
    if (!this.headerSeen) return this.acceptHeader(text, lineNo);
    return this.acceptDetail(text, lineNo);
  }

  finish(): BillParseResult {
    if (!this.headerSeen) this.collector.error({ line: 0, code: 'missing_header', message: 'no column header line' });
    for (const footer of ALIPAY_FOOTER_LINES) {
      if (!this.footerSeen.has(footer.name)) {
        this.collector.error({ line: 0, code: 'missing_summary', message: `no #${footer.name} line` });
      }
    }
    for (const f of this.figures) checkSummaryFigure(this.collector, this.tally, f.label, f.measure, f.text, f.line);
    return this.collector.result();
  }

  private acceptComment(text: string, lineNo: number): void {
    this.collector.structural();
    for (const footer of ALIPAY_FOOTER_LINES) {
      const match = footer.pattern.exec(text);
      if (!match) continue;
      if (this.footerSeen.has(footer.name)) {
        this.collector.error({ line: lineNo, code: 'bad_summary', message: `#${footer.name} appears twice` });
        return;
      }
      this.footerSeen.add(footer.name);
      for (const figure of footer.figures) {
        this.figures.push({ label: figure.label, measure: figure.measure, text: match[figure.group]!, line: lineNo });
      }
      return;
    }
    // Any other '#' line is preface or footer prose (账号, 起始日期, 导出时间…): structural, nothing to check.
  }

  private acceptHeader(text: string, lineNo: number): void {
    this.headerSeen = true;
    this.collector.structural();
    const names = (splitCsvLine(text) ?? []).map((name) => name.trim());
    const missing = REQUIRED_COLUMNS.filter((name) => !names.includes(name));
    if (missing.length > 0) {
      this.collector.error({ line: lineNo, code: 'bad_header', message: `header lacks ${missing.join(', ')}` });
      return;
    }
    this.header = new Map(names.map((name, index) => [name, index]));
    this.headerWidth = names.length;
  }

  private acceptDetail(text: string, lineNo: number): void {
    const header = this.header;
    if (!header) {
      return this.collector.reject([{ line: lineNo, code: 'missing_header', message: 'no usable header' }]);
    }
    const split = splitCsvLine(text);
    if (!split) return this.collector.reject([{ line: lineNo, code: 'column_count', message: 'unbalanced quotes' }]);
    if (split.length !== this.headerWidth) {
      return this.collector.reject([
        { line: lineNo, code: 'column_count', message: `${split.length} fields, the header has ${this.headerWidth}` },
      ]);
    }
    const values = split.map((value) => value.trim());
    const get = (column: string): string | undefined => {
      const index = header.get(column);
      return index === undefined ? undefined : values[index];
    };
    const mapped = mapBillRow(ALIPAY_BILL_SPEC, get, { lineNo, givenDate: null });
    const tallied = this.tally.read(get, lineNo);
    if (!mapped.ok || !tallied.ok) return this.collector.reject(lineErrors(mapped, tallied));
    this.tally.add(mapped.record.kind, tallied.values);
    this.collector.record(mapped.record);
  }
}

export function parseAlipayBill(input: Uint8Array | string, options: AlipayBillOptions = {}): BillParseResult {
  return parseBillWith(new AlipayBillParser(options), input);
}
