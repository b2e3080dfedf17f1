import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataFolderLockedError, openPgliteEventStore } from '../../core-ledger';
import { describeEventStoreContract } from './event-store.contract';

const folder = mkdtempSync(join(tmpdir(), 'carbonpay-pglite-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

describeEventStoreContract('pglite', async () => openPgliteEventStore(join(folder, 'contract')));

describe('pglite data folder lock', () => {
  test('a second open of the same folder is refused while the first holds it, and allowed after close', async () => {
    const dataDir = join(folder, 'locked');
    const first = await openPgliteEventStore(dataDir);
    await expect(openPgliteEventStore(dataDir)).rejects.toBeInstanceOf(DataFolderLockedError);
    await first.close();
    const second = await openPgliteEventStore(dataDir);
    expect(await second.streamRevision('nothing')).toBeUndefined();
    await second.close();
  });
});
