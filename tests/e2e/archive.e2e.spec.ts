import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  monthFolders,
  readArchivedJournal,
  readArchivedStatement,
  runArchive,
  statementFromArchivedEvents,
} from '../../app';
import { createDatabase, PrivateCluster } from '../../bench/drills/harness';
import { startReadModels } from '../../app';
import { Ledger, openPostgresEventStore } from '../../core-ledger';
import type { JournalLine, ReadModelQueries as Queries, StatementLine } from '../../projections';
import { ReadModelQueries } from '../../projections';
import { merchantPending, userWallet } from '../support/ledger-fixtures';
import { logHead, Workload } from '../support/workload';

jest.setTimeout(120_000);

/** October 2026 in China Standard Time. */
const OCTOBER = { from: '2026-09-30T16:00:00.000Z', to: '2026-10-31T16:00:00.000Z' };

async function statement(queries: Queries, accountId: string): Promise<StatementLine[]> {
  const lines: StatementLine[] = [];
  let cursor: string | undefined;
  do {
    const page = await queries.getStatement(accountId, { ...OCTOBER, limit: 1000, ...(cursor ? { cursor } : {}) });
    lines.push(...page.lines);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return lines;
}

async function journal(queries: Queries, accountId?: string): Promise<JournalLine[]> {
  const lines: JournalLine[] = [];
  let cursor: string | undefined;
  do {
    const page = await queries.getJournal({
      businessDateFrom: '2026-10-01',
      businessDateTo: '2026-10-31',
      limit: 1000,
      ...(accountId ? { accountId } : {}),
      ...(cursor ? { cursor } : {}),
    });
    lines.push(...page.lines);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return lines;
}

/**
 * Must-show 2 of issue #11: a month archived (gzip + SM3 manifest, verified against the live rows), removed from the
 * live read models (--detach), and read back gives the same statements and journal as the live queries gave before;
 * the archived events alone give the same statements; an altered archive is refused.
 */
test('archive --before 2026-11 --detach: October read back equals the statements and journal it replaced', async () => {
  await PrivateCluster.around('cp-test-archive', async (cluster) => {
    const database = await createDatabase(cluster.serverUrl, 'archive');
    const folder = mkdtempSync(join(tmpdir(), 'cp-archive-'));
    const store = await openPostgresEventStore({ connectionString: database.url, maxConnections: 6 });
    const ledger = new Ledger(store);
    const readModels = await startReadModels(
      { eventStore: 'postgres', databaseUrl: database.url, readModelUrl: undefined, runProjections: true },
      store,
    );
    try {
      const workload = new Workload(ledger, {
        seed: 7,
        users: 10,
        merchants: 2,
        concurrency: 30,
        days: 75,
        startDay: '2026-09-10',
      });
      await workload.openAccounts();
      const countEvents = async (): Promise<number> =>
        Number((await readModels.database.query<{ n: string }>('SELECT count(*)::text AS n FROM cp_events'))[0]!.n);
      await workload.run(3_000, countEvents);
      await readModels.runner!.waitUntilApplied(await logHead(readModels.database));
      const queries = new ReadModelQueries(readModels.database);
      const accounts = [userWallet(1), userWallet(4), merchantPending(0)];
      const before = new Map<string, StatementLine[]>();
      for (const account of accounts) before.set(account, await statement(queries, account));
      expect(before.get(userWallet(1))!.length).toBeGreaterThan(5);
      const journalBefore = await journal(queries);
      expect(journalBefore.length).toBeGreaterThan(200);
      const balancesBefore = await readModels.database.query<{ asset: string; total: string }>(
        'SELECT asset, sum(balance)::text AS total FROM cp_read.accounts GROUP BY asset ORDER BY asset',
      );

      const out: string[] = [];
      const err: string[] = [];
      const io = { stdout: (l: string) => out.push(l), stderr: (l: string) => err.push(l) };
      const env = { DATABASE_URL: database.url };
      const december = (): Date => new Date('2026-12-05T00:00:00.000Z');
      expect(await runArchive(['--before', '2027-01', '--to', folder], io, env, december)).toBe(2); // not closed
      expect(err[0]).toMatch(/--before 2027-01 is after the current month/);
      err.length = 0;
      expect(await runArchive(['--before', '2026-11', '--to', folder, '--detach'], io, env, december)).toBe(0);
      expect(err).toEqual([]);
      expect(out).toEqual([
        expect.stringMatching(
          /^carbonpay archive: 2026-09: \d+ events, \d+ journal lines, \d+ statement lines; verified; detached .*; keep until 2056-10-01$/,
        ),
        expect.stringMatching(
          /^carbonpay archive: 2026-10: \d+ events, \d+ journal lines, \d+ statement lines; verified; detached/,
        ),
      ]);
      const october = monthFolders(folder).find((f) => f.endsWith('2026-10'))!;

      // the live read models no longer hold October; the books still balance (accounts are not archived)
      expect(await statement(queries, userWallet(1))).toEqual([]);
      expect(await journal(queries)).toEqual([]);
      expect(
        await readModels.database.query(
          'SELECT asset, sum(balance)::text AS total FROM cp_read.accounts GROUP BY asset ORDER BY asset',
        ),
      ).toEqual(balancesBefore);

      // read back: the same statements and journal; the archived events alone give the same statements
      for (const account of accounts) {
        expect(await readArchivedStatement(october, account)).toEqual(before.get(account));
        expect(await statementFromArchivedEvents(october, account, 'CNY')).toEqual(before.get(account));
      }
      expect(await readArchivedJournal(october)).toEqual(journalBefore);
      expect(await readArchivedJournal(october, userWallet(4))).toEqual(
        journalBefore.filter((l) => l.accountId === userWallet(4)),
      );

      // the CLI read path prints the same lines
      const read: string[] = [];
      const readIo = { stdout: (l: string) => read.push(l), stderr: (l: string) => read.push(l) };
      expect(
        await runArchive(['read', '--from', folder, '--month', '2026-10', '--statement', userWallet(1)], readIo, env),
      ).toBe(0);
      expect(read.map((l) => JSON.parse(l) as StatementLine)).toEqual(before.get(userWallet(1)));

      // archiving again finds nothing left before November in the live read models, and writes nothing
      out.length = 0;
      expect(await runArchive(['--before', '2026-11', '--to', folder], io, env, december)).toBe(0);
      expect([out, err]).toEqual([[], []]);

      // an altered archive does not verify and is not read
      const file = join(october, 'statement_lines.jsonl.gz');
      const bytes = readFileSync(file);
      bytes[20] = bytes[20]! ^ 0x01;
      writeFileSync(file, bytes);
      const verify: string[] = [];
      const verifyIo = { stdout: (l: string) => verify.push(l), stderr: (l: string) => verify.push(l) };
      expect(await runArchive(['verify', '--from', folder], verifyIo, env)).toBe(1);
      expect(verify.join('\n')).toMatch(/2026-10: statement_lines\.jsonl\.gz: SM3 differs/);
      expect(await runArchive(['read', '--from', october, '--journal'], verifyIo, env)).toBe(1);
    } finally {
      await readModels.close();
      await ledger.close();
      await store.close();
      rmSync(folder, { recursive: true, force: true });
      await database.drop();
    }
  });
});
