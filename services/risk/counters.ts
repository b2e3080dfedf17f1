import type { Amount } from '../../core-ledger';
import { Money } from '../../core-ledger';
import type { CounterIncrement, Observed } from './evaluate';

interface Bucket {
  count: number;
  amount: Amount;
}

/**
 * Velocity and daily counters held in memory: per counter key, its buckets (a minute, a quarter-hour or a business
 * day, named by the key's suffix; rules.ts). Totals over a window and reservations are synchronous, so decisions taken
 * one after another on the event loop never pass a limit together. What fills them, and keeps them across restarts
 * and processes, is the decision log (RiskService).
 */
export class RiskCounters {
  private readonly byKey = new Map<string, Map<number, Bucket>>();

  /** A counter's totals over buckets since..until (inclusive). */
  total(key: string, since: number, until: number): Observed {
    let count = 0;
    let amount: Amount = new Money(0);
    const buckets = this.byKey.get(key);
    if (!buckets) return { count, amount: amount.toString() };
    const take = (value: Bucket): void => {
      count += value.count;
      amount = amount.plus(value.amount);
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
    return { count, amount: amount.toString() };
  }

  /** Adds (sign 1) or takes back (sign −1) an allowed event's increments. */
  apply(increments: readonly CounterIncrement[], sign: 1 | -1): void {
    for (const inc of increments) {
      let buckets = this.byKey.get(inc.key);
      if (!buckets) {
        buckets = new Map();
        this.byKey.set(inc.key, buckets);
      }
      const current = buckets.get(inc.bucket);
      const count = (current?.count ?? 0) + sign * inc.count;
      const amount =
        sign === 1
          ? (current?.amount ?? new Money(0)).plus(inc.amount)
          : (current?.amount ?? new Money(0)).minus(inc.amount);
      if (count < 0 || amount.isNegative())
        throw new Error(`assertion: counter ${inc.key} bucket ${inc.bucket} would go below zero`);
      if (count === 0 && amount.isZero()) buckets.delete(inc.bucket);
      else buckets.set(inc.bucket, { count, amount });
      if (buckets.size === 0) this.byKey.delete(inc.key);
    }
  }

  /**
   * Drops buckets no window can reach any more: minute buckets (`|m<minutes>` keys) before `beforeSecond`, business-day
   * buckets (`|d`) before `beforeDay`. Answers how many were dropped.
   */
  prune(beforeSecond: number, beforeDay: number): number {
    let dropped = 0;
    for (const [key, buckets] of this.byKey) {
      const granularity = key.slice(key.lastIndexOf('|') + 1);
      const minutes = /^m(\d+)$/.exec(granularity)?.[1];
      const limit =
        granularity === 'd'
          ? beforeDay
          : minutes !== undefined
            ? Math.floor(beforeSecond / (Number(minutes) * 60))
            : undefined;
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
        amount = amount.plus(value.amount);
      }
    }
    return { count, amount: amount.toString() };
  }
}
