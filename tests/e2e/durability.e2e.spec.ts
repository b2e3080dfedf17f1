import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { accountStreamId, Ledger, openPostgresEventStore, transferStreamId } from '../../core-ledger';
import { createTestDatabase } from '../support/databases';
import { replay, sumsByAsset } from '../support/ledger-fixtures';

/**
 * Acknowledged means durable: a writer under load is killed with SIGKILL; after restart every transfer it
 * acknowledged is in the log, and every transfer in the log is whole (header and all journal lines), none half-applied.
 */
test('SIGKILL under load loses no acknowledged transfer and leaves none half-applied', async () => {
  const database = await createTestDatabase('sigkill');
  try {
    const child = spawn(
      process.execPath,
      ['-r', 'ts-node/register/transpile-only', join(__dirname, '..', 'support', 'load-child.ts')],
      {
        env: { ...process.env, DATABASE_URL: database.url },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const acknowledged: string[] = [];
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on('exit', (_code, signal) => resolve(signal)),
    );
    const ready = new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (line) => {
        if (line === 'READY') resolve();
        else if (line.startsWith('ACK ')) acknowledged.push(line.slice(4));
      });
      child.on('exit', () => reject(new Error(`load process exited early: ${stderr}`)));
    });
    await ready;
    // Kill in the middle of the load, at a random moment.
    await new Promise((r) => setTimeout(r, 1_500 + Math.random() * 1_000));
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    expect(acknowledged.length).toBeGreaterThan(100);

    const store = await openPostgresEventStore({ connectionString: database.url });
    try {
      for (const id of acknowledged) {
        const header = await store.readStream(transferStreamId(id), { maxCount: 1 });
        expect([id, header[0]?.type]).toEqual([id, 'TransferPosted']);
      }
      // Every transfer in the log is whole: each of its postings has its journal line in the account's stream.
      const { accounts, transfers } = await replay(store); // replay asserts every running balance
      const linesByTransfer = new Map<string, number>();
      for (const accountId of accounts.keys()) {
        for (const line of await store.readStream(accountStreamId(accountId), { maxCount: 10_000 })) {
          if (line.type === 'AccountPosted')
            linesByTransfer.set(
              String(line.data['transferId']),
              (linesByTransfer.get(String(line.data['transferId'])) ?? 0) + 1,
            );
        }
      }
      for (const transfer of transfers.values())
        expect([transfer.transferId, linesByTransfer.get(transfer.transferId)]).toEqual([
          transfer.transferId,
          transfer.postings.length,
        ]);
      expect(linesByTransfer.size).toBe(transfers.size);
      for (const [asset, sum] of sumsByAsset(accounts.values())) expect([asset, sum]).toEqual([asset, '0']);
      // A restarted writer carries on from the log.
      const ledger = new Ledger(store);
      const outcome = await ledger.execute({
        type: 'PostTransfer',
        transferId: 'after-restart',
        idempotencyKey: 'after-restart',
        transferType: 'top_up',
        postings: [
          { accountId: 'PLATFORM-BANK-CLEARING-CNY', direction: 'debit', amount: '1.00' },
          { accountId: '8620794000000001', direction: 'credit', amount: '1.00' },
        ],
        businessDate: '2026-11-23',
        at: new Date().toISOString(),
      });
      expect(outcome.status).toBe('accepted');
      await ledger.close();
    } finally {
      await store.close();
    }
  } finally {
    await database.drop();
  }
}, 120_000);
