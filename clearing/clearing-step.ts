import type { ClearingDeps } from './context';
import type { ClearingReportRow } from './files/clearing-report';
import { writeClearingReportCsv } from './files/clearing-report';
import { writeStepFiles } from './output-files';
import { RunPreconditionError, withRun } from './run-gate';

/**
 * Clearing (清分) of one business date, set-based in PostgreSQL: per merchant, captured payments − done refunds −
 * fees ± clearing adjustments (resolved discrepancies) + the negative net carried in from the merchant's last
 * cleared date; a negative net is carried out to the next (notes §1.4). One INSERT … SELECT writes the results; the
 * report (files/clearing-report.ts) is written from them, with its SM3 manifest.
 *
 * Preconditions, so nothing of the date is missed or counted twice: no later date is cleared yet (the carry flows
 * forward only), and no payment or refund of the date is still between its ledger steps (resumePayments first).
 */

export interface ClearingSummary {
  readonly businessDate: string;
  readonly merchants: number;
  readonly paymentCount: number;
  readonly refundCount: number;
  readonly payout: string;
  readonly carriedOut: string;
  readonly directory: string;
  readonly files: readonly string[];
  /** True when the date had been cleared before: nothing was computed again, the files were rewritten as stored. */
  readonly replayed: boolean;
}

const RESULTS_SQL = `
WITH pay AS (
  SELECT merchant_id, count(*) AS n, sum(gross) AS amount, sum(fee) AS fee
    FROM cp_payments WHERE business_date = $1 AND status = 'captured' GROUP BY merchant_id
), ref AS (
  SELECT p.merchant_id, count(*) AS n, sum(r.amount) AS amount
    FROM cp_refunds r JOIN cp_payments p ON p.payment_id = r.payment_id
   WHERE r.business_date = $1 AND r.status = 'done' GROUP BY p.merchant_id
), adj AS (
  SELECT merchant_id, sum(amount) AS amount FROM cp_clearing_adjustments WHERE business_date = $1 GROUP BY merchant_id
), carry AS (
  SELECT DISTINCT ON (merchant_id) merchant_id, carried_out
    FROM cp_clearing_results WHERE business_date < $1 ORDER BY merchant_id, business_date DESC
), merchants AS (
  SELECT merchant_id FROM pay UNION SELECT merchant_id FROM ref UNION SELECT merchant_id FROM adj
  UNION SELECT merchant_id FROM carry WHERE carried_out < 0
), figures AS (
  SELECT m.merchant_id, coalesce(pay.n, 0) AS payment_count, coalesce(pay.amount, 0) AS payment_amount,
         coalesce(ref.n, 0) AS refund_count, coalesce(ref.amount, 0) AS refund_amount, coalesce(pay.fee, 0) AS fee,
         coalesce(adj.amount, 0) AS adjustment, coalesce(carry.carried_out, 0) AS carried_in
    FROM merchants m LEFT JOIN pay USING (merchant_id) LEFT JOIN ref USING (merchant_id)
    LEFT JOIN adj USING (merchant_id) LEFT JOIN carry USING (merchant_id)
), nets AS (
  SELECT *, payment_amount - refund_amount - fee + adjustment + carried_in AS net FROM figures
)
INSERT INTO cp_clearing_results (business_date, merchant_id, payment_count, payment_amount, refund_count,
  refund_amount, fee, adjustment, carried_in, net, payout, carried_out)
SELECT $1, merchant_id, payment_count, payment_amount, refund_count, refund_amount, fee, adjustment, carried_in, net,
       greatest(net, 0), least(net, 0)
  FROM nets`;

export async function runClearingStep(deps: ClearingDeps, businessDate: string): Promise<ClearingSummary> {
  return withRun(deps.db, 'clearing', '*', businessDate, deps.now, {}, async (run) => {
    if (!run.alreadySucceeded) {
      await checkClearingPreconditions(deps, businessDate);
      await deps.db.transaction(async (tx) => {
        await tx.query('DELETE FROM cp_clearing_results WHERE business_date = $1', [businessDate]);
        await tx.query(RESULTS_SQL, [businessDate]);
      });
      await run.setPhase('computed');
      await deps.hooks.progress?.(`clearing ${businessDate}: results computed`);
    }
    const rows = await clearingRows(deps, businessDate);
    const written = await writeStepFiles(deps.db, deps.options.outputDir, 'clearing', '*', businessDate, [
      { name: `clearing-report-${businessDate}.csv`, bytes: writeClearingReportCsv(rows) },
    ]);
    const totals = await deps.db.query<{ payout: string; carried_out: string; payments: string; refunds: string }>(
      `SELECT coalesce(sum(payout), 0)::text AS payout, coalesce(sum(carried_out), 0)::text AS carried_out,
              coalesce(sum(payment_count), 0)::text AS payments, coalesce(sum(refund_count), 0)::text AS refunds
         FROM cp_clearing_results WHERE business_date = $1`,
      [businessDate],
    );
    const t = totals[0]!;
    return {
      businessDate,
      merchants: rows.length,
      paymentCount: Number(t.payments),
      refundCount: Number(t.refunds),
      payout: t.payout,
      carriedOut: t.carried_out,
      directory: written.directory,
      files: written.files.map((f) => f.name),
      replayed: run.alreadySucceeded,
    };
  });
}

async function checkClearingPreconditions(deps: ClearingDeps, businessDate: string): Promise<void> {
  const later = await deps.db.query<{ business_date: string }>(
    `SELECT business_date::text FROM cp_clearing_runs
      WHERE step = 'clearing' AND status = 'succeeded' AND business_date > $1 ORDER BY 1 LIMIT 1`,
    [businessDate],
  );
  if (later[0])
    throw new RunPreconditionError(
      `${later[0].business_date} is cleared already; dates are cleared in order (negative nets carry forward)`,
    );
  const unfinished = await deps.db.query<{ payments: string; refunds: string }>(
    `SELECT (SELECT count(*) FROM cp_payments WHERE business_date = $1
               AND status IN ('authorizing', 'capturing', 'reversing'))::text AS payments,
            (SELECT count(*) FROM cp_refunds WHERE business_date = $1 AND status = 'pending')::text AS refunds`,
    [businessDate],
  );
  const u = unfinished[0]!;
  if (u.payments !== '0' || u.refunds !== '0')
    throw new RunPreconditionError(
      `${businessDate} has ${u.payments} payments and ${u.refunds} refunds still between their ledger steps; let the jobs finish them first`,
    );
}

export async function clearingRows(deps: Pick<ClearingDeps, 'db'>, businessDate: string): Promise<ClearingReportRow[]> {
  const rows = await deps.db.query<{
    merchant_id: string;
    payment_count: string;
    payment_amount: string;
    refund_count: string;
    refund_amount: string;
    fee: string;
    adjustment: string;
    carried_in: string;
    net: string;
    payout: string;
    carried_out: string;
  }>(
    `SELECT merchant_id, payment_count::text, payment_amount::text, refund_count::text, refund_amount::text, fee::text,
            adjustment::text, carried_in::text, net::text, payout::text, carried_out::text
       FROM cp_clearing_results WHERE business_date = $1 ORDER BY merchant_id`,
    [businessDate],
  );
  return rows.map((r) => ({
    businessDate,
    merchantId: r.merchant_id,
    paymentCount: Number(r.payment_count),
    paymentAmount: r.payment_amount,
    refundCount: Number(r.refund_count),
    refundAmount: r.refund_amount,
    fee: r.fee,
    adjustment: r.adjustment,
    carriedIn: r.carried_in,
    net: r.net,
    payout: r.payout,
    carriedOut: r.carried_out,
  }));
}
