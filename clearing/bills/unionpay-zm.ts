import type { FixedLayout } from '../files/fixed-width';
import { layoutWidth, sliceFixedWidth } from '../files/fixed-width';
import type { BillLineError, BillParseOptions, BillParseResult } from './bill-record';
import { BillCollector } from './bill-record';
import { parseIsoDate } from './fields';
import type { BillEncoding, BillLineParser } from './line-reader';
import { parseBillWith } from './line-reader';
import type { BillRowSpec } from './row-spec';
import { mapBillRow } from './row-spec';

/**
 * UnionPay 全渠道 merchant reconciliation file ZM (notes §2.3 [code: ACP SDK parseZMFile]). Fixed-width in bytes,
 * GBK, one space between fields, 42 fields. Field widths are the SDK's; names 1–40 from the community field map,
 * 41–42 unnamed in the notes. The file has no summary row: totals known from elsewhere can be checked through
 * `expectedTotals`. Amount encodings are [unverified]: 交易金额 is read as 12 digits of fen, 商户手续费 as C/D + 12
 * digits of fen (D = debited from us, i.e. charged).
 */

const ZM_FIELDS: readonly [string, number][] = [
  ['交易代码', 3],
  ['代理机构标识码', 11],
  ['发送机构标识码', 11],
  ['系统跟踪号', 6],
  ['交易传输时间', 10],
  ['账号', 19],
  ['交易金额', 12],
  ['商户类别', 4],
  ['终端类型', 2],
  ['查询流水号', 21],
  ['支付方式（旧）', 2],
  ['商户订单号', 32],
  ['支付卡类型', 2],
  ['原始交易系统跟踪号', 6],
  ['原始交易日期时间', 10],
  ['商户手续费', 13],
  ['结算金额', 13],
  ['支付方式', 4],
  ['集团商户代码', 15],
  ['交易类型', 2],
  ['交易子类', 2],
  ['业务类型', 6],
  ['账号类型', 2],
  ['账单类型', 4],
  ['账单号码', 32],
  ['交互方式', 1],
  ['原交易查询流水号', 21],
  ['商户代码', 15],
  ['分账入账方式', 1],
  ['二级商户代码', 15],
  ['二级商户简称', 32],
  ['二级商户分账入账金额', 13],
  ['清算净额', 13],
  ['终端号', 8],
  ['商户自定义域', 32],
  ['优惠金额', 13],
  ['发票金额', 13],
  ['分期付款附加手续费', 12],
  ['分期付款期数', 2],
  ['交易介质', 1],
  ['字段41', 32],
  ['保留域', 98],
];

export const UNIONPAY_ZM_LAYOUT: FixedLayout = {
  name: 'unionpay-zm',
  separator: ' ',
  fields: ZM_FIELDS.map(([name, length]) => ({ name, length, type: 'text' as const })),
};

export const UNIONPAY_ZM_WIDTH = layoutWidth(UNIONPAY_ZM_LAYOUT);

const PAYMENT_FIELDS = {
  channelTradeNo: '查询流水号',
  merchantOrderNo: '商户订单号',
  amount: '交易金额',
  amountSign: 'positive',
  fee: '商户手续费',
} as const;

export const UNIONPAY_ZM_SPEC: BillRowSpec = {
  channel: 'unionpay',
  // txnType as in the ACP API: 01 consumption, 04 refund (退货), 31 consumption revoke (撤销).
  kindColumn: '交易类型',
  kinds: {
    '01': { kind: 'payment', ...PAYMENT_FIELDS, refundNo: null, status: { fixed: 'SUCCESS' } },
    // A UnionPay refund is an order of its own: its orderId is our refund reference.
    '04': { kind: 'refund', ...PAYMENT_FIELDS, refundNo: '商户订单号', status: { fixed: 'SUCCESS' } },
    '31': { kind: 'refund', ...PAYMENT_FIELDS, refundNo: '商户订单号', status: { fixed: 'REVOKED' } },
  },
  timeColumn: '交易传输时间',
  timeFormat: 'mmddhhmmss',
  amountFormat: 'fen_digits',
  feeFormat: 'signed_fen',
  // D (debit to us) is parsed as negative; a charged fee is positive in the record.
  feeSign: 'negated',
  currencyColumn: null,
  // UnionPay keys files by its own settleDate, which can differ from the transaction date (notes §1.2).
  businessDate: 'given',
};

export interface UnionpayZmOptions extends BillParseOptions {
  /** The settleDate the file was requested for (YYYY-MM-DD); gives the year to MMDDhhmmss and the business date. */
  readonly settleDate: string;
  /** 'gbk' by default (the SDK reads the file as GBK). */
  readonly encoding?: Exclude<BillEncoding, 'auto'>;
}

export class UnionpayZmParser implements BillLineParser {
  readonly collector: BillCollector;
  private readonly decoder: InstanceType<typeof TextDecoder>;
  private readonly settleDateValid: boolean;

  constructor(private readonly options: UnionpayZmOptions) {
    this.collector = new BillCollector('unionpay', options);
    this.decoder = new TextDecoder(options.encoding ?? 'gbk', { fatal: true });
    this.settleDateValid = parseIsoDate(options.settleDate).ok;
  }

  acceptLine(bytes: Uint8Array, lineNo: number): void {
    if (bytes.every((byte) => byte === 0x20)) return this.collector.structural();
    const sliced = sliceFixedWidth(UNIONPAY_ZM_LAYOUT, bytes);
    if (!sliced.ok) return this.collector.reject([{ line: lineNo, code: sliced.code, message: sliced.message }]);
    const values = new Map<string, string>();
    const errors: BillLineError[] = [];
    for (const [name, raw] of sliced.values) {
      try {
        values.set(name, this.decoder.decode(raw).trim());
      } catch {
        errors.push({ line: lineNo, code: 'bad_encoding', message: `${name} is not valid ${this.decoder.encoding}` });
      }
    }
    if (errors.length > 0) return this.collector.reject(errors);
    const mapped = mapBillRow(UNIONPAY_ZM_SPEC, (column) => values.get(column), {
      lineNo,
      givenDate: this.settleDateValid ? this.options.settleDate : null,
    });
    if (!mapped.ok) return this.collector.reject(mapped.errors);
    this.collector.record(mapped.record);
  }

  finish(): BillParseResult {
    if (!this.settleDateValid) {
      this.collector.error({
        line: 0,
        code: 'bad_date',
        message: `settleDate ${JSON.stringify(this.options.settleDate)}`,
      });
    }
    return this.collector.result();
  }
}

export function parseUnionpayZm(input: Uint8Array | string, options: UnionpayZmOptions): BillParseResult {
  return parseBillWith(new UnionpayZmParser(options), input);
}
