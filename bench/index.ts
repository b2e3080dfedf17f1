/**
 * npm run bench -- <uniform|hot|uniform-hot|mixed|long-stream|read-models|http|all> [--json] [--seconds N] [--clients N]
 *
 * Each scenario drives the ledger in-process against PostgreSQL, then runs pgbench's TPC-B-like script on the same
 * server with the same number of clients for the same time, and reports our transfers/s as a ratio to pgbench's TPS.
 * Every run ends by checking Σ balances = 0 per asset, computed by PostgreSQL from the journal lines.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { LEDGER_NODE_FLAGS, nodeArgsFor } from './processes';
import type { LedgerCommand } from '../core-ledger';
import { Ledger } from '../core-ledger';
import { LEDGER_READ_MODEL, PostgresReadModels, ProjectionRunner } from '../projections';
import { measureHttp } from './http';
import { preparePgbench, pgbenchScaleFor, readDurabilitySettings, runPgbench } from './pgbench';
import type { BenchLedger } from './scenarios';
import {
  allZero,
  BANK,
  checkpoint,
  ISSUANCE,
  merchantId,
  mulberry32,
  nextKey,
  openBenchLedger,
  payment,
  pointsId,
  populate,
  seedLongStream,
  sumOfBalancesByAsset,
  transfer,
  walletId,
} from './scenarios';
import type { LoopResult } from './stats';
import { LatencyRecorder, localPostgresCpuUs, postgresCpuUsSince, runClosedLoop, runOpenLoop } from './stats';

interface Options {
  scenario: string;
  json: boolean;
  seconds: number;
  clients: number;
  serverUrl: string;
  wallets: number;
  merchants: number;
  longStreamEvents: number;
}

interface ScenarioResult {
  scenario: string;
  clients: number;
  seconds: number;
  tps: number;
  pgbenchTps: number;
  ratio: number;
  p50Ms: number;
  p99Ms: number;
  refused: number;
  sumBalancesZero: boolean;
  sums: Record<string, string>;
  [extra: string]: unknown;
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = {
    scenario: 'all',
    json: false,
    seconds: 20,
    clients: 64,
    serverUrl: process.env['BENCH_DATABASE_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
    wallets: 100_000,
    merchants: 1_000,
    longStreamEvents: 1_000_000,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): number => {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n <= 0) throw new Error(`${arg} needs a positive integer`);
      return n;
    };
    if (arg === '--json') options.json = true;
    else if (arg === '--seconds') options.seconds = value();
    else if (arg === '--clients') options.clients = value();
    else if (arg === '--wallets') options.wallets = value();
    else if (arg === '--long-stream-events') options.longStreamEvents = value();
    else if (!arg.startsWith('--')) options.scenario = arg;
    else throw new Error(`unknown option ${arg}`);
  }
  return options;
}

function log(options: Options, line: string): void {
  if (!options.json) process.stderr.write(`${line}\n`);
}

/**
 * Our closed loop at saturation; optionally an open loop at 80 % of what it reached (p99 without coordinated
 * omission); then pgbench with the same clients for the same time. A CHECKPOINT before each phase gives every
 * phase, ours and pgbench's, a clean server instead of the previous phase's dirty buffers.
 */
async function measure(
  options: Options,
  bench: BenchLedger,
  scenario: string,
  next: () => LedgerCommand,
  withOpenLoopAt80Pct = false,
): Promise<ScenarioResult> {
  const operation = async (): Promise<boolean> => (await bench.ledger.execute(next())).status !== 'refused';
  await checkpoint(bench.url);
  const committedBefore = bench.ledger.stats.commandsCommitted;
  const batchesBefore = bench.ledger.stats.batches;
  const postgresBefore = localPostgresCpuUs();
  const nodeBefore = process.cpuUsage();
  const run = await runClosedLoop({ clients: options.clients, seconds: options.seconds, warmupSeconds: 2, operation });
  // Where the closed loop's time goes, per command committed (warm-up included): this process (the writer and its
  // load generator) and every PostgreSQL process; neither is saturated while the two wait on each other.
  const node = process.cpuUsage(nodeBefore);
  const postgresUs = postgresCpuUsSince(postgresBefore, localPostgresCpuUs());
  const committed = bench.ledger.stats.commandsCommitted - committedBefore;
  log(
    options,
    `${scenario}: ${run.tps.toFixed(0)} transfers/s, p50 ${run.latency.p50Ms.toFixed(2)} ms, p99 ${run.latency.p99Ms.toFixed(2)} ms`,
  );
  const extra: Record<string, unknown> = {
    nodeCpuUsPerCommand: Math.round((node.user + node.system) / committed),
    postgresCpuUsPerCommand: Math.round(postgresUs / committed),
    commandsPerBatch: Number((committed / (bench.ledger.stats.batches - batchesBefore)).toFixed(1)),
    batches: bench.ledger.stats.batches,
    conflicts: bench.ledger.stats.conflicts,
    appendsIssuedEarly: bench.ledger.stats.appendsIssuedEarly,
    appendsAfterFailedPredecessor: bench.ledger.stats.appendsAfterFailedPredecessor,
  };
  if (withOpenLoopAt80Pct) {
    const rate = Math.round(run.tps * 0.8);
    await checkpoint(bench.url);
    const open = await runOpenLoop({ ratePerSecond: rate, seconds: options.seconds, operation });
    log(
      options,
      `${scenario} at 80 % (${rate}/s, open loop): p50 ${open.latency.p50Ms.toFixed(2)} ms, p99 ${open.latency.p99Ms.toFixed(2)} ms`,
    );
    // The window right after a CHECKPOINT carries PostgreSQL's full-page writes (each page's first change after a
    // checkpoint logs the whole page); the next one is the steady state between checkpoints. Both are reported.
    const steady = await runOpenLoop({ ratePerSecond: rate, seconds: options.seconds, operation });
    log(
      options,
      `${scenario} at 80 %, the next window (steady state): p50 ${steady.latency.p50Ms.toFixed(2)} ms, p99 ${steady.latency.p99Ms.toFixed(2)} ms`,
    );
    Object.assign(extra, {
      rateAt80Pct: rate,
      achievedAt80Pct: Math.round(open.tps),
      p50MsAt80Pct: Number(open.latency.p50Ms.toFixed(2)),
      p99MsAt80Pct: Number(open.latency.p99Ms.toFixed(2)),
      p50MsAt80PctSteady: Number(steady.latency.p50Ms.toFixed(2)),
      p99MsAt80PctSteady: Number(steady.latency.p99Ms.toFixed(2)),
    });
  }
  await preparePgbench({ databaseUrl: options.serverUrl, scale: pgbenchScaleFor(options.clients) });
  await checkpoint(options.serverUrl);
  const pg = await runPgbench({ databaseUrl: options.serverUrl, clients: options.clients, seconds: options.seconds });
  log(options, `${scenario}: pgbench tpcb-like ${pg.tps.toFixed(0)} TPS with ${options.clients} clients`);
  if (withOpenLoopAt80Pct) Object.assign(extra, await pgbenchAt80Pct(options, pg.tps, scenario));
  return resultOf(scenario, options.clients, run, pg.tps, await sumOfBalancesByAsset(bench.url), extra);
}

/**
 * The yardstick for a p99 at 80 %: pgbench's own, scheduled at 80 % of the TPS it just reached, with the same
 * clients for the same time (latency from each transaction's scheduled start, as our open loop counts).
 */
async function pgbenchAt80Pct(options: Options, pgbenchTps: number, scenario: string): Promise<Record<string, number>> {
  const rate = Math.max(1, Math.round(pgbenchTps * 0.8));
  await checkpoint(options.serverUrl);
  const paced = await runPgbench({
    databaseUrl: options.serverUrl,
    clients: options.clients,
    seconds: options.seconds,
    ratePerSecond: rate,
  });
  const latency = paced.latency!;
  log(
    options,
    `${scenario}: pgbench at 80 % (${rate} TPS scheduled): p50 ${latency.p50Ms.toFixed(2)} ms, p99 ${latency.p99Ms.toFixed(2)} ms`,
  );
  return {
    pgbenchRateAt80Pct: rate,
    pgbenchP50MsAt80Pct: Number(latency.p50Ms.toFixed(2)),
    pgbenchP99MsAt80Pct: Number(latency.p99Ms.toFixed(2)),
  };
}

/** Two runs on the same latency recorder as one: their counts and times added, the recorder's summary. */
function pooled(earlier: LoopResult | undefined, later: LoopResult): LoopResult {
  if (earlier === undefined) return later;
  const seconds = earlier.seconds + later.seconds;
  const completed = earlier.completed + later.completed;
  return {
    completed,
    refused: earlier.refused + later.refused,
    seconds,
    tps: completed / seconds,
    latency: later.latency,
  };
}

/** One scenario's line of results: our figure, pgbench's from the same run, their ratio, Σ balances per asset. */
function resultOf(
  scenario: string,
  clients: number,
  run: LoopResult,
  pgbenchTps: number,
  sums: Record<string, string>,
  extra: Record<string, unknown>,
): ScenarioResult {
  return {
    scenario,
    clients,
    seconds: Number(run.seconds.toFixed(1)),
    tps: Math.round(run.tps),
    pgbenchTps: Math.round(pgbenchTps),
    ratio: Number((run.tps / pgbenchTps).toFixed(2)),
    p50Ms: Number(run.latency.p50Ms.toFixed(3)),
    p99Ms: Number(run.latency.p99Ms.toFixed(3)),
    refused: run.refused,
    sumBalancesZero: allZero(sums),
    sums,
    ...extra,
  };
}

async function populated(options: Options): Promise<BenchLedger> {
  const bench = await openBenchLedger(options.serverUrl, { fresh: true });
  const started = Date.now();
  await populate(bench.ledger, {
    wallets: options.wallets,
    merchants: options.merchants,
    points: 10_000,
    walletFunds: '1000000.00',
  });
  log(
    options,
    `population: ${options.wallets} wallets, ${options.merchants} merchants funded in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  return bench;
}

async function uniformAndHot(options: Options, which: 'uniform' | 'hot' | 'both'): Promise<ScenarioResult[]> {
  const bench = await populated(options);
  const results: ScenarioResult[] = [];
  try {
    if (which !== 'hot') {
      const rng = mulberry32(1);
      results.push(
        await measure(
          options,
          bench,
          'uniform',
          () => payment(rng, options.wallets, Math.floor(rng() * options.merchants)),
          true,
        ),
      );
    }
    if (which !== 'uniform') {
      const rng = mulberry32(2);
      results.push(await measure(options, bench, 'hot', () => payment(rng, options.wallets, 0)));
    }
  } finally {
    await bench.close();
  }
  return results;
}

async function mixed(options: Options): Promise<ScenarioResult> {
  const bench = await populated(options);
  try {
    const rng = mulberry32(3);
    const next = (): LedgerCommand => {
      const roll = rng();
      if (roll < 0.7) return payment(rng, options.wallets, Math.floor(rng() * options.merchants));
      const fen = 1 + Math.floor(rng() * 99);
      const amount = (fen / 100).toFixed(2).padStart(4, '0');
      if (roll < 0.8)
        return transfer(
          nextKey('refund'),
          'refund',
          merchantId(Math.floor(rng() * options.merchants)),
          walletId(Math.floor(rng() * options.wallets)),
          amount,
        );
      if (roll < 0.9)
        return transfer(nextKey('topup'), 'top_up', BANK, walletId(Math.floor(rng() * options.wallets)), amount);
      return transfer(nextKey('credit'), 'credit_issuance', ISSUANCE, pointsId(Math.floor(rng() * 10_000)), amount);
    };
    return await measure(options, bench, 'mixed', next);
  } finally {
    await bench.close();
  }
}

/**
 * One account with a long history: p50 of commands on it against a fresh account's, in the same run; plus how long a
 * writer that has never seen it takes to load it, with and without a snapshot.
 */
async function longStream(options: Options): Promise<ScenarioResult> {
  const bench = await openBenchLedger(options.serverUrl, { fresh: true });
  try {
    await populate(bench.ledger, { wallets: 2, merchants: 1, points: 0, walletFunds: '1.00' });
    const long = walletId(0);
    const fresh = walletId(1);
    const seedStarted = Date.now();
    await seedLongStream(bench.url, long, 'PLATFORM-SUSPENSE-CNY', options.longStreamEvents);
    log(
      options,
      `long stream: seeded ${options.longStreamEvents} events in ${((Date.now() - seedStarted) / 1000).toFixed(1)} s`,
    );

    /** How long a writer that has never seen the account takes to load it. */
    const coldLoadMs = async (accountId: string): Promise<number> => {
      const writer = new Ledger(bench.store);
      const started = process.hrtime.bigint();
      await writer.getAccount(accountId);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      await writer.close();
      return ms;
    };
    const firstLoadMs = await coldLoadMs(long); // whole history: no snapshot yet
    bench.ledger.invalidate();
    const commands = (target: string) => () => transfer(nextKey('long'), 'top_up', BANK, target, '0.01');
    await bench.ledger.execute(commands(long)()); // loads the history once, then writes a snapshot
    await new Promise((r) => setTimeout(r, 500));
    const snapshotLoadMs = await coldLoadMs(long);
    const freshLoadMs = await coldLoadMs(fresh);
    // The two accounts take turns in short windows, so that the shared machine's drift falls on both alike (one
    // long window each, one after the other, read the drift as much as the stream: 1.16 to 1.50 in three runs).
    const windows = 5;
    const windowSeconds = Math.max(3, Math.floor(options.seconds / 2)) / windows;
    const longSamples = new LatencyRecorder();
    const freshSamples = new LatencyRecorder();
    const windowRatios: number[] = [];
    let onLong: LoopResult | undefined;
    let onFresh: LoopResult | undefined;
    const on = (accountId: string, latency: LatencyRecorder, previous: LoopResult | undefined, warmupSeconds: number) =>
      runClosedLoop({
        clients: 1,
        seconds: windowSeconds,
        warmupSeconds,
        latency,
        operation: async () => (await bench.ledger.execute(commands(accountId)())).status !== 'refused',
      }).then((run) => pooled(previous, run));
    for (let window = 0; window < windows; window++) {
      const warmupSeconds = window === 0 ? 1 : 0;
      const longBefore = longSamples.count;
      onLong = await on(long, longSamples, onLong, warmupSeconds);
      const freshBefore = freshSamples.count;
      onFresh = await on(fresh, freshSamples, onFresh, warmupSeconds);
      windowRatios.push(
        Number((longSamples.percentile(50, longBefore) / freshSamples.percentile(50, freshBefore)).toFixed(2)),
      );
    }
    if (onLong === undefined || onFresh === undefined)
      throw new Error('assertion: the long-stream bench ran no window');
    log(
      options,
      `long stream: p50 ${onLong.latency.p50Ms.toFixed(2)} ms on the ${options.longStreamEvents}-event account, ${onFresh.latency.p50Ms.toFixed(2)} ms on a fresh one; cold load ${firstLoadMs.toFixed(0)} ms without snapshot, ${snapshotLoadMs.toFixed(1)} ms with, fresh ${freshLoadMs.toFixed(1)} ms`,
    );
    const pg = await runPgbench({
      databaseUrl: options.serverUrl,
      clients: 1,
      seconds: Math.max(3, Math.floor(options.seconds / 2)),
    }).catch(async () => {
      await preparePgbench({ databaseUrl: options.serverUrl, scale: pgbenchScaleFor(1) });
      return runPgbench({
        databaseUrl: options.serverUrl,
        clients: 1,
        seconds: Math.max(3, Math.floor(options.seconds / 2)),
      });
    });
    return resultOf('long-stream', 1, onLong, pg.tps, await sumOfBalancesByAsset(bench.url), {
      streamEvents: options.longStreamEvents,
      freshAccountP50Ms: Number(onFresh.latency.p50Ms.toFixed(3)),
      p50RatioLongOverFresh: Number((onLong.latency.p50Ms / onFresh.latency.p50Ms).toFixed(2)),
      p50RatioByWindow: windowRatios,
      coldLoadMsWithoutSnapshot: Math.round(firstLoadMs),
      coldLoadMsWithSnapshot: Number(snapshotLoadMs.toFixed(1)),
      coldLoadMsFreshAccount: Number(freshLoadMs.toFixed(1)),
    });
  } finally {
    await bench.close();
  }
}

interface WorkerBatch {
  readonly at: number;
  readonly generation: number;
  readonly rebuilding: boolean;
  readonly events: number;
  readonly stalenessMs: number;
}

/**
 * The read models under the uniform load: the runner in its own process (as deployed) catches up the population
 * from position zero (the rebuild path), then follows the uniform load twice: the closed loop at saturation, then
 * an open loop at 80 % of the rate the closed loop reached. Each batch reports how stale its oldest event was when
 * it committed (the lag: from the event's recording to its batch's commit in the read model); each phase's lag
 * counts the batches from its start (after the closed loop's warm-up) until the runner has applied everything the
 * phase wrote. pgbench runs after both, as in the other scenarios. Then a rebuild is requested and timed while the
 * runner keeps the live generation.
 */
async function readModels(options: Options): Promise<ScenarioResult> {
  const bench = await populated(options);
  const worker = spawn(process.execPath, nodeArgsFor('bench/projection-worker', LEDGER_NODE_FLAGS), {
    env: { ...process.env, DATABASE_URL: bench.url },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const batches: WorkerBatch[] = [];
  createInterface({ input: worker.stdout }).on('line', (line) => {
    const parsed = JSON.parse(line) as { kind: string } & WorkerBatch;
    if (parsed.kind === 'batch') batches.push(parsed);
  });
  const db = new PostgresReadModels(bench.url, 2);
  const eventsInLog = async (): Promise<number> =>
    Number((await db.query<{ n: string }>('SELECT count(*)::text AS n FROM cp_events'))[0]!.n);
  const appliedBy = (generation: number): number =>
    batches.filter((b) => b.generation === generation).reduce((n, b) => n + b.events, 0);
  const waitFor = async (done: () => boolean | Promise<boolean>): Promise<void> => {
    while (!(await done())) await new Promise((r) => setTimeout(r, 50));
  };
  const caughtUp = async (): Promise<number> => {
    const events = await eventsInLog();
    await waitFor(() => appliedBy(1) >= events);
    return Date.now();
  };
  const lagBetween = (from: number, to: number): ReturnType<LatencyRecorder['summary']> => {
    const staleness = new LatencyRecorder();
    for (const b of batches) if (b.generation === 1 && b.at >= from && b.at <= to) staleness.record(b.stalenessMs);
    return staleness.summary();
  };
  try {
    const populationEvents = await eventsInLog();
    const catchUpStarted = Date.now();
    await waitFor(() => appliedBy(1) >= populationEvents);
    const firstBatch = batches[0]!.at;
    const catchUpSeconds = (batches[batches.length - 1]!.at - Math.min(firstBatch, catchUpStarted)) / 1000;
    log(options, `read models: caught up ${populationEvents} events from zero in ${catchUpSeconds.toFixed(1)} s`);

    const rng = mulberry32(4);
    const operation = async (): Promise<boolean> =>
      (await bench.ledger.execute(payment(rng, options.wallets, Math.floor(rng() * options.merchants)))).status !==
      'refused';
    await checkpoint(bench.url);
    const closedFrom = Date.now() + 2_000;
    const closed = await runClosedLoop({
      clients: options.clients,
      seconds: options.seconds,
      warmupSeconds: 2,
      operation,
    });
    const closedLag = lagBetween(closedFrom, await caughtUp());
    log(
      options,
      `read models: ${closed.tps.toFixed(0)} payments/s (closed loop), lag p50 ${closedLag.p50Ms} ms, p99 ${closedLag.p99Ms} ms over ${closedLag.count} batches`,
    );

    const rate = Math.round(closed.tps * 0.8);
    await checkpoint(bench.url);
    const openFrom = Date.now();
    const open = await runOpenLoop({ ratePerSecond: rate, seconds: options.seconds, operation });
    const openLag = lagBetween(openFrom, await caughtUp());
    log(
      options,
      `read models: ${open.tps.toFixed(0)} payments/s (open loop at ${rate}/s), lag p50 ${openLag.p50Ms} ms, p99 ${openLag.p99Ms} ms over ${openLag.count} batches`,
    );

    await preparePgbench({ databaseUrl: options.serverUrl, scale: pgbenchScaleFor(options.clients) });
    await checkpoint(options.serverUrl);
    const pg = await runPgbench({ databaseUrl: options.serverUrl, clients: options.clients, seconds: options.seconds });
    log(options, `read models: pgbench tpcb-like ${pg.tps.toFixed(0)} TPS with ${options.clients} clients`);

    const requester = new ProjectionRunner(db, bench.store, LEDGER_READ_MODEL);
    const rebuildStarted = Date.now();
    await requester.rebuild();
    const rebuildSeconds = (Date.now() - rebuildStarted) / 1000;
    const rebuiltEvents = appliedBy(2);
    log(options, `read models: rebuild of ${rebuiltEvents} events in ${rebuildSeconds.toFixed(1)} s`);
    return resultOf('read-models', options.clients, closed, pg.tps, await sumOfBalancesByAsset(bench.url), {
      batches: bench.ledger.stats.batches,
      conflicts: bench.ledger.stats.conflicts,
      batchesUnderLoad: closedLag.count,
      lagP50Ms: Math.round(closedLag.p50Ms),
      lagP99Ms: Math.round(closedLag.p99Ms),
      lagMaxMs: Math.round(closedLag.maxMs),
      rateAt80Pct: rate,
      achievedAt80Pct: Math.round(open.tps),
      p50MsAt80Pct: Number(open.latency.p50Ms.toFixed(2)),
      p99MsAt80Pct: Number(open.latency.p99Ms.toFixed(2)),
      batchesAt80Pct: openLag.count,
      lagP50MsAt80Pct: Math.round(openLag.p50Ms),
      lagP99MsAt80Pct: Math.round(openLag.p99Ms),
      lagMaxMsAt80Pct: Math.round(openLag.maxMs),
      catchUpEvents: populationEvents,
      catchUpEventsPerSecond: Math.round(populationEvents / catchUpSeconds),
      rebuildEvents: rebuiltEvents,
      rebuildEventsPerSecond: Math.round(rebuiltEvents / rebuildSeconds),
    });
  } finally {
    worker.kill('SIGTERM');
    await new Promise((r) => worker.once('exit', r));
    await db.close();
    await bench.close();
  }
}

/**
 * Payments over HTTP from this process to `carbonpay serve` in another, against the bare door's ceiling (same
 * stack, parse and echo) and pgbench TPC-B-like with the same clients, in one run.
 */
async function http(options: Options): Promise<ScenarioResult> {
  const bench = await populated(options);
  await bench.close(); // the server process is the only writer
  const rng = mulberry32(5);
  const next = (): LedgerCommand => payment(rng, options.wallets, Math.floor(rng() * options.merchants));
  await checkpoint(bench.url);
  const figures = await measureHttp({
    databaseUrl: bench.url,
    redisUrl: process.env['BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6379',
    clients: options.clients,
    seconds: options.seconds,
    nextPayment: next,
    accountIds: [
      ...Array.from({ length: options.wallets }, (_, i) => walletId(i)),
      ...Array.from({ length: options.merchants }, (_, i) => merchantId(i)),
    ],
    log: (line) => log(options, line),
  });
  await preparePgbench({ databaseUrl: options.serverUrl, scale: pgbenchScaleFor(options.clients) });
  await checkpoint(options.serverUrl);
  const pg = await runPgbench({ databaseUrl: options.serverUrl, clients: options.clients, seconds: options.seconds });
  log(options, `http: pgbench tpcb-like ${pg.tps.toFixed(0)} TPS with ${options.clients} clients`);
  const pgbenchPaced = await pgbenchAt80Pct(options, pg.tps, 'http');
  return resultOf('http', options.clients, figures.payments, pg.tps, await sumOfBalancesByAsset(bench.url), {
    ...pgbenchPaced,
    echoTps: Math.round(figures.echo.tps),
    ratioToEcho: Number((figures.payments.tps / figures.echo.tps).toFixed(2)),
    echoP99Ms: Number(figures.echo.latency.p99Ms.toFixed(2)),
    rateAt80Pct: figures.rateAt80Pct,
    achievedAt80Pct: Math.round(figures.paymentsAt80Pct.tps),
    p50MsAt80Pct: Number(figures.paymentsAt80Pct.latency.p50Ms.toFixed(2)),
    p99MsAt80Pct: Number(figures.paymentsAt80Pct.latency.p99Ms.toFixed(2)),
    p50MsAt80PctSteady: Number(figures.paymentsAt80PctSteady.latency.p50Ms.toFixed(2)),
    p99MsAt80PctSteady: Number(figures.paymentsAt80PctSteady.latency.p99Ms.toFixed(2)),
    refusedAt80Pct: figures.paymentsAt80Pct.refused,
    authenticatedTps: Math.round(figures.authenticatedPayments.tps),
    authenticatedP99Ms: Number(figures.authenticatedPayments.latency.p99Ms.toFixed(2)),
    ratioAuthenticatedToUnauthenticated: Number((figures.authenticatedPayments.tps / figures.payments.tps).toFixed(2)),
  });
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const missing = LEDGER_NODE_FLAGS.filter((flag) => !process.execArgv.includes(flag));
  if (missing.length > 0)
    process.stderr.write(
      `bench: the in-process scenarios run the ledger here without ${missing.join(' ')} (npm start's flags); npm run bench gives them\n`,
    );
  const durability = await readDurabilitySettings(options.serverUrl);
  if (durability.fsync !== 'on' || durability.synchronousCommit !== 'on') {
    throw new Error(
      `refusing to compare: fsync=${durability.fsync}, synchronous_commit=${durability.synchronousCommit} (both must be on)`,
    );
  }
  log(
    options,
    `PostgreSQL ${durability.serverVersion}, fsync=${durability.fsync}, synchronous_commit=${durability.synchronousCommit}, wal_sync_method=${durability.walSyncMethod}, max_wal_size=${durability.maxWalSize}, checkpoint_timeout=${durability.checkpointTimeout}, wal_compression=${durability.walCompression}`,
  );
  const results: ScenarioResult[] = [];
  // Each result is printed as soon as its scenario ends, so a later failure loses nothing.
  const report = (r: ScenarioResult): void => {
    results.push(r);
    if (options.json) process.stdout.write(`${JSON.stringify(r)}\n`);
    else
      process.stdout.write(
        `${r.scenario.padEnd(12)} clients ${String(r.clients).padStart(3)}  ${String(r.tps).padStart(7)} /s  pgbench ${String(r.pgbenchTps).padStart(6)} TPS  ratio ${r.ratio}  p50 ${r.p50Ms} ms  p99 ${r.p99Ms} ms  Σ=0 ${r.sumBalancesZero}\n`,
      );
  };
  const s = options.scenario;
  if (s === 'uniform' || s === 'hot') (await uniformAndHot(options, s)).forEach(report);
  else if (s === 'uniform-hot') (await uniformAndHot(options, 'both')).forEach(report);
  else if (s === 'mixed') report(await mixed(options));
  else if (s === 'long-stream') report(await longStream(options));
  else if (s === 'read-models') report(await readModels(options));
  else if (s === 'http') report(await http(options));
  else if (s === 'all') {
    (await uniformAndHot(options, 'both')).forEach(report);
    report(await mixed(options));
    report(await longStream(options));
    report(await readModels(options));
    report(await http(options));
  } else
    throw new Error(`unknown scenario ${s}: uniform, hot, uniform-hot, mixed, long-stream, read-models, http or all`);
  if (results.some((r) => !r.sumBalancesZero)) process.exitCode = 1;
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${(error as Error).message}\n`);
  process.exitCode = 1;
});
