import type { Amount } from '../core-ledger';
import { Money, uuidV5 } from '../core-ledger';
import { ServiceRefusal } from '../services';
import type { ClearingDeps } from './context';
import type { CaseResolution, DiscrepancyClass, Resolution } from './discrepancy-classes';
import { DISCREPANCY_CLASSES } from './discrepancy-classes';
import { findRun, RunBusyError, RunPreconditionError } from './run-gate';
import { postSuspenseMove, SuspenseMoveRefused } from './suspense';

/**
 * Resolving a discrepancy case (差错处理): the operator's choice becomes ledger events — never an edit of what was
 * booked (notes §0.3). Every resolution but `hold` moves the case's delta out of suspense (suspense.ts), to where the
 * resolution says; `book_missing` and `reversal` first do what they name through the services (a pending top-up
 * confirmed, a payment cancelled) or the ledger (a top-up or refund reversed). A merchant's side of a resolution is
 * also a clearing adjustment of the resolution's date, so that date's clearing counts it.
 */

export interface DiscrepancyCase {
  readonly caseId: string;
  readonly channel: string;
  readonly billDate: string;
  readonly class: DiscrepancyClass;
  readonly kind: 'payment' | 'refund';
  readonly merchantOrderNo: string;
  readonly refundNo: string;
  readonly lineNo: number | null;
  readonly channelTradeNo: string | null;
  readonly channelAmount: string | null;
  readonly channelStatus: string | null;
  readonly ourSource: 'payment' | 'refund' | 'top_up' | null;
  readonly ourId: string | null;
  readonly ourAmount: string | null;
  readonly ourStatus: string | null;
  readonly ourDate: string | null;
  readonly merchantId: string | null;
  readonly walletId: string | null;
  readonly delta: string;
  readonly state: 'open' | 'held' | 'resolved';
  readonly resolution: CaseResolution | null;
  readonly resolvedDate: string | null;
  readonly resolvedBy: string | null;
  readonly rematches: string | null;
  readonly note: string | null;
}

/** The operator asked for something this case does not allow (usage), or the ledger or a service said no. */
export class ResolutionRefusedError extends Error {
  constructor(
    readonly kind: 'not_allowed' | 'refused' | 'not_found',
    message: string,
  ) {
    super(message);
    this.name = 'ResolutionRefusedError';
  }
}

export interface ResolveInput {
  readonly caseId: string;
  readonly resolution: Resolution;
  /** Business date of the resolution's postings (and of a merchant's clearing adjustment). */
  readonly businessDate: string;
  /** For a channel-only line: the merchant whose order it was (book_missing, adjustment). */
  readonly merchantId?: string;
  readonly note?: string;
}

const CASE_SELECT = `SELECT case_id::text, channel, bill_date::text, class, kind, merchant_order_no, refund_no, line_no,
  channel_trade_no, channel_amount::text, channel_status, our_source, our_id, our_amount::text, our_status,
  our_date::text, merchant_id, wallet_id, delta::text, state, resolution, resolved_date::text, resolved_by,
  rematches::text, note FROM cp_recon_cases`;

interface CaseRow {
  case_id: string;
  channel: string;
  bill_date: string;
  class: DiscrepancyClass;
  kind: 'payment' | 'refund';
  merchant_order_no: string;
  refund_no: string;
  line_no: number | null;
  channel_trade_no: string | null;
  channel_amount: string | null;
  channel_status: string | null;
  our_source: DiscrepancyCase['ourSource'];
  our_id: string | null;
  our_amount: string | null;
  our_status: string | null;
  our_date: string | null;
  merchant_id: string | null;
  wallet_id: string | null;
  delta: string;
  state: DiscrepancyCase['state'];
  resolution: CaseResolution | null;
  resolved_date: string | null;
  resolved_by: string | null;
  rematches: string | null;
  note: string | null;
}

function caseOf(r: CaseRow): DiscrepancyCase {
  return {
    caseId: r.case_id,
    channel: r.channel,
    billDate: r.bill_date,
    class: r.class,
    kind: r.kind,
    merchantOrderNo: r.merchant_order_no,
    refundNo: r.refund_no,
    lineNo: r.line_no,
    channelTradeNo: r.channel_trade_no,
    channelAmount: r.channel_amount,
    channelStatus: r.channel_status,
    ourSource: r.our_source,
    ourId: r.our_id,
    ourAmount: r.our_amount,
    ourStatus: r.our_status,
    ourDate: r.our_date,
    merchantId: r.merchant_id,
    walletId: r.wallet_id,
    delta: r.delta,
    state: r.state,
    resolution: r.resolution,
    resolvedDate: r.resolved_date,
    resolvedBy: r.resolved_by,
    rematches: r.rematches,
    note: r.note,
  };
}

export interface CaseFilter {
  readonly billDate?: string;
  readonly channel?: string;
  /** Unresolved only (open and held), the default; or every case. */
  readonly all?: boolean;
  readonly limit?: number;
}

/** Cases listed at most at once. */
export const MAX_CASES_LISTED = 10_000;

export async function listCases(deps: Pick<ClearingDeps, 'db'>, filter: CaseFilter): Promise<DiscrepancyCase[]> {
  const limit = Math.min(filter.limit ?? MAX_CASES_LISTED, MAX_CASES_LISTED);
  const rows = await deps.db.query<CaseRow>(
    `${CASE_SELECT}
      WHERE ($1::date IS NULL OR bill_date = $1::date) AND ($2::text IS NULL OR channel = $2)
        AND ($3::boolean OR state <> 'resolved')
      ORDER BY bill_date, channel, class, merchant_order_no, refund_no, case_id LIMIT $4`,
    [filter.billDate ?? null, filter.channel ?? null, filter.all === true, limit],
  );
  return rows.map(caseOf);
}

export async function getCase(deps: Pick<ClearingDeps, 'db'>, caseId: string): Promise<DiscrepancyCase | undefined> {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(caseId)) return undefined;
  const rows = await deps.db.query<CaseRow>(`${CASE_SELECT} WHERE case_id = $1`, [caseId]);
  return rows[0] ? caseOf(rows[0]) : undefined;
}

export async function resolveCase(deps: ClearingDeps, input: ResolveInput): Promise<DiscrepancyCase> {
  const session = await deps.db.openSession();
  try {
    if (!(await session.tryLock(`clearing|case|${input.caseId}`)))
      throw new RunBusyError('reconciliation', input.caseId, input.businessDate);
    const found = await getCase(deps, input.caseId);
    if (!found) throw new ResolutionRefusedError('not_found', `case ${input.caseId} does not exist`);
    if (found.state === 'resolved') {
      if (found.resolution === input.resolution) return found;
      throw new ResolutionRefusedError('not_allowed', `case ${found.caseId} is resolved already (${found.resolution})`);
    }
    const allowed = DISCREPANCY_CLASSES[found.class].resolutions;
    if (!allowed.includes(input.resolution))
      throw new ResolutionRefusedError(
        'not_allowed',
        `a ${found.class} case is resolved by ${allowed.join(', ') || 'the matcher'}, not ${input.resolution}`,
      );
    try {
      await apply(deps, found, input);
    } catch (error) {
      if (error instanceof SuspenseMoveRefused || error instanceof ServiceRefusal)
        throw new ResolutionRefusedError('refused', `case ${found.caseId}: ${(error as Error).message}`);
      throw error;
    }
    const held = input.resolution === 'hold';
    await deps.db.query(
      `UPDATE cp_recon_cases SET state = $2, resolution = $3, resolved_date = $4, resolved_by = $5,
              release_posted = release_posted OR $6, note = coalesce($7, note)
        WHERE case_id = $1`,
      [
        found.caseId,
        held ? 'held' : 'resolved',
        held ? null : input.resolution,
        held ? null : input.businessDate,
        deps.context.actor,
        !held,
        input.note ?? null,
      ],
    );
    return (await getCase(deps, found.caseId))!;
  } finally {
    await session.close();
  }
}

async function apply(deps: ClearingDeps, found: DiscrepancyCase, input: ResolveInput): Promise<void> {
  const delta = new Money(found.delta);
  const channelOk = found.channelStatus !== null && delta.gt(0) === (found.kind === 'payment');
  const oursOk = found.ourId !== null && ['captured', 'done', 'confirmed'].includes(found.ourStatus ?? '');
  switch (input.resolution) {
    case 'hold':
      return;
    case 'refund':
      if (!delta.gt(0))
        throw new ResolutionRefusedError('not_allowed', `case ${found.caseId}: the channel holds no money to refund`);
      await postSuspenseMove(deps, 'resolution', found.caseId, delta, input.businessDate);
      return;
    case 'book_missing':
      if (delta.isZero() || !channelOk)
        throw new ResolutionRefusedError('not_allowed', `case ${found.caseId}: the channel has nothing we lack`);
      if (found.ourSource === 'top_up') {
        if (found.ourStatus !== 'pending')
          throw new ResolutionRefusedError('not_allowed', `top-up ${found.ourId} is ${found.ourStatus}, not pending`);
        await deps.payments.confirmTopUp(
          { topUpId: found.ourId!, result: 'success', channelTradeNo: found.channelTradeNo ?? found.caseId },
          deps.context,
          deps.now(),
        );
        await postSuspenseMove(deps, 'resolution', found.caseId, delta, input.businessDate);
        return;
      }
      return toMerchant(deps, found, input, delta);
    case 'reversal':
      if (!oursOk)
        throw new ResolutionRefusedError('not_allowed', `case ${found.caseId}: no booked record of ours to reverse`);
      await reverseOurs(deps, found, input);
      await postSuspenseMove(deps, 'resolution', found.caseId, delta, input.businessDate);
      return;
    case 'adjustment':
      if (delta.isZero()) return;
      if (found.ourSource === 'top_up') {
        const wallet = await deps.wallets.getWallet(found.walletId!);
        if (!wallet) throw new Error(`assertion: wallet ${found.walletId} of top-up ${found.ourId} does not exist`);
        await postSuspenseMove(deps, 'resolution', found.caseId, delta, input.businessDate, wallet.accounts.main);
        return;
      }
      return toMerchant(deps, found, input, delta);
  }
}

/** The delta booked to the merchant's pending settlement account, and counted by the date's clearing. */
async function toMerchant(
  deps: ClearingDeps,
  found: DiscrepancyCase,
  input: ResolveInput,
  delta: Amount,
): Promise<void> {
  const merchantId = found.merchantId ?? input.merchantId;
  if (merchantId === undefined)
    throw new ResolutionRefusedError('not_allowed', `case ${found.caseId} names no merchant: give --merchant`);
  const merchant = await deps.payments.getMerchant(merchantId);
  if (!merchant) throw new ResolutionRefusedError('not_found', `merchant ${merchantId} does not exist`);
  await requireUncleared(deps, input.businessDate);
  const transferId = await postSuspenseMove(
    deps,
    'resolution',
    found.caseId,
    delta,
    input.businessDate,
    merchant.pendingAccount,
  );
  await recordAdjustment(
    deps,
    transferId,
    merchantId,
    input.businessDate,
    delta.toFixed(2),
    found.caseId,
    input.resolution,
  );
}

async function recordAdjustment(
  deps: ClearingDeps,
  transferId: string,
  merchantId: string,
  businessDate: string,
  amount: string,
  caseId: string,
  reason: string,
): Promise<void> {
  await deps.db.query(
    `INSERT INTO cp_clearing_adjustments (transfer_id, merchant_id, business_date, amount, case_id, reason)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (transfer_id) DO NOTHING`,
    [transferId, merchantId, businessDate, amount, caseId, reason],
  );
}

async function requireUncleared(deps: ClearingDeps, businessDate: string): Promise<void> {
  const cleared = await findRun(deps.db, 'clearing', '*', businessDate);
  if (cleared?.status === 'succeeded')
    throw new RunPreconditionError(`${businessDate} is cleared already: resolve with a later --date`);
}

/** 冲正: our own record undone — a payment cancelled through the service, a top-up or refund reversed in the ledger. */
async function reverseOurs(deps: ClearingDeps, found: DiscrepancyCase, input: ResolveInput): Promise<void> {
  const reason = `reconciliation case ${found.caseId}`;
  if (found.ourSource === 'payment') {
    await requireUncleared(deps, found.ourDate!);
    const view = await deps.payments.cancel(found.ourId!, reason, deps.context, deps.now());
    if (view.status !== 'reversed')
      throw new ResolutionRefusedError('refused', `payment ${found.ourId} is ${view.status} after the cancel`);
    return;
  }
  let transferId: string;
  if (found.ourSource === 'top_up') {
    const rows = await deps.db.query<{ transfer_id: string }>(
      'SELECT transfer_id FROM cp_top_ups WHERE top_up_id = $1',
      [found.ourId],
    );
    transferId = rows[0]!.transfer_id;
  } else {
    const [paymentId, refundId] = found.ourId!.split('|');
    const rows = await deps.db.query<{ transfer_id: string }>(
      'SELECT transfer_id FROM cp_refunds WHERE payment_id = $1 AND refund_id = $2',
      [paymentId, refundId],
    );
    transferId = rows[0]!.transfer_id;
    // The refund stays counted on its own date; its reversal gives the merchant the amount back on this one.
    await requireUncleared(deps, input.businessDate);
  }
  const reversalTransferId = uuidV5(`recon-reversal|${found.caseId}`);
  const outcome = await deps.ledger.execute(
    {
      type: 'ReverseTransfer',
      transferId,
      reversalTransferId,
      idempotencyKey: `recon-reversal:${found.caseId}`,
      reason,
      businessDate: input.businessDate,
      at: deps.now().toISOString(),
    },
    deps.context,
  );
  if (outcome.status === 'refused')
    throw new ResolutionRefusedError('refused', `${outcome.refusal.code}: ${outcome.refusal.message}`);
  if (found.ourSource === 'refund')
    await recordAdjustment(
      deps,
      reversalTransferId,
      found.merchantId!,
      input.businessDate,
      found.ourAmount!,
      found.caseId,
      'reversal',
    );
}
