import { Money, parseAmount, ZERO } from '../../core-ledger';
import { csvField, hasControlCharacter } from './csv';
import type { FixedLayout } from './fixed-width';
import { layoutWidth, packFixedWidth, unpackFixedWidth } from './fixed-width';

/**
 * The settlement bank payment file (批量代付, notes §1.6): one batch of merchant payouts for one value date, as CSV
 * (UTF-8, payee names may be Chinese) or fixed-width (ASCII only, amounts in fen right-aligned zero-padded).
 * Deterministic: lines are sorted by our reference (code-unit order, no locale), numbered after sorting, and nothing
 * depends on the clock, so the same batch always gives the same bytes.
 */

export interface BankPaymentLine {
  /** Our reference for the line (e.g. the settlement transfer id); unique within the batch. */
  readonly reference: string;
  readonly payeeAccount: string;
  readonly payeeName: string;
  /** CNAPS bank code (联行号), 12 digits. */
  readonly payeeBankCode: string;
  /** CNY yuan, positive, at most 2 decimals. */
  readonly amount: string;
  readonly purpose: string;
}

export interface BankPaymentBatch {
  readonly batchId: string;
  /** YYYY-MM-DD */
  readonly valueDate: string;
  readonly payerAccount: string;
  readonly lines: readonly BankPaymentLine[];
}

/** Banks quote ≤ 5,000 lines per bulk file (notes §1.6); a larger settlement is split into several batches. */
export const MAX_BANK_PAYMENT_LINES = 5_000;

export const BANK_PAYMENT_LINE_ENDING = '\r\n';

/** Record layouts; every record is padded to the same width with a filler. */
export const BANK_PAYMENT_LAYOUTS = {
  header: {
    name: 'header',
    separator: '',
    fields: [
      { name: 'recordType', length: 1, type: 'constant', constant: 'H' },
      { name: 'batchId', length: 20, type: 'text' },
      { name: 'valueDate', length: 8, type: 'date8' },
      { name: 'payerAccount', length: 32, type: 'text' },
      { name: 'lineCount', length: 6, type: 'number' },
      { name: 'totalFen', length: 15, type: 'fen' },
      { name: 'filler', length: 109, type: 'constant', constant: '' },
    ],
  },
  detail: {
    name: 'detail',
    separator: '',
    fields: [
      { name: 'recordType', length: 1, type: 'constant', constant: 'D' },
      { name: 'lineNo', length: 6, type: 'number' },
      { name: 'reference', length: 32, type: 'text' },
      { name: 'payeeAccount', length: 32, type: 'text' },
      { name: 'payeeName', length: 60, type: 'text' },
      { name: 'payeeBankCode', length: 12, type: 'text' },
      { name: 'amountFen', length: 15, type: 'fen' },
      { name: 'currency', length: 3, type: 'constant', constant: 'CNY' },
      { name: 'purpose', length: 30, type: 'text' },
    ],
  },
  trailer: {
    name: 'trailer',
    separator: '',
    fields: [
      { name: 'recordType', length: 1, type: 'constant', constant: 'T' },
      { name: 'lineCount', length: 6, type: 'number' },
      { name: 'totalFen', length: 15, type: 'fen' },
      { name: 'filler', length: 169, type: 'constant', constant: '' },
    ],
  },
} as const satisfies Record<string, FixedLayout>;

export const BANK_PAYMENT_RECORD_WIDTH = layoutWidth(BANK_PAYMENT_LAYOUTS.detail);

/** CSV columns: header name → value. */
const CSV_COLUMNS: readonly [string, (line: BankPaymentLine, lineNo: number, batch: BankPaymentBatch) => string][] = [
  ['batch_id', (_l, _n, batch) => batch.batchId],
  ['line_no', (_l, lineNo) => String(lineNo)],
  ['reference', (line) => line.reference],
  ['value_date', (_l, _n, batch) => batch.valueDate],
  ['payer_account', (_l, _n, batch) => batch.payerAccount],
  ['payee_account', (line) => line.payeeAccount],
  ['payee_name', (line) => line.payeeName],
  ['payee_bank_code', (line) => line.payeeBankCode],
  ['amount', (line) => new Money(line.amount).toFixed(2)],
  ['currency', () => 'CNY'],
  ['purpose', (line) => line.purpose],
];

export type BankFileOutcome =
  { readonly ok: true; readonly bytes: Buffer } | { readonly ok: false; readonly errors: string[] };

/** Checks what both file forms need; the fixed-width packer adds its own (ASCII, widths). */
export function validateBankPaymentBatch(batch: BankPaymentBatch): string[] {
  const errors: string[] = [];
  if (batch.lines.length === 0) errors.push('a batch has at least one line');
  if (batch.lines.length > MAX_BANK_PAYMENT_LINES) errors.push(`more than ${MAX_BANK_PAYMENT_LINES} lines`);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(batch.valueDate)) errors.push(`valueDate ${JSON.stringify(batch.valueDate)}`);
  const texts: [string, string][] = [
    ['batchId', batch.batchId],
    ['payerAccount', batch.payerAccount],
  ];
  const seen = new Set<string>();
  for (const line of batch.lines) {
    if (seen.has(line.reference)) errors.push(`reference ${JSON.stringify(line.reference)} appears twice`);
    seen.add(line.reference);
    const amount = parseAmount('CNY', line.amount, { positive: true });
    if (!amount.ok) errors.push(`${line.reference}: amount ${JSON.stringify(line.amount)} (${amount.error.kind})`);
    if (!/^\d{12}$/.test(line.payeeBankCode)) errors.push(`${line.reference}: payeeBankCode is not 12 digits`);
    texts.push(['reference', line.reference], ['payeeAccount', line.payeeAccount], ['payeeName', line.payeeName]);
    texts.push(['purpose', line.purpose]);
  }
  for (const [name, value] of texts) {
    if (value.trim() === '' && name !== 'purpose') errors.push(`${name} is empty`);
    if (hasControlCharacter(value)) errors.push(`${name} ${JSON.stringify(value)} holds a control character`);
  }
  return errors;
}

function sortedLines(batch: BankPaymentBatch): BankPaymentLine[] {
  return [...batch.lines].sort((a, b) => (a.reference < b.reference ? -1 : a.reference > b.reference ? 1 : 0));
}

function totalOf(lines: readonly BankPaymentLine[]): string {
  return lines.reduce((sum, line) => sum.plus(new Money(line.amount)), ZERO).toFixed(2);
}

export function writeBankPaymentCsv(batch: BankPaymentBatch): BankFileOutcome {
  const errors = validateBankPaymentBatch(batch);
  if (errors.length > 0) return { ok: false, errors };
  const rows = [CSV_COLUMNS.map(([name]) => name).join(',')];
  sortedLines(batch).forEach((line, index) => {
    rows.push(CSV_COLUMNS.map(([, value]) => csvField(value(line, index + 1, batch))).join(','));
  });
  return { ok: true, bytes: Buffer.from(rows.join(BANK_PAYMENT_LINE_ENDING) + BANK_PAYMENT_LINE_ENDING, 'utf8') };
}

export function writeBankPaymentFixedWidth(batch: BankPaymentBatch): BankFileOutcome {
  const errors = validateBankPaymentBatch(batch);
  if (errors.length > 0) return { ok: false, errors };
  const lines = sortedLines(batch);
  const total = totalOf(lines);
  const records: string[] = [];
  const pack = (layout: FixedLayout, values: Record<string, string>): void => {
    const packed = packFixedWidth(layout, values);
    if (packed.ok) records.push(packed.text);
    else errors.push(...packed.errors);
  };
  const count = String(lines.length);
  pack(BANK_PAYMENT_LAYOUTS.header, {
    batchId: batch.batchId,
    valueDate: batch.valueDate,
    payerAccount: batch.payerAccount,
    lineCount: count,
    totalFen: total,
  });
  lines.forEach((line, index) => {
    pack(BANK_PAYMENT_LAYOUTS.detail, {
      lineNo: String(index + 1),
      reference: line.reference,
      payeeAccount: line.payeeAccount,
      payeeName: line.payeeName,
      payeeBankCode: line.payeeBankCode,
      amountFen: line.amount,
      purpose: line.purpose,
    });
  });
  pack(BANK_PAYMENT_LAYOUTS.trailer, { lineCount: count, totalFen: total });
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, bytes: Buffer.from(records.join(BANK_PAYMENT_LINE_ENDING) + BANK_PAYMENT_LINE_ENDING, 'ascii') };
}

/**
 * Reads a fixed-width payment file back (our own files, and a check before sending): header, details numbered
 * 1..n, trailer whose count and total agree with the details.
 */
export function parseBankPaymentFixedWidth(
  input: Uint8Array,
): { ok: true; batch: BankPaymentBatch } | { ok: false; errors: string[] } {
  const text = Buffer.from(input).toString('latin1');
  if (!text.endsWith(BANK_PAYMENT_LINE_ENDING)) return { ok: false, errors: ['the file does not end with CRLF'] };
  const records = text.slice(0, -BANK_PAYMENT_LINE_ENDING.length).split(BANK_PAYMENT_LINE_ENDING);
  if (records.length < 3) return { ok: false, errors: ['a file has a header, at least one detail and a trailer'] };
  const errors: string[] = [];
  const unpack = (layout: FixedLayout, record: string, lineNo: number): Record<string, string> => {
    const unpacked = unpackFixedWidth(layout, record);
    if (unpacked.ok) return unpacked.values;
    errors.push(...unpacked.errors.map((error) => `line ${lineNo}: ${error}`));
    return {};
  };
  const header = unpack(BANK_PAYMENT_LAYOUTS.header, records[0]!, 1);
  const trailer = unpack(BANK_PAYMENT_LAYOUTS.trailer, records[records.length - 1]!, records.length);
  const lines: BankPaymentLine[] = [];
  records.slice(1, -1).forEach((record, index) => {
    const values = unpack(BANK_PAYMENT_LAYOUTS.detail, record, index + 2);
    if (values.lineNo !== undefined && values.lineNo !== String(index + 1)) {
      errors.push(`line ${index + 2}: line number ${values.lineNo}, expected ${index + 1}`);
    }
    lines.push({
      reference: values.reference ?? '',
      payeeAccount: values.payeeAccount ?? '',
      payeeName: values.payeeName ?? '',
      payeeBankCode: values.payeeBankCode ?? '',
      amount: values.amountFen ?? '0.00',
      purpose: values.purpose ?? '',
    });
  });
  if (errors.length > 0) return { ok: false, errors };
  const count = String(lines.length);
  const total = totalOf(lines);
  for (const [name, record] of [
    ['header', header],
    ['trailer', trailer],
  ] as const) {
    if (record.lineCount !== count) errors.push(`${name} count ${record.lineCount}, details ${count}`);
    if (record.totalFen !== total) errors.push(`${name} total ${record.totalFen}, details ${total}`);
  }
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    batch: { batchId: header.batchId!, valueDate: header.valueDate!, payerAccount: header.payerAccount!, lines },
  };
}
