import { randomUUID } from 'node:crypto';
import { firstValueFrom, take, toArray } from 'rxjs';
import type { EventStore, NewEvent, RecordedEvent } from '../../core-ledger';
import {
  appendOf,
  DuplicateEventIdError,
  LOG_START,
  PredecessorNotWrittenError,
  WrongExpectedRevisionError,
} from '../../core-ledger';

const event = (type = 'Something', data: Record<string, string> = {}): NewEvent => ({
  eventId: randomUUID(),
  type,
  data: { ...data },
});
const events = (n: number): NewEvent[] => Array.from({ length: n }, (_, i) => event('Numbered', { n: String(i) }));
const stream = (): string => `contract-${randomUUID()}`;

async function conflictOf(promise: Promise<unknown>): Promise<WrongExpectedRevisionError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof WrongExpectedRevisionError) return error;
    throw error;
  }
  throw new Error('expected a WrongExpectedRevisionError');
}

async function readEverything(store: EventStore): Promise<RecordedEvent[]> {
  const all: RecordedEvent[] = [];
  let after = LOG_START;
  for (;;) {
    const page = await store.readAll({ after, maxCount: 500 });
    all.push(...page);
    if (page.length < 500) return all;
    after = page[page.length - 1]!.position;
  }
}

/** One contract for every event store adapter (Emmett's idea): the same tests, each adapter. */
export function describeEventStoreContract(adapterName: string, open: () => Promise<EventStore>): void {
  describe(`event store contract: ${adapterName}`, () => {
    let store: EventStore;
    beforeAll(async () => {
      store = await open();
    });
    afterAll(async () => {
      await store.close();
    });

    test('appends to a new stream with no_stream and reads the events back in order, data intact', async () => {
      const id = stream();
      const written = [event('Opened', { name: '碳普惠 ✓', amount: '12.30' }), event('Posted', { amount: '0.01' })];
      const result = await store.append(id, written, 'no_stream');
      expect(result.nextRevisions).toEqual([1]);
      const read = await store.readStream(id);
      expect(read.map((e) => [e.eventId, e.type, e.revision, e.streamId])).toEqual([
        [written[0]!.eventId, 'Opened', 0, id],
        [written[1]!.eventId, 'Posted', 1, id],
      ]);
      expect(read[0]!.data).toEqual({ name: '碳普惠 ✓', amount: '12.30' });
      expect(read[0]!.metadata).toEqual({});
      expect(Number.isNaN(Date.parse(read[0]!.recordedAt))).toBe(false);
      expect(await store.streamRevision(id)).toBe(1);
      expect(result.position).toBe(read[1]!.position);
    });

    test('an exact expected revision must match; the conflict names the actual revision', async () => {
      const id = stream();
      await store.append(id, events(3), 'no_stream');
      expect((await store.append(id, events(1), 2)).nextRevisions).toEqual([3]);
      const conflict = await conflictOf(store.append(id, events(1), 2));
      expect(conflict.conflicts).toEqual([{ streamId: id, expected: 2, actual: 3 }]);
      const behind = await conflictOf(store.append(stream(), events(1), 0));
      expect(behind.conflicts[0]!.actual).toBeUndefined();
    });

    test('no_stream refuses an existing stream; any always appends', async () => {
      const id = stream();
      await store.append(id, events(1), 'no_stream');
      const conflict = await conflictOf(store.append(id, events(1), 'no_stream'));
      expect(conflict.conflicts).toEqual([{ streamId: id, expected: 'no_stream', actual: 0 }]);
      expect((await store.append(id, events(2), 'any')).nextRevisions).toEqual([2]);
      const fresh = stream();
      expect((await store.append(fresh, events(1), 'any')).nextRevisions).toEqual([0]);
    });

    test('appendMany is atomic: one conflicting stream and nothing is written anywhere', async () => {
      const a = stream();
      const b = stream();
      await store.append(b, events(1), 'no_stream');
      const conflict = await conflictOf(
        store.appendMany([
          { streamId: a, expected: 'no_stream', events: events(2) },
          { streamId: b, expected: 5, events: events(1) },
        ]),
      );
      expect(conflict.conflicts.map((c) => c.streamId)).toEqual([b]);
      expect(await store.readStream(a)).toEqual([]);
      expect(await store.streamRevision(a)).toBeUndefined();
      expect(await store.readStream(b)).toHaveLength(1);
      const ok = await store.appendMany([
        { streamId: a, expected: 'no_stream', events: events(2) },
        { streamId: b, expected: 0, events: events(1) },
      ]);
      expect(ok.nextRevisions).toEqual([1, 1]);
    });

    test('a retried append (same event ids, same expected revision) is idempotent', async () => {
      const id = stream();
      const batch = events(2);
      await store.append(id, events(1), 'no_stream');
      const first = await store.append(id, batch, 0);
      const again = await store.append(id, batch, 0);
      expect(again).toEqual({ ...first, idempotent: true });
      expect(first.idempotent).toBe(false);
      expect(await store.readStream(id)).toHaveLength(3);
    });

    test('an append issued before the previous one answered is written only if the previous one was', async () => {
      if (!store.appendsInOrder) {
        // A store that cannot order appends refuses the condition rather than ignore it.
        await expect(
          store.appendMany([{ streamId: stream(), expected: 'no_stream', events: events(1) }], {
            onlyAfter: randomUUID(),
          }),
        ).rejects.toBeInstanceOf(RangeError);
        return;
      }
      const a = stream();
      const b = stream();
      await store.append(a, events(1), 'no_stream');
      // Issued together, no await between them: the second is built on the first's effects.
      const first = events(2);
      const written = store.appendMany([{ streamId: a, expected: 0, events: first }]);
      const after = store.appendMany(
        [
          { streamId: a, expected: 2, events: events(1) },
          { streamId: b, expected: 'no_stream', events: events(1) },
        ],
        { onlyAfter: first[0]!.eventId },
      );
      expect((await written).nextRevisions).toEqual([2]);
      expect((await after).nextRevisions).toEqual([3, 0]);

      // The first conflicts: the second, issued on top of it, writes nothing, not even to the stream they do not share.
      const c = stream();
      const failing = events(1);
      const conflicted = conflictOf(store.appendMany([{ streamId: a, expected: 1, events: failing }]));
      // Its outcome is taken at once: it may settle before the first's conflict has been read.
      const orphan = store
        .appendMany(
          [
            { streamId: a, expected: 4, events: events(1) },
            { streamId: c, expected: 'no_stream', events: events(1) },
          ],
          { onlyAfter: failing[0]!.eventId },
        )
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect((await conflicted).conflicts).toEqual([{ streamId: a, expected: 1, actual: 3 }]);
      const refused = await orphan;
      expect(refused).toBeInstanceOf(PredecessorNotWrittenError);
      expect((refused as PredecessorNotWrittenError).predecessorEventId).toBe(failing[0]!.eventId);
      expect(await store.streamRevision(a)).toBe(3);
      expect(await store.streamRevision(c)).toBeUndefined();
      expect(await store.readStream(c)).toEqual([]);
    });

    test('an event id stored elsewhere is refused', async () => {
      const reused = event();
      await store.append(stream(), [reused], 'no_stream');
      await expect(store.append(stream(), [reused], 'no_stream')).rejects.toBeInstanceOf(DuplicateEventIdError);
    });

    test('readStream pages with fromRevision and maxCount; a missing stream reads empty', async () => {
      const id = stream();
      await store.append(id, events(10), 'no_stream');
      const page = await store.readStream(id, { fromRevision: 4, maxCount: 3 });
      expect(page.map((e) => e.revision)).toEqual([4, 5, 6]);
      expect(page.map((e) => e.data['n'])).toEqual(['4', '5', '6']);
      expect(await store.readStream(stream())).toEqual([]);
      const long = stream();
      await store.append(long, events(25), 'no_stream');
      expect((await store.readStream(long, { fromRevision: 8 })).map((e) => e.revision)).toEqual(
        Array.from({ length: 17 }, (_, i) => i + 8),
      );
      expect(await store.streamRevision(stream())).toBeUndefined();
    });

    test('readAll returns the log in one order, `after` exclusive, positions strictly increasing', async () => {
      const before = await readEverything(store);
      const tail = before.length > 0 ? before[before.length - 1]!.position : LOG_START;
      const ids = [stream(), stream(), stream()];
      for (const id of ids) await store.append(id, events(3), 'no_stream');
      const after = await store.readAll({ after: tail, maxCount: 100 });
      expect(after.map((e) => e.streamId)).toEqual(ids.flatMap((id) => [id, id, id]));
      for (let i = 1; i < after.length; i++) expect(after[i]!.position > after[i - 1]!.position).toBe(true);
      const fromSecond = await store.readAll({ after: after[1]!.position, maxCount: 2 });
      expect(fromSecond.map((e) => e.eventId)).toEqual([after[2]!.eventId, after[3]!.eventId]);
    });

    test('the events of one append share the major part of their position, and only they do', async () => {
      const before = await readEverything(store);
      const tail = before.length > 0 ? before[before.length - 1]!.position : LOG_START;
      const [a, b] = [stream(), stream()];
      await store.appendMany([
        { streamId: a, expected: 'no_stream', events: events(2) },
        { streamId: b, expected: 'no_stream', events: events(2) },
      ]);
      await store.append(a, events(1), 1);
      const written = await store.readAll({ after: tail, maxCount: 100 });
      expect(written).toHaveLength(5);
      const majors = written.map((e) => appendOf(e.position));
      expect(new Set(majors.slice(0, 4)).size).toBe(1);
      expect(majors[4]).not.toBe(majors[0]);
    });

    test('subscribeAll catches up, then delivers new events live, in log order', async () => {
      const existing = await readEverything(store);
      const start = existing.length > 0 ? existing[existing.length - 2]!.position : LOG_START;
      const expectedFirst = existing.length > 0 ? existing[existing.length - 1]!.eventId : undefined;
      const id = stream();
      const received = firstValueFrom(
        store.subscribeAll({ after: start }).pipe(take(existing.length > 0 ? 4 : 3), toArray()),
      );
      await new Promise((r) => setTimeout(r, 50));
      await store.append(id, events(3), 'no_stream');
      const got = await received;
      const live = got.filter((e) => e.streamId === id);
      expect(live.map((e) => e.revision)).toEqual([0, 1, 2]);
      if (expectedFirst) expect(got[0]!.eventId).toBe(expectedFirst);
    });

    test('concurrent appends with one expected revision: exactly one wins', async () => {
      const id = stream();
      await store.append(id, events(1), 'no_stream');
      const results = await Promise.allSettled(Array.from({ length: 8 }, () => store.append(id, events(1), 0)));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(WrongExpectedRevisionError);
      expect(await store.streamRevision(id)).toBe(1);
    });

    test('concurrent appends with any: every one is written, revisions without a gap', async () => {
      const id = stream();
      await store.append(id, events(1), 'no_stream');
      const results = await Promise.all(Array.from({ length: 8 }, () => store.append(id, events(2), 'any')));
      expect(results.map((r) => r.nextRevisions[0]).sort((a, b) => a! - b!)).toEqual([2, 4, 6, 8, 10, 12, 14, 16]);
      expect((await store.readStream(id)).map((e) => e.revision)).toEqual(Array.from({ length: 17 }, (_, i) => i));
      expect(await store.streamRevision(id)).toBe(16);
    });

    test('snapshots: the latest replaces an older one; an older write is ignored', async () => {
      const id = stream();
      expect(await store.readSnapshot(id)).toBeUndefined();
      await store.writeSnapshot({ streamId: id, revision: 10, state: { balance: '1.00' } });
      await store.writeSnapshot({ streamId: id, revision: 5, state: { balance: '0.50' } });
      expect(await store.readSnapshot(id)).toEqual({ streamId: id, revision: 10, state: { balance: '1.00' } });
      await store.writeSnapshot({ streamId: id, revision: 20, state: { balance: '2.00' } });
      expect((await store.readSnapshot(id))!.revision).toBe(20);
    });

    test('malformed appends are refused before anything is written', async () => {
      const id = stream();
      await expect(
        store.appendMany([
          { streamId: id, expected: 'no_stream', events: events(1) },
          { streamId: id, expected: 'no_stream', events: events(1) },
        ]),
      ).rejects.toBeInstanceOf(RangeError);
      await expect(store.append(id, [], 'no_stream')).rejects.toBeInstanceOf(RangeError);
      await expect(store.append(id, events(1), -3)).rejects.toBeInstanceOf(RangeError);
      expect(await store.streamRevision(id)).toBeUndefined();
    });
  });
}
