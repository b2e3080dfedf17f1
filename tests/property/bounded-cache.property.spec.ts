import fc from 'fast-check';
import { BoundedCache } from '../../core-ledger/bounded-cache';

describe('the ledger’s bounded cache', () => {
  test('property: it holds exactly the `bound` most recently remembered keys, with their latest values', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant('remember' as const), key: fc.integer({ min: 0, max: 15 }), value: fc.nat() }),
            fc.record({ op: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 15 }) }),
          ),
          { maxLength: 300 },
        ),
        (bound, steps) => {
          const cache = new BoundedCache<number>(bound);
          // The model: keys from least to most recently remembered.
          let model: [string, number][] = [];
          for (const step of steps) {
            const key = `k${step.key}`;
            model = model.filter(([k]) => k !== key);
            if (step.op === 'remember') {
              cache.remember(key, step.value);
              model.push([key, step.value]);
              if (model.length > bound) model.shift();
            } else cache.delete(key);
            expect([...cache.entries()]).toEqual(model);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  test('a bound is a positive integer', () => {
    expect(() => new BoundedCache(0)).toThrow(/positive integer/);
  });
});
