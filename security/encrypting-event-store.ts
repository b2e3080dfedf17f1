import { map } from 'rxjs';
import type { Observable } from 'rxjs';
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
  SubscribeOptions,
} from '../core-ledger';
import type { FieldCipher } from './field-encryption';

/**
 * Which fields of which events and snapshots hold personal data, as data. The ledger (and its decider) sees
 * plaintext; the log and the snapshots hold only sealed values.
 */
export const SENSITIVE_EVENT_FIELDS: Readonly<Record<string, readonly string[]>> = {
  AccountOpened: ['cardNumber', 'accountNumber'],
  CardReplaced: ['oldCardNumber', 'newCardNumber'],
};

/** Account snapshots carry the same fields as the account state. */
export const SENSITIVE_SNAPSHOT_FIELDS: readonly string[] = ['cardNumber', 'accountNumber'];

/**
 * An event store that seals personal data on the way in and opens it on the way out. Projections read the inner
 * store: the read models keep sealed values, and only the API, for a role that may unmask, opens them.
 */
export class EncryptingEventStore implements EventStore {
  constructor(
    private readonly inner: EventStore,
    private readonly cipher: FieldCipher,
  ) {}

  get name(): string {
    return this.inner.name;
  }

  /** Sealing is synchronous: appends reach the inner store in the order they were issued. */
  get appendsInOrder(): boolean {
    return this.inner.appendsInOrder;
  }

  append(streamId: string, events: readonly NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    return this.inner.append(
      streamId,
      events.map((e) => this.sealEvent(e)),
      expected,
    );
  }

  appendMany(appends: readonly StreamAppend[], options?: AppendOptions): Promise<AppendResult> {
    return this.inner.appendMany(
      appends.map((a) => ({ ...a, events: a.events.map((e) => this.sealEvent(e)) })),
      options,
    );
  }

  async readStream(streamId: string, options?: ReadStreamOptions): Promise<RecordedEvent[]> {
    return (await this.inner.readStream(streamId, options)).map((e) => this.openEvent(e));
  }

  streamRevision(streamId: string): Promise<number | undefined> {
    return this.inner.streamRevision(streamId);
  }

  async readAll(options?: ReadAllOptions): Promise<RecordedEvent[]> {
    return (await this.inner.readAll(options)).map((e) => this.openEvent(e));
  }

  subscribeAll(options?: SubscribeOptions): Observable<RecordedEvent> {
    return this.inner.subscribeAll(options).pipe(map((e) => this.openEvent(e)));
  }

  async readSnapshot(streamId: string): Promise<Snapshot | undefined> {
    const snapshot = await this.inner.readSnapshot(streamId);
    return snapshot && { ...snapshot, state: this.transform(snapshot.state, SENSITIVE_SNAPSHOT_FIELDS, 'open') };
  }

  writeSnapshot(snapshot: Snapshot): Promise<void> {
    return this.inner.writeSnapshot({
      ...snapshot,
      state: this.transform(snapshot.state, SENSITIVE_SNAPSHOT_FIELDS, 'seal'),
    });
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private sealEvent<E extends NewEvent>(event: E): E {
    const fields = SENSITIVE_EVENT_FIELDS[event.type];
    return fields ? { ...event, data: this.transform(event.data, fields, 'seal') } : event;
  }

  private openEvent(event: RecordedEvent): RecordedEvent {
    const fields = SENSITIVE_EVENT_FIELDS[event.type];
    return fields ? { ...event, data: this.transform(event.data, fields, 'open') } : event;
  }

  private transform(data: JsonObject, fields: readonly string[], direction: 'seal' | 'open'): JsonObject {
    let copy: Record<string, unknown> | undefined;
    for (const field of fields) {
      const value = data[field];
      if (typeof value !== 'string') continue;
      copy ??= { ...data };
      copy[field] = direction === 'seal' ? this.cipher.seal(field, value) : this.cipher.open(field, value);
    }
    return (copy ?? data) as JsonObject;
  }
}
