/**
 * Packer / unpacker for MTI + bitmap + fields, driven only by a MessageSpec table (spec.ts).
 *
 * Wire rules (research §1.2): MTI is 2 bytes BCD; the bitmap is 8 binary bytes, 16 when bit 1 announces a secondary
 * bitmap; n/z are packed BCD, an/ans ASCII (bytes kept as latin1 so any byte round-trips), b raw; LL/LLL prefixes are
 * BCD (1 / 2 bytes) counting digits for n/z and bytes otherwise.
 *
 * Unpacking never throws on any input: every malformed byte string gives a typed CodecError. Every read is bounded by
 * the input length and by the field's maxLength.
 */
import { bcdToDigits, digitsToBcd } from './bcd';
import { err, ok, type Result } from './result';
import type { FieldSpec, MessageSpec } from './spec';

export type FieldValue = string | Buffer;

/** One decoded ISO 8583 message: the MTI and the fields by number (b fields are Buffers, all others strings). */
export interface PosMessage {
  readonly mti: string;
  readonly fields: Readonly<Record<number, FieldValue>>;
}

export type CodecErrorCode =
  'truncated' | 'bad_length' | 'bad_bcd' | 'bad_mti' | 'bad_value' | 'unknown_field' | 'trailing_bytes';

export interface CodecError {
  readonly code: CodecErrorCode;
  readonly field?: number;
  readonly detail: string;
  /** Unpacking only: the MTI and the fields decoded before the failure, to answer a format error. */
  readonly partial?: PosMessage;
}

export const MTI_BYTES = 2;
export const BITMAP_BYTES = 8;
/** Field numbers a primary bitmap can announce; 1 is the secondary-bitmap bit, never a data field. */
export const MAX_PRIMARY_FIELD = 64;
export const MAX_FIELD = 128;

const MTI_PATTERN = /^[0-9]{4}$/;

// ---------------------------------------------------------------------------------------------------------------
// Packing

export function packMessage(message: PosMessage, spec: MessageSpec): Result<Buffer, CodecError> {
  if (!MTI_PATTERN.test(message.mti)) return err({ code: 'bad_mti', detail: `MTI must be 4 digits` });
  const numbers = fieldNumbers(message);
  if (!numbers.ok) return numbers;
  const secondary = numbers.value.some((n) => n > MAX_PRIMARY_FIELD);
  const bitmap = Buffer.alloc(secondary ? 2 * BITMAP_BYTES : BITMAP_BYTES);
  if (secondary) setBit(bitmap, 1);
  const parts: Buffer[] = [Buffer.from(message.mti, 'hex'), bitmap];
  for (const n of numbers.value) {
    const fieldSpec = spec.fields[n];
    if (fieldSpec === undefined)
      return err({ code: 'unknown_field', field: n, detail: `field ${n} is not in the spec` });
    const packed = packField(n, fieldSpec, message.fields[n] as FieldValue);
    if (!packed.ok) return packed;
    setBit(bitmap, n);
    parts.push(...packed.value);
  }
  return ok(Buffer.concat(parts));
}

function fieldNumbers(message: PosMessage): Result<number[], CodecError> {
  const numbers: number[] = [];
  for (const key of Object.keys(message.fields)) {
    const n = Number(key);
    if (!Number.isInteger(n) || n < 2 || n > MAX_FIELD) {
      return err({ code: 'unknown_field', detail: `field number ${key} outside 2..${MAX_FIELD}` });
    }
    if (message.fields[n] !== undefined) numbers.push(n);
  }
  return ok(numbers.sort((a, b) => a - b));
}

function setBit(bitmap: Buffer, n: number): void {
  const index = Math.floor((n - 1) / 8);
  bitmap[index] = (bitmap[index] ?? 0) | (0x80 >> ((n - 1) % 8));
}

function isBitSet(bitmap: Buffer, n: number): boolean {
  return ((bitmap[Math.floor((n - 1) / 8)] ?? 0) & (0x80 >> ((n - 1) % 8))) !== 0;
}

/** Encodes one field as [length prefix?, data]. */
export function packField(n: number, spec: FieldSpec, value: FieldValue): Result<Buffer[], CodecError> {
  const bad = (detail: string) => err({ code: 'bad_value' as const, field: n, detail: `field ${n}: ${detail}` });
  if (spec.type === 'b') {
    if (!Buffer.isBuffer(value)) return bad('binary field needs a Buffer');
    if (spec.lengthKind === 'fixed' && value.length !== spec.maxLength) return bad(`needs ${spec.maxLength} bytes`);
    if (value.length > spec.maxLength) return bad(`longer than ${spec.maxLength} bytes`);
    return ok(withPrefix(spec, value.length, value));
  }
  if (typeof value !== 'string') return bad('needs a string');
  if (spec.type === 'n' || spec.type === 'z') {
    const pattern = spec.type === 'n' ? /^[0-9]*$/ : /^[0-9=]*$/;
    if (!pattern.test(value)) return bad(spec.type === 'n' ? 'digits only' : 'digits and = only');
    if (value.length > spec.maxLength) return bad(`longer than ${spec.maxLength} digits`);
    const digits = (spec.lengthKind === 'fixed' ? padTo(value, spec) : value).replace(/=/g, 'D');
    return ok(withPrefix(spec, digits.length, digitsToBcd(digits, spec.align)));
  }
  if (!isLatin1(value)) return bad('characters beyond one byte');
  if (value.length > spec.maxLength) return bad(`longer than ${spec.maxLength} bytes`);
  const textValue = spec.lengthKind === 'fixed' ? padTo(value, spec) : value;
  return ok(withPrefix(spec, textValue.length, Buffer.from(textValue, 'latin1')));
}

function padTo(value: string, spec: FieldSpec): string {
  const pad = spec.pad === '' ? ' ' : spec.pad;
  return spec.align === 'right' ? value.padStart(spec.maxLength, pad) : value.padEnd(spec.maxLength, pad);
}

function isLatin1(value: string): boolean {
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) > 0xff) return false;
  return true;
}

function withPrefix(spec: FieldSpec, length: number, data: Buffer): Buffer[] {
  if (spec.lengthKind === 'fixed') return [data];
  const digits = spec.lengthKind === 'LL' ? 2 : 4;
  return [Buffer.from(String(length).padStart(digits, '0'), 'hex'), data];
}

// ---------------------------------------------------------------------------------------------------------------
// Unpacking

export function unpackMessage(bytes: Buffer, spec: MessageSpec): Result<PosMessage, CodecError> {
  if (bytes.length < MTI_BYTES) return err({ code: 'truncated', detail: 'no room for the MTI' });
  const mti = bcdToDigits(bytes, 0, 4, 'right', false);
  if (mti === undefined) return err({ code: 'bad_mti', detail: 'MTI is not BCD' });
  const fields: Record<number, FieldValue> = {};
  const fail = (error: Omit<CodecError, 'partial'>) => err({ ...error, partial: { mti, fields: { ...fields } } });
  let offset = MTI_BYTES;
  if (bytes.length < offset + BITMAP_BYTES) return fail({ code: 'truncated', detail: 'no room for the bitmap' });
  const hasSecondary = isBitSet(bytes.subarray(offset, offset + BITMAP_BYTES), 1);
  const bitmapBytes = hasSecondary ? 2 * BITMAP_BYTES : BITMAP_BYTES;
  if (bytes.length < offset + bitmapBytes) return fail({ code: 'truncated', detail: 'no room for the 2nd bitmap' });
  const bitmap = bytes.subarray(offset, offset + bitmapBytes);
  offset += bitmapBytes;
  const lastField = hasSecondary ? MAX_FIELD : MAX_PRIMARY_FIELD;
  for (let n = 2; n <= lastField; n++) {
    if (!isBitSet(bitmap, n)) continue;
    const fieldSpec = spec.fields[n];
    if (fieldSpec === undefined) return fail({ code: 'unknown_field', field: n, detail: `field ${n} not in spec` });
    const read = unpackField(n, fieldSpec, bytes, offset);
    if (!read.ok) return fail(read.error);
    fields[n] = read.value.value;
    offset = read.value.next;
  }
  if (offset !== bytes.length) {
    return fail({ code: 'trailing_bytes', detail: `${bytes.length - offset} bytes after the last field` });
  }
  return ok({ mti, fields });
}

interface FieldRead {
  readonly value: FieldValue;
  readonly next: number;
}

export function unpackField(n: number, spec: FieldSpec, bytes: Buffer, start: number): Result<FieldRead, CodecError> {
  const length = readLength(n, spec, bytes, start);
  if (!length.ok) return length;
  const { count, offset } = length.value;
  const numeric = spec.type === 'n' || spec.type === 'z';
  const byteCount = numeric ? Math.ceil(count / 2) : count;
  if (offset + byteCount > bytes.length) {
    return err({ code: 'truncated', field: n, detail: `field ${n} needs ${byteCount} bytes` });
  }
  const next = offset + byteCount;
  if (spec.type === 'b') return ok({ value: Buffer.from(bytes.subarray(offset, next)), next });
  if (!numeric) return ok({ value: bytes.toString('latin1', offset, next), next });
  const digits = bcdToDigits(bytes, offset, count, spec.align, spec.type === 'z');
  if (digits === undefined) return err({ code: 'bad_bcd', field: n, detail: `field ${n} is not BCD` });
  return ok({ value: spec.type === 'z' ? digits.replace(/D/g, '=') : digits, next });
}

function readLength(
  n: number,
  spec: FieldSpec,
  bytes: Buffer,
  start: number,
): Result<{ count: number; offset: number }, CodecError> {
  if (spec.lengthKind === 'fixed') return ok({ count: spec.maxLength, offset: start });
  const prefixBytes = spec.lengthKind === 'LL' ? 1 : 2;
  if (start + prefixBytes > bytes.length) {
    return err({ code: 'truncated', field: n, detail: `field ${n} length prefix cut off` });
  }
  const digits = bcdToDigits(bytes, start, prefixBytes * 2, 'right', false);
  if (digits === undefined) return err({ code: 'bad_bcd', field: n, detail: `field ${n} length prefix is not BCD` });
  const count = Number(digits);
  if (count > spec.maxLength) {
    return err({ code: 'bad_length', field: n, detail: `field ${n} length ${count} > max ${spec.maxLength}` });
  }
  return ok({ count, offset: start + prefixBytes });
}

// ---------------------------------------------------------------------------------------------------------------
// Describing (for logs): sensitive fields are masked.

/** One line per field, `NN name: value`, with sensitive values masked (PAN keeps the first 6 and last 4). */
export function describeMessage(message: PosMessage, spec: MessageSpec): string[] {
  const lines = [`MTI ${message.mti}`];
  const numbers = Object.keys(message.fields)
    .map(Number)
    .sort((a, b) => a - b);
  for (const n of numbers) {
    const value = message.fields[n];
    if (value === undefined) continue;
    const fieldSpec = spec.fields[n];
    const shown = fieldSpec?.sensitive ? maskValue(n, value) : Buffer.isBuffer(value) ? value.toString('hex') : value;
    lines.push(`${String(n).padStart(2, '0')} ${fieldSpec?.name ?? 'unknown'}: ${shown}`);
  }
  return lines;
}

function maskValue(n: number, value: FieldValue): string {
  if (n === 2 && typeof value === 'string' && value.length >= 13) {
    return `${value.slice(0, 6)}${'*'.repeat(value.length - 10)}${value.slice(-4)}`;
  }
  return `*** (${value.length} ${Buffer.isBuffer(value) ? 'bytes' : 'chars'})`;
}
