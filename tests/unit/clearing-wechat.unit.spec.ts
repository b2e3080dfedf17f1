import type { BillRecord } from '../../clearing';
import { BillReader, parseWechatTradeBill, WechatTradeBillParser } from '../../clearing';

// The ALL-bill header from the notes (§2.1, official format page).
const HEADER =
  '交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注';
const COLUMNS = HEADER.split(',');
const SUMMARY_HEADER = '总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额';

// The official sample detail row (notes §2.1), verbatim.
const OFFICIAL_ROW =
  '`2022-03-21 13:51:31,`wxfdc955f7104ad557,`180023671,`176531292,`,`420000612032130748613220688,`2021WERUN1647840687637,`oZWaCKXip5njeEiloC4oeOV1TTsk,`JSAPI,`SUCCESS,`OTHERS,`CNY,`0.01,`0.00,`0,`0,`0.00,`0.00,`,`,`微信云托管支付测试,`,`0.00000,`0.90%,`0.01,`0.00,`';

/** A detail row from named values; every other column is '`' + empty, as WeChat writes it. */
function row(values: Record<string, string>): string {
  for (const name of Object.keys(values)) if (!COLUMNS.includes(name)) throw new Error(`no column ${name}`);
  return COLUMNS.map((name) => '`' + (values[name] ?? '')).join(',');
}

const PAYMENT = row({
  交易时间: '2022-03-21 09:15:02',
  公众账号ID: 'wxfdc955f7104ad557',
  商户号: '180023671',
  微信订单号: '4200001234202203210000000001',
  商户订单号: 'ORD-1001',
  交易类型: 'JSAPI',
  交易状态: 'SUCCESS',
  货币种类: 'CNY',
  应结订单金额: '100.00',
  代金券金额: '0.00',
  退款金额: '0.00',
  充值券退款金额: '0.00',
  商品名称: '咖啡,大杯', // a comma inside a value: the ",`" separator keeps it one field
  手续费: '0.60000',
  费率: '0.60%',
  订单金额: '100.00',
  申请退款金额: '0.00',
});

const REFUND = row({
  交易时间: '2022-03-21 18:40:00',
  微信订单号: '4200001234202203210000000001',
  商户订单号: 'ORD-1001',
  交易类型: 'JSAPI',
  交易状态: 'REFUND',
  货币种类: 'CNY',
  应结订单金额: '0.00',
  代金券金额: '0.00',
  微信退款单号: '50300001234202203210000000007',
  商户退款单号: 'RF-1001-1',
  退款金额: '30.00',
  充值券退款金额: '0.00',
  退款类型: 'ORIGINAL',
  退款状态: 'PROCESSING',
  手续费: '-0.18000',
  费率: '0.60%',
  订单金额: '0.00',
  申请退款金额: '30.00',
});

const summary = (count: string, settled: string, refunds: string, fees: string, orders: string, asked: string) =>
  [count, settled, refunds, '0.00', fees, orders, asked].map((v) => '`' + v).join(',');

const GOOD_SUMMARY = summary('3', '100.01', '30.00', '0.42000', '100.01', '30.00');

function file(lines: string[]): string {
  return lines.join('\r\n') + '\r\n';
}

const EXPECTED: BillRecord[] = [
  {
    channel: 'wechat',
    channelTradeNo: '4200001234202203210000000001',
    merchantOrderNo: 'ORD-1001',
    refundNo: null,
    tradeTime: '2022-03-21T09:15:02+08:00',
    businessDate: '2022-03-21',
    kind: 'payment',
    amount: '100.00',
    fee: '0.60',
    status: 'SUCCESS',
    rawLine: 2,
  },
  {
    channel: 'wechat',
    channelTradeNo: '420000612032130748613220688',
    merchantOrderNo: '2021WERUN1647840687637',
    refundNo: null,
    tradeTime: '2022-03-21T13:51:31+08:00',
    businessDate: '2022-03-21',
    kind: 'payment',
    amount: '0.01',
    fee: '0.00',
    status: 'SUCCESS',
    rawLine: 3,
  },
  {
    channel: 'wechat',
    channelTradeNo: '50300001234202203210000000007',
    merchantOrderNo: 'ORD-1001',
    refundNo: 'RF-1001-1',
    tradeTime: '2022-03-21T18:40:00+08:00',
    businessDate: '2022-03-21',
    kind: 'refund',
    amount: '30.00',
    fee: '-0.18',
    status: 'PROCESSING',
    rawLine: 4,
  },
];

describe('WeChat Pay trade bill', () => {
  test('the official sample row has as many fields as the header', () => {
    expect(OFFICIAL_ROW.slice(1).split(',`')).toHaveLength(COLUMNS.length);
  });

  test('parses a bill to exact records, totals and line accounting', () => {
    const result = parseWechatTradeBill(file([HEADER, PAYMENT, OFFICIAL_ROW, REFUND, SUMMARY_HEADER, GOOD_SUMMARY]));
    expect(result.errors).toEqual([]);
    expect(result.records).toEqual(EXPECTED);
    expect(result.totals).toEqual({
      paymentCount: 2,
      paymentAmount: '100.01',
      refundCount: 1,
      refundAmount: '30.00',
      fee: '0.42',
    });
    expect(result.lines).toEqual({ total: 6, records: 3, rejected: 0, structural: 3, unread: 0 });
  });

  test('streaming in 7-byte chunks (cutting UTF-8 characters) gives the same result, records via onRecord', () => {
    const bytes = Buffer.from(file([HEADER, PAYMENT, OFFICIAL_ROW, REFUND, SUMMARY_HEADER, GOOD_SUMMARY]), 'utf8');
    const streamed: BillRecord[] = [];
    const reader = new BillReader(new WechatTradeBillParser({ onRecord: (record) => streamed.push(record) }));
    for (let offset = 0; offset < bytes.length; offset += 7) reader.push(bytes.subarray(offset, offset + 7));
    const result = reader.end();
    expect(streamed).toEqual(EXPECTED);
    expect(result.records).toEqual([]);
    expect(result.errors).toEqual([]);
  });

  test('bad lines are reported with their line numbers and codes; the other lines are still parsed', () => {
    const missingField = PAYMENT.slice(0, PAYMENT.lastIndexOf(',`'));
    const threeDecimals = PAYMENT.replace('`100.00,`0.00,`', '`1.234,`0.00,`');
    const exponent = PAYMENT.replace('`100.00,`0.00,`', '`1e3,`0.00,`');
    const noSuchDay = PAYMENT.replace('2022-03-21 09:15:02', '2022-02-30 09:15:02');
    const result = parseWechatTradeBill(
      file([
        HEADER,
        PAYMENT,
        missingField,
        OFFICIAL_ROW,
        threeDecimals,
        exponent,
        REFUND,
        noSuchDay,
        SUMMARY_HEADER,
        GOOD_SUMMARY,
      ]),
    );
    expect(result.errors.map(({ line, code }) => ({ line, code }))).toEqual([
      { line: 3, code: 'column_count' },
      { line: 5, code: 'bad_amount' },
      { line: 6, code: 'bad_amount' },
      { line: 8, code: 'bad_date' },
    ]);
    expect(result.errors[1]!.message).toMatch(/应结订单金额.*too_many_decimals/);
    expect(result.records.map((r) => r.rawLine)).toEqual([2, 4, 7]);
    expect(result.records.map((r) => r.amount)).toEqual(['100.00', '0.01', '30.00']);
    expect(result.lines).toEqual({ total: 10, records: 3, rejected: 4, structural: 3, unread: 0 });
  });

  test('a summary that does not add up is an error on the summary line, per figure', () => {
    const wrong = summary('4', '100.02', '30.00', '0.42', '100.01', '30.00');
    const result = parseWechatTradeBill(file([HEADER, PAYMENT, OFFICIAL_ROW, REFUND, SUMMARY_HEADER, wrong]));
    expect(result.records).toHaveLength(3);
    expect(result.errors).toEqual([
      { line: 6, code: 'summary_mismatch', message: '总交易单数: file says 4, parsed lines give 3' },
      { line: 6, code: 'summary_mismatch', message: '应结订单总金额: file says 100.02, parsed lines give 100.01' },
    ]);
  });

  test('the official sample file is itself inconsistent: one row, a summary of 12 rows and 0.06', () => {
    const sample = file([HEADER, OFFICIAL_ROW, SUMMARY_HEADER, '`12,`0.06,`0.06,`0.00,`0.00000,`0.06,`0.06']);
    const codes = parseWechatTradeBill(sample).errors.map((e) => `${e.line}:${e.code}:${e.message.split(':')[0]}`);
    expect(codes).toEqual([
      '4:summary_mismatch:总交易单数',
      '4:summary_mismatch:应结订单总金额',
      '4:summary_mismatch:退款总金额',
      '4:summary_mismatch:订单总金额',
      '4:summary_mismatch:申请退款总金额',
    ]);
  });

  test('a file without summary, with text after it, or without header is reported, never silently cut', () => {
    expect(parseWechatTradeBill(file([HEADER, PAYMENT])).errors).toEqual([
      { line: 0, code: 'missing_summary', message: 'no summary row (总交易单数…)' },
    ]);
    const trailing = parseWechatTradeBill(
      file([HEADER, PAYMENT, SUMMARY_HEADER, summary('1', '100.00', '0.00', '0.60', '100.00', '0.00'), 'x']),
    );
    expect(trailing.errors).toEqual([{ line: 5, code: 'unexpected_line', message: 'text after the summary row' }]);
    const headless = parseWechatTradeBill(file([PAYMENT, SUMMARY_HEADER, GOOD_SUMMARY]));
    expect(headless.records).toEqual([]);
    expect(headless.errors.slice(0, 2).map((e) => `${e.line}:${e.code}`)).toEqual([
      '1:missing_header',
      '1:missing_header',
    ]);
    expect(headless.lines.rejected).toBe(1);
  });

  test('a SUCCESS-only bill (no refund columns) maps by header name', () => {
    const columns = [
      '交易时间',
      '微信订单号',
      '商户订单号',
      '交易状态',
      '货币种类',
      '应结订单金额',
      '手续费',
      '订单金额',
    ];
    const values = ['2022-03-21 09:15:02', '4200000001', 'ORD-9', 'SUCCESS', 'CNY', '12.30', '0.07380', '12.30'];
    const result = parseWechatTradeBill(
      file([
        columns.join(','),
        values.map((v) => '`' + v).join(','),
        '总交易单数,应结订单总金额,手续费总金额,订单总金额',
        '`1,`12.30,`0.07380,`12.30',
      ]),
    );
    expect(result.errors).toEqual([]);
    expect(result.records).toEqual([
      expect.objectContaining({ channelTradeNo: '4200000001', amount: '12.30', fee: '0.0738', rawLine: 2 }),
    ]);
  });

  test('a currency other than CNY and an unknown status are refused', () => {
    const usd = PAYMENT.replace('`CNY,', '`USD,');
    const closed = PAYMENT.replace('`SUCCESS,', '`CLOSED,');
    const result = parseWechatTradeBill(file([HEADER, usd, closed]));
    expect(result.errors.map((e) => `${e.line}:${e.code}`)).toEqual([
      '2:bad_currency',
      '3:bad_kind',
      '0:missing_summary',
    ]);
  });
});
