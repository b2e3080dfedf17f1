import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';

/** Latency samples with bounded memory: reservoir sampling beyond the bound keeps percentiles unbiased. */
export class LatencyRecorder {
  private readonly samples: number[] = [];
  private seen = 0;

  constructor(private readonly maxSamples = 1_000_000) {}

  record(latencyMs: number): void {
    this.seen += 1;
    if (this.samples.length < this.maxSamples) {
      this.samples.push(latencyMs);
      return;
    }
    const slot = Math.floor(Math.random() * this.seen);
    if (slot < this.maxSamples) this.samples[slot] = latencyMs;
  }

  get count(): number {
    return this.seen;
  }

  /** Nearest-rank percentile, p in (0, 100], of the samples recorded after the first `since` (a window's own). */
  percentile(p: number, since = 0): number {
    if (since > 0 && this.seen > this.maxSamples)
      throw new Error('assertion: a window of a recorder that has started sampling is not kept');
    if (this.samples.length <= since) return Number.NaN;
    const sorted = this.samples.slice(since).sort((a, b) => a - b);
    const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
    return sorted[rank - 1]!;
  }

  summary(): { p50Ms: number; p99Ms: number; maxMs: number; count: number } {
    if (this.samples.length === 0) return { p50Ms: Number.NaN, p99Ms: Number.NaN, maxMs: Number.NaN, count: 0 };
    const sorted = [...this.samples].sort((a, b) => a - b);
    const at = (p: number): number => sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1]!;
    return { p50Ms: at(50), p99Ms: at(99), maxMs: sorted[sorted.length - 1]!, count: this.seen };
  }
}

export interface LoopResult {
  readonly completed: number;
  readonly refused: number;
  readonly seconds: number;
  readonly tps: number;
  readonly latency: ReturnType<LatencyRecorder['summary']>;
}

/**
 * Runs `run` under the V8 sampling profiler when BENCH_PROFILE_DIR is set, and writes `<name>.cpuprofile` there (for
 * chrome://inspect or a script): the profile of one phase alone, without the setup before it.
 */
export async function profiled<T>(name: string, run: () => Promise<T>): Promise<T> {
  const dir = process.env['BENCH_PROFILE_DIR'];
  if (dir === undefined || dir === '') return run();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  try {
    return await run();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}

const elapsedMs = (since: bigint): number => Number(process.hrtime.bigint() - since) / 1e6;

/**
 * N clients, each issuing its next operation as soon as the last returned. Warm-up operations are not counted.
 * Latencies go to `latency` when given (to pool several runs), and the result's summary is of everything it holds.
 */
export async function runClosedLoop(options: {
  clients: number;
  seconds: number;
  warmupSeconds?: number;
  operation: (clientIndex: number, iteration: number) => Promise<boolean>;
  latency?: LatencyRecorder;
}): Promise<LoopResult> {
  const latency = options.latency ?? new LatencyRecorder();
  let completed = 0;
  let refused = 0;
  const warmupEnds = Date.now() + (options.warmupSeconds ?? 0) * 1000;
  const ends = warmupEnds + options.seconds * 1000;
  let measuredFrom = 0n;
  const client = async (index: number): Promise<void> => {
    for (let iteration = 0; Date.now() < ends; iteration++) {
      const started = process.hrtime.bigint();
      const accepted = await options.operation(index, iteration);
      if (Date.now() < warmupEnds) continue;
      if (measuredFrom === 0n) measuredFrom = started;
      latency.record(elapsedMs(started));
      if (accepted) completed += 1;
      else refused += 1;
    }
  };
  await Promise.all(Array.from({ length: options.clients }, (_, i) => client(i)));
  const seconds = measuredFrom === 0n ? options.seconds : elapsedMs(measuredFrom) / 1000;
  return { completed, refused, seconds, tps: completed / seconds, latency: latency.summary() };
}

/**
 * Operations at a fixed rate, whether or not earlier ones have returned. Latency runs from each operation's
 * scheduled start, so a stall shows in the figures instead of slowing the load (no coordinated omission).
 */
export async function runOpenLoop(options: {
  ratePerSecond: number;
  seconds: number;
  operation: () => Promise<boolean>;
}): Promise<LoopResult> {
  const latency = new LatencyRecorder();
  let completed = 0;
  let refused = 0;
  const total = Math.floor(options.ratePerSecond * options.seconds);
  const intervalMs = 1000 / options.ratePerSecond;
  const start = process.hrtime.bigint();
  // Counted, not kept: a promise held per operation until the end made the load generator's own heap (in-process,
  // the ledger's too) grow by tens of megabytes a window, and every major collection marked it.
  let settled = 0;
  let failure: { readonly error: unknown } | undefined;
  let allSettled: () => void = () => undefined;
  const everySettled = new Promise<void>((resolve) => (allSettled = resolve));
  const settle = (): void => {
    settled += 1;
    if (settled === total) allSettled();
  };
  let issued = 0;
  while (issued < total) {
    const due = Math.min(total, Math.floor(elapsedMs(start) / intervalMs) + 1);
    for (; issued < due; issued++) {
      const scheduledMs = issued * intervalMs;
      void options.operation().then(
        (accepted) => {
          latency.record(elapsedMs(start) - scheduledMs);
          if (accepted) completed += 1;
          else refused += 1;
          settle();
        },
        (error: unknown) => {
          failure ??= { error };
          settle();
        },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  if (total > 0) await everySettled;
  if (failure !== undefined) throw failure.error;
  const seconds = elapsedMs(start) / 1000;
  return { completed, refused, seconds, tps: completed / seconds, latency: latency.summary() };
}

/**
 * CPU time (µs, user + system) used so far by each PostgreSQL process of this machine, by pid, read from /proc;
 * undefined where there is no /proc. {@link postgresCpuUsSince} turns two readings into the time used between them.
 */
export function localPostgresCpuUs(): Map<number, number> | undefined {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return undefined;
  }
  const ticksPerSecond = 100;
  const used = new Map<number, number>();
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const close = stat.lastIndexOf(')');
    const name = stat.slice(stat.indexOf('(') + 1, close);
    if (name !== 'postgres' && !name.startsWith('postgres:')) continue;
    const fields = stat.slice(close + 2).split(' ');
    // Fields 14 and 15 of the line (utime, stime) are the 12th and 13th after the name.
    used.set(Number(entry), ((Number(fields[11]) + Number(fields[12])) * 1e6) / ticksPerSecond);
  }
  return used.size > 0 ? used : undefined;
}

/**
 * PostgreSQL's CPU time (µs) between two readings, process by process: a process started since counts from zero,
 * one that ended takes its time with it (pools closing idle connections must not make the figure negative).
 */
export function postgresCpuUsSince(
  before: Map<number, number> | undefined,
  after: Map<number, number> | undefined,
): number {
  if (before === undefined || after === undefined) return Number.NaN;
  let total = 0;
  for (const [pid, us] of after) total += us - (before.get(pid) ?? 0);
  return total;
}
