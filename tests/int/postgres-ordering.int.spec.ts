import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import type { Subscription } from 'rxjs';
import type { RecordedEvent } from '../../core-ledger';
import { LOG_START, openPostgresEventStore } from '../../core-ledger';
import { createTestDatabase } from '../support/databases';

const WRITERS = 8;
const COMMITTED_EVENTS_TARGET = 10_000;

/**
 * Writers commit out of order on purpose: each holds its transaction open for a random time after appending,
 * and some roll back. A subscriber started before them must receive every committed event exactly once, in the
 * same order a later full read gives, and no rolled-back event.
 */
test('8 concurrent writers with random commit delays: a live subscriber sees every committed event once, in one order', async () => {
  const database = await createTestDatabase('ordering');
  const store = await openPostgresEventStore({ connectionString: database.url, maxConnections: 4 });
  const received: RecordedEvent[] = [];
  let subscription: Subscription | undefined;
  try {
    subscription = store
      .subscribeAll({ after: LOG_START, batchSize: 500 })
      .subscribe({ next: (e) => received.push(e) });
    const committed = new Set<string>();
    const rolledBack = new Set<string>();
    let written = 0;
    const writer = async (index: number): Promise<void> => {
      const client = new Client({ connectionString: database.url });
      await client.connect();
      try {
        while (written < COMMITTED_EVENTS_TARGET) {
          const count = 1 + Math.floor(Math.random() * 8);
          const streams = [{ id: `order-${index}-${Math.floor(Math.random() * 20)}`, e: -2, n: count }];
          const ids = Array.from({ length: count }, () => randomUUID());
          const events = ids.map((i, k) => ({
            s: 0,
            k: k + 1,
            i,
            t: 'Ordered',
            d: { writer: String(index) },
            m: null,
          }));
          const rollback = Math.random() < 0.1;
          if (!rollback) written += count;
          await client.query('BEGIN');
          await client.query('SELECT * FROM cp_append($1::json, $2::json)', [
            JSON.stringify(streams),
            JSON.stringify(events),
          ]);
          await client.query(`SELECT pg_sleep(${(Math.random() * 0.02).toFixed(4)})`);
          await client.query(rollback ? 'ROLLBACK' : 'COMMIT');
          for (const id of ids) (rollback ? rolledBack : committed).add(id);
        }
      } finally {
        await client.end();
      }
    };
    await Promise.all(Array.from({ length: WRITERS }, (_, i) => writer(i)));
    expect(committed.size).toBeGreaterThanOrEqual(COMMITTED_EVENTS_TARGET);
    const deadline = Date.now() + 30_000;
    while (received.length < committed.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300)); // anything extra (a duplicate) would arrive now

    const receivedIds = received.map((e) => e.eventId);
    expect(new Set(receivedIds).size).toBe(receivedIds.length); // exactly once
    expect(receivedIds.length).toBe(committed.size);
    expect(receivedIds.every((id) => committed.has(id))).toBe(true);
    expect(receivedIds.some((id) => rolledBack.has(id))).toBe(false);
    for (let i = 1; i < received.length; i++) expect(received[i]!.position > received[i - 1]!.position).toBe(true);

    const reread: string[] = [];
    for (let after = LOG_START; ;) {
      const page = await store.readAll({ after, maxCount: 5_000 });
      reread.push(...page.map((e) => e.eventId));
      if (page.length < 5_000) break;
      after = page[page.length - 1]!.position;
    }
    expect(reread).toEqual(receivedIds); // one consistent order
    // Within a stream, the log order agrees with revisions.
    const lastRevision = new Map<string, number>();
    for (const e of received) {
      expect(e.revision).toBe((lastRevision.get(e.streamId) ?? -1) + 1);
      lastRevision.set(e.streamId, e.revision);
    }
  } finally {
    subscription?.unsubscribe();
    await store.close();
    await database.drop();
  }
});
