import type { Amount } from '../../core-ledger';
import { BEHAVIOUR_TYPES, digestOf, formatAmount, METHODOLOGIES, Money, parseAmount } from '../../core-ledger';
import { IpAllowList } from '../../security';
import { microsOf } from './counters';
import type { RiskReason } from './response-codes';
import { RISK_RESPONSE_CODES } from './response-codes';

/**
 * Risk rules as data (#14): a rule set is a JSON document, published as a numbered version and validated on load.
 * Nothing here decides; `evaluate.ts` reads the compiled set. Amounts and quantities are decimal strings, never JS
 * numbers; counts and windows are integers.
 */

export const RISK_KINDS = ['payment', 'carbon_record'] as const;
export type RiskKind = (typeof RISK_KINDS)[number];

export const RISK_ACTIONS = ['refuse', 'review'] as const;
/** What a fired rule asks for: refuse now, or hold for an operator's review. */
export type RiskAction = (typeof RISK_ACTIONS)[number];

export const DIMENSIONS = ['account', 'card', 'terminal', 'device', 'ip', 'merchant', 'partner'] as const;
/** What a counter or a block list is keyed by: the fact of that name (`card` is a card reference, never a PAN). */
export type Dimension = (typeof DIMENSIONS)[number];

export const RULE_KINDS = [
  'transaction_limit',
  'daily_limit',
  'velocity',
  'block_list',
  'trip_speed',
  'daily_quantity',
] as const;
export type RuleKind = (typeof RULE_KINDS)[number];

/** Bounds of a rule set; a document beyond them is refused on load. */
export const RULE_SET_LIMITS = {
  maxRules: 200,
  maxIdLength: 64,
  maxDescriptionLength: 500,
  maxScopeValues: 100,
  maxBlockListEntries: 100_000,
  /** Sliding windows are whole minutes, at most a day (counters older than a day are pruned). */
  minWindowSeconds: 60,
  maxWindowSeconds: 86_400,
  maxCount: 1_000_000,
} as const;

/** Which events a rule looks at; every field given must match (values within a field: any of them). */
export interface RuleScope {
  readonly customerClasses?: readonly string[];
  readonly walletPurposes?: readonly string[];
  readonly merchantCategories?: readonly string[];
  readonly channels?: readonly string[];
  readonly behaviours?: readonly string[];
  readonly partners?: readonly string[];
  /** Only events of at most this amount (CNY; for carbon records the quantity): card testing is many small ones. */
  readonly amountAtMost?: string;
}

interface RuleCommon {
  readonly id: string;
  readonly description?: string;
  readonly action: RiskAction;
  /** Scores and records, never acts (a new rule watched before it is enforced). */
  readonly dryRun?: boolean;
  /** Field 39 to answer instead of the table's (`response-codes.ts`). */
  readonly isoResponseCode?: string;
  readonly scope?: RuleScope;
}

/** A payment above `maxAmount` CNY fires. */
export interface TransactionLimitRule extends RuleCommon {
  readonly kind: 'transaction_limit';
  readonly maxAmount: string;
}

/** Per account (or card) and business date: the day's allowed payments in scope, with this one, above a maximum. */
export interface DailyLimitRule extends RuleCommon {
  readonly kind: 'daily_limit';
  readonly per: 'account' | 'card';
  readonly maxAmount?: string;
  readonly maxCount?: number;
}

/** Count and amount of allowed events per dimension value in a sliding window (this one included) above a maximum. */
export interface VelocityRule extends RuleCommon {
  readonly kind: 'velocity';
  readonly appliesTo: RiskKind;
  readonly dimension: Dimension;
  readonly windowSeconds: number;
  readonly maxCount?: number;
  readonly maxAmount?: string;
}

/** The event's account, card, terminal, device, merchant or partner is listed, or its IP lies in a listed range. */
export interface BlockListRule extends RuleCommon {
  readonly kind: 'block_list';
  readonly appliesTo?: readonly RiskKind[];
  readonly list: Dimension;
  readonly entries: readonly string[];
}

/** A trip whose distance over its duration is above the behaviour's maximum speed (km/h). */
export interface TripSpeedRule extends RuleCommon {
  readonly kind: 'trip_speed';
  readonly maxKmPerHour: Readonly<Record<string, string>>;
}

/** Per account and behaviour date: the quantity of one behaviour (e.g. steps) above what a person can do in a day. */
export interface DailyQuantityRule extends RuleCommon {
  readonly kind: 'daily_quantity';
  readonly behaviour: string;
  readonly maxQuantity: string;
}

export type RiskRule =
  TransactionLimitRule | DailyLimitRule | VelocityRule | BlockListRule | TripSpeedRule | DailyQuantityRule;

export interface RuleSet {
  readonly schema: 1;
  readonly name: string;
  /** The whole set scores and records, never acts. */
  readonly dryRun?: boolean;
  readonly rules: readonly RiskRule[];
}

/** A rule with what evaluation needs precomputed (parsed amounts, sets, CIDR lists). */
export interface CompiledRule {
  readonly rule: RiskRule;
  readonly index: number;
  /** False when the rule or its set is dry-run; the engine's own dry-run is applied at evaluation. */
  readonly enforced: boolean;
  readonly reason: RiskReason;
  readonly isoResponseCode: string;
  /**
   * Canonical text of the scope, the part of the rule's counter key: rules of the same dimension, scope and granularity
   * share a counter (a daily quantity's scope includes its behaviour).
   */
  readonly scopeKey: string;
  readonly scope: CompiledScope;
  readonly maxAmount?: Amount;
  /** `maxAmount` as decision records show it, per kind of event. */
  readonly maxAmountText?: Readonly<Record<RiskKind, string>>;
  /** The same in whole millionths, where exact (microsOf): judged without parsing. */
  readonly maxAmountMicros?: Readonly<Record<RiskKind, number | undefined>>;
  readonly entries?: ReadonlySet<string>;
  readonly ips?: IpAllowList;
  readonly maxKmPerHour?: ReadonlyMap<string, Amount>;
}

export interface CompiledScope {
  readonly customerClasses?: ReadonlySet<string>;
  readonly walletPurposes?: ReadonlySet<string>;
  readonly merchantCategories?: ReadonlySet<string>;
  readonly channels?: ReadonlySet<string>;
  readonly behaviours?: ReadonlySet<string>;
  readonly partners?: ReadonlySet<string>;
  readonly amountAtMost?: Amount;
  /** `amountAtMost` in whole millionths, where exact (a validated quantity: plain digits, at most 6 decimals). */
  readonly amountAtMostMicros?: number;
}

export interface CompiledRuleSet {
  /** The published version; 0 is the empty set in force before anything is published. */
  readonly version: number;
  readonly name: string;
  readonly dryRun: boolean;
  readonly digest: string;
  readonly ruleSet: RuleSet;
  readonly byKind: Readonly<Record<RiskKind, readonly CompiledRule[]>>;
}

export const EMPTY_RULE_SET: RuleSet = { schema: 1, name: 'none', rules: [] };

export type RuleSetValidation = { ok: true; ruleSet: RuleSet } | { ok: false; errors: string[] };

/** Validates a rule-set document (from JSON): every problem is listed, with the path of the field. */
export function validateRuleSet(input: unknown): RuleSetValidation {
  const errors: string[] = [];
  const v = new Checker(errors);
  if (!isObject(input)) return { ok: false, errors: ['rule set: must be an object'] };
  v.only(input, 'rule set', ['schema', 'name', 'dryRun', 'rules']);
  if (input['schema'] !== 1) errors.push('schema: must be 1');
  v.text(input['name'], 'name', 1, 100);
  v.optionalBoolean(input['dryRun'], 'dryRun');
  const rules = input['rules'];
  if (!Array.isArray(rules) || rules.length > RULE_SET_LIMITS.maxRules)
    errors.push(`rules: must be an array of at most ${RULE_SET_LIMITS.maxRules} rules`);
  else {
    const ids = new Set<string>();
    rules.forEach((rule: unknown, i) => {
      checkRule(rule, `rules[${i}]`, v);
      const id = isObject(rule) ? rule['id'] : undefined;
      if (typeof id === 'string') {
        if (ids.has(id)) errors.push(`rules[${i}].id: ${JSON.stringify(id)} is used twice`);
        ids.add(id);
      }
    });
  }
  return errors.length === 0 ? { ok: true, ruleSet: input as unknown as RuleSet } : { ok: false, errors };
}

/** Compiles a valid rule set for evaluation; an invalid one is a bug of the caller (validate first). */
export function compileRuleSet(ruleSet: RuleSet, version: number): CompiledRuleSet {
  const checked = validateRuleSet(ruleSet);
  if (!checked.ok) throw new Error(`assertion: compiling an invalid rule set: ${checked.errors.join('; ')}`);
  const byKind: Record<RiskKind, CompiledRule[]> = { payment: [], carbon_record: [] };
  ruleSet.rules.forEach((rule, index) => {
    const compiled = compileRule(rule, index, ruleSet.dryRun === true);
    for (const kind of kindsOf(rule)) byKind[kind].push(compiled);
  });
  return {
    version,
    name: ruleSet.name,
    dryRun: ruleSet.dryRun === true,
    digest: digestOf(ruleSet),
    ruleSet,
    byKind,
  };
}

/** The kinds of event a rule reads. */
export function kindsOf(rule: RiskRule): readonly RiskKind[] {
  switch (rule.kind) {
    case 'transaction_limit':
    case 'daily_limit':
      return ['payment'];
    case 'trip_speed':
    case 'daily_quantity':
      return ['carbon_record'];
    case 'velocity':
      return [rule.appliesTo];
    case 'block_list':
      return rule.appliesTo ?? RISK_KINDS;
  }
}

export function reasonOf(rule: RiskRule): RiskReason {
  switch (rule.kind) {
    case 'transaction_limit':
    case 'daily_limit':
      return 'amount_limit';
    case 'velocity':
      return 'velocity';
    case 'trip_speed':
    case 'daily_quantity':
      return 'implausible_data';
    case 'block_list':
      return rule.list === 'card'
        ? 'blocked_card'
        : rule.list === 'account'
          ? 'blocked_account'
          : rule.list === 'terminal'
            ? 'blocked_terminal'
            : 'blocked_other';
  }
}

function compileRule(rule: RiskRule, index: number, setDryRun: boolean): CompiledRule {
  const reason = reasonOf(rule);
  const base = {
    rule,
    index,
    enforced: !(setDryRun || rule.dryRun === true),
    reason,
    isoResponseCode: rule.isoResponseCode ?? RISK_RESPONSE_CODES[reason].isoResponseCode,
    scopeKey:
      rule.kind === 'daily_quantity'
        ? scopeKeyOf({ ...rule.scope, behaviours: [rule.behaviour] })
        : scopeKeyOf(rule.scope),
    scope: compileScope(rule.scope),
  };
  const withMax = (text: string): CompiledRule => {
    const maxAmount = new Money(text);
    const payment = amountText('payment', maxAmount);
    const carbonRecord = amountText('carbon_record', maxAmount);
    return {
      ...base,
      maxAmount,
      maxAmountText: { payment, carbon_record: carbonRecord },
      maxAmountMicros: { payment: microsOf(payment), carbon_record: microsOf(carbonRecord) },
    };
  };
  switch (rule.kind) {
    case 'transaction_limit':
      return withMax(rule.maxAmount);
    case 'daily_limit':
    case 'velocity':
      return rule.maxAmount === undefined ? base : withMax(rule.maxAmount);
    case 'daily_quantity':
      return withMax(rule.maxQuantity);
    case 'trip_speed':
      return {
        ...base,
        maxKmPerHour: new Map(Object.entries(rule.maxKmPerHour).map(([b, s]) => [b, new Money(s)])),
      };
    case 'block_list':
      return rule.list === 'ip'
        ? { ...base, ips: IpAllowList.from(rule.entries) }
        : { ...base, entries: new Set(rule.entries) };
  }
}

function compileScope(scope: RuleScope | undefined): CompiledScope {
  if (!scope) return {};
  const set = (values: readonly string[] | undefined): ReadonlySet<string> | undefined =>
    values === undefined ? undefined : new Set(values);
  return {
    customerClasses: set(scope.customerClasses),
    walletPurposes: set(scope.walletPurposes),
    merchantCategories: set(scope.merchantCategories),
    channels: set(scope.channels),
    behaviours: set(scope.behaviours),
    partners: set(scope.partners),
    amountAtMost: scope.amountAtMost === undefined ? undefined : new Money(scope.amountAtMost),
    amountAtMostMicros: scope.amountAtMost === undefined ? undefined : microsOf(scope.amountAtMost),
  };
}

/** Canonical scope text, values sorted: `*` for no scope. */
export function scopeKeyOf(scope: RuleScope | undefined): string {
  if (!scope) return '*';
  const parts: string[] = [];
  for (const field of SCOPE_LIST_FIELDS) {
    const values = scope[field];
    if (values !== undefined) parts.push(`${field}=${[...values].sort().join(',')}`);
  }
  if (scope.amountAtMost !== undefined) parts.push(`amountAtMost=${new Money(scope.amountAtMost).toString()}`);
  return parts.length === 0 ? '*' : parts.join(';');
}

const SCOPE_LIST_FIELDS = [
  'customerClasses',
  'walletPurposes',
  'merchantCategories',
  'channels',
  'behaviours',
  'partners',
] as const;

const KM_BEHAVIOURS: ReadonlySet<string> = new Set(
  METHODOLOGIES.filter((m) => m.unit === 'km' && m.isTrip).map((m) => m.behaviour),
);
const BEHAVIOURS: ReadonlySet<string> = new Set(BEHAVIOUR_TYPES);
const IDENTIFIER = /^[A-Za-z0-9._:@|+-]{1,128}$/;
const QUANTITY = /^\d{1,15}(\.\d{1,6})?$/;
const ISO_CODE = /^[0-9A-Z]{2}$/;

function checkRule(rule: unknown, at: string, v: Checker): void {
  if (!isObject(rule)) {
    v.errors.push(`${at}: must be an object`);
    return;
  }
  const common = ['id', 'description', 'action', 'dryRun', 'isoResponseCode', 'scope', 'kind'];
  const id = rule['id'];
  if (typeof id !== 'string' || !/^[a-z0-9][a-z0-9_.-]*$/.test(id) || id.length > RULE_SET_LIMITS.maxIdLength)
    v.errors.push(`${at}.id: lower-case letters, digits, '_', '.', '-', at most ${RULE_SET_LIMITS.maxIdLength}`);
  if (rule['description'] !== undefined) v.text(rule['description'], `${at}.description`, 1, 500);
  v.oneOf(rule['action'], `${at}.action`, RISK_ACTIONS);
  v.optionalBoolean(rule['dryRun'], `${at}.dryRun`);
  if (
    rule['isoResponseCode'] !== undefined &&
    !(typeof rule['isoResponseCode'] === 'string' && ISO_CODE.test(rule['isoResponseCode']))
  )
    v.errors.push(`${at}.isoResponseCode: two digits or capital letters`);
  if (rule['scope'] !== undefined) checkScope(rule['scope'], `${at}.scope`, v);
  switch (rule['kind']) {
    case 'transaction_limit':
      v.only(rule, at, [...common, 'maxAmount']);
      v.cny(rule['maxAmount'], `${at}.maxAmount`);
      break;
    case 'daily_limit':
      v.only(rule, at, [...common, 'per', 'maxAmount', 'maxCount']);
      v.oneOf(rule['per'], `${at}.per`, ['account', 'card']);
      v.limits(rule, at, 'payment');
      break;
    case 'velocity': {
      v.only(rule, at, [...common, 'appliesTo', 'dimension', 'windowSeconds', 'maxCount', 'maxAmount']);
      v.oneOf(rule['appliesTo'], `${at}.appliesTo`, RISK_KINDS);
      v.oneOf(rule['dimension'], `${at}.dimension`, DIMENSIONS);
      const w = rule['windowSeconds'];
      if (
        typeof w !== 'number' ||
        !Number.isInteger(w) ||
        w < RULE_SET_LIMITS.minWindowSeconds ||
        w > RULE_SET_LIMITS.maxWindowSeconds ||
        w % bucketSecondsFor(w) !== 0
      )
        v.errors.push(`${at}.windowSeconds: whole minutes from 60 to 86400; above an hour, whole quarters of an hour`);
      v.limits(rule, at, rule['appliesTo'] === 'carbon_record' ? 'quantity' : 'payment');
      break;
    }
    case 'block_list': {
      v.only(rule, at, [...common, 'appliesTo', 'list', 'entries']);
      if (rule['appliesTo'] !== undefined) {
        const kinds = rule['appliesTo'];
        if (!Array.isArray(kinds) || kinds.length === 0 || kinds.some((k) => !RISK_KINDS.includes(k as RiskKind)))
          v.errors.push(`${at}.appliesTo: a non-empty list of ${RISK_KINDS.join(', ')}`);
      }
      v.oneOf(rule['list'], `${at}.list`, DIMENSIONS);
      const entries = rule['entries'];
      if (!Array.isArray(entries) || entries.length === 0 || entries.length > RULE_SET_LIMITS.maxBlockListEntries)
        v.errors.push(`${at}.entries: 1..${RULE_SET_LIMITS.maxBlockListEntries} entries`);
      else if (rule['list'] === 'ip') {
        try {
          IpAllowList.from(entries.map(String));
          if (entries.some((e) => typeof e !== 'string')) throw new RangeError('entries are strings');
        } catch (error) {
          v.errors.push(`${at}.entries: ${(error as Error).message}`);
        }
      } else {
        const bad = entries.findIndex((e) => typeof e !== 'string' || !IDENTIFIER.test(e));
        if (bad >= 0) v.errors.push(`${at}.entries[${bad}]: 1..128 letters, digits or . _ : @ | + -`);
      }
      break;
    }
    case 'trip_speed': {
      v.only(rule, at, [...common, 'maxKmPerHour']);
      const speeds = rule['maxKmPerHour'];
      if (!isObject(speeds) || Object.keys(speeds).length === 0)
        v.errors.push(`${at}.maxKmPerHour: an object of behaviour → km/h`);
      else
        for (const [behaviour, speed] of Object.entries(speeds)) {
          if (!KM_BEHAVIOURS.has(behaviour))
            v.errors.push(`${at}.maxKmPerHour.${behaviour}: not a trip behaviour measured in km`);
          v.quantity(speed, `${at}.maxKmPerHour.${behaviour}`);
        }
      break;
    }
    case 'daily_quantity':
      v.only(rule, at, [...common, 'behaviour', 'maxQuantity']);
      if (typeof rule['behaviour'] !== 'string' || !BEHAVIOURS.has(rule['behaviour']))
        v.errors.push(`${at}.behaviour: one of ${BEHAVIOUR_TYPES.join(', ')}`);
      v.quantity(rule['maxQuantity'], `${at}.maxQuantity`);
      break;
    default:
      v.errors.push(`${at}.kind: one of ${RULE_KINDS.join(', ')}`);
  }
}

function checkScope(scope: unknown, at: string, v: Checker): void {
  if (!isObject(scope)) {
    v.errors.push(`${at}: must be an object`);
    return;
  }
  v.only(scope, at, [...SCOPE_LIST_FIELDS, 'amountAtMost']);
  for (const field of SCOPE_LIST_FIELDS) {
    const values = scope[field];
    if (values === undefined) continue;
    if (
      !Array.isArray(values) ||
      values.length === 0 ||
      values.length > RULE_SET_LIMITS.maxScopeValues ||
      values.some((x) => typeof x !== 'string' || x.length === 0 || x.length > 64)
    )
      v.errors.push(`${at}.${field}: 1..${RULE_SET_LIMITS.maxScopeValues} strings of 1..64 characters`);
  }
  if (scope['amountAtMost'] !== undefined) v.quantity(scope['amountAtMost'], `${at}.amountAtMost`);
}

/** Counter granularity of a sliding window: minutes up to an hour, quarters of an hour beyond. */
export function bucketSecondsFor(windowSeconds: number): number {
  return windowSeconds <= 3_600 ? 60 : 900;
}

class Checker {
  constructor(readonly errors: string[]) {}

  only(object: Record<string, unknown>, at: string, allowed: readonly string[]): void {
    for (const key of Object.keys(object))
      if (!allowed.includes(key)) this.errors.push(`${at}.${key}: not a field of this rule kind`);
  }

  text(value: unknown, at: string, min: number, max: number): void {
    if (typeof value !== 'string' || value.length < min || value.length > max)
      this.errors.push(`${at}: a string of ${min}..${max} characters`);
  }

  optionalBoolean(value: unknown, at: string): void {
    if (value !== undefined && typeof value !== 'boolean') this.errors.push(`${at}: true or false`);
  }

  oneOf(value: unknown, at: string, allowed: readonly string[]): void {
    if (typeof value !== 'string' || !allowed.includes(value)) this.errors.push(`${at}: one of ${allowed.join(', ')}`);
  }

  cny(value: unknown, at: string): void {
    const parsed = parseAmount('CNY', value, { positive: true });
    if (!parsed.ok) this.errors.push(`${at}: a positive CNY decimal string (${parsed.error.kind.replace(/_/g, ' ')})`);
  }

  quantity(value: unknown, at: string): void {
    if (typeof value !== 'string' || !QUANTITY.test(value) || !new Money(value).gt(0))
      this.errors.push(`${at}: a positive decimal string (at most 15 digits, 6 decimals)`);
  }

  count(value: unknown, at: string): void {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > RULE_SET_LIMITS.maxCount)
      this.errors.push(`${at}: an integer 0..${RULE_SET_LIMITS.maxCount}`);
  }

  limits(rule: Record<string, unknown>, at: string, amounts: 'payment' | 'quantity'): void {
    if (rule['maxAmount'] === undefined && rule['maxCount'] === undefined)
      this.errors.push(`${at}: needs maxAmount, maxCount or both`);
    if (rule['maxAmount'] !== undefined) {
      if (amounts === 'payment') this.cny(rule['maxAmount'], `${at}.maxAmount`);
      else this.quantity(rule['maxAmount'], `${at}.maxAmount`);
    }
    if (rule['maxCount'] !== undefined) this.count(rule['maxCount'], `${at}.maxCount`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Amounts in explanations: CNY at its scale (fen), quantities as they are. */
export function amountText(kind: RiskKind, amount: Amount): string {
  return kind === 'payment' ? formatAmount('CNY', amount) : amount.toString();
}
