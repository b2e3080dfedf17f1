/**
 * Scaling out (issue #11, must-show 4): two `carbonpay serve` instances on this machine against one PostgreSQL
 * database, the payment load spread over both (every payment to one or the other by turns, retries to the other).
 * Each instance has its own writer; they meet on shared accounts, where optimistic concurrency on every stream
 * makes one of two conflicting batches reload and decide again. Asserts: no lost update (every acknowledged
 * payment in the log once, each wallet's read-model balance equal to the running balance of its last journal line
 * and to top-ups minus payments out plus payments in as the load counted them), Σ balances = 0 per asset.
 *
 *   node -r ts-node/register/transpile-only bench/drills/two-instances.ts [--seconds 10] [--clients 32] [--wallets 20]
 *
 * Few wallets on purpose: the two writers collide often (docs/scaling.md).
 */
import type { ChildProcess } from 'node:child_process';
import { Client } from 'pg';
import type { DrillChecks, LoadFigures } from './harness';
import {
  checkDrill,
  createDatabase,
  drillPassed,
  freePort,
  openWallets,
  PaymentLoad,
  PrivateCluster,
  sleep,
  startServe,
  stopServe,
  transpileApp,
  userWallet,
} from './harness';

export interface TwoInstancesOptions {
  readonly serverUrl: string;
  readonly seconds: number;
  readonly clients: number;
  readonly wallets: number;
}

export interface TwoInstancesResult {
  readonly load: LoadFigures;
  readonly paymentsPerSecond: number;
  /** Conflicts each instance's writer met (`/health` ledger.conflicts): the two writers did collide. */
  readonly conflicts: number[];
  readonly commandsCommitted: number[];
  /** Wallets whose balance differs from what the acknowledged payments make it (must be 0). */
  readonly lostUpdates: number;
  readonly checks: DrillChecks;
  readonly passed: boolean;
}

const TOP_UP = 1_000_000;

export async function twoInstances(options: TwoInstancesOptions): Promise<TwoInstancesResult> {
  const database = await createDatabase(options.serverUrl, 'two_instances');
  const build = transpileApp();
  const ports = [await freePort(), await freePort()];
  const bases = ports.map((port) => `http://127.0.0.1:${port}`);
  const children: ChildProcess[] = [];
  try {
    // The first starts alone (it creates the schema); both run the read-model runner: one leads, one stands by.
    children.push(await startServe({ databaseUrl: database.url, port: ports[0]!, build }));
    children.push(await startServe({ databaseUrl: database.url, port: ports[1]!, build }));
    const run = `t${Date.now().toString(36)}`;
    await openWallets(bases[0]!, run, options.wallets, `${TOP_UP}.00`);
    const load = new PaymentLoad(run, {
      bases: () => bases,
      wallets: options.wallets,
      clients: options.clients,
      amount: '0.01',
    });
    load.start();
    await sleep(options.seconds * 1000);
    await load.stop();
    await load.retryUnacknowledged(bases);
    const health = await Promise.all(
      bases.map(
        async (base) =>
          (await (await fetch(`${base}/health`)).json()) as {
            ledger: { conflicts: number; commandsCommitted: number };
          },
      ),
    );
    const checks = await checkDrill(database.url, run, load.sent);
    // Each wallet's expected balance from what the load counted as acknowledged (every payment moves 0.01).
    const expectedFen = new Map<string, number>();
    for (let w = 0; w < options.wallets; w++) expectedFen.set(userWallet(w), TOP_UP * 100);
    for (const t of load.sent.values()) {
      if (!t.acknowledged) continue;
      const [debit, credit] = (t.body['postings'] as { accountId: string }[]).map((p) => p.accountId);
      expectedFen.set(debit!, expectedFen.get(debit!)! - 1);
      expectedFen.set(credit!, expectedFen.get(credit!)! + 1);
    }
    const client = new Client({ connectionString: database.url });
    await client.connect();
    let lostUpdates = 0;
    try {
      const rows = await client.query<{ account_id: string; fen: string }>(
        `SELECT account_id, (balance * 100)::bigint::text AS fen FROM cp_read.accounts WHERE account_id = ANY($1::text[])`,
        [[...expectedFen.keys()]],
      );
      for (const row of rows.rows) if (Number(row.fen) !== expectedFen.get(row.account_id)) lostUpdates++;
      lostUpdates += expectedFen.size - rows.rows.length;
    } finally {
      await client.end();
    }
    const figures = load.figures();
    return {
      load: figures,
      paymentsPerSecond: Math.round(figures.acknowledged / (figures.elapsedMs / 1000)),
      conflicts: health.map((h) => h.ledger.conflicts),
      commandsCommitted: health.map((h) => h.ledger.commandsCommitted),
      lostUpdates,
      checks,
      passed: drillPassed(checks) && lostUpdates === 0,
    };
  } finally {
    for (const child of children) await stopServe(child);
    await database.drop();
  }
}

function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 ? Number(process.argv[index + 1]) : fallback;
}

if (require.main === module) {
  PrivateCluster.around('cp-drill-two', (cluster) =>
    twoInstances({
      serverUrl: cluster.serverUrl,
      seconds: argument('seconds', 10),
      clients: argument('clients', 32),
      wallets: argument('wallets', 20),
    }),
  ).then(
    (result) => {
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      process.exitCode = result.passed ? 0 : 1;
    },
    (error: unknown) => {
      process.stderr.write(`${(error as Error).stack}\n`);
      process.exitCode = 1;
    },
  );
}
