import { uuidV5 } from '../core-ledger';
import type { ReadModelDatabase } from '../projections';

/**
 * The gate every clearing step passes, whether the CLI, a queue job or a test started it (research/clearing.md §4.4):
 *
 * 1. a PostgreSQL advisory lock on a connection of its own, held for the whole step (a session lock: a transaction
 *    lock would end with the first commit) — a second run of the same step and date, in this process or another,
 *    finds it taken and stops at once with {@link RunBusyError};
 * 2. one row per (step, scope, date) in cp_clearing_runs (`INSERT … ON CONFLICT`): a run that succeeded is never run
 *    again (its files are only written again from what it stored), a failed or interrupted run is resumed from the
 *    last phase it recorded.
 *
 * The lock dies with its connection, so a process killed mid-run leaves no lock behind, only a `started` row.
 */

export type StepName = 'clearing' | 'settlement' | 'reconciliation';

export class RunBusyError extends Error {
  constructor(
    readonly step: StepName,
    readonly scope: string,
    readonly businessDate: string,
  ) {
    super(`another ${step} run for ${scope === '*' ? '' : `${scope} `}${businessDate} is in progress`);
    this.name = 'RunBusyError';
  }
}

/** A step cannot run yet (an earlier step missing, a later date already cleared, unfinished payments). */
export class RunPreconditionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunPreconditionError';
  }
}

export interface ActiveRun {
  readonly runId: string;
  readonly step: StepName;
  readonly scope: string;
  readonly businessDate: string;
  /** True when the step had already succeeded: the work only rewrites its files from what is stored. */
  readonly alreadySucceeded: boolean;
  readonly attempts: number;
  /** The last phase finished by this or an earlier attempt. */
  phase: string;
  readonly sourceSm3: string | null;
  setPhase(phase: string): Promise<void>;
}

export interface RunRecord {
  readonly step: StepName;
  readonly scope: string;
  readonly businessDate: string;
  readonly runId: string;
  readonly status: 'started' | 'succeeded' | 'failed';
  readonly phase: string;
  readonly attempts: number;
  readonly error: string | null;
  readonly result: unknown;
}

export function runIdOf(step: StepName, scope: string, businessDate: string): string {
  return uuidV5(`clearing-run|${step}|${scope}|${businessDate}`);
}

/** Errors longer than this are cut before they are stored. */
const MAX_ERROR_TEXT = 2_000;

export async function withRun<T>(
  db: ReadModelDatabase,
  step: StepName,
  scope: string,
  businessDate: string,
  now: () => Date,
  options: { readonly sourceSm3?: string },
  work: (run: ActiveRun) => Promise<T>,
): Promise<T> {
  const session = await db.openSession();
  try {
    if (!(await session.tryLock(`clearing|${step}|${scope}|${businessDate}`)))
      throw new RunBusyError(step, scope, businessDate);
    const runId = runIdOf(step, scope, businessDate);
    const rows = await session.query<{
      status: RunRecord['status'];
      phase: string;
      attempts: number;
      source_sm3: string | null;
    }>(
      `INSERT INTO cp_clearing_runs (step, scope, business_date, run_id, status, phase, attempts, source_sm3, started_at)
       VALUES ($1, $2, $3, $4, 'started', 'new', 1, $5, $6)
       ON CONFLICT (step, scope, business_date) DO UPDATE
         SET attempts = cp_clearing_runs.attempts + CASE WHEN cp_clearing_runs.status = 'succeeded' THEN 0 ELSE 1 END,
             status = CASE WHEN cp_clearing_runs.status = 'succeeded' THEN 'succeeded' ELSE 'started' END,
             source_sm3 = coalesce(cp_clearing_runs.source_sm3, EXCLUDED.source_sm3),
             error = CASE WHEN cp_clearing_runs.status = 'succeeded' THEN cp_clearing_runs.error ELSE NULL END
       RETURNING status, phase, attempts, source_sm3`,
      [step, scope, businessDate, runId, options.sourceSm3 ?? null, now().toISOString()],
    );
    const row = rows[0]!;
    const run: ActiveRun = {
      runId,
      step,
      scope,
      businessDate,
      alreadySucceeded: row.status === 'succeeded',
      attempts: row.attempts,
      phase: row.phase,
      sourceSm3: row.source_sm3,
      setPhase: async (phase: string) => {
        await session.query('UPDATE cp_clearing_runs SET phase = $2 WHERE run_id = $1', [runId, phase]);
        run.phase = phase;
      },
    };
    try {
      const result = await work(run);
      if (!run.alreadySucceeded)
        await session.query(
          `UPDATE cp_clearing_runs SET status = 'succeeded', phase = 'done', result = $2, finished_at = $3
            WHERE run_id = $1`,
          [runId, JSON.stringify(result), now().toISOString()],
        );
      return result;
    } catch (error) {
      if (!run.alreadySucceeded)
        await session
          .query(`UPDATE cp_clearing_runs SET status = 'failed', error = $2, finished_at = $3 WHERE run_id = $1`, [
            runId,
            String((error as Error).message ?? error).slice(0, MAX_ERROR_TEXT),
            now().toISOString(),
          ])
          .catch(() => undefined);
      throw error;
    }
  } finally {
    await session.close();
  }
}

export async function findRun(
  db: ReadModelDatabase,
  step: StepName,
  scope: string,
  businessDate: string,
): Promise<RunRecord | undefined> {
  const rows = await db.query<{
    step: StepName;
    scope: string;
    business_date: string;
    run_id: string;
    status: RunRecord['status'];
    phase: string;
    attempts: number;
    error: string | null;
    result: unknown;
  }>(
    `SELECT step, scope, business_date::text, run_id, status, phase, attempts, error, result
       FROM cp_clearing_runs WHERE step = $1 AND scope = $2 AND business_date = $3`,
    [step, scope, businessDate],
  );
  const r = rows[0];
  return r
    ? {
        step: r.step,
        scope: r.scope,
        businessDate: r.business_date,
        runId: r.run_id,
        status: r.status,
        phase: r.phase,
        attempts: r.attempts,
        error: r.error,
        result: r.result,
      }
    : undefined;
}
