import type { Alignment } from './spec';

/**
 * Packed BCD with a chosen alignment. `digits` uses '0'–'9' and 'D' (the track separator nibble); an odd count gets one
 * pad nibble 0, first when right-aligned (amount "123" ⇒ 01 23), last when left-aligned (entry mode "021" ⇒ 02 10).
 */
export function digitsToBcd(digits: string, align: Alignment): Buffer {
  const padded = digits.length % 2 === 0 ? digits : align === 'right' ? `0${digits}` : `${digits}0`;
  return Buffer.from(padded, 'hex');
}

/**
 * Reads `digitCount` digits from `byteCount = ceil(digitCount / 2)` bytes. Returns undefined when a data nibble is not a
 * digit (or 'D' when `allowSeparator`). The pad nibble is not checked: terminals pad with 0 or F.
 */
export function bcdToDigits(
  bytes: Buffer,
  offset: number,
  digitCount: number,
  align: Alignment,
  allowSeparator: boolean,
): string | undefined {
  const byteCount = Math.ceil(digitCount / 2);
  const hex = bytes.toString('hex', offset, offset + byteCount).toUpperCase();
  const skipFirst = digitCount % 2 === 1 && align === 'right';
  const data = skipFirst ? hex.slice(1) : hex.slice(0, digitCount);
  const allowed = allowSeparator ? /^[0-9D]*$/ : /^[0-9]*$/;
  return allowed.test(data) ? data : undefined;
}
