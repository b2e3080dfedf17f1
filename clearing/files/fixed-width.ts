import { Money } from '../../core-ledger';

/**
 * Fixed-width records as tables (jPOS/moov-io style): field name → length and type; one packer and one unpacker
 * read the table, no field has code of its own. Widths are in bytes. Files we write hold ASCII only in fixed-width
 * fields, so bytes and characters coincide there; channel files (UnionPay, GBK) are sliced as bytes.
 */

export type FixedFieldType =
  /** ASCII text, left-aligned, padded with spaces on the right. */
  | 'text'
  /** A non-negative integer, right-aligned, zero-padded. */
  | 'number'
  /** A non-negative CNY amount given in yuan ('12.30'), written in fen, right-aligned, zero-padded. */
  | 'fen'
  /** A date given as YYYY-MM-DD, written YYYYMMDD. */
  | 'date8'
  /** Always the same text (record type markers); `constant` holds it. */
  | 'constant';

export interface FixedField {
  readonly name: string;
  readonly length: number;
  readonly type: FixedFieldType;
  readonly constant?: string;
}

export interface FixedLayout {
  readonly name: string;
  /** Between fields: '' for packed records, ' ' for UnionPay's one-space separators. */
  readonly separator: '' | ' ';
  readonly fields: readonly FixedField[];
}

export function layoutWidth(layout: FixedLayout): number {
  const fields = layout.fields.reduce((sum, field) => sum + field.length, 0);
  return fields + layout.separator.length * Math.max(0, layout.fields.length - 1);
}

export type SliceOutcome =
  | { readonly ok: true; readonly values: ReadonlyMap<string, Uint8Array> }
  | { readonly ok: false; readonly code: 'line_length' | 'bad_layout'; readonly message: string };

/** Cuts a record's bytes into its fields; the length must be exact and every separator must be where it belongs. */
export function sliceFixedWidth(layout: FixedLayout, bytes: Uint8Array): SliceOutcome {
  const width = layoutWidth(layout);
  if (bytes.length !== width) {
    return { ok: false, code: 'line_length', message: `${layout.name}: ${bytes.length} bytes, expected ${width}` };
  }
  const values = new Map<string, Uint8Array>();
  const separator = layout.separator.length === 1 ? layout.separator.charCodeAt(0) : null;
  let offset = 0;
  layout.fields.forEach((field, index) => {
    if (index > 0 && separator !== null) offset += 1;
    values.set(field.name, bytes.subarray(offset, offset + field.length));
    offset += field.length;
  });
  if (separator !== null) {
    offset = 0;
    for (const field of layout.fields.slice(0, -1)) {
      offset += field.length;
      if (bytes[offset] !== separator) {
        return { ok: false, code: 'bad_layout', message: `${layout.name}: no separator after ${field.name}` };
      }
      offset += 1;
    }
  }
  return { ok: true, values };
}

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** Packs one record; every field problem is reported (a value is never truncated or rounded to fit). */
export function packFixedWidth(
  layout: FixedLayout,
  values: Readonly<Record<string, string>>,
): { ok: true; text: string } | { ok: false; errors: string[] } {
  const errors: string[] = [];
  const parts = layout.fields.map((field) => {
    const packed = packField(field, field.type === 'constant' ? (field.constant ?? '') : values[field.name]);
    if (!packed.ok) errors.push(`${layout.name}.${field.name}: ${packed.reason}`);
    return packed.ok ? packed.text : '';
  });
  if (errors.length > 0) return { ok: false, errors };
  const text = parts.join(layout.separator);
  if (text.length !== layoutWidth(layout)) throw new Error(`assertion: ${layout.name} packed to ${text.length}`);
  return { ok: true, text };
}

function packField(
  field: FixedField,
  value: string | undefined,
): { ok: true; text: string } | { ok: false; reason: string } {
  if (value === undefined) return { ok: false, reason: 'missing' };
  let text: string;
  switch (field.type) {
    case 'constant':
    case 'text':
      if (!PRINTABLE_ASCII.test(value)) return { ok: false, reason: 'only printable ASCII is allowed' };
      // Trailing spaces would be indistinguishable from padding.
      if (value !== value.trimEnd()) return { ok: false, reason: 'trailing spaces are not allowed' };
      text = value.padEnd(field.length, ' ');
      break;
    case 'number':
      if (!/^(0|[1-9]\d*)$/.test(value)) return { ok: false, reason: `${JSON.stringify(value)} is not a number` };
      text = value.padStart(field.length, '0');
      break;
    case 'fen': {
      if (!/^\d+(\.\d{1,2})?$/.test(value))
        return { ok: false, reason: `${JSON.stringify(value)} is not a yuan amount` };
      text = new Money(value).mul(100).toFixed(0).padStart(field.length, '0');
      break;
    }
    case 'date8': {
      const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
      if (!m) return { ok: false, reason: `${JSON.stringify(value)} is not YYYY-MM-DD` };
      text = `${m[1]}${m[2]}${m[3]}`;
      break;
    }
  }
  if (text.length > field.length) return { ok: false, reason: `${text.length} characters, at most ${field.length}` };
  return { ok: true, text };
}

/** Unpacks one record of a layout we write (ASCII); the inverse of packFixedWidth on valid values. */
export function unpackFixedWidth(
  layout: FixedLayout,
  line: string,
): { ok: true; values: Record<string, string> } | { ok: false; errors: string[] } {
  if (!PRINTABLE_ASCII.test(line)) return { ok: false, errors: [`${layout.name}: not printable ASCII`] };
  const sliced = sliceFixedWidth(layout, Buffer.from(line, 'latin1'));
  if (!sliced.ok) return { ok: false, errors: [sliced.message] };
  const values: Record<string, string> = {};
  const errors: string[] = [];
  for (const field of layout.fields) {
    const raw = Buffer.from(sliced.values.get(field.name)!).toString('latin1');
    const unpacked = unpackField(field, raw);
    if (unpacked.ok) values[field.name] = unpacked.value;
    else errors.push(`${layout.name}.${field.name}: ${unpacked.reason}`);
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, values };
}

function unpackField(field: FixedField, raw: string): { ok: true; value: string } | { ok: false; reason: string } {
  switch (field.type) {
    case 'constant': {
      const expected = (field.constant ?? '').padEnd(field.length, ' ');
      return raw === expected ? { ok: true, value: field.constant ?? '' } : { ok: false, reason: `not ${expected}` };
    }
    case 'text':
      return { ok: true, value: raw.trimEnd() };
    case 'number':
      if (!/^\d+$/.test(raw)) return { ok: false, reason: `${JSON.stringify(raw)} is not zero-padded digits` };
      return { ok: true, value: raw.replace(/^0+(?=\d)/, '') };
    case 'fen':
      if (!/^\d+$/.test(raw)) return { ok: false, reason: `${JSON.stringify(raw)} is not zero-padded fen` };
      return { ok: true, value: new Money(raw).div(100).toFixed(2) };
    case 'date8': {
      const m = /^(\d{4})(\d{2})(\d{2})$/.exec(raw);
      return m
        ? { ok: true, value: `${m[1]}-${m[2]}-${m[3]}` }
        : { ok: false, reason: `${JSON.stringify(raw)} is not YYYYMMDD` };
    }
  }
}
