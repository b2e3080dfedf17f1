import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import type { EventStore, NewEvent } from '../../core-ledger';
import { openPostgresEventStore, WrongExpectedRevisionError } from '../../core-ledger';
import { createTestDatabase } from '../support/databases';

/**
 * The log is its own concurrency check (`cp_append`): an exact revision must be stored and the next one free, the
 * events' primary key decides between writers, and `any` appenders of one stream take turns. One store appends on
 * one ordered connection, so the races are between stores, as between writer processes.
 */
const WRITERS = 6;

let stores: EventStore[] = [];
let drop: (() => Promise<void>) | undefined;

beforeAll(async () => {
  const database = await createTestDatabase('concurrency');
  drop = database.drop;
  stores = await Promise.all(
    Array.from({ length: WRITERS }, () =>
      openPostgresEventStore({ connectionString: database.url, maxConnections: 2 }),
    ),
  );
});

afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await drop?.();
});

function events(count: number): NewEvent[] {
  return Array.from({ length: count }, () => ({ eventId: randomUUID(), type: 'Raced', data: { n: '1' } }));
}

test('writers racing with one exact revision: exactly one wins, each loser is told the winner’s revision', async () => {
  for (let round = 0; round < 20; round++) {
    const id = `race-exact-${round}-${randomUUID()}`;
    await stores[0]!.append(id, events(2), 'no_stream');
    const results = await Promise.allSettled(stores.map((s) => s.append(id, events(1 + (round % 3)), 1)));
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    const written = 2 + 1 + (round % 3);
    for (const r of results) {
      if (r.status === 'rejected') {
        expect(r.reason).toBeInstanceOf(WrongExpectedRevisionError);
        expect((r.reason as WrongExpectedRevisionError).conflicts).toEqual([
          { streamId: id, expected: 1, actual: written - 1 },
        ]);
      }
    }
    expect(await stores[1]!.streamRevision(id)).toBe(written - 1);
  }
});

test('writers racing to create one stream: exactly one no_stream wins', async () => {
  for (let round = 0; round < 20; round++) {
    const id = `race-new-${round}-${randomUUID()}`;
    const results = await Promise.allSettled(stores.map((s) => s.append(id, events(1), 'no_stream')));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected') {
        expect((r.reason as WrongExpectedRevisionError).conflicts).toEqual([
          { streamId: id, expected: 'no_stream', actual: 0 },
        ]);
      }
    }
  }
});

test('writers appending with any to one stream: all are written, revisions without a gap or a repeat', async () => {
  const id = `race-any-${randomUUID()}`;
  await Promise.all(
    stores.map(async (s) => {
      for (let i = 0; i < 15; i++) await s.append(id, events(1 + (i % 3)), 'any');
    }),
  );
  const revisions = (await stores[0]!.readStream(id)).map((e) => e.revision);
  const total = WRITERS * (5 * 1 + 5 * 2 + 5 * 3);
  expect(revisions).toEqual(Array.from({ length: total }, (_, i) => i));
});

test('any and exact appenders on one stream: every any is written, every exact one is written or told why not', async () => {
  const id = `race-mixed-${randomUUID()}`;
  await stores[0]!.append(id, events(1), 'no_stream');
  let exactWritten = 0;
  let exactRefused = 0;
  const anyWriters = stores.slice(0, 3).map(async (s) => {
    for (let i = 0; i < 20; i++) await s.append(id, events(1), 'any');
  });
  const exactWriters = stores.slice(3).map(async (s) => {
    for (let i = 0; i < 20; i++) {
      const revision = (await s.streamRevision(id))!;
      try {
        await s.append(id, events(1), revision);
        exactWritten += 1;
      } catch (error) {
        expect(error).toBeInstanceOf(WrongExpectedRevisionError);
        const [conflict] = (error as WrongExpectedRevisionError).conflicts;
        expect(conflict!.expected).toBe(revision);
        expect(conflict!.actual).toBeGreaterThan(revision);
        exactRefused += 1;
      }
    }
  });
  await Promise.all([...anyWriters, ...exactWriters]);
  expect(exactWritten + exactRefused).toBe(60);
  const revisions = (await stores[0]!.readStream(id)).map((e) => e.revision);
  expect(revisions).toEqual(Array.from({ length: 1 + 60 + exactWritten }, (_, i) => i));
});

test('a multi-stream append losing on one stream writes nothing on the others', async () => {
  for (let round = 0; round < 10; round++) {
    const shared = `race-shared-${round}-${randomUUID()}`;
    await stores[0]!.append(shared, events(1), 'no_stream');
    const own = stores.map(() => `race-own-${randomUUID()}`);
    const results = await Promise.allSettled(
      stores.map((s, w) =>
        s.appendMany([
          { streamId: own[w]!, expected: 'no_stream', events: events(2) },
          { streamId: shared, expected: 0, events: events(1) },
        ]),
      ),
    );
    const winners = results.flatMap((r, w) => (r.status === 'fulfilled' ? [w] : []));
    expect(winners).toHaveLength(1);
    for (let w = 0; w < WRITERS; w++) {
      expect(await stores[0]!.streamRevision(own[w]!)).toBe(winners.includes(w) ? 1 : undefined);
    }
    expect(await stores[0]!.streamRevision(shared)).toBe(1);
  }
});

test('appends on a connection that began on a small log never scan the whole log once it has grown', async () => {
  const database = await createTestDatabase('append_plans');
  const store = await openPostgresEventStore({ connectionString: database.url });
  const client = new Client({ connectionString: database.url });
  try {
    await store.append('plans-opened', events(1), 'no_stream');
    await client.connect();
    await client.query('SET stats_fetch_consistency = none');
    const append = async (expected: number): Promise<void> => {
      const streams = [
        { id: 'plans-opened', e: expected },
        { id: `plans-new-${randomUUID()}`, e: -1 },
      ];
      const appended = [0, 1].map((s) => ({ s, k: 1, i: randomUUID(), t: 'Planned', d: {}, m: null }));
      await client.query('SELECT * FROM cp_append($1::json, $2::json)', [
        JSON.stringify(streams),
        JSON.stringify(appended),
      ]);
    };
    // Enough calls on a near-empty log for the connection to keep a generic plan of each statement.
    let revision = 0;
    for (; revision < 8; revision++) await append(revision);
    await client.query(
      `INSERT INTO cp_events (stream_id, revision, event_id, type, data)
       SELECT 'plans-bulk-' || (g % 500), g / 500, gen_random_uuid(), 'Bulk', '{}' FROM generate_series(0, 49999) g`,
    );
    const sequentialScans = async (): Promise<number> => {
      await client.query('SELECT pg_stat_force_next_flush()');
      const rows = await client.query<{ n: string }>(
        `SELECT seq_scan::text AS n FROM pg_stat_user_tables WHERE relname = 'cp_events'`,
      );
      return Number(rows.rows[0]!.n);
    };
    const before = await sequentialScans();
    for (; revision < 16; revision++) await append(revision);
    expect(await sequentialScans()).toBe(before);
    expect(await store.streamRevision('plans-opened')).toBe(16);
  } finally {
    await client.end();
    await store.close();
    await database.drop();
  }
});
