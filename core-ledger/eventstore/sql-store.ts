import { Observable } from 'rxjs';
import type {
  AppendOptions,
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
  DuplicateEventIdError,
  encodePosition,
  readCountWithin,
  LOG_START,
  PredecessorNotWrittenError,
  WrongExpectedRevisionError,
} from './port';
import { EVENT_STORE_NOTIFY_CHANNEL, EVENT_STORE_SCHEMA_SQL } from './sql-schema';

/** What the SQL event store needs of a database: PostgreSQL through `pg`, or PGlite in-process. */
export interface SqlDriver {
  readonly name: string;
  query<Row>(text: string, params?: readonly unknown[]): Promise<Row[]>;
  /**
   * Like `query`, on one connection kept for writes: statements run in the order they are issued. A writer with
   * several batches in flight relies on it: a later batch, decided on top of an earlier one, never overtakes it.
   */
  queryInOrder<Row>(text: string, params?: readonly unknown[]): Promise<Row[]>;
  exec(script: string): Promise<void>;
  /** Calls `onNotify` on each NOTIFY on the channel; resolves to a function that stops listening. */
  listen(channel: string, onNotify: () => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export class SqlError extends Error {
  constructor(
    message: string,
    readonly sqlState: string | undefined,
    readonly detail: string | undefined,
    readonly constraint: string | undefined,
  ) {
    super(message);
  }
}

/** Normalises a driver error into the fields the store reads (pg and PGlite name them alike). */
export function asSqlError(error: unknown): SqlError | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as { message?: unknown; code?: unknown; detail?: unknown; constraint?: unknown };
  if (typeof e.code !== 'string') return undefined;
  return new SqlError(
    String(e.message),
    e.code,
    typeof e.detail === 'string' ? e.detail : undefined,
    typeof e.constraint === 'string' ? e.constraint : undefined,
  );
}

const RETRYABLE_SQL_STATES = new Set(['40P01', '40001']);
const MAX_TRANSIENT_RETRIES = 5;
const SUBSCRIPTION_POLL_MS = 100;

interface EventRow {
  event_id: string;
  type: string;
  data: JsonObject;
  metadata: JsonObject;
  stream_id: string;
  revision_text: string;
  tx: string;
  seq_text: string;
  recorded_at: string;
}

// Output names differ from column names on purpose: an ORDER BY must never bind to a text alias.
const EVENT_COLUMNS = `event_id::text AS event_id, type, data, metadata, stream_id, revision::text AS revision_text,
  tx_id::text AS tx, seq::text AS seq_text, to_json(recorded_at) #>> '{}' AS recorded_at`;

/** The event store on SQL: one implementation for PostgreSQL and PGlite. */
export class SqlEventStore implements EventStore {
  /** Appends go through the driver's one connection for writes (`queryInOrder`), in the order issued. */
  readonly appendsInOrder = true;

  private constructor(
    /** The database it runs on; read models in the same database share it (PGlite has one connection). */
    readonly driver: SqlDriver,
    readonly name: string,
  ) {}

  static async open(driver: SqlDriver): Promise<SqlEventStore> {
    await driver.exec(EVENT_STORE_SCHEMA_SQL);
    return new SqlEventStore(driver, driver.name);
  }

  async append(streamId: string, events: readonly NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    return this.appendMany([{ streamId, events, expected }]);
  }

  async appendMany(appends: readonly StreamAppend[], options: AppendOptions = {}): Promise<AppendResult> {
    assertAppendsValid(appends);
    const onlyAfter = options.onlyAfter ?? null;
    const streams = appends.map((a) => ({ id: a.streamId, e: expectedCode(a.expected) }));
    const events: unknown[] = [];
    appends.forEach((a, s) =>
      a.events.forEach((e, k) =>
        events.push({ s, k: k + 1, i: e.eventId, t: e.type, d: e.data, m: e.metadata ?? null }),
      ),
    );
    const streamsJson = JSON.stringify(streams);
    const eventsJson = JSON.stringify(events);
    for (let attempt = 0; ; attempt++) {
      try {
        const rows = await this.driver.queryInOrder<{ bases: (string | number)[]; log_tx: string; log_seq: string }>(
          'SELECT bases, log_tx, log_seq FROM cp_append($1::json, $2::json, $3::uuid)',
          [streamsJson, eventsJson, onlyAfter],
        );
        const row = rows[0]!;
        return {
          nextRevisions: appends.map((a, o) => Number(row.bases[o]) + a.events.length),
          position: encodePosition(BigInt(row.log_tx), BigInt(row.log_seq)),
          idempotent: false,
        };
      } catch (error) {
        const sqlError = asSqlError(error);
        if (sqlError?.sqlState && RETRYABLE_SQL_STATES.has(sqlError.sqlState) && attempt < MAX_TRANSIENT_RETRIES) {
          await new Promise((r) => setTimeout(r, 1 + Math.random() * 5 * (attempt + 1)));
          continue;
        }
        if (sqlError?.sqlState === 'CP412' && onlyAfter !== null) throw new PredecessorNotWrittenError(onlyAfter);
        if (sqlError?.sqlState === 'CP409') {
          const idempotent = await this.idempotentResult(appends);
          if (idempotent) return idempotent;
          throw new WrongExpectedRevisionError(parseConflicts(sqlError.detail));
        }
        if (sqlError?.sqlState === '23505' && sqlError.constraint === 'cp_events_event_id') {
          const idempotent = await this.idempotentResult(appends);
          if (idempotent) return idempotent;
          throw new DuplicateEventIdError(/\(event_id\)=\(([^)]+)\)/.exec(sqlError.detail ?? '')?.[1] ?? 'unknown');
        }
        throw error;
      }
    }
  }

  /** When every event of the append already stands where it would have gone, the append succeeded before. */
  private async idempotentResult(appends: readonly StreamAppend[]): Promise<AppendResult | undefined> {
    const ids = appends.flatMap((a) => a.events.map((e) => e.eventId));
    const rows = await this.driver.query<{
      event_id: string;
      stream_id: string;
      revision: string;
      tx: string;
      seq: string;
    }>(
      `SELECT event_id::text AS event_id, stream_id, revision::text AS revision, tx_id::text AS tx, seq::text AS seq
         FROM cp_events WHERE event_id = ANY($1::uuid[])`,
      [ids],
    );
    if (rows.length !== ids.length) return undefined;
    const byId = new Map(rows.map((r) => [r.event_id, r]));
    let position = LOG_START;
    const nextRevisions: number[] = [];
    for (const a of appends) {
      const first = byId.get(a.events[0]!.eventId)!;
      const firstRevision = Number(first.revision);
      if (first.stream_id !== a.streamId) return undefined;
      if (typeof a.expected === 'number' && firstRevision !== a.expected + 1) return undefined;
      if (a.expected === 'no_stream' && firstRevision !== 0) return undefined;
      for (let i = 0; i < a.events.length; i++) {
        const row = byId.get(a.events[i]!.eventId)!;
        if (row.stream_id !== a.streamId || Number(row.revision) !== firstRevision + i) return undefined;
        const rowPosition = encodePosition(BigInt(row.tx), BigInt(row.seq));
        if (rowPosition > position) position = rowPosition;
      }
      nextRevisions.push(firstRevision + a.events.length - 1);
    }
    return { nextRevisions, position, idempotent: true };
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    const rows = await this.driver.query<EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM cp_events WHERE stream_id = $1 AND revision >= $2 ORDER BY cp_events.revision LIMIT $3`,
      [streamId, options.fromRevision ?? 0, readCountWithin(options.maxCount)],
    );
    return rows.map(toRecorded);
  }

  async streamRevision(streamId: string): Promise<number | undefined> {
    const rows = await this.driver.query<{ revision: string | null }>(
      'SELECT max(revision)::text AS revision FROM cp_events WHERE stream_id = $1',
      [streamId],
    );
    const revision = rows[0]?.revision;
    return revision === null || revision === undefined ? undefined : Number(revision);
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    const after = decodePosition(options.after ?? LOG_START);
    const rows = await this.driver.query<EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM cp_events
        WHERE (tx_id, seq) > ($1::text::xid8, $2::bigint)
          AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY cp_events.tx_id, cp_events.seq LIMIT $3`,
      [after.major.toString(), after.minor.toString(), readCountWithin(options.maxCount)],
    );
    return rows.map(toRecorded);
  }

  subscribeAll(options: SubscribeOptions = {}): Observable<RecordedEvent> {
    return new Observable<RecordedEvent>((subscriber) => {
      let after = options.after ?? LOG_START;
      let stopped = false;
      let wake: (() => void) | undefined;
      let unlisten: (() => Promise<void>) | undefined;
      const batchSize = readCountWithin(options.batchSize);
      const run = async (): Promise<void> => {
        unlisten = await this.driver.listen(EVENT_STORE_NOTIFY_CHANNEL, () => wake?.());
        while (!stopped) {
          const events = await this.readAll({ after, maxCount: batchSize });
          for (const event of events) {
            if (stopped) return;
            subscriber.next(event);
            after = event.position;
          }
          if (events.length < batchSize && !stopped) {
            await new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, SUBSCRIPTION_POLL_MS);
              wake = () => {
                clearTimeout(timer);
                resolve();
              };
            });
            wake = undefined;
          }
        }
      };
      run().catch((error: unknown) => {
        if (!stopped) subscriber.error(error);
      });
      return () => {
        stopped = true;
        wake?.();
        void unlisten?.();
      };
    });
  }

  async readSnapshot(streamId: string): Promise<Snapshot | undefined> {
    const rows = await this.driver.query<{ revision: string; state: JsonObject }>(
      'SELECT revision::text AS revision, state FROM cp_snapshots WHERE stream_id = $1',
      [streamId],
    );
    return rows[0] ? { streamId, revision: Number(rows[0].revision), state: rows[0].state } : undefined;
  }

  async writeSnapshot(snapshot: Snapshot): Promise<void> {
    await this.driver.query(
      `INSERT INTO cp_snapshots (stream_id, revision, state) VALUES ($1, $2, $3::jsonb)
       ON CONFLICT (stream_id) DO UPDATE SET revision = excluded.revision, state = excluded.state, written_at = now()
       WHERE cp_snapshots.revision < excluded.revision`,
      [snapshot.streamId, snapshot.revision, JSON.stringify(snapshot.state)],
    );
  }

  async close(): Promise<void> {
    await this.driver.close();
  }
}

function expectedCode(expected: ExpectedRevision): number {
  return expected === 'no_stream' ? -1 : expected === 'any' ? -2 : expected;
}

function parseConflicts(detail: string | undefined): StreamConflict[] {
  const items = JSON.parse(detail ?? '[]') as { streamId: string; expected: number; actual: number | null }[];
  return items.map((c) => ({
    streamId: c.streamId,
    expected: c.expected === -1 ? 'no_stream' : c.expected === -2 ? 'any' : Number(c.expected),
    actual: c.actual === null ? undefined : Number(c.actual),
  }));
}

function toRecorded(row: EventRow): RecordedEvent {
  return {
    eventId: row.event_id,
    type: row.type,
    data: row.data,
    metadata: row.metadata,
    streamId: row.stream_id,
    revision: Number(row.revision_text),
    position: encodePosition(BigInt(row.tx), BigInt(row.seq_text)),
    recordedAt: new Date(row.recorded_at).toISOString(),
  };
}
