import type { BillRecord } from '../../clearing';
import { AlipayBillParser, BillReader, parseAlipayBill } from '../../clearing';

const HEADER =
  '支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注';
const COLUMNS = HEADER.split(',');

/** A detail line from named values, with Alipay's trailing TAB after ID fields. */
function row(values: Record<string, string>): string {
  for (const name of Object.keys(values)) if (!COLUMNS.includes(name)) throw new Error(`no column ${name}`);
  const tabbed = new Set(['支付宝交易号', '商户订单号', '业务类型', '门店编号', '退款批次号/请求号']);
  return COLUMNS.map((name) => (values[name] ?? '') + (tabbed.has(name) ? '\t' : '')).join(',');
}

const PAYMENT = row({
  支付宝交易号: '2019091622001458860515315453',
  商户订单号: 'service_1568601259302',
  业务类型: '交易',
  商品名称: '下单测试',
  创建时间: '2019-09-16 10:55:16',
  完成时间: '2019-09-16 10:55:23',
  '订单金额（元）': '88.00',
  '商家实收（元）': '88.00',
  '商家优惠（元）': '0.00',
  '服务费（元）': '-0.53',
});
const REFUND = row({
  支付宝交易号: '2019091622001458860515315453',
  商户订单号: 'service_1568601259302',
  业务类型: '退款',
  商品名称: '下单测试',
  创建时间: '2019-09-16 10:55:16',
  完成时间: '2019-09-16 10:56:48',
  '订单金额（元）': '-8.00',
  '商家实收（元）': '-8.00',
  '商家优惠（元）': '0.00',
  '退款批次号/请求号': 're_test_1568602607356',
  '服务费（元）': '0.05',
});

function bill(
  details: string[],
  footer = [
    '#交易合计：1笔，商家实收共88.00元，商家优惠共0.00元',
    '#退款合计：1笔，商家实收退款共-8.00元，商家优惠退款共0.00元',
  ],
): string {
  return [
    '#支付宝业务明细查询',
    '#账号：[20880211096256330156]',
    '#起始日期：[2019年09月16日 00:00:00]   终止日期：[2019年09月17日 00:00:00]',
    '#-----------------------------------------业务明细列表----------------------------------------',
    HEADER,
    ...details,
    '#-----------------------------------------业务明细列表结束------------------------------------',
    ...footer,
    '#导出时间：[2019年09月17日 06:27:10]',
    '',
  ].join('\r\n');
}

const EXPECTED: BillRecord[] = [
  {
    channel: 'alipay',
    channelTradeNo: '2019091622001458860515315453',
    merchantOrderNo: 'service_1568601259302',
    refundNo: null,
    tradeTime: '2019-09-16T10:55:23+08:00',
    businessDate: '2019-09-16',
    kind: 'payment',
    amount: '88.00',
    fee: '0.53',
    status: 'SUCCESS',
    rawLine: 6,
  },
  {
    channel: 'alipay',
    channelTradeNo: '2019091622001458860515315453',
    merchantOrderNo: 'service_1568601259302',
    refundNo: 're_test_1568602607356',
    tradeTime: '2019-09-16T10:56:48+08:00',
    businessDate: '2019-09-16',
    kind: 'refund',
    amount: '8.00',
    fee: '-0.05',
    status: 'SUCCESS',
    rawLine: 7,
  },
];

/**
 * GBK encoding for the test: the reverse of Node's GBK decoder over all two-byte codes, anchored below on bytes
 * written by hand (支付宝 = D6 A7 B8 B6 B1 A6).
 */
let gbkTable: Map<string, number[]> | null = null;
function gbk(text: string): Buffer {
  if (!gbkTable) {
    gbkTable = new Map();
    const decoder = new TextDecoder('gbk', { fatal: true });
    for (let lead = 0x81; lead <= 0xfe; lead += 1) {
      for (let trail = 0x40; trail <= 0xfe; trail += 1) {
        if (trail === 0x7f) continue;
        try {
          const char = decoder.decode(Uint8Array.of(lead, trail));
          if (char.length === 1 && !gbkTable.has(char)) gbkTable.set(char, [lead, trail]);
        } catch {
          // not a GBK code
        }
      }
    }
  }
  const bytes: number[] = [];
  for (const char of text) {
    const code = char.charCodeAt(0);
    if (code < 0x80) bytes.push(code);
    else {
      const pair = gbkTable.get(char);
      if (!pair) throw new Error(`no GBK code for ${char}`);
      bytes.push(...pair);
    }
  }
  return Buffer.from(bytes);
}

describe('Alipay trade bill', () => {
  test('parses a UTF-8 bill with # preface/footer and TAB-suffixed IDs to exact records', () => {
    const result = parseAlipayBill(bill([PAYMENT, REFUND]));
    expect(result.errors).toEqual([]);
    expect(result.records).toEqual(EXPECTED);
    expect(result.totals).toEqual({
      paymentCount: 1,
      paymentAmount: '88.00',
      refundCount: 1,
      refundAmount: '8.00',
      fee: '0.48',
    });
    expect(result.lines).toEqual({ total: 11, records: 2, rejected: 0, structural: 9, unread: 0 });
  });

  test('our GBK encoder agrees with GBK bytes written by hand', () => {
    expect([...gbk('支付宝')]).toEqual([0xd6, 0xa7, 0xb8, 0xb6, 0xb1, 0xa6]);
  });

  test('decodes the same bill in GBK (auto-detected), streamed in 5-byte chunks', () => {
    const bytes = gbk(bill([PAYMENT, REFUND]));
    expect(() => new TextDecoder('utf-8', { fatal: true }).decode(bytes)).toThrow();
    const parser = new AlipayBillParser();
    const reader = new BillReader(parser);
    for (let offset = 0; offset < bytes.length; offset += 5) reader.push(bytes.subarray(offset, offset + 5));
    const result = reader.end();
    expect(parser.encoding).toBe('gbk');
    expect(result.errors).toEqual([]);
    expect(result.records).toEqual(EXPECTED);
  });

  test('GBK bytes read as UTF-8 are bad_encoding per line, never dropped or garbled', () => {
    const result = parseAlipayBill(gbk(bill([PAYMENT, REFUND])), { encoding: 'utf-8' });
    expect(result.records).toEqual([]);
    const rejected = result.errors.filter((e) => e.code === 'bad_encoding').map((e) => e.line);
    // Every line of this bill holds Chinese text: preface 1–4, header 5, details 6–7, footer 8–11.
    expect(rejected).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(result.lines.rejected + result.lines.structural).toBe(result.lines.total);
  });

  test('bad lines are reported with line numbers; the rest is parsed and the totals still check', () => {
    const positiveRefund = REFUND.replace(/-8\.00/g, '8.00');
    const exponent = PAYMENT.replace(/88\.00/g, '1e3');
    const shortRow = PAYMENT.split(',').slice(0, 20).join(',');
    const badDate = PAYMENT.replace('2019-09-16 10:55:23', '2019-13-01 10:55:23');
    const result = parseAlipayBill(bill([PAYMENT, positiveRefund, exponent, shortRow, badDate, REFUND]));
    expect(result.errors.map((e) => `${e.line}:${e.code}`)).toEqual([
      '7:bad_amount',
      '8:bad_amount',
      '9:column_count',
      '10:bad_date',
    ]);
    expect(result.errors[0]!.message).toBe('商家实收（元）: "8.00" must be < 0');
    expect(result.records.map((r) => r.rawLine)).toEqual([6, 11]);
  });

  test('footer totals that disagree with the lines, or a missing footer line, are errors', () => {
    const wrong = [
      '#交易合计：2笔，商家实收共88.00元，商家优惠共0.00元',
      '#退款合计：1笔，商家实收退款共-3000.00元，商家优惠退款共0.00元',
    ];
    const result = parseAlipayBill(bill([PAYMENT, REFUND], wrong));
    expect(result.errors).toEqual([
      { line: 9, code: 'summary_mismatch', message: '交易合计笔数: file says 2, parsed lines give 1' },
      { line: 10, code: 'summary_mismatch', message: '退款合计商家实收: file says -3000.00, parsed lines give -8.00' },
    ]);
    const missing = parseAlipayBill(bill([PAYMENT], ['#交易合计：1笔，商家实收共88.00元，商家优惠共0.00元']));
    expect(missing.errors).toEqual([{ line: 0, code: 'missing_summary', message: 'no #退款合计 line' }]);
  });
});
