import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Job } from 'bullmq';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import IORedis from 'ioredis';
import { businessDateOf } from '../core-ledger';
import type { ClearingService } from './clearing-service';
import { addDays, isBusinessDate } from './context';
import type { ReconChannel } from './reconciliation-step';
import { BillRejectedError } from './reconciliation-step';
import { ResolutionRefusedError } from './resolutions';

/**
 * The daily batch as BullMQ jobs on Redis (research/clearing.md §4.4): a Job Scheduler (`upsertJobScheduler`, cron
 * pattern in Asia/Shanghai) adds one `daily` job per day — clearing, then settlement, of the previous business
 * date — and operators or other jobs add `clearing`, `settlement` and `reconciliation` jobs for a date.
 *
 * BullMQ delivers at least once, so a job can run twice: that is safe because every step goes through the run gate
 * (a unique run row plus a PostgreSQL advisory lock) — a second delivery finds the run succeeded, or the lock taken
 * (then it is retried with back-off). Redis holds only the queue; the truth is the run rows in PostgreSQL. When the
 * Redis connection comes back (`ready`), {@link ClearingJobs.recover} adds again every run that is not finished
 * (its job may have been lost with Redis) and the scheduler: a job cut off by an outage resumes from its last phase.
 */

export const CLEARING_QUEUE = 'carbonpay-clearing';

export type ClearingJobData =
  | { readonly step: 'daily' }
  | { readonly step: 'clearing' | 'settlement'; readonly date: string }
  | { readonly step: 'reconciliation'; readonly date: string; readonly channel: ReconChannel; readonly file: string };

export interface ClearingJobsOptions {
  /** redis://host:port */
  readonly redisUrl: string;
  /** Cron pattern (with seconds) of the daily job; default 10:30 every day (bills are ready after 10:00, §1.2). */
  readonly dailyPattern: string;
  readonly timeZone: string;
  readonly cutoffHourLocal: number;
  /** Tries of a job before it fails for good, with exponential back-off from `backoffMs`. */
  readonly attempts: number;
  readonly backoffMs: number;
  /** A run recover() adds again at most this many attempts (cp_clearing_runs.attempts). */
  readonly maxRunAttempts: number;
  readonly prefix: string;
  readonly logger?: (message: string) => void;
}

export const DEFAULT_CLEARING_JOBS_OPTIONS: Omit<ClearingJobsOptions, 'redisUrl'> = {
  dailyPattern: '0 30 10 * * *',
  timeZone: 'Asia/Shanghai',
  cutoffHourLocal: 0,
  attempts: 6,
  backoffMs: 2_000,
  maxRunAttempts: 20,
  prefix: 'carbonpay',
};

export const DAILY_SCHEDULER_ID = 'daily-clearing';

/** One job id per (step, scope, date): adding a job that is already queued adds nothing. */
export function jobIdOf(data: ClearingJobData): string {
  switch (data.step) {
    case 'daily':
      throw new Error('assertion: daily jobs come from the scheduler and carry its id');
    case 'reconciliation':
      return `reconciliation-${data.channel}-${data.date}`;
    default:
      return `${data.step}-${data.date}`;
  }
}

export class ClearingJobs {
  readonly options: ClearingJobsOptions;
  private readonly queueConnection: IORedis;
  private readonly workerConnection: IORedis;
  readonly queue: Queue<ClearingJobData>;
  private worker: Worker<ClearingJobData> | undefined;
  private recovering: Promise<number> | undefined;
  private closed = false;

  constructor(
    private readonly service: ClearingService,
    options: Partial<ClearingJobsOptions> & Pick<ClearingJobsOptions, 'redisUrl'>,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.options = { ...DEFAULT_CLEARING_JOBS_OPTIONS, ...options };
    // Workers need maxRetriesPerRequest: null (BullMQ); both connections retry for ever, 1 s apart at most.
    const redis = { maxRetriesPerRequest: null, retryStrategy: (times: number) => Math.min(times * 100, 1_000) };
    this.queueConnection = new IORedis(this.options.redisUrl, redis);
    this.workerConnection = new IORedis(this.options.redisUrl, redis);
    for (const connection of [this.queueConnection, this.workerConnection])
      connection.on('error', (error: Error) => this.log(`redis: ${error.message}`));
    this.queue = new Queue<ClearingJobData>(CLEARING_QUEUE, {
      connection: this.queueConnection,
      prefix: this.options.prefix,
    });
    this.queue.on('error', (error: Error) => this.log(`queue: ${error.message}`));
  }

  /** Starts the worker and the scheduler; after every reconnection to Redis, unfinished runs are added again. */
  async start(): Promise<void> {
    this.worker = new Worker<ClearingJobData>(CLEARING_QUEUE, (job) => this.process(job), {
      connection: this.workerConnection,
      prefix: this.options.prefix,
      concurrency: 1,
      // A job whose worker stopped renewing its lock (a lost connection) is handed out again, not dropped.
      maxStalledCount: 5,
    });
    this.worker.on('error', (error: Error) => this.log(`worker: ${error.message}`));
    this.worker.on('failed', (job, error) => this.log(`job ${job?.id ?? '?'} failed: ${error.message}`));
    await this.upsertScheduler();
    this.queueConnection.on('ready', () => {
      if (!this.closed) void this.recover().catch((error: Error) => this.log(`recover: ${error.message}`));
    });
  }

  async enqueue(data: Exclude<ClearingJobData, { step: 'daily' }>): Promise<string> {
    const job = await this.queue.add(data.step, data, {
      jobId: jobIdOf(data),
      attempts: this.options.attempts,
      backoff: { type: 'exponential', delay: this.options.backoffMs },
      removeOnComplete: { age: 7 * 86_400 },
      removeOnFail: { age: 30 * 86_400 },
    });
    return job.id!;
  }

  /**
   * Adds again every clearing and settlement run that started and did not succeed (its job may have been lost with
   * Redis), and the daily scheduler. Adding a job that is still queued is a no-op (same job id).
   */
  async recover(): Promise<number> {
    if (this.recovering) return this.recovering;
    this.recovering = (async () => {
      await this.upsertScheduler();
      const runs = await this.service.unfinishedRuns(this.options.maxRunAttempts);
      for (const run of runs) await this.enqueue({ step: run.step, date: run.businessDate });
      if (runs.length > 0) this.log(`recovered ${runs.length} unfinished runs`);
      return runs.length;
    })().finally(() => {
      this.recovering = undefined;
    });
    return this.recovering;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.worker?.close();
    await this.queue.close();
    this.queueConnection.disconnect();
    this.workerConnection.disconnect();
  }

  private async upsertScheduler(): Promise<void> {
    await this.queue.upsertJobScheduler(
      DAILY_SCHEDULER_ID,
      { pattern: this.options.dailyPattern, tz: this.options.timeZone },
      {
        name: 'daily',
        data: { step: 'daily' },
        opts: { attempts: this.options.attempts, backoff: { type: 'exponential', delay: this.options.backoffMs } },
      },
    );
  }

  private async process(job: Job<ClearingJobData>): Promise<unknown> {
    const data = job.data;
    const service = this.service.as({ actor: 'scheduler', channel: 'batch', requestId: job.id ?? undefined });
    service.hooks.progress = async (message) => {
      this.log(message);
      await job.updateProgress({ message });
    };
    try {
      switch (data.step) {
        case 'daily': {
          const date = addDays(businessDateOf(this.now(), this.options.cutoffHourLocal), -1);
          const cleared = await service.clear(date);
          const settled = await service.settle(date);
          return { date, cleared: cleared.merchants, settled: settled.settled };
        }
        case 'clearing':
          return await service.clear(checkedDate(data.date));
        case 'settlement':
          return await service.settle(checkedDate(data.date));
        case 'reconciliation': {
          const bill = readFileSync(data.file);
          return await service.reconcile(data.channel, checkedDate(data.date), bill, basename(data.file));
        }
      }
    } catch (error) {
      // A bill that does not parse, or a case that cannot be resolved, will not get better by trying again.
      if (error instanceof BillRejectedError || error instanceof ResolutionRefusedError)
        throw new UnrecoverableError((error as Error).message);
      throw error;
    }
  }

  private log(message: string): void {
    this.options.logger?.(message);
  }
}

function checkedDate(date: string): string {
  if (!isBusinessDate(date)) throw new UnrecoverableError(`not a business date: ${JSON.stringify(date)}`);
  return date;
}
