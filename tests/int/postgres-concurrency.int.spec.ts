import { randomUUID } from 'node:crypto';
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
