/**
 * Account coding of the converged payment platform (T §2.5.2): account numbers (T5), card numbers (T6) and account
 * ids (T7). The tables are the standard's; `shared/vectors/account-codes.md` holds the worked examples.
 */

/** T6: the customer class digit of every card number. */
export const CARD_CUSTOMER_CLASS = { code: '0', name: 'card' } as const;

/** T7 customer classes, in precedence order: a customer holding products of several classes takes the first. */
export const CUSTOMER_CLASSES = [
  { code: '1', name: 'government/enterprise' },
  { code: '2', name: 'public' },
  { code: '6', name: 'other' },
] as const;
export type CustomerClass = (typeof CUSTOMER_CLASSES)[number]['code'];

/** T7 account types: the payment account's sub-accounts (T3). */
export const ACCOUNT_TYPES = [
  { code: '0', name: 'main fund' },
  { code: '1', name: 'online payment' },
  { code: '2', name: 'offline payment' },
  { code: '3', name: 'voucher' },
  { code: '4', name: 'points' },
] as const;
export type AccountTypeCode = (typeof ACCOUNT_TYPES)[number]['code'];

/** Digit counts of the 16-digit codes (T6, T7) and of the 11-digit fixed-line account number (T5). */
export const CODE_LAYOUT = {
  countryPrefix: '86',
  codeDigits: 16,
  areaDigits: 3,
  cardLevel: '0',
  cardSequenceDigits: 8,
  accountIdSequenceDigits: 9,
  fixedLineAccountNumberDigits: 11,
} as const;

export interface DecodedCardNumber {
  readonly kind: 'card_number';
  readonly customerClass: typeof CARD_CUSTOMER_CLASS.code;
  readonly customerClassName: typeof CARD_CUSTOMER_CLASS.name;
  readonly cardLevel: string;
  readonly area: string;
  readonly sequence: string;
  readonly checkDigit: number;
  readonly expectedCheckDigit: number;
  readonly checkDigitValid: boolean;
}

export interface DecodedAccountId {
  readonly kind: 'account_id';
  readonly customerClass: CustomerClass;
  readonly customerClassName: string;
  readonly accountType: AccountTypeCode;
  readonly accountTypeName: string;
  readonly area: string;
  readonly sequence: string;
}

export type DecodedCode = DecodedCardNumber | DecodedAccountId;
export type CodeParse<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/** Standard Luhn (mod 10) check digit to append to `digits` (for '7992739871' it is 3). */
export function luhnCheckDigit(digits: string): number {
  if (!/^\d+$/.test(digits)) throw new RangeError(`Luhn input must be decimal digits, got ${JSON.stringify(digits)}`);
  let sum = 0;
  for (let fromRight = 0; fromRight < digits.length; fromRight++) {
    const digit = Number(digits[digits.length - 1 - fromRight]);
    // The digit next to the check digit is doubled, then every second one leftwards.
    const weighted = fromRight % 2 === 0 ? digit * 2 : digit;
    sum += weighted > 9 ? weighted - 9 : weighted;
  }
  return (10 - (sum % 10)) % 10;
}

/** A dialled area code (trunk '0' + 2 or 3 digits) as codes carry it: 3 digits ('0794' → '794', '010' → '010'). */
export function codedArea(areaCode: string): string {
  if (!/^0[1-9]\d{1,2}$/.test(areaCode)) {
    throw new RangeError(
      `area code must be 0 followed by 2 or 3 digits (e.g. 010, 0794), got ${JSON.stringify(areaCode)}`,
    );
  }
  return areaCode.slice(1).padStart(CODE_LAYOUT.areaDigits, '0');
}

function sequenceDigits(sequence: number | string, width: number): string {
  const text = typeof sequence === 'number' && Number.isSafeInteger(sequence) ? String(sequence) : sequence;
  if (typeof text !== 'string' || !/^\d+$/.test(text) || text.length > width) {
    throw new RangeError(
      `sequence must be a non-negative integer of at most ${width} digits, got ${JSON.stringify(sequence)}`,
    );
  }
  return text.padStart(width, '0');
}

/** T6 card number: 86 · customer class 0 · card level 0 · area (3) · sequence (8) · Luhn digit. */
export function makeCardNumber(input: { readonly areaCode: string; readonly sequence: number | string }): string {
  const body =
    CODE_LAYOUT.countryPrefix +
    CARD_CUSTOMER_CLASS.code +
    CODE_LAYOUT.cardLevel +
    codedArea(input.areaCode) +
    sequenceDigits(input.sequence, CODE_LAYOUT.cardSequenceDigits);
  return `${body}${luhnCheckDigit(body)}`;
}

/** T7 account id: 86 · customer class · account type · area (3) · sequence (9); no check digit. */
export function makeAccountId(input: {
  readonly customerClass: CustomerClass;
  readonly accountType: AccountTypeCode;
  readonly areaCode: string;
  readonly sequence: number | string;
}): string {
  if (!CUSTOMER_CLASSES.some((c) => c.code === input.customerClass)) {
    throw new RangeError(`customer class must be 1, 2 or 6, got ${JSON.stringify(input.customerClass)}`);
  }
  if (!ACCOUNT_TYPES.some((t) => t.code === input.accountType)) {
    throw new RangeError(`account type must be 0 to 4, got ${JSON.stringify(input.accountType)}`);
  }
  return (
    CODE_LAYOUT.countryPrefix +
    input.customerClass +
    input.accountType +
    codedArea(input.areaCode) +
    sequenceDigits(input.sequence, CODE_LAYOUT.accountIdSequenceDigits)
  );
}

export type AccountNumberSource =
  | { readonly kind: 'mobile'; readonly mobileNumber: string }
  | { readonly kind: 'fixed_line'; readonly areaCode: string; readonly lineNumber: string }
  | { readonly kind: 'broadband'; readonly areaCode: string; readonly broadbandNumber: string };

/**
 * T5 account number: a mobile number as it is; a fixed line as area code + number, left-padded with zeros to 11
 * digits; broadband without a fixed line as area code + '0' + 7 digits.
 */
export function makeAccountNumber(source: AccountNumberSource): string {
  switch (source.kind) {
    case 'mobile':
      if (!/^1\d{10}$/.test(source.mobileNumber)) {
        throw new RangeError('mobile number must be 11 digits starting with 1');
      }
      return source.mobileNumber;
    case 'fixed_line': {
      codedArea(source.areaCode); // throws on a malformed area code
      const joined = `${source.areaCode}${source.lineNumber}`;
      if (!/^\d{7,8}$/.test(source.lineNumber) || joined.length > CODE_LAYOUT.fixedLineAccountNumberDigits) {
        throw new RangeError('fixed line: area code + 7 or 8 digit number must fit in 11 digits');
      }
      return joined.padStart(CODE_LAYOUT.fixedLineAccountNumberDigits, '0');
    }
    case 'broadband':
      codedArea(source.areaCode); // throws on a malformed area code
      if (!/^\d{7}$/.test(source.broadbandNumber)) throw new RangeError('broadband number must be 7 digits');
      return `${source.areaCode}0${source.broadbandNumber}`;
  }
}

/** The class a customer's codes carry when it holds products of several classes (T7 precedence: 1, then 2, then 6). */
export function customerClassByPrecedence(classes: readonly CustomerClass[]): CustomerClass {
  const first = CUSTOMER_CLASSES.find((c) => classes.includes(c.code));
  if (!first) throw new RangeError('customer class precedence needs at least one of 1, 2 or 6');
  return first.code;
}

/** Reads a card number's parts and reports its Luhn digit right or wrong; only the layout can make it fail. */
function readCardNumber(text: string): CodeParse<DecodedCardNumber> {
  if (!/^\d{16}$/.test(text)) return { ok: false, reason: 'card number must be 16 digits' };
  if (!text.startsWith(CODE_LAYOUT.countryPrefix)) return { ok: false, reason: 'card number must start with 86' };
  if (text[2] !== CARD_CUSTOMER_CLASS.code)
    return { ok: false, reason: `card number customer class must be 0, got ${text[2]}` };
  if (text[3] !== CODE_LAYOUT.cardLevel) return { ok: false, reason: `card level must be 0, got ${text[3]}` };
  const checkDigit = Number(text[15]);
  const expectedCheckDigit = luhnCheckDigit(text.slice(0, 15));
  const value: DecodedCardNumber = {
    kind: 'card_number',
    customerClass: CARD_CUSTOMER_CLASS.code,
    customerClassName: CARD_CUSTOMER_CLASS.name,
    cardLevel: text.slice(3, 4),
    area: text.slice(4, 7),
    sequence: text.slice(7, 15),
    checkDigit,
    expectedCheckDigit,
    checkDigitValid: checkDigit === expectedCheckDigit,
  };
  return { ok: true, value };
}

/** A T6 card number; one with a wrong Luhn digit is refused. */
export function parseCardNumber(text: string): CodeParse<DecodedCardNumber> {
  const read = readCardNumber(text);
  if (read.ok && !read.value.checkDigitValid) {
    return {
      ok: false,
      reason: `bad Luhn check digit: expected ${read.value.expectedCheckDigit}, got ${read.value.checkDigit}`,
    };
  }
  return read;
}

export function isValidCardNumber(text: string): boolean {
  return parseCardNumber(text).ok;
}

/** A T7 account id. */
export function parseAccountId(text: string): CodeParse<DecodedAccountId> {
  if (!/^\d{16}$/.test(text)) return { ok: false, reason: 'account id must be 16 digits' };
  if (!text.startsWith(CODE_LAYOUT.countryPrefix)) return { ok: false, reason: 'account id must start with 86' };
  const customerClass = CUSTOMER_CLASSES.find((c) => c.code === text[2]);
  if (!customerClass) return { ok: false, reason: `account id customer class must be 1, 2 or 6, got ${text[2]}` };
  const accountType = ACCOUNT_TYPES.find((t) => t.code === text[3]);
  if (!accountType) return { ok: false, reason: `account type must be 0 to 4, got ${text[3]}` };
  const value: DecodedAccountId = {
    kind: 'account_id',
    customerClass: customerClass.code,
    customerClassName: customerClass.name,
    accountType: accountType.code,
    accountTypeName: accountType.name,
    area: text.slice(4, 7),
    sequence: text.slice(7, 16),
  };
  return { ok: true, value };
}

/**
 * Tells a card number (third digit 0) from an account id (1, 2 or 6) and takes it apart. Unlike parseCardNumber,
 * a card number with a wrong Luhn digit comes back ok with `checkDigitValid: false`, so a caller can show it.
 */
export function decodeCode(text: string): CodeParse<DecodedCode> {
  if (!/^\d{16}$/.test(text)) return { ok: false, reason: 'a card number or account id must be 16 digits' };
  if (!text.startsWith(CODE_LAYOUT.countryPrefix))
    return { ok: false, reason: 'a card number or account id must start with 86' };
  if (text[2] === CARD_CUSTOMER_CLASS.code) return readCardNumber(text);
  if (CUSTOMER_CLASSES.some((c) => c.code === text[2])) return parseAccountId(text);
  return { ok: false, reason: `customer class must be 0 (card number) or 1, 2, 6 (account id), got ${text[2]}` };
}
