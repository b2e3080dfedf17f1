import type {
  AllStreamSubscription,
  AppendStreamState,
  CurrentStreamState,
  EventData,
  Position,
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
  WrongExpectedVersionError,
} from '@kurrent/kurrentdb-client';
import { Observable } from 'rxjs';
import type {
  AppendResult,
  EventStore,
  ExpectedRevision,
  JsonObject,
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
  encodePosition,
  readCountWithin,
  LOG_START,
  WrongExpectedRevisionError,
} from './port';

const CONNECTION_STRING = /^(kurrentdb|kurrent|kdb|esdb)(\+discover)?:\/\//;
export const SNAPSHOT_STREAM_PREFIX = 'snapshot-';

export function validateConnectionString(connectionString: string): string {
  if (!CONNECTION_STRING.test(connectionString)) {
    throw new Error(
      `KurrentDB connection string must start with kurrentdb://, kurrent://, kdb:// or esdb://, got ${JSON.stringify(connectionString)}`,
    );
  }
  return connectionString;
}

/** Our expected revision as the client's stream state: exact revisions are bigint, 0-based, as ours. */
export function toStreamState(expected: ExpectedRevision): AppendStreamState {
  return expected === 'no_stream' ? NO_STREAM : expected === 'any' ? ANY : BigInt(expected);
}

export function fromStreamState(state: CurrentStreamState | AppendStreamState): number | undefined | 'any' {
  if (state === NO_STREAM) return undefined;
  if (typeof state === 'bigint') return Number(state);
  return 'any';
}

export function positionOf(position: Position): string {
  return encodePosition(position.commit, position.prepare);
}

export function toConflict(error: WrongExpectedVersionError, expected: ExpectedRevision): StreamConflict {
  const actual = fromStreamState(error.actualState);
  return { streamId: error.streamName, expected, actual: actual === 'any' ? undefined : actual };
}

/**
 * The event store on KurrentDB (EventStoreDB's successor) through `@kurrent/kurrentdb-client`. Appends use exact
 * stream states and the ledger's deterministic event ids, so a retried append is idempotent on the server.
 * Atomic appends to several streams need server 25.1+ (`multiStreamAppend`); older servers have no cross-stream
 * atomicity and are refused for them.
 */
export class KurrentDbEventStore implements EventStore {
  readonly name = 'kurrentdb';

  private constructor(private readonly client: KurrentDBClient) {}

  static connect(connectionString: string): KurrentDbEventStore {
    return new KurrentDbEventStore(KurrentDBClient.connectionString(validateConnectionString(connectionString)));
  }

  async append(streamId: string, events: readonly NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    return this.appendMany([{ streamId, events, expected }]);
  }

  async appendMany(appends: readonly StreamAppend[]): Promise<AppendResult> {
    assertAppendsValid(appends);
    try {
      if (appends.length === 1) {
        const only = appends[0]!;
        const result = await this.client.appendToStream(only.streamId, only.events.map(toEventData), {
          streamState: toStreamState(only.expected),
        });
        return {
          nextRevisions: [Number(result.nextExpectedRevision)],
          position: result.position ? positionOf(result.position) : LOG_START,
        };
      }
      const result = await this.client.multiStreamAppend(
        appends.map((a) => ({
          streamName: a.streamId,
          events: a.events.map(toEventData),
          expectedState: toStreamState(a.expected),
        })),
      );
      return {
        nextRevisions: appends.map((a) =>
          Number(result.responses.find((r) => r.streamName === a.streamId)?.revision ?? -1n),
        ),
        position: encodePosition(result.position, result.position),
      };
    } catch (error) {
      if (error instanceof WrongExpectedVersionError) {
        const expected = appends.find((a) => a.streamId === error.streamName)?.expected ?? 'any';
        throw new WrongExpectedRevisionError([toConflict(error, expected)]);
      }
      throw error;
    }
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    const events: RecordedEvent[] = [];
    try {
      for await (const resolved of this.client.readStream(streamId, {
        fromRevision: BigInt(options.fromRevision ?? 0),
        maxCount: readCountWithin(options.maxCount),
        direction: FORWARDS,
      })) {
        const recorded = toRecorded(resolved);
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
    const after = options.after ?? LOG_START;
    const count = readCountWithin(options.maxCount);
    const events: RecordedEvent[] = [];
    // fromPosition is inclusive on reads: ask for one more and drop the event at exactly `after`.
    for await (const resolved of this.client.readAll({
      fromPosition: after === LOG_START ? START : toPosition(after),
      maxCount: count + 1,
      direction: FORWARDS,
      filter: excludeSystemEvents(),
    })) {
      const recorded = toRecorded(resolved);
      if (!recorded || recorded.position <= after || recorded.streamId.startsWith(SNAPSHOT_STREAM_PREFIX)) continue;
      events.push(recorded);
      if (events.length === count) break;
    }
    return events;
  }

  subscribeAll(options: SubscribeOptions = {}): Observable<RecordedEvent> {
    return new Observable<RecordedEvent>((subscriber) => {
      const after = options.after ?? LOG_START;
      const subscription: AllStreamSubscription = this.client.subscribeToAll({
        fromPosition: after === LOG_START ? START : toPosition(after),
        filter: excludeSystemEvents(),
      });
      subscription.on('data', (resolved: ResolvedEvent) => {
        const recorded = toRecorded(resolved);
        if (recorded && recorded.position > after && !recorded.streamId.startsWith(SNAPSHOT_STREAM_PREFIX))
          subscriber.next(recorded);
      });
      subscription.on('error', (error: Error) => subscriber.error(error));
      return () => {
        void subscription.unsubscribe();
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
        const data = resolved.event?.data as { revision?: number; state?: JsonObject } | undefined;
        if (data && typeof data.revision === 'number' && data.state)
          return { streamId, revision: data.revision, state: data.state };
      }
    } catch (error) {
      if (error instanceof StreamNotFoundError) return undefined;
      throw error;
    }
    return undefined;
  }

  async writeSnapshot(snapshot: Snapshot): Promise<void> {
    const current = await this.readSnapshot(snapshot.streamId);
    if (current && current.revision >= snapshot.revision) return;
    const stream = SNAPSHOT_STREAM_PREFIX + snapshot.streamId;
    await this.client.appendToStream(
      stream,
      jsonEvent({ type: 'Snapshot', data: { revision: snapshot.revision, state: snapshot.state } }),
      { streamState: ANY },
    );
    await this.client.setStreamMetadata(stream, { maxCount: 1 });
  }

  async close(): Promise<void> {
    await this.client.dispose();
  }
}

function toEventData(event: NewEvent): EventData {
  return jsonEvent({ id: event.eventId, type: event.type, data: event.data, metadata: event.metadata ?? {} });
}

function toPosition(position: string): Position {
  const { major, minor } = decodePosition(position);
  return { commit: major, prepare: minor };
}

function toRecorded(resolved: ResolvedEvent): RecordedEvent | undefined {
  const event = resolved.event;
  if (!event || !event.isJson || event.type.startsWith('$')) return undefined;
  const position =
    event.position ??
    (resolved.commitPosition !== undefined
      ? { commit: resolved.commitPosition, prepare: resolved.commitPosition }
      : undefined);
  return {
    eventId: event.id,
    type: event.type,
    data: event.data as JsonObject,
    metadata: (event.metadata as JsonObject | undefined) ?? {},
    streamId: event.streamId,
    revision: Number(event.revision),
    position: position ? positionOf(position) : LOG_START,
    recordedAt: event.created.toISOString(),
  };
}
