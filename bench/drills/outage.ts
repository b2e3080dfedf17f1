/**
 * Fault drills (b) and (c): a dependency of the service goes away under load and comes back.
 *
 *   (b) node -r ts-node/register/transpile-only bench/drills/outage.ts postgres [--seconds 12] [--outages 2]
 *       PostgreSQL restarted under load (`pg_ctl restart -m immediate`: a crash and WAL recovery, fsync on) — a
 *       private cluster (initdb in /tmp, its own port); the shared server on 5432 is never touched.
 *   (c) node -r ts-node/register/transpile-only bench/drills/outage.ts redis [--seconds 12] [--outages 2]
 *       Redis stopped under signed load and started again: a private redis-server on its own port (never 6379).
 *       Redis holds the nonces of signed requests (every instance refuses a replay), so the service runs with
 *       CARBONPAY_AUTH=required and the load signs each payment with HMAC-SM3. Clearing's BullMQ jobs (#10) use
 *       Redis too; stopping it during a clearing run is not part of this drill yet (docs/operations.md).
 *
 * Each asserts: no acknowledged payment lost, none twice, Σ balances = 0 per asset, read models converge.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DrillChecks, LoadFigures, Signer } from './harness';
import {
  checkDrill,
  createDatabase,
  drillPassed,
  freePort,
  openWallets,
  PaymentLoad,
  PrivateCluster,
  PrivateRedis,
  sleep,
  startServe,
  stopServe,
  transpileApp,
} from './harness';

export type OutageKind = 'postgres' | 'redis';

export interface OutageDrillOptions {
  readonly kind: OutageKind;
  readonly seconds: number;
  readonly clients: number;
  readonly wallets: number;
  readonly outages: number;
  /** How long Redis stays down (PostgreSQL is restarted at once). */
  readonly downMs: number;
}

export interface OutageDrillResult {
  readonly kind: OutageKind;
  readonly load: LoadFigures;
  readonly outages: number;
  /** Milliseconds the dependency was away, per outage. */
  readonly downMs: number[];
  /** Payments that got an error answer or none while it was away (answered later, on a retry with their key). */
  readonly failedAttempts: number;
  readonly retried: number;
  readonly checks: DrillChecks;
  readonly passed: boolean;
}

export async function outageDrill(options: OutageDrillOptions): Promise<OutageDrillResult> {
  return PrivateCluster.around(`cp-drill-${options.kind}`, async (cluster) => {
    const database = await createDatabase(cluster.serverUrl, `drill_${options.kind}`);
    const redis = options.kind === 'redis' ? new PrivateRedis(await freePort()) : undefined;
    const clientsFile = join(tmpdir(), `cp-drill-clients-${process.pid}.json`);
    const signer: Signer | undefined =
      options.kind === 'redis' ? { clientId: 'drill-payment-service', secret: randomBytes(32) } : undefined;
    let child: ChildProcess | undefined;
    try {
      const env: Record<string, string> = {};
      if (redis && signer) {
        redis.start();
        writeFileSync(
          clientsFile,
          JSON.stringify([
            {
              clientId: signer.clientId,
              role: 'payment_service',
              method: 'hmac-sm3',
              secretHex: signer.secret.toString('hex'),
            },
          ]),
        );
        Object.assign(env, { CARBONPAY_AUTH: 'required', CARBONPAY_CLIENTS_FILE: clientsFile, REDIS_URL: redis.url });
      }
      const port = await freePort();
      const base = `http://127.0.0.1:${port}`;
      child = await startServe({ databaseUrl: database.url, port, build: transpileApp(), env });
      const run = `${options.kind.slice(0, 2)}${Date.now().toString(36)}`;
      await openWallets(base, run, options.wallets, '1000000.00', signer);
      const load = new PaymentLoad(run, {
        bases: () => [base],
        wallets: options.wallets,
        clients: options.clients,
        amount: '0.01',
        ...(signer ? { signer } : {}),
      });
      load.start();
      const downMs: number[] = [];
      const slice = (options.seconds * 1000) / (options.outages + 1);
      for (let o = 0; o < options.outages; o++) {
        await sleep(slice * (0.5 + Math.random()));
        const down = Date.now();
        if (options.kind === 'postgres') cluster.pgCtl('restart', 'immediate');
        else {
          redis!.stop();
          await sleep(options.downMs);
          redis!.start();
        }
        downMs.push(Date.now() - down);
      }
      await sleep(slice);
      await load.stop();
      const { retried } = await load.retryUnacknowledged([base]);
      const checks = await checkDrill(database.url, run, load.sent);
      const failedAttempts = [...load.sent.values()].filter((t) => t.failures > 0).length;
      return {
        kind: options.kind,
        load: load.figures(),
        outages: options.outages,
        downMs,
        failedAttempts,
        retried,
        checks,
        passed: drillPassed(checks),
      };
    } finally {
      if (child) await stopServe(child);
      redis?.stop();
      rmSync(clientsFile, { force: true });
      await database.drop().catch(() => undefined);
    }
  });
}

function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 ? Number(process.argv[index + 1]) : fallback;
}

if (require.main === module) {
  const kind = process.argv[2];
  if (kind !== 'postgres' && kind !== 'redis') {
    process.stderr.write('usage: bench/drills/outage.ts postgres|redis [--seconds N] [--outages N] [--clients N]\n');
    process.exit(2);
  }
  outageDrill({
    kind,
    seconds: argument('seconds', 12),
    clients: argument('clients', 32),
    wallets: argument('wallets', 50),
    outages: argument('outages', 2),
    downMs: argument('down-ms', 3_000),
  }).then(
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
