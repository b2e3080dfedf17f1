import fc from 'fast-check';
import pg from 'pg';
import { pgParameterOf } from '../../projections';

// pg's own serializer (exported at runtime, not in its types), what every parameter went through before: the literal
// written here must be the same.
const { prepareValue } = (pg as unknown as { utils: { prepareValue: (value: unknown) => unknown } }).utils;

describe('array parameters for PostgreSQL', () => {
  test('an array is sent as the literal pg would write, or left to pg', () => {
    const element = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 12 }),
      fc.constantFrom('', 'NULL', 'a,b', '{x}', ' padded ', 'say "hi"', 'back\\slash', '中文'),
      fc.double(),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.date({ noInvalidDate: true }),
    );
    fc.assert(
      fc.property(fc.array(element, { maxLength: 20 }), (array) => {
        const sent = pgParameterOf(array);
        if (sent === array) {
          expect(array.some((e) => e === null || e instanceof Date || (typeof e === 'string' && /["\\]/.test(e)))).toBe(
            true,
          );
        } else {
          expect(sent).toBe(prepareValue(array));
        }
      }),
      { numRuns: 2_000 },
    );
    expect(pgParameterOf([])).toBe('{}');
    expect(pgParameterOf('text')).toBe('text');
    expect(pgParameterOf(['a', 1, true])).toBe('{"a","1","true"}');
  });
});
