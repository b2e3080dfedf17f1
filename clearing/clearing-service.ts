import type { CommandContext, Ledger } from '../core-ledger';
import type { ReadModelDatabase } from '../projections';
import type { PaymentService, WalletService } from '../services';
import type { ClearingSummary } from './clearing-step';
import { runClearingStep } from './clearing-step';
import type { ClearingDeps, ClearingHooks, ClearingOptions } from './context';
import { DEFAULT_CLEARING_OPTIONS } from './context';
import type { ReconChannel, ReconciliationSummary } from './reconciliation-step';
import { runReconciliationStep } from './reconciliation-step';
import type { CaseFilter, DiscrepancyCase, ResolveInput } from './resolutions';
import { getCase, listCases, resolveCase } from './resolutions';
import type { RunRecord, StepName } from './run-gate';
import { findRun } from './run-gate';
import { CLEARING_SQL } from './schema';
import type { SettlementSummary } from './settlement-step';
import { runSettlementStep } from './settlement-step';

/**
 * The daily batch's one entry point, used alike by the CLI (app/commands/clearing.ts), the queue jobs (jobs.ts) and
 * the tests: clearing, settlement, reconciliation of a channel bill, and the discrepancy cases. Every step goes
 * through the run gate (run-gate.ts), so whoever calls it twice, or at once, gets one run.
 */
export class ClearingService {
  /** Test seams and progress; set by the caller (never a fault point in production). */
  readonly hooks: ClearingHooks = {};
  readonly options: ClearingOptions;

  constructor(
    private readonly db: ReadModelDatabase,
    private readonly ledger: Ledger,
    private readonly payments: PaymentService,
    private readonly wallets: WalletService,
    options: Partial<ClearingOptions> & Pick<ClearingOptions, 'outputDir'>,
    private readonly context: CommandContext = { actor: 'clearing', channel: 'batch' },
    private readonly now: () => Date = () => new Date(),
  ) {
    this.options = { ...DEFAULT_CLEARING_OPTIONS, ...options };
  }

  async install(): Promise<void> {
    await this.db.exec(CLEARING_SQL);
  }

  /** The same service acting for someone else (the operator of a CLI command, the scheduler of a job). */
  as(context: CommandContext): ClearingService {
    const other = new ClearingService(
      this.db,
      this.ledger,
      this.payments,
      this.wallets,
      this.options,
      context,
      this.now,
    );
    Object.assign(other.hooks, this.hooks);
    return other;
  }

  clear(businessDate: string): Promise<ClearingSummary> {
    return runClearingStep(this.deps(), businessDate);
  }

  settle(businessDate: string): Promise<SettlementSummary> {
    return runSettlementStep(this.deps(), businessDate);
  }

  reconcile(
    channel: ReconChannel,
    businessDate: string,
    bill: Buffer,
    billName: string,
  ): Promise<ReconciliationSummary> {
    return runReconciliationStep(this.deps(), channel, businessDate, bill, billName);
  }

  listCases(filter: CaseFilter): Promise<DiscrepancyCase[]> {
    return listCases(this.deps(), filter);
  }

  getCase(caseId: string): Promise<DiscrepancyCase | undefined> {
    return getCase(this.deps(), caseId);
  }

  resolve(input: ResolveInput): Promise<DiscrepancyCase> {
    return resolveCase(this.deps(), input);
  }

  run(step: StepName, scope: string, businessDate: string): Promise<RunRecord | undefined> {
    return findRun(this.db, step, scope, businessDate);
  }

  /** Clearing and settlement runs that started and did not succeed, oldest first (jobs.ts adds them again). */
  async unfinishedRuns(
    maxAttempts: number,
  ): Promise<{ step: 'clearing' | 'settlement'; businessDate: string; attempts: number }[]> {
    const rows = await this.db.query<{ step: 'clearing' | 'settlement'; business_date: string; attempts: number }>(
      `SELECT step, business_date::text, attempts FROM cp_clearing_runs
        WHERE step IN ('clearing', 'settlement') AND status <> 'succeeded' AND attempts < $1
        ORDER BY business_date, step`,
      [maxAttempts],
    );
    return rows.map((r) => ({ step: r.step, businessDate: r.business_date, attempts: r.attempts }));
  }

  /** Assigns a merchant's orders to a channel's bill (default: the configured default channel). */
  async assignChannel(merchantId: string, channel: ReconChannel): Promise<void> {
    await this.db.query(
      `INSERT INTO cp_clearing_merchant_channels (merchant_id, channel) VALUES ($1, $2)
       ON CONFLICT (merchant_id) DO UPDATE SET channel = EXCLUDED.channel`,
      [merchantId, channel],
    );
  }

  private deps(): ClearingDeps {
    return {
      db: this.db,
      ledger: this.ledger,
      payments: this.payments,
      wallets: this.wallets,
      options: this.options,
      now: this.now,
      context: this.context,
      hooks: this.hooks,
    };
  }
}
