import fc from 'fast-check';
import { Money } from '../../core-ledger';
import { compileRuleSet, InMemoryRiskEngine } from '../../services/risk';
import { fenText } from '../../services/risk/simulated-day';

/**
 * Velocity and daily limits against a model that recounts by brute force: for any sequence of payments (some failing
 * after they were allowed and released), the engine allows exactly those that keep every window and day within its
 * limits, so the counted traffic never passes a limit.
 */

const DAY0 = Date.parse('2026-11-22T16:00:00.000Z'); // 00:00 in Shanghai

interface Step {
  readonly account: number;
  readonly minuteGap: number;
  readonly second: number;
  readonly fen: number;
  readonly fails: boolean;
}

const step = fc.record({
  account: fc.integer({ min: 0, max: 2 }),
  minuteGap: fc.integer({ min: 0, max: 3 }),
  second: fc.integer({ min: 0, max: 59 }),
  fen: fc.integer({ min: 1, max: 5_000 }),
  fails: fc.boolean(),
});

test('the engine allows exactly what a brute-force recount allows; counted traffic never passes a limit', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(1, 2, 5, 10),
      fc.integer({ min: 1, max: 6 }),
      fc.integer({ min: 1_000, max: 20_000 }),
      fc.integer({ min: 5_000, max: 60_000 }),
      fc.array(step, { minLength: 1, maxLength: 120 }),
      (windowMinutes, maxCount, maxWindowFen, maxDayFen, steps: Step[]) => {
        const engine = new InMemoryRiskEngine(
          compileRuleSet(
            {
              schema: 1,
              name: 'p',
              rules: [
                {
                  id: 'vel',
                  kind: 'velocity',
                  action: 'refuse',
                  appliesTo: 'payment',
                  dimension: 'account',
                  windowSeconds: windowMinutes * 60,
                  maxCount,
                  maxAmount: fenText(maxWindowFen),
                },
                { id: 'day', kind: 'daily_limit', action: 'refuse', per: 'account', maxAmount: fenText(maxDayFen) },
              ],
            },
            1,
          ),
        );
        const counted: { account: number; minute: number; fen: number }[] = [];
        let minute = 0;
        steps.forEach((s, i) => {
          minute += s.minuteGap;
          const inWindow = counted.filter(
            (c) => c.account === s.account && c.minute > minute - windowMinutes && c.minute <= minute,
          );
          const today = counted.filter((c) => c.account === s.account);
          const windowFen = inWindow.reduce((sum, c) => sum + c.fen, 0);
          const dayFen = today.reduce((sum, c) => sum + c.fen, 0);
          const modelAllows =
            inWindow.length + 1 <= maxCount && windowFen + s.fen <= maxWindowFen && dayFen + s.fen <= maxDayFen;
          const result = engine.assess(
            'payment',
            {
              subjectRef: `payment:${i}`,
              amount: fenText(s.fen),
              accountId: `W${s.account}`,
              customerClass: '2',
              walletPurpose: 'general',
              merchantId: 'M1',
              merchantCategory: 'food',
              channel: 'api',
              businessDate: '2026-11-23',
            },
            new Date(DAY0 + minute * 60_000 + s.second * 1_000),
          );
          expect(result.outcome).toBe(modelAllows ? 'allow' : 'refuse');
          if (result.outcome === 'allow') {
            if (s.fails) expect(engine.release(result.decisionId)).toBe(true);
            else counted.push({ account: s.account, minute, fen: s.fen });
          }
          // The invariant itself, read from the engine's counters: within every limit after every step.
          const totals = engine.total(`payment|account:W${s.account}|*|d`, 0, Number.MAX_SAFE_INTEGER);
          expect(new Money(totals.amount).lte(fenText(maxDayFen))).toBe(true);
          expect(
            new Money(totals.amount).eq(
              fenText(today.reduce((sum, c) => sum + c.fen, 0) + (modelAllows && !s.fails ? s.fen : 0)),
            ),
          ).toBe(true);
        });
      },
    ),
    { numRuns: 200, seed: 14 },
  );
});
