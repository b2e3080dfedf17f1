import fc from 'fast-check';
import {
  codedArea,
  customerClassByPrecedence,
  decodeCode,
  isValidCardNumber,
  luhnCheckDigit,
  makeAccountId,
  makeAccountNumber,
  makeCardNumber,
  parseAccountId,
  parseCardNumber,
} from '../../core-ledger';
import type { AccountNumberSource, AccountTypeCode, CustomerClass } from '../../core-ledger';

// /work/shared/vectors/account-codes.md
const CARD_VECTORS = [
  { areaCode: '0794', sequence: '00000001', area: '794', cardNumber: '8600794000000013' },
  { areaCode: '0791', sequence: '12345678', area: '791', cardNumber: '8600791123456783' },
  { areaCode: '010', sequence: '00000042', area: '010', cardNumber: '8600010000000428' },
  { areaCode: '021', sequence: '99999999', area: '021', cardNumber: '8600021999999991' },
];

const ACCOUNT_ID_VECTORS: readonly {
  customerClass: CustomerClass;
  accountType: AccountTypeCode;
  areaCode: string;
  sequence: string;
  accountId: string;
}[] = [
  { customerClass: '2', accountType: '1', areaCode: '0794', sequence: '000000001', accountId: '8621794000000001' },
  { customerClass: '2', accountType: '4', areaCode: '0794', sequence: '000000001', accountId: '8624794000000001' },
  { customerClass: '1', accountType: '0', areaCode: '0791', sequence: '000000123', accountId: '8610791000000123' },
  { customerClass: '6', accountType: '3', areaCode: '010', sequence: '000000042', accountId: '8663010000000042' },
];

const ACCOUNT_NUMBER_VECTORS: readonly [string, AccountNumberSource, string][] = [
  ['mobile', { kind: 'mobile', mobileNumber: '13907941234' }, '13907941234'],
  ['fixed line, 11 digits', { kind: 'fixed_line', areaCode: '0794', lineNumber: '8221234' }, '07948221234'],
  ['fixed line, padded to 11', { kind: 'fixed_line', areaCode: '010', lineNumber: '6512345' }, '00106512345'],
  ['broadband', { kind: 'broadband', areaCode: '0794', broadbandNumber: '1234567' }, '079401234567'],
];

const luhnHolds = (cardNumber: string): boolean =>
  luhnCheckDigit(cardNumber.slice(0, 15)) === Number(cardNumber.slice(15));

const areaCodeArbitrary = fc.oneof(fc.integer({ min: 10, max: 99 }), fc.integer({ min: 100, max: 999 })).map(String);

describe('Luhn check digit', () => {
  test('the standard example: 7992739871 → 3', () => {
    expect(luhnCheckDigit('7992739871')).toBe(3);
  });

  test('refuses non-digits', () => {
    expect(() => luhnCheckDigit('')).toThrow(RangeError);
    expect(() => luhnCheckDigit('12a4')).toThrow(RangeError);
  });
});

describe('T6 card numbers', () => {
  test.each(CARD_VECTORS)(
    'area $areaCode, sequence $sequence → $cardNumber',
    ({ areaCode, sequence, area, cardNumber }) => {
      expect(makeCardNumber({ areaCode, sequence })).toBe(cardNumber);
      expect(parseCardNumber(cardNumber)).toEqual({
        ok: true,
        value: {
          kind: 'card_number',
          customerClass: '0',
          customerClassName: 'card',
          cardLevel: '0',
          area,
          sequence,
          checkDigit: Number(cardNumber.slice(15)),
          expectedCheckDigit: Number(cardNumber.slice(15)),
          checkDigitValid: true,
        },
      });
      expect(isValidCardNumber(cardNumber)).toBe(true);
    },
  );

  test('a bad Luhn digit is refused by parse, reported by decode', () => {
    expect(parseCardNumber('8600794000000012')).toEqual({
      ok: false,
      reason: 'bad Luhn check digit: expected 3, got 2',
    });
    expect(isValidCardNumber('8600794000000012')).toBe(false);
    expect(decodeCode('8600794000000012')).toMatchObject({
      ok: true,
      value: { kind: 'card_number', checkDigit: 2, expectedCheckDigit: 3, checkDigitValid: false },
    });
  });

  test.each([
    ['', 'card number must be 16 digits'],
    ['860079400000001', 'card number must be 16 digits'],
    ['860079400000001x', 'card number must be 16 digits'],
    ['8500794000000013', 'card number must start with 86'],
    ['8621794000000001', 'card number customer class must be 0, got 2'],
    ['8605794000000013', 'card level must be 0, got 5'],
  ])('parseCardNumber(%j) refuses: %s', (text, reason) => {
    expect(parseCardNumber(text)).toEqual({ ok: false, reason });
  });

  test('the builder refuses bad parts', () => {
    expect(() => makeCardNumber({ areaCode: '0794', sequence: '123456789' })).toThrow(RangeError);
    expect(() => makeCardNumber({ areaCode: '0794', sequence: 100_000_000 })).toThrow(RangeError);
    expect(() => makeCardNumber({ areaCode: '0794', sequence: -1 })).toThrow(RangeError);
    expect(() => makeCardNumber({ areaCode: '0794', sequence: 1.5 })).toThrow(RangeError);
    expect(() => makeCardNumber({ areaCode: '0794', sequence: '12a' })).toThrow(RangeError);
    expect(() => makeCardNumber({ areaCode: '07a4', sequence: 1 })).toThrow(RangeError);
    expect(() => makeCardNumber({ areaCode: '794', sequence: 1 })).toThrow(RangeError);
    expect(() => makeCardNumber({ areaCode: '07945', sequence: 1 })).toThrow(RangeError);
  });

  test('property: every built card number passes Luhn and round-trips through parse', () => {
    fc.assert(
      fc.property(areaCodeArbitrary, fc.integer({ min: 0, max: 99_999_999 }), (areaDigits, sequence) => {
        const cardNumber = makeCardNumber({ areaCode: `0${areaDigits}`, sequence });
        expect(cardNumber).toMatch(/^8600\d{12}$/);
        expect(luhnHolds(cardNumber)).toBe(true);
        const parsed = parseCardNumber(cardNumber);
        expect(parsed).toMatchObject({
          ok: true,
          value: {
            area: areaDigits.padStart(3, '0'),
            sequence: String(sequence).padStart(8, '0'),
            checkDigitValid: true,
          },
        });
        expect(decodeCode(cardNumber)).toEqual(parsed);
      }),
    );
  });

  test('property: changing any single digit of a valid card number makes Luhn fail', () => {
    fc.assert(
      fc.property(
        areaCodeArbitrary,
        fc.integer({ min: 0, max: 99_999_999 }),
        fc.integer({ min: 0, max: 15 }),
        fc.integer({ min: 1, max: 9 }),
        (areaDigits, sequence, position, digitShift) => {
          const cardNumber = makeCardNumber({ areaCode: `0${areaDigits}`, sequence });
          const changedDigit = (Number(cardNumber[position]) + digitShift) % 10;
          const changed = cardNumber.slice(0, position) + String(changedDigit) + cardNumber.slice(position + 1);
          expect(luhnHolds(changed)).toBe(false);
          expect(parseCardNumber(changed).ok).toBe(false);
        },
      ),
    );
  });
});

describe('T7 account ids', () => {
  test.each(ACCOUNT_ID_VECTORS)('$accountId', ({ customerClass, accountType, areaCode, sequence, accountId }) => {
    expect(makeAccountId({ customerClass, accountType, areaCode, sequence })).toBe(accountId);
    const parsed = parseAccountId(accountId);
    expect(parsed).toMatchObject({
      ok: true,
      value: { kind: 'account_id', customerClass, accountType, area: codedArea(areaCode), sequence },
    });
    expect(decodeCode(accountId)).toEqual(parsed);
  });

  test('decoded names come from the tables', () => {
    expect(parseAccountId('8621794000000001')).toMatchObject({
      ok: true,
      value: { customerClassName: 'public', accountTypeName: 'online payment' },
    });
    expect(parseAccountId('8610791000000123')).toMatchObject({
      ok: true,
      value: { customerClassName: 'government/enterprise', accountTypeName: 'main fund' },
    });
  });

  test.each([
    ['8621', 'account id must be 16 digits'],
    ['7621794000000001', 'account id must start with 86'],
    ['8631794000000001', 'account id customer class must be 1, 2 or 6, got 3'],
    ['8625794000000001', 'account type must be 0 to 4, got 5'],
  ])('parseAccountId(%j) refuses: %s', (text, reason) => {
    expect(parseAccountId(text)).toEqual({ ok: false, reason });
  });

  test('the builder refuses bad parts', () => {
    const valid = { customerClass: '2', accountType: '1', areaCode: '0794', sequence: 1 } as const;
    expect(() => makeAccountId({ ...valid, customerClass: '3' as CustomerClass })).toThrow(RangeError);
    expect(() => makeAccountId({ ...valid, accountType: '5' as AccountTypeCode })).toThrow(RangeError);
    expect(() => makeAccountId({ ...valid, sequence: 1_000_000_000 })).toThrow(RangeError);
    expect(() => makeAccountId({ ...valid, areaCode: 'abc' })).toThrow(RangeError);
  });

  test('customer class precedence: government/enterprise, then public, then other', () => {
    expect(customerClassByPrecedence(['6', '2'])).toBe('2');
    expect(customerClassByPrecedence(['2', '6', '1'])).toBe('1');
    expect(customerClassByPrecedence(['6'])).toBe('6');
    expect(() => customerClassByPrecedence([])).toThrow(RangeError);
  });
});

describe('decodeCode', () => {
  test.each([
    ['', 'a card number or account id must be 16 digits'],
    ['abc', 'a card number or account id must be 16 digits'],
    ['1600794000000013', 'a card number or account id must start with 86'],
    ['8691794000000001', 'customer class must be 0 (card number) or 1, 2, 6 (account id), got 9'],
  ])('%j is malformed: %s', (text, reason) => {
    expect(decodeCode(text)).toEqual({ ok: false, reason });
  });
});

describe('T5 account numbers', () => {
  test.each(ACCOUNT_NUMBER_VECTORS)('%s', (_case, source, accountNumber) => {
    expect(makeAccountNumber(source)).toBe(accountNumber);
  });

  test('the builder refuses bad parts', () => {
    expect(() => makeAccountNumber({ kind: 'mobile', mobileNumber: '23907941234' })).toThrow(RangeError);
    expect(() => makeAccountNumber({ kind: 'mobile', mobileNumber: '1390794123' })).toThrow(RangeError);
    expect(() => makeAccountNumber({ kind: 'fixed_line', areaCode: '0794', lineNumber: '82212345' })).toThrow(
      RangeError,
    );
    expect(() => makeAccountNumber({ kind: 'fixed_line', areaCode: '794', lineNumber: '8221234' })).toThrow(RangeError);
    expect(() => makeAccountNumber({ kind: 'broadband', areaCode: '0794', broadbandNumber: '123456' })).toThrow(
      RangeError,
    );
  });
});
