import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { startReadModels } from '../../app';
import { openPostgresEventStore } from '../../core-ledger';
import { ReadModelQueries } from '../../projections';
import { createTestDatabase } from '../support/databases';
import { freePort } from '../support/free-port';
import { BANK, merchantPending, userWallet } from '../support/ledger-fixtures';
import { logHead } from '../support/workload';

/**
 * Must-show 4 of issue #5: `carbonpay serve` gets SIGTERM while 32 clients pay over HTTP. It drains: every payment
 * answered 2xx is in the journal (read models rebuilt from the log afterwards), and no transfer is half-applied
 * (each has exactly its two journal lines; the trial balance is zero).
 */
const WALLETS = 40;
const CLIENTS = 32;

test('SIGTERM under load: every payment answered 2xx is in the journal; none is half-applied', async () => {
  const database = await createTestDatabase('shutdown');
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [join(__dirname, '..', '..', 'bin', 'carbonpay.js'), 'serve'], {
    env: {
      ...process.env,
      DATABASE_URL: database.url,
      PORT: String(port),
      LOG_LEVEL: 'warn',
      CARBONPAY_SHUTDOWN_GRACE_MS: '10000',
      CARBONPAY_AUTH: 'off',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  try {
    while (!output.includes('listening')) {
      if (child.exitCode !== null) throw new Error(`serve exited: ${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const post = async (path: string, body: unknown, key: string): Promise<Response> =>
      fetch(`${base}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify(body),
      });
    const shop = merchantPending(51);
    expect(
      (
        await post(
          '/v1/accounts',
          { accountId: shop, kind: 'merchant_pending_settlement', ownerId: 'shop' },
          'open-shop',
        )
      ).status,
    ).toBe(201);
    for (let i = 0; i < WALLETS; i++) {
      const wallet = userWallet(500 + i);
      expect(
        (await post('/v1/accounts', { accountId: wallet, kind: 'user_main', ownerId: `u${i}` }, `open-${i}`)).status,
      ).toBe(201);
      const topUp = {
        transferType: 'top_up',
        postings: [
          { accountId: BANK, direction: 'debit', amount: '1000.00' },
          { accountId: wallet, direction: 'credit', amount: '1000.00' },
        ],
      };
      expect((await post('/v1/transfers', topUp, `fund-${i}`)).status).toBe(201);
    }

    const answered2xx: string[] = [];
    const otherAnswers = new Map<number, number>();
    let stopped = false;
    let sequence = 0;
    const clients = Array.from({ length: CLIENTS }, async () => {
      while (!stopped) {
        const wallet = userWallet(500 + (sequence % WALLETS));
        const key = `pay-${++sequence}`;
        const payment = {
          transferType: 'payment',
          postings: [
            { accountId: wallet, direction: 'debit', amount: '0.01' },
            { accountId: shop, direction: 'credit', amount: '0.01' },
          ],
        };
        try {
          const response = await post('/v1/transfers', payment, key);
          const body = (await response.json()) as { transferId?: string };
          if (response.status >= 200 && response.status < 300) answered2xx.push(body.transferId!);
          else otherAnswers.set(response.status, (otherAnswers.get(response.status) ?? 0) + 1);
        } catch {
          // Refused connection once the server stopped listening: the client would retry elsewhere.
          if (child.exitCode !== null || stopped) break;
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    });
    await new Promise((r) => setTimeout(r, 1_500));
    const beforeSignal = answered2xx.length;
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    stopped = true;
    await Promise.all(clients);
    expect(beforeSignal).toBeGreaterThan(100);
    expect(output).toContain('carbonpay: stopped');
    // Only drain answers (503 while shutting down) are allowed besides success: no 5xx of another kind.
    expect([...otherAnswers.keys()].filter((status) => status !== 503)).toEqual([]);

    const store = await openPostgresEventStore({ connectionString: database.url });
    const readModels = await startReadModels(
      { eventStore: 'postgres', databaseUrl: database.url, readModelUrl: undefined, runProjections: true },
      store,
    );
    try {
      await readModels.runner!.waitUntilApplied(await logHead(readModels.database));
      const rows = await readModels.database.query<{
        transfer_id: string;
        lines: string;
        debits: string;
        credits: string;
      }>(
        `SELECT transfer_id, count(*)::text AS lines,
                sum(amount) FILTER (WHERE direction = 'debit')::text AS debits,
                sum(amount) FILTER (WHERE direction = 'credit')::text AS credits
           FROM cp_read.journal GROUP BY transfer_id`,
      );
      const journal = new Map(rows.map((r) => [r.transfer_id, r]));
      const missing = answered2xx.filter((id) => !journal.has(id));
      expect(missing).toEqual([]);
      for (const row of rows)
        expect([row.transfer_id, row.lines, row.debits]).toEqual([row.transfer_id, '2', row.credits]);
      const trial = await new ReadModelQueries(readModels.database).getTrialBalance();
      for (const asset of trial) expect([asset.asset, Number(asset.balance)]).toEqual([asset.asset, 0]);
    } finally {
      await readModels.close();
      await store.close();
    }
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await database.drop();
  }
}, 120_000);
