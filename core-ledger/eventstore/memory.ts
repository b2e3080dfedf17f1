import { Observable } from 'rxjs';
import type {
  AppendOptions,
  AppendResult,
  EventStore,
  ExpectedRevision,
  NewEvent,
  ReadAllOptions,
  ReadStreamOptions,
  RecordedEvent,
  Snapshot,
  StreamAppend,
  StreamConflict,
  SubscribeOptions,
} from './port';
import {
  assertAppendsValid,
  decodePosition,
  DuplicateEventIdError,
  encodePosition,
  readCountWithin,
  LOG_START,
  PredecessorNotWrittenError,
  WrongExpectedRevisionError,
} from './port';

/** The event store in memory: for unit and property tests. Same contract as the durable stores. */
export class InMemoryEventStore implements EventStore {
  readonly name = 'memory';
  readonly appendsInOrder = true;
  private readonly log: RecordedEvent[] = [];
  /** Numbers appends: the major part of a position, shared by the events of one append. */
  private appendCount = 0;
  private readonly streams = new Map<string, RecordedEvent[]>();
  private readonly byEventId = new Map<string, RecordedEvent>();
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly listeners = new Set<() => void>();

  async append(streamId: string, events: readonly NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    return this.appendMany([{ streamId, events, expected }]);
  }

  async appendMany(appends: readonly StreamAppend[], options: AppendOptions = {}): Promise<AppendResult> {
    assertAppendsValid(appends);
    // Everything below runs before the first await: appends happen in the order they are issued.
    if (options.onlyAfter !== undefined && !this.byEventId.has(options.onlyAfter))
      throw new PredecessorNotWrittenError(options.onlyAfter);
    // A retry of an append that succeeded before is answered with its first result; only a whole append is.
    if (appends.every((a) => this.alreadyAppended(a))) return this.idempotentResult(appends);
    const conflicts: StreamConflict[] = [];
    for (const a of appends) {
      const actual = this.revisionOf(a.streamId);
      const matches =
        a.expected === 'any' || (a.expected === 'no_stream' ? actual === undefined : actual === a.expected);
      if (!matches) conflicts.push({ streamId: a.streamId, expected: a.expected, actual });
    }
    if (conflicts.length > 0) throw new WrongExpectedRevisionError(conflicts);
    const seen = new Set<string>();
    for (const a of appends) {
      for (const e of a.events) {
        if (this.byEventId.has(e.eventId) || seen.has(e.eventId)) throw new DuplicateEventIdError(e.eventId);
        seen.add(e.eventId);
      }
    }
    const recordedAt = new Date().toISOString();
    this.appendCount++;
    const nextRevisions: number[] = [];
    for (const a of appends) {
      let stream = this.streams.get(a.streamId);
      if (!stream) {
        stream = [];
        this.streams.set(a.streamId, stream);
      }
      for (const e of a.events) {
        const recorded: RecordedEvent = {
          eventId: e.eventId,
          type: e.type,
          data: structuredClone(e.data),
          metadata: structuredClone(e.metadata ?? {}),
          streamId: a.streamId,
          revision: stream.length,
          position: encodePosition(this.appendCount, this.log.length + 1),
          recordedAt,
        };
        stream.push(recorded);
        this.log.push(recorded);
        this.byEventId.set(e.eventId, recorded);
      }
      nextRevisions.push(stream.length - 1);
    }
    queueMicrotask(() => this.listeners.forEach((wake) => wake()));
    return { nextRevisions, position: this.log[this.log.length - 1]?.position ?? LOG_START, idempotent: false };
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    const from = options.fromRevision ?? 0;
    const count = readCountWithin(options.maxCount);
    return (this.streams.get(streamId) ?? []).slice(from, from + count);
  }

  async streamRevision(streamId: string): Promise<number | undefined> {
    return this.revisionOf(streamId);
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    const count = readCountWithin(options.maxCount);
    const from = Number(decodePosition(options.after ?? LOG_START).minor);
    return this.log.slice(from, from + count);
  }

  subscribeAll(options: SubscribeOptions = {}): Observable<RecordedEvent> {
    return new Observable<RecordedEvent>((subscriber) => {
      let next = Number(decodePosition(options.after ?? LOG_START).minor);
      const pump = (): void => {
        while (next < this.log.length && !subscriber.closed) subscriber.next(this.log[next++]!);
      };
      this.listeners.add(pump);
      queueMicrotask(pump);
      return () => {
        this.listeners.delete(pump);
      };
    });
  }

  async readSnapshot(streamId: string): Promise<Snapshot | undefined> {
    const snapshot = this.snapshots.get(streamId);
    return snapshot ? structuredClone(snapshot) : undefined;
  }

  async writeSnapshot(snapshot: Snapshot): Promise<void> {
    const current = this.snapshots.get(snapshot.streamId);
    if (current && current.revision >= snapshot.revision) return;
    this.snapshots.set(snapshot.streamId, structuredClone(snapshot));
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }

  private revisionOf(streamId: string): number | undefined {
    const stream = this.streams.get(streamId);
    return stream && stream.length > 0 ? stream.length - 1 : undefined;
  }

  /** The same events (by id) already stand in this stream where this append would have put them. */
  private alreadyAppended(a: StreamAppend): boolean {
    if (a.events.length === 0) return false;
    const first = this.byEventId.get(a.events[0]!.eventId);
    if (!first || first.streamId !== a.streamId) return false;
    if (typeof a.expected === 'number' && first.revision !== a.expected + 1) return false;
    if (a.expected === 'no_stream' && first.revision !== 0) return false;
    const stream = this.streams.get(a.streamId)!;
    return a.events.every((e, i) => stream[first.revision + i]?.eventId === e.eventId);
  }

  private idempotentResult(appends: readonly StreamAppend[]): AppendResult {
    let position = LOG_START;
    const nextRevisions = appends.map((a) => {
      const last = this.byEventId.get(a.events[a.events.length - 1]!.eventId)!;
      if (last.position > position) position = last.position;
      return last.revision;
    });
    return { nextRevisions, position, idempotent: true };
  }
}
