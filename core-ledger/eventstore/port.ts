import type { Observable } from 'rxjs';

/** JSON-serialisable value; amounts inside are always decimal strings, never numbers. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/**
 * The revision a stream must be at for an append to succeed.
 * - a number: the revision of the stream's last event (0-based), exactly;
 * - 'no_stream': the stream must not exist yet;
 * - 'any': no check.
 */
export type ExpectedRevision = number | 'no_stream' | 'any';

/**
 * A position in the global log. Opaque to callers, but ordered: for any two positions of one store,
 * `a < b` (string comparison) iff a comes first. Every adapter pads its numbers so this holds.
 */
export type LogPosition = string;

/**
 * Events written by one atomic append share the major part of their position, and no other event has it: a reader
 * that stops only where the major part changes never sees half an append (read models stay balanced per batch).
 */
export function appendOf(position: LogPosition): string {
  return position.slice(0, position.indexOf(':'));
}
export const LOG_START: LogPosition = '';

export interface NewEvent {
  /** UUID; deterministic ids make a retried append idempotent. */
  readonly eventId: string;
  readonly type: string;
  readonly data: JsonObject;
  readonly metadata?: JsonObject;
}

export interface RecordedEvent {
  readonly eventId: string;
  readonly type: string;
  readonly data: JsonObject;
  readonly metadata: JsonObject;
  readonly streamId: string;
  readonly revision: number;
  readonly position: LogPosition;
  /** ISO-8601, set by the store when the event was recorded. */
  readonly recordedAt: string;
}

export interface StreamAppend {
  readonly streamId: string;
  readonly expected: ExpectedRevision;
  readonly events: readonly NewEvent[];
}

export interface AppendResult {
  /** Revision of the last event of each stream after the append, in request order. */
  readonly nextRevisions: readonly number[];
  /** Position of the last event written (or of the matching events when the append was idempotent). */
  readonly position: LogPosition;
  /** True when every event already stood where the append would have put it: a retry, nothing written. */
  readonly idempotent?: boolean;
}

export interface AppendOptions {
  /**
   * The first event id of an append issued before this one, on the same store, whose answer has not come back yet.
   * This append is written only if that one was; otherwise it raises {@link PredecessorNotWrittenError} and writes
   * nothing. Only for a store whose `appendsInOrder` is true (it runs appends in the order they were issued).
   */
  readonly onlyAfter?: string;
}

export interface ReadStreamOptions {
  readonly fromRevision?: number;
  readonly maxCount?: number;
}

export interface ReadAllOptions {
  /** Exclusive: the first event returned comes after this position. */
  readonly after?: LogPosition;
  readonly maxCount?: number;
}

export interface SubscribeOptions {
  readonly after?: LogPosition;
  /** Events fetched per read while catching up. */
  readonly batchSize?: number;
}

export interface Snapshot {
  readonly streamId: string;
  /** Revision of the last event folded into the state. */
  readonly revision: number;
  readonly state: JsonObject;
}

/**
 * The event store port. Every adapter passes `tests/int/event-store.contract.ts`.
 *
 * `appendMany` is atomic across streams: all appends succeed or none is written. A conflict on any stream
 * raises {@link WrongExpectedRevisionError} naming every stream that did not match.
 */
export interface EventStore {
  readonly name: string;
  /**
   * True when appends run one after another in the order they were issued, so that an append may be issued before
   * the previous one's answer and made conditional on it ({@link AppendOptions.onlyAfter}).
   */
  readonly appendsInOrder: boolean;
  append(streamId: string, events: readonly NewEvent[], expected: ExpectedRevision): Promise<AppendResult>;
  appendMany(appends: readonly StreamAppend[], options?: AppendOptions): Promise<AppendResult>;
  readStream(streamId: string, options?: ReadStreamOptions): Promise<RecordedEvent[]>;
  /** The revision of the stream's last event, or undefined when the stream does not exist. */
  streamRevision(streamId: string): Promise<number | undefined>;
  readAll(options?: ReadAllOptions): Promise<RecordedEvent[]>;
  /** Catch-up then live: every event after `after`, in log order, at least once. Never skips a committed event. */
  subscribeAll(options?: SubscribeOptions): Observable<RecordedEvent>;
  readSnapshot(streamId: string): Promise<Snapshot | undefined>;
  /** Snapshots are disposable caches: a later snapshot replaces an earlier one, an older one is ignored. */
  writeSnapshot(snapshot: Snapshot): Promise<void>;
  close(): Promise<void>;
}

export interface StreamConflict {
  readonly streamId: string;
  readonly expected: ExpectedRevision;
  /** undefined when the stream does not exist */
  readonly actual: number | undefined;
}

export class WrongExpectedRevisionError extends Error {
  readonly code = 'wrong_expected_revision';
  constructor(readonly conflicts: readonly StreamConflict[]) {
    super(
      'wrong expected revision: ' +
        conflicts
          .map(
            (c) =>
              `${c.streamId} expected ${String(c.expected)} actual ${c.actual === undefined ? 'no_stream' : c.actual}`,
          )
          .join('; '),
    );
    this.name = 'WrongExpectedRevisionError';
  }
}

/** Bounds every adapter enforces (TIGER_STYLE: a limit on everything). */
export const EVENT_STORE_LIMITS = {
  maxEventsPerAppend: 100_000,
  maxReadCount: 10_000,
  defaultReadCount: 1_000,
  maxStreamIdLength: 200,
} as const;

/** How many events a read returns: what was asked, within 1..maxReadCount (every adapter reads the same way). */
export function readCountWithin(maxCount: number | undefined): number {
  return Math.max(1, Math.min(maxCount ?? EVENT_STORE_LIMITS.defaultReadCount, EVENT_STORE_LIMITS.maxReadCount));
}

/** Position encoding shared by adapters: two non-negative integers, zero-padded to 20 digits. */
export function encodePosition(major: bigint | number, minor: bigint | number): LogPosition {
  return `${major.toString().padStart(20, '0')}:${minor.toString().padStart(20, '0')}`;
}

export function decodePosition(position: LogPosition): { major: bigint; minor: bigint } {
  if (position === LOG_START) return { major: 0n, minor: 0n };
  const match = /^(\d{20}):(\d{20})$/.exec(position);
  if (!match) throw new Error(`malformed log position: ${position}`);
  return { major: BigInt(match[1]!), minor: BigInt(match[2]!) };
}

export function assertAppendsValid(appends: readonly StreamAppend[]): void {
  const seen = new Set<string>();
  let total = 0;
  for (const a of appends) {
    if (a.streamId.length === 0 || a.streamId.length > EVENT_STORE_LIMITS.maxStreamIdLength) {
      throw new RangeError(`stream id length must be 1..${EVENT_STORE_LIMITS.maxStreamIdLength}`);
    }
    if (seen.has(a.streamId)) throw new RangeError(`stream ${a.streamId} appears twice in one append`);
    if (a.events.length === 0) throw new RangeError(`append to ${a.streamId} has no events`);
    seen.add(a.streamId);
    if (typeof a.expected === 'number' && (!Number.isSafeInteger(a.expected) || a.expected < 0)) {
      throw new RangeError(`expected revision must be a non-negative integer, 'no_stream' or 'any'`);
    }
    total += a.events.length;
  }
  if (total > EVENT_STORE_LIMITS.maxEventsPerAppend) {
    throw new RangeError(`append of ${total} events exceeds ${EVENT_STORE_LIMITS.maxEventsPerAppend}`);
  }
}

/** The append an {@link AppendOptions.onlyAfter} named was not written: this one was not either. */
export class PredecessorNotWrittenError extends Error {
  readonly code = 'predecessor_not_written';
  constructor(readonly predecessorEventId: string) {
    super(`the append before (event ${predecessorEventId}) was not written; nothing was written`);
    this.name = 'PredecessorNotWrittenError';
  }
}

/** Refuses {@link AppendOptions.onlyAfter} on a store that cannot order appends. */
export function assertNoPredecessor(storeName: string, options: AppendOptions | undefined): void {
  if (options?.onlyAfter !== undefined)
    throw new RangeError(`${storeName} does not run appends in the order issued: onlyAfter is not supported`);
}

/** An event id already stored elsewhere than where this append would put it. */
export class DuplicateEventIdError extends Error {
  readonly code = 'duplicate_event_id';
  constructor(readonly eventId: string) {
    super(`event id ${eventId} is already stored at another position`);
    this.name = 'DuplicateEventIdError';
  }
}
