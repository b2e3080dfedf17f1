import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { LatencyRecorder } from './stats';

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
  /** With a rate: each transaction's latency from its scheduled start (its own time plus its schedule lag). */
  readonly latency?: ReturnType<LatencyRecorder['summary']>;
}

/**
 * Latencies (ms) from pgbench's per-transaction log (`-l`): `client transaction time script epoch µs [lag]`, times in
 * µs. Under `--rate` a transaction's latency runs from when it was scheduled, as our open loop counts it: its time
 * plus its schedule lag.
 */
export function latenciesFromPgbenchLog(text: string): number[] {
  const latencies: number[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.trim().split(/\s+/);
    const time = Number(fields[2]);
    const lag = fields[6] === undefined ? 0 : Number(fields[6]);
    if (fields.length < 6 || !Number.isFinite(time) || !Number.isFinite(lag))
      throw new Error(`assertion: a pgbench log line reads "client transaction time script epoch µs [lag]": ${line}`);
    latencies.push((time + lag) / 1000);
  }
  return latencies;
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

/**
 * pgbench's built-in TPC-B-like script: three updates, a select and an insert per transaction. Given a rate, it
 * schedules transactions at that rate (`--rate`, an open loop like ours) and reports their latencies as well.
 */
export async function runPgbench(options: {
  databaseUrl: string;
  clients: number;
  seconds: number;
  ratePerSecond?: number;
}): Promise<PgbenchResult> {
  const threads = Math.min(options.clients, 2);
  const logDir = options.ratePerSecond === undefined ? undefined : mkdtempSync(join(tmpdir(), 'carbonpay-pgbench-'));
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
    ...(logDir === undefined ? [] : ['-R', String(options.ratePerSecond), '-l', `--log-prefix=${join(logDir, 'tx')}`]),
    PGBENCH_DATABASE,
  ];
  try {
    const { stdout } = await run('pgbench', args, { maxBuffer: 16 * 1024 * 1024 });
    const result = { ...parsePgbenchOutput(stdout), clients: options.clients, seconds: options.seconds, raw: stdout };
    if (logDir === undefined) return result;
    const latency = new LatencyRecorder();
    for (const file of readdirSync(logDir))
      for (const ms of latenciesFromPgbenchLog(readFileSync(join(logDir, file), 'utf8'))) latency.record(ms);
    return { ...result, latency: latency.summary() };
  } finally {
    if (logDir !== undefined) rmSync(logDir, { recursive: true, force: true });
  }
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
