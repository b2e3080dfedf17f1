import type { AllStreamResolvedEvent, Position } from '@kurrent/kurrentdb-client';
import { ANY, NO_STREAM, START, WrongExpectedVersionError } from '@kurrent/kurrentdb-client';
import type { StreamAppend } from '../../core-ledger';
import { KurrentDbMappings, LOG_START, WrongExpectedRevisionError } from '../../core-ledger';
import { describeEventStoreContract } from './event-store.contract';

const {
  decodeMetadata,
  ENCODED_METADATA_KEY,
  encodeMultiStreamMetadata,
  fromStreamState,
  isPastExpected,
  isSystemEvent,
  KurrentDbEventStore,
  matchesExpected,
  positionOf,
  toClientPosition,
  toReadPosition,
  toRecordedEvent,
  toStreamState,
  toWrongExpectedRevisionError,
  validateConnectionString,
} = KurrentDbMappings;

// No KurrentDB server can run on this machine: the shared contract runs when KURRENTDB_URL names one
// (e.g. kurrentdb://localhost:2113?tls=false); otherwise the adapter's pure mappings are tested here.
const url = process.env.KURRENTDB_URL;

if (url) {
  describeEventStoreContract('kurrentdb', async () => KurrentDbEventStore.connect(url));
} else {
  const append = (streamId: string, expected: StreamAppend['expected']): StreamAppend => ({
    streamId,
    expected,
    events: [{ eventId: '00000000-0000-4000-8000-000000000001', type: 'Numbered', data: { n: '0' } }],
  });

  describe('KurrentDB adapter (no server): connection strings', () => {
    test.each([
      'kurrentdb://localhost:2113?tls=false',
      'kurrent://node1:2113?tls=true',
      'kdb://node1',
      'esdb://node1:2113?tls=false',
      'kurrentdb+discover://node1:2113,node2:2113',
    ])('accepts %s', (good) => {
      expect(validateConnectionString(good)).toBe(good);
    });

    test.each([
      'http://localhost:2113',
      'postgresql://localhost/carbonpay',
      '',
      'localhost:2113',
      'kurrentdb:/localhost',
      ' kurrentdb://localhost:2113',
      'tcp://localhost:1113',
    ])('refuses %j with a clear message', (bad) => {
      expect(() => validateConnectionString(bad)).toThrow(
        /KurrentDB connection string must start with kurrentdb:\/\/, kurrent:\/\/, kdb:\/\/ or esdb:\/\//,
      );
    });

    test('connect refuses a bad string before creating any client', () => {
      expect(() => KurrentDbEventStore.connect('http://localhost:2113')).toThrow(/must start with kurrentdb:\/\//);
    });
  });

  describe('KurrentDB adapter (no server): expected revisions and stream states', () => {
    test('no_stream, any and exact revisions map to the client stream states', () => {
      expect(toStreamState('no_stream')).toBe(NO_STREAM);
      expect(toStreamState('any')).toBe(ANY);
      expect(toStreamState(0)).toBe(0n);
      expect(toStreamState(41)).toBe(41n);
      expect(toStreamState(Number.MAX_SAFE_INTEGER)).toBe(BigInt(Number.MAX_SAFE_INTEGER));
    });

    test('a revision that is not a non-negative safe integer is refused', () => {
      for (const bad of [-1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 1]) {
        expect(() => toStreamState(bad)).toThrow(RangeError);
      }
    });

    test('the actual state of a stream maps back to a revision, or undefined when there is no stream', () => {
      expect(fromStreamState(NO_STREAM)).toBeUndefined();
      expect(fromStreamState(0n)).toBe(0);
      expect(fromStreamState(7n)).toBe(7);
      expect(fromStreamState(-5n)).toBeUndefined(); // the server's marker of a deleted stream
    });

    test('a stream matches what an append expected', () => {
      expect(matchesExpected('any', undefined)).toBe(true);
      expect(matchesExpected('any', 9)).toBe(true);
      expect(matchesExpected('no_stream', undefined)).toBe(true);
      expect(matchesExpected('no_stream', 0)).toBe(false);
      expect(matchesExpected(3, 3)).toBe(true);
      expect(matchesExpected(3, 4)).toBe(false);
      expect(matchesExpected(0, undefined)).toBe(false);
    });

    test('only a stream already past the expected revision makes a successful append idempotent', () => {
      expect(isPastExpected(2, 4)).toBe(true);
      expect(isPastExpected('no_stream', 0)).toBe(true);
      expect(isPastExpected(2, 2)).toBe(false);
      expect(isPastExpected(2, 1)).toBe(false);
      expect(isPastExpected(0, undefined)).toBe(false);
      expect(isPastExpected('no_stream', undefined)).toBe(false);
      expect(isPastExpected('any', 10)).toBe(false);
    });
  });

  describe('KurrentDB adapter (no server): log positions', () => {
    const positions: Position[] = [
      { commit: 0n, prepare: 0n },
      { commit: 9n, prepare: 9n },
      { commit: 10n, prepare: 10n },
      { commit: 12_345_678_901_234n, prepare: 12_345_678_901_200n },
      { commit: 12_345_678_901_234n, prepare: 12_345_678_901_234n },
      { commit: 2n ** 63n - 1n, prepare: 2n ** 63n - 1n },
      { commit: 2n ** 64n - 1n, prepare: 2n ** 64n - 1n },
    ];

    test('encode then decode gives the same bigint commit and prepare back', () => {
      for (const p of positions) {
        const encoded = positionOf(p);
        expect(encoded).toMatch(/^\d{20}:\d{20}$/);
        expect(toClientPosition(encoded)).toEqual(p);
        expect(toReadPosition(encoded)).toEqual(p);
      }
    });

    test('encoded positions sort as strings in log order', () => {
      const encoded = positions.map(positionOf);
      const shuffled = [encoded[4]!, encoded[0]!, encoded[6]!, encoded[2]!, encoded[5]!, encoded[1]!, encoded[3]!];
      expect([...shuffled].sort()).toEqual(encoded);
      for (let i = 1; i < encoded.length; i++) expect(encoded[i - 1]! < encoded[i]!).toBe(true);
    });

    test('the start of the log reads from START; a malformed position is refused', () => {
      expect(toReadPosition(LOG_START)).toBe(START);
      expect(() => toClientPosition('12:34')).toThrow(/malformed log position/);
    });
  });

  describe('KurrentDB adapter (no server): wrong expected version', () => {
    test('a WrongExpectedVersionError becomes a WrongExpectedRevisionError with the actual revision', () => {
      const error = new WrongExpectedVersionError(undefined, { streamName: 'account-1', expected: 2n, current: 3n });
      const mapped = toWrongExpectedRevisionError(error, [append('account-1', 2)]);
      expect(mapped).toBeInstanceOf(WrongExpectedRevisionError);
      expect(mapped.code).toBe('wrong_expected_revision');
      expect(mapped.conflicts).toEqual([{ streamId: 'account-1', expected: 2, actual: 3 }]);
      expect(mapped.message).toBe('wrong expected revision: account-1 expected 2 actual 3');
    });

    test('a stream that does not exist has no actual revision', () => {
      const error = new WrongExpectedVersionError(undefined, {
        streamName: 'account-2',
        expected: 0n,
        current: NO_STREAM,
      });
      const mapped = toWrongExpectedRevisionError(error, [append('account-2', 0)]);
      expect(mapped.conflicts).toEqual([{ streamId: 'account-2', expected: 0, actual: undefined }]);
      expect(mapped.message).toContain('actual no_stream');
    });

    test('in a multi-stream append, every stream that did not match is named, in request order', () => {
      const error = new WrongExpectedVersionError(undefined, {
        streamName: 'transfer-9',
        expected: NO_STREAM,
        current: 0n,
      });
      const appends = [append('account-1', 'no_stream'), append('transfer-9', 'no_stream'), append('account-3', 5)];
      appends.push(append('account-4', 'any'));
      const actual = new Map<string, number | undefined>([
        ['account-1', 4],
        ['account-3', 5],
      ]);
      const mapped = toWrongExpectedRevisionError(error, appends, actual);
      expect(mapped.conflicts).toEqual([
        { streamId: 'account-1', expected: 'no_stream', actual: 4 },
        { streamId: 'transfer-9', expected: 'no_stream', actual: 0 },
      ]);
    });

    test('the stream the server names is matched to the append case-insensitively, as the server does', () => {
      const error = new WrongExpectedVersionError(undefined, { streamName: 'Account-1', expected: 1n, current: 2n });
      const mapped = toWrongExpectedRevisionError(error, [append('account-1', 1), append('account-2', 0)]);
      expect(mapped.conflicts).toEqual([{ streamId: 'account-1', expected: 1, actual: 2 }]);
    });
  });

  describe('KurrentDB adapter (no server): event metadata and recorded events', () => {
    test('flat string metadata goes to multiStreamAppend as it is; anything else JSON-encoded under one key', () => {
      expect(encodeMultiStreamMetadata(undefined)).toBeUndefined();
      expect(encodeMultiStreamMetadata({})).toBeUndefined();
      expect(encodeMultiStreamMetadata({ source: 'pos', operator: '7' })).toEqual({ source: 'pos', operator: '7' });
      const nested = { source: 'pos', attempt: 2, tags: ['a'], ok: true, none: null };
      expect(encodeMultiStreamMetadata(nested)).toEqual({ [ENCODED_METADATA_KEY]: JSON.stringify(nested) });
      expect(encodeMultiStreamMetadata({ $correlationId: 'x' })).toEqual({
        [ENCODED_METADATA_KEY]: JSON.stringify({ $correlationId: 'x' }),
      });
    });

    test('metadata read back drops server schema properties and decodes the encoded form', () => {
      expect(decodeMetadata({ '$schema.format': 'Json', '$schema.name': 'Numbered', source: 'pos' })).toEqual({
        source: 'pos',
      });
      const nested = { attempt: 2, tags: ['a'], deep: { x: '1' } };
      const encoded = { ...encodeMultiStreamMetadata(nested), '$schema.name': 'Numbered' };
      expect(decodeMetadata(encoded)).toEqual(nested);
      expect(decodeMetadata({ $correlationId: 'c-1', n: 1 })).toEqual({ $correlationId: 'c-1', n: 1 });
      expect(decodeMetadata(undefined)).toEqual({});
      expect(decodeMetadata(new Uint8Array([1, 2]))).toEqual({});
      expect(decodeMetadata(['not', 'an', 'object'])).toEqual({});
    });

    const created = new Date('2026-01-02T03:04:05.678Z');
    const resolved = (event: Record<string, unknown> | undefined): AllStreamResolvedEvent =>
      // The client's recorded event type is a conditional type over event shapes: a test double is built loosely.
      ({ event }) as unknown as AllStreamResolvedEvent;

    test('a recorded JSON event maps field by field', () => {
      const recorded = toRecordedEvent(
        resolved({
          streamId: 'account-1',
          id: '7f0c6c1e-0000-4000-8000-000000000001',
          isJson: true,
          revision: 4n,
          type: 'AccountPosted',
          created,
          data: { amount: '12.30' },
          metadata: { '$schema.format': 'Json', source: 'pos' },
          position: { commit: 1_234n, prepare: 1_234n },
        }),
      );
      expect(recorded).toEqual({
        eventId: '7f0c6c1e-0000-4000-8000-000000000001',
        type: 'AccountPosted',
        data: { amount: '12.30' },
        metadata: { source: 'pos' },
        streamId: 'account-1',
        revision: 4,
        position: positionOf({ commit: 1_234n, prepare: 1_234n }),
        recordedAt: '2026-01-02T03:04:05.678Z',
      });
    });

    test('JSON carried as bytes is decoded; other bytes, links and empty events are not events of the log', () => {
      const base = {
        streamId: 'account-1',
        id: '7f0c6c1e-0000-4000-8000-000000000002',
        revision: 0n,
        type: 'AccountOpened',
        created,
        metadata: undefined,
        position: { commit: 5n, prepare: 5n },
      };
      const bytes = toRecordedEvent(resolved({ ...base, isJson: false, data: Buffer.from('{"name":"碳普惠"}') }));
      expect(bytes?.data).toEqual({ name: '碳普惠' });
      expect(bytes?.metadata).toEqual({});
      expect(toRecordedEvent(resolved({ ...base, isJson: false, data: new Uint8Array([0xff, 0x00]) }))).toBeUndefined();
      expect(toRecordedEvent(resolved({ ...base, isJson: true, data: '0@account-1' }))).toBeUndefined();
      expect(toRecordedEvent(resolved(undefined))).toBeUndefined();
    });

    test('system events are recognised by a $-prefixed type or stream', () => {
      expect(isSystemEvent('$metadata', '$$account-1')).toBe(true);
      expect(isSystemEvent('$>', 'account-1')).toBe(true);
      expect(isSystemEvent('$statsCollected', '$stats-127.0.0.1:2113')).toBe(true);
      expect(isSystemEvent('AccountOpened', 'account-1')).toBe(false);
    });
  });
}
