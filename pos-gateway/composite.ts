/**
 * Composite fields (60, 61, 53, 54, 48): a field's value split into fixed-width sub-fields by a nested table
 * (spec.ts), the same way the codec splits a message by the field table.
 */
import { err, ok, type Result } from './result';
import { FIELD_48_BATCH_UPLOAD, type CompositeSpec } from './spec';

export interface CompositeError {
  readonly code: 'bad_subfield';
  readonly field: number;
  readonly subfield?: string;
  readonly detail: string;
}

/** Sub-field values by sub-field name (e.g. `batchNumber`). */
export type Subfields = Readonly<Record<string, string>>;

const DIGITS = /^[0-9]*$/;

/** Joins sub-fields in table order; the first `requiredCount` must be given, later ones stop at the first gap. */
export function composeField(spec: CompositeSpec, values: Subfields): Result<string, CompositeError> {
  let out = '';
  let gap = false;
  for (const [index, sub] of spec.subfields.entries()) {
    const value = values[sub.name];
    if (value === undefined) {
      if (index < spec.requiredCount) {
        return err({ code: 'bad_subfield', field: spec.field, subfield: sub.id, detail: `${sub.id} is required` });
      }
      gap = true;
      continue;
    }
    if (gap) return err({ code: 'bad_subfield', field: spec.field, subfield: sub.id, detail: `${sub.id} after a gap` });
    if (value.length !== sub.length || (sub.type === 'n' && !DIGITS.test(value))) {
      return err({
        code: 'bad_subfield',
        field: spec.field,
        subfield: sub.id,
        detail: `${sub.id} needs ${sub.length} ${sub.type === 'n' ? 'digits' : 'chars'}`,
      });
    }
    out += value;
  }
  return ok(out);
}

/** Splits a field value; trailing optional sub-fields are present only when the value is long enough for them. */
export function decomposeField(spec: CompositeSpec, value: string): Result<Subfields, CompositeError> {
  const out: Record<string, string> = {};
  let offset = 0;
  for (const [index, sub] of spec.subfields.entries()) {
    if (offset === value.length && index >= spec.requiredCount) break;
    const part = value.slice(offset, offset + sub.length);
    if (part.length !== sub.length || (sub.type === 'n' && !DIGITS.test(part))) {
      return err({ code: 'bad_subfield', field: spec.field, subfield: sub.id, detail: `${sub.id} missing or short` });
    }
    out[sub.name] = part;
    offset += sub.length;
  }
  if (offset !== value.length) {
    // Later spec versions add sub-fields (60.7, 60.8 …); keep them, undecoded, rather than refuse the message.
    out.rest = value.slice(offset);
  }
  return ok(out);
}

export interface BatchUploadItem {
  readonly cardOrganisation: string;
  readonly traceNumber: string;
  readonly primaryAccountNumber: string;
  readonly amountFen: string;
}

/** Field 48 of a mag-stripe 0320: N2 count then up to 8 items of 40 digits (research §1.4). */
export function decomposeBatchUpload(value: string): Result<BatchUploadItem[], CompositeError> {
  const { countDigits, maxItems, item } = FIELD_48_BATCH_UPLOAD;
  const countText = value.slice(0, countDigits);
  const count = Number(countText);
  const itemDigits = item.subfields.reduce((sum, sub) => sum + sub.length, 0);
  if (!/^[0-9]{2}$/.test(countText) || count > maxItems || value.length !== countDigits + count * itemDigits) {
    return err({ code: 'bad_subfield', field: 48, detail: `batch upload needs N2 count ≤ ${maxItems} + 40 per item` });
  }
  const items: BatchUploadItem[] = [];
  for (let i = 0; i < count; i++) {
    const start = countDigits + i * itemDigits;
    const parsed = decomposeField(item, value.slice(start, start + itemDigits));
    if (!parsed.ok) return parsed;
    const { cardOrganisation, traceNumber, primaryAccountNumber, amountFen } = parsed.value;
    items.push({
      cardOrganisation: cardOrganisation ?? '',
      traceNumber: traceNumber ?? '',
      primaryAccountNumber: primaryAccountNumber ?? '',
      amountFen: amountFen ?? '',
    });
  }
  return ok(items);
}

export function composeBatchUpload(items: readonly BatchUploadItem[]): Result<string, CompositeError> {
  const { countDigits, maxItems, item } = FIELD_48_BATCH_UPLOAD;
  if (items.length > maxItems) return err({ code: 'bad_subfield', field: 48, detail: `more than ${maxItems} items` });
  let out = String(items.length).padStart(countDigits, '0');
  for (const entry of items) {
    const composed = composeField(item, { ...entry });
    if (!composed.ok) return composed;
    out += composed.value;
  }
  return ok(out);
}
