import fc from 'fast-check';
import Decimal from 'decimal.js';
import type { CarbonRecordFacts, PaymentFacts, RiskRule } from '../../services/risk';
import { compileRuleSet, InMemoryRiskEngine } from '../../services/risk';

/** Each rule kind at, just below and just above its threshold, through the pure evaluator (counters in memory). */

const NOW = new Date('2026-11-23T04:00:00.000Z'); // 12:00 in Shanghai
const MINUTE = 60_000;

function engine(rules: RiskRule[], options: { dryRun?: boolean; setDryRun?: boolean } = {}): InMemoryRiskEngine {
  return new InMemoryRiskEngine(compileRuleSet({ schema: 1, name: 't', dryRun: options.setDryRun, rules }, 1), {
    dryRun: options.dryRun ?? false,
  });
}

let seq = 0;
function pay(amount: string, extra: Partial<PaymentFacts> = {}): PaymentFacts {
  seq += 1;
  return {
    subjectRef: `payment:${seq}`,
    amount,
    accountId: 'W1',
    customerClass: '2',
    walletPurpose: 'general',
    merchantId: 'M1',
    merchantCategory: 'food',
    channel: 'pos',
    cardRef: 'card-1',
    terminalId: 'T1',
    ...extra,
  };
}

function trip(
  behaviour: string,
  km: string,
  minutes: number,
  extra: Partial<CarbonRecordFacts> = {},
): CarbonRecordFacts {
  seq += 1;
  const end = NOW.getTime() - 10 * MINUTE;
  return {
    subjectRef: `carbon:P1:${seq}`,
    partnerId: 'P1',
    accountId: 'A1',
    behaviour,
    quantity: km,
    unit: behaviour === 'walking' ? 'step' : 'km',
    startAt: new Date(end - minutes * MINUTE).toISOString(),
    endAt: new Date(end).toISOString(),
    ...extra,
  };
}

const at = (minutes: number): Date => new Date(NOW.getTime() + minutes * MINUTE);

describe('transaction_limit', () => {
  const rules: RiskRule[] = [
    {
      id: 'limit',
      kind: 'transaction_limit',
      action: 'refuse',
      maxAmount: '500.00',
      scope: { customerClasses: ['2'] },
    },
  ];
  test.each([
    ['499.99', 'allow'],
    ['500.00', 'allow'],
    ['500.01', 'refuse'],
  ])('%s CNY against 500.00 → %s', (amount, outcome) => {
    const result = engine(rules).assess('payment', pay(amount), NOW);
    expect(result.outcome).toBe(outcome);
    if (outcome === 'refuse') {
      expect(result).toMatchObject({ code: 'risk_refused', isoResponseCode: '61', primaryRuleId: 'limit' });
      expect(result.firedRules[0]!.inputs).toEqual({ amount: '500.01', maxAmount: '500.00' });
    }
  });
  test('out of scope (another customer class) it does not apply', () => {
    expect(engine(rules).assess('payment', pay('9999.00', { customerClass: '1' }), NOW).outcome).toBe('allow');
  });
  test('limits and small-amount scopes of any precision judge as decimal.js does (millionths or not)', () => {
    // Up to 15 digits before the point and 2 (a limit in CNY) or 6 (a scope) after: beyond what whole millionths hold exactly, so both ways are taken.
    const decimalText = (maxPlaces: number): fc.Arbitrary<string> =>
      fc
        .tuple(
          fc.bigInt({ min: 0n, max: 10n ** 15n - 1n }),
          fc.nat({ max: 999_999 }),
          fc.integer({ min: 0, max: maxPlaces }),
        )
        .map(([whole, fraction, places]) =>
          places === 0 ? whole.toString() : `${whole}.${String(fraction).padStart(6, '0').slice(0, places)}`,
        );
    const amountText = fc
      .tuple(fc.bigInt({ min: 0n, max: 10n ** 12n }), fc.integer({ min: 1, max: 99 }))
      .map(([whole, fen]) => `${whole}.${String(fen).padStart(2, '0')}`);
    fc.assert(
      fc.property(amountText, decimalText(2), decimalText(6), (amount, max, atMost) => {
        fc.pre(new Decimal(max).gt(0) && new Decimal(atMost).gt(0));
        const limited = engine([
          { id: 'limit', kind: 'transaction_limit', action: 'refuse', maxAmount: max },
          {
            id: 'small',
            kind: 'transaction_limit',
            action: 'review',
            maxAmount: '0.01',
            scope: { amountAtMost: atMost },
          },
        ]).assess('payment', pay(amount), NOW);
        const over = new Decimal(amount).gt(max);
        const small = new Decimal(amount).lte(atMost) && new Decimal(amount).gt('0.01');
        expect(limited.outcome).toBe(over ? 'refuse' : small ? 'hold' : 'allow');
        expect(limited.firedRules.map((f) => f.ruleId)).toEqual([
          ...(over ? ['limit'] : []),
          ...(small ? ['small'] : []),
        ]);
      }),
      {
        numRuns: 2_000,
        // At the limit and at the scope's bound, in millionths and beyond them: never left to chance.
        examples: [
          ['0.01', '0.01', '0.000001'],
          ['500.00', '500', '500.00'],
          ['500.01', '500', '500.01'],
          ['123456789.99', '123456789.99', '123456789.990001'],
          ['1000000000.00', '1000000000', '1000000000'],
        ],
      },
    );
  });
});

describe('daily_limit', () => {
  test('amount per account and business day: at the limit allowed, a fen beyond refused, the next day fresh', () => {
    const e = engine([{ id: 'day', kind: 'daily_limit', action: 'refuse', per: 'account', maxAmount: '1000.00' }]);
    expect(e.assess('payment', pay('999.99', { businessDate: '2026-11-23' }), NOW).outcome).toBe('allow');
    expect(e.assess('payment', pay('0.02', { businessDate: '2026-11-23' }), NOW).outcome).toBe('refuse');
    expect(e.assess('payment', pay('0.01', { businessDate: '2026-11-23' }), NOW).outcome).toBe('allow'); // at 1000.00
    const over = e.assess('payment', pay('0.01', { businessDate: '2026-11-23' }), NOW);
    expect(over).toMatchObject({ outcome: 'refuse', isoResponseCode: '61', primaryRuleId: 'day' });
    expect(over.firedRules[0]!.inputs).toMatchObject({ amountBefore: '1000.00', amount: '0.01', maxAmount: '1000.00' });
    expect(e.assess('payment', pay('0.01', { businessDate: '2026-11-24' }), NOW).outcome).toBe('allow');
  });
  test('amounts beyond whole millionths are judged exactly: at a 2,000,000,000.00 limit allowed, a fen beyond refused', () => {
    const e = engine([
      { id: 'big', kind: 'daily_limit', action: 'refuse', per: 'account', maxAmount: '2000000000.00' },
    ]);
    expect(e.assess('payment', pay('1999999999.99', { businessDate: '2026-11-23' }), NOW).outcome).toBe('allow');
    expect(e.assess('payment', pay('0.02', { businessDate: '2026-11-23' }), NOW).outcome).toBe('refuse');
    expect(e.assess('payment', pay('0.01', { businessDate: '2026-11-23' }), NOW).outcome).toBe('allow');
    const over = e.assess('payment', pay('0.01', { businessDate: '2026-11-23' }), NOW);
    expect(over.firedRules[0]!.inputs).toMatchObject({ amountBefore: '2000000000.00', maxAmount: '2000000000.00' });
  });

  test('count per card: the 3rd of 3 allowed, the 4th refused; a released payment gives its place back', () => {
    const e = engine([{ id: 'cnt', kind: 'daily_limit', action: 'refuse', per: 'card', maxCount: 3 }]);
    const first = e.assess('payment', pay('1.00'), NOW);
    expect(e.assess('payment', pay('1.00'), NOW).outcome).toBe('allow');
    expect(e.assess('payment', pay('1.00'), NOW).outcome).toBe('allow');
    expect(e.assess('payment', pay('1.00'), NOW).outcome).toBe('refuse');
    expect(e.release(first.decisionId)).toBe(true);
    expect(e.release(first.decisionId)).toBe(false);
    expect(e.assess('payment', pay('1.00'), NOW).outcome).toBe('allow');
    expect(e.assess('payment', pay('1.00', { cardRef: 'card-2' }), NOW).outcome).toBe('allow');
  });
});

describe('velocity', () => {
  const rule: RiskRule = {
    id: 'vel',
    kind: 'velocity',
    action: 'refuse',
    appliesTo: 'payment',
    dimension: 'account',
    windowSeconds: 600,
    maxCount: 5,
    maxAmount: '100.00',
  };
  test('count: 4 and 5 in the window allowed, the 6th refused (65); the window slides', () => {
    const e = engine([rule]);
    for (let i = 0; i < 5; i++) expect(e.assess('payment', pay('1.00'), at(i)).outcome).toBe('allow');
    const sixth = e.assess('payment', pay('1.00'), at(9));
    expect(sixth).toMatchObject({
      outcome: 'refuse',
      code: 'risk_refused',
      isoResponseCode: '65',
      primaryRuleId: 'vel',
    });
    expect(sixth.firedRules[0]!.inputs).toMatchObject({ countBefore: 5, maxCount: 5, window: '600s' });
    // At minute 10 the first payment (minute 0) has left the 10-minute window: room for one.
    expect(e.assess('payment', pay('1.00'), at(10)).outcome).toBe('allow');
    expect(e.assess('payment', pay('1.00'), at(10)).outcome).toBe('refuse');
  });
  test('amount: at 100.00 allowed, a fen beyond refused', () => {
    const e = engine([rule]);
    expect(e.assess('payment', pay('60.00'), NOW).outcome).toBe('allow');
    expect(e.assess('payment', pay('40.01'), NOW).outcome).toBe('refuse');
    expect(e.assess('payment', pay('39.99'), NOW).outcome).toBe('allow');
    expect(e.assess('payment', pay('0.01'), NOW).outcome).toBe('allow');
    expect(e.assess('payment', pay('0.01'), NOW).outcome).toBe('refuse');
  });
  test('card testing: only small amounts count; the 4th small one is refused, large ones pass', () => {
    const e = engine([
      {
        id: 'card-testing',
        kind: 'velocity',
        action: 'refuse',
        appliesTo: 'payment',
        dimension: 'card',
        windowSeconds: 600,
        scope: { amountAtMost: '5.00' },
        maxCount: 3,
      },
    ]);
    expect(e.assess('payment', pay('5.00'), NOW).outcome).toBe('allow');
    expect(e.assess('payment', pay('0.01'), NOW).outcome).toBe('allow');
    expect(e.assess('payment', pay('250.00'), NOW).outcome).toBe('allow');
    expect(e.assess('payment', pay('4.99'), NOW).outcome).toBe('allow');
    expect(e.assess('payment', pay('0.50'), NOW).outcome).toBe('refuse');
    expect(e.assess('payment', pay('5.01'), NOW).outcome).toBe('allow');
  });
  test('per partner for carbon records: 3 a minute, the 4th held for review; another partner unaffected', () => {
    const e = engine([
      {
        id: 'burst',
        kind: 'velocity',
        action: 'review',
        appliesTo: 'carbon_record',
        dimension: 'partner',
        windowSeconds: 60,
        maxCount: 3,
      },
    ]);
    for (let i = 0; i < 3; i++) expect(e.assess('carbon_record', trip('metro', '5', 20), NOW).outcome).toBe('allow');
    expect(e.assess('carbon_record', trip('metro', '5', 20), NOW)).toMatchObject({
      outcome: 'hold',
      code: 'risk_review',
    });
    expect(e.assess('carbon_record', trip('metro', '5', 20, { partnerId: 'P2' }), NOW).outcome).toBe('allow');
    expect(e.assess('carbon_record', trip('metro', '5', 20), at(1)).outcome).toBe('allow');
  });
  test('per terminal and per device', () => {
    const e = engine([
      {
        id: 'term',
        kind: 'velocity',
        action: 'refuse',
        appliesTo: 'payment',
        dimension: 'terminal',
        windowSeconds: 60,
        maxCount: 1,
      },
      {
        id: 'dev',
        kind: 'velocity',
        action: 'refuse',
        appliesTo: 'payment',
        dimension: 'device',
        windowSeconds: 60,
        maxCount: 1,
      },
    ]);
    expect(e.assess('payment', pay('1.00', { terminalId: 'T9' }), NOW).outcome).toBe('allow');
    expect(e.assess('payment', pay('1.00', { terminalId: 'T9', accountId: 'W2' }), NOW).primaryRuleId).toBe('term');
    expect(e.assess('payment', pay('1.00', { terminalId: undefined, deviceId: 'D1' }), NOW).outcome).toBe('allow');
    expect(e.assess('payment', pay('1.00', { terminalId: undefined, deviceId: 'D1' }), NOW).primaryRuleId).toBe('dev');
  });
});

describe('block_list', () => {
  const e = engine([
    { id: 'cards', kind: 'block_list', action: 'refuse', list: 'card', entries: ['card-bad'] },
    { id: 'accounts', kind: 'block_list', action: 'refuse', list: 'account', entries: ['W-bad'] },
    { id: 'terminals', kind: 'block_list', action: 'refuse', list: 'terminal', entries: ['T-bad'] },
    { id: 'devices', kind: 'block_list', action: 'refuse', list: 'device', entries: ['D-bad'] },
    { id: 'ips', kind: 'block_list', action: 'refuse', list: 'ip', entries: ['203.0.113.0/25', '2001:db8::/32'] },
  ]);
  test.each([
    [{ cardRef: 'card-bad' }, 'cards', '62'],
    [{ accountId: 'W-bad' }, 'accounts', '62'],
    [{ terminalId: 'T-bad' }, 'terminals', '58'],
    [{ deviceId: 'D-bad' }, 'devices', '57'],
    [{ ip: '203.0.113.0' }, 'ips', '57'],
    [{ ip: '203.0.113.127' }, 'ips', '57'],
    [{ ip: '::ffff:203.0.113.5' }, 'ips', '57'],
    [{ ip: '2001:db8::1' }, 'ips', '57'],
  ])('%j is refused by %s with %s', (extra, rule, iso) => {
    expect(e.assess('payment', pay('1.00', extra), NOW)).toMatchObject({
      outcome: 'refuse',
      primaryRuleId: rule,
      isoResponseCode: iso,
    });
  });
  test.each([
    [{ cardRef: 'card-bad2' }],
    [{ ip: '203.0.113.128' }],
    [{ ip: '203.0.112.255' }],
    [{ ip: '2001:db9::1' }],
  ])('just outside: %j is allowed', (extra) => {
    expect(e.assess('payment', pay('1.00', extra), NOW).outcome).toBe('allow');
  });
  test('block lists apply to carbon records too (the account of a record)', () => {
    expect(e.assess('carbon_record', trip('metro', '5', 20, { accountId: 'W-bad' }), NOW).primaryRuleId).toBe(
      'accounts',
    );
  });
});

describe('carbon data', () => {
  const speed = engine([{ id: 'speed', kind: 'trip_speed', action: 'refuse', maxKmPerHour: { shared_bike: '30' } }]);
  test.each([
    ['14.99', 30, 'allow'],
    ['15.00', 30, 'allow'],
    ['15.01', 30, 'refuse'],
    ['0.01', 0, 'refuse'],
  ])('shared bike %s km in %i minutes against 30 km/h → %s', (km, minutes, outcome) => {
    const result = speed.assess('carbon_record', trip('shared_bike', km, minutes), NOW);
    expect(result.outcome).toBe(outcome);
    if (outcome === 'refuse') expect(result).toMatchObject({ isoResponseCode: '59', primaryRuleId: 'speed' });
  });
  test('a behaviour without a maximum, or not measured in km, is not judged by speed', () => {
    expect(speed.assess('carbon_record', trip('metro', '100', 10), NOW).outcome).toBe('allow');
  });
  test('steps per day: 59,999 + 1 reaches 60,000 and is allowed; one more step is refused; other days are fresh', () => {
    const e = engine([
      { id: 'steps', kind: 'daily_quantity', action: 'refuse', behaviour: 'walking', maxQuantity: '60000' },
    ]);
    expect(e.assess('carbon_record', trip('walking', '59999', 60), NOW).outcome).toBe('allow');
    expect(e.assess('carbon_record', trip('walking', '2', 60), NOW).outcome).toBe('refuse');
    expect(e.assess('carbon_record', trip('walking', '1', 60), NOW).outcome).toBe('allow');
    const over = e.assess('carbon_record', trip('walking', '1', 60), NOW);
    expect(over).toMatchObject({ outcome: 'refuse', isoResponseCode: '59' });
    expect(over.firedRules[0]!.inputs).toMatchObject({ amountBefore: '60000', maxAmount: '60000' });
    const tomorrow = trip('walking', '1', 60, {
      endAt: '2026-11-24T03:00:00.000Z',
      startAt: '2026-11-24T02:00:00.000Z',
    });
    expect(e.assess('carbon_record', tomorrow, NOW).outcome).toBe('allow');
    expect(e.assess('carbon_record', trip('metro', '99', 60), NOW).outcome).toBe('allow');
  });
});

describe('outcomes', () => {
  const review: RiskRule = { id: 'big', kind: 'transaction_limit', action: 'review', maxAmount: '100.00' };
  const refuse: RiskRule = { id: 'bigger', kind: 'transaction_limit', action: 'refuse', maxAmount: '200.00' };
  test('refuse beats hold; hold alone holds', () => {
    expect(engine([review, refuse]).assess('payment', pay('300.00'), NOW)).toMatchObject({
      outcome: 'refuse',
      primaryRuleId: 'bigger',
    });
    expect(engine([review, refuse]).assess('payment', pay('150.00'), NOW)).toMatchObject({
      outcome: 'hold',
      code: 'risk_review',
      primaryRuleId: 'big',
    });
  });
  test('a refused or held event moves no counter', () => {
    const e = engine([
      refuse,
      {
        id: 'vel',
        kind: 'velocity',
        action: 'refuse',
        appliesTo: 'payment',
        dimension: 'account',
        windowSeconds: 60,
        maxCount: 1,
      },
    ]);
    expect(e.assess('payment', pay('300.00'), NOW).outcome).toBe('refuse');
    expect(e.assess('payment', pay('1.00'), NOW).outcome).toBe('allow');
  });
  test.each([
    ['a dry-run rule', { rule: true, set: false, engine: false }],
    ['a dry-run set', { rule: false, set: true, engine: false }],
    ['a dry-run engine', { rule: false, set: false, engine: true }],
  ])('%s scores and records what it would have done, and allows', (_name, dry) => {
    const e = engine([{ ...refuse, dryRun: dry.rule }], { setDryRun: dry.set, dryRun: dry.engine });
    const result = e.assess('payment', pay('300.00'), NOW);
    expect(result).toMatchObject({ outcome: 'allow', wouldOutcome: 'refuse' });
    expect(result.firedRules).toEqual([expect.objectContaining({ ruleId: 'bigger', enforced: false })]);
    expect(result.code).toBeUndefined();
  });
  test('facts are checked: a float amount, a PAN-shaped card reference with spaces, a bad IP are refused', () => {
    const e = engine([refuse]);
    expect(() => e.assess('payment', { ...pay('1.00'), amount: 1 as unknown as string }, NOW)).toThrow(/amount/);
    expect(() => e.assess('payment', pay('1.00', { cardRef: '6222 0000' }), NOW)).toThrow(/cardRef/);
    expect(() => e.assess('payment', pay('1.00', { ip: '300.1.1.1' }), NOW)).toThrow(/ip/);
  });
});
