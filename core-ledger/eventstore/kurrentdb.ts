import type {
  AllStreamResolvedEvent,
  AppendStreamRequest,
  AppendStreamState,
  CurrentStreamState,
  EventData,
  Position,
  ReadPosition,
  ResolvedEvent,
} from '@kurrent/kurrentdb-client';
import {
  ANY,
  BACKWARDS,
  END,
  excludeSystemEvents,
  FORWARDS,
  jsonEvent,
  KurrentDBClient,
  NO_STREAM,
  START,
  StreamNotFoundError,
  UnsupportedError,
  WrongExpectedVersionError,
} from '@kurrent/kurrentdb-client';
import { Observable } from 'rxjs';
import type {
  AppendOptions,
  AppendResult,
  EventStore,
  ExpectedRevision,
  JsonObject,
  JsonValue,
  LogPosition,
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
  assertNoPredecessor,
  decodePosition,
  encodePosition,
  LOG_START,
  readCountWithin,
  WrongExpectedRevisionError,
} from './port';

/*
 * The event store on KurrentDB (EventStoreDB's successor) through `@kurrent/kurrentdb-client` 1.3.
 *
 * Mapping to the port:
 * - Revisions are the server's 0-based stream revisions (bigint on the wire, number here).
 * - Positions are $all positions {commit, prepare}, encoded with the port's `encodePosition` so they sort as strings.
 *   For events the server commits implicitly (every append since EventStoreDB 20), commit = prepare = the event's
 *   own log position, and the position an append returns is the log position of its last event.
 * - Appends carry the ledger's deterministic event ids and an exact expected state, so a retried append is answered
 *   by the server as idempotent (success, nothing written, original position) instead of being written twice.
 * - `appendMany` over several streams uses `multiStreamAppend` (server 25.1+), all-or-nothing on the server.
 *   BEFORE 25.1 THERE IS NO CROSS-STREAM ATOMICITY in KurrentDB: the client refuses `multiStreamAppend` and so does
 *   this adapter (it never falls back to one append per stream, which could leave half a transfer written).
 *
 * Known gaps against the port (a KurrentDB server has no global event-id index):
 * - an event id already stored in ANOTHER stream is not detected (no DuplicateEventIdError); idempotence is per
 *   stream. The ledger derives each event id from its decision and its index in it (ids.ts `eventIdsFor`), so one
 *   id never targets two streams.
 */

const CONNECTION_STRING = /^(kurrentdb|kurrent|kdb|esdb)(\+discover)?:\/\//;

/** Snapshots live in their own stream per aggregate stream, capped at one event by stream metadata. */
export const SNAPSHOT_STREAM_PREFIX = 'snapshot-';
export const SNAPSHOT_EVENT_TYPE = 'Snapshot';

/**
 * `multiStreamAppend` takes event metadata only as a flat object of string values (and the server refuses keys that
 * are empty or start with `$`). Any other metadata travels JSON-encoded under this one key and is decoded on read.
 */
export const ENCODED_METADATA_KEY = 'carbonpay.metadata';
/** Properties the server adds to events written through `multiStreamAppend`; not part of the caller's metadata. */
const SERVER_PROPERTY_PREFIX = '$schema.';

/** Reads one readAll may make to fill a page past snapshot events (TIGER_STYLE: a limit on everything). */
const MAX_READALL_ROUNDS = 1_000;

export function validateConnectionString(connectionString: string): string {
  if (!CONNECTION_STRING.test(connectionString)) {
    throw new Error(
      `KurrentDB connection string must start with kurrentdb://, kurrent://, kdb:// or esdb:// ` +
        `(optionally +discover), got ${JSON.stringify(connectionString)}`,
    );
  }
  return connectionString;
}

/** Our expected revision as the client's stream state. Exact revisions are 0-based on both sides. */
export function toStreamState(expected: ExpectedRevision): AppendStreamState {
  if (expected === 'no_stream') return NO_STREAM;
  if (expected === 'any') return ANY;
  if (!Number.isSafeInteger(expected) || expected < 0) {
    throw new RangeError(`expected revision must be a non-negative integer, 'no_stream' or 'any', got ${expected}`);
  }
  return BigInt(expected);
}

/**
 * A stream's actual state as reported by the server: its last revision, or undefined when it does not exist.
 * Negative numbers are the server's markers for missing, deleted or tombstoned streams.
 */
export function fromStreamState(state: CurrentStreamState): number | undefined {
  if (state === NO_STREAM || state < 0n) return undefined;
  return Number(state);
}

/** The client's $all position as our ordered string. */
export function positionOf(position: Position): LogPosition {
  return encodePosition(position.commit, position.prepare);
}

/** Our ordered string back as the client's $all position. */
export function toClientPosition(position: LogPosition): Position {
  const { major, minor } = decodePosition(position);
  return { commit: major, prepare: minor };
}

/** Where a read or subscription of $all starts: the log's start, or the position of an event already seen. */
export function toReadPosition(after: LogPosition): ReadPosition {
  return after === LOG_START ? START : toClientPosition(after);
}

/** Did the stream stand at `actual` as the append expected? */
export function matchesExpected(expected: ExpectedRevision, actual: number | undefined): boolean {
  if (expected === 'any') return true;
  if (expected === 'no_stream') return actual === undefined;
  return actual === expected;
}

/**
 * The stream already stood past what the append expected. The server accepts such an append only as a retry of one
 * already stored (every event id where the append would have put it) and refuses anything else, so an append that
 * succeeds after this was seen wrote nothing: it was idempotent.
 */
export function isPastExpected(expected: ExpectedRevision, actual: number | undefined): boolean {
  if (expected === 'any' || actual === undefined) return false;
  if (expected === 'no_stream') return true;
  return actual > expected;
}

/** One conflict of the port from the client's error, with the revision the caller expected. */
export function toConflict(error: WrongExpectedVersionError, expected: ExpectedRevision): StreamConflict {
  return { streamId: error.streamName, expected, actual: fromStreamState(error.actualState) };
}

/**
 * The client's WrongExpectedVersionError as the port's WrongExpectedRevisionError. The server names one stream;
 * `actualRevisions` (read after the failure) adds every other stream of the append that did not match either.
 */
export function toWrongExpectedRevisionError(
  error: WrongExpectedVersionError,
  appends: readonly StreamAppend[],
  actualRevisions: ReadonlyMap<string, number | undefined> = new Map(),
): WrongExpectedRevisionError {
  const reported = findAppend(appends, error.streamName);
  const conflicts: StreamConflict[] = [];
  for (const a of appends) {
    if (a === reported) {
      conflicts.push({ ...toConflict(error, a.expected), streamId: a.streamId });
    } else if (actualRevisions.has(a.streamId)) {
      const actual = actualRevisions.get(a.streamId);
      if (!matchesExpected(a.expected, actual)) conflicts.push({ streamId: a.streamId, expected: a.expected, actual });
    }
  }
  // The server named a stream this append does not hold (it should not happen): keep its word rather than lose it.
  if (!reported) conflicts.unshift(toConflict(error, toExpectedRevision(error.expectedState)));
  return new WrongExpectedRevisionError(conflicts);
}

function toExpectedRevision(state: AppendStreamState): ExpectedRevision {
  if (state === NO_STREAM) return 'no_stream';
  if (typeof state === 'bigint' && state >= 0n) return Number(state);
  return 'any';
}

function findAppend(appends: readonly StreamAppend[], streamName: string): StreamAppend | undefined {
  // Stream names are compared case-insensitively by the server's multi-stream append.
  return (
    appends.find((a) => a.streamId === streamName) ??
    appends.find((a) => a.streamId.toLowerCase() === streamName.toLowerCase())
  );
}

function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

/** Metadata as `multiStreamAppend` accepts it: flat string values as they are, anything else JSON-encoded. */
export function encodeMultiStreamMetadata(metadata: JsonObject | undefined): Record<string, string> | undefined {
  if (metadata === undefined || Object.keys(metadata).length === 0) return undefined;
  const flat = Object.entries(metadata).every(
    ([key, value]) =>
      typeof value === 'string' && key.length > 0 && !key.startsWith('$') && key !== ENCODED_METADATA_KEY,
  );
  if (flat) return { ...(metadata as Record<string, string>) };
  return { [ENCODED_METADATA_KEY]: JSON.stringify(metadata) };
}

/** The caller's metadata from what the server returns (JSON, maybe with server properties or encoded). */
export function decodeMetadata(raw: unknown): JsonObject {
  if (!isJsonObject(raw)) return {};
  const encoded = raw[ENCODED_METADATA_KEY];
  if (typeof encoded === 'string') {
    const parsed: unknown = JSON.parse(encoded);
    if (isJsonObject(parsed)) return parsed;
  }
  const metadata: JsonObject = {};
  for (const [key, value] of Object.entries(raw)) {
    if (!key.startsWith(SERVER_PROPERTY_PREFIX)) metadata[key] = value as JsonValue;
  }
  return metadata;
}

function decodeData(data: unknown): JsonObject | undefined {
  if (isJsonObject(data)) return data;
  // Binary events (or JSON the client could not parse) arrive as bytes or a string: accept them if they are JSON.
  const text =
    data instanceof Uint8Array ? Buffer.from(data).toString('utf8') : typeof data === 'string' ? data : undefined;
  if (text === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return isJsonObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** A system event or stream of the server ($-prefixed), never part of the ledger's log. */
export function isSystemEvent(type: string, streamId: string): boolean {
  return type.startsWith('$') || streamId.startsWith('$');
}

/** An event of the port from one the client read; undefined for what carries no JSON object (links, system). */
export function toRecordedEvent(resolved: ResolvedEvent | AllStreamResolvedEvent): RecordedEvent | undefined {
  const event = resolved.event;
  if (!event) return undefined;
  const data = decodeData(event.data);
  if (!data) return undefined;
  const position = event.position
    ? positionOf(event.position)
    : resolved.commitPosition !== undefined
      ? encodePosition(resolved.commitPosition, resolved.commitPosition)
      : LOG_START;
  return {
    eventId: event.id,
    type: event.type,
    data,
    metadata: decodeMetadata(event.metadata),
    streamId: event.streamId,
    revision: Number(event.revision),
    position,
    recordedAt: event.created.toISOString(),
  };
}

/** A domain event of the global log: not a system event, not a snapshot. */
function isLogEvent(event: RecordedEvent): boolean {
  return !isSystemEvent(event.type, event.streamId) && !event.streamId.startsWith(SNAPSHOT_STREAM_PREFIX);
}

function toEventData(event: NewEvent): EventData {
  return jsonEvent({ id: event.eventId, type: event.type, data: event.data, metadata: event.metadata ?? {} });
}

function toMultiStreamEventData(event: NewEvent): EventData {
  const metadata = encodeMultiStreamMetadata(event.metadata);
  return metadata === undefined
    ? jsonEvent({ id: event.eventId, type: event.type, data: event.data })
    : jsonEvent({ id: event.eventId, type: event.type, data: event.data, metadata });
}

export class KurrentDbEventStore implements EventStore {
  readonly name = 'kurrentdb';
  /** Appends go out concurrently over gRPC: none is made conditional on the one before. */
  readonly appendsInOrder = false;
  private closed = false;

  private constructor(private readonly client: KurrentDBClient) {}

  /** Validates the string, then creates the client; the client connects lazily, on the first call. */
  static connect(connectionString: string): KurrentDbEventStore {
    return new KurrentDbEventStore(KurrentDBClient.connectionString(validateConnectionString(connectionString)));
  }

  async append(streamId: string, events: readonly NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    return this.appendMany([{ streamId, events, expected }]);
  }

  async appendMany(appends: readonly StreamAppend[], options?: AppendOptions): Promise<AppendResult> {
    assertAppendsValid(appends);
    assertNoPredecessor(this.name, options);
    // The server does not say whether a successful append was idempotent. One read per stream before the append
    // tells: a stream already past the expected revision can only have accepted the append as a retry (see
    // isPastExpected). The cost is one read round trip per append (the reads run in parallel). A duplicate that
    // commits between this read and the append is reported as not idempotent; `any` appends never are.
    const before = await Promise.all(
      appends.map((a) => (a.expected === 'any' ? Promise.resolve(undefined) : this.streamRevision(a.streamId))),
    );
    const idempotent = appends.some((a, i) => isPastExpected(a.expected, before[i]));
    try {
      if (appends.length === 1) return { ...(await this.appendOne(appends[0]!)), idempotent };
      return { ...(await this.appendAtomically(appends)), idempotent };
    } catch (error) {
      if (error instanceof WrongExpectedVersionError) throw await this.conflictOf(error, appends);
      if (error instanceof UnsupportedError) {
        throw new Error(
          'this KurrentDB server has no multiStreamAppend (needs 25.1+): an append to several streams cannot be ' +
            'atomic on it, so it is refused',
          { cause: error },
        );
      }
      throw error;
    }
  }

  private async appendOne(a: StreamAppend): Promise<AppendResult> {
    const result = await this.client.appendToStream(a.streamId, a.events.map(toEventData), {
      streamState: toStreamState(a.expected),
    });
    const nextRevision = Number(result.nextExpectedRevision);
    const position = result.position
      ? positionOf(result.position)
      : await this.positionOfRevision(a.streamId, nextRevision);
    return { nextRevisions: [nextRevision], position };
  }

  /** All streams or none, through the server's multi-stream append (KurrentDB 25.1+). */
  private async appendAtomically(appends: readonly StreamAppend[]): Promise<AppendResult> {
    const requests: AppendStreamRequest[] = appends.map((a) => ({
      streamName: a.streamId,
      events: a.events.map(toMultiStreamEventData),
      expectedState: toStreamState(a.expected),
    }));
    const result = await this.client.multiStreamAppend(requests);
    const nextRevisions = appends.map((a, i) => {
      const response =
        result.responses.find((r) => r.streamName === a.streamId) ??
        result.responses.find((r) => r.streamName.toLowerCase() === a.streamId.toLowerCase()) ??
        result.responses[i];
      if (!response) throw new Error(`multiStreamAppend answered without a revision for ${a.streamId}`);
      return Number(response.revision);
    });
    // The server answers the commit position of the transaction's last event; implicitly committed events are
    // read back from $all at {commit: p, prepare: p}, so this is the position readAll gives that event.
    return { nextRevisions, position: encodePosition(result.position, result.position) };
  }

  /** The server names one conflicting stream; the others are read so the error names every stream that moved. */
  private async conflictOf(
    error: WrongExpectedVersionError,
    appends: readonly StreamAppend[],
  ): Promise<WrongExpectedRevisionError> {
    const others = appends.filter((a) => a.expected !== 'any' && findAppend([a], error.streamName) === undefined);
    const actual = new Map<string, number | undefined>();
    try {
      const revisions = await Promise.all(others.map((a) => this.streamRevision(a.streamId)));
      others.forEach((a, i) => actual.set(a.streamId, revisions[i]));
    } catch {
      // The details are a courtesy: the conflict the server reported stands on its own.
    }
    return toWrongExpectedRevisionError(error, appends, actual);
  }

  private async positionOfRevision(streamId: string, revision: number): Promise<LogPosition> {
    const [event] = await this.readStream(streamId, { fromRevision: revision, maxCount: 1 });
    return event?.position ?? LOG_START;
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    const events: RecordedEvent[] = [];
    try {
      for await (const resolved of this.client.readStream(streamId, {
        fromRevision: BigInt(options.fromRevision ?? 0),
        maxCount: readCountWithin(options.maxCount),
        direction: FORWARDS,
      })) {
        const recorded = toRecordedEvent(resolved);
        if (recorded) events.push(recorded);
      }
    } catch (error) {
      if (error instanceof StreamNotFoundError) return [];
      throw error;
    }
    return events;
  }

  async streamRevision(streamId: string): Promise<number | undefined> {
    try {
      for await (const resolved of this.client.readStream(streamId, {
        fromRevision: END,
        direction: BACKWARDS,
        maxCount: 1,
      })) {
        if (resolved.event) return Number(resolved.event.revision);
      }
    } catch (error) {
      if (error instanceof StreamNotFoundError) return undefined;
      throw error;
    }
    return undefined;
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    const count = readCountWithin(options.maxCount);
    const events: RecordedEvent[] = [];
    // The server filters out system events; snapshot events are dropped here, so one read may come back short
    // and another one continues from where it stopped. A read of $all from a position includes the event at that
    // position: each read asks for one more and everything at or before `cursor` is skipped (`after` is exclusive).
    let cursor = options.after ?? LOG_START;
    for (let round = 0; round < MAX_READALL_ROUNDS && events.length < count; round++) {
      const wanted = count - events.length + 1;
      let read = 0;
      for await (const resolved of this.client.readAll({
        fromPosition: toReadPosition(cursor),
        maxCount: wanted,
        direction: FORWARDS,
        filter: excludeSystemEvents(),
      })) {
        read += 1;
        const recorded = toRecordedEvent(resolved);
        const position = recorded?.position ?? (resolved.event ? positionOf(resolved.event.position) : undefined);
        if (position === undefined || position <= cursor) continue;
        cursor = position;
        if (recorded && isLogEvent(recorded)) events.push(recorded);
        if (events.length === count) break;
      }
      if (read < wanted) break; // the end of the log
    }
    return events;
  }

  subscribeAll(options: SubscribeOptions = {}): Observable<RecordedEvent> {
    return new Observable<RecordedEvent>((subscriber) => {
      let cursor = options.after ?? LOG_START;
      let stopped = false;
      // A subscription starts after the position it is given (exclusive); events at or before `cursor` are skipped
      // anyway, so a resubscription can never hand an event out twice in one subscription.
      const subscription = this.client.subscribeToAll({
        fromPosition: toReadPosition(cursor),
        filter: excludeSystemEvents(),
      });
      subscription.on('data', (resolved: AllStreamResolvedEvent) => {
        if (stopped) return;
        const recorded = toRecordedEvent(resolved);
        if (!recorded || recorded.position <= cursor) return;
        cursor = recorded.position;
        if (isLogEvent(recorded)) subscriber.next(recorded);
      });
      subscription.on('error', (error: Error) => {
        // A listener stays after unsubscribing: a stream 'error' without one would be thrown by Node.
        if (!stopped) subscriber.error(error);
      });
      subscription.on('end', () => {
        if (stopped) return;
        // A live subscription never ends by itself: when the server drops it, the consumer must resubscribe from
        // its checkpoint, so that is an error, unless the store was closed.
        if (this.closed) subscriber.complete();
        else subscriber.error(new Error('the KurrentDB subscription to $all ended'));
      });
      return () => {
        stopped = true;
        subscription.unsubscribe().catch(() => undefined);
      };
    });
  }

  async readSnapshot(streamId: string): Promise<Snapshot | undefined> {
    try {
      for await (const resolved of this.client.readStream(SNAPSHOT_STREAM_PREFIX + streamId, {
        fromRevision: END,
        direction: BACKWARDS,
        maxCount: 1,
      })) {
        const data = resolved.event ? decodeData(resolved.event.data) : undefined;
        const revision = data?.['revision'];
        const state = data?.['state'];
        if (typeof revision === 'number' && isJsonObject(state)) return { streamId, revision, state };
      }
    } catch (error) {
      if (error instanceof StreamNotFoundError) return undefined;
      throw error;
    }
    return undefined;
  }

  /**
   * Snapshots are disposable caches: the newest wins, an older one is ignored. The check and the append are not
   * atomic (the append uses ANY), so two writers racing may leave the older one; readers fold the events after
   * the snapshot's revision anyway, so that is only slower, never wrong.
   */
  async writeSnapshot(snapshot: Snapshot): Promise<void> {
    const current = await this.readSnapshot(snapshot.streamId);
    if (current && current.revision >= snapshot.revision) return;
    const stream = SNAPSHOT_STREAM_PREFIX + snapshot.streamId;
    // Only the last snapshot is ever read: the server may drop the older ones (maxCount 1), set once per stream.
    if (!current) await this.client.setStreamMetadata(stream, { maxCount: 1 });
    await this.client.appendToStream(
      stream,
      jsonEvent({ type: SNAPSHOT_EVENT_TYPE, data: { revision: snapshot.revision, state: snapshot.state } }),
      { streamState: ANY },
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.client.dispose();
  }
}
