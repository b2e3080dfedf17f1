/**
 * Fault drill (a): SIGKILL of the service under HTTP load.
 *
 * `carbonpay serve` (PostgreSQL, CARBONPAY_AUTH=off on loopback) takes payments from concurrent clients, each with
 * its own idempotency key; in the middle of the load it is killed with SIGKILL, started again, and every payment
 * that got no answer is retried with its key. Asserts: no acknowledged payment lost, none twice, Σ balances = 0 per
 * asset, the read models converge on the log.
 *
 *   node -r ts-node/register/transpile-only bench/drills/sigkill.ts [--seconds 10] [--clients 32] [--kills 3]
 *
 * The database lives on a private cluster (initdb in /tmp, a free port), not on the shared server: a long
 * transaction of anyone else on a server holds back pg_snapshot_xmin for every database of it, and with it the
 * read models (docs/operations.md, Fault drills). DRILL_DATABASE_SERVER names a server to use instead.
 */
import type { ChildProcess } from 'node:child_process';
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
} from './harness';

export interface SigkillDrillOptions {
  /** The PostgreSQL server to create the drill's database on. */
  readonly serverUrl: string;
  readonly seconds: number;
  readonly clients: number;
  readonly wallets: number;
  readonly kills: number;
}

export interface SigkillDrillResult {
  readonly load: LoadFigures;
  readonly kills: number;
  /** Milliseconds from SIGKILL until the restarted service listened again, per kill. */
  readonly restartMs: number[];
  readonly retried: number;
  /** Retries answered as replays: the payment had committed before the kill, its answer was lost. */
  readonly replayed: number;
  readonly checks: DrillChecks;
  readonly passed: boolean;
}

export async function sigkillDrill(options: SigkillDrillOptions): Promise<SigkillDrillResult> {
  const database = await createDatabase(options.serverUrl, 'drill_kill');
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const run = `k${Date.now().toString(36)}`;
  const build = transpileApp();
  const serve = (): Promise<ChildProcess> => startServe({ databaseUrl: database.url, port, build });
  let child = await serve();
  try {
    await openWallets(base, run, options.wallets, '1000000.00');
    const load = new PaymentLoad(run, {
      bases: () => [base],
      wallets: options.wallets,
      clients: options.clients,
      amount: '0.01',
    });
    load.start();
    const restartMs: number[] = [];
    const slice = (options.seconds * 1000) / (options.kills + 1);
    for (let k = 0; k < options.kills; k++) {
      await sleep(slice * (0.5 + Math.random()));
      await stopServe(child, 'SIGKILL');
      const killedAt = Date.now();
      child = await serve();
      restartMs.push(Date.now() - killedAt);
    }
    await sleep(slice);
    await load.stop();
    const { retried, replayed } = await load.retryUnacknowledged([base]);
    const checks = await checkDrill(database.url, run, load.sent);
    return {
      load: load.figures(),
      kills: options.kills,
      restartMs,
      retried,
      replayed,
      checks,
      passed: drillPassed(checks),
    };
  } finally {
    await stopServe(child);
    await database.drop();
  }
}

function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 ? Number(process.argv[index + 1]) : fallback;
}

if (require.main === module) {
  const options = (serverUrl: string): SigkillDrillOptions => ({
    serverUrl,
    seconds: argument('seconds', 10),
    clients: argument('clients', 32),
    wallets: argument('wallets', 50),
    kills: argument('kills', 3),
  });
  const server = process.env['DRILL_DATABASE_SERVER'];
  (server !== undefined
    ? sigkillDrill(options(server))
    : PrivateCluster.around('cp-drill-kill', (cluster) => sigkillDrill(options(cluster.serverUrl)))
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
