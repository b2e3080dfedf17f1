import fc from 'fast-check';
import { BoundedCache } from '../../core-ledger';

describe('the ledger’s bounded cache', () => {
  test('property: it holds the `bound` keys first remembered most recently, with their latest values', () => {
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
          // The model: keys in the order they joined; an update keeps the place.
          let model: [string, number][] = [];
          for (const step of steps) {
            const key = `k${step.key}`;
            const at = model.findIndex(([k]) => k === key);
            if (step.op === 'remember') {
              cache.remember(key, step.value);
              if (at >= 0) model[at] = [key, step.value];
              else {
                model.push([key, step.value]);
                if (model.length > bound) model.shift();
              }
            } else {
              cache.delete(key);
              model = model.filter(([k]) => k !== key);
            }
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
