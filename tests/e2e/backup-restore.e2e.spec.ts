import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, drainAndClose } from '../../api';
import { createPlatformApi, listenPlatform, runAudit, startLedger, startReadModels } from '../../app';
import {
  BackupError,
  ledgerChecksums,
  restoreBackups,
  runBackup,
  runRestore,
  serviceTableChecksums,
  takeBackup,
  verifyBackupFolder,
} from '../../app';
import { createDatabase, PrivateCluster } from '../../bench/drills/harness';
import { Ledger, openPostgresEventStore } from '../../core-ledger';
import type { LogPosition } from '../../core-ledger';
import { Workload } from '../support/workload';

jest.setTimeout(120_000);

/**
 * Must-show 1 of issue #11, the restore drill: full and incremental backups of a platform with wallets, merchants,
 * payments, refunds, an audit chain and a ledger workload over three months → a new, empty database → restore →
 * read models rebuilt → journal, balance and statement checksums (SM3) and every service table equal the originals;
 * the audit chain verifies; a non-empty database and an altered backup are refused.
 */
test('backup full + incrementals → restore into an empty database → rebuild → the books and service tables are equal', async () => {
  await PrivateCluster.around('cp-test-backup', async (cluster) => {
    const source = await createDatabase(cluster.serverUrl, 'backup_source');
    const target = await createDatabase(cluster.serverUrl, 'backup_target');
    const set = mkdtempSync(join(tmpdir(), 'cp-backup-set-'));
    try {
      const store = await openPostgresEventStore({ connectionString: source.url, maxConnections: 6 });
      const ledger = await startLedger(store, { batchMaxCommands: 1000, snapshotEveryEvents: 50 });
      const readModels = await startReadModels(
        { eventStore: 'postgres', databaseUrl: source.url, readModelUrl: undefined, runProjections: true },
        store,
      );
      let clock = new Date('2026-09-25T03:00:00.000Z');
      const platform = await createPlatformApi(
        ledger,
        store,
        readModels,
        { cutoffHourLocal: 0, auth: 'off', clientsFile: undefined, redisUrl: undefined, platformKeyFile: undefined },
        createLogger('silent'),
        () => clock,
        [],
      );
      const server: Server = await listenPlatform(platform.api, {
        host: '127.0.0.1',
        port: 0,
        tlsCertFile: undefined,
        tlsKeyFile: undefined,
      });
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      let sourceOpen = true;
      const closeSource = async (): Promise<void> => {
        if (!sourceOpen) return;
        sourceOpen = false;
        await drainAndClose(platform.api, server, 1_000);
        await platform.close();
        await ledger.close();
        await readModels.close();
        await store.close();
      };
      try {
        let keys = 0;
        const post = async (path: string, body: unknown): Promise<Record<string, unknown>> => {
          const response = await fetch(`${base}${path}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'idempotency-key': `backup-${++keys}` },
            body: JSON.stringify(body),
          });
          const answer = (await response.json()) as Record<string, unknown>;
          expect([path, response.status < 300, answer]).toEqual([path, true, answer]);
          return answer;
        };
        const workload = new Workload(ledger, {
          seed: 11,
          users: 12,
          merchants: 3,
          concurrency: 40,
          days: 30,
          startDay: '2026-09-20',
        });
        const countEvents = async (): Promise<number> =>
          Number((await readModels.database.query<{ n: string }>('SELECT count(*)::text AS n FROM cp_events'))[0]!.n);
        const head = async (): Promise<LogPosition> =>
          (
            await readModels.database.query<{ p: string }>(
              `SELECT lpad(tx_id::text, 20, '0') || ':' || lpad(seq::text, 20, '0') AS p FROM cp_events
              ORDER BY tx_id DESC, seq DESC LIMIT 1`,
            )
          )[0]!.p;

        // A wallet paid for at a merchant, refunded in part, with an audit entry: the service tables are not empty.
        const wallet = await post('/v1/wallets', {
          accountNumber: '13907940001',
          name: '李四',
          areaCode: '021', // not the workload's area (794): its account ids are the workload's own
          customerClass: '2',
          purpose: 'general',
        });
        const walletId = wallet['walletId'] as string;
        const topUp = await post(`/v1/wallets/${walletId}/top-ups`, { amount: '300.00', channel: 'bank_sim' });
        await post(`/v1/top-ups/${topUp['topUpId'] as string}/callback`, { result: 'success', channelTradeNo: 'B-1' });
        const merchant = await post('/v1/merchants', {
          name: 'Backup Mall',
          category: 'green_mall',
          feeRateBps: 60,
          settlementBankAccount: '6222020200112233445',
          areaCode: '021',
        });
        const merchantId = merchant['merchantId'] as string;
        await post(`/v1/merchants/${merchantId}/review`, { decision: 'approve', reason: 'licence checked' });
        // The outbox dispatcher and the bank simulator would keep changing cp_outbox and cp_top_ups after a backup:
        // stop them, so the checksums taken below describe what the backups hold.
        await platform.services.stopJobs();
        await workload.openAccounts();
        await workload.run(1_500, countEvents);

        const full = await takeBackup({ eventsUrl: source.url, servicesUrl: source.url, kind: 'full', setFolder: set });
        expect(full.descriptor.events.count).toBeGreaterThan(1_500);
        expect(full.descriptor.tables.map((t) => t.name)).toEqual(
          expect.arrayContaining([
            'table-cp_wallets.jsonl.gz',
            'table-cp_payments.jsonl.gz',
            'table-cp_audit_log.jsonl.gz',
          ]),
        );

        clock = new Date('2026-10-20T03:00:00.000Z');
        const paid = await post('/v1/payments', {
          merchantId,
          orderId: 'order-backup-1',
          walletId,
          amount: '80.00',
          tenders: { wallet: '80.00' },
        });
        await post(`/v1/payments/${paid['paymentId'] as string}/refunds`, { refundId: 'r-1', amount: '30.00' });
        await platform.audit.append({
          actor: 'ops',
          action: 'backup.drill',
          outcome: 'succeeded',
          subject: 'backup-test',
        });
        await workload.run(1_000, countEvents);
        const first = await takeBackup({
          eventsUrl: source.url,
          servicesUrl: source.url,
          kind: 'incremental',
          setFolder: set,
        });
        expect(first.descriptor).toMatchObject({
          sequence: 2,
          previousId: full.descriptor.id,
          chainId: full.descriptor.chainId,
        });
        expect(first.descriptor.events.count).toBeGreaterThan(1_000);
        expect(first.descriptor.events.firstPosition! > full.descriptor.events.lastPosition!).toBe(true);

        clock = new Date('2026-11-05T03:00:00.000Z');
        await workload.run(500, countEvents);
        // the CLI, as an operator runs it
        const out: string[] = [];
        const err: string[] = [];
        const io = { stdout: (l: string) => out.push(l), stderr: (l: string) => err.push(l) };
        expect(await runBackup(['incremental', '--to', set], io, { DATABASE_URL: source.url })).toBe(0);
        expect(out.at(-1)).toMatch(/incremental backup 3 written to .*: \d+ events/);
        expect(await runBackup(['weekly', '--to', set], io, { DATABASE_URL: source.url })).toBe(2);

        await readModels.runner!.waitUntilApplied(await head());
        const books = await ledgerChecksums(readModels.database);
        const tables = await serviceTableChecksums(readModels.database);
        expect(Object.values(books.sumsByAsset).every((total) => Number(total) === 0)).toBe(true);
        expect(books.journalLines).toBeGreaterThan(1_500);
        expect(tables['cp_payments']).toMatch(/^1:/);
        expect(tables['cp_refunds']).toMatch(/^1:/);

        await closeSource();
        await source.drop(); // the wipe

        // restore the chain (the set stands for its latest chain) into the empty database
        const report = await restoreBackups({ eventsUrl: target.url, servicesUrl: target.url, from: [set] });
        expect(report.backups).toBe(3);
        expect(report.checksums).toEqual(books);
        const restoredStore = await openPostgresEventStore({ connectionString: target.url, maxConnections: 4 });
        const restoredModels = await startReadModels(
          { eventStore: 'postgres', databaseUrl: target.url, readModelUrl: undefined, runProjections: false },
          restoredStore,
        );
        try {
          expect(await serviceTableChecksums(restoredModels.database)).toEqual(tables);
          expect(await ledgerChecksums(restoredModels.database)).toEqual(books);
          // the audit chain was copied whole: it verifies
          const auditOut: string[] = [];
          const auditIo = { stdout: (l: string) => auditOut.push(l), stderr: (l: string) => auditOut.push(l) };
          expect(await runAudit(['verify'], auditIo, { DATABASE_URL: target.url })).toBe(0);
          // a restored ledger carries on: the wallet's balance is what it was, and it pays again
          const restoredLedger = new Ledger(restoredStore);
          const again = await restoredLedger.execute({
            type: 'PostTransfer',
            transferId: 'after-restore',
            idempotencyKey: 'after-restore',
            transferType: 'top_up',
            postings: [
              { accountId: 'PLATFORM-BANK-CLEARING-CNY', direction: 'debit', amount: '1.00' },
              {
                accountId: (wallet['accounts'] as Record<string, string>)['main']!,
                direction: 'credit',
                amount: '1.00',
              },
            ],
            businessDate: '2026-11-06',
            at: '2026-11-06T01:00:00.000Z',
          });
          expect(again.status).toBe('accepted');
          await restoredLedger.close();
        } finally {
          await restoredModels.close();
          await restoredStore.close();
        }

        // a database that is not empty is refused, through the CLI too
        await expect(restoreBackups({ eventsUrl: target.url, servicesUrl: target.url, from: [set] })).rejects.toThrow(
          /not empty/,
        );
        const refused: string[] = [];
        const refusedIo = { stdout: (l: string) => refused.push(l), stderr: (l: string) => refused.push(l) };
        expect(await runRestore(['--from', set], refusedIo, { DATABASE_URL: target.url })).toBe(1);
        expect(refused.join('\n')).toMatch(/not empty/);

        // an altered backup does not verify, and is not restored
        const incremental = join(set, readdirSync(set).sort()[1]!);
        const eventsFile = join(incremental, 'events.jsonl.gz');
        const bytes = readFileSync(eventsFile);
        bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff;
        writeFileSync(eventsFile, bytes);
        expect((await verifyBackupFolder(incremental)).join('\n')).toMatch(/events\.jsonl\.gz: SM3 differs/);
        const empty = await createDatabase(cluster.serverUrl, 'backup_empty');
        try {
          await expect(restoreBackups({ eventsUrl: empty.url, servicesUrl: empty.url, from: [set] })).rejects.toThrow(
            BackupError,
          );
        } finally {
          await empty.drop();
        }
      } finally {
        await closeSource();
      }
    } finally {
      rmSync(set, { recursive: true, force: true });
      await target.drop();
    }
  });
});
