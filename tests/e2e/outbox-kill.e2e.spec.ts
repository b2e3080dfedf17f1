import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Client } from 'pg';
import { createTestDatabase } from '../support/databases';
import { freePort } from '../support/free-port';

/**
 * #13 must-show 2: the process is killed between the commit of payments and the sending of their webhooks; after a
 * restart every webhook and notification goes out, and none twice to the receiver that had acknowledged it.
 */
jest.setTimeout(120_000);

interface Server {
  readonly child: ChildProcess;
  readonly base: string;
}

async function startServer(databaseUrl: string, port: number): Promise<Server> {
  const child = spawn(
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', join(__dirname, '..', '..', 'app', 'cli.ts'), 'serve'],
    {
      env: {
        ...process.env,
        DATABASE_URL: databaseUrl,
        PORT: String(port),
        CARBONPAY_AUTH: 'off',
        CARBONPAY_OUTBOX_INTERVAL_MS: '100',
        // Seven payments a minute from one wallet is a velocity pattern; risk control is not what this test is about.
        CARBONPAY_RISK: 'off',
        LOG_LEVEL: 'silent',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    if (output.includes('carbonpay listening')) return { child, base };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`server did not start: ${output}`);
}

let keys = 0;
async function post(base: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': `kill-${++keys}` },
    body: JSON.stringify(body),
  });
  const parsed = (await response.json()) as Record<string, unknown>;
  if (response.status >= 300) throw new Error(`${path}: ${response.status} ${JSON.stringify(parsed)}`);
  return parsed;
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('killed between commit and send: after restart every message goes out, none twice to a receiver that acknowledged', async () => {
  const database = await createTestDatabase('outboxkill');
  const received: string[] = [];
  let receiverUp = true;
  const receiver = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    request.on('end', () => {
      if (!receiverUp) return void response.writeHead(503).end();
      received.push((JSON.parse(body) as { id: string }).id);
      response.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  const port = await freePort();
  let server = await startServer(database.url, port);
  const db = new Client({ connectionString: database.url });
  await db.connect();
  try {
    const wallet = await post(server.base, '/v1/wallets', {
      accountNumber: '13911112222',
      name: '赵六',
      areaCode: '0791',
      customerClass: '2',
      purpose: 'general',
    });
    const walletId = wallet['walletId'] as string;
    const accounts = wallet['accounts'] as Record<string, string>;
    await post(server.base, `/v1/wallets/${walletId}/top-ups`, { amount: '100.00', channel: 'bank_sim' });
    await waitFor(async () => {
      const balance = (await (await fetch(`${server.base}/v1/accounts/${accounts['main']!}/balance`)).json()) as {
        balance: string;
      };
      return balance.balance === '100.00';
    }, 'the simulated bank to call back');
    const merchant = await post(server.base, '/v1/merchants', {
      name: 'Kill Shop',
      category: 'green_mall',
      feeRateBps: 50,
      settlementBankAccount: '6222020200112233445',
      areaCode: '0791',
    });
    const merchantId = merchant['merchantId'] as string;
    await post(server.base, `/v1/merchants/${merchantId}/review`, { decision: 'approve', reason: 'ok' });
    await post(server.base, `/v1/merchants/${merchantId}/webhook`, { url: hookUrl, secret: 'kill-test-secret-0123' });

    const pay = async (i: number): Promise<string> =>
      (
        await post(server.base, '/v1/payments', {
          merchantId,
          orderId: `kill-${i}`,
          walletId,
          amount: '1.00',
          tenders: { wallet: '1.00' },
        })
      )['paymentId'] as string;
    const paymentIds: string[] = [];
    for (let i = 0; i < 3; i++) paymentIds.push(await pay(i));
    await waitFor(() => received.length === 3, 'the first three webhooks');

    receiverUp = false;
    for (let i = 3; i < 7; i++) paymentIds.push(await pay(i));
    // Committed, not sent: the receiver refuses, the dispatcher backs off — and the process dies.
    await new Promise((r) => setTimeout(r, 400));
    server.child.kill('SIGKILL');
    await new Promise((r) => server.child.once('exit', r));
    const pendingAtKill = await db.query("SELECT count(*)::int AS n FROM cp_outbox WHERE status = 'pending'");
    expect((pendingAtKill.rows[0] as { n: number }).n).toBeGreaterThanOrEqual(4);

    receiverUp = true;
    server = await startServer(database.url, port);
    await waitFor(() => received.length >= 7, 'every webhook after the restart', 60_000);
    await waitFor(
      async () => (await db.query("SELECT 1 FROM cp_outbox WHERE status <> 'delivered'")).rows.length === 0,
      'every notification after the restart',
      60_000,
    );
    await new Promise((r) => setTimeout(r, 500));
    expect(received).toEqual(paymentIds.map((id) => `payment.succeeded:${id}`));
    const sms = await db.query<{ kind: string; n: number }>(
      "SELECT kind, count(*)::int AS n FROM cp_outbox WHERE receiver LIKE 'sms:%' AND status = 'delivered' GROUP BY kind ORDER BY kind",
    );
    expect(sms.rows).toEqual([
      { kind: 'payment.succeeded', n: 7 },
      { kind: 'top_up.confirmed', n: 1 },
      { kind: 'wallet.opened', n: 1 },
    ]);
  } finally {
    server.child.kill('SIGKILL');
    await db.end();
    receiver.close();
    await database.drop();
  }
});
