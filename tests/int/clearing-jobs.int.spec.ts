import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { ClearingJobs, DAILY_SCHEDULER_ID, RunBusyError } from '../../clearing';
import type { ClearingWorld } from './clearing-fixture';
import { dayOf, startClearingWorld, transfersOfType } from './clearing-fixture';

/**
 * Crashes around settlement: the CLI process SIGKILLed in the middle of a settlement (a rerun completes it), and a
 * BullMQ job whose Redis stops and comes back empty in the middle of a run (the job resumes and completes once).
 * Redis here is a second server this test starts on its own port and stops itself; the shared one is never touched.
 */

jest.setTimeout(180_000);

const ROOT = join(__dirname, '..', '..');
const REDIS_PORT = 6390;
const REDIS_URL = `redis://127.0.0.1:${REDIS_PORT}`;

function startRedis(): void {
  execFileSync('redis-server', [
    '--port',
    String(REDIS_PORT),
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'yes',
  ]);
  for (let i = 0; i < 50; i += 1) {
    try {
      if (
        execFileSync('redis-cli', ['-p', String(REDIS_PORT), 'ping'])
          .toString()
          .trim() === 'PONG'
      )
        return;
    } catch {
      // not up yet
    }
    execFileSync('sleep', ['0.1']);
  }
  throw new Error('redis-server did not start');
}

function stopRedis(): void {
  try {
    execFileSync('redis-cli', ['-p', String(REDIS_PORT), 'shutdown', 'nosave']);
  } catch {
    // shutdown closes the connection before it answers
  }
}

let world: ClearingWorld;
beforeAll(async () => {
  world = await startClearingWorld('clr_jobs');
});
afterAll(async () => {
  await world.close();
});

async function merchantsWithPayments(count: number, date: { at: Date }, prefix: string): Promise<string[]> {
  const payer = await world.fundedWallet(`${count * 20}.00`);
  const settled: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const m = await world.merchant(`${prefix} ${i}`, 0);
    await world.pay(m.merchantId, payer, `${prefix}-${i}`, '10.00', date.at);
    settled.push(m.settled);
  }
  return settled;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('the CLI SIGKILLed during settlement: the run is left started, a rerun completes it, every payout once', async () => {
  const d = dayOf(0);
  const settledAccounts = await merchantsWithPayments(60, d, 'Kill');
  await world.clearing.clear(d.date);
  const child = spawn(
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', join(ROOT, 'app', 'commands', 'clearing.ts'), 'settle', '--date', d.date],
    {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: world.url, CARBONPAY_CLEARING_DIR: world.outputDir, LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      // The first progress line: some merchants are settled, most are not.
      if (/settlement \S+: \d+\/60 merchants/.test(stderr)) {
        child.kill('SIGKILL');
        resolve();
      }
    });
    child.on('exit', () => reject(new Error(`the child ended before it was killed: ${stderr}`)));
  });
  expect(await exited).toBe('SIGKILL');
  const killed = await world.clearing.run('settlement', '*', d.date);
  expect(killed?.status).toBe('started'); // nobody recorded an end: the process died
  const unfinished = await world.db.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM cp_settlement_lines WHERE business_date = $1 AND state <> 'marked'`,
    [d.date],
  );
  expect(Number(unfinished[0]!.n)).toBeGreaterThan(0);

  // The killed process's session keeps the run's lock until PostgreSQL notices the client is gone (it may be in the
  // middle of a statement); until then a rerun is told, as an operator would be, that the run is in progress.
  let resumed: Awaited<ReturnType<ClearingWorld['clearing']['settle']>> | undefined;
  await waitFor(
    "the killed run's lock to be freed",
    async () => {
      try {
        resumed = await world.clearing.settle(d.date);
        return true;
      } catch (error) {
        if (error instanceof RunBusyError) return false;
        throw error;
      }
    },
    15_000,
  );
  if (resumed === undefined) throw new Error('assertion: the rerun answered');
  expect([resumed.settled, resumed.settledAmount, resumed.held.length]).toEqual([60, '600.00', 0]);
  expect(await transfersOfType(world.db, 'settlement')).toBe(60);
  for (const account of settledAccounts) expect(await world.balance(account)).toBe('10.00');
  expect((await world.clearing.run('settlement', '*', d.date))?.status).toBe('succeeded');
});

test('Redis stopped during a settlement job: when it is back the job resumes and completes, nothing twice', async () => {
  const d = dayOf(1);
  const settledAccounts = await merchantsWithPayments(6, d, 'Redis');
  await world.clearing.clear(d.date);
  startRedis();
  const logs: string[] = [];
  const jobs = new ClearingJobs(world.clearing, {
    redisUrl: REDIS_URL,
    prefix: `t${Date.now()}`,
    backoffMs: 200,
    logger: (line) => logs.push(line),
  });
  try {
    await jobs.start();
    expect((await jobs.queue.getJobScheduler(DAILY_SCHEDULER_ID))?.tz).toBe('Asia/Shanghai');
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    let faults = 0;
    world.clearing.hooks.faultAt = async (point) => {
      if (point !== 'settlement_transfer_posted' || ++faults !== 1) return;
      entered();
      await gate;
    };
    await jobs.enqueue({ step: 'settlement', date: d.date });
    await inside; // the job has posted its first settlement transfer
    stopRedis();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    startRedis(); // empty: the job is gone from Redis; the run row in PostgreSQL is not
    await waitFor('the scheduler to be restored', async () =>
      jobs.queue
        .getJobScheduler(DAILY_SCHEDULER_ID)
        .then((s) => s !== undefined)
        .catch(() => false),
    );
    release();
    await waitFor('the settlement run to succeed', async () => {
      const run = await world.clearing.run('settlement', '*', d.date);
      return run?.status === 'succeeded';
    });
    for (const account of settledAccounts) expect(await world.balance(account)).toBe('10.00');
    const lines = await world.db.query<{ state: string }>(
      'SELECT DISTINCT state FROM cp_settlement_lines WHERE business_date = $1',
      [d.date],
    );
    expect(lines).toEqual([{ state: 'marked' }]);
    expect(await transfersOfType(world.db, 'settlement')).toBe(60 + 6);
    // The run was added again from PostgreSQL when Redis came back, and that job completed (a no-op or the rest).
    expect(logs).toContain('recovered 1 unfinished runs');
    await waitFor(
      'the recovered job to complete',
      async () => ((await jobs.queue.getJobCounts('completed')).completed ?? 0) >= 1,
    );
  } finally {
    world.clearing.hooks.faultAt = undefined;
    await jobs.close();
    stopRedis();
  }
});
