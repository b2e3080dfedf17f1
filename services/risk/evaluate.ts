import { microsOf } from './counters';
import { Money } from '../../core-ledger';
import type { NormalizedFacts } from './facts';
import type { RiskReason } from './response-codes';
import type { CompiledRule, CompiledRuleSet, CompiledScope, Dimension, RiskAction, RiskKind, RuleKind } from './rules';
import { amountText, bucketSecondsFor } from './rules';

/**
 * The one place risk is decided, pure: rules that need only the event (limits per transaction, block lists, trip
 * speed) fire here; rules that need what came before (daily limits, velocity, daily quantities) become counter
 * checks, judged by {@link judgeCheck} against the totals a counter store observed under its lock. The SQL store
 * and the in-memory engine both judge with these functions, so they cannot disagree.
 */

export type RiskOutcome = 'allow' | 'refuse' | 'hold';

export interface FiredRule {
  readonly ruleId: string;
  readonly ruleIndex: number;
  readonly ruleKind: RuleKind;
  readonly action: RiskAction;
  /** False for a dry-run rule, set or engine: recorded, never acted on. */
  readonly enforced: boolean;
  readonly reason: RiskReason;
  readonly isoResponseCode: string;
  /** The inputs that fired it and the threshold they passed: enough to check the rule again by hand. */
  readonly inputs: Readonly<Record<string, string | number>>;
}

/** A rule that needs a counter: the window (buckets since..until) and the limits this event must stay within. */
export interface CounterCheck {
  readonly kind: RiskKind;
  readonly ruleId: string;
  readonly ruleIndex: number;
  readonly ruleKind: RuleKind;
  readonly action: RiskAction;
  readonly enforced: boolean;
  readonly reason: RiskReason;
  readonly isoResponseCode: string;
  readonly key: string;
  readonly since: number;
  readonly until: number;
  /** Null for a business-day counter. */
  readonly windowSeconds: number | null;
  readonly maxCount: number | null;
  readonly maxAmount: string | null;
  /**
   * The maximum in whole millionths, when it is a plain decimal small enough to add exactly (microsOf). The judge's
   * shortcut: set by the evaluator, left out of stored records (read back, a check is judged from its texts).
   */
  readonly maxAmountMicros?: number;
  /** This event's amount (CNY) or quantity. */
  readonly amount: string;
  /** The amount in whole millionths, when exact (microsOf); as `maxAmountMicros`. */
  readonly amountMicros?: number;
}

/** What an allowed event adds to a counter; released again if the payment fails. */
export interface CounterIncrement {
  readonly key: string;
  readonly bucket: number;
  readonly count: number;
  readonly amount: string;
  /** `amount` in whole millionths, when the evaluator knew it exact (microsOf); never stored. */
  readonly micros?: number;
}

/**
 * Increments as the decision log keeps them (cp_risk_decisions.counted): a line each,
 * `<bucket> <count> <amount> <shared> <rest of the key>`. The amount is `=` when it is the line before's, and a key
 * is written as how many of its leading characters it shares with the key before, then the rest: a payment's keys
 * repeat its kind and account. The key's rest comes last (it may hold spaces; no line break: dimension values and
 * scope labels exclude control characters). A third of the JSON's size, and text costs PostgreSQL nothing to take in.
 */
export function countedText(increments: readonly CounterIncrement[]): string {
  let text = '';
  let previous: CounterIncrement | undefined;
  for (const inc of increments) {
    if (inc.key.includes('\n')) throw new Error(`assertion: counter key ${JSON.stringify(inc.key)} holds a line break`);
    let shared = 0;
    if (previous !== undefined) {
      const limit = Math.min(previous.key.length, inc.key.length);
      while (shared < limit && previous.key.charCodeAt(shared) === inc.key.charCodeAt(shared)) shared += 1;
      // Never between the halves of a surrogate pair: the rest must stay well-formed text (UTF-8 in the database).
      const last = inc.key.charCodeAt(shared - 1);
      if (shared > 0 && last >= 0xd800 && last <= 0xdbff) shared -= 1;
    }
    const amount = previous !== undefined && previous.amount === inc.amount ? '=' : inc.amount;
    text += `${previous === undefined ? '' : '\n'}${inc.bucket} ${inc.count} ${amount} ${shared} ${inc.key.slice(shared)}`;
    previous = inc;
  }
  return text;
}

/** The increments of a decision-log row: `counted` text, or the JSON of rows written before it. */
export function incrementsOf(
  counted: string | null,
  reservations: readonly CounterIncrement[] | null,
): CounterIncrement[] {
  if (counted === null) return reservations === null ? [] : [...reservations];
  if (counted === '') return [];
  const increments: CounterIncrement[] = [];
  let previous: CounterIncrement | undefined;
  for (const line of counted.split('\n')) {
    const cut: number[] = [];
    for (let at = -1, n = 0; n < 4; n++) {
      at = line.indexOf(' ', at + 1);
      if (at < 0) throw new Error(`assertion: a counted line is <bucket> <count> <amount> <shared> <key>: ${line}`);
      cut.push(at);
    }
    const [a, b, c, d] = cut as [number, number, number, number];
    const amountText = line.slice(b + 1, c);
    const shared = Number(line.slice(c + 1, d));
    if (previous === undefined ? shared !== 0 || amountText === '=' : shared > previous.key.length)
      throw new Error(`assertion: a counted line refers to a key or an amount before it that is not there: ${line}`);
    const increment: CounterIncrement = {
      bucket: Number(line.slice(0, a)),
      count: Number(line.slice(a + 1, b)),
      amount: amountText === '=' ? previous!.amount : amountText,
      key: (previous?.key.slice(0, shared) ?? '') + line.slice(d + 1),
    };
    increments.push(increment);
    previous = increment;
  }
  return increments;
}

export interface Evaluation {
  /** Rules that fired on the event alone, in rule order. */
  readonly fired: readonly FiredRule[];
  readonly checks: readonly CounterCheck[];
  /** One per distinct counter bucket the checks read (rules of one dimension, scope and granularity share). */
  readonly increments: readonly CounterIncrement[];
}

/** Totals of a counter over a check's window, before this event. */
export interface Observed {
  readonly count: number;
  readonly amount: string;
  /** The amount in whole millionths, when the counters hold it exactly so (most do): judged without parsing. */
  readonly micros?: number;
}

export function evaluate(
  set: CompiledRuleSet,
  facts: NormalizedFacts,
  nowMs: number,
  engineDryRun: boolean,
): Evaluation {
  const fired: FiredRule[] = [];
  const checks: CounterCheck[] = [];
  const amount = amountText(facts.kind, facts.amount);
  const event: EventTexts = { amount, amountMicros: microsOf(amount), day: dayNumberOf(facts.businessDate) };
  for (const compiled of set.byKind[facts.kind]) {
    if (!scopeMatches(compiled.scope, facts, event)) continue;
    const enforced = compiled.enforced && !engineDryRun;
    const hit = staticHit(compiled, facts, event);
    if (hit) fired.push(firedOf(compiled, enforced, hit));
    const check = checkOf(compiled, facts, event, nowMs, enforced);
    if (check) checks.push(check);
  }
  const increments = new Map<string, CounterIncrement>();
  for (const c of checks)
    increments.set(`${c.key}#${c.until}`, {
      key: c.key,
      bucket: c.until,
      count: 1,
      amount: c.amount,
      micros: c.amountMicros,
    });
  return { fired, checks, increments: [...increments.values()] };
}

/** The rule fires when the counter's total before this event, plus this event, passes a maximum. At it, allowed. */
export function judgeCheck(check: CounterCheck, observed: Observed): FiredRule | undefined {
  const countAfter = observed.count + 1;
  const countOver = check.maxCount !== null && countAfter > check.maxCount;
  const amountOver = check.maxAmount !== null && amountPasses(observed, check);
  if (!countOver && !amountOver) return undefined;
  const inputs: Record<string, string | number> = {
    counterKey: check.key,
    window: check.windowSeconds === null ? 'business_day' : `${check.windowSeconds}s`,
    bucketsFrom: check.since,
    bucketsTo: check.until,
    countBefore: observed.count,
    amountBefore: amountText(check.kind, new Money(observed.amount)),
    amount: check.amount,
  };
  if (check.maxCount !== null) inputs['maxCount'] = check.maxCount;
  if (check.maxAmount !== null) inputs['maxAmount'] = check.maxAmount;
  return {
    ruleId: check.ruleId,
    ruleIndex: check.ruleIndex,
    ruleKind: check.ruleKind,
    action: check.action,
    enforced: check.enforced,
    reason: check.reason,
    isoResponseCode: check.isoResponseCode,
    inputs,
  };
}

/** Whether before + this > max: in whole millionths when all three are plain decimals, else exactly in decimal.js. */
function amountPasses(observed: Observed, check: CounterCheck): boolean {
  const before = observed.micros ?? microsOf(observed.amount);
  if (before !== undefined && check.amountMicros !== undefined && check.maxAmountMicros !== undefined)
    return before + check.amountMicros > check.maxAmountMicros;
  return new Money(observed.amount).plus(check.amount).gt(check.maxAmount!);
}

/** Refuse beats hold beats allow; the primary rule is the first (in rule order) with the winning action. */
export function outcomeOf(fired: readonly FiredRule[]): { outcome: RiskOutcome; primary?: FiredRule } {
  const ordered = [...fired].sort((a, b) => a.ruleIndex - b.ruleIndex);
  const refusing = ordered.find((f) => f.action === 'refuse');
  if (refusing) return { outcome: 'refuse', primary: refusing };
  const reviewing = ordered.find((f) => f.action === 'review');
  if (reviewing) return { outcome: 'hold', primary: reviewing };
  return { outcome: 'allow' };
}

export interface Settlement {
  readonly outcome: RiskOutcome;
  readonly wouldOutcome: RiskOutcome;
  readonly primary?: FiredRule;
  /** Every fired rule, static and counter, enforced or not, in rule order. */
  readonly fired: readonly FiredRule[];
  /** True when the increments are applied: the event is allowed (or dry-run) and counts from now on. */
  readonly reserve: boolean;
}

/**
 * The decision from the static firings and, when those allow, the counters' observed totals (one per check, in
 * order; `undefined` when the counters were not read because a static rule already refused).
 */
export function settle(evaluation: Evaluation, observed: readonly Observed[] | undefined): Settlement {
  const counterFired: FiredRule[] = [];
  if (observed) {
    if (observed.length !== evaluation.checks.length)
      throw new Error('assertion: one observed total per counter check');
    evaluation.checks.forEach((check, i) => {
      const fired = judgeCheck(check, observed[i]!);
      if (fired) counterFired.push(fired);
    });
  }
  const fired = [...evaluation.fired, ...counterFired].sort((a, b) => a.ruleIndex - b.ruleIndex);
  const enforced = outcomeOf(fired.filter((f) => f.enforced));
  const would = outcomeOf(fired);
  return {
    outcome: enforced.outcome,
    wouldOutcome: would.outcome,
    ...(enforced.primary ? { primary: enforced.primary } : {}),
    fired,
    reserve: enforced.outcome === 'allow',
  };
}

/** The outcome of the static rules alone: a refusal there is final, so no counter is read or moved. */
export function staticOutcome(evaluation: Evaluation): RiskOutcome {
  return outcomeOf(evaluation.fired.filter((f) => f.enforced)).outcome;
}

/** Whether the counters must be read: unless a static rule already refuses (nothing can beat a refusal). */
export function needsCounters(evaluation: Evaluation): boolean {
  return evaluation.checks.length > 0 && staticOutcome(evaluation) !== 'refuse';
}

function within(set: ReadonlySet<string> | undefined, value: string | undefined): boolean {
  return set === undefined || (value !== undefined && set.has(value));
}

function scopeMatches(scope: CompiledScope, facts: NormalizedFacts, event: EventTexts): boolean {
  return (
    within(scope.customerClasses, facts.customerClass) &&
    within(scope.walletPurposes, facts.walletPurpose) &&
    within(scope.merchantCategories, facts.merchantCategory) &&
    within(scope.channels, facts.channel) &&
    within(scope.behaviours, facts.behaviour) &&
    within(scope.partners, facts.partnerId) &&
    (scope.amountAtMost === undefined ||
      (event.amountMicros !== undefined && scope.amountAtMostMicros !== undefined
        ? event.amountMicros <= scope.amountAtMostMicros
        : facts.amount.lte(scope.amountAtMost)))
  );
}

function staticHit(
  compiled: CompiledRule,
  facts: NormalizedFacts,
  event: EventTexts,
): Record<string, string | number> | undefined {
  const rule = compiled.rule;
  switch (rule.kind) {
    case 'transaction_limit': {
      // Both texts are their amounts' exact values (amountText), so their millionths compare exactly.
      const maxMicros = compiled.maxAmountMicros?.[facts.kind];
      const over =
        event.amountMicros !== undefined && maxMicros !== undefined
          ? event.amountMicros > maxMicros
          : facts.amount.gt(compiled.maxAmount!);
      return over ? { amount: event.amount, maxAmount: rule.maxAmount } : undefined;
    }
    case 'block_list': {
      const value = facts.dimensions[rule.list];
      if (value === undefined) return undefined;
      const listed = compiled.ips ? compiled.ips.allows(value) : compiled.entries!.has(value);
      return listed ? { list: rule.list, value } : undefined;
    }
    case 'trip_speed':
      return tripSpeedHit(compiled, facts);
    default:
      return undefined;
  }
}

/** Distance over time above the behaviour's maximum: km × 3,600,000 > max km/h × duration ms (no division). */
function tripSpeedHit(compiled: CompiledRule, facts: NormalizedFacts): Record<string, string | number> | undefined {
  if (facts.unit !== 'km' || facts.behaviour === undefined) return undefined;
  const max = compiled.maxKmPerHour!.get(facts.behaviour);
  if (max === undefined) return undefined;
  const durationMs = facts.endMs! - facts.startMs!;
  if (!facts.amount.mul(3_600_000).gt(max.mul(durationMs))) return undefined;
  return {
    behaviour: facts.behaviour,
    distanceKm: facts.amount.toString(),
    durationMs,
    kmPerHour: durationMs === 0 ? 'infinite' : facts.amount.mul(3_600_000).div(durationMs).toFixed(3),
    maxKmPerHour: max.toString(),
  };
}

/** What every check of one event shares, worked out once: its amount as records show it, its business day. */
interface EventTexts {
  readonly amount: string;
  /** The amount exactly, in whole millionths, when microsOf can hold it (`amount` is the amount's exact value). */
  readonly amountMicros: number | undefined;
  readonly day: number;
}

function checkOf(
  compiled: CompiledRule,
  facts: NormalizedFacts,
  event: EventTexts,
  nowMs: number,
  enforced: boolean,
): CounterCheck | undefined {
  const rule = compiled.rule;
  let dimension: Dimension;
  let windowSeconds: number | null = null;
  let maxCount: number | null = null;
  switch (rule.kind) {
    case 'daily_limit':
      dimension = rule.per;
      maxCount = rule.maxCount ?? null;
      break;
    case 'velocity':
      dimension = rule.dimension;
      windowSeconds = rule.windowSeconds;
      maxCount = rule.maxCount ?? null;
      break;
    case 'daily_quantity':
      if (facts.behaviour !== rule.behaviour) return undefined;
      dimension = 'account';
      break;
    default:
      return undefined;
  }
  const value = facts.dimensions[dimension];
  if (value === undefined) return undefined;
  let granularity: string;
  let since: number;
  let until: number;
  if (windowSeconds === null) {
    granularity = 'd';
    until = event.day;
    since = until;
  } else {
    const bucketSeconds = bucketSecondsFor(windowSeconds);
    granularity = `m${bucketSeconds / 60}`;
    until = Math.floor(nowMs / 1000 / bucketSeconds);
    since = until - windowSeconds / bucketSeconds + 1;
  }
  return {
    kind: facts.kind,
    ruleId: rule.id,
    ruleIndex: compiled.index,
    ruleKind: rule.kind,
    action: rule.action,
    enforced,
    reason: compiled.reason,
    isoResponseCode: compiled.isoResponseCode,
    // Joined, not concatenated: one flat string, where a template leaves a tree of pieces that the counters, keeping
    // the key, would keep too (two-thirds more memory per key).
    key: [facts.kind, '|', dimension, ':', value, '|', compiled.scopeKey, '|', granularity].join(''),
    since,
    until,
    windowSeconds,
    maxCount,
    maxAmount: compiled.maxAmountText?.[facts.kind] ?? null,
    maxAmountMicros: compiled.maxAmountMicros?.[facts.kind],
    amount: event.amount,
    amountMicros: event.amountMicros,
  };
}

function firedOf(compiled: CompiledRule, enforced: boolean, inputs: Record<string, string | number>): FiredRule {
  return {
    ruleId: compiled.rule.id,
    ruleIndex: compiled.index,
    ruleKind: compiled.rule.kind,
    action: compiled.rule.action,
    enforced,
    reason: compiled.reason,
    isoResponseCode: compiled.isoResponseCode,
    inputs,
  };
}

let lastDate = '';
let lastDayNumber = 0;

/** Days since 1970-01-01 of a YYYY-MM-DD date: the bucket of a business-day counter. */
export function dayNumberOf(date: string): number {
  // Nearly every event of a day asks for the same date.
  if (date !== lastDate) {
    lastDayNumber = Date.parse(`${date}T00:00:00Z`) / 86_400_000;
    lastDate = date;
  }
  return lastDayNumber;
}

/** Which kinds a fact set may be: for a type guard at the service's door. */
export function isRiskKind(value: unknown): value is RiskKind {
  return value === 'payment' || value === 'carbon_record';
}
