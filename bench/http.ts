/**
 * Payments over the real HTTP door, from this process (the load generator) to a `carbonpay serve` child process,
 * against the bare door's own ceiling (bench/echo-server.ts: same stack, parse and echo) and pgbench, in one run.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { LEDGER_NODE_FLAGS, nodeArgsFor } from './processes';
import type { LedgerCommand } from '../core-ledger';
import { signRequest } from '../security';
import { JsonClient } from './http-client';
import type { LoopResult } from './stats';
import { runClosedLoop, runOpenLoop } from './stats';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** One of the repository's scripts in its own process, with the ledger's Node flags (as `npm start` runs). */
function spawnScript(script: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, [...nodeArgsFor(script, LEDGER_NODE_FLAGS), ...args], {
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

/** A registered internal service the authenticated run signs with (HMAC-SM3, as the payment service would). */
const BENCH_CLIENT = { clientId: 'bench-payment-service', secret: randomBytes(32) };

function signedHeaders(method: 'GET' | 'POST', path: string, body: string): Record<string, string> {
  return signRequest(
    { clientId: BENCH_CLIENT.clientId, method: 'hmac-sm3', secret: BENCH_CLIENT.secret },
    {
      method,
      pathWithQuery: path,
      timestamp: String(Date.now()),
      nonce: randomBytes(12).toString('hex'),
      body: Buffer.from(body),
    },
  );
}

async function withServer<T>(
  env: NodeJS.ProcessEnv,
  clients: number,
  run: (client: JsonClient) => Promise<T>,
): Promise<T> {
  const port = await freePort();
  const server = spawnScript('app/cli', ['serve'], {
    ...env,
    PORT: String(port),
    LOG_LEVEL: 'warn',
  });
  try {
    await waitForLine(server, /listening/);
    const client = new JsonClient('127.0.0.1', port, clients);
    try {
      return await run(client);
    } finally {
      client.close();
    }
  } finally {
    await stop(server);
  }
}

export interface HttpBenchFigures {
  readonly payments: LoopResult;
  readonly echo: LoopResult;
  readonly paymentsAt80Pct: LoopResult;
  readonly rateAt80Pct: number;
  /** A second window at the same rate, right after the first. */
  readonly paymentsAt80PctSteady: LoopResult;
  /** The same payments signed with HMAC-SM3, nonces in Redis. */
  readonly authenticatedPayments: LoopResult;
}

export async function measureHttp(options: {
  databaseUrl: string;
  redisUrl: string;
  clients: number;
  seconds: number;
  nextPayment: () => LedgerCommand;
  /** Every account the payments touch: a new server process reads each once before the measurement. */
  accountIds: readonly string[];
  log: (line: string) => void;
}): Promise<HttpBenchFigures> {
  // The read models run in their own process in production; here they would only compete for the two cores.
  const serverEnv = { DATABASE_URL: options.databaseUrl, CARBONPAY_PROJECTIONS: 'off' };
  const closedLoop = (operation: () => Promise<boolean>): Promise<LoopResult> =>
    runClosedLoop({ clients: options.clients, seconds: options.seconds, warmupSeconds: 2, operation });
  const warmUp = async (client: JsonClient, signed: boolean): Promise<void> => {
    const started = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: options.clients }, async () => {
        while (next < options.accountIds.length) {
          const path = `/v1/accounts/${options.accountIds[next++]!}`;
          if ((await client.get(path, signed ? signedHeaders('GET', path, '') : {})) !== 200)
            throw new Error(`warm-up: GET ${path} failed`);
        }
      }),
    );
    options.log(
      `http: warm-up read ${options.accountIds.length} accounts in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  };
  const pay = (client: JsonClient, signed: boolean) => async (): Promise<boolean> => {
    const command = options.nextPayment();
    const body = paymentBody(command);
    const headers: Record<string, string> = {
      'idempotency-key': (command as { idempotencyKey: string }).idempotencyKey,
    };
    if (signed) Object.assign(headers, signedHeaders('POST', '/v1/transfers', body));
    return (await client.post('/v1/transfers', body, headers)) === 201;
  };

  const unauthenticated = await withServer({ ...serverEnv, CARBONPAY_AUTH: 'off' }, options.clients, async (client) => {
    await warmUp(client, false);
    const payments = await closedLoop(pay(client, false));
    options.log(
      `http: ${payments.tps.toFixed(0)} payments/s, p50 ${payments.latency.p50Ms.toFixed(2)} ms, p99 ${payments.latency.p99Ms.toFixed(2)} ms`,
    );
    const rateAt80Pct = Math.round(payments.tps * 0.8);
    const paymentsAt80Pct = await runOpenLoop({
      ratePerSecond: rateAt80Pct,
      seconds: options.seconds,
      operation: pay(client, false),
    });
    options.log(
      `http: at 80 % (${rateAt80Pct}/s, open loop) p50 ${paymentsAt80Pct.latency.p50Ms.toFixed(2)} ms, p99 ${paymentsAt80Pct.latency.p99Ms.toFixed(2)} ms`,
    );
    const paymentsAt80PctSteady = await runOpenLoop({
      ratePerSecond: rateAt80Pct,
      seconds: options.seconds,
      operation: pay(client, false),
    });
    options.log(
      `http: at 80 %, the next window: p50 ${paymentsAt80PctSteady.latency.p50Ms.toFixed(2)} ms, p99 ${paymentsAt80PctSteady.latency.p99Ms.toFixed(2)} ms`,
    );
    return { payments, rateAt80Pct, paymentsAt80Pct, paymentsAt80PctSteady };
  });

  const echo = spawnScript('bench/echo-server', [], {});
  let echoed: LoopResult;
  try {
    const echoPort = Number((await waitForLine(echo, /^LISTENING (\d+)$/))[1]);
    const bare = new JsonClient('127.0.0.1', echoPort, options.clients);
    echoed = await closedLoop(async () => (await bare.post('/echo', paymentBody(options.nextPayment()))) === 201);
    bare.close();
    options.log(`http: bare door (parse + echo) ${echoed.tps.toFixed(0)} requests/s`);
  } finally {
    await stop(echo);
  }

  const clientsFile = join(tmpdir(), `carbonpay-bench-clients-${process.pid}.json`);
  writeFileSync(
    clientsFile,
    JSON.stringify([
      {
        clientId: BENCH_CLIENT.clientId,
        role: 'payment_service',
        method: 'hmac-sm3',
        secretHex: BENCH_CLIENT.secret.toString('hex'),
      },
    ]),
  );
  try {
    const authEnv = {
      ...serverEnv,
      CARBONPAY_AUTH: 'required',
      CARBONPAY_CLIENTS_FILE: clientsFile,
      REDIS_URL: options.redisUrl,
    };
    const authenticatedPayments = await withServer(authEnv, options.clients, async (client) => {
      await warmUp(client, true);
      return closedLoop(pay(client, true));
    });
    options.log(
      `http: signed (HMAC-SM3, nonces in Redis) ${authenticatedPayments.tps.toFixed(0)} payments/s, p99 ${authenticatedPayments.latency.p99Ms.toFixed(2)} ms`,
    );
    return { ...unauthenticated, echo: echoed, authenticatedPayments };
  } finally {
    unlinkSync(clientsFile);
  }
}
