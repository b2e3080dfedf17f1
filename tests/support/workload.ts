import type { CommandContext, Ledger, LedgerCommand, TransferType } from '../../core-ledger';
import { encodePosition, LOG_START, makeCardNumber, PLATFORM_ACCOUNTS } from '../../core-ledger';
import type { LogPosition } from '../../core-ledger';
import { BANK, CREDIT_ISSUANCE, FEES, merchantPending, userPoints, userWallet } from './ledger-fixtures';

/** A small deterministic PRNG (mulberry32): a failing seed replays exactly. */
export function randomFrom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BEHAVIOURS = ['bus', 'metro', 'cycling', 'walking', 'recycling'];
const AREAS = ['010', '021', '794'];

export interface WorkloadOptions {
  readonly seed: number;
  readonly users: number;
  readonly merchants: number;
  /** Commands sent at once (the writer's group commit sees them together). */
  readonly concurrency: number;
  /** The workload spans this many days from its start day, crossing month boundaries. */
  readonly days: number;
  readonly startDay: string;
}

/**
 * A randomized, realistic mix: top-ups, payments with fees, refunds, carbon credits issued, redeemed and
 * expired, authorizations captured in part or voided, reversals, settlements, freezes and card replacements;
 * times and business dates spread over several months. Refusals (overdrafts, frozen accounts) are part of it.
 */
export class Workload {
  private readonly random: () => number;
  private sequence = 0;
  private readonly posted: string[] = [];
  private readonly pending: string[] = [];
  private dayIndex = 0;

  constructor(
    private readonly ledger: Ledger,
    private readonly options: WorkloadOptions,
  ) {
    this.random = randomFrom(options.seed);
  }

  async openAccounts(): Promise<void> {
    const at = this.at();
    const opens: LedgerCommand[] = [
      ...PLATFORM_ACCOUNTS.map((p): LedgerCommand => ({
        type: 'OpenAccount',
        accountId: p.accountId,
        kind: p.kind,
        ownerId: 'platform',
        at,
      })),
    ];
    for (let u = 0; u < this.options.users; u++) {
      opens.push({ type: 'OpenAccount', accountId: userWallet(u), kind: 'user_main', ownerId: `user-${u}`, at });
      opens.push({ type: 'OpenAccount', accountId: userPoints(u), kind: 'user_points', ownerId: `user-${u}`, at });
    }
    for (let m = 0; m < this.options.merchants; m++)
      opens.push({
        type: 'OpenAccount',
        accountId: merchantPending(m),
        kind: 'merchant_pending_settlement',
        ownerId: `merchant-${m}`,
        at,
      });
    await Promise.all(opens.map((c) => this.ledger.execute(c, this.context())));
  }

  /** Runs commands until the log holds at least `events` more events; returns the commands sent. */
  async run(events: number, countEvents: () => Promise<number>): Promise<number> {
    const start = await countEvents();
    const target = start + events;
    let sent = 0;
    for (let count = start; count < target; count = await countEvents()) {
      // Days advance with progress, so the log spans every day of the workload.
      this.dayIndex = Math.min(Math.floor(((count - start) / events) * this.options.days), this.options.days - 1);
      const batch = Array.from({ length: this.options.concurrency }, () => this.next());
      await Promise.all(batch.map(([command, context]) => this.ledger.execute(command, context)));
      sent += batch.length;
    }
    return sent;
  }

  private day(): string {
    const date = new Date(`${this.options.startDay}T00:00:00.000Z`);
    date.setUTCDate(date.getUTCDate() + this.dayIndex);
    return date.toISOString().slice(0, 10);
  }

  /** Strictly increasing times within the current day. */
  private at(): string {
    const base = Date.parse(`${this.day()}T01:00:00.000Z`);
    return new Date(base + ++this.sequence).toISOString();
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)]!;
  }

  private fen(max: number): string {
    const fen = 1 + Math.floor(this.random() * max);
    return `${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, '0')}`;
  }

  private context(): CommandContext {
    return {
      actor: this.pick(['mall-service', 'pos-gateway', 'operator-7']),
      channel: this.pick(['api', 'pos', 'cli']),
      source: `10.0.0.${Math.floor(this.random() * 250)}`,
      requestId: `req-${this.sequence}`,
      tags: { behaviour: this.pick(BEHAVIOURS), area: this.pick(AREAS) },
    };
  }

  private transfer(
    type: TransferType,
    postings: { accountId: string; direction: 'debit' | 'credit'; amount: string }[],
  ): LedgerCommand {
    const key = `w${this.options.seed}-${++this.sequence}`;
    return {
      type: 'PostTransfer',
      transferId: `t-${key}`,
      idempotencyKey: key,
      transferType: type,
      postings,
      businessDate: this.day(),
      at: this.at(),
    };
  }

  next(): [LedgerCommand, CommandContext] {
    const r = this.random();
    const user = Math.floor(this.random() * this.options.users);
    const merchant = Math.floor(this.random() * this.options.merchants);
    const context = this.context();
    let command: LedgerCommand;
    if (r < 0.2) {
      const amount = this.fen(50_000);
      command = this.transfer('top_up', [
        { accountId: BANK, direction: 'debit', amount },
        { accountId: userWallet(user), direction: 'credit', amount },
      ]);
    } else if (r < 0.5) {
      // A payment, and half the time the merchant's fee as its own transfer (one transfer never uses an account twice).
      const amount = this.fen(20_000);
      command = this.transfer('payment', [
        { accountId: userWallet(user), direction: 'debit', amount },
        { accountId: merchantPending(merchant), direction: 'credit', amount },
      ]);
      this.remember(command);
    } else if (r < 0.53) {
      const fee = this.fen(100);
      command = this.transfer('fee', [
        { accountId: merchantPending(merchant), direction: 'debit', amount: fee },
        { accountId: FEES, direction: 'credit', amount: fee },
      ]);
    } else if (r < 0.57) {
      const amount = this.fen(5_000);
      command = this.transfer('refund', [
        { accountId: merchantPending(merchant), direction: 'debit', amount },
        { accountId: userWallet(user), direction: 'credit', amount },
      ]);
    } else if (r < 0.72) {
      const amount = this.fen(3_000);
      command = this.transfer('credit_issuance', [
        { accountId: CREDIT_ISSUANCE, direction: 'debit', amount },
        { accountId: userPoints(user), direction: 'credit', amount },
      ]);
      this.remember(command);
    } else if (r < 0.78) {
      const amount = this.fen(1_000);
      command = this.transfer(this.random() < 0.7 ? 'credit_redemption' : 'credit_expiry', [
        { accountId: userPoints(user), direction: 'debit', amount },
        {
          accountId: this.random() < 0.5 ? CREDIT_ISSUANCE : 'PLATFORM-CREDIT-EXPIRY-CCR',
          direction: 'credit',
          amount,
        },
      ]);
    } else if (r < 0.85) {
      const key = `w${this.options.seed}-a${++this.sequence}`;
      command = {
        type: 'AuthorizeTransfer',
        transferId: `t-${key}`,
        idempotencyKey: key,
        transferType: 'payment',
        debitAccountId: userWallet(user),
        creditAccountId: merchantPending(merchant),
        amount: this.fen(10_000),
        expiresAt: new Date(Date.parse(this.at()) + 3_600_000).toISOString(),
        businessDate: this.day(),
        at: this.at(),
      };
      this.pending.push(`t-${key}`);
    } else if (r < 0.91 && this.pending.length > 0) {
      const transferId = this.pending.splice(Math.floor(this.random() * this.pending.length), 1)[0]!;
      command =
        this.random() < 0.7
          ? { type: 'CaptureTransfer', transferId, idempotencyKey: `cap-${transferId}`, amount: '0.01', at: this.at() }
          : { type: 'VoidTransfer', transferId, reason: 'customer cancelled', at: this.at() };
    } else if (r < 0.95 && this.posted.length > 0) {
      const transferId = this.posted.splice(Math.floor(this.random() * this.posted.length), 1)[0]!;
      command =
        this.random() < 0.5
          ? {
              type: 'ReverseTransfer',
              transferId,
              reversalTransferId: `rev-${transferId}`,
              idempotencyKey: `rev-${transferId}`,
              reason: 'terminal timeout',
              businessDate: this.day(),
              at: this.at(),
            }
          : { type: 'MarkTransferSettled', transferId, settlementId: `s-${this.day()}`, at: this.at() };
    } else if (r < 0.97) {
      const action = this.pick(['FreezeAccount', 'UnfreezeAccount', 'ReportAccountLost'] as const);
      command = { type: action, accountId: userWallet(user), reason: 'workload', at: this.at() };
    } else if (r < 0.98) {
      command = {
        type: 'ReplaceCard',
        accountId: userWallet(user),
        newCardNumber: makeCardNumber({ areaCode: '0794', sequence: this.sequence }),
        reason: 'workload',
        at: this.at(),
      };
    } else {
      command = this.transfer('payment', [
        { accountId: userWallet(user), direction: 'debit', amount: '999999.99' },
        { accountId: merchantPending(merchant), direction: 'credit', amount: '999999.99' },
      ]);
    }
    return [command, context];
  }

  private remember(command: LedgerCommand): void {
    if (command.type === 'PostTransfer') this.posted.push(command.transferId);
  }
}

/** The position of the last event in a PostgreSQL event log, encoded as the store encodes it. */
export async function logHead(db: {
  query<Row>(text: string, params?: readonly unknown[]): Promise<Row[]>;
}): Promise<LogPosition> {
  const rows = await db.query<{ tx: string; seq: string }>(
    'SELECT tx_id::text AS tx, seq::text AS seq FROM cp_events ORDER BY tx_id DESC, seq DESC LIMIT 1',
  );
  return rows.length === 0 ? LOG_START : encodePosition(BigInt(rows[0]!.tx), BigInt(rows[0]!.seq));
}
