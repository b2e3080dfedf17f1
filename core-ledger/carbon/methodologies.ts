import { businessDateOf } from '../business-date';

/**
 * Carbon-inclusive (碳普惠) methodologies as versioned data: which behaviour earns how many grams of CO2e per unit of
 * activity, from when to when, and on whose authority. The arithmetic is in `reduction.ts`; this file has no logic
 * beyond looking a version up and checking the table's invariants.
 *
 * Sources and their reliability tags ([S] secondary, [N] news, [U] unverified, [D] derived) are those of
 * `../shared/research/carbon.md` §1–2. DB36/T 1476—2021 (the Jiangxi standard the platform follows) was not found in
 * public sources, so every factor below is adopted from another Chinese scheme or, where none exists, is a
 * platform-defined assumption that says so. `docs/carbon.md` has the same table for readers.
 *
 * Rule for which version of a behaviour is in force (one lineage per behaviour, so versions never overlap): from the
 * date a factor was published, the newest published factor from a Chinese government carbon-inclusive scheme, in the
 * unit the issue names for that behaviour. A change of rule is a data edit here, reviewed like code.
 */

export type BehaviourClass = 'green_travel' | 'green_consumption' | 'green_living' | 'green_public_welfare';

export const BEHAVIOUR_CLASSES: readonly BehaviourClass[] = [
  'green_travel',
  'green_consumption',
  'green_living',
  'green_public_welfare',
];

export const BEHAVIOUR_TYPES = [
  'walking',
  'shared_bike',
  'bus',
  'metro',
  'nev_driving',
  'paperless_bill',
  'e_ticket',
  'own_bag',
  'recycling',
  'tree_planting',
] as const;

export type BehaviourType = (typeof BEHAVIOUR_TYPES)[number];

export type QuantityUnit = 'step' | 'km' | 'ride' | 'bill' | 'ticket' | 'action' | 'kg' | 'tree';

/** Units that count whole things: a quantity in one of them must be an integer (half a ride is not evidence). */
export const COUNT_UNITS: readonly QuantityUnit[] = ['step', 'ride', 'bill', 'ticket', 'action', 'tree'];

/**
 * How a quantity becomes grams of CO2e (before rounding down to the whole gram):
 * - `factor_difference`: (baseline − project) × quantity, where the source gives both emission factors per unit;
 * - `fixed_per_action`: a published net reduction per unit of quantity × quantity — per ride, bill, ticket, action or
 *   tree, and also per step or km where the source publishes only the net reduction and not its two factors (we do
 *   not invent a baseline/project split the source does not give).
 * Factors are decimal strings in grams per unit.
 */
export type MethodologyFormula =
  | { readonly kind: 'factor_difference'; readonly baselineGramsPerUnit: string; readonly projectGramsPerUnit: string }
  | { readonly kind: 'fixed_per_action'; readonly gramsPerAction: string };

/** Reliability of the figure, as tagged in research/carbon.md; `assumption` = platform-defined, no source. */
export type SourceStatus = 'S' | 'N' | 'U' | 'D' | 'assumption';

export interface MethodologyVersion {
  readonly behaviour: BehaviourType;
  readonly behaviourClass: BehaviourClass;
  /** Unique id of this version, recorded on every issuance, e.g. 'walking@2021-wuhan'. */
  readonly version: string;
  /** ISO date (inclusive), a business date in Asia/Shanghai. Versions of one behaviour do not overlap. */
  readonly validFrom: string;
  /** ISO date (exclusive); null = open. */
  readonly validTo: string | null;
  readonly unit: QuantityUnit;
  readonly formula: MethodologyFormula;
  /** Plausibility bound on the quantity of one record; above it the record is refused, not trimmed. */
  readonly maxQuantityPerRecord: string;
  /** Trips have a start/end time that may not overlap another trip of the same user. */
  readonly isTrip: boolean;
  /** Citation from research/carbon.md, with URL where given. */
  readonly source: string;
  /** Reliability tag of the factor itself. */
  readonly status: SourceStatus;
  readonly note?: string;
}

// Dates the factors are attested from (research/carbon.md §1.2). Where the notes give only a month, the 1st.
const WUHAN_TANTAN_PLANET_LAUNCH = '2021-08-01'; // 碳碳星球, 2021-08
const SHENZHEN_LOW_CARBON_PLANET_LAUNCH = '2021-12-17'; // 低碳星球
const WUHAN_WUTAN_JIANGHU_LAUNCH = '2023-06-01'; // 武碳江湖, 2023-06
const SHANGHAI_OFFICIAL_QA = '2024-10-30'; // sthj.sh.gov.cn Q&A
const WUHAN_2025_FACTORS_REPORTED = '2025-08-26'; // stocknews24 (Xinhua via secondary)
const ANT_FOREST_LAUNCH = '2016-08-01'; // 蚂蚁森林, 2016-08
const PLATFORM_ASSUMPTIONS_FROM = '2021-01-01'; // year of DB36/T 1476—2021, the standard the platform follows

const WUHAN_2021_URL = 'http://www.twotravelingconsultants.com/yaowen/20220217/1731293.html';
const WUHAN_2023_2024_URL = 'http://hb.people.com.cn/BIG5/n2/2024/0806/c192237-40935117.html';
const WUHAN_2025_URL = 'https://stocknews24.net/2025/08/26/whats-next-for-chinas-personal-carbon-accounts';
const SHANGHAI_QA_URL = 'https://sthj.sh.gov.cn/hbzhywpt1098/ydqhbh/tph/20241030/a0fd51d73510459e8211da564ce271f5.html';
const SHENZHEN_URL = 'https://www.sz.gov.cn/cn/xxgk/zfxxgj/zwdt/content/post_9462083.html';
const ANT_FOREST_URLS =
  'http://www.xmcar.cn/122409.html, http://readke.com/c/3192776.html, http://freep.cn/zhuangxiu_6/News_5543475.html';

export const METHODOLOGIES: readonly MethodologyVersion[] = [
  // ---- green travel ------------------------------------------------------------------------------------------------
  {
    behaviour: 'walking',
    behaviourClass: 'green_travel',
    version: 'walking@2021-wuhan',
    validFrom: WUHAN_TANTAN_PLANET_LAUNCH,
    validTo: null,
    unit: 'step',
    formula: { kind: 'fixed_per_action', gramsPerAction: '0.02' },
    maxQuantityPerRecord: '100000',
    isTrip: false,
    source: `Wuhan 碳碳星球 (2021-08): 0.02 credit per step, credits 1:1 to g CO2; 7,250 steps → 145. ${WUHAN_2021_URL}`,
    status: 'N',
    note:
      'A daily step count, not a trip. Ant Forest caps walking at 296 g/day (research §1.2): a cap for the ' +
      'ingestion, not a factor. Fuzhou 绿宝 counts steps in points (1 per 2,000), not grams, so it is not used.',
  },
  {
    behaviour: 'shared_bike',
    behaviourClass: 'green_travel',
    version: 'shared_bike@2023-wuhan',
    validFrom: WUHAN_WUTAN_JIANGHU_LAUNCH,
    validTo: SHANGHAI_OFFICIAL_QA,
    unit: 'km',
    formula: { kind: 'fixed_per_action', gramsPerAction: '40' },
    maxQuantityPerRecord: '50',
    isTrip: true,
    source: `Wuhan 武碳江湖 credit values 2023 and 2024: bike 40 g/km. ${WUHAN_2023_2024_URL}`,
    status: 'N',
    note: 'Net reduction per km; the source gives no baseline/project split.',
  },
  {
    behaviour: 'shared_bike',
    behaviourClass: 'green_travel',
    version: 'shared_bike@2024-shanghai',
    validFrom: SHANGHAI_OFFICIAL_QA,
    validTo: WUHAN_2025_FACTORS_REPORTED,
    unit: 'km',
    formula: { kind: 'fixed_per_action', gramsPerAction: '98' },
    maxQuantityPerRecord: '50',
    isTrip: true,
    source: `Shanghai 碳普惠 official Q&A (2024-10-30): public bike 98 g/km, 1 g = 1 point. ${SHANGHAI_QA_URL}`,
    status: 'S',
    note: 'Net reduction per km; the source gives no baseline/project split.',
  },
  {
    behaviour: 'shared_bike',
    behaviourClass: 'green_travel',
    version: 'shared_bike@2025-wuhan',
    validFrom: WUHAN_2025_FACTORS_REPORTED,
    validTo: null,
    unit: 'km',
    formula: { kind: 'fixed_per_action', gramsPerAction: '93.3' },
    maxQuantityPerRecord: '50',
    isTrip: true,
    source: `Wuhan 武碳江湖 2025 factors (Xinhua via secondary): bike 93.3 g/km. ${WUHAN_2025_URL}`,
    status: 'N',
    note: 'Net reduction per km. Valid from the date the 2025 figure is first attested; its own start date is not given.',
  },
  {
    behaviour: 'bus',
    behaviourClass: 'green_travel',
    version: 'bus@2023-wuhan',
    validFrom: WUHAN_WUTAN_JIANGHU_LAUNCH,
    validTo: SHANGHAI_OFFICIAL_QA,
    unit: 'ride',
    formula: { kind: 'fixed_per_action', gramsPerAction: '150' },
    maxQuantityPerRecord: '1',
    isTrip: true,
    source: `Wuhan 武碳江湖 credit values 2023: bus 150 g/trip. ${WUHAN_2023_2024_URL}`,
    status: 'N',
    note: 'One record = one ride. Wuhan 碳碳星球 (2021) paid 105 g by screenshot or 52 g by check-in; not used.',
  },
  {
    behaviour: 'bus',
    behaviourClass: 'green_travel',
    version: 'bus@2024-shanghai',
    validFrom: SHANGHAI_OFFICIAL_QA,
    validTo: WUHAN_2025_FACTORS_REPORTED,
    unit: 'ride',
    formula: { kind: 'fixed_per_action', gramsPerAction: '422' },
    maxQuantityPerRecord: '1',
    isTrip: true,
    source: `Shanghai 碳普惠 official Q&A (2024-10-30): bus 422 g per ride. ${SHANGHAI_QA_URL}`,
    status: 'S',
    note: 'One record = one ride. ≈ (130 − 64) g/pkm × 6.4 km [D from U factors]; the per-ride figure is what is used.',
  },
  {
    behaviour: 'bus',
    behaviourClass: 'green_travel',
    version: 'bus@2025-wuhan',
    validFrom: WUHAN_2025_FACTORS_REPORTED,
    validTo: null,
    unit: 'ride',
    formula: { kind: 'fixed_per_action', gramsPerAction: '212.5' },
    maxQuantityPerRecord: '1',
    isTrip: true,
    source: `Wuhan 武碳江湖 2025 factors (Xinhua via secondary): bus 212.5 g/trip. ${WUHAN_2025_URL}`,
    status: 'N',
    note: 'One record = one ride; the half gram is floored away (212 g per ride).',
  },
  {
    behaviour: 'metro',
    behaviourClass: 'green_travel',
    version: 'metro@2021-shenzhen',
    validFrom: SHENZHEN_LOW_CARBON_PLANET_LAUNCH,
    validTo: SHANGHAI_OFFICIAL_QA,
    unit: 'km',
    formula: { kind: 'fixed_per_action', gramsPerAction: '46.8' },
    maxQuantityPerRecord: '100',
    isTrip: true,
    source: `Shenzhen 低碳星球 (2021-12-17): metro 46.8 g CO2 per person-km. ${SHENZHEN_URL}`,
    status: 'S',
    note:
      'Net reduction per person-km. Wuhan 2024 (170 g per trip) is per ride, not per km as the issue asks, so it ' +
      'is not used.',
  },
  {
    behaviour: 'metro',
    behaviourClass: 'green_travel',
    version: 'metro@2024-shanghai',
    validFrom: SHANGHAI_OFFICIAL_QA,
    validTo: WUHAN_2025_FACTORS_REPORTED,
    unit: 'km',
    formula: { kind: 'factor_difference', baselineGramsPerUnit: '130', projectGramsPerUnit: '33' },
    maxQuantityPerRecord: '100',
    isTrip: true,
    source: `Shanghai 碳普惠 official Q&A (2024-10-30): metro 97 g/km. ${SHANGHAI_QA_URL}`,
    status: 'S',
    note:
      'The net 97 g/km is [S]; its split into baseline 130 g/pkm and metro 33 g/pkm is [U] (a third-party code ' +
      'file citing 上海碳普惠方法学, research §2.2). The split only documents the 97; changing it would be a new version.',
  },
  {
    behaviour: 'metro',
    behaviourClass: 'green_travel',
    version: 'metro@2025-wuhan',
    validFrom: WUHAN_2025_FACTORS_REPORTED,
    validTo: null,
    unit: 'km',
    formula: { kind: 'fixed_per_action', gramsPerAction: '78.4' },
    maxQuantityPerRecord: '100',
    isTrip: true,
    source: `Wuhan 武碳江湖 2025 factors (Xinhua via secondary): metro 78.4 g/km. ${WUHAN_2025_URL}`,
    status: 'N',
    note: 'Net reduction per km; the source gives no baseline/project split.',
  },
  {
    behaviour: 'nev_driving',
    behaviourClass: 'green_travel',
    version: 'nev_driving@2023-wuhan',
    validFrom: WUHAN_WUTAN_JIANGHU_LAUNCH,
    validTo: null,
    unit: 'km',
    formula: { kind: 'fixed_per_action', gramsPerAction: '7' },
    maxQuantityPerRecord: '500',
    isTrip: true,
    source: `Wuhan 武碳江湖 2023: NEV 24 km → 168 g, i.e. 7 g/km [D]. ${WUHAN_2023_2024_URL}`,
    status: 'D',
    note:
      'Derived: 168 g / 24 km = 7 g/km exactly. The generic formula D × EF_ICE − kWh × EF_grid needs metered kWh and ' +
      'a verified grid factor (research §2.1); Beijing 153 g/pkm is [U] and not used.',
  },
  // ---- green consumption -------------------------------------------------------------------------------------------
  {
    behaviour: 'e_ticket',
    behaviourClass: 'green_consumption',
    version: 'e_ticket@2016-antforest',
    validFrom: ANT_FOREST_LAUNCH,
    validTo: null,
    unit: 'ticket',
    formula: { kind: 'fixed_per_action', gramsPerAction: '180' },
    maxQuantityPerRecord: '10',
    isTrip: false,
    source: `Ant Forest 蚂蚁森林: online cinema/show ticket 180 g energy (≤10 per month). ${ANT_FOREST_URLS}`,
    status: 'N',
    note:
      'Ant Forest "green energy" treated as g CO2 (research §1.1). Valid from Ant Forest launch month; the date this ' +
      'figure took effect is not given. Train tickets (136 g) would be a separate behaviour.',
  },
  {
    behaviour: 'own_bag',
    behaviourClass: 'green_consumption',
    version: 'own_bag@2023-wuhan',
    validFrom: WUHAN_WUTAN_JIANGHU_LAUNCH,
    validTo: null,
    unit: 'action',
    formula: { kind: 'fixed_per_action', gramsPerAction: '5' },
    maxQuantityPerRecord: '1',
    isTrip: false,
    source: `Wuhan 武碳江湖 credit values 2023: bring own bag 5 g. ${WUHAN_2023_2024_URL}`,
    status: 'N',
    note: 'One record = one shopping visit with an own bag.',
  },
  // ---- green living ------------------------------------------------------------------------------------------------
  {
    behaviour: 'paperless_bill',
    behaviourClass: 'green_living',
    version: 'paperless_bill@2016-antforest',
    validFrom: ANT_FOREST_LAUNCH,
    validTo: null,
    unit: 'bill',
    formula: { kind: 'fixed_per_action', gramsPerAction: '262' },
    maxQuantityPerRecord: '1',
    isTrip: false,
    source: `Ant Forest 蚂蚁森林: utility bill paid online 262 g energy (≤10 per month, once per household account per month). ${ANT_FOREST_URLS}`,
    status: 'N',
    note:
      'Ant Forest "green energy" treated as g CO2 (research §1.1). Valid from Ant Forest launch month; the date this ' +
      'figure took effect is not given. One record = one bill.',
  },
  {
    behaviour: 'recycling',
    behaviourClass: 'green_living',
    version: 'recycling@2021-platform',
    validFrom: PLATFORM_ASSUMPTIONS_FROM,
    validTo: null,
    unit: 'kg',
    formula: { kind: 'fixed_per_action', gramsPerAction: '100' },
    maxQuantityPerRecord: '100',
    isTrip: false,
    source:
      'PLATFORM-DEFINED ASSUMPTION, no official factor: research/carbon.md §2.2 found no per-kg personal factor for ' +
      'garbage sorting or recyclables (Jiangxi 绿宝碳汇 counts events; Chengdu has project-level methodologies only).',
    status: 'assumption',
    note:
      '100 g CO2e per kg of sorted recyclables weighed by a partner: a deliberately low placeholder so the behaviour ' +
      'can be recorded, capped and audited, not a life-cycle estimate. Replace with a new version when an official ' +
      'per-kg methodology (Jiangxi, Chengdu) is found.',
  },
  // ---- green public welfare ----------------------------------------------------------------------------------------
  {
    behaviour: 'tree_planting',
    behaviourClass: 'green_public_welfare',
    version: 'tree_planting@2021-platform',
    validFrom: PLATFORM_ASSUMPTIONS_FROM,
    validTo: null,
    unit: 'tree',
    formula: { kind: 'fixed_per_action', gramsPerAction: '1000' },
    maxQuantityPerRecord: '20',
    isTrip: false,
    source:
      'PLATFORM-DEFINED ASSUMPTION, no official factor: research/carbon.md §2.2 found no per-tree personal factor ' +
      '(Ant Forest 17.9 kg per 梭梭 is the energy price of a tree, not its sequestration; Chengdu 造林管护 is ' +
      'project-level).',
    status: 'assumption',
    note:
      '1,000 g CO2e per tree planted and confirmed by the planting partner: a small fixed amount at planting, so ' +
      'sequestration that accrues over years (and depends on species and site) is not credited in advance. Replace ' +
      'with a new version when an official methodology is found.',
  },
];

const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

export function isBehaviourType(v: unknown): v is BehaviourType {
  return typeof v === 'string' && (BEHAVIOUR_TYPES as readonly string[]).includes(v);
}

/** The version of a behaviour in force on a business date (YYYY-MM-DD, Asia/Shanghai); undefined if none. */
export function methodologyFor(behaviour: BehaviourType, onDate: string): MethodologyVersion | undefined {
  if (!isIsoDate(onDate)) throw new RangeError(`methodology date must be YYYY-MM-DD, got ${JSON.stringify(onDate)}`);
  // ISO dates compare as strings.
  return METHODOLOGIES.find(
    (m) => m.behaviour === behaviour && m.validFrom <= onDate && (m.validTo === null || onDate < m.validTo),
  );
}

/**
 * The version for a behaviour that ended at `endedAt`: chosen by the business date of the end time in Asia/Shanghai
 * (calendar date, no cut-off), so a trip that ends at 00:10 local time on a change date uses the new version.
 */
export function methodologyForEndTime(behaviour: BehaviourType, endedAt: Date): MethodologyVersion | undefined {
  return methodologyFor(behaviour, businessDateOf(endedAt, 0));
}

/** A version by its id, e.g. to re-derive an issuance recorded with it. */
export function methodologyByVersion(version: string): MethodologyVersion | undefined {
  return METHODOLOGIES.find((m) => m.version === version);
}

function isIsoDate(text: string): boolean {
  if (!ISO_DATE.test(text)) return false;
  const date = new Date(`${text}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 10) === text;
}

const POSITIVE_DECIMAL = /^(?:0|[1-9]\d*)(?:\.\d+)?$/;

function isPositiveDecimalText(text: string): boolean {
  return POSITIVE_DECIMAL.test(text) && /[1-9]/.test(text);
}

/**
 * Every invariant of a methodology table, as a list of problems (empty = valid). Checked when this module loads
 * and again by the tests: a bad table is a bug and must never reach an issuance.
 */
export function methodologyTableProblems(table: readonly MethodologyVersion[]): string[] {
  const problems: string[] = [];
  const seenVersions = new Set<string>();
  for (const m of table) {
    const where = m.version;
    if (seenVersions.has(m.version)) problems.push(`${where}: duplicate version id`);
    seenVersions.add(m.version);
    if (!m.version.startsWith(`${m.behaviour}@`)) problems.push(`${where}: version id must start with the behaviour`);
    if (!isBehaviourType(m.behaviour)) problems.push(`${where}: unknown behaviour`);
    if (!BEHAVIOUR_CLASSES.includes(m.behaviourClass)) problems.push(`${where}: unknown class`);
    if (!isIsoDate(m.validFrom)) problems.push(`${where}: validFrom is not a date`);
    if (m.validTo !== null && !isIsoDate(m.validTo)) problems.push(`${where}: validTo is not a date`);
    if (m.validTo !== null && m.validTo <= m.validFrom) problems.push(`${where}: validTo must be after validFrom`);
    if (!isPositiveDecimalText(m.maxQuantityPerRecord)) problems.push(`${where}: maxQuantityPerRecord not positive`);
    if (m.source.trim() === '') problems.push(`${where}: no source`);
    problems.push(...formulaProblems(m));
  }
  problems.push(...overlapProblems(table));
  return problems;
}

function formulaProblems(m: MethodologyVersion): string[] {
  const where = m.version;
  if (m.formula.kind === 'fixed_per_action') {
    return isPositiveDecimalText(m.formula.gramsPerAction) ? [] : [`${where}: gramsPerAction not a positive decimal`];
  }
  const { baselineGramsPerUnit, projectGramsPerUnit } = m.formula;
  if (!isPositiveDecimalText(baselineGramsPerUnit) || !isPositiveDecimalText(projectGramsPerUnit)) {
    return [`${where}: factors must be positive decimal strings`];
  }
  return compareDecimalText(baselineGramsPerUnit, projectGramsPerUnit) > 0
    ? []
    : [`${where}: baseline must exceed project`];
}

/** Compares two non-negative plain decimal strings exactly (no floating point). */
function compareDecimalText(a: string, b: string): number {
  const [aInt = '', aFrac = ''] = a.split('.');
  const [bInt = '', bFrac = ''] = b.split('.');
  if (aInt.length !== bInt.length) return aInt.length - bInt.length;
  const width = Math.max(aFrac.length, bFrac.length);
  const left = aInt + aFrac.padEnd(width, '0');
  const right = bInt + bFrac.padEnd(width, '0');
  return left === right ? 0 : left > right ? 1 : -1;
}

function overlapProblems(table: readonly MethodologyVersion[]): string[] {
  const problems: string[] = [];
  for (const behaviour of BEHAVIOUR_TYPES) {
    const versions = table
      .filter((m) => m.behaviour === behaviour)
      .sort((x, y) => x.validFrom.localeCompare(y.validFrom));
    for (let i = 1; i < versions.length; i += 1) {
      const previous = versions[i - 1]!;
      const current = versions[i]!;
      if (previous.validTo === null || previous.validTo > current.validFrom) {
        problems.push(`${current.version}: overlaps ${previous.version}`);
      }
    }
  }
  return problems;
}

// Assert the table once at load: a module that would issue with a broken table must not start.
const loadProblems = methodologyTableProblems(METHODOLOGIES);
if (loadProblems.length > 0) throw new Error(`assertion: methodology table is invalid: ${loadProblems.join('; ')}`);
