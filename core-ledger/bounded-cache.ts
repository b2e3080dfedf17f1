/**
 * A map that keeps at most `bound` entries, forgetting the least recently remembered first. It is a Map (readers
 * use it as one); writers call {@link BoundedCache.remember}.
 *
 * The oldest key comes from one iterator kept across evictions. Asking a fresh `keys()` for its first key on every
 * eviction walks over every entry deleted since the map last compacted (V8 keeps them in place until then): with
 * 200,000 cached transfers that cost 6–26 µs per remembered state and grew between compactions.
 */
export class BoundedCache<V> extends Map<string, V> {
  private oldest: Iterator<string> | undefined;

  constructor(private readonly bound: number) {
    super();
    if (!Number.isInteger(bound) || bound < 1)
      throw new Error(`assertion: a cache bound is a positive integer, not ${bound}`);
  }

  /** Sets `key` as the most recently remembered entry; beyond the bound, forgets the least recent one. */
  remember(key: string, value: V): void {
    this.delete(key);
    this.set(key, value);
    if (this.size <= this.bound) return;
    // Every live entry lies ahead of the iterator (those it passed were forgotten, and an entry set again moves to
    // the end), so its next key is the oldest; a finished iterator starts again from the beginning.
    let next = this.oldest?.next();
    if (next === undefined || next.done === true) {
      this.oldest = this.keys();
      next = this.oldest.next();
    }
    if (next.done === true || next.value === key) throw new Error('assertion: the oldest cached entry is the newest');
    this.delete(next.value);
  }
}
