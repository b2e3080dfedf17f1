import type { Amount } from '../../core-ledger';
import { Money } from '../../core-ledger';
import type { CounterIncrement, Observed } from './evaluate';

interface Bucket {
  count: number;
  /** The amounts as whole millionths (exact in a double below 2^53: 9 × 10^9 CNY or units). */
  micros: number;
  /** Amounts that are not plain decimals of at most six places, or too large for `micros`: rare, kept exact. */
  rest: Amount | undefined;
}

const MICROS = 1_000_000;

/** `text` as whole millionths, when it is a plain decimal of at most six places small enough to add exactly. */
export function microsOf(text: string): number | undefined {
  const parts = /^(\d{1,9})(?:\.(\d{1,6}))?$/.exec(text);
  if (!parts) return undefined;
  return Number(parts[1]) * MICROS + Number((parts[2] ?? '').padEnd(6, '0'));
}

/** Whole millionths as the shortest decimal text ('3', '12.5', '0.000001'). */
export function microsText(micros: number): string {
  const whole = Math.floor(micros / MICROS);
  const fraction = micros % MICROS;
  if (fraction === 0) return String(whole);
  return `${whole}.${String(fraction).padStart(6, '0').replace(/0+$/, '')}`;
}

/**
 * Velocity and daily counters held in memory: per counter key, its buckets (a minute, a quarter-hour or a business
 * day, named by the key's suffix; rules.ts). Totals over a window and reservations are synchronous, so decisions taken
 * one after another on the event loop never pass a limit together. What fills them, and keeps them across restarts
 * and processes, is the decision log (RiskService).
 */
export class RiskCounters {
  private readonly byKey = new Map<string, Map<number, Bucket>>();
  /** The last prune's limits: buckets before them are gone. */
  private pruned: { readonly beforeSecond: number; readonly beforeDay: number } | undefined;

  /** A counter's totals over buckets since..until (inclusive). */
  total(key: string, since: number, until: number): Observed {
    let count = 0;
    let micros = 0;
    let rest: Amount | undefined;
    const buckets = this.byKey.get(key);
    if (!buckets) return { count, amount: '0' };
    const take = (value: Bucket): void => {
      count += value.count;
      micros += value.micros;
      if (value.rest !== undefined) rest = (rest ?? new Money(0)).plus(value.rest);
    };
    // Walk whichever is shorter: the key's buckets or the window (at most 96 buckets, rules.ts).
    if (buckets.size <= until - since + 1) {
      for (const [bucket, value] of buckets) if (bucket >= since && bucket <= until) take(value);
    } else {
      for (let bucket = since; bucket <= until; bucket++) {
        const value = buckets.get(bucket);
        if (value) take(value);
      }
    }
    if (!Number.isSafeInteger(micros)) throw new Error(`assertion: counter ${key} passed the exact range`);
    return { count, amount: rest === undefined ? microsText(micros) : rest.plus(microsText(micros)).toString() };
  }

  /**
   * Takes a released event's increments back out, but for buckets pruned since it was counted: those are gone, with
   * whatever the event had added to them.
   */
  takeOut(increments: readonly CounterIncrement[]): void {
    const pruned = this.pruned;
    this.apply(
      pruned === undefined
        ? increments
        : increments.filter((inc) => inc.bucket >= (pruneLimitOf(inc.key, pruned.beforeSecond, pruned.beforeDay) ?? 0)),
      -1,
    );
  }

  /** Adds (sign 1) or takes back (sign −1) an allowed event's increments. */
  apply(increments: readonly CounterIncrement[], sign: 1 | -1): void {
    for (const inc of increments) {
      let buckets = this.byKey.get(inc.key);
      if (!buckets) {
        buckets = new Map();
        this.byKey.set(inc.key, buckets);
      }
      const current = buckets.get(inc.bucket) ?? { count: 0, micros: 0, rest: undefined };
      const micros = microsOf(inc.amount);
      const next: Bucket = {
        count: current.count + sign * inc.count,
        micros: current.micros + sign * (micros ?? 0),
        rest:
          micros !== undefined
            ? current.rest
            : sign === 1
              ? (current.rest ?? new Money(0)).plus(inc.amount)
              : (current.rest ?? new Money(0)).minus(inc.amount),
      };
      if (next.count < 0 || next.micros < 0 || next.rest?.isNegative())
        throw new Error(`assertion: counter ${inc.key} bucket ${inc.bucket} would go below zero`);
      if (next.count === 0 && next.micros === 0 && (next.rest === undefined || next.rest.isZero()))
        buckets.delete(inc.bucket);
      else buckets.set(inc.bucket, next);
      if (buckets.size === 0) this.byKey.delete(inc.key);
    }
  }

  /**
   * Drops buckets no window can reach any more: minute buckets (`|m<minutes>` keys) before `beforeSecond`, business-day
   * buckets (`|d`) before `beforeDay`. Answers how many were dropped.
   */
  prune(beforeSecond: number, beforeDay: number): number {
    let dropped = 0;
    this.pruned = { beforeSecond, beforeDay };
    for (const [key, buckets] of this.byKey) {
      const limit = pruneLimitOf(key, beforeSecond, beforeDay);
      if (limit === undefined) continue;
      for (const bucket of buckets.keys()) {
        if (bucket < limit) {
          buckets.delete(bucket);
          dropped += 1;
        }
      }
      if (buckets.size === 0) this.byKey.delete(key);
    }
    return dropped;
  }

  /** Totals of every key starting with `prefix`, over all its buckets (monitoring, tests). */
  sumOf(prefix: string): Observed {
    let count = 0;
    let amount: Amount = new Money(0);
    for (const [key, buckets] of this.byKey) {
      if (!key.startsWith(prefix)) continue;
      for (const value of buckets.values()) {
        count += value.count;
        amount = amount.plus(microsText(value.micros));
        if (value.rest !== undefined) amount = amount.plus(value.rest);
      }
    }
    return { count, amount: amount.toString() };
  }
}

/** The first bucket a prune keeps of a key: by its granularity (`|m<minutes>` or `|d`); undefined for any other. */
function pruneLimitOf(key: string, beforeSecond: number, beforeDay: number): number | undefined {
  const granularity = key.slice(key.lastIndexOf('|') + 1);
  if (granularity === 'd') return beforeDay;
  const minutes = /^m(\d+)$/.exec(granularity)?.[1];
  return minutes === undefined ? undefined : Math.floor(beforeSecond / (Number(minutes) * 60));
}
