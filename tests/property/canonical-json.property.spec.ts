import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { canonicalJson, digestOf } from '../../core-ledger';

/** The definition, written plainly: sorted keys at every depth, undefined members left out, undefined items null. */
function modelCanonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => modelCanonicalJson(v === undefined ? null : v)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${modelCanonicalJson(v)}`).join(',')}}`;
}

/** JSON values with, here and there, members and items that are undefined (facts built by callers have those). */
const withUndefined = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.jsonValue({ maxDepth: 1 }),
    fc.constant(undefined),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string({ unit: 'binary', maxLength: 6 }), tie('value'), { maxKeys: 5 }),
  ),
})).value;

describe('canonical JSON (digests of facts and rule sets)', () => {
  test('is the model text for any JSON value: keys sorted by code unit, undefined left out', () => {
    fc.assert(
      fc.property(withUndefined, (value) => {
        expect(canonicalJson(value)).toBe(modelCanonicalJson(value));
      }),
      { numRuns: 2_000 },
    );
  });

  test('is the model text for flat objects built with their keys in order (as payment facts are)', () => {
    const primitive = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 8 }),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.constant(undefined),
    );
    fc.assert(
      fc.property(fc.dictionary(fc.string({ unit: 'binary', maxLength: 6 }), primitive, { maxKeys: 14 }), (dict) => {
        const inOrder: Record<string, unknown> = {};
        for (const key of Object.keys(dict).sort()) inOrder[key] = dict[key];
        expect(canonicalJson(inOrder)).toBe(modelCanonicalJson(inOrder));
      }),
      { numRuns: 2_000 },
    );
  });

  test('reads back as the same value, whatever order its keys were written in', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = canonicalJson(value);
        expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(value)));
        const reversed = JSON.parse(JSON.stringify(value), (_key, v: unknown) =>
          v !== null && typeof v === 'object' && !Array.isArray(v)
            ? Object.fromEntries(Object.entries(v as Record<string, unknown>).reverse())
            : v,
        ) as unknown;
        expect(canonicalJson(reversed)).toBe(text);
      }),
      { numRuns: 1_000 },
    );
  });

  test('orders keys by UTF-16 code unit, not by locale', () => {
    expect(canonicalJson({ b: 1, a: [{ z: true, é: null, Z: 'x' }], '𝟘': 0, ﬀ: 2 })).toBe(
      '{"a":[{"Z":"x","z":true,"é":null}],"b":1,"𝟘":0,"ﬀ":2}',
    );
  });

  test('the digest is SHA-256 of the canonical text, in hex (stored digests of reviews stay comparable)', () => {
    expect(digestOf({ b: 1, a: 'x' })).toBe(createHash('sha256').update('{"a":"x","b":1}', 'utf8').digest('hex'));
    expect(digestOf({})).toBe('44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
  });
});
