import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Client } from 'pg';

const run = promisify(execFile);

/** pgbench's own database on the benchmark server, apart from ours. */
export const PGBENCH_DATABASE = 'carbonpay_pgbench';

/**
 * TPC-B updates one of `scale` branch rows per transaction: with fewer branches than clients, pgbench measures
 * its own lock queue, not the server. Scale ≥ clients (and at least 10) keeps the yardstick honest.
 */
export function pgbenchScaleFor(clients: number): number {
  return Math.max(clients, 10);
}

function connectionArgs(databaseUrl: string): string[] {
  const url = new URL(databaseUrl);
  const socketHost = url.searchParams.get('host');
  return [
    '-h',
    socketHost ?? (url.hostname || '127.0.0.1'),
    '-p',
    url.port || '5432',
    '-U',
    decodeURIComponent(url.username || 'postgres'),
  ];
}

function urlFor(databaseUrl: string, database: string): string {
  const url = new URL(databaseUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/** Creates pgbench's database and tables at `scale` unless they are there already. */
export async function preparePgbench(options: { databaseUrl: string; scale: number }): Promise<void> {
  const admin = new Client({ connectionString: urlFor(options.databaseUrl, 'postgres') });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [PGBENCH_DATABASE]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${PGBENCH_DATABASE}`);
  } finally {
    await admin.end();
  }
  const db = new Client({ connectionString: urlFor(options.databaseUrl, PGBENCH_DATABASE) });
  await db.connect();
  let branches = 0;
  try {
    const result = await db
      .query<{ n: string }>('SELECT count(*)::text AS n FROM pgbench_branches')
      .catch(() => ({ rows: [{ n: '0' }] }));
    branches = Number(result.rows[0]!.n);
  } finally {
    await db.end();
  }
  if (branches === options.scale) return;
  await run(
    'pgbench',
    [...connectionArgs(options.databaseUrl), '-i', '-s', String(options.scale), '-q', PGBENCH_DATABASE],
    { maxBuffer: 16 * 1024 * 1024 },
  );
}

export interface PgbenchResult {
  readonly tps: number;
  readonly latencyAvgMs: number;
  readonly transactions: number;
  readonly clients: number;
  readonly seconds: number;
  readonly raw: string;
}

/** Reads pgbench's report; pgbench 15 and later print "without initial connection time", older ones "excluding". */
export function parsePgbenchOutput(stdout: string): { tps: number; latencyAvgMs: number; transactions: number } {
  const tps = /tps = ([\d.]+) \((?:without initial connection time|excluding connections establishing)\)/.exec(stdout);
  const latency = /latency average = ([\d.]+) ms/.exec(stdout);
  const transactions = /number of transactions actually processed: (\d+)/.exec(stdout);
  if (!tps || !transactions) throw new Error(`pgbench printed no result:\n${stdout}`);
  return {
    tps: Number(tps[1]),
    latencyAvgMs: latency ? Number(latency[1]) : Number.NaN,
    transactions: Number(transactions[1]),
  };
}

/** pgbench's built-in TPC-B-like script: three updates, a select and an insert per transaction. */
export async function runPgbench(options: {
  databaseUrl: string;
  clients: number;
  seconds: number;
}): Promise<PgbenchResult> {
  const threads = Math.min(options.clients, 2);
  const args = [
    ...connectionArgs(options.databaseUrl),
    '-b',
    'tpcb-like',
    '-c',
    String(options.clients),
    '-j',
    String(threads),
    '-T',
    String(options.seconds),
    '-n',
    '-M',
    'prepared',
    PGBENCH_DATABASE,
  ];
  const { stdout } = await run('pgbench', args, { maxBuffer: 16 * 1024 * 1024 });
  return { ...parsePgbenchOutput(stdout), clients: options.clients, seconds: options.seconds, raw: stdout };
}

export async function readDurabilitySettings(databaseUrl: string): Promise<{
  fsync: string;
  synchronousCommit: string;
  walSyncMethod: string;
  serverVersion: string;
  maxWalSize: string;
  checkpointTimeout: string;
  walCompression: string;
}> {
  const client = new Client({ connectionString: urlFor(databaseUrl, 'postgres') });
  await client.connect();
  try {
    const setting = async (name: string): Promise<string> =>
      (await client.query<{ v: string }>(`SELECT current_setting($1) AS v`, [name])).rows[0]!.v;
    return {
      fsync: await setting('fsync'),
      synchronousCommit: await setting('synchronous_commit'),
      walSyncMethod: await setting('wal_sync_method'),
      serverVersion: await setting('server_version'),
      // Checkpoints decide the tail: each one's full-page writes swell the WAL for seconds after it.
      maxWalSize: await setting('max_wal_size'),
      checkpointTimeout: await setting('checkpoint_timeout'),
      walCompression: await setting('wal_compression'),
    };
  } finally {
    await client.end();
  }
}
