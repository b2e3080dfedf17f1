import type { CommandContext, Ledger } from '../core-ledger';
import type { ReadModelDatabase } from '../projections';
import type { PaymentService, WalletService } from '../services';
import { DEFAULT_MATCH_WINDOW_DAYS } from './discrepancy-classes';

/** What every clearing step works with; built once by {@link ClearingService}. */
export interface ClearingOptions {
  /** Where reports, bank files, kept bills and their manifests go. */
  readonly outputDir: string;
  /** The channel whose bill lists a merchant's orders when cp_clearing_merchant_channels has no row for it. */
  readonly defaultChannel: string;
  /** Our records this many business dates either side of a bill date are matched (cross-day). */
  readonly matchWindowDays: number;
  /** The clearing cut-off (日切), for the business date of a top-up (cp_top_ups has no date column). */
  readonly cutoffHourLocal: number;
  /** The platform's own account the bank pays merchants from (bank payment file header). */
  readonly payerAccount: string;
  /** CNAPS code (联行号) of the merchants' bank: cp_merchants has none yet, so one code for all (the simulator). */
  readonly payeeBankCode: string;
  /** Ledger commands a step keeps in flight at once (the writer batches them). */
  readonly ledgerConcurrency: number;
}

export const DEFAULT_CLEARING_OPTIONS: Omit<ClearingOptions, 'outputDir'> = {
  defaultChannel: 'bank_sim',
  matchWindowDays: DEFAULT_MATCH_WINDOW_DAYS,
  cutoffHourLocal: 0,
  payerAccount: 'CARBONPAY-RESERVE-0001',
  payeeBankCode: '999999999999',
  ledgerConcurrency: 64,
};

/** Points where a test may stop a step (an exception, or an await it controls); never set in production. */
export type ClearingFaultPoint =
  'settlement_transfer_posted' | 'settlement_line_marked' | 'reconciliation_imported' | 'reconciliation_classified';

export interface ClearingHooks {
  faultAt?: (point: ClearingFaultPoint) => void | Promise<void>;
  /** A line of progress on a long run (the CLI prints it on stderr; a queue job reports it to the queue). */
  progress?: (message: string) => void | Promise<void>;
}

export interface ClearingDeps {
  readonly db: ReadModelDatabase;
  readonly ledger: Ledger;
  readonly payments: PaymentService;
  readonly wallets: WalletService;
  readonly options: ClearingOptions;
  readonly now: () => Date;
  readonly context: CommandContext;
  readonly hooks: ClearingHooks;
}

export const PLATFORM_SUSPENSE_ACCOUNT = 'PLATFORM-SUSPENSE-CNY';
export const PLATFORM_BANK_CLEARING_ACCOUNT = 'PLATFORM-BANK-CLEARING-CNY';

export const BUSINESS_DATE_PATTERN = /^\d{4}-\d{2}-\d{2}$/;

export function isBusinessDate(text: string): boolean {
  if (!BUSINESS_DATE_PATTERN.test(text)) return false;
  const date = new Date(`${text}T00:00:00.000Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 10) === text;
}

export function addDays(businessDate: string, days: number): string {
  return new Date(Date.parse(`${businessDate}T00:00:00.000Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

/**
 * Runs `work` over `items` with at most `limit` in flight, in order of start. After a failure no item starts, and the
 * first failure is thrown once the items in flight have ended: a step that failed leaves nothing still writing.
 */
export async function inParallel<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { readonly error: unknown } | undefined;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length && failure === undefined) {
      const item = items[next]!;
      next += 1;
      try {
        await work(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  });
  await Promise.all(workers);
  if (failure !== undefined) throw failure.error;
}
