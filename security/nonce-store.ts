import Redis from 'ioredis';

/**
 * Remembers the nonces of signed requests for as long as their timestamps stay acceptable, so a captured request
 * cannot be sent again. `claim` is atomic: of two requests with one nonce, exactly one wins.
 */
export interface NonceStore {
  /** True when the nonce was new (and is now taken); false when it was seen within `retentionMs`. */
  claim(clientId: string, nonce: string, retentionMs: number): Promise<boolean>;
  close(): Promise<void>;
}

/** Shared by every API instance: `SET key 1 NX PX retention` on Redis. */
export class RedisNonceStore implements NonceStore {
  private readonly redis: Redis;

  constructor(url: string) {
    this.redis = new Redis(url, { maxRetriesPerRequest: 2, enableOfflineQueue: true, lazyConnect: false });
  }

  async claim(clientId: string, nonce: string, retentionMs: number): Promise<boolean> {
    const answer = await this.redis.set(`cp:nonce:${clientId}:${nonce}`, '1', 'PX', retentionMs, 'NX');
    return answer === 'OK';
  }

  async close(): Promise<void> {
    await this.redis.quit();
  }
}

/** One process (embedded mode, tests): a map swept of expired nonces, bounded in size. */
export class MemoryNonceStore implements NonceStore {
  private readonly expiresAt = new Map<string, number>();

  constructor(
    private readonly maxNonces = 1_000_000,
    private readonly now: () => number = Date.now,
  ) {}

  async claim(clientId: string, nonce: string, retentionMs: number): Promise<boolean> {
    const key = `${clientId}\n${nonce}`;
    const now = this.now();
    const seen = this.expiresAt.get(key);
    if (seen !== undefined && seen > now) return false;
    if (this.expiresAt.size >= this.maxNonces) this.sweep(now);
    // Refusing is the safe answer when full of live nonces: a flood cannot make the store forget one.
    if (this.expiresAt.size >= this.maxNonces) return false;
    this.expiresAt.set(key, now + retentionMs);
    return true;
  }

  private sweep(now: number): void {
    for (const [key, expiry] of this.expiresAt) if (expiry <= now) this.expiresAt.delete(key);
  }

  async close(): Promise<void> {
    this.expiresAt.clear();
  }
}
