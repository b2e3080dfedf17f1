import type { Amount } from '../money';
import { formatAmount, Money, ZERO } from '../money';
import type { BehaviourType, MethodologyVersion } from './methodologies';
import { isBehaviourType, methodologyFor } from './methodologies';
import { creditsForGrams, reductionGramsFor } from './reduction';

/**
 * Deciding a partner's batch of behaviour records (C1, C2): which records count, for how many grams and credits.
 * Pure: the service reads each user's facts under a lock and hands them in; nothing here does I/O.
 */

/** A record as a partner platform sends it (after JSON schema validation). */
export interface BehaviourRecordInput {
  readonly externalId: string;
  readonly accountNumber: string;
  readonly behaviour: string;
  readonly quantity: string;
  readonly unit: string;
  readonly startAt: string;
  readonly endAt: string;
  readonly evidence?: { readonly kind: string; readonly digest: string; readonly uri?: string };
}

/** Per user, per behaviour: the most grams counted in a day and in a calendar month (Asia/Shanghai). */
export interface BehaviourCap {
  readonly dailyGrams: string;
  readonly monthlyGrams: string;
}

/**
 * Caps as data, in grams CO2e. Where a platform publishes a cap it is used (Ant Forest: walking ≤ 296 g a day,
 * paperless bills ≤ 10 a month, e-tickets); the rest are platform policy, sized to a plausible day of that behaviour.
 */
export const BEHAVIOUR_CAPS: Readonly<Record<string, BehaviourCap>> = {
  walking: { dailyGrams: '296', monthlyGrams: '8880' },
  shared_bike: { dailyGrams: '2940', monthlyGrams: '58800' },
  bus: { dailyGrams: '2532', monthlyGrams: '50640' },
  metro: { dailyGrams: '4850', monthlyGrams: '97000' },
  nev_driving: { dailyGrams: '15300', monthlyGrams: '306000' },
  paperless_bill: { dailyGrams: '2620', monthlyGrams: '2620' },
  e_ticket: { dailyGrams: '900', monthlyGrams: '9000' },
  own_bag: { dailyGrams: '25', monthlyGrams: '500' },
  recycling: { dailyGrams: '5000', monthlyGrams: '50000' },
  tree_planting: { dailyGrams: '100000', monthlyGrams: '500000' },
};

export const INGESTION_LIMITS = {
  maxRecordsPerBatch: 1_000,
  /** A record older than this is refused: partners report behaviour within days, not months. */
  maxRecordAgeDays: 30,
  /** Clock skew allowed for an end time in the future. */
  maxFutureSkewMs: 5 * 60_000,
  /** A trip longer than this is not one trip. */
  maxTripHours: 24,
} as const;

export type RejectionReason =
  | 'unknown_behaviour'
  | 'no_methodology'
  | 'unit_mismatch'
  | 'bad_quantity'
  | 'not_positive'
  | 'above_record_maximum'
  | 'bad_time'
  | 'too_old'
  | 'in_future'
  | 'unknown_user'
  | 'account_not_open'
  | 'cap_reached';

export type DuplicateReason = 'same_external_id' | 'overlapping_trip';

/** A record that passed every check that needs no other record: what it would count for on its own. */
export interface QuantifiedRecord {
  readonly index: number;
  readonly externalId: string;
  readonly accountId: string;
  readonly behaviour: BehaviourType;
  readonly methodology: MethodologyVersion;
  readonly quantity: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly businessDate: string;
  readonly month: string;
  readonly grams: Amount;
}

export type Quantification =
  { readonly ok: true; readonly record: QuantifiedRecord } | { readonly ok: false; readonly reason: RejectionReason };

/** The business date of an instant in Asia/Shanghai (UTC+8, no daylight saving). */
export function shanghaiDateOf(ms: number): string {
  return new Date(ms + 8 * 3_600_000).toISOString().slice(0, 10);
}

/**
 * Checks one record on its own and computes its grams under the methodology in force on the business date of its end
 * time. `accountId` is the user's points account, resolved by the caller from the account number.
 */
export function quantify(input: BehaviourRecordInput, index: number, accountId: string, nowMs: number): Quantification {
  if (!isBehaviourType(input.behaviour)) return { ok: false, reason: 'unknown_behaviour' };
  const startMs = Date.parse(input.startAt);
  const endMs = Date.parse(input.endAt);
  if (!Number.isFinite(startMs) || !Number.isFinite(endMs) || startMs > endMs) return { ok: false, reason: 'bad_time' };
  if (endMs > nowMs + INGESTION_LIMITS.maxFutureSkewMs) return { ok: false, reason: 'in_future' };
  if (endMs < nowMs - INGESTION_LIMITS.maxRecordAgeDays * 86_400_000) return { ok: false, reason: 'too_old' };
  const businessDate = shanghaiDateOf(endMs);
  const methodology = methodologyFor(input.behaviour, businessDate);
  if (!methodology) return { ok: false, reason: 'no_methodology' };
  if (methodology.unit !== input.unit) return { ok: false, reason: 'unit_mismatch' };
  if (methodology.isTrip && (endMs === startMs || endMs - startMs > INGESTION_LIMITS.maxTripHours * 3_600_000))
    return { ok: false, reason: 'bad_time' };
  const computed = reductionGramsFor(methodology, input.quantity);
  if (!computed.ok) return { ok: false, reason: computed.reason };
  return {
    ok: true,
    record: {
      index,
      externalId: input.externalId,
      accountId,
      behaviour: input.behaviour,
      methodology,
      quantity: input.quantity,
      startMs,
      endMs,
      businessDate,
      month: businessDate.slice(0, 7),
      grams: computed.grams,
    },
  };
}

/** What the store holds for one user, read under the user's lock. */
export interface UserCarbonFacts {
  /** Grams counted so far, keyed `behaviour|YYYY-MM-DD`. */
  readonly dayGrams: ReadonlyMap<string, Amount>;
  /** Grams counted so far, keyed `behaviour|YYYY-MM`. */
  readonly monthGrams: ReadonlyMap<string, Amount>;
  /** Accepted trips of the user that may overlap the batch's trips. */
  readonly trips: readonly { readonly startMs: number; readonly endMs: number }[];
}

export type RecordDecision =
  | {
      readonly status: 'accepted';
      readonly record: QuantifiedRecord;
      /** Grams counted after the caps; ≤ record.grams. */
      readonly grams: Amount;
      readonly credits: Amount;
    }
  | { readonly status: 'duplicate'; readonly reason: DuplicateReason }
  | { readonly status: 'rejected'; readonly reason: RejectionReason };

/**
 * Decides quantified records in order against each user's facts and the records before them in the batch:
 * a partner's external id counts once, overlapping trips of one user count once (the earliest submitted wins),
 * and grams are cut to the remaining daily and monthly caps. `alreadySeen` holds external ids the store has.
 */
export function decideRecords(
  records: readonly QuantifiedRecord[],
  facts: ReadonlyMap<string, UserCarbonFacts>,
  alreadySeen: ReadonlySet<string>,
  creditsPerGram: string,
  caps: Readonly<Record<string, BehaviourCap>> = BEHAVIOUR_CAPS,
): RecordDecision[] {
  const seen = new Set(alreadySeen);
  const dayGrams = new Map<string, Amount>();
  const monthGrams = new Map<string, Amount>();
  const trips = new Map<string, { startMs: number; endMs: number }[]>();
  const decisions: RecordDecision[] = [];
  for (const record of records) {
    if (seen.has(record.externalId)) {
      decisions.push({ status: 'duplicate', reason: 'same_external_id' });
      continue;
    }
    seen.add(record.externalId);
    const userFacts = facts.get(record.accountId);
    const userTrips = trips.get(record.accountId) ?? [...(userFacts?.trips ?? [])];
    trips.set(record.accountId, userTrips);
    if (record.methodology.isTrip && userTrips.some((t) => t.startMs < record.endMs && record.startMs < t.endMs)) {
      decisions.push({ status: 'duplicate', reason: 'overlapping_trip' });
      continue;
    }
    const cap = caps[record.behaviour];
    if (!cap) throw new Error(`assertion: behaviour ${record.behaviour} has no cap`);
    const dayKey = `${record.accountId}|${record.behaviour}|${record.businessDate}`;
    const monthKey = `${record.accountId}|${record.behaviour}|${record.month}`;
    const dayUsed =
      dayGrams.get(dayKey) ?? userFacts?.dayGrams.get(`${record.behaviour}|${record.businessDate}`) ?? ZERO;
    const monthUsed =
      monthGrams.get(monthKey) ?? userFacts?.monthGrams.get(`${record.behaviour}|${record.month}`) ?? ZERO;
    const room = Money.min(new Money(cap.dailyGrams).minus(dayUsed), new Money(cap.monthlyGrams).minus(monthUsed));
    const grams = Money.max(ZERO, Money.min(record.grams, room));
    if (grams.lte(0)) {
      decisions.push({ status: 'rejected', reason: 'cap_reached' });
      continue;
    }
    dayGrams.set(dayKey, dayUsed.plus(grams));
    monthGrams.set(monthKey, monthUsed.plus(grams));
    if (record.methodology.isTrip) userTrips.push({ startMs: record.startMs, endMs: record.endMs });
    decisions.push({ status: 'accepted', record, grams, credits: creditsForGrams(grams, creditsPerGram) });
  }
  return decisions;
}

/**
 * Credits to expire on a points account at an instant (FIFO: spending uses the oldest credits first, so what is left
 * is the newest). Of the posted balance, everything beyond the credits still valid expires, as far as holds allow.
 */
export function creditsToExpire(input: {
  readonly posted: Amount;
  readonly available: Amount;
  readonly stillValidIssued: Amount;
}): Amount {
  const due = input.posted.minus(input.stillValidIssued);
  return Money.max(ZERO, Money.min(due, input.available));
}

export function formatGrams(grams: Amount): string {
  return formatAmount('CO2E', grams);
}
