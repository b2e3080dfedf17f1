/**
 * A map that keeps at most `bound` entries, forgetting the one remembered first (an update keeps an entry's place).
 * It is a Map (readers use it as one); writers call {@link BoundedCache.remember}.
 *
 * Not a least-recently-used order, on purpose: moving an entry to the end (delete, then set) leaves a deleted entry
 * in its hash chain until V8 compacts the table, so a hot account updated on every payment made every lookup of it
 * walk thousands of them (6–8 µs a remember, ~100 µs a payment in the risk bench). An account evicted while still
 * hot is read again from the store, once. The oldest key comes from one iterator kept across evictions: a fresh
 * `keys()` would walk every deleted entry at the front on each eviction.
 */
export class BoundedCache<V> extends Map<string, V> {
  private oldest: Iterator<string> | undefined;

  constructor(private readonly bound: number) {
    super();
    if (!Number.isInteger(bound) || bound < 1)
      throw new Error(`assertion: a cache bound is a positive integer, not ${bound}`);
  }

  /** Sets `key` to `value` (in place when it is cached); beyond the bound, forgets the entry remembered first. */
  remember(key: string, value: V): void {
    const size = this.size;
    this.set(key, value);
    if (this.size === size || this.size <= this.bound) return;
    // Every live entry lies ahead of the iterator (those it passed were forgotten; new ones join the end), so its
    // next key is the oldest; a finished iterator starts again from the beginning.
    let next = this.oldest?.next();
    if (next === undefined || next.done === true) {
      this.oldest = this.keys();
      next = this.oldest.next();
    }
    if (next.done === true || next.value === key) throw new Error('assertion: the oldest cached entry is the newest');
    this.delete(next.value);
  }
}
