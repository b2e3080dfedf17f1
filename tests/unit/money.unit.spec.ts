import Decimal from 'decimal.js';
import fc from 'fast-check';
import type { AssetCode } from '../../core-ledger';
import { ASSETS, atScale, feeFor, formatAmount, Money, parseAmount, roundTo } from '../../core-ledger';

describe('money', () => {
  test('parses decimal strings at the asset scale and refuses the rest', () => {
    expect(parseAmount('CNY', '12.30', { positive: true })).toMatchObject({ ok: true });
    expect(parseAmount('CNY', '12.300', { positive: true })).toMatchObject({ ok: true });
    expect(parseAmount('CNY', '0.001', { positive: true })).toEqual({
      ok: false,
      error: { kind: 'too_many_decimals', scale: 2 },
    });
    expect(parseAmount('CO2E', '1.5', { positive: true })).toEqual({
      ok: false,
      error: { kind: 'too_many_decimals', scale: 0 },
    });
    for (const bad of ['1e3', '+1', '.5', '1.', ' 1', '0x10', 'NaN', 'Infinity', '']) {
      expect(parseAmount('CNY', bad, { positive: true })).toEqual({
        ok: false,
        error: { kind: 'not_a_decimal_string' },
      });
    }
    expect(parseAmount('CNY', 12.3, { positive: true })).toEqual({
      ok: false,
      error: { kind: 'not_a_decimal_string' },
    });
    expect(parseAmount('CNY', '0', { positive: true })).toEqual({ ok: false, error: { kind: 'not_positive' } });
    expect(parseAmount('CNY', '-1', { positive: true })).toEqual({ ok: false, error: { kind: 'not_positive' } });
    expect(parseAmount('CNY', '1234567890123456', { positive: true })).toEqual({
      ok: false,
      error: { kind: 'too_large' },
    });
  });

  test('property: the parser agrees with the regular expression it replaced, on any text', () => {
    // The former parser, kept here as the oracle.
    const oracle = (asset: 'CNY' | 'CO2E', text: string, positive: boolean): unknown => {
      const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
      if (!match) return { ok: false, error: { kind: 'not_a_decimal_string' } };
      const integerDigits = match[2]!.replace(/^0+(?=\d)/, '');
      const fraction = match[3] ?? '';
      const scale = asset === 'CNY' ? 2 : 0;
      if (fraction.replace(/0+$/, '').length > scale) return { ok: false, error: { kind: 'too_many_decimals', scale } };
      if (integerDigits.length > 15) return { ok: false, error: { kind: 'too_large' } };
      const amount = new Money(text);
      if (positive && amount.lte(0)) return { ok: false, error: { kind: 'not_positive' } };
      return { ok: true, amount: amount.toString() };
    };
    const digits = (max: number) => fc.stringMatching(new RegExp(`^[0-9]{0,${max}}$`));
    const decimalLike = fc
      .tuple(
        fc.constantFrom('', '-', '+', ' '),
        fc.constantFrom('', '0', '000'),
        digits(18),
        fc.constantFrom('', '.', ',', 'e'),
        digits(5),
        fc.constantFrom('', '0', '000', '\n', 'x'),
      )
      .map((parts) => parts.join(''));
    fc.assert(
      fc.property(
        fc.oneof(decimalLike, fc.string(), fc.string({ unit: 'binary' })),
        fc.constantFrom('CNY' as const, 'CO2E' as const),
        fc.boolean(),
        (text, asset, positive) => {
          const parsed = parseAmount(asset, text, { positive });
          const ours = parsed.ok ? { ok: true, amount: parsed.amount.toString() } : parsed;
          expect(ours).toEqual(oracle(asset, text, positive));
        },
      ),
      { numRuns: 20_000 },
    );
  });

  test('property: an amount parsed again, after others, has the value of its own text', () => {
    // Parsed amounts are kept a while by their text (slots that other texts take over): a text must never get the
    // value of another, however the texts of a run interleave and repeat.
    const text = fc
      .tuple(fc.boolean(), fc.bigInt({ min: 0n, max: 10n ** 17n - 1n }), fc.integer({ min: 0, max: 2 }))
      .map(([negative, units, zeros]) => {
        const digits = units.toString().padStart(3, '0');
        return `${negative ? '-' : ''}${digits.slice(0, -2)}.${digits.slice(-2)}${'0'.repeat(zeros)}`;
      });
    fc.assert(
      fc.property(fc.array(text, { minLength: 1_500, maxLength: 2_000 }), (texts) => {
        for (const t of [...texts, ...texts.reverse()]) {
          const parsed = parseAmount('CNY', t, { positive: false });
          expect(parsed.ok && parsed.amount.eq(new Money(t))).toBe(true);
        }
      }),
      { numRuns: 6 },
    );
  });

  test('property: atScale writes what toFixed writes, for any decimal text the asset takes, and refuses the rest', () => {
    const digits = (min: number, max: number): fc.Arbitrary<string> =>
      fc.array(fc.constantFrom(...'0000123456789'), { minLength: min, maxLength: max }).map((d) => d.join(''));
    const text = fc
      .tuple(fc.boolean(), digits(1, 18), fc.option(digits(0, 5), { nil: undefined }))
      .map(([negative, whole, fraction]) => `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`);
    fc.assert(
      fc.property(text, fc.constantFrom('CNY', 'CCR', 'CO2E') as fc.Arbitrary<AssetCode>, (t, asset) => {
        const scale = ASSETS[asset].scale;
        if (parseAmount(asset, t, { positive: false }).ok) expect(atScale(asset, t)).toBe(new Money(t).toFixed(scale));
        else expect(() => atScale(asset, t)).toThrow(/assertion/);
      }),
      { numRuns: 5_000 },
    );
    for (const [t, asset] of [
      ['-0.00', 'CNY'],
      ['0.00', 'CNY'],
      ['00.10', 'CNY'],
      ['7', 'CO2E'],
      ['-0', 'CO2E'],
      ['12.3', 'CCR'],
    ] as const)
      expect(atScale(asset, t)).toBe(new Money(t).toFixed(ASSETS[asset].scale));
    // Never rounded.
    expect(() => atScale('CNY', '1.005')).toThrow(/assertion/);
  });

  test('an amount read back from the text it was written as is a Money of the same value', () => {
    const written = new Money('12.3').plus('0.05');
    const text = formatAmount('CNY', written);
    const read = parseAmount('CNY', text, { positive: true });
    expect(read.ok && read.amount.eq(written) && read.amount.constructor === Money).toBe(true);
    // An amount made by another Decimal class (another precision) is never handed out as a parsed one.
    const foreign = new Decimal('98765.43');
    expect(formatAmount('CNY', foreign)).toBe('98765.43');
    const again = parseAmount('CNY', '98765.43', { positive: true });
    expect(again.ok && again.amount.constructor === Money && again.amount.eq(foreign)).toBe(true);
    // A negative zero is written "0.00"; the text read back is a plain zero.
    expect(formatAmount('CNY', new Money(0).neg())).toBe('0.00');
    const zero = parseAmount('CNY', '0.00', { positive: false });
    expect(zero.ok && zero.amount.isZero() && !zero.amount.isNegative()).toBe(true);
  });

  test('formats at the asset scale', () => {
    expect(formatAmount('CNY', new Money('5'))).toBe('5.00');
    expect(formatAmount('CCR', new Money('0.1'))).toBe('0.10');
    expect(formatAmount('CO2E', new Money('1500'))).toBe('1500');
    expect(() => formatAmount('CNY', new Money('0.005'))).toThrow(/assertion/);
  });

  test('fees round half-up to the fen, per transaction', () => {
    expect(feeFor('CNY', new Money('100.00'), 60).toString()).toBe('0.6');
    expect(feeFor('CNY', new Money('0.83'), 60).toString()).toBe('0'); // 0.00498 → 0.00
    expect(feeFor('CNY', new Money('0.84'), 60).toString()).toBe('0.01'); // 0.00504 → 0.01
    expect(feeFor('CNY', new Money('12.50'), 40).toString()).toBe('0.05'); // exactly 0.005 → half-up 0.01? no: 0.05
    expect(feeFor('CNY', new Money('1.25'), 40).toString()).toBe('0.01'); // 0.005 → 0.01 (half-up, not half-even)
    expect(() => feeFor('CNY', new Money('1'), 10_001)).toThrow(RangeError);
  });

  test('rounding modes are explicit', () => {
    expect(roundTo('CNY', new Money('0.125'), 'half_up').toString()).toBe('0.13');
    expect(roundTo('CNY', new Money('0.125'), 'half_even').toString()).toBe('0.12');
    expect(roundTo('CNY', new Money('0.129'), 'down').toString()).toBe('0.12');
  });

  test('property: parse ∘ format is the identity on fen amounts', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 10n ** 17n - 1n }), (fen) => {
        const text = formatAmount('CNY', new Money(fen.toString()).div(100));
        const parsed = parseAmount('CNY', text, { positive: true });
        return parsed.ok && formatAmount('CNY', parsed.amount) === text;
      }),
    );
  });

  test('property: a fee never exceeds the amount and is at fen scale', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 10n ** 12n }), fc.integer({ min: 0, max: 10_000 }), (fen, bps) => {
        const amount = new Money(fen.toString()).div(100);
        const fee = feeFor('CNY', amount, bps);
        return fee.lte(amount) && fee.gte(0) && fee.decimalPlaces() <= 2;
      }),
    );
  });
});
