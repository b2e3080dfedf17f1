/**
 * A rule set that counts every payment per account and refuses none in practice (its maximum far above what a test
 * sends): for tests of how decisions are recorded and counted, not of what the rules decide.
 */
export function countingRuleSet(name: string): unknown {
  return {
    schema: 1,
    name,
    rules: [
      {
        id: 'count-only',
        kind: 'velocity',
        action: 'refuse',
        appliesTo: 'payment',
        dimension: 'account',
        windowSeconds: 600,
        maxCount: 1_000_000,
      },
    ],
  };
}
