/**
 * npx tsc -p tsconfig.bench.json && node --max-semi-space-size=32 dist/bench/pos.js [--connections 1000] [--seconds 20] [--rate N]
 *   [--compare-http] [--fuzz 1000000] [--json]
 *
 * The POS door under load (issue #9, must-shows 3 and 4), against a real PostgreSQL database it creates
 * (`carbonpay_bench_pos` on BENCH_DATABASE_URL's server). The gateway — POS server, PosLedgerService, payment and
 * wallet services, the ledger writer — runs in a child process (`--serve`), as in production; this process is the
 * terminals (TerminalSimulator: sign-on, MAC'd sales, MAC check of every reply).
 *
 * - Load: every terminal signs on, then (1) a closed loop: each connection sends its next sale as soon as the last is
 *   answered — the saturation figure (sales/s) and its latencies; (2) an open loop at `--rate` sales/s (default half
 *   the saturation figure), spread evenly over all connections, latency from each sale's scheduled start (no
 *   coordinated omission): the latency a terminal sees below saturation. An error is a transport failure, a reply
 *   other than 00, or a reply whose MAC does not verify. The books are checked at the end: Σ balances = 0 per asset,
 *   and captured payments = approved sales.
 * - `--compare-http`: first measures the HTTP payment figure of issue #5 in this run (`bench/index.ts http`: ledger
 *   payments over `POST /v1/transfers` from 64 clients, closed loop, on its own database), then runs the open loop
 *   at half of it (unless `--rate` says otherwise): issue #9's must-show 3 — sales/s ≥ 0.5× HTTP with p99 ≤ 50 ms.
 * - Fuzz (`--fuzz N`): N random, truncated and mutated frames from valid seeds (signed sales, reversals, balance,
 *   sign-on/off, settlement, batch upload of registered terminals) over 64 connections; every frame must get a reply
 *   or a closed connection within the deadline (else: a hung connection), and the gateway process must live
 *   (else: a crash). Then a terminal signs on and sells, to show it still serves.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { Client } from 'pg';
import { LEDGER_NODE_FLAGS, nodeArgsFor } from './processes';
import type { CommandContext } from '../core-ledger';
import { Ledger, Money, openPostgresEventStore, PLATFORM_ACCOUNTS } from '../core-ledger';
import {
  createPosServer,
  CUP_POS_SPEC,
  DEFAULT_HEADER,
  DEFAULT_TPDU,
  encodeFrame,
  FrameFuzzer,
  PosJournal,
  PosLedgerService,
  runFuzz,
  TerminalRegistry,
  TerminalSimulator,
} from '../pos-gateway';
import type { PosMessage, PosServerStats } from '../pos-gateway';
import { PostgresReadModels } from '../projections';
import { DataKeyRing } from '../security';
import { BankChannelSimulator, PaymentService, PLAINTEXT, WalletService } from '../services';
import type { WalletRecord } from '../services';
import { freshDatabase, sumOfBalancesByAsset } from './scenarios';
import { LatencyRecorder } from './stats';

const BENCH_DATABASE = 'carbonpay_bench_pos';
const SETUP: CommandContext = { actor: 'bench-setup', channel: 'system' };
const ACQUIRER_ID = '48480000';
const WALLET_TOP_UP = '900.00';
const FEE_RATE_BPS = 60;
/** Sales at most 1.99 CNY: within the password-free (免密) limits, so no PIN and no scrypt per sale. */
const MAX_SALE_FEN = 199;
const REPLY_TIMEOUT_MS = 20_000;
const FUZZ_CONNECTIONS = 64;
const FUZZ_READ_TIMEOUT_MS = 1_000;
const FUZZ_TERMINALS = 8;

interface Options {
  connections: number;
  seconds: number;
  rate: number | undefined;
  merchants: number;
  fuzz: number | undefined;
  compareHttp: boolean;
  json: boolean;
  serverUrl: string;
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = {
    connections: 1_000,
    seconds: 20,
    rate: undefined,
    merchants: 100,
    fuzz: undefined,
    compareHttp: false,
    json: false,
    serverUrl: process.env['BENCH_DATABASE_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): number => {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n <= 0) throw new Error(`${arg} needs a positive integer`);
      return n;
    };
    if (arg === '--json') options.json = true;
    else if (arg === '--compare-http') options.compareHttp = true;
    else if (arg === '--connections') options.connections = value();
    else if (arg === '--seconds') options.seconds = value();
    else if (arg === '--rate') options.rate = value();
    else if (arg === '--merchants') options.merchants = value();
    else if (arg === '--fuzz') options.fuzz = value();
    else throw new Error(`unknown option ${arg}`);
  }
  return options;
}

// ---------------------------------------------------------------------------------------------------------------
// The gateway process

interface GatewayEnv {
  DATABASE_URL: string;
  POS_MASTER_KEY_HEX: string;
  POS_INDEX_KEY_HEX: string;
  POS_READ_TIMEOUT_MS: string;
}

async function openServices(env: GatewayEnv, poolSize: number) {
  const store = await openPostgresEventStore({ connectionString: env.DATABASE_URL, maxConnections: 8 });
  const database = new PostgresReadModels(env.DATABASE_URL, poolSize);
  const ledger = new Ledger(store);
  const wallets = new WalletService(database, ledger, PLAINTEXT, Buffer.from(env.POS_INDEX_KEY_HEX, 'hex'));
  const payments = new PaymentService(database, ledger, wallets, PLAINTEXT);
  const keyRing = await DataKeyRing.open(database, Buffer.from(env.POS_MASTER_KEY_HEX, 'hex'));
  const pos = new PosLedgerService(
    {
      terminals: new TerminalRegistry(database, keyRing),
      journal: new PosJournal(database),
      payments,
      wallets,
      ledger,
    },
    {
      acquirerId: ACQUIRER_ID,
      onError: (error, transaction) => process.stderr.write(`gateway: ${transaction}: ${String(error)}\n`),
    },
  );
  await wallets.install();
  await payments.install();
  await pos.install();
  const close = async (): Promise<void> => {
    await ledger.close();
    await database.close();
    await store.close();
  };
  return { store, database, ledger, wallets, payments, pos, close };
}

async function serve(): Promise<void> {
  const env = process.env as unknown as GatewayEnv;
  const services = await openServices(env, 40);
  let reported = 0;
  const server = createPosServer({
    handler: services.pos.handler,
    responseHeader: services.pos.responseHeader,
    readTimeoutMs: Number(env.POS_READ_TIMEOUT_MS),
    idleTimeoutMs: 120_000,
    handlerTimeoutMs: 15_000,
    maxFrameBytes: 4_096,
    maxConnections: 5_000,
    onEvent: (event) => {
      // A handler that throws or answers something unpackable is our bug: show the first few.
      if ((event.type === 'handler_error' || event.type === 'bad_response') && reported++ < 20)
        process.stderr.write(`gateway: ${event.type}: ${event.detail ?? ''}\n`);
    },
  });
  const { port } = await server.listen(0, '127.0.0.1');
  process.stdout.write(`LISTENING ${port}\n`);
  await new Promise<void>((resolve) => process.once('SIGTERM', resolve));
  await server.close();
  process.stdout.write(`STATS ${JSON.stringify(server.stats)}\n`);
  await services.close();
}

// ---------------------------------------------------------------------------------------------------------------
// The terminals' side

interface Population {
  readonly terminals: { terminalId: string; cardAcceptorId: string; masterKey: Buffer }[];
  readonly wallets: WalletRecord[];
}

async function populate(
  env: GatewayEnv,
  terminals: number,
  merchants: number,
  walletCount: number,
  log: (line: string) => void,
): Promise<Population> {
  const started = Date.now();
  const services = await openServices(env, 20);
  const bank = new BankChannelSimulator(async () => undefined, {
    delayMs: 3_600_000,
    deliveries: 1,
    declineAbove: '1000000.00',
  });
  services.payments.attachChannel(bank);
  try {
    const at = new Date();
    await Promise.all(
      PLATFORM_ACCOUNTS.map((p) =>
        services.ledger.execute(
          { type: 'OpenAccount', accountId: p.accountId, kind: p.kind, ownerId: 'platform', at: at.toISOString() },
          SETUP,
        ),
      ),
    );
    const merchantIds = await inWindows(merchants, 20, async (m) => {
      const merchant = await services.payments.applyMerchant(
        {
          name: `Shop ${m}`,
          category: 'grocery',
          feeRateBps: FEE_RATE_BPS,
          settlementBankAccount: `62220000${String(m).padStart(8, '0')}`,
          areaCode: '0794',
        },
        at,
      );
      await services.payments.reviewMerchant(merchant.merchantId, 'approve', 'bench', SETUP, at);
      return merchant.merchantId;
    });
    const wallets = await inWindows(walletCount, 50, async (w) => {
      const wallet = await services.wallets.openWallet(
        {
          accountNumber: String(13_700_000_000 + w),
          name: `Card Holder ${w}`,
          areaCode: '0794',
          customerClass: '2',
          purpose: 'general',
        },
        SETUP,
        at,
      );
      const topUp = await services.payments.requestTopUp(wallet.walletId, WALLET_TOP_UP, 'bank_sim', at);
      await services.payments.confirmTopUp(
        { topUpId: topUp.topUpId, result: 'success', channelTradeNo: `BENCH${w}` },
        SETUP,
        at,
      );
      return wallet;
    });
    const registered = await inWindows(terminals, 50, async (t) => {
      const merchant = t % merchants;
      const cardAcceptorId = `8481${String(merchant).padStart(11, '0')}`;
      const terminalId = String(10_000_000 + t);
      const { masterKey } = await services.pos.registerTerminal(
        { merchantId: merchantIds[merchant]!, cardAcceptorId, terminalId, keyScheme: '003' },
        at,
      );
      return { terminalId, cardAcceptorId, masterKey };
    });
    log(
      `pos: ${merchants} merchants, ${walletCount} wallets (${WALLET_TOP_UP} CNY each), ${terminals} terminals in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    return { terminals: registered, wallets };
  } finally {
    bank.close();
    await services.close();
  }
}

async function inWindows<T>(count: number, window: number, make: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let start = 0; start < count; start += window) {
    const end = Math.min(count, start + window);
    out.push(...(await Promise.all(Array.from({ length: end - start }, (_, k) => make(start + k)))));
  }
  return out;
}

function startGateway(env: GatewayEnv): { child: ChildProcess; port: Promise<number>; stats: Promise<PosServerStats> } {
  // BENCH_GATEWAY_NODE_ARGS: extra node flags for the gateway (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
  const nodeArgs = (process.env['BENCH_GATEWAY_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
  const child = spawn(process.execPath, [...nodeArgsFor('bench/pos', [...LEDGER_NODE_FLAGS, ...nodeArgs]), '--serve'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const port = new Promise<number>((resolve, reject) => {
    lines.on('line', (line) => {
      const match = /^LISTENING (\d+)$/.exec(line);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`gateway exited (${code}) before listening`)));
  });
  const stats = new Promise<PosServerStats>((resolve, reject) => {
    lines.on('line', (line) => {
      if (line.startsWith('STATS ')) resolve(JSON.parse(line.slice('STATS '.length)) as PosServerStats);
    });
    child.once('exit', (code) => reject(new Error(`gateway exited (${code}) without stats`)));
  });
  stats.catch(() => undefined);
  return { child, port, stats };
}

async function stopGateway(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  return exited;
}

/** Sale amount for a terminal's k-th sale: 0.01 … 1.99 CNY, as fen digits (never a float). */
function saleFen(terminal: number, k: number): string {
  return String(1 + ((terminal * 7 + k * 13) % MAX_SALE_FEN)).padStart(12, '0');
}

interface PhaseResult {
  sales: number;
  errors: number;
  seconds: number;
  salesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  firstErrors: string[];
}

async function runPhase(
  sims: TerminalSimulator[],
  wallets: WalletRecord[],
  seconds: number,
  schedule: { kind: 'closed' } | { kind: 'open'; ratePerSecond: number },
  counter: { approved: number },
): Promise<PhaseResult> {
  const latency = new LatencyRecorder();
  const firstErrors: string[] = [];
  let sales = 0;
  let errors = 0;
  const startMs = performance.now();
  const endMs = startMs + seconds * 1000;
  const intervalMs = schedule.kind === 'open' ? (sims.length / schedule.ratePerSecond) * 1000 : 0;
  await Promise.all(
    sims.map(async (sim, t) => {
      const wallet = wallets[t % wallets.length]!;
      const offsetMs = schedule.kind === 'open' ? (t / sims.length) * intervalMs : 0;
      for (let k = 0; ; k++) {
        const scheduledMs = schedule.kind === 'open' ? startMs + offsetMs + k * intervalMs : performance.now();
        if (scheduledMs >= endMs) break;
        const waitMs = scheduledMs - performance.now();
        if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
        const sale = await sim.sale({ pan: wallet.cardNumber, amountFen: saleFen(t, k) });
        latency.record(performance.now() - scheduledMs);
        sales += 1;
        const reply = sale.reply;
        const problem = !reply.ok
          ? reply.error.code
          : reply.value.message.fields[39] !== '00'
            ? `39=${String(reply.value.message.fields[39])}`
            : reply.value.macValid !== true
              ? 'reply MAC does not verify'
              : undefined;
        if (problem === undefined) counter.approved += 1;
        else {
          errors += 1;
          if (firstErrors.length < 5) firstErrors.push(`${sim.options.terminalId}/${sale.trace}: ${problem}`);
        }
        if (schedule.kind === 'closed' && performance.now() >= endMs) break;
      }
    }),
  );
  const elapsed = (performance.now() - startMs) / 1000;
  const summary = latency.summary();
  return {
    sales,
    errors,
    seconds: elapsed,
    salesPerSecond: (sales - errors) / elapsed,
    p50Ms: summary.p50Ms,
    p99Ms: summary.p99Ms,
    maxMs: summary.maxMs,
    firstErrors,
  };
}

async function books(url: string): Promise<{ sums: Record<string, string>; capturedPayments: number }> {
  const sums = await sumOfBalancesByAsset(url);
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const rows = await client.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM cp_payments WHERE status = 'captured'`,
    );
    return { sums, capturedPayments: Number(rows.rows[0]!.n) };
  } finally {
    await client.end();
  }
}

function gatewayEnv(url: string, readTimeoutMs: number): GatewayEnv {
  const masterKey = randomBytes(16);
  return {
    DATABASE_URL: url,
    POS_MASTER_KEY_HEX: masterKey.toString('hex'),
    POS_INDEX_KEY_HEX: createHmac('sm3', masterKey).update('bench index').digest('hex'),
    POS_READ_TIMEOUT_MS: String(readTimeoutMs),
  };
}

function simulatorsFor(population: Population, port: number): TerminalSimulator[] {
  return population.terminals.map(
    (t) =>
      new TerminalSimulator({
        host: '127.0.0.1',
        port,
        terminalId: t.terminalId,
        cardAcceptorId: t.cardAcceptorId,
        masterKey: t.masterKey,
        keyScheme: '003',
        replyTimeoutMs: REPLY_TIMEOUT_MS,
      }),
  );
}

async function signOnAll(sims: TerminalSimulator[]): Promise<number> {
  let failures = 0;
  await inWindows(sims.length, 100, async (i) => {
    const reply = await sims[i]!.signOn();
    if (!reply.ok || reply.value.message.fields[39] !== '00') failures += 1;
  });
  return failures;
}

/** The HTTP payment figure of issue #5, measured now by the main bench's `http` scenario in a child process. */
async function httpPaymentFigure(options: Options, log: (line: string) => void): Promise<Record<string, unknown>> {
  const child = spawn(
    process.execPath,
    [...nodeArgsFor('bench/index', LEDGER_NODE_FLAGS), 'http', '--json', '--seconds', String(options.seconds)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`the http bench exited with ${code}`);
  const line = output.split('\n').find((l) => l.startsWith('{'));
  if (!line) throw new Error('the http bench printed no result');
  const figure = JSON.parse(line) as Record<string, unknown>;
  log(`pos: HTTP payments (issue #5's figure, this run): ${String(figure['tps'])}/s`);
  return figure;
}

async function load(options: Options, log: (line: string) => void): Promise<Record<string, unknown>> {
  const http = options.compareHttp ? await httpPaymentFigure(options, log) : undefined;
  const url = await freshDatabase(options.serverUrl, BENCH_DATABASE);
  const env = gatewayEnv(url, 10_000);
  const population = await populate(env, options.connections, options.merchants, options.connections, log);
  const gateway = startGateway(env);
  try {
    const port = await gateway.port;
    const sims = simulatorsFor(population, port);
    const signOnFailures = await signOnAll(sims);
    log(`pos: ${sims.length} terminals connected and signed on (${signOnFailures} failed)`);
    const counter = { approved: 0 };
    await runPhase(sims, population.wallets, 2, { kind: 'closed' }, counter); // warm-up
    const closed = await runPhase(sims, population.wallets, options.seconds, { kind: 'closed' }, counter);
    log(
      `pos: closed loop, ${sims.length} connections: ${closed.salesPerSecond.toFixed(0)} sales/s, p50 ${closed.p50Ms.toFixed(1)} ms, p99 ${closed.p99Ms.toFixed(1)} ms, ${closed.errors} errors`,
    );
    const rate = options.rate ?? Math.max(1, Math.round((http ? Number(http['tps']) : closed.salesPerSecond) * 0.5));
    const open = await runPhase(
      sims,
      population.wallets,
      options.seconds,
      { kind: 'open', ratePerSecond: rate },
      counter,
    );
    log(
      `pos: open loop at ${rate} sales/s over ${sims.length} connections: p50 ${open.p50Ms.toFixed(1)} ms, p99 ${open.p99Ms.toFixed(1)} ms, ${open.errors} errors`,
    );
    await Promise.all(sims.map((s) => s.close()));
    const exitCode = await stopGateway(gateway.child);
    const stats = await gateway.stats.catch(() => undefined);
    const ledgerBooks = await books(url);
    const sumsZero = Object.values(ledgerBooks.sums).every((v) => new Money(v).isZero());
    log(
      `pos: Σ balances ${JSON.stringify(ledgerBooks.sums)}; captured payments ${ledgerBooks.capturedPayments} = approved sales ${counter.approved}: ${ledgerBooks.capturedPayments === counter.approved}`,
    );
    return {
      scenario: 'pos-load',
      connections: sims.length,
      seconds: options.seconds,
      signOnFailures,
      closedLoop: closed,
      openLoop: { ratePerSecond: rate, ...open },
      gatewayExitCode: exitCode,
      gatewayStats: stats,
      sums: ledgerBooks.sums,
      sumBalancesZero: sumsZero,
      capturedPayments: ledgerBooks.capturedPayments,
      approvedSales: counter.approved,
      ...(http
        ? {
            http: { tps: http['tps'], p50Ms: http['p50Ms'], p99Ms: http['p99Ms'], pgbenchTps: http['pgbenchTps'] },
            openLoopOverHttp: Number((open.salesPerSecond / Number(http['tps'])).toFixed(2)),
            closedLoopOverHttp: Number((closed.salesPerSecond / Number(http['tps'])).toFixed(2)),
          }
        : {}),
      booksAgree: ledgerBooks.capturedPayments === counter.approved,
    };
  } finally {
    if (gateway.child.exitCode === null) await stopGateway(gateway.child);
  }
}

/** 48 of a seed settlement: one domestic debit of 1.00 CNY, nothing else. */
const SETTLEMENT_TOTALS = `${'000000000100'}${'001'}${'0'.repeat(12)}${'000'}0${'0'.repeat(12)}${'000'}${'0'.repeat(12)}${'000'}0`;

function seedFrames(sims: TerminalSimulator[], wallets: WalletRecord[]): Buffer[] {
  const messages: PosMessage[] = [];
  for (const [i, sim] of sims.entries()) {
    const pan = wallets[i % wallets.length]!.cardNumber;
    const ids = { 41: sim.options.terminalId, 42: sim.options.cardAcceptorId };
    messages.push(
      sim.signed(sim.saleMessage({ pan, amountFen: saleFen(i, 0) })),
      sim.signed(sim.reversalMessage({ trace: '000001', amountFen: saleFen(i, 0), pan })),
      { mti: '0800', fields: { 11: '000001', ...ids, 60: '00000001003', 63: '001' } },
      { mti: '0820', fields: { 11: '000002', ...ids, 60: '00000001002' } },
      {
        mti: '0500',
        fields: {
          11: '000003',
          ...ids,
          48: SETTLEMENT_TOTALS,
          49: '156',
          60: '00000001201',
          63: '001',
        },
      },
      { mti: '0320', fields: { 11: '000004', ...ids, 48: '0001', 60: '00000001202' } },
    );
  }
  return messages.map((message) => {
    const frame = encodeFrame({ tpdu: DEFAULT_TPDU, header: DEFAULT_HEADER, message }, CUP_POS_SPEC);
    if (!frame.ok) throw new Error(`seed frame: ${frame.error.detail}`);
    return frame.value;
  });
}

async function fuzz(options: Options, frames: number, log: (line: string) => void): Promise<Record<string, unknown>> {
  const url = await freshDatabase(options.serverUrl, BENCH_DATABASE);
  const env = gatewayEnv(url, FUZZ_READ_TIMEOUT_MS);
  const population = await populate(env, FUZZ_TERMINALS, 2, FUZZ_TERMINALS, log);
  const gateway = startGateway(env);
  let crashed = false;
  gateway.child.once('exit', (code, signal) => {
    crashed = code !== 0 || signal !== null;
  });
  try {
    const port = await gateway.port;
    const sims = simulatorsFor(population, port);
    await signOnAll(sims);
    const result = await runFuzz({
      host: '127.0.0.1',
      port,
      fuzzer: new FrameFuzzer(seedFrames(sims, population.wallets), 0x8583, 4_096),
      frames,
      connections: FUZZ_CONNECTIONS,
      deadlineMs: FUZZ_READ_TIMEOUT_MS + 15_000 + 2_000,
      onProgress: (sent) => log(`pos fuzz: ${sent.toLocaleString('en')} frames sent`),
    });
    const alive = gateway.child.exitCode === null;
    // Mutated sign-ons may have re-keyed a terminal, and mutated settlements closed its batch: sign on again.
    const probe = sims[0]!;
    await probe.close();
    const signOn = await probe.signOn();
    const sale = alive
      ? await probe.sale({ pan: population.wallets[0]!.cardNumber, amountFen: '000000000001' })
      : undefined;
    const stillServing = signOn.ok && sale?.reply.ok === true && sale.reply.value.message.fields[39] === '00';
    await Promise.all(sims.map((s) => s.close()));
    const exitCode = await stopGateway(gateway.child);
    const stats = await gateway.stats.catch(() => undefined);
    const ledgerBooks = await books(url);
    log(
      `pos fuzz: ${result.frames.toLocaleString('en')} frames in ${result.seconds.toFixed(1)} s (${(result.frames / result.seconds).toFixed(0)}/s) over ${result.connections} connections: ${result.answered} answered, ${result.closed} closed, ${result.hung} hung; crashes ${crashed || !alive ? 1 : 0}; still serving: ${stillServing}`,
    );
    return {
      scenario: 'pos-fuzz',
      ...result,
      crashes: crashed || !alive ? 1 : 0,
      stillServing,
      gatewayExitCode: exitCode,
      gatewayStats: stats,
      sums: ledgerBooks.sums,
      sumBalancesZero: Object.values(ledgerBooks.sums).every((v) => new Money(v).isZero()),
    };
  } finally {
    if (gateway.child.exitCode === null) await stopGateway(gateway.child);
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--serve') return serve();
  const options = parseOptions(argv);
  const log = (line: string): void => {
    if (!options.json) process.stderr.write(`${line}\n`);
  };
  const result = options.fuzz === undefined ? await load(options, log) : await fuzz(options, options.fuzz, log);
  process.stdout.write(`${JSON.stringify(result, null, options.json ? 0 : 2)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
