import { parseUnionpayZm, UNIONPAY_ZM_LAYOUT, UNIONPAY_ZM_WIDTH } from '../../clearing';

const WIDTHS = [
  3, 11, 11, 6, 10, 19, 12, 4, 2, 21, 2, 32, 2, 6, 10, 13, 13, 4, 15, 2, 2, 6, 2, 4, 32, 1, 21, 15, 1, 15, 32, 13, 13,
  8, 32, 13, 13, 12, 2, 1, 32, 98,
];

/** A ZM line in bytes: each field left-aligned and space-padded to its byte width, one space between fields. */
function zmLine(values: Record<string, string | Buffer>): Buffer {
  const parts = UNIONPAY_ZM_LAYOUT.fields.map((field) => {
    const value = values[field.name] ?? '';
    const bytes = typeof value === 'string' ? Buffer.from(value, 'ascii') : value;
    if (bytes.length > field.length) throw new Error(`${field.name} too long`);
    return Buffer.concat([bytes, Buffer.alloc(field.length - bytes.length, 0x20)]);
  });
  const separated: Buffer[] = [];
  parts.forEach((part, index) => separated.push(...(index > 0 ? [Buffer.from(' ')] : []), part));
  return Buffer.concat(separated);
}

const file = (lines: Buffer[]): Buffer => Buffer.concat(lines.flatMap((line) => [line, Buffer.from('\r\n')]));

// 支付宝 in GBK, written by hand: 6 bytes for 3 characters.
const GBK_NAME = Buffer.from([0xd6, 0xa7, 0xb8, 0xb6, 0xb1, 0xa6]);

const PAYMENT = {
  交易代码: 'S22',
  交易传输时间: '0321135131',
  账号: '6216***********1234',
  交易金额: '000000010000',
  查询流水号: '572103211351310123456',
  商户订单号: 'ORD-3001',
  商户手续费: 'D000000000060',
  结算金额: 'C000000009940',
  交易类型: '01',
  商户代码: '802310048993424',
  二级商户简称: GBK_NAME,
};

describe('UnionPay ZM fixed-width', () => {
  test('the layout is the SDK field table: 42 fields, one space apart', () => {
    expect(UNIONPAY_ZM_LAYOUT.fields.map((f) => f.length)).toEqual(WIDTHS);
    expect(UNIONPAY_ZM_WIDTH).toBe(WIDTHS.reduce((a, b) => a + b, 0) + 41);
  });

  test('parses payment, refund and revoke lines (GBK field sliced by bytes) to exact records', () => {
    const refund = {
      ...PAYMENT,
      交易传输时间: '0321180000',
      交易金额: '000000003000',
      查询流水号: '572103211800000654321',
      商户订单号: 'RF-3001-1',
      商户手续费: 'C000000000018',
      交易类型: '04',
    };
    const revoke = { ...PAYMENT, 查询流水号: '572103211900000000001', 商户订单号: 'RV-3002', 交易类型: '31' };
    const lines = [zmLine(PAYMENT), zmLine(refund), zmLine(revoke)];
    expect(lines[0]!.length).toBe(UNIONPAY_ZM_WIDTH);
    const result = parseUnionpayZm(file(lines), { settleDate: '2024-03-22' });
    expect(result.errors).toEqual([]);
    expect(result.records).toEqual([
      {
        channel: 'unionpay',
        channelTradeNo: '572103211351310123456',
        merchantOrderNo: 'ORD-3001',
        refundNo: null,
        tradeTime: '2024-03-21T13:51:31+08:00',
        businessDate: '2024-03-22',
        kind: 'payment',
        amount: '100.00',
        fee: '0.60',
        status: 'SUCCESS',
        rawLine: 1,
      },
      {
        channel: 'unionpay',
        channelTradeNo: '572103211800000654321',
        merchantOrderNo: 'RF-3001-1',
        refundNo: 'RF-3001-1',
        tradeTime: '2024-03-21T18:00:00+08:00',
        businessDate: '2024-03-22',
        kind: 'refund',
        amount: '30.00',
        fee: '-0.18',
        status: 'SUCCESS',
        rawLine: 2,
      },
      {
        channel: 'unionpay',
        channelTradeNo: '572103211900000000001',
        merchantOrderNo: 'RV-3002',
        refundNo: 'RV-3002',
        tradeTime: '2024-03-21T13:51:31+08:00',
        businessDate: '2024-03-22',
        kind: 'refund',
        amount: '100.00',
        fee: '0.60',
        status: 'REVOKED',
        rawLine: 3,
      },
    ]);
  });

  test('the year of MMDDhhmmss comes from the settle date across a year end', () => {
    const result = parseUnionpayZm(file([zmLine({ ...PAYMENT, 交易传输时间: '1231235959' })]), {
      settleDate: '2025-01-02',
    });
    expect(result.records[0]).toMatchObject({ tradeTime: '2024-12-31T23:59:59+08:00', businessDate: '2025-01-02' });
  });

  test('bad lines are reported by line number; good lines around them are kept', () => {
    const short = zmLine(PAYMENT).subarray(0, UNIONPAY_ZM_WIDTH - 1);
    const noSeparator = Buffer.from(zmLine(PAYMENT));
    noSeparator[3] = 0x30; // the space after 交易代码
    const badAmount = zmLine({ ...PAYMENT, 交易金额: '00000001.234' });
    const exponent = zmLine({ ...PAYMENT, 交易金额: '0000000001e3' });
    const unsignedFee = zmLine({ ...PAYMENT, 商户手续费: '0000000000060' });
    const noSuchDay = zmLine({ ...PAYMENT, 交易传输时间: '0230101010' });
    const brokenGbk = zmLine({ ...PAYMENT, 二级商户简称: Buffer.from([0xd6, 0xa7, 0x81]) }); // lead byte, then padding
    const result = parseUnionpayZm(
      file([
        zmLine(PAYMENT),
        short,
        noSeparator,
        badAmount,
        exponent,
        unsignedFee,
        noSuchDay,
        brokenGbk,
        zmLine(PAYMENT),
      ]),
      { settleDate: '2024-03-22' },
    );
    expect(result.errors.map((e) => `${e.line}:${e.code}`)).toEqual([
      '2:line_length',
      '3:bad_layout',
      '4:bad_amount',
      '5:bad_amount',
      '6:bad_fee',
      '7:bad_date',
      '8:bad_encoding',
    ]);
    expect(result.records.map((r) => r.rawLine)).toEqual([1, 9]);
  });

  test('with no summary row in ZM, totals known from elsewhere are checked through expectedTotals', () => {
    const ok = parseUnionpayZm(file([zmLine(PAYMENT)]), {
      settleDate: '2024-03-22',
      expectedTotals: { paymentCount: 1, paymentAmount: '100.00', fee: '0.60' },
    });
    expect(ok.errors).toEqual([]);
    const wrong = parseUnionpayZm(file([zmLine(PAYMENT)]), {
      settleDate: '2024-03-22',
      expectedTotals: { paymentCount: 2, paymentAmount: '100.01' },
    });
    expect(wrong.errors).toEqual([
      { line: 0, code: 'summary_mismatch', message: 'expected paymentCount 2, parsed 1' },
      { line: 0, code: 'summary_mismatch', message: 'expected paymentAmount 100.01, parsed 100.00' },
    ]);
  });

  test('an invalid settle date is a file error and every line is rejected, not guessed', () => {
    const result = parseUnionpayZm(file([zmLine(PAYMENT)]), { settleDate: '2024-02-30' });
    expect(result.records).toEqual([]);
    expect(result.errors.map((e) => `${e.line}:${e.code}`)).toEqual(['1:bad_date', '0:bad_date']);
  });
});
