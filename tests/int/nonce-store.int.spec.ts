import { randomBytes } from 'node:crypto';
import type { NonceStore } from '../../security';
import { MemoryNonceStore, RedisNonceStore } from '../../security';

/** One contract for both nonce stores, the Redis one against the real server CI starts (never skipped). */
const REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

describe.each([
  ['redis', () => new RedisNonceStore(REDIS_URL)],
  ['memory', () => new MemoryNonceStore()],
] as const)('%s nonce store', (_name, open) => {
  let store: NonceStore;
  beforeAll(() => {
    store = open();
  });
  afterAll(async () => {
    await store.close();
  });

  test('of 100 concurrent claims of one nonce exactly one wins; other clients and nonces are separate', async () => {
    const nonce = randomBytes(12).toString('hex');
    const answers = await Promise.all(Array.from({ length: 100 }, () => store.claim('client-a', nonce, 60_000)));
    expect(answers.filter(Boolean)).toHaveLength(1);
    expect(await store.claim('client-b', nonce, 60_000)).toBe(true);
    expect(await store.claim('client-a', `${nonce}x`, 60_000)).toBe(true);
  });

  test('a nonce may come back once its retention has passed', async () => {
    const nonce = randomBytes(12).toString('hex');
    expect(await store.claim('client-a', nonce, 150)).toBe(true);
    expect(await store.claim('client-a', nonce, 150)).toBe(false);
    await new Promise((r) => setTimeout(r, 250));
    expect(await store.claim('client-a', nonce, 150)).toBe(true);
  });
});

test('a full memory store refuses rather than forget a live nonce', async () => {
  let now = 0;
  const store = new MemoryNonceStore(2, () => now);
  expect(await store.claim('c', 'n1', 1_000)).toBe(true);
  expect(await store.claim('c', 'n2', 1_000)).toBe(true);
  expect(await store.claim('c', 'n3', 1_000)).toBe(false);
  now = 2_000;
  expect(await store.claim('c', 'n3', 1_000)).toBe(true);
  expect(await store.claim('c', 'n1', 1_000)).toBe(true);
});
