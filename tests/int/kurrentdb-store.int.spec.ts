import { WrongExpectedVersionError } from '@kurrent/kurrentdb-client';
import {
  decodePosition,
  fromStreamState,
  KurrentDbEventStore,
  positionOf,
  toConflict,
  toStreamState,
  validateKurrentDbConnectionString,
} from '../../core-ledger';
import { describeEventStoreContract } from './event-store.contract';

// No KurrentDB server can run on this machine (docs/decisions.md): the shared contract runs against a server
// only when KURRENTDB_URL names one; the adapter's own mappings are tested here either way.
const url = process.env['KURRENTDB_URL'];
if (url) describeEventStoreContract('kurrentdb', async () => KurrentDbEventStore.connect(url));

describe('KurrentDB adapter mappings', () => {
  test('connection strings: the four schemes, anything else refused', () => {
    for (const good of [
      'kurrentdb://localhost:2113?tls=false',
      'kurrent://a:2113',
      'kdb://a',
      'esdb://a:2113',
      'kurrentdb+discover://a',
    ]) {
      expect(validateKurrentDbConnectionString(good)).toBe(good);
    }
    for (const bad of ['http://localhost:2113', 'postgresql://x', ''])
      expect(() => validateKurrentDbConnectionString(bad)).toThrow(/must start with kurrentdb/);
  });

  test('expected revisions map to stream states and back', () => {
    expect(toStreamState('no_stream')).toBe('no_stream');
    expect(toStreamState('any')).toBe('any');
    expect(toStreamState(41)).toBe(41n);
    expect(fromStreamState('no_stream')).toBeUndefined();
    expect(fromStreamState(7n)).toBe(7);
  });

  test('positions keep their order as strings', () => {
    const a = positionOf({ commit: 9n, prepare: 9n });
    const b = positionOf({ commit: 10n, prepare: 10n });
    const c = positionOf({ commit: 12_345_678_901_234n, prepare: 12_345_678_901_200n });
    expect(a < b && b < c).toBe(true);
    expect(decodePosition(c)).toEqual({ major: 12_345_678_901_234n, minor: 12_345_678_901_200n });
  });

  test('a wrong expected version becomes our conflict', () => {
    const error = new WrongExpectedVersionError(undefined, {
      streamName: 'account-1',
      expected: 3n,
      current: 5n,
    } as unknown as ConstructorParameters<typeof WrongExpectedVersionError>[1]);
    const conflict = toConflict(error, 3);
    expect(conflict.streamId).toBe('account-1');
    expect(conflict.expected).toBe(3);
  });

  test('connect refuses a bad string before any network', () => {
    expect(() => KurrentDbEventStore.connect('http://nope')).toThrow(/must start with kurrentdb/);
  });
});
