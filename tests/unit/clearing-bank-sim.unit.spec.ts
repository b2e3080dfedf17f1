import { BankSimStatementParser, BillReader, MAX_BILL_LINE_BYTES, parseBankSimStatement } from '../../clearing';

const CREDIT = 'D|BS0001|ORD-1001||CREDIT|100.00|0.60|2024-03-21T10:00:00+08:00|SUCCESS';
const DEBIT = 'D|BS0002|ORD-1001|RF-1001-1|DEBIT|30.00|-0.18|2024-03-21T23:59:59+08:00|SUCCESS';

const statement = (lines: string[]): string => lines.join('\n') + '\n';

describe('bank_sim statement', () => {
  test('parses the documented example to exact records (business date from the H record)', () => {
    const result = parseBankSimStatement(
      statement(['H|CARBONPAY-BANK-SIM|1|2024-03-22', CREDIT, DEBIT, 'T|2|100.00|30.00|0.42']),
    );
    expect(result.errors).toEqual([]);
    expect(result.records).toEqual([
      {
        channel: 'bank_sim',
        channelTradeNo: 'BS0001',
        merchantOrderNo: 'ORD-1001',
        refundNo: null,
        tradeTime: '2024-03-21T10:00:00+08:00',
        businessDate: '2024-03-22',
        kind: 'payment',
        amount: '100.00',
        fee: '0.60',
        status: 'SUCCESS',
        rawLine: 2,
      },
      {
        channel: 'bank_sim',
        channelTradeNo: 'BS0002',
        merchantOrderNo: 'ORD-1001',
        refundNo: 'RF-1001-1',
        tradeTime: '2024-03-21T23:59:59+08:00',
        businessDate: '2024-03-22',
        kind: 'refund',
        amount: '30.00',
        fee: '-0.18',
        status: 'SUCCESS',
        rawLine: 3,
      },
    ]);
  });

  test('bad lines are reported with line numbers and the rest is parsed', () => {
    const result = parseBankSimStatement(
      statement([
        'H|CARBONPAY-BANK-SIM|1|2024-03-22',
        CREDIT,
        CREDIT.replace('|SUCCESS', ''),
        CREDIT.replace('100.00', '1.234'),
        CREDIT.replace('100.00', '1e3'),
        CREDIT.replace('2024-03-21T10', '2024-03-32T10'),
        CREDIT.replace('+08:00', 'Z'),
        DEBIT.replace('|30.00|', '|-30.00|'),
        'X|what',
        DEBIT,
        'T|2|100.00|30.00|0.42',
      ]),
    );
    expect(result.errors.map((e) => `${e.line}:${e.code}`)).toEqual([
      '3:column_count',
      '4:bad_amount',
      '5:bad_amount',
      '6:bad_date',
      '7:bad_date',
      '8:bad_amount',
      '9:unexpected_line',
    ]);
    expect(result.records.map((r) => r.rawLine)).toEqual([2, 10]);
    expect(result.lines).toEqual({ total: 11, records: 2, rejected: 7, structural: 2, unread: 0 });
  });

  test('a trailer that disagrees is a summary_mismatch per figure; a missing trailer is reported', () => {
    const wrong = parseBankSimStatement(
      statement(['H|CARBONPAY-BANK-SIM|1|2024-03-22', CREDIT, DEBIT, 'T|2|100.00|31.00|0.60']),
    );
    expect(wrong.errors).toEqual([
      { line: 4, code: 'summary_mismatch', message: 'debit_total: file says 31.00, parsed lines give 30.00' },
      { line: 4, code: 'summary_mismatch', message: 'fee_total: file says 0.60, parsed lines give 0.42' },
    ]);
    const cut = parseBankSimStatement(statement(['H|CARBONPAY-BANK-SIM|1|2024-03-22', CREDIT]));
    expect(cut.errors).toEqual([{ line: 0, code: 'missing_summary', message: 'no T record' }]);
  });

  test('records before the header or after the trailer are rejected, not attached to another day', () => {
    const result = parseBankSimStatement(
      statement([CREDIT, 'H|CARBONPAY-BANK-SIM|1|2024-03-22', 'T|0|0.00|0.00|0.00', DEBIT]),
    );
    expect(result.records).toEqual([]);
    expect(result.errors.map((e) => `${e.line}:${e.code}`)).toEqual(['1:missing_header', '4:unexpected_line']);
  });

  test('an over-long line is rejected without being buffered whole; the lines after it still parse', () => {
    const reader = new BillReader(new BankSimStatementParser());
    reader.push('H|CARBONPAY-BANK-SIM|1|2024-03-22\n' + CREDIT + '\nD|');
    const chunk = 'x'.repeat(4096);
    for (let sent = 0; sent <= MAX_BILL_LINE_BYTES; sent += chunk.length) reader.push(chunk);
    reader.push('\n' + DEBIT + '\nT|2|100.00|30.00|0.42\n');
    const result = reader.end();
    expect(result.errors).toEqual([
      { line: 3, code: 'line_too_long', message: `line longer than ${MAX_BILL_LINE_BYTES} bytes` },
    ]);
    expect(result.records.map((r) => r.rawLine)).toEqual([2, 4]);
  });
});
