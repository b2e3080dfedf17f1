import type { Amount, PostingInput } from '../core-ledger';
import { formatAmount, uuidV5 } from '../core-ledger';
import type { ClearingDeps } from './context';
import { PLATFORM_BANK_CLEARING_ACCOUNT, PLATFORM_SUSPENSE_ACCOUNT } from './context';

/**
 * Money moved for a discrepancy case, always through PLATFORM-SUSPENSE-CNY (挂账):
 *
 * - `hold`, when the case is found: the delta (channel − ours) goes into suspense against bank clearing —
 *   positive: Dr PLATFORM-BANK-CLEARING-CNY / Cr suspense (the channel holds money we did not book);
 *   negative: Dr suspense / Cr bank clearing (we booked money the channel does not hold).
 * - `release` (re-matched) and `resolution`: the same amount out of suspense again, to bank clearing or to the
 *   account the resolution names (the merchant's pending settlement, a wallet).
 *
 * Each move is one `adjustment` transfer whose id and idempotency key are derived from (move, case): posting it
 * twice is a replay. A refusal (the counter account cannot give the money) is an expected outcome for the caller.
 */

export type SuspenseMove = 'hold' | 'release' | 'resolution';

export class SuspenseMoveRefused extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'SuspenseMoveRefused';
  }
}

export function suspenseTransferIdOf(move: SuspenseMove, caseId: string): string {
  return uuidV5(`recon-${move}|${caseId}`);
}

export function suspensePostings(move: SuspenseMove, delta: Amount, counterAccount: string): PostingInput[] {
  const amount = formatAmount('CNY', delta.abs());
  const intoSuspense = move === 'hold' ? delta.gt(0) : delta.lt(0);
  const other = move === 'hold' ? PLATFORM_BANK_CLEARING_ACCOUNT : counterAccount;
  return intoSuspense
    ? [
        { accountId: other, direction: 'debit', amount },
        { accountId: PLATFORM_SUSPENSE_ACCOUNT, direction: 'credit', amount },
      ]
    : [
        { accountId: PLATFORM_SUSPENSE_ACCOUNT, direction: 'debit', amount },
        { accountId: other, direction: 'credit', amount },
      ];
}

export async function postSuspenseMove(
  deps: ClearingDeps,
  move: SuspenseMove,
  caseId: string,
  delta: Amount,
  businessDate: string,
  counterAccount: string = PLATFORM_BANK_CLEARING_ACCOUNT,
): Promise<string> {
  if (delta.isZero()) throw new Error(`assertion: case ${caseId} moves no money`);
  const transferId = suspenseTransferIdOf(move, caseId);
  const outcome = await deps.ledger.execute(
    {
      type: 'PostTransfer',
      transferId,
      idempotencyKey: `recon-${move}:${caseId}`,
      transferType: 'adjustment',
      postings: suspensePostings(move, delta, counterAccount),
      reason: `reconciliation case ${caseId}: ${move}`,
      reference: caseId,
      businessDate,
      at: deps.now().toISOString(),
    },
    deps.context,
  );
  if (outcome.status === 'refused') throw new SuspenseMoveRefused(outcome.refusal.code, outcome.refusal.message);
  return transferId;
}
