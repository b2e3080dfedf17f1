/**
 * What the fault drills (bench/drills/*.ts) and their CI-sized tests share: a `carbonpay serve` child process, a
 * payment load over HTTP with idempotency keys that records what was acknowledged, the retry of what was not, and
 * the checks every drill ends with (no acknowledged payment lost, none twice, Σ balances = 0 per asset, read
 * models equal to the ledger). Private PostgreSQL clusters and Redis servers are started here, never the shared
 * ones (5432, 6379).
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { dirname, join, relative } from 'node:path';
import ts from 'typescript';
import { createInterface } from 'node:readline';
import { Client } from 'pg';
import { ACCOUNT_KINDS, transferStreamId } from '../../core-ledger';
import type { AccountKind } from '../../core-ledger';
import { signRequest } from '../../security';

export const REPO_ROOT = join(__dirname, '..', '..');
export const PG_BIN = process.env['PG_BIN'] ?? '/usr/lib/postgresql/15/bin';
export const BANK = 'PLATFORM-BANK-CLEARING-CNY';

/** A T7 account id: 86 · class · type · area 794 · 9-digit sequence (as the tests' fixtures). */
export function codedAccount(kind: AccountKind, sequence: number): string {
  const definition = ACCOUNT_KINDS[kind];
  const customerClass = definition.t7CustomerClasses?.includes('2') ? '2' : '1';
  return `86${customerClass}${definition.t7AccountType}794${String(sequence).padStart(9, '0')}`;
}

export const userWallet = (n: number): string => codedAccount('user_main', n);

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------------------------
// Databases
// ---------------------------------------------------------------------------------------------------------------

export function databaseUrlOn(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/** A new empty database on a server; `drop` removes it (forcing sessions off). */
export async function createDatabase(
  serverUrl: string,
  prefix: string,
): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const name = `cp_${prefix}_${randomBytes(4).toString('hex')}`.toLowerCase();
  const admin = new Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return {
    url: databaseUrlOn(serverUrl, name),
    name,
    drop: async () => {
      const c = new Client({ connectionString: serverUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** A PostgreSQL cluster of the drill's own (initdb in a temporary folder, a port of its own): restartable at will. */
export class PrivateCluster {
  constructor(
    readonly dataDir: string,
    readonly port: number,
  ) {}

  get serverUrl(): string {
    return `postgresql://postgres@127.0.0.1:${this.port}/postgres`;
  }

  static async create(dataDir: string, port: number): Promise<PrivateCluster> {
    if (existsSync(dataDir)) rmSync(dataDir, { recursive: true, force: true });
    mkdirSync(dataDir, { recursive: true });
    // PostgreSQL refuses to run as root: as root, the cluster belongs to the postgres user.
    if (process.getuid?.() === 0) run('chown', ['postgres:postgres', dataDir]);
    asPostgres(join(PG_BIN, 'initdb'), ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync']);
    const cluster = new PrivateCluster(dataDir, port);
    cluster.pgCtl('start');
    return cluster;
  }

  /** fsync and synchronous_commit stay on (the defaults): an acknowledged commit must survive the restart. */
  pgCtl(action: 'start' | 'stop' | 'restart', mode: 'fast' | 'immediate' = 'fast'): void {
    const options = `-p ${this.port} -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=200`;
    const args = ['-D', this.dataDir, '-w', '-o', options, '-l', join(this.dataDir, 'server.log')];
    if (action !== 'start') args.push('-m', mode);
    asPostgres(join(PG_BIN, 'pg_ctl'), [action, ...args]);
  }

  /** A cluster in a temporary folder on a free port, for `work`, removed afterwards. */
  static async around<T>(name: string, work: (cluster: PrivateCluster) => Promise<T>): Promise<T> {
    const cluster = await PrivateCluster.create(join(tmpdir(), `${name}-${process.pid}`), await freePort());
    try {
      return await work(cluster);
    } finally {
      cluster.destroy();
    }
  }

  destroy(): void {
    const [command, ...args] = asPostgresArgs(join(PG_BIN, 'pg_ctl'), ['stop', '-D', this.dataDir, '-m', 'immediate']);
    spawnSync(command!, args, { stdio: 'ignore' });
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** A Redis server of the drill's own (no persistence), on a port that is not 6379. */
export class PrivateRedis {
  constructor(readonly port: number) {
    if (port === 6379) throw new Error('the shared Redis on 6379 is never used by a drill');
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  start(): void {
    run('redis-server', ['--port', String(this.port), '--save', '', '--appendonly', 'no', '--daemonize', 'yes']);
    for (let i = 0; i < 50; i++) {
      if (spawnSync('redis-cli', ['-p', String(this.port), 'ping'], { encoding: 'utf8' }).stdout.trim() === 'PONG')
        return;
      spawnSync('sleep', ['0.1']);
    }
    throw new Error(`redis-server on ${this.port} did not answer`);
  }

  stop(): void {
    spawnSync('redis-cli', ['-p', String(this.port), 'shutdown', 'nosave'], { stdio: 'ignore' });
  }
}

function asPostgresArgs(command: string, args: readonly string[]): string[] {
  return process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--', command, ...args] : [command, ...args];
}

function asPostgres(command: string, args: readonly string[]): void {
  const [program, ...rest] = asPostgresArgs(command, args);
  run(program!, rest);
}

function run(command: string, args: readonly string[]): void {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0)
    throw new Error(`${command} ${args.join(' ')} failed (${result.status}): ${result.stderr}${result.stdout}`);
}

// ---------------------------------------------------------------------------------------------------------------
// The service process
// ---------------------------------------------------------------------------------------------------------------

/** The folders `carbonpay serve` loads (tsconfig.build.json's include). */
const APP_FOLDERS = ['core-ledger', 'projections', 'api', 'security', 'pos-gateway', 'clearing', 'app', 'services'];

/**
 * The application transpiled to JavaScript once per drill (TypeScript's transpileModule, no type check: `npx tsc`
 * checks), so that a killed service is back in about a second instead of ts-node's 10–20 s, which would measure the
 * compiler rather than the recovery.
 */
export function transpileApp(outDir: string = join(tmpdir(), 'cp-drill-build')): string {
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.CommonJS,
    target: ts.ScriptTarget.ES2022,
    esModuleInterop: true,
    isolatedModules: true,
    sourceMap: false,
  };
  const walk = (folder: string): string[] =>
    readdirSync(folder, { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory()
        ? walk(join(folder, entry.name))
        : entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')
          ? [join(folder, entry.name)]
          : [],
    );
  for (const file of APP_FOLDERS.flatMap((f) => walk(join(REPO_ROOT, f)))) {
    const target = join(outDir, relative(REPO_ROOT, file)).replace(/\.ts$/, '.js');
    // unchanged since the last drill: kept
    if (existsSync(target) && statSync(target).mtimeMs > statSync(file).mtimeMs) continue;
    const output = ts.transpileModule(readFileSync(file, 'utf8'), { compilerOptions: options, fileName: file });
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, output.outputText);
  }
  return outDir;
}

export interface ServeOptions {
  readonly databaseUrl: string;
  readonly port: number;
  /** The output of {@link transpileApp}; undefined: ts-node from the sources (slow to start). */
  readonly build?: string;
  readonly env?: Readonly<Record<string, string>>;
}

/** `carbonpay serve` from the sources (ts-node), resolved once it listens. */
export async function startServe(options: ServeOptions): Promise<ChildProcess> {
  const entry =
    options.build === undefined
      ? ['-r', 'ts-node/register/transpile-only', join(REPO_ROOT, 'app', 'cli.ts'), 'serve']
      : [join(options.build, 'app', 'cli.js'), 'serve'];
  const child = spawn(process.execPath, entry, {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      DATABASE_URL: options.databaseUrl,
      CARBONPAY_EVENT_STORE: 'postgres',
      // the transpiled build lives outside the repository: its imports resolve in the repository's node_modules
      NODE_PATH: join(REPO_ROOT, 'node_modules'),
      HOST: '127.0.0.1',
      PORT: String(options.port),
      CARBONPAY_AUTH: 'off',
      LOG_LEVEL: 'warn',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4_000)));
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('carbonpay listening on')) resolve();
    });
    child.once('exit', (code, signal) =>
      reject(new Error(`serve exited (${code ?? signal}) before listening: ${stderr}`)),
    );
  });
  return child;
}

export async function stopServe(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await exited;
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------------------------

export interface Signer {
  readonly clientId: string;
  readonly secret: Buffer;
}

/** Per request, at most this long: a request that hangs on a dead dependency is counted as unanswered. */
export const REQUEST_TIMEOUT_MS = 5_000;

export async function postJson(
  base: string,
  path: string,
  body: unknown,
  idempotencyKey: string,
  signer?: Signer,
): Promise<{ status: number; body: Record<string, unknown>; replayed: boolean }> {
  const text = JSON.stringify(body);
  const headers: Record<string, string> = { 'content-type': 'application/json', 'idempotency-key': idempotencyKey };
  if (signer)
    Object.assign(
      headers,
      signRequest(
        { clientId: signer.clientId, method: 'hmac-sm3', secret: signer.secret },
        {
          method: 'POST',
          pathWithQuery: path,
          timestamp: String(Date.now()),
          nonce: randomBytes(12).toString('hex'),
          body: Buffer.from(text),
        },
      ),
    );
  const response = await fetch(`${base}${path}`, {
    method: 'POST',
    headers,
    body: text,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const answer = await response.text();
  return {
    status: response.status,
    body: answer === '' ? {} : (JSON.parse(answer) as Record<string, unknown>),
    replayed: response.headers.get('idempotent-replayed') === 'true',
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The payment load
// ---------------------------------------------------------------------------------------------------------------

export interface PaymentLoadOptions {
  /** API instances to spread the load over (several: the two-instance run). */
  readonly bases: () => readonly string[];
  readonly wallets: number;
  readonly clients: number;
  readonly signer?: Signer;
  /** Amount of each payment (CNY); every wallet is topped up enough for the whole run. */
  readonly amount: string;
}

/** A transfer the load sent: its key and body, and whether it was acknowledged (2xx) at least once. */
export interface SentTransfer {
  readonly key: string;
  readonly transferId: string;
  readonly body: Record<string, unknown>;
  acknowledged: boolean;
  /** Answers other than 2xx or a refused connection, by cause. */
  failures: number;
}

export interface LoadFigures {
  sent: number;
  acknowledged: number;
  failed: number;
  latencyMsP50: number;
  latencyMsP99: number;
  elapsedMs: number;
  /** Answered only on a retry with the same key; `replayed`: of those, answered as replays (committed before). */
  retriedInLoad: number;
  replayedInLoad: number;
}

/** Opens the wallets over HTTP and tops each up from the bank clearing account (keys derived from the run). */
export async function openWallets(
  base: string,
  run: string,
  wallets: number,
  topUpCny: string,
  signer?: Signer,
): Promise<void> {
  for (let w = 0; w < wallets; w++) {
    const accountId = userWallet(w);
    const open = await postJson(
      base,
      '/v1/accounts',
      { accountId, kind: 'user_main', ownerId: `drill-${w}` },
      `${run}-open-${w}`,
      signer,
    );
    if (open.status !== 201 && open.status !== 200)
      throw new Error(`open ${accountId}: ${open.status} ${JSON.stringify(open.body)}`);
    const topUp = await postJson(
      base,
      '/v1/transfers',
      {
        transferType: 'top_up',
        postings: [
          { accountId: BANK, direction: 'debit', amount: topUpCny },
          { accountId, direction: 'credit', amount: topUpCny },
        ],
      },
      `${run}-topup-${w}`,
      signer,
    );
    if (topUp.status !== 201) throw new Error(`top up ${accountId}: ${topUp.status} ${JSON.stringify(topUp.body)}`);
  }
}

/**
 * Payments between wallets (POST /v1/transfers, each with its own idempotency key) from `clients` concurrent
 * clients until `stop()` says so. A payment is acknowledged when a 2xx answer came back; anything else (an error
 * status, a reset connection, a time-out) leaves it unacknowledged, to be retried with the same key.
 */
export class PaymentLoad {
  readonly sent = new Map<string, SentTransfer>();
  private readonly latenciesMs: number[] = [];
  private sequence = 0;
  /** Payments answered only on a retry during the load, and of those the ones answered as replays. */
  private retriedInLoad = 0;
  private replayedInLoad = 0;
  private running = true;
  private loops: Promise<void>[] = [];
  private started = 0;
  private stoppedAt = 0;

  constructor(
    private readonly run: string,
    private readonly options: PaymentLoadOptions,
  ) {}

  start(): void {
    this.started = Date.now();
    this.loops = Array.from({ length: this.options.clients }, (_, c) => this.client(c));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.stoppedAt = Date.now();
  }

  figures(): LoadFigures {
    const sorted = [...this.latenciesMs].sort((a, b) => a - b);
    const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
    const all = [...this.sent.values()];
    return {
      sent: all.length,
      acknowledged: all.filter((t) => t.acknowledged).length,
      failed: all.filter((t) => !t.acknowledged).length,
      latencyMsP50: Math.round(at(0.5) * 10) / 10,
      latencyMsP99: Math.round(at(0.99) * 10) / 10,
      elapsedMs: (this.stoppedAt || Date.now()) - this.started,
      retriedInLoad: this.retriedInLoad,
      replayedInLoad: this.replayedInLoad,
    };
  }

  private async client(c: number): Promise<void> {
    while (this.running) {
      const n = this.sequence++;
      const from = userWallet((c + n) % this.options.wallets);
      const to = userWallet((c + n + 1) % this.options.wallets);
      const key = `${this.run}-pay-${n}`;
      const transfer: SentTransfer = {
        key,
        transferId: key,
        body: {
          transferId: key,
          transferType: 'payment',
          postings: [
            { accountId: from, direction: 'debit', amount: this.options.amount },
            { accountId: to, direction: 'credit', amount: this.options.amount },
          ],
        },
        acknowledged: false,
        failures: 0,
      };
      this.sent.set(key, transfer);
      // A client whose request got no answer sends it again with the same key (after a pause), as a real one does.
      for (let attempt = 0; this.running || attempt === 0; attempt++) {
        const bases = this.options.bases();
        const base = bases[(n + attempt) % bases.length]!;
        const started = performance.now();
        const outcome = await this.attempt(base, transfer);
        if (outcome !== 'failed') {
          if (attempt === 0) this.latenciesMs.push(performance.now() - started);
          else this.retriedInLoad++;
          if (outcome === 'replayed') this.replayedInLoad++;
          break;
        }
        await sleep(Math.min(1_000, 50 * 2 ** attempt));
      }
    }
  }

  /** One try. */
  async attempt(base: string, transfer: SentTransfer): Promise<'acknowledged' | 'replayed' | 'failed'> {
    try {
      const answer = await postJson(base, '/v1/transfers', transfer.body, transfer.key, this.options.signer);
      if (answer.status === 201 || answer.status === 200) {
        transfer.acknowledged = true;
        return answer.replayed ? 'replayed' : 'acknowledged';
      }
      transfer.failures++;
      return 'failed';
    } catch {
      transfer.failures++;
      return 'failed';
    }
  }

  /** Retries every unacknowledged payment with its key until each is answered (bounded). */
  async retryUnacknowledged(bases: readonly string[], maxRounds = 20): Promise<{ retried: number; replayed: number }> {
    let retried = 0;
    let replayed = 0;
    for (let round = 0; round < maxRounds; round++) {
      const open = [...this.sent.values()].filter((t) => !t.acknowledged);
      if (open.length === 0) return { retried, replayed };
      for (const transfer of open) {
        retried += round === 0 ? 1 : 0;
        try {
          const answer = await postJson(bases[0]!, '/v1/transfers', transfer.body, transfer.key, this.options.signer);
          if (answer.status === 201 || answer.status === 200) {
            transfer.acknowledged = true;
            if (answer.replayed) replayed++;
          }
        } catch {
          // the door is still down: next round
        }
      }
      await sleep(250);
    }
    const left = [...this.sent.values()].filter((t) => !t.acknowledged).length;
    throw new Error(`${left} payments still unanswered after ${maxRounds} rounds of retries`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The checks every drill ends with
// ---------------------------------------------------------------------------------------------------------------

export interface DrillChecks {
  /** Acknowledged payments whose transfer is not in the log (must be 0). */
  readonly lost: number;
  /** Transfers of the run in the log more than once, or whose journal lines are not exactly 2 (must be 0). */
  readonly duplicated: number;
  /** Transfers of the run in the log (each sent key at most once). */
  readonly inLog: number;
  /** Σ balances per asset in the read model (each must be 0). */
  readonly sumsByAsset: Readonly<Record<string, string>>;
  /** Accounts whose read-model balance differs from the last running balance in the log (must be 0). */
  readonly readModelDiffers: number;
  /** Milliseconds until the read models had applied the whole log. */
  readonly convergedMs: number;
}

/**
 * The ledger against what the load saw: every acknowledged payment's transfer in the log, none twice (the transfer
 * stream is the idempotency record: one `TransferPosted` per key; two journal lines each), Σ balances = 0 per asset
 * and, once the read models caught up, every account's balance equal to its last journal line in the log.
 */
export async function checkDrill(
  databaseUrl: string,
  run: string,
  sent: ReadonlyMap<string, SentTransfer>,
  convergeTimeoutMs = 60_000,
): Promise<DrillChecks> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const started = Date.now();
    for (;;) {
      const lag = await client.query<{ applied: string; head: string }>(
        `SELECT coalesce((SELECT max(c.position) FROM cp_projection_checkpoints c JOIN cp_projections p
                    ON p.projection = c.projection AND p.active_generation = c.generation), '') AS applied,
                coalesce((SELECT lpad(tx_id::text, 20, '0') || ':' || lpad(seq::text, 20, '0') FROM cp_events
                           ORDER BY tx_id DESC, seq DESC LIMIT 1), '') AS head`,
      );
      const { applied, head } = lag.rows[0]!;
      if (applied >= head) break;
      if (Date.now() - started > convergeTimeoutMs)
        throw new Error(`the read models did not catch up with the log: applied ${applied}, head ${head}`);
      await sleep(50);
    }
    const convergedMs = Date.now() - started;
    const headers = await client.query<{ stream_id: string; n: string }>(
      `SELECT stream_id, count(*)::text AS n FROM cp_events
        WHERE type = 'TransferPosted' AND stream_id LIKE $1 GROUP BY stream_id`,
      [`${transferStreamId(`${run}-pay-`)}%`],
    );
    const inLog = new Map(headers.rows.map((r) => [r.stream_id, Number(r.n)]));
    let lost = 0;
    for (const t of sent.values()) if (t.acknowledged && inLog.get(transferStreamId(t.transferId)) !== 1) lost++;
    const lines = await client.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM (SELECT transfer_id FROM cp_read.journal WHERE transfer_id LIKE $1
        GROUP BY transfer_id HAVING count(*) <> 2) x`,
      [`${run}-pay-%`],
    );
    const duplicated = [...inLog.values()].filter((n) => n !== 1).length + Number(lines.rows[0]!.n);
    const sums = await client.query<{ asset: string; total: string }>(
      'SELECT asset, sum(balance)::text AS total FROM cp_read.accounts GROUP BY asset ORDER BY asset',
    );
    const differs = await client.query<{ n: string }>(
      `WITH last_line AS (
         SELECT DISTINCT ON (data->>'accountId') data->>'accountId' AS account_id, (data->>'balance')::numeric AS balance
           FROM cp_events WHERE type = 'AccountPosted' ORDER BY data->>'accountId', revision DESC)
       SELECT count(*)::text AS n FROM cp_read.accounts a LEFT JOIN last_line l ON l.account_id = a.account_id
        WHERE a.balance <> coalesce(l.balance, 0)`,
    );
    return {
      lost,
      duplicated,
      inLog: inLog.size,
      sumsByAsset: Object.fromEntries(sums.rows.map((s) => [s.asset, s.total])),
      readModelDiffers: Number(differs.rows[0]!.n),
      convergedMs,
    };
  } finally {
    await client.end();
  }
}

/** True when a drill's checks hold: nothing lost, nothing twice, books balanced, read models equal to the log. */
export function drillPassed(checks: DrillChecks): boolean {
  return (
    checks.lost === 0 &&
    checks.duplicated === 0 &&
    Object.values(checks.sumsByAsset).every((s) => Number(s) === 0) &&
    checks.readModelDiffers === 0
  );
}
