/**
 * Payments over the real HTTP door, from this process (the load generator) to a `carbonpay serve` child process,
 * against the bare door's own ceiling (bench/echo-server.ts: same stack, parse and echo) and pgbench, in one run.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { LedgerCommand } from '../core-ledger';
import { JsonClient } from './http-client';
import type { LoopResult } from './stats';
import { runClosedLoop, runOpenLoop } from './stats';

export interface HttpBenchFigures {
  readonly payments: LoopResult;
  readonly echo: LoopResult;
  readonly paymentsAt80Pct: LoopResult;
  readonly rateAt80Pct: number;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function spawnTs(script: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', script, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

function waitForLine(child: ChildProcess, pattern: RegExp): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      const match = line.match(pattern);
      if (match) resolve(match);
    });
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before ${pattern}`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** The HTTP body of a payment command, as a payment service would send it. */
export function paymentBody(command: LedgerCommand): string {
  if (command.type !== 'PostTransfer') throw new Error('payments only');
  return JSON.stringify({ transferType: command.transferType, postings: command.postings });
}

export async function measureHttp(options: {
  databaseUrl: string;
  clients: number;
  seconds: number;
  nextPayment: () => LedgerCommand;
  log: (line: string) => void;
}): Promise<HttpBenchFigures> {
  const port = await freePort();
  const server = spawnTs(join(__dirname, '..', 'app', 'cli.ts'), ['serve'], {
    DATABASE_URL: options.databaseUrl,
    PORT: String(port),
    // The read models run in their own process in production; here they would only compete for the two cores.
    CARBONPAY_PROJECTIONS: 'off',
    LOG_LEVEL: 'warn',
  });
  const echo = spawnTs(join(__dirname, 'echo-server.ts'), [], {});
  try {
    await waitForLine(server, /listening/);
    const echoPort = Number((await waitForLine(echo, /^LISTENING (\d+)$/))[1]);
    const api = new JsonClient('127.0.0.1', port, options.clients);
    const bare = new JsonClient('127.0.0.1', echoPort, options.clients);
    const pay = async (): Promise<boolean> => {
      const command = options.nextPayment();
      const key = (command as { idempotencyKey: string }).idempotencyKey;
      return (await api.post('/v1/transfers', paymentBody(command), { 'idempotency-key': key })) === 201;
    };
    const payments = await runClosedLoop({
      clients: options.clients,
      seconds: options.seconds,
      warmupSeconds: 2,
      operation: pay,
    });
    options.log(
      `http: ${payments.tps.toFixed(0)} payments/s, p50 ${payments.latency.p50Ms.toFixed(2)} ms, p99 ${payments.latency.p99Ms.toFixed(2)} ms`,
    );
    const echoed = await runClosedLoop({
      clients: options.clients,
      seconds: options.seconds,
      warmupSeconds: 2,
      operation: async () => (await bare.post('/echo', paymentBody(options.nextPayment()))) === 201,
    });
    options.log(`http: bare door (parse + echo) ${echoed.tps.toFixed(0)} requests/s`);
    const rateAt80Pct = Math.round(payments.tps * 0.8);
    const paymentsAt80Pct = await runOpenLoop({ ratePerSecond: rateAt80Pct, seconds: options.seconds, operation: pay });
    options.log(
      `http: at 80 % (${rateAt80Pct}/s, open loop) p50 ${paymentsAt80Pct.latency.p50Ms.toFixed(2)} ms, p99 ${paymentsAt80Pct.latency.p99Ms.toFixed(2)} ms`,
    );
    api.close();
    bare.close();
    return { payments, echo: echoed, paymentsAt80Pct, rateAt80Pct };
  } finally {
    await Promise.all([stop(server), stop(echo)]);
  }
}
