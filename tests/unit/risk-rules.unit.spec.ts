import type { RuleSet } from '../../services/risk';
import { compileRuleSet, RISK_RESPONSE_CODES, RULE_KINDS, scopeKeyOf, validateRuleSet } from '../../services/risk';
import { STARTER_RULE_SET } from '../../services/risk/starter-rule-set';

/** Rule sets are data: validated on load, with every problem named by its path. */

const ok = (ruleSet: unknown): boolean => validateRuleSet(ruleSet).ok;
const errors = (ruleSet: unknown): string[] => {
  const result = validateRuleSet(ruleSet);
  return result.ok ? [] : result.errors;
};
const withRule = (rule: Record<string, unknown>): unknown => ({ schema: 1, name: 't', rules: [rule] });

describe('rule-set validation', () => {
  test('the starter set is valid, has 20 rules and uses every rule kind', () => {
    expect(validateRuleSet(STARTER_RULE_SET)).toEqual({ ok: true, ruleSet: STARTER_RULE_SET });
    expect(STARTER_RULE_SET.rules).toHaveLength(20);
    expect(new Set(STARTER_RULE_SET.rules.map((r) => r.kind))).toEqual(new Set(RULE_KINDS));
  });

  test('a set survives JSON: what is published is what is evaluated', () => {
    const copy = JSON.parse(JSON.stringify(STARTER_RULE_SET)) as RuleSet;
    expect(compileRuleSet(copy, 1).digest).toBe(compileRuleSet(STARTER_RULE_SET, 1).digest);
  });

  test.each([
    [{ id: 'a', kind: 'transaction_limit', action: 'refuse', maxAmount: 500 }, 'rules[0].maxAmount'],
    [{ id: 'a', kind: 'transaction_limit', action: 'refuse', maxAmount: '500.001' }, 'rules[0].maxAmount'],
    [{ id: 'a', kind: 'transaction_limit', action: 'refuse', maxAmount: '-1.00' }, 'rules[0].maxAmount'],
    [{ id: 'a', kind: 'transaction_limit', action: 'block', maxAmount: '1.00' }, 'rules[0].action'],
    [{ id: 'A b', kind: 'transaction_limit', action: 'refuse', maxAmount: '1.00' }, 'rules[0].id'],
    [{ id: 'a', kind: 'teleport', action: 'refuse' }, 'rules[0].kind'],
    [{ id: 'a', kind: 'daily_limit', action: 'refuse', per: 'account' }, 'needs maxAmount, maxCount or both'],
    [{ id: 'a', kind: 'daily_limit', action: 'refuse', per: 'ip', maxCount: 3 }, 'rules[0].per'],
    [
      {
        id: 'a',
        kind: 'velocity',
        action: 'refuse',
        appliesTo: 'payment',
        dimension: 'card',
        windowSeconds: 90,
        maxCount: 1,
      },
      'rules[0].windowSeconds',
    ],
    [
      {
        id: 'a',
        kind: 'velocity',
        action: 'refuse',
        appliesTo: 'payment',
        dimension: 'card',
        windowSeconds: 4_000,
        maxCount: 1,
      },
      'rules[0].windowSeconds',
    ],
    [
      {
        id: 'a',
        kind: 'velocity',
        action: 'refuse',
        appliesTo: 'payment',
        dimension: 'card',
        windowSeconds: 172_800,
        maxCount: 1,
      },
      'rules[0].windowSeconds',
    ],
    [
      {
        id: 'a',
        kind: 'velocity',
        action: 'refuse',
        appliesTo: 'payment',
        dimension: 'card',
        windowSeconds: 60,
        maxCount: 1.5,
      },
      'rules[0].maxCount',
    ],
    [{ id: 'a', kind: 'block_list', action: 'refuse', list: 'ip', entries: ['10.0.0.0/33'] }, 'rules[0].entries'],
    [{ id: 'a', kind: 'block_list', action: 'refuse', list: 'ip', entries: ['not-an-ip'] }, 'rules[0].entries'],
    [{ id: 'a', kind: 'block_list', action: 'refuse', list: 'card', entries: [] }, 'rules[0].entries'],
    [
      { id: 'a', kind: 'trip_speed', action: 'refuse', maxKmPerHour: { bus: '60' } },
      'not a trip behaviour measured in km',
    ],
    [
      { id: 'a', kind: 'daily_quantity', action: 'refuse', behaviour: 'flying', maxQuantity: '1' },
      'rules[0].behaviour',
    ],
    [{ id: 'a', kind: 'transaction_limit', action: 'refuse', maxAmount: '1.00', colour: 'red' }, 'rules[0].colour'],
    [
      { id: 'a', kind: 'transaction_limit', action: 'refuse', maxAmount: '1.00', scope: { channels: [] } },
      'scope.channels',
    ],
    [
      { id: 'a', kind: 'transaction_limit', action: 'refuse', maxAmount: '1.00', isoResponseCode: '5' },
      'isoResponseCode',
    ],
  ])('refuses %j (%s)', (rule, where) => {
    const problems = errors(withRule(rule));
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.join('\n')).toContain(where);
  });

  test('refuses duplicate ids, a wrong schema and too many rules', () => {
    const rule = { id: 'a', kind: 'transaction_limit', action: 'refuse', maxAmount: '1.00' };
    expect(errors({ schema: 1, name: 't', rules: [rule, rule] }).join()).toContain('is used twice');
    expect(errors({ schema: 2, name: 't', rules: [] }).join()).toContain('schema');
    expect(ok({ schema: 1, name: 't', rules: Array.from({ length: 201 }, (_, i) => ({ ...rule, id: `r${i}` })) })).toBe(
      false,
    );
    expect(ok({ schema: 1, name: 't', rules: Array.from({ length: 200 }, (_, i) => ({ ...rule, id: `r${i}` })) })).toBe(
      true,
    );
  });

  test('compiling an invalid set is a bug, not a refusal', () => {
    expect(() => compileRuleSet({ schema: 1, name: 't', rules: [{ id: 'x' }] } as unknown as RuleSet, 1)).toThrow(
      /assertion/,
    );
  });
});

describe('compiled rules', () => {
  test('scopes are canonical: the same scope written in another order shares a counter', () => {
    expect(scopeKeyOf({ merchantCategories: ['b', 'a'], customerClasses: ['2'] })).toBe(
      scopeKeyOf({ customerClasses: ['2'], merchantCategories: ['a', 'b'] }),
    );
    expect(scopeKeyOf(undefined)).toBe('*');
    expect(scopeKeyOf({ amountAtMost: '5.00' })).toBe(scopeKeyOf({ amountAtMost: '5' }));
  });

  test('each rule kind answers its ISO 8583 response code from the table, and a rule may name its own', () => {
    const set = compileRuleSet(
      {
        schema: 1,
        name: 't',
        rules: [
          { id: 'l', kind: 'transaction_limit', action: 'refuse', maxAmount: '1.00' },
          {
            id: 'v',
            kind: 'velocity',
            action: 'refuse',
            appliesTo: 'payment',
            dimension: 'card',
            windowSeconds: 60,
            maxCount: 1,
          },
          { id: 'c', kind: 'block_list', action: 'refuse', list: 'card', entries: ['c1'] },
          { id: 'a', kind: 'block_list', action: 'refuse', list: 'account', entries: ['a1'] },
          { id: 't', kind: 'block_list', action: 'refuse', list: 'terminal', entries: ['t1'] },
          { id: 'd', kind: 'block_list', action: 'refuse', list: 'device', entries: ['d1'] },
          { id: 's', kind: 'trip_speed', action: 'refuse', maxKmPerHour: { metro: '120' } },
          { id: 'o', kind: 'transaction_limit', action: 'refuse', maxAmount: '1.00', isoResponseCode: '05' },
        ],
      },
      1,
    );
    const iso = Object.fromEntries(
      [...set.byKind.payment, ...set.byKind.carbon_record].map((r) => [r.rule.id, r.isoResponseCode]),
    );
    expect(iso).toEqual({ l: '61', v: '65', c: '62', a: '62', t: '58', d: '57', s: '59', o: '05' });
    expect(RISK_RESPONSE_CODES.velocity.isoResponseCode).toBe('65');
    expect(set.byKind.carbon_record.map((r) => r.rule.id)).toEqual(['c', 'a', 't', 'd', 's']);
  });
});
