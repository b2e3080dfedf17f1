import type { Amount } from '../../core-ledger';
import { Money } from '../../core-ledger';
import type { CounterIncrement, Observed } from './evaluate';

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
 *
 * A key's buckets are one flat array of numbers, ascending by bucket: `[bucket, count, micros, bucket, count, …]`
 * (most keys — a payer's card, device or address — have one bucket, and a map per key cost four times the memory).
 * Amounts that are not plain decimals of at most six places, or too large for millionths, are kept exact beside them.
 */
export class RiskCounters {
  private readonly byKey = new Map<string, number[]>();
  /** The rare exact remainders, by key and bucket. */
  private readonly rests = new Map<string, Map<number, Amount>>();
  /** The last prune's limits: buckets before them are gone. */
  private pruned: { readonly beforeSecond: number; readonly beforeDay: number } | undefined;

  /** A counter's totals over buckets since..until (inclusive). */
  total(key: string, since: number, until: number): Observed {
    let count = 0;
    let micros = 0;
    const cells = this.byKey.get(key);
    if (!cells) return { count, amount: '0' };
    // Windows end at the newest bucket: walk back from it.
    for (let i = cells.length - CELLS; i >= 0; i -= CELLS) {
      const bucket = cells[i]!;
      if (bucket < since) break;
      if (bucket > until) continue;
      count += cells[i + 1]!;
      micros += cells[i + 2]!;
    }
    if (!Number.isSafeInteger(micros)) throw new Error(`assertion: counter ${key} passed the exact range`);
    const rests = this.rests.size === 0 ? undefined : this.rests.get(key);
    let rest: Amount | undefined;
    if (rests)
      for (const [bucket, amount] of rests)
        if (bucket >= since && bucket <= until) rest = (rest ?? new Money(0)).plus(amount);
    if (rest === undefined) return { count, amount: microsText(micros), micros };
    return { count, amount: rest.plus(microsText(micros)).toString() };
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
      const micros = inc.micros ?? microsOf(inc.amount);
      let cells = this.byKey.get(inc.key);
      if (!cells) {
        // A literal of its exact size: an empty array grown by a push reserves room for seventeen numbers.
        cells = [inc.bucket, 0, 0];
        this.byKey.set(inc.key, cells);
      }
      // The bucket's place: usually the newest, or one past it.
      let at = cells.length - CELLS;
      while (at >= 0 && cells[at]! > inc.bucket) at -= CELLS;
      if (at < 0 || cells[at] !== inc.bucket) {
        at += CELLS;
        if (at === cells.length) cells.push(inc.bucket, 0, 0);
        else cells.splice(at, 0, inc.bucket, 0, 0);
      }
      const count = cells[at + 1]! + sign * inc.count;
      const total = cells[at + 2]! + sign * (micros ?? 0);
      let rest = this.rests.size === 0 ? undefined : this.rests.get(inc.key)?.get(inc.bucket);
      if (micros === undefined)
        rest = sign === 1 ? (rest ?? new Money(0)).plus(inc.amount) : (rest ?? new Money(0)).minus(inc.amount);
      if (count < 0 || total < 0 || rest?.isNegative())
        throw new Error(`assertion: counter ${inc.key} bucket ${inc.bucket} would go below zero`);
      if (micros === undefined) this.setRest(inc.key, inc.bucket, rest!.isZero() ? undefined : rest);
      if (count === 0 && total === 0 && (rest === undefined || rest.isZero())) {
        cells.splice(at, CELLS);
        if (cells.length === 0) this.byKey.delete(inc.key);
      } else {
        cells[at + 1] = count;
        cells[at + 2] = total;
      }
    }
  }

  /**
   * Drops buckets no window can reach any more: minute buckets (`|m<minutes>` keys) before `beforeSecond`, business-day
   * buckets (`|d`) before `beforeDay`. Answers how many were dropped.
   */
  prune(beforeSecond: number, beforeDay: number): number {
    let dropped = 0;
    this.pruned = { beforeSecond, beforeDay };
    for (const [key, cells] of this.byKey) {
      const limit = pruneLimitOf(key, beforeSecond, beforeDay);
      if (limit === undefined) continue;
      let keep = 0;
      while (keep < cells.length && cells[keep]! < limit) keep += CELLS;
      if (keep === 0) continue;
      dropped += keep / CELLS;
      if (keep === cells.length) this.byKey.delete(key);
      else cells.splice(0, keep);
      const rests = this.rests.get(key);
      if (rests) {
        for (const bucket of rests.keys()) if (bucket < limit) rests.delete(bucket);
        if (rests.size === 0) this.rests.delete(key);
      }
    }
    return dropped;
  }

  /** Totals of every key starting with `prefix`, over all its buckets (monitoring, tests). */
  sumOf(prefix: string): Observed {
    let count = 0;
    let amount: Amount = new Money(0);
    for (const [key, cells] of this.byKey) {
      if (!key.startsWith(prefix)) continue;
      for (let i = 0; i < cells.length; i += CELLS) {
        count += cells[i + 1]!;
        amount = amount.plus(microsText(cells[i + 2]!));
      }
      for (const rest of this.rests.get(key)?.values() ?? []) amount = amount.plus(rest);
    }
    return { count, amount: amount.toString() };
  }

  private setRest(key: string, bucket: number, rest: Amount | undefined): void {
    let rests = this.rests.get(key);
    if (rest === undefined) {
      rests?.delete(bucket);
      if (rests?.size === 0) this.rests.delete(key);
      return;
    }
    if (!rests) {
      rests = new Map();
      this.rests.set(key, rests);
    }
    rests.set(bucket, rest);
  }
}

/** Numbers per bucket in a key's array: the bucket, its count and its amount in millionths. */
const CELLS = 3;

/** The first bucket a prune keeps of a key: by its granularity (`|m<minutes>` or `|d`); undefined for any other. */
function pruneLimitOf(key: string, beforeSecond: number, beforeDay: number): number | undefined {
  const granularity = key.slice(key.lastIndexOf('|') + 1);
  if (granularity === 'd') return beforeDay;
  const minutes = /^m(\d+)$/.exec(granularity)?.[1];
  return minutes === undefined ? undefined : Math.floor(beforeSecond / (Number(minutes) * 60));
}
