import fc from 'fast-check';
import type { BankPaymentBatch, ClearingReportRow } from '../../clearing';
import {
  BANK_PAYMENT_LAYOUTS,
  BANK_PAYMENT_RECORD_WIDTH,
  layoutWidth,
  parseBankPaymentFixedWidth,
  writeBankPaymentCsv,
  writeBankPaymentFixedWidth,
  writeClearingReportCsv,
} from '../../clearing';
import { Money } from '../../core-ledger';

const BATCH: BankPaymentBatch = {
  batchId: 'STL20240322001',
  valueDate: '2024-03-22',
  payerAccount: '11050110000012345678',
  lines: [
    {
      reference: 'STL-M002',
      payeeAccount: '6222020200112233',
      payeeName: 'Hangzhou Lvxing Coffee Co',
      payeeBankCode: '102331000123',
      amount: '1234.5',
      purpose: 'settlement 2024-03-21',
    },
    {
      reference: 'STL-M001',
      payeeAccount: '6222020200445566',
      payeeName: 'Shanghai "Green", Ltd',
      payeeBankCode: '105290000456',
      amount: '0.01',
      purpose: 'settlement 2024-03-21',
    },
  ],
};

const mustWrite = (outcome: ReturnType<typeof writeBankPaymentCsv>): Buffer => {
  if (!outcome.ok) throw new Error(outcome.errors.join('; '));
  return outcome.bytes;
};

describe('settlement bank payment file', () => {
  test('CSV: sorted by reference, numbered after sorting, RFC 4180 quoting, CRLF, UTF-8', () => {
    const text = mustWrite(writeBankPaymentCsv(BATCH)).toString('utf8');
    expect(text).toBe(
      [
        'batch_id,line_no,reference,value_date,payer_account,payee_account,payee_name,payee_bank_code,amount,currency,purpose',
        'STL20240322001,1,STL-M001,2024-03-22,11050110000012345678,6222020200445566,"Shanghai ""Green"", Ltd",105290000456,0.01,CNY,settlement 2024-03-21',
        'STL20240322001,2,STL-M002,2024-03-22,11050110000012345678,6222020200112233,Hangzhou Lvxing Coffee Co,102331000123,1234.50,CNY,settlement 2024-03-21',
        '',
      ].join('\r\n'),
    );
  });

  test('CSV accepts a Chinese payee name; fixed-width refuses it (ASCII only), naming the field', () => {
    const chinese = { ...BATCH, lines: [{ ...BATCH.lines[0]!, payeeName: '杭州绿行咖啡有限公司' }] };
    expect(mustWrite(writeBankPaymentCsv(chinese)).toString('utf8')).toContain(',杭州绿行咖啡有限公司,');
    expect(writeBankPaymentFixedWidth(chinese)).toEqual({
      ok: false,
      errors: ['detail.payeeName: only printable ASCII is allowed'],
    });
  });

  test('fixed-width: every record has the same width; amounts in fen, right-aligned, zero-padded', () => {
    for (const layout of Object.values(BANK_PAYMENT_LAYOUTS))
      expect(layoutWidth(layout)).toBe(BANK_PAYMENT_RECORD_WIDTH);
    const records = mustWrite(writeBankPaymentFixedWidth(BATCH)).toString('ascii').split('\r\n');
    expect(records.pop()).toBe('');
    expect(records.map((r) => r.length)).toEqual([191, 191, 191, 191]);
    expect(records.map((r) => r[0])).toEqual(['H', 'D', 'D', 'T']);
    expect(records[0]!.slice(0, 82)).toBe(
      'H' + 'STL20240322001'.padEnd(20) + '20240322' + '11050110000012345678'.padEnd(32) + '000002' + '000000000123451',
    );
    // D: type 1, lineNo 6, reference 32, account 32, name 60, bank code 12, then the amount in fen (15).
    expect(records[1]!.slice(1, 7)).toBe('000001');
    expect(records[1]!.slice(143, 158)).toBe('000000000000001');
    expect(records[2]!.slice(143, 161)).toBe('000000000123450CNY');
    expect(records[3]!.slice(0, 22)).toBe('T000002000000000123451');
  });

  test('both writers are deterministic: same batch, any line order → byte-identical output', () => {
    const reversed = { ...BATCH, lines: [...BATCH.lines].reverse() };
    for (const write of [writeBankPaymentCsv, writeBankPaymentFixedWidth]) {
      const first = mustWrite(write(BATCH));
      expect(mustWrite(write(BATCH)).equals(first)).toBe(true);
      expect(mustWrite(write(reversed)).equals(first)).toBe(true);
    }
  });

  test('invalid batches are refused with every reason, never truncated or rounded', () => {
    const bad: BankPaymentBatch = {
      ...BATCH,
      lines: [
        { ...BATCH.lines[0]!, amount: '1.234' },
        { ...BATCH.lines[1]!, amount: '1e3', payeeBankCode: '12345' },
        { ...BATCH.lines[1]!, reference: 'STL-M002', purpose: 'line\nbreak' },
      ],
    };
    expect(writeBankPaymentCsv(bad)).toEqual({
      ok: false,
      errors: [
        'STL-M002: amount "1.234" (too_many_decimals)',
        'STL-M001: amount "1e3" (not_a_decimal_string)',
        'STL-M001: payeeBankCode is not 12 digits',
        'reference "STL-M002" appears twice',
        'purpose "line\\nbreak" holds a control character',
      ],
    });
    const long = { ...BATCH, lines: [{ ...BATCH.lines[0]!, payeeName: 'x'.repeat(61) }] };
    expect(writeBankPaymentFixedWidth(long)).toEqual({
      ok: false,
      errors: ['detail.payeeName: 61 characters, at most 60'],
    });
  });

  test('a tampered trailer total is caught when the file is read back', () => {
    const bytes = Buffer.from(mustWrite(writeBankPaymentFixedWidth(BATCH)));
    const trailerStart = bytes.length - 2 - 191;
    bytes[trailerStart + 21] = 0x32; // last fen digit of the trailer total: 1 → 2
    expect(parseBankPaymentFixedWidth(bytes)).toEqual({
      ok: false,
      errors: ['trailer total 1234.52, details 1234.51'],
    });
  });

  const ascii = (max: number) =>
    fc
      .string({ unit: fc.constantFrom(...'ABCXYZabc019-_ ./&#'.split('')), minLength: 1, maxLength: max })
      .filter((s) => s.trim() === s);
  const line = fc.record({
    reference: ascii(32),
    payeeAccount: fc.string({ unit: fc.constantFrom(...'0123456789'.split('')), minLength: 1, maxLength: 32 }),
    payeeName: ascii(60),
    payeeBankCode: fc.string({ unit: fc.constantFrom(...'0123456789'.split('')), minLength: 12, maxLength: 12 }),
    // Fen as a bigint so the amount never passes through a JS number.
    amount: fc.bigInt({ min: 1n, max: 10n ** 13n - 1n }).map((fen) => new Money(fen.toString()).div(100).toFixed(2)),
    purpose: fc.option(ascii(30), { nil: '' }),
  });

  test('property: parse ∘ write is the identity on valid batches (lines come back sorted by reference)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(line, { selector: (l) => l.reference, minLength: 1, maxLength: 20 }),
        ascii(20),
        (lines, batchId) => {
          const batch: BankPaymentBatch = {
            batchId,
            valueDate: '2024-03-22',
            payerAccount: '11050110000012345678',
            lines,
          };
          const parsed = parseBankPaymentFixedWidth(mustWrite(writeBankPaymentFixedWidth(batch)));
          const sorted = [...lines].sort((a, b) => (a.reference < b.reference ? -1 : 1));
          expect(parsed).toEqual({ ok: true, batch: { ...batch, lines: sorted } });
        },
      ),
      { numRuns: 200 },
    );
  });
});

const row = (merchantId: string, overrides: Partial<ClearingReportRow> = {}): ClearingReportRow => ({
  businessDate: '2024-03-21',
  merchantId,
  paymentCount: 3,
  paymentAmount: '300.00',
  refundCount: 1,
  refundAmount: '30.00',
  fee: '1.62',
  adjustment: '0.00',
  carriedIn: '0.00',
  net: '268.38',
  payout: '268.38',
  carriedOut: '0.00',
  ...overrides,
});

describe('clearing report CSV', () => {
  const negative = row('M-002', {
    paymentCount: 0,
    paymentAmount: '0.00',
    refundAmount: '50.00',
    fee: '-0.30',
    carriedIn: '-10.00',
    net: '-59.70',
    payout: '0.00',
    carriedOut: '-59.70',
  });

  test('rows sorted by date then merchant, a TOTAL row, LF, byte-identical for any input order', () => {
    const rows = [negative, row('M-001'), row('M-001', { businessDate: '2024-03-20' })];
    const bytes = writeClearingReportCsv(rows);
    expect(bytes.toString('utf8')).toBe(
      [
        'business_date,merchant_id,payment_count,payment_amount,refund_count,refund_amount,fee,adjustment,carried_in,net,payout,carried_out',
        '2024-03-20,M-001,3,300.00,1,30.00,1.62,0.00,0.00,268.38,268.38,0.00',
        '2024-03-21,M-001,3,300.00,1,30.00,1.62,0.00,0.00,268.38,268.38,0.00',
        '2024-03-21,M-002,0,0.00,1,50.00,-0.30,0.00,-10.00,-59.70,0.00,-59.70',
        'TOTAL,,6,600.00,3,110.00,2.94,0.00,-10.00,477.06,536.76,-59.70',
        '',
      ].join('\n'),
    );
    expect(writeClearingReportCsv([...rows].reverse()).equals(bytes)).toBe(true);
  });

  test('a row that does not add up, or a duplicate row, is an assertion failure (a bug upstream)', () => {
    expect(() => writeClearingReportCsv([row('M-001', { net: '268.39', payout: '268.39' })])).toThrow(/assertion/);
    expect(() => writeClearingReportCsv([row('M-001', { payout: '0.00', carriedOut: '268.38' })])).toThrow(/assertion/);
    expect(() => writeClearingReportCsv([row('M-001'), row('M-001')])).toThrow(/two report rows/);
    expect(() => writeClearingReportCsv([row('M-001', { fee: '1.625' })])).toThrow(/malformed/);
  });
});
