import type { PostTransfer } from '../core-ledger';
import { Money, uuidV5 } from '../core-ledger';
import { paymentTransferIds } from '../services';
import type { ClearingDeps } from './context';
import { addDays, inParallel } from './context';
import type { BankPaymentLine } from './files/bank-payment-file';
import { MAX_BANK_PAYMENT_LINES, writeBankPaymentCsv, writeBankPaymentFixedWidth } from './files/bank-payment-file';
import type { ManifestFile } from './files/sm3-manifest';
import { writeStepFiles } from './output-files';
import { findRun, RunPreconditionError, withRun } from './run-gate';

/**
 * Settlement (结算) of a cleared date. Per merchant with a positive payout: one `settlement` transfer from its
 * pending-settlement account to its settled account (the fees went to fee income when each payment was captured).
 * Then every transfer the date's clearing counted for the merchant — each tender of its captured payments, their
 * fees, its refunds and clearing adjustments — is marked settled (`MarkTransferSettled`), so none can be reversed
 * any more (a later correction is an adjustment). Finally the bank payment file, as CSV and fixed-width.
 *
 * Idempotent and resumable: the settlement transfer id is derived from (date, merchant), the ledger answers a
 * repeated command as a replay, and each merchant's line records how far it got (pending → posted → marked). A
 * run killed at any point is finished by the next one; a finished one only writes its files again.
 */

export interface SettlementSummary {
  readonly businessDate: string;
  readonly merchants: number;
  readonly settled: number;
  readonly settledAmount: string;
  readonly transfersMarked: number;
  /** Lines the ledger refused (the merchant's pending account no longer holds the payout); not in the bank file. */
  readonly held: readonly { readonly merchantId: string; readonly amount: string; readonly reason: string }[];
  readonly directory: string;
  readonly files: readonly string[];
  readonly replayed: boolean;
}

interface LineRow {
  merchant_id: string;
  amount: string;
  settlement_id: string;
  state: 'pending' | 'posted' | 'marked' | 'held';
  held_reason: string | null;
}

/** The settlement transfer (and settlement id) of a merchant's date. */
export function settlementIdOf(businessDate: string, merchantId: string): string {
  return uuidV5(`settlement|${businessDate}|${merchantId}`);
}

/** Progress is reported every this many merchants. */
const PROGRESS_EVERY_MERCHANTS = 50;

export async function runSettlementStep(deps: ClearingDeps, businessDate: string): Promise<SettlementSummary> {
  const cleared = await findRun(deps.db, 'clearing', '*', businessDate);
  if (cleared?.status !== 'succeeded')
    throw new RunPreconditionError(`${businessDate} is not cleared yet: run clearing first`);
  return withRun(deps.db, 'settlement', '*', businessDate, deps.now, {}, async (run) => {
    if (!run.alreadySucceeded) {
      if (run.phase === 'new') {
        await deps.db.query(
          `INSERT INTO cp_settlement_lines (business_date, merchant_id, amount, settlement_id, state)
           SELECT business_date, merchant_id, payout, '', 'pending' FROM cp_clearing_results WHERE business_date = $1
           ON CONFLICT DO NOTHING`,
          [businessDate],
        );
        const merchants = await deps.db.query<{ merchant_id: string }>(
          `SELECT merchant_id FROM cp_settlement_lines WHERE business_date = $1 AND settlement_id = ''`,
          [businessDate],
        );
        await deps.db.query(
          `UPDATE cp_settlement_lines l SET settlement_id = x.id
             FROM unnest($2::text[], $3::text[]) AS x(merchant_id, id)
            WHERE l.business_date = $1 AND l.merchant_id = x.merchant_id`,
          [
            businessDate,
            merchants.map((m) => m.merchant_id),
            merchants.map((m) => settlementIdOf(businessDate, m.merchant_id)),
          ],
        );
        await run.setPhase('lines');
      }
      await settleLines(deps, businessDate);
      await run.setPhase('settled');
    }
    return summarise(deps, businessDate, run.alreadySucceeded);
  });
}

async function settleLines(deps: ClearingDeps, businessDate: string): Promise<void> {
  const lines = await deps.db.query<LineRow>(
    `SELECT merchant_id, amount::text, settlement_id, state, held_reason FROM cp_settlement_lines
      WHERE business_date = $1 AND state IN ('pending', 'posted') ORDER BY merchant_id`,
    [businessDate],
  );
  const transfers = await transfersOfDate(deps, businessDate);
  let done = 0;
  // Merchants one after another in a few lanes: the ledger batches what the lanes have in flight.
  await inParallel(lines, Math.max(1, Math.floor(deps.options.ledgerConcurrency / 8)), async (line) => {
    await settleLine(deps, businessDate, line, transfers.get(line.merchant_id) ?? []);
    done += 1;
    if (done % PROGRESS_EVERY_MERCHANTS === 0 || done === lines.length)
      await deps.hooks.progress?.(`settlement ${businessDate}: ${done}/${lines.length} merchants`);
  });
}

async function settleLine(
  deps: ClearingDeps,
  businessDate: string,
  line: LineRow,
  transferIds: string[],
): Promise<void> {
  if (line.state === 'pending') {
    if (new Money(line.amount).gt(0)) {
      const merchant = await deps.payments.getMerchant(line.merchant_id);
      if (!merchant) throw new Error(`assertion: cleared merchant ${line.merchant_id} does not exist`);
      const command: PostTransfer = {
        type: 'PostTransfer',
        transferId: line.settlement_id,
        idempotencyKey: `settlement:${businessDate}:${line.merchant_id}`,
        transferType: 'settlement',
        postings: [
          { accountId: merchant.pendingAccount, direction: 'debit', amount: line.amount },
          { accountId: merchant.settledAccount, direction: 'credit', amount: line.amount },
        ],
        reference: `STL${businessDate.replace(/-/g, '')}`,
        businessDate,
        at: deps.now().toISOString(),
      };
      const outcome = await deps.ledger.execute(command, deps.context);
      if (outcome.status === 'refused') {
        // An expected outcome, not a bug: e.g. a refund took the funds between clearing and settlement.
        await deps.db.query(
          `UPDATE cp_settlement_lines SET state = 'held', held_reason = $3 WHERE business_date = $1 AND merchant_id = $2`,
          [businessDate, line.merchant_id, `${outcome.refusal.code}: ${outcome.refusal.message}`.slice(0, 500)],
        );
        return;
      }
    }
    await deps.db.query(
      `UPDATE cp_settlement_lines SET state = 'posted' WHERE business_date = $1 AND merchant_id = $2`,
      [businessDate, line.merchant_id],
    );
    await deps.hooks.faultAt?.('settlement_transfer_posted');
  }
  await inParallel(transferIds, deps.options.ledgerConcurrency, async (transferId) => {
    const outcome = await deps.ledger.execute(
      { type: 'MarkTransferSettled', transferId, settlementId: line.settlement_id, at: deps.now().toISOString() },
      deps.context,
    );
    if (outcome.status === 'refused')
      throw new Error(
        `transfer ${transferId} of ${line.merchant_id} could not be marked settled: ${outcome.refusal.code} ${outcome.refusal.message}`,
      );
  });
  await deps.db.query(
    `UPDATE cp_settlement_lines SET state = 'marked', transfers_marked = $3 WHERE business_date = $1 AND merchant_id = $2`,
    [businessDate, line.merchant_id, transferIds.length],
  );
  await deps.hooks.faultAt?.('settlement_line_marked');
}

/**
 * The ledger transfers the date's clearing counted, per merchant: a payment's from services' `paymentTransferIds`;
 * refunds and adjustments keep theirs in their rows.
 */
async function transfersOfDate(deps: ClearingDeps, businessDate: string): Promise<Map<string, string[]>> {
  const rows = await deps.db.query<{ merchant_id: string; kind: string; id: string; legs: string[] | null }>(
    `SELECT merchant_id, 'payment' AS kind, payment_id AS id,
            ARRAY[wallet_amount::text, coupon_amount::text, credits::text, credits_value::text, fee::text] AS legs
       FROM cp_payments WHERE business_date = $1 AND status = 'captured'
     UNION ALL
     SELECT p.merchant_id, 'transfer', r.transfer_id, NULL FROM cp_refunds r JOIN cp_payments p USING (payment_id)
      WHERE r.business_date = $1 AND r.status = 'done'
     UNION ALL
     SELECT merchant_id, 'transfer', transfer_id, NULL FROM cp_clearing_adjustments WHERE business_date = $1
     ORDER BY 1, 2, 3`,
    [businessDate],
  );
  const byMerchant = new Map<string, string[]>();
  for (const row of rows) {
    const ids = byMerchant.get(row.merchant_id) ?? [];
    if (row.kind === 'payment') {
      const [wallet, coupon, credits, creditsValue, fee] = row.legs!;
      ids.push(
        ...paymentTransferIds({
          paymentId: row.id,
          tenders: { wallet: wallet!, coupon: coupon!, credits: credits!, creditsValue: creditsValue! },
          fee: fee!,
        }),
      );
    } else ids.push(row.id);
    byMerchant.set(row.merchant_id, ids);
  }
  return byMerchant;
}

async function summarise(deps: ClearingDeps, businessDate: string, replayed: boolean): Promise<SettlementSummary> {
  const lines = await deps.db.query<LineRow & { transfers_marked: number }>(
    `SELECT merchant_id, amount::text, settlement_id, state, held_reason, transfers_marked FROM cp_settlement_lines
      WHERE business_date = $1 ORDER BY merchant_id`,
    [businessDate],
  );
  const paid = lines.filter((l) => l.state === 'marked' && new Money(l.amount).gt(0));
  const files = await bankFiles(deps, businessDate, paid);
  const written = await writeStepFiles(deps.db, deps.options.outputDir, 'settlement', '*', businessDate, files);
  return {
    businessDate,
    merchants: lines.length,
    settled: paid.length,
    settledAmount: paid.reduce((sum, l) => sum.plus(l.amount), new Money(0)).toFixed(2),
    transfersMarked: lines.reduce((sum, l) => sum + l.transfers_marked, 0),
    held: lines
      .filter((l) => l.state === 'held')
      .map((l) => ({ merchantId: l.merchant_id, amount: l.amount, reason: l.held_reason ?? '' })),
    directory: written.directory,
    files: written.files.map((f) => f.name),
    replayed,
  };
}

/** Printable ASCII, as the fixed-width file needs. */
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

async function bankFiles(deps: ClearingDeps, businessDate: string, paid: readonly LineRow[]): Promise<ManifestFile[]> {
  const lines: BankPaymentLine[] = [];
  for (const line of paid) {
    const merchant = (await deps.payments.getMerchant(line.merchant_id))!;
    lines.push({
      reference: line.settlement_id.replace(/-/g, ''),
      payeeAccount: merchant.settlementBankAccount,
      payeeName: merchant.name,
      payeeBankCode: deps.options.payeeBankCode,
      amount: line.amount,
      purpose: `settlement ${businessDate}`,
    });
  }
  const files: ManifestFile[] = [];
  const compact = businessDate.replace(/-/g, '');
  for (let start = 0, batchNo = 1; start < lines.length; start += MAX_BANK_PAYMENT_LINES, batchNo += 1) {
    const slice = lines.slice(start, start + MAX_BANK_PAYMENT_LINES);
    const suffix = String(batchNo).padStart(3, '0');
    const batch = {
      batchId: `STL${compact}${suffix}`,
      // T+1: the bank pays on the day after the cleared date.
      valueDate: addDays(businessDate, 1),
      payerAccount: deps.options.payerAccount,
      lines: slice,
    };
    const csv = writeBankPaymentCsv(batch);
    // The fixed-width layout is ASCII: a payee name outside it is replaced by the merchant id there (the CSV keeps it).
    const fixed = writeBankPaymentFixedWidth({
      ...batch,
      lines: slice.map((l, i) =>
        PRINTABLE_ASCII.test(l.payeeName) ? l : { ...l, payeeName: paid[start + i]!.merchant_id },
      ),
    });
    if (!csv.ok) throw new Error(`assertion: bank payment CSV refused: ${csv.errors.join('; ')}`);
    if (!fixed.ok) throw new Error(`assertion: bank payment fixed-width file refused: ${fixed.errors.join('; ')}`);
    files.push({ name: `bank-payment-${businessDate}-${suffix}.csv`, bytes: csv.bytes });
    files.push({ name: `bank-payment-${businessDate}-${suffix}.txt`, bytes: fixed.bytes });
  }
  return files;
}
