import type { CarbonRecordFacts, PaymentFacts } from './facts';
import type { RiskKind } from './rules';

/**
 * A synthetic day of traffic for dry runs of a rule set, the benchmark and the tests: ordinary payments and carbon
 * records from a population of customers, merchants and partners, with the fraud patterns of #14 injected under
 * identities of their own. Deterministic for a seed. Amounts are built from integer fen, never from JS floats.
 */

export const FRAUD_PATTERNS = [
  'velocity_burst',
  'card_testing',
  'blocked_device',
  'blocked_ip',
  'impossible_trip',
  'steps_beyond_human',
  'partner_burst',
] as const;
export type FraudPattern = (typeof FRAUD_PATTERNS)[number];

export interface SimulatedEvent {
  readonly at: Date;
  readonly kind: RiskKind;
  readonly facts: PaymentFacts | CarbonRecordFacts;
  readonly label: 'legit' | FraudPattern;
}

export interface DayOptions {
  readonly seed: number;
  /** 00:00 of the day in Shanghai. */
  readonly dayStart: Date;
  readonly customers: number;
  readonly merchants: number;
  readonly payments: number;
  readonly carbonRecords: number;
  /** Records of the partner burst (all within two minutes). */
  readonly partnerBurstRecords: number;
}

export const DEFAULT_DAY: DayOptions = {
  seed: 20261123,
  dayStart: new Date('2026-11-22T16:00:00.000Z'),
  customers: 2_000,
  merchants: 200,
  payments: 14_000,
  carbonRecords: 6_000,
  partnerBurstRecords: 2_000,
};

const CATEGORIES = ['food', 'grocery', 'transport', 'clothing', 'electronics', 'jewellery', 'services'] as const;
const PARTNERS = ['P-metro', 'P-bike', 'P-bus', 'P-health', 'P-city'] as const;
const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

/** mulberry32: a small, fast, seeded generator (the tests need the same day every run). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Integer fen as a CNY decimal string. */
export function fenText(fen: number): string {
  if (!Number.isSafeInteger(fen) || fen < 0) throw new RangeError('fen: a non-negative safe integer');
  return `${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, '0')}`;
}

/** Integer hundredths of a km as a decimal string. */
function hundredthsText(n: number): string {
  return `${Math.floor(n / 100)}.${String(n % 100).padStart(2, '0')}`;
}

export function simulateDay(options: DayOptions = DEFAULT_DAY): SimulatedEvent[] {
  const rng = seededRandom(options.seed);
  const int = (min: number, max: number): number => min + Math.floor(rng() * (max - min + 1));
  const pick = <T>(values: readonly T[]): T => values[Math.floor(rng() * values.length)]!;
  const day0 = options.dayStart.getTime();
  const events: { event: SimulatedEvent; order: number }[] = [];
  const push = (event: SimulatedEvent): void => {
    events.push({ event, order: events.length });
  };

  const customers = Array.from({ length: options.customers }, (_, i) => ({
    accountId: `W${i}`,
    cardRef: `card-${i}`,
    deviceId: `dev-${i}`,
    ip: `10.${(i >> 8) & 255}.${i & 255}.${1 + (i % 200)}`,
    customerClass: rng() < 0.1 ? '1' : '2',
    walletPurpose: rng() < 0.05 ? 'earmarked' : 'general',
  }));
  const merchants = Array.from({ length: options.merchants }, (_, i) => ({
    merchantId: `M${i}`,
    category: CATEGORIES[i % CATEGORIES.length]!,
    terminals: [`T${i}-1`, `T${i}-2`],
  }));

  const payment = (
    label: SimulatedEvent['label'],
    at: number,
    who: (typeof customers)[number],
    fen: number,
    channel: 'pos' | 'api',
    overrides: Partial<PaymentFacts> = {},
  ): void => {
    const merchant = pick(merchants);
    push({
      at: new Date(at),
      kind: 'payment',
      label,
      facts: {
        subjectRef: `payment:sim-${events.length}`,
        amount: fenText(fen),
        accountId: who.accountId,
        customerClass: who.customerClass,
        walletPurpose: who.walletPurpose,
        merchantId: merchant.merchantId,
        merchantCategory: merchant.category,
        channel,
        cardRef: who.cardRef,
        ...(channel === 'pos' ? { terminalId: pick(merchant.terminals) } : { deviceId: who.deviceId, ip: who.ip }),
        ...overrides,
      },
    });
  };

  // ---- ordinary payments: mostly small, some up to a few hundred yuan, a few larger ----
  for (let i = 0; i < options.payments; i++) {
    const who = pick(customers);
    const r = rng();
    let fen = r < 0.7 ? int(100, 10_000) : r < 0.95 ? int(10_000, 80_000) : int(80_000, 180_000);
    if (who.walletPurpose === 'earmarked') fen = Math.min(fen, 90_000);
    payment('legit', day0 + Math.floor(rng() * DAY_MS), who, fen, rng() < 0.6 ? 'pos' : 'api');
  }

  // ---- ordinary carbon records ----
  const record = (
    label: SimulatedEvent['label'],
    at: number,
    partnerId: string,
    accountId: string,
    behaviour: string,
    quantity: string,
    unit: string,
    durationMs: number,
  ): void => {
    const endMs = at - int(0, 30) * MINUTE_MS;
    push({
      at: new Date(at),
      kind: 'carbon_record',
      label,
      facts: {
        subjectRef: `carbon:${partnerId}:sim-${events.length}`,
        partnerId,
        accountId,
        behaviour,
        quantity,
        unit,
        startAt: new Date(endMs - durationMs).toISOString(),
        endAt: new Date(endMs).toISOString(),
      },
    });
  };
  const trip = (kmMin: number, kmMax: number, speedMin: number, speedMax: number): [string, number] => {
    const hundredths = int(kmMin * 100, kmMax * 100);
    const kmPerHour = speedMin + rng() * (speedMax - speedMin);
    // Duration from the distance and a plausible speed; rounding up keeps the speed at or below it.
    return [hundredthsText(hundredths), Math.ceil((hundredths / 100 / kmPerHour) * 3_600_000)];
  };
  for (let i = 0; i < options.carbonRecords; i++) {
    const who = pick(customers);
    const at = day0 + 60 * MINUTE_MS + Math.floor(rng() * (DAY_MS - 60 * MINUTE_MS));
    const partner = pick(PARTNERS);
    const r = rng();
    if (r < 0.4) record('legit', at, partner, who.accountId, 'walking', String(int(1_000, 20_000)), 'step', 3_600_000);
    else if (r < 0.65) record('legit', at, partner, who.accountId, 'shared_bike', ...bike());
    else if (r < 0.85) record('legit', at, partner, who.accountId, 'metro', ...metro());
    else record('legit', at, partner, who.accountId, 'bus', '1', 'ride', int(10, 50) * MINUTE_MS);
  }
  function bike(): [string, string, number] {
    const [km, ms] = trip(0.5, 8, 8, 20);
    return [km, 'km', ms];
  }
  function metro(): [string, string, number] {
    const [km, ms] = trip(2, 30, 25, 45);
    return [km, 'km', ms];
  }

  // ---- injected fraud, under identities of its own ----
  const fraudster = (name: string): (typeof customers)[number] => ({
    accountId: `W-${name}`,
    cardRef: `card-${name}`,
    deviceId: `dev-${name}`,
    ip: '10.250.0.1',
    customerClass: '2',
    walletPurpose: 'general',
  });
  const tenAm = day0 + 10 * 60 * MINUTE_MS;
  // A velocity burst: 30 payments in five minutes from one account.
  const burst = fraudster('burst');
  for (let i = 0; i < 30; i++) payment('velocity_burst', tenAm + i * 10_000, burst, int(5_000, 30_000), 'pos');
  // Card testing: 25 payments of at most one yuan on one card within eight minutes, at many terminals.
  const tester = fraudster('card-test');
  for (let i = 0; i < 25; i++) payment('card_testing', tenAm + 3_600_000 + i * 19_000, tester, int(1, 100), 'pos');
  // A blocked device and a blocked address range.
  const shady = fraudster('shady');
  for (let i = 0; i < 5; i++)
    payment('blocked_device', tenAm + 7_200_000 + i * 600_000, shady, int(1_000, 50_000), 'api', {
      deviceId: 'device-blocked-0001',
    });
  for (let i = 0; i < 5; i++)
    payment('blocked_ip', tenAm + 9_000_000 + i * 600_000, fraudster(`ip-${i}`), int(1_000, 50_000), 'api', {
      ip: `192.0.2.${int(0, 255)}`,
    });
  // Impossible trips: 40 km by shared bike in 30 minutes, 100 km by metro in 20.
  for (let i = 0; i < 5; i++) {
    const at = tenAm + i * 1_800_000;
    record('impossible_trip', at, 'P-bike', `W-trip-${i}`, 'shared_bike', '40.00', 'km', 30 * MINUTE_MS);
    record('impossible_trip', at + 60_000, 'P-metro', `W-trip-${i}`, 'metro', '100.00', 'km', 20 * MINUTE_MS);
  }
  // Steps beyond human limits: 45,000 steps three times in one day for one account.
  for (let i = 0; i < 3; i++)
    record('steps_beyond_human', tenAm + i * 3_600_000, 'P-health', 'W-steps', 'walking', '45000', 'step', 3_600_000);
  // A partner burst: thousands of records in two minutes.
  for (let i = 0; i < options.partnerBurstRecords; i++) {
    const at = day0 + 15 * 60 * MINUTE_MS + Math.floor((i * 120_000) / options.partnerBurstRecords);
    record('partner_burst', at, 'P-burst', `W-pb-${i % 300}`, 'walking', String(int(1_000, 5_000)), 'step', 3_600_000);
  }

  return events.sort((a, b) => a.event.at.getTime() - b.event.at.getTime() || a.order - b.order).map((e) => e.event);
}

/** The rule each pattern must be caught by in the starter rule set (at least once; see the tests for counts). */
export const PATTERN_RULES: Readonly<Record<FraudPattern, string>> = {
  velocity_burst: 'velocity-account-10m',
  card_testing: 'card-testing',
  blocked_device: 'block-device',
  blocked_ip: 'block-ip',
  impossible_trip: 'trip-speed',
  steps_beyond_human: 'steps-per-day',
  partner_burst: 'partner-burst',
};
