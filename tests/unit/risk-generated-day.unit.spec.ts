import type { RiskAssessment } from '../../services/risk';
import { compileRuleSet, InMemoryRiskEngine } from '../../services/risk';
import type { SimulatedEvent } from '../../services/risk/simulated-day';
import { DEFAULT_DAY, FRAUD_PATTERNS, PATTERN_RULES, simulateDay } from '../../services/risk/simulated-day';
import { STARTER_RULE_SET } from '../../services/risk/starter-rule-set';

/**
 * A generated day (fixed seed: 20,000 ordinary payments and carbon records, plus the injected fraud patterns of #14)
 * through the pure evaluator with the 20-rule starter set: each pattern caught, ordinary traffic refused < 0.1 %.
 */

let events: SimulatedEvent[];
let results: RiskAssessment[];

beforeAll(() => {
  events = simulateDay(DEFAULT_DAY);
  const engine = new InMemoryRiskEngine(compileRuleSet(STARTER_RULE_SET, 1));
  results = events.map((e) => engine.assess(e.kind, e.facts, e.at));
});

const of = (label: SimulatedEvent['label']): RiskAssessment[] => results.filter((_, i) => events[i]!.label === label);

test('the day is the size asked for, in time order', () => {
  expect(of('legit')).toHaveLength(DEFAULT_DAY.payments + DEFAULT_DAY.carbonRecords);
  expect(events.every((e, i) => i === 0 || events[i - 1]!.at.getTime() <= e.at.getTime())).toBe(true);
});

test('ordinary traffic: fewer than 0.1 % refused or held', () => {
  const legit = of('legit');
  const stopped = legit.filter((r) => r.outcome !== 'allow');
  expect(stopped.length / legit.length).toBeLessThan(0.001);
});

test.each(FRAUD_PATTERNS.map((p) => [p]))('%s is caught by its rule', (pattern) => {
  const caught = of(pattern).filter((r) => r.outcome !== 'allow');
  expect(caught.length).toBeGreaterThan(0);
  expect(new Set(caught.map((r) => r.primaryRuleId))).toEqual(new Set([PATTERN_RULES[pattern]]));
});

test('each pattern is stopped exactly where its threshold lies', () => {
  const stopped = (p: SimulatedEvent['label']): number => of(p).filter((r) => r.outcome !== 'allow').length;
  expect(stopped('velocity_burst')).toBe(30 - 10); // 10 payments per 10 minutes per account
  expect(stopped('card_testing')).toBe(25 - 5); // 5 payments of at most 5.00 per 10 minutes per card
  expect(stopped('blocked_device')).toBe(5);
  expect(stopped('blocked_ip')).toBe(5);
  expect(stopped('impossible_trip')).toBe(10); // 80 km/h by bike, 300 km/h by metro
  expect(stopped('steps_beyond_human')).toBe(2); // 45,000 then 90,000 and 135,000 against 80,000
  // 500 records a minute per partner, over two minutes: the rest waits for review.
  expect(of('partner_burst').filter((r) => r.outcome === 'hold')).toHaveLength(DEFAULT_DAY.partnerBurstRecords - 1000);
});

test('every refusal carries the stable code and the ISO 8583 response code of its rule', () => {
  const iso = new Map(
    results.filter((r) => r.outcome !== 'allow').map((r) => [r.primaryRuleId, `${r.code} ${r.isoResponseCode}`]),
  );
  expect(Object.fromEntries(iso)).toEqual({
    'velocity-account-10m': 'risk_refused 65',
    'card-testing': 'risk_refused 65',
    'block-device': 'risk_refused 57',
    'block-ip': 'risk_refused 57',
    'trip-speed': 'risk_refused 59',
    'steps-per-day': 'risk_refused 59',
    'partner-burst': 'risk_review 65',
  });
});
