import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import type { Amount, CommandContext, Ledger } from '../core-ledger';
import {
  amountOf,
  atScale,
  businessDateOf,
  codedArea,
  feeFor,
  formatAmount,
  makeAccountId,
  Money,
  parseAmount,
  uuidV5,
  ZERO,
} from '../core-ledger';
import type { BankChannel } from './bank-channel';
import type { OutboxMessage } from './outbox';
import { Outbox } from './outbox';
import { GroupCommit } from './group-commit';
import type { DeferredDecision, RiskService } from './risk';
import type { PersonalDataCipher, ServiceDatabase, SqlQueryable } from './database';
import { executeOrRefuse, preparedSql, ServiceRefusal } from './database';
import type { WalletRecord, WalletService } from './wallets';

/**
 * Merchants (C6, C8) and mall payments (C4, C5): an order paid with any mix of wallet funds, carbon credits and
 * coupons, in two phases. Every tender is first held (an authorization per leg); only when all are held does the
 * payment reach `capturing` — its commit point — and every hold is captured. A failure before that point voids the
 * holds (neither); after it, `resumePayments` captures the rest (both). Holds expire on their own as a last resort.
 */

export const REDEMPTION_ACCOUNT = 'PLATFORM-CREDIT-REDEMPTION-CCR';
export const MARKETING_ACCOUNT = 'PLATFORM-MARKETING-CNY';
export const FEE_INCOME_ACCOUNT = 'PLATFORM-FEE-INCOME-CNY';
export const BANK_CLEARING_ACCOUNT = 'PLATFORM-BANK-CLEARING-CNY';

export interface PaymentPolicy {
  /** CNY value of one carbon credit in the mall's credit zone (C4); one fen must buy whole hundredths of a credit. */
  readonly creditValueCny: string;
  /** How long a tender's hold lives if the payment never reaches a decision. */
  readonly holdMinutes: number;
  readonly cutoffHourLocal: number;
}

export const PAYMENT_LIMITS = { maxCachedMerchants: 100_000 } as const;

export const DEFAULT_PAYMENT_POLICY: PaymentPolicy = { creditValueCny: '0.01', holdMinutes: 15, cutoffHourLocal: 0 };

export type TenderKind = 'wallet' | 'coupon' | 'credits';

/** Refunds return tenders in this order (documented rule): cash to the wallet first, then coupons, then credits. */
export const REFUND_ORDER: readonly TenderKind[] = ['wallet', 'coupon', 'credits'];

export const PAYMENTS_SQL = `
CREATE TABLE IF NOT EXISTS cp_merchants (
  merchant_id text PRIMARY KEY,
  name text NOT NULL,
  category text NOT NULL,
  fee_rate_bps integer NOT NULL CHECK (fee_rate_bps BETWEEN 0 AND 10000),
  settlement_bank_account text NOT NULL,
  pending_account text NOT NULL,
  settled_account text NOT NULL,
  status text NOT NULL CHECK (status IN ('applied', 'active', 'rejected')),
  review_reason text,
  reviewed_by text,
  applied_at timestamptz NOT NULL,
  reviewed_at timestamptz
);
CREATE TABLE IF NOT EXISTS cp_payments (
  payment_id text PRIMARY KEY,
  merchant_id text NOT NULL,
  order_id text NOT NULL,
  wallet_id text NOT NULL,
  gross numeric NOT NULL,
  wallet_amount numeric NOT NULL,
  coupon_amount numeric NOT NULL,
  credits numeric NOT NULL,
  credits_value numeric NOT NULL,
  fee numeric NOT NULL,
  refunded numeric NOT NULL DEFAULT 0,
  status text NOT NULL CHECK (status IN ('authorizing', 'capturing', 'captured', 'failed', 'reversing', 'reversed')),
  failure text,
  business_date date NOT NULL,
  created_at timestamptz NOT NULL,
  UNIQUE (merchant_id, order_id)
);
CREATE INDEX IF NOT EXISTS cp_payments_unfinished ON cp_payments (created_at) WHERE status IN ('authorizing', 'capturing', 'reversing');
CREATE INDEX IF NOT EXISTS cp_payments_merchant_date ON cp_payments (merchant_id, business_date);
CREATE TABLE IF NOT EXISTS cp_refunds (
  refund_id text NOT NULL,
  payment_id text NOT NULL REFERENCES cp_payments (payment_id),
  amount numeric NOT NULL,
  wallet_amount numeric NOT NULL,
  coupon_amount numeric NOT NULL,
  credits_value numeric NOT NULL,
  credits numeric NOT NULL,
  transfer_id text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'done')),
  business_date date NOT NULL,
  created_at timestamptz NOT NULL,
  PRIMARY KEY (payment_id, refund_id)
);
-- A payment's first write, in one round trip and one commit: the password-free reservation (wallets' table
-- cp_password_free_usage; p_password_free_per_day is NULL for a payment with a password) and the payment row. Answers
-- 'inserted', 'exists' (this payment id is taken: nothing reserved) or 'password_free_limit_exceeded'.
CREATE OR REPLACE FUNCTION cp_payment_begin(p_payment_id text, p_merchant_id text, p_order_id text, p_wallet_id text,
  p_gross numeric, p_wallet_amount numeric, p_coupon_amount numeric, p_credits numeric, p_credits_value numeric,
  p_fee numeric, p_business_date date, p_created_at timestamptz, p_password_free_per_day numeric)
RETURNS text LANGUAGE plpgsql AS $fn$
BEGIN
  IF EXISTS (SELECT 1 FROM cp_payments WHERE payment_id = p_payment_id) THEN RETURN 'exists'; END IF;
  IF p_password_free_per_day IS NOT NULL THEN
    IF p_gross > p_password_free_per_day THEN RETURN 'password_free_limit_exceeded'; END IF;
    INSERT INTO cp_password_free_usage AS u (wallet_id, business_date, used) VALUES (p_wallet_id, p_business_date, p_gross)
    ON CONFLICT (wallet_id, business_date) DO UPDATE SET used = u.used + EXCLUDED.used
     WHERE u.used + EXCLUDED.used <= p_password_free_per_day;
    IF NOT FOUND THEN RETURN 'password_free_limit_exceeded'; END IF;
  END IF;
  INSERT INTO cp_payments (payment_id, merchant_id, order_id, wallet_id, gross, wallet_amount, coupon_amount, credits,
    credits_value, fee, status, business_date, created_at)
  VALUES (p_payment_id, p_merchant_id, p_order_id, p_wallet_id, p_gross, p_wallet_amount, p_coupon_amount, p_credits,
    p_credits_value, p_fee, 'authorizing', p_business_date, p_created_at)
  ON CONFLICT DO NOTHING;
  IF NOT FOUND THEN
    -- Taken meanwhile by a concurrent request for the same order: give the reservation back in this transaction.
    IF p_password_free_per_day IS NOT NULL THEN
      UPDATE cp_password_free_usage SET used = used - p_gross WHERE wallet_id = p_wallet_id AND business_date = p_business_date;
    END IF;
    RETURN 'exists';
  END IF;
  RETURN 'inserted';
END
$fn$;
-- cp_payment_begin for a batch (group commit): one outcome per payment, in the order given.
CREATE OR REPLACE FUNCTION cp_payment_begin_many(p_payment_id text[], p_merchant_id text[], p_order_id text[],
  p_wallet_id text[], p_gross numeric[], p_wallet_amount numeric[], p_coupon_amount numeric[], p_credits numeric[],
  p_credits_value numeric[], p_fee numeric[], p_business_date date[], p_created_at timestamptz[],
  p_password_free_per_day numeric[])
RETURNS TABLE (n integer, outcome text) LANGUAGE plpgsql AS $fn$
BEGIN
  FOR i IN 1 .. coalesce(array_length(p_payment_id, 1), 0) LOOP
    n := i;
    outcome := cp_payment_begin(p_payment_id[i], p_merchant_id[i], p_order_id[i], p_wallet_id[i], p_gross[i],
      p_wallet_amount[i], p_coupon_amount[i], p_credits[i], p_credits_value[i], p_fee[i], p_business_date[i],
      p_created_at[i], p_password_free_per_day[i]);
    RETURN NEXT;
  END LOOP;
END
$fn$;
-- Marks a batch of payments captured, each found by its key: a join of the batch to cp_payments would be planned once
-- (a prepared statement) while the table is small, and could keep scanning cp_payments_unfinished, which holds every
-- payment updated since the last vacuum, or the whole table. The status test cannot use that partial index either.
-- Answers the payments this call captured, in the order given (the same payment twice: the first).
CREATE OR REPLACE FUNCTION cp_payment_capture_many(p_payment_id text[])
RETURNS SETOF text LANGUAGE plpgsql AS $fn$
DECLARE
  captured text;
BEGIN
  FOR i IN 1 .. coalesce(array_length(p_payment_id, 1), 0) LOOP
    UPDATE cp_payments SET status = 'captured'
     WHERE payment_id = p_payment_id[i] AND status NOT IN ('captured', 'failed', 'reversing', 'reversed')
    RETURNING payment_id INTO captured;
    IF FOUND THEN RETURN NEXT captured; END IF;
  END LOOP;
END
$fn$;
CREATE TABLE IF NOT EXISTS cp_top_ups (
  top_up_id text PRIMARY KEY,
  wallet_id text NOT NULL,
  amount numeric NOT NULL,
  channel text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'confirmed', 'failed')),
  channel_trade_no text,
  transfer_id text NOT NULL,
  callbacks integer NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL,
  settled_at timestamptz
);
`;

export interface MerchantRecord {
  readonly merchantId: string;
  readonly name: string;
  readonly category: string;
  readonly feeRateBps: number;
  readonly settlementBankAccount: string;
  readonly pendingAccount: string;
  readonly settledAccount: string;
  readonly status: 'applied' | 'active' | 'rejected';
  readonly reviewReason: string | null;
  /** What a customer scans to pay this merchant (C8): a URI naming the merchant, no secret in it. */
  readonly qrCode: string;
}

export interface MerchantFlows {
  readonly merchantId: string;
  readonly from: string;
  readonly to: string;
  readonly totals: {
    readonly payments: number;
    readonly gross: string;
    readonly fees: string;
    readonly refunds: number;
    readonly refunded: string;
    readonly net: string;
  };
  readonly entries: readonly {
    readonly kind: 'payment' | 'refund';
    readonly id: string;
    readonly paymentId: string;
    readonly orderId: string;
    readonly amount: string;
    readonly fee: string;
    readonly status: string;
    readonly businessDate: string;
    readonly at: string;
  }[];
}

export interface PayInput {
  readonly merchantId: string;
  readonly orderId: string;
  readonly walletId: string;
  readonly amount: string;
  readonly tenders: { readonly wallet?: string; readonly coupon?: string; readonly credits?: string };
  /** The 6-digit payment password; without it the payment is password-free (免密) within the wallet's limits. */
  readonly paymentPassword?: string;
  /** For risk control: the POS terminal or the customer's device, when known. */
  readonly terminalId?: string;
  readonly deviceId?: string;
}

export interface PaymentView {
  readonly paymentId: string;
  readonly merchantId: string;
  readonly orderId: string;
  readonly walletId: string;
  readonly amount: string;
  readonly tenders: {
    readonly wallet: string;
    readonly coupon: string;
    readonly credits: string;
    readonly creditsValue: string;
  };
  readonly fee: string;
  readonly merchantNet: string;
  readonly refunded: string;
  readonly status: 'authorizing' | 'capturing' | 'captured' | 'failed' | 'reversing' | 'reversed';
  readonly failure: string | null;
  readonly businessDate: string;
}

/** The columns a PaymentRow is read with (numerics as text: decimal strings, never floats). */
const PAYMENT_COLUMNS = `payment_id, merchant_id, order_id, wallet_id, gross::text, wallet_amount::text,
  coupon_amount::text, credits::text, credits_value::text, fee::text, refunded::text, status, failure,
  business_date::text, created_at`;

interface PaymentRow {
  payment_id: string;
  merchant_id: string;
  order_id: string;
  wallet_id: string;
  gross: string;
  wallet_amount: string;
  coupon_amount: string;
  credits: string;
  credits_value: string;
  fee: string;
  refunded: string;
  status: PaymentView['status'];
  failure: string | null;
  business_date: string | Date;
  created_at: string | Date;
}

type BeginOutcome = 'inserted' | 'exists' | 'password_free_limit_exceeded';

interface PaymentRowWithLimit {
  readonly row: PaymentRow;
  /** The wallet's daily password-free limit for a password-free payment; null for a payment with a password. */
  readonly passwordFreePerDay: string | null;
  /** Risk control's allowing decision, recorded by the same statement. */
  readonly decision: DeferredDecision | undefined;
}

interface BeginResult {
  readonly outcome: BeginOutcome;
  /** The decision that allowed it met a review this process had not read: written released; do not go ahead. */
  readonly riskConflict: boolean;
}

interface CapturedPayment {
  readonly view: PaymentView;
  readonly walletId: string;
  readonly merchantId: string;
  /** When the payment was made: its messages' time. */
  readonly at: Date;
}

interface Leg {
  readonly name: 'wallet' | 'coupon' | 'credits' | 'credits_value';
  readonly debit: string;
  readonly credit: string;
  readonly asset: 'CNY' | 'CCR';
  readonly amount: Amount;
}

/** Test seam: called between steps of a payment so a test can fail it there (never set in production). */
export type PaymentFaultPoint = 'after_first_hold' | 'after_holds' | 'after_first_capture';

export class PaymentService {
  /** Set by tests to inject a failure at a step of {@link pay}. */
  faultAt: ((point: PaymentFaultPoint) => void) | undefined;
  private readonly channels = new Map<string, BankChannel>();
  private outbox: Outbox | undefined;
  private risk: RiskService | undefined;
  /** Active merchants, whose records never change once reviewed (no UPDATE of an active merchant exists). */
  private readonly activeMerchants = new Map<string, MerchantRecord>();
  /** Payments this process is taking to their end, by id: a retransmission of one waits for its answer. */
  private readonly driving = new Map<string, Promise<void>>();
  /** Payments' first writes and captures, group-committed: one round trip for all that arrive together. */
  private readonly begins = new GroupCommit<PaymentRowWithLimit, BeginResult>((rows) => this.beginMany(rows));
  private readonly captures = new GroupCommit<CapturedPayment, boolean>((items) => this.captureMany(items));

  constructor(
    private readonly database: ServiceDatabase,
    private readonly ledger: Ledger,
    private readonly wallets: WalletService,
    private readonly cipher: PersonalDataCipher,
    private readonly policy: PaymentPolicy = DEFAULT_PAYMENT_POLICY,
  ) {
    const value = new Money(policy.creditValueCny);
    if (!value.gt(0) || !new Money('0.01').div(value).mul(100).isInteger())
      throw new Error('assertion: one fen must buy a whole number of hundredths of a credit');
  }

  async install(): Promise<void> {
    await this.database.exec(PAYMENTS_SQL);
  }

  /** Risk control on every payment (#14). */
  attachRisk(risk: RiskService): void {
    this.risk = risk;
  }

  /** Where payment, refund and top-up messages go (webhooks to merchants, notifications to payers). */
  attachOutbox(outbox: Outbox): void {
    this.outbox = outbox;
  }

  /** Registers a bank channel top-ups may be asked of, under its name. */
  attachChannel(channel: BankChannel): void {
    this.channels.set(channel.name, channel);
  }

  // ---- merchants (C6) ----

  async applyMerchant(
    input: { name: string; category: string; feeRateBps: number; settlementBankAccount: string; areaCode: string },
    at: Date,
  ): Promise<MerchantRecord> {
    if (!Number.isInteger(input.feeRateBps) || input.feeRateBps < 0 || input.feeRateBps > 10_000)
      throw new ServiceRefusal('validation_failed', 'fee rate is an integer number of basis points 0..10000');
    if (!/^0[1-9]\d{1,2}$/.test(input.areaCode))
      throw new ServiceRefusal('validation_failed', 'area code is 0 and 2 or 3 digits (e.g. 010, 0794)');
    if (!/^\d{8,30}$/.test(input.settlementBankAccount))
      throw new ServiceRefusal('validation_failed', 'settlement bank account is 8..30 digits');
    const scope = `account|${codedArea(input.areaCode)}`;
    const seq = (await this.wallets.takeCodeNumbers([scope])).get(scope)!;
    return this.database.transaction(async (tx) => {
      const pending = makeAccountId({ customerClass: '1', accountType: '1', areaCode: input.areaCode, sequence: seq });
      const settled = makeAccountId({ customerClass: '1', accountType: '0', areaCode: input.areaCode, sequence: seq });
      await tx.query(
        `INSERT INTO cp_merchants (merchant_id, name, category, fee_rate_bps, settlement_bank_account, pending_account,
           settled_account, status, applied_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'applied', $8)`,
        [
          `M${pending}`,
          input.name,
          input.category,
          input.feeRateBps,
          this.cipher.seal('bankAccount', input.settlementBankAccount),
          pending,
          settled,
          at.toISOString(),
        ],
      );
      return (await this.merchantIn(tx, `M${pending}`))!;
    });
  }

  /** Review (C6): approve opens the merchant's ledger accounts; reject keeps the reason. Decided once. */
  async reviewMerchant(
    merchantId: string,
    decision: 'approve' | 'reject',
    reason: string,
    reviewer: CommandContext,
    at: Date,
  ): Promise<MerchantRecord> {
    const merchant = await this.database.transaction(async (tx) => {
      const current = await this.merchantIn(tx, merchantId, true);
      if (!current) throw new ServiceRefusal('not_found', `merchant ${merchantId} does not exist`);
      if (current.status !== 'applied')
        throw new ServiceRefusal('invalid_merchant_state', `merchant ${merchantId} is already ${current.status}`);
      await tx.query(
        `UPDATE cp_merchants SET status = $2, review_reason = $3, reviewed_by = $4, reviewed_at = $5 WHERE merchant_id = $1`,
        [merchantId, decision === 'approve' ? 'active' : 'rejected', reason, reviewer.actor, at.toISOString()],
      );
      return (await this.merchantIn(tx, merchantId))!;
    });
    if (merchant.status === 'active') {
      for (const [accountId, kind] of [
        [merchant.pendingAccount, 'merchant_pending_settlement'],
        [merchant.settledAccount, 'merchant_settled'],
      ] as const) {
        await executeOrRefuse(
          this.ledger,
          { type: 'OpenAccount', accountId, kind, ownerId: merchantId, at: at.toISOString() },
          reviewer,
        );
      }
    }
    return merchant;
  }

  async getMerchant(merchantId: string): Promise<MerchantRecord | undefined> {
    const known = this.activeMerchants.get(merchantId);
    if (known) return known;
    const merchant = await this.merchantIn(this.database, merchantId);
    if (merchant?.status === 'active') {
      if (this.activeMerchants.size >= PAYMENT_LIMITS.maxCachedMerchants) this.activeMerchants.clear();
      this.activeMerchants.set(merchantId, merchant);
    }
    return merchant;
  }

  // ---- payments ----

  /**
   * Pays an order. The database work is three round trips on the way of a single cash tender: risk control (batched
   * with concurrent payments), `cp_payment_begin` (the password-free reservation and the payment row, one commit),
   * and the capture with its messages (one statement); the ledger's transfer commits between them in its group
   * commit. `known.wallet` is the payer's record when the caller has just read it (the POS door finds it by card).
   */
  async pay(
    input: PayInput,
    context: CommandContext,
    now: Date,
    known: { readonly wallet?: WalletRecord } = {},
  ): Promise<PaymentView> {
    const gross = cny(input.amount, 'amount');
    const walletAmount = input.tenders.wallet === undefined ? ZERO : cny(input.tenders.wallet, 'tenders.wallet');
    const couponAmount = input.tenders.coupon === undefined ? ZERO : cny(input.tenders.coupon, 'tenders.coupon');
    const credits = input.tenders.credits === undefined ? ZERO : ccr(input.tenders.credits);
    const creditsValue = credits.mul(this.policy.creditValueCny);
    if (!creditsValue.mul(100).isInteger())
      throw new ServiceRefusal('validation_failed', 'credits must be worth a whole number of fen');
    if (!walletAmount.plus(couponAmount).plus(creditsValue).eq(gross))
      throw new ServiceRefusal('validation_failed', 'the tenders must add up to the amount exactly', {
        amount: formatAmount('CNY', gross),
        tendered: formatAmount('CNY', walletAmount.plus(couponAmount).plus(creditsValue)),
      });
    const merchant = await this.getMerchant(input.merchantId);
    if (!merchant) throw new ServiceRefusal('not_found', `merchant ${input.merchantId} does not exist`);
    if (merchant.status !== 'active')
      throw new ServiceRefusal('merchant_not_active', `merchant ${input.merchantId} is ${merchant.status}`);
    const wallet =
      known.wallet?.walletId === input.walletId ? known.wallet : await this.wallets.getWallet(input.walletId);
    if (!wallet || wallet.status !== 'open')
      throw new ServiceRefusal('wallet_not_open', `wallet ${input.walletId} is not open`);
    if (wallet.purpose === 'earmarked' && !wallet.allowedCategories.includes(merchant.category))
      throw new ServiceRefusal(
        'category_not_allowed',
        `earmarked (专款专用) funds of this wallet may not be spent at a ${merchant.category} merchant`,
        { category: merchant.category },
      );

    const paymentId = paymentIdOf(input.merchantId, input.orderId);
    const businessDate = businessDateOf(now, this.policy.cutoffHourLocal);
    const passwordFree = input.paymentPassword === undefined;
    if (passwordFree) this.wallets.checkPasswordFreePerPayment(wallet, gross);
    else await this.wallets.verifyPaymentPassword(wallet.walletId, input.paymentPassword!, now);
    // After the password: wrong guesses do not count towards velocity. A retransmission of a paid order is assessed
    // again and its decision released once `cp_payment_begin` finds the payment.
    const assessed = await this.assessRisk(paymentId, input, gross, wallet, merchant, businessDate, context, now);
    if ('replay' in assessed) return assessed.replay;
    const releaseRisk = async (): Promise<void> => {
      if (assessed.decisionId !== undefined) await this.risk!.release(assessed.decisionId, now);
    };
    const releaseReservations = async (): Promise<void> => {
      if (passwordFree) await this.wallets.releasePasswordFree(wallet.walletId, gross, businessDate);
      await releaseRisk();
    };

    const row: PaymentRow = {
      payment_id: paymentId,
      merchant_id: input.merchantId,
      order_id: input.orderId,
      wallet_id: wallet.walletId,
      gross: formatAmount('CNY', gross),
      wallet_amount: formatAmount('CNY', walletAmount),
      coupon_amount: formatAmount('CNY', couponAmount),
      credits: formatAmount('CCR', credits),
      credits_value: formatAmount('CNY', creditsValue),
      fee: formatAmount('CNY', feeFor('CNY', gross, merchant.feeRateBps)),
      refunded: formatAmount('CNY', ZERO),
      status: 'authorizing',
      failure: null,
      business_date: businessDate,
      created_at: now,
    };
    // The payment's first statement records the decision that allowed it (or runs while a decision of another kind
    // commits); money moves only once both are durable.
    const deferred = 'deferred' in assessed ? assessed.deferred : undefined;
    const [begun, recorded] = await Promise.allSettled([
      this.begins.submit({
        row,
        passwordFreePerDay: passwordFree ? wallet.passwordFreePerDay : null,
        decision: deferred,
      }),
      'recorded' in assessed ? assessed.recorded : Promise.resolve(),
    ]);
    if (begun.status === 'rejected') {
      if (deferred) this.risk!.settleDeferred(deferred, 'not_written');
      else if (recorded.status === 'fulfilled') await releaseRisk();
      throw begun.reason;
    }
    const { outcome, riskConflict } = begun.value;
    if (deferred) this.risk!.settleDeferred(deferred, riskConflict ? 'conflict' : 'written');
    if (recorded.status === 'rejected' || riskConflict) {
      // No decision on record: this payment does not go ahead (a replay of one that did is answered as before).
      if (outcome === 'inserted') {
        await this.markFailed(paymentId, 'risk decision not recorded');
        if (passwordFree) await this.wallets.releasePasswordFree(wallet.walletId, gross, businessDate);
      }
      if (outcome === 'exists') return this.answerReplay(paymentId, input, gross);
      throw recorded.status === 'rejected'
        ? recorded.reason
        : new ServiceRefusal(
            'conflict',
            'a review of this payment was opened or decided at another instance meanwhile: it failed, pay again under a new order id',
          );
    }
    if (outcome === 'exists') {
      await releaseRisk();
      return this.answerReplay(paymentId, input, gross);
    }
    if (outcome === 'password_free_limit_exceeded') {
      await releaseRisk();
      throw this.wallets.passwordFreeDailyRefusal(wallet);
    }
    let ended!: () => void;
    this.driving.set(
      paymentId,
      new Promise<void>((resolve) => {
        ended = resolve;
      }),
    );
    try {
      return await this.drive(row, wallet, merchant, context, now);
    } catch (error) {
      // Before the commit point nothing is owed: give the holds back now (resumePayments does it after a crash).
      const current = await this.paymentRow(this.database, paymentId);
      if (current?.status === 'authorizing') await this.abandon(current, wallet, merchant, 'failed', context, now);
      const view = await this.getPayment(paymentId);
      if (view?.status === 'failed') await releaseReservations();
      throw error;
    } finally {
      this.driving.delete(paymentId);
      ended();
    }
  }

  /**
   * The answer to a payment asked for again (same merchant and order): the payment as it ended. One still under way
   * in this process is waited for; one under way elsewhere (or left by a crash until resumePayments) is refused as
   * `conflict`, to be asked again, rather than answered with a status that is not the end of it.
   */
  private async answerReplay(paymentId: string, input: PayInput, gross: Amount): Promise<PaymentView> {
    for (;;) {
      // Taken before the read: a drive that ends while the read is at the database leaves no entry, and the read may
      // still show it under way.
      const endingBeforeRead = this.driving.get(paymentId);
      const existing = (await this.getPayment(paymentId))!;
      checkSameOrder(existing, input, gross);
      if (!isUnderWay(existing.status)) return existing;
      const ending = endingBeforeRead ?? this.driving.get(paymentId);
      if (ending === undefined)
        throw new ServiceRefusal('conflict', `payment ${paymentId} is still under way: ask again shortly`, {
          paymentId,
          status: existing.status,
        });
      await ending;
    }
  }

  /** Finishes payments a crash or a failure left between phases: before the commit point void, after it capture. */
  async resumePayments(context: CommandContext, now: Date, olderThanMs = 0): Promise<number> {
    const rows = await this.database.query<PaymentRow>(
      `SELECT ${PAYMENT_COLUMNS}
         FROM cp_payments WHERE status IN ('authorizing', 'capturing', 'reversing') AND created_at <= $1 ORDER BY created_at`,
      [new Date(now.getTime() - olderThanMs).toISOString()],
    );
    for (const row of rows) {
      const wallet = (await this.wallets.getWallet(row.wallet_id))!;
      const merchant = (await this.getMerchant(row.merchant_id))!;
      if (row.status === 'authorizing') await this.abandon(row, wallet, merchant, 'not completed', context, now);
      else if (row.status === 'capturing') await this.captureAll(row, wallet, merchant, context, now);
      else await this.reverseAll(row, wallet, merchant, row.failure ?? 'cancelled', context, now);
    }
    return rows.length;
  }

  async getPayment(paymentId: string): Promise<PaymentView | undefined> {
    const row = await this.paymentRow(this.database, paymentId);
    return row ? viewOf(row) : undefined;
  }

  /**
   * Refunds part or all of a captured payment; repeated refunds add up to at most the amount paid. Tenders come
   * back in {@link REFUND_ORDER}; the merchant's fee is not returned. The payment row is locked while the refund is
   * decided, so concurrent refunds cannot pass the amount paid.
   */
  async refund(
    input: { paymentId: string; refundId: string; amount: string },
    context: CommandContext,
    now: Date,
  ): Promise<{
    refundId: string;
    amount: string;
    wallet: string;
    coupon: string;
    credits: string;
    transferId: string;
    replayed: boolean;
  }> {
    const amount = cny(input.amount, 'amount');
    const decided = await this.database.transaction(async (tx) => {
      const row = await this.paymentRow(tx, input.paymentId, true);
      if (!row) throw new ServiceRefusal('not_found', `payment ${input.paymentId} does not exist`);
      const prior = await tx.query<{
        amount: string;
        wallet_amount: string;
        coupon_amount: string;
        credits: string;
        transfer_id: string;
        status: string;
      }>(
        'SELECT amount::text, wallet_amount::text, coupon_amount::text, credits::text, transfer_id, status FROM cp_refunds WHERE payment_id = $1 AND refund_id = $2',
        [input.paymentId, input.refundId],
      );
      if (prior[0]) {
        if (!new Money(prior[0].amount).eq(amount))
          throw new ServiceRefusal('idempotency_conflict', `refund ${input.refundId} was made with another amount`);
        return {
          replayed: true,
          split: {
            wallet: new Money(prior[0].wallet_amount),
            coupon: new Money(prior[0].coupon_amount),
            credits: new Money(prior[0].credits),
          },
          transferId: prior[0].transfer_id,
          row,
        };
      }
      if (row.status !== 'captured')
        throw new ServiceRefusal('invalid_transfer_state', `payment ${input.paymentId} is ${row.status}`);
      const refundable = new Money(row.gross).minus(row.refunded);
      if (amount.gt(refundable))
        throw new ServiceRefusal(
          'refund_exceeds_paid',
          `at most ${formatAmount('CNY', refundable)} CNY can still be refunded`,
          {
            refundable: formatAmount('CNY', refundable),
          },
        );
      const split = await this.refundSplit(tx, row, amount);
      const transferId = uuidV5(`refund|${input.paymentId}|${input.refundId}`);
      await tx.query(
        `INSERT INTO cp_refunds (refund_id, payment_id, amount, wallet_amount, coupon_amount, credits_value, credits,
           transfer_id, status, business_date, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10)`,
        [
          input.refundId,
          input.paymentId,
          formatAmount('CNY', amount),
          formatAmount('CNY', split.wallet),
          formatAmount('CNY', split.coupon),
          formatAmount('CNY', split.creditsValue),
          formatAmount('CCR', split.credits),
          transferId,
          businessDateOf(now, this.policy.cutoffHourLocal),
          now.toISOString(),
        ],
      );
      await tx.query('UPDATE cp_payments SET refunded = refunded + $2::numeric WHERE payment_id = $1', [
        input.paymentId,
        formatAmount('CNY', amount),
      ]);
      return { replayed: false, split, transferId, row };
    });
    const { row, split, transferId } = decided;
    const wallet = (await this.wallets.getWallet(row.wallet_id))!;
    const merchant = (await this.getMerchant(row.merchant_id))!;
    const creditsValue = split.credits.mul(this.policy.creditValueCny);
    const postings = [
      { accountId: merchant.pendingAccount, direction: 'debit' as const, amount: formatAmount('CNY', amount) },
      ...(split.wallet.gt(0)
        ? [{ accountId: wallet.accounts.main, direction: 'credit' as const, amount: formatAmount('CNY', split.wallet) }]
        : []),
      ...(split.coupon.gt(0)
        ? [
            {
              accountId: wallet.accounts.voucher,
              direction: 'credit' as const,
              amount: formatAmount('CNY', split.coupon),
            },
          ]
        : []),
      ...(split.credits.gt(0)
        ? [
            { accountId: MARKETING_ACCOUNT, direction: 'credit' as const, amount: formatAmount('CNY', creditsValue) },
            { accountId: REDEMPTION_ACCOUNT, direction: 'debit' as const, amount: formatAmount('CCR', split.credits) },
            {
              accountId: wallet.accounts.points,
              direction: 'credit' as const,
              amount: formatAmount('CCR', split.credits),
            },
          ]
        : []),
    ];
    const outcome = await this.ledger.execute(
      {
        type: 'PostTransfer',
        transferId,
        idempotencyKey: `refund:${input.paymentId}:${input.refundId}`,
        transferType: 'refund',
        postings,
        reference: row.order_id.slice(0, 64),
        businessDate: businessDateOf(now, this.policy.cutoffHourLocal),
        at: now.toISOString(),
      },
      context,
    );
    if (outcome.status === 'refused') {
      // The ledger said no (the merchant's pending funds are short): the refund never happened; take it back.
      await this.database.transaction(async (tx) => {
        const gone = await tx.query(
          'DELETE FROM cp_refunds WHERE payment_id = $1 AND refund_id = $2 AND status = $3 RETURNING refund_id',
          [input.paymentId, input.refundId, 'pending'],
        );
        if (gone.length > 0)
          await tx.query('UPDATE cp_payments SET refunded = refunded - $2::numeric WHERE payment_id = $1', [
            input.paymentId,
            formatAmount('CNY', amount),
          ]);
      });
      throw new ServiceRefusal(outcome.refusal.code, outcome.refusal.message, outcome.refusal.details);
    }
    await this.database.transaction(async (tx) => {
      const changed = await tx.query(
        `UPDATE cp_refunds SET status = 'done' WHERE payment_id = $1 AND refund_id = $2 AND status = 'pending' RETURNING refund_id`,
        [input.paymentId, input.refundId],
      );
      if (changed.length === 0) return;
      await this.announce(
        tx,
        merchant.merchantId,
        wallet.walletId,
        `refund.succeeded:${input.paymentId}:${input.refundId}`,
        'refund.succeeded',
        {
          paymentId: input.paymentId,
          refundId: input.refundId,
          orderId: row.order_id,
          amount: formatAmount('CNY', amount),
        },
        { template: 'refund_succeeded', amount: formatAmount('CNY', amount), orderId: row.order_id },
        now,
      );
    });
    return {
      refundId: input.refundId,
      amount: formatAmount('CNY', amount),
      wallet: formatAmount('CNY', split.wallet),
      coupon: formatAmount('CNY', split.coupon),
      credits: formatAmount('CCR', split.credits),
      transferId,
      replayed: decided.replayed,
    };
  }

  /**
   * A merchant's receipts and fund flows (C8) over business dates: each captured or reversed payment and each refund,
   * with the totals a merchant reconciles against (gross − fees − refunds = net). At most `limit` entries, newest last.
   */
  async merchantFlows(merchantId: string, from: string, to: string, limit = 1_000): Promise<MerchantFlows> {
    const merchant = await this.getMerchant(merchantId);
    if (!merchant) throw new ServiceRefusal('not_found', `merchant ${merchantId} does not exist`);
    const entries = await this.database.query<{
      kind: 'payment' | 'refund';
      id: string;
      payment_id: string;
      order_id: string;
      amount: string;
      fee: string;
      status: string;
      business_date: string;
      at: Date | string;
    }>(
      `SELECT * FROM (
         SELECT 'payment' AS kind, p.payment_id AS id, p.payment_id, p.order_id, p.gross::text AS amount, p.fee::text AS fee,
                p.status, p.business_date::text, p.created_at AS at
           FROM cp_payments p WHERE p.merchant_id = $1 AND p.business_date BETWEEN $2 AND $3
                AND p.status IN ('captured', 'reversing', 'reversed')
         UNION ALL
         SELECT 'refund', r.refund_id, r.payment_id, p.order_id, r.amount::text, '0', r.status, r.business_date::text, r.created_at
           FROM cp_refunds r JOIN cp_payments p ON p.payment_id = r.payment_id
          WHERE p.merchant_id = $1 AND r.business_date BETWEEN $2 AND $3 AND r.status = 'done'
       ) flows ORDER BY at, kind, id LIMIT $4`,
      [merchantId, from, to, limit],
    );
    const totals = (
      await this.database.query<{
        payments: string;
        gross: string | null;
        fees: string | null;
        refunds: string | null;
        refunded: string | null;
      }>(
        `SELECT (SELECT count(*) FROM cp_payments WHERE merchant_id = $1 AND business_date BETWEEN $2 AND $3 AND status = 'captured')::text AS payments,
                (SELECT sum(gross) FROM cp_payments WHERE merchant_id = $1 AND business_date BETWEEN $2 AND $3 AND status = 'captured')::text AS gross,
                (SELECT sum(fee) FROM cp_payments WHERE merchant_id = $1 AND business_date BETWEEN $2 AND $3 AND status = 'captured')::text AS fees,
                (SELECT count(*) FROM cp_refunds r JOIN cp_payments p USING (payment_id)
                  WHERE p.merchant_id = $1 AND r.business_date BETWEEN $2 AND $3 AND r.status = 'done')::text AS refunds,
                (SELECT sum(r.amount) FROM cp_refunds r JOIN cp_payments p USING (payment_id)
                  WHERE p.merchant_id = $1 AND r.business_date BETWEEN $2 AND $3 AND r.status = 'done')::text AS refunded`,
        [merchantId, from, to],
      )
    )[0]!;
    const gross = new Money(totals.gross ?? '0');
    const fees = new Money(totals.fees ?? '0');
    const refunded = new Money(totals.refunded ?? '0');
    return {
      merchantId,
      from,
      to,
      totals: {
        payments: Number(totals.payments),
        gross: formatAmount('CNY', gross),
        fees: formatAmount('CNY', fees),
        refunds: Number(totals.refunds),
        refunded: formatAmount('CNY', refunded),
        net: formatAmount('CNY', gross.minus(fees).minus(refunded)),
      },
      entries: entries.map((e) => ({
        kind: e.kind,
        id: e.id,
        paymentId: e.payment_id,
        orderId: e.order_id,
        amount: atScale('CNY', e.amount),
        fee: atScale('CNY', e.fee),
        status: e.status,
        businessDate: e.business_date,
        at: new Date(e.at).toISOString(),
      })),
    };
  }

  /** The payment an order of a merchant made, if any (POS reversals find the sale by terminal, batch and trace). */
  async findPayment(merchantId: string, orderId: string): Promise<PaymentView | undefined> {
    return this.getPayment(paymentIdOf(merchantId, orderId));
  }

  /**
   * Cancels a whole payment (a POS void or reversal, 撤销/冲正): every captured tender and the fee are reversed in the
   * ledger, so the customer and the merchant are where they were. Before the commit point the holds are voided
   * instead. Refused once anything was refunded or the payment is settled. Idempotent: cancelling again answers the
   * same.
   */
  async cancel(paymentId: string, reason: string, context: CommandContext, now: Date): Promise<PaymentView> {
    const row = await this.database.transaction(async (tx) => {
      const current = await this.paymentRow(tx, paymentId, true);
      if (!current) throw new ServiceRefusal('not_found', `payment ${paymentId} does not exist`);
      if (current.status === 'reversed' || current.status === 'failed' || current.status === 'reversing')
        return current;
      if (!new Money(current.refunded).eq(0))
        throw new ServiceRefusal('invalid_transfer_state', `payment ${paymentId} has refunds; refund the rest instead`);
      if (current.status === 'authorizing') return current;
      const merchant = (await this.merchantIn(tx, current.merchant_id))!;
      const pending = await this.ledger.getAccount(merchant.pendingAccount);
      const net = new Money(current.gross).minus(current.fee);
      if (!pending || pending.posted.minus(pending.pendingDebits).lt(net))
        throw new ServiceRefusal('insufficient_funds', `the merchant no longer holds payment ${paymentId}'s funds`);
      await tx.query(`UPDATE cp_payments SET status = 'reversing', failure = $2 WHERE payment_id = $1`, [
        paymentId,
        reason.slice(0, 256),
      ]);
      return { ...current, status: 'reversing' as const };
    });
    const wallet = (await this.wallets.getWallet(row.wallet_id))!;
    const merchant = (await this.getMerchant(row.merchant_id))!;
    if (row.status === 'authorizing') {
      await this.abandon(row, wallet, merchant, reason, context, now);
    } else if (row.status === 'reversing') {
      await this.reverseAll(row, wallet, merchant, reason, context, now);
    }
    return (await this.getPayment(paymentId))!;
  }

  private async reverseAll(
    row: PaymentRow,
    wallet: WalletRecord,
    merchant: MerchantRecord,
    reason: string,
    context: CommandContext,
    now: Date,
  ): Promise<void> {
    const transfers = paymentTransferIds(viewOf(row));
    for (const transferId of transfers) {
      const outcome = await this.ledger.execute(
        {
          type: 'ReverseTransfer',
          transferId,
          reversalTransferId: uuidV5(`payment-reversal|${transferId}`),
          idempotencyKey: `reversal:${transferId}`,
          reason: reason.slice(0, 256),
          businessDate: businessDateOf(now, this.policy.cutoffHourLocal),
          at: now.toISOString(),
        },
        context,
      );
      if (outcome.status === 'refused' && outcome.refusal.code !== 'already_reversed')
        throw new ServiceRefusal(
          outcome.refusal.code,
          `payment ${row.payment_id} cannot be cancelled: ${outcome.refusal.message}`,
        );
    }
    await this.database.query(`UPDATE cp_payments SET status = 'reversed' WHERE payment_id = $1`, [row.payment_id]);
  }

  // ---- top-ups through the bank channel, and coupons ----

  /** A top-up request: pending until the channel's callback confirms or fails it. */
  async requestTopUp(
    walletId: string,
    amountText: string,
    channel: string,
    now: Date,
  ): Promise<{ topUpId: string; status: 'pending' }> {
    const amount = cny(amountText, 'amount');
    const wallet = await this.wallets.getWallet(walletId);
    if (!wallet || wallet.status !== 'open')
      throw new ServiceRefusal('wallet_not_open', `wallet ${walletId} is not open`);
    const bank = this.channels.get(channel);
    if (!bank) throw new ServiceRefusal('validation_failed', `unknown bank channel ${channel}`);
    const topUpId = randomUUID();
    await this.database.query(
      `INSERT INTO cp_top_ups (top_up_id, wallet_id, amount, channel, status, transfer_id, created_at)
       VALUES ($1, $2, $3, $4, 'pending', $5, $6)`,
      [
        topUpId,
        walletId,
        formatAmount('CNY', amount),
        channel,
        uuidV5(`top-up-transfer|${topUpId}`),
        now.toISOString(),
      ],
    );
    // The channel answers later through its callback; a channel that refuses the hand-over leaves it pending, and the
    // channel's reconciliation (#10) settles it.
    const submitted = await bank.submitTopUp({ topUpId, amount });
    await this.database.query(
      'UPDATE cp_top_ups SET channel_trade_no = coalesce(channel_trade_no, $2) WHERE top_up_id = $1',
      [topUpId, submitted.channelTradeNo],
    );
    return { topUpId, status: 'pending' };
  }

  /**
   * The channel's callback (idempotent): `success` credits the wallet once however often it comes; `failed` closes
   * the request. A callback contradicting an earlier one is refused.
   */
  async confirmTopUp(
    input: { topUpId: string; result: 'success' | 'failed'; channelTradeNo: string },
    context: CommandContext,
    now: Date,
  ): Promise<{ topUpId: string; status: 'confirmed' | 'failed'; transferId: string | null }> {
    const row = await this.database.transaction(async (tx) => {
      const rows = await tx.query<{
        wallet_id: string;
        amount: string;
        status: string;
        transfer_id: string;
        channel_trade_no: string | null;
      }>(
        'SELECT wallet_id, amount::text, status, transfer_id, channel_trade_no FROM cp_top_ups WHERE top_up_id = $1 FOR UPDATE',
        [input.topUpId],
      );
      const current = rows[0];
      if (!current) throw new ServiceRefusal('not_found', `top-up ${input.topUpId} does not exist`);
      const wanted = input.result === 'success' ? 'confirmed' : 'failed';
      if (current.status !== 'pending' && current.status !== wanted)
        throw new ServiceRefusal('conflict', `top-up ${input.topUpId} is already ${current.status}`);
      await tx.query(
        `UPDATE cp_top_ups SET status = $2, channel_trade_no = coalesce(channel_trade_no, $3), callbacks = callbacks + 1,
           settled_at = coalesce(settled_at, $4) WHERE top_up_id = $1`,
        [input.topUpId, wanted, input.channelTradeNo, now.toISOString()],
      );
      return { ...current, status: wanted };
    });
    if (row.status === 'failed') return { topUpId: input.topUpId, status: 'failed', transferId: null };
    const wallet = (await this.wallets.getWallet(row.wallet_id))!;
    await executeOrRefuse(
      this.ledger,
      {
        type: 'PostTransfer',
        transferId: row.transfer_id,
        idempotencyKey: `top-up:${input.topUpId}`,
        transferType: 'top_up',
        postings: [
          { accountId: BANK_CLEARING_ACCOUNT, direction: 'debit', amount: row.amount },
          { accountId: wallet.accounts.main, direction: 'credit', amount: row.amount },
        ],
        // Our own id: the transfer must not depend on which of the channel's repeated callbacks came first.
        reference: input.topUpId.slice(0, 64),
        businessDate: businessDateOf(now, this.policy.cutoffHourLocal),
        at: now.toISOString(),
      },
      context,
    );
    if (this.outbox)
      await this.outbox.enqueue(
        this.database,
        {
          messageId: `top-up.confirmed:${input.topUpId}`,
          receiver: `sms:${wallet.walletId}`,
          kind: 'top_up.confirmed',
          payload: { template: 'top_up_confirmed', amount: row.amount },
        },
        now,
      );
    return { topUpId: input.topUpId, status: 'confirmed', transferId: row.transfer_id };
  }

  /** A coupon (T3 voucher): marketing funds into the wallet's voucher sub-account. */
  async issueCoupon(
    input: { walletId: string; couponId: string; amount: string },
    context: CommandContext,
    now: Date,
  ): Promise<{ transferId: string }> {
    const amount = cny(input.amount, 'amount');
    const wallet = await this.wallets.getWallet(input.walletId);
    if (!wallet || wallet.status !== 'open')
      throw new ServiceRefusal('wallet_not_open', `wallet ${input.walletId} is not open`);
    const transferId = uuidV5(`coupon|${input.walletId}|${input.couponId}`);
    await executeOrRefuse(
      this.ledger,
      {
        type: 'PostTransfer',
        transferId,
        idempotencyKey: `coupon:${input.walletId}:${input.couponId}`,
        transferType: 'internal',
        postings: [
          { accountId: MARKETING_ACCOUNT, direction: 'debit', amount: formatAmount('CNY', amount) },
          { accountId: wallet.accounts.voucher, direction: 'credit', amount: formatAmount('CNY', amount) },
        ],
        reference: input.couponId.slice(0, 64),
        businessDate: businessDateOf(now, this.policy.cutoffHourLocal),
        at: now.toISOString(),
      },
      context,
    );
    return { transferId };
  }

  // ---- the steps of a payment ----

  /**
   * Risk control (#14) on the payment, before anything is reserved: allowed → the decision's id (released if the
   * payment then fails) and its record, either `deferred` to the payment's first statement or on the way in risk
   * control's own batch (`recorded`; an approval used, for one): nothing may move before it is durable. Refused or
   * held → a refusal naming the decision, unless the order is already paid (a retransmission): then its payment.
   */
  private async assessRisk(
    paymentId: string,
    input: PayInput,
    gross: Amount,
    wallet: WalletRecord,
    merchant: MerchantRecord,
    businessDate: string,
    context: CommandContext,
    now: Date,
  ): Promise<
    | { readonly decisionId: string | undefined; readonly recorded: Promise<void> }
    | { readonly decisionId: string; readonly deferred: DeferredDecision }
    | { readonly replay: PaymentView }
  > {
    if (!this.risk) return { decisionId: undefined, recorded: Promise.resolve() };
    const decided = await this.risk.assessDeferred(
      'payment',
      // Keys in sorted order, absent ones undefined: the facts' digest then needs no sort (canonicalJson).
      {
        accountId: wallet.walletId,
        amount: formatAmount('CNY', gross),
        businessDate,
        cardRef: wallet.cardNumberIndex,
        channel: context.channel,
        customerClass: wallet.customerClass,
        deviceId: input.deviceId,
        ip: context.source !== undefined && isIP(context.source) !== 0 ? context.source : undefined,
        merchantCategory: merchant.category,
        merchantId: merchant.merchantId,
        subjectRef: `payment:${paymentId}`,
        terminalId: input.terminalId,
        walletPurpose: wallet.purpose,
      },
      now,
    );
    const decision = decided.assessment;
    if ('deferred' in decided) return { decisionId: decision.decisionId, deferred: decided.deferred };
    if (decision.outcome === 'allow') return { decisionId: decision.decisionId, recorded: decided.recorded };
    // A refusal is answered once its decision record is stored (it explains the refusal).
    await decided.recorded;
    // A retransmission of an order already paid gets the payment, not a decision taken on later traffic.
    const existing = await this.getPayment(paymentId);
    if (existing) return { replay: await this.answerReplay(paymentId, input, gross) };
    throw new ServiceRefusal(decision.code!, 'payment refused by risk control', {
      decisionId: decision.decisionId,
      isoResponseCode: decision.isoResponseCode ?? null,
      reviewId: decision.reviewId ?? null,
    });
  }

  /** In the caller's transaction: the merchant's webhook (when it has one) and the payer's notification. */
  private async announce(
    tx: SqlQueryable,
    merchantId: string,
    walletId: string,
    messageId: string,
    kind: string,
    webhookPayload: Record<string, unknown>,
    notification: Record<string, string>,
    at: Date,
  ): Promise<void> {
    if (!this.outbox) return;
    for (const message of announcementsOf(merchantId, walletId, messageId, kind, webhookPayload, notification)) {
      if (message.onlyIfWebhookOf !== undefined && !(await this.outbox.hasWebhook(tx, message.onlyIfWebhookOf)))
        continue;
      await this.outbox.enqueue(tx, message, at);
    }
  }

  private async drive(
    row: PaymentRow,
    wallet: WalletRecord,
    merchant: MerchantRecord,
    context: CommandContext,
    now: Date,
  ): Promise<PaymentView> {
    if (isSingleTender(row)) return this.postSingle(row, wallet, merchant, context, now);
    const legs = this.legsOf(row, wallet, merchant);
    const expiresAt = new Date(now.getTime() + this.policy.holdMinutes * 60_000).toISOString();
    for (const [i, leg] of legs.entries()) {
      const outcome = await this.ledger.execute(
        {
          type: 'AuthorizeTransfer',
          transferId: legTransferId(row.payment_id, leg.name),
          idempotencyKey: `payment:${row.payment_id}:${leg.name}`,
          transferType: leg.asset === 'CCR' ? 'credit_redemption' : 'payment',
          debitAccountId: leg.debit,
          creditAccountId: leg.credit,
          amount: formatAmount(leg.asset, leg.amount),
          expiresAt,
          reference: row.order_id.slice(0, 64),
          businessDate: dateText(row.business_date),
          at: now.toISOString(),
        },
        context,
      );
      if (outcome.status === 'refused') {
        await this.abandon(row, wallet, merchant, outcome.refusal.code, context, now);
        throw new ServiceRefusal(
          outcome.refusal.code,
          `payment refused: ${outcome.refusal.message}`,
          outcome.refusal.details,
        );
      }
      if (i === 0) this.faultAt?.('after_first_hold');
    }
    this.faultAt?.('after_holds');
    await this.database.query(
      `UPDATE cp_payments SET status = 'capturing' WHERE payment_id = $1 AND status = 'authorizing'`,
      [row.payment_id],
    );
    return this.captureAll({ ...row, status: 'capturing' }, wallet, merchant, context, now);
  }

  private async captureAll(
    row: PaymentRow,
    wallet: WalletRecord,
    merchant: MerchantRecord,
    context: CommandContext,
    now: Date,
  ): Promise<PaymentView> {
    const legs = this.legsOf(row, wallet, merchant);
    for (const [i, leg] of legs.entries()) {
      const transferId = legTransferId(row.payment_id, leg.name);
      const outcome = await this.ledger.execute(
        { type: 'CaptureTransfer', transferId, idempotencyKey: `capture:${transferId}`, at: now.toISOString() },
        context,
      );
      if (outcome.status === 'refused')
        throw new Error(
          `assertion: a held tender of payment ${row.payment_id} could not be captured: ${outcome.refusal.message}`,
        );
      if (i === 0) this.faultAt?.('after_first_capture');
    }
    const fee = new Money(row.fee);
    if (fee.gt(0)) {
      await executeOrRefuse(
        this.ledger,
        {
          type: 'PostTransfer',
          transferId: uuidV5(`payment-fee|${row.payment_id}`),
          idempotencyKey: `fee:${row.payment_id}`,
          transferType: 'fee',
          postings: [
            { accountId: merchant.pendingAccount, direction: 'debit', amount: row.fee },
            { accountId: FEE_INCOME_ACCOUNT, direction: 'credit', amount: row.fee },
          ],
          reference: row.order_id.slice(0, 64),
          businessDate: dateText(row.business_date),
          at: now.toISOString(),
        },
        context,
      );
    }
    return this.markCaptured(row, wallet, merchant, now);
  }

  /**
   * A payment of one cash tender (wallet or coupon) needs no holds: one balanced transfer moves the gross from the
   * customer, the net to the merchant and the fee to fee income, atomically. Only mixed tenders go through the holds.
   */
  private async postSingle(
    row: PaymentRow,
    wallet: WalletRecord,
    merchant: MerchantRecord,
    context: CommandContext,
    now: Date,
  ): Promise<PaymentView> {
    const [leg] = this.legsOf(row, wallet, merchant);
    const fee = new Money(row.fee);
    const net = new Money(row.gross).minus(fee);
    const outcome = await this.ledger.execute(
      {
        type: 'PostTransfer',
        transferId: singleTransferId(row.payment_id),
        idempotencyKey: `payment:${row.payment_id}`,
        transferType: 'payment',
        postings: [
          { accountId: leg!.debit, direction: 'debit', amount: row.gross },
          // A fee can take all of a tiny payment (0.01 at 50 %): the merchant then gets no line, not a zero one.
          ...(net.gt(0)
            ? [{ accountId: merchant.pendingAccount, direction: 'credit' as const, amount: formatAmount('CNY', net) }]
            : []),
          ...(fee.gt(0) ? [{ accountId: FEE_INCOME_ACCOUNT, direction: 'credit' as const, amount: row.fee }] : []),
        ],
        reference: row.order_id.slice(0, 64),
        businessDate: dateText(row.business_date),
        at: now.toISOString(),
      },
      context,
    );
    if (outcome.status === 'refused') {
      await this.markFailed(row.payment_id, outcome.refusal.code);
      throw new ServiceRefusal(
        outcome.refusal.code,
        `payment refused: ${outcome.refusal.message}`,
        outcome.refusal.details,
      );
    }
    this.faultAt?.('after_holds');
    return this.markCaptured(row, wallet, merchant, now);
  }

  /** The payment's commit, recorded with its messages (webhook, notification) in one statement. */
  private async markCaptured(
    row: PaymentRow,
    wallet: WalletRecord,
    merchant: MerchantRecord,
    now: Date,
  ): Promise<PaymentView> {
    const captured = viewOf({ ...row, status: 'captured' });
    const changed = await this.captures.submit({
      view: captured,
      walletId: wallet.walletId,
      merchantId: merchant.merchantId,
      at: now,
    });
    // Captured by this call: the row is the one it began with. Else another path (resume, a retry) finished it.
    return changed ? captured : (await this.getPayment(row.payment_id))!;
  }

  /** The batch's reservations and payment rows, with the risk decisions that allowed them: one statement. */
  private async beginMany(items: readonly PaymentRowWithLimit[]): Promise<BeginResult[]> {
    const column = <T>(pick: (item: PaymentRowWithLimit) => T): T[] => items.map(pick);
    const params: unknown[] = [
      column((i) => i.row.payment_id),
      column((i) => i.row.merchant_id),
      column((i) => i.row.order_id),
      column((i) => i.row.wallet_id),
      column((i) => i.row.gross),
      column((i) => i.row.wallet_amount),
      column((i) => i.row.coupon_amount),
      column((i) => i.row.credits),
      column((i) => i.row.credits_value),
      column((i) => i.row.fee),
      column((i) => dateText(i.row.business_date)),
      column((i) => new Date(i.row.created_at).toISOString()),
      column((i) => i.passwordFreePerDay),
    ];
    const decisions = items.flatMap((i) => (i.decision === undefined ? [] : [i.decision]));
    // The decisions' parameters follow the payments'.
    const risk = decisions.length === 0 ? undefined : this.risk!.recordingSql(decisions, params.length + 1);
    const rows = await this.database.query<{ n: number; outcome: BeginOutcome; unread: string[] | null }>(
      preparedSql(
        risk === undefined ? 'cp_payment_begin' : 'cp_payment_begin_risk',
        `WITH ${risk === undefined ? '' : `${risk.ctes},`}
       begun AS (
         SELECT n, outcome FROM cp_payment_begin_many($1::text[], $2::text[], $3::text[], $4::text[], $5::numeric[],
           $6::numeric[], $7::numeric[], $8::numeric[], $9::numeric[], $10::numeric[], $11::date[], $12::timestamptz[],
           $13::numeric[]))
       SELECT n, outcome, ${risk === undefined ? 'NULL' : '(SELECT array_agg(decision_id) FROM risk_unread)'} AS unread
         FROM begun ORDER BY n`,
      ),
      [...params, ...(risk?.params ?? [])],
    );
    const unread = new Set(rows[0]?.unread ?? []);
    return rows.map((r, i) => ({
      outcome: r.outcome,
      riskConflict: items[i]!.decision !== undefined && unread.has(items[i]!.decision!.decisionId),
    }));
  }

  /**
   * Marks a batch of payments captured, with their messages when there is an outbox: one statement. Answers, per
   * payment, whether this statement captured it (false: it was captured or failed before).
   */
  private async captureMany(items: readonly CapturedPayment[]): Promise<boolean[]> {
    // The messages of each payment (announcementsOf), numbered by payment (n) and within it (k); written only for the
    // payments this statement captures.
    const messages = this.outbox
      ? items.flatMap(({ view, merchantId, walletId, at }, i) =>
          announcementsOf(
            merchantId,
            walletId,
            `payment.succeeded:${view.paymentId}`,
            'payment.succeeded',
            {
              paymentId: view.paymentId,
              orderId: view.orderId,
              amount: view.amount,
              fee: view.fee,
              merchantNet: view.merchantNet,
              tenders: view.tenders,
              businessDate: view.businessDate,
            },
            { template: 'payment_succeeded', amount: view.amount, orderId: view.orderId },
          ).map((message, k) => ({ n: i + 1, k: k + 1, message, at })),
        )
      : [];
    const written = this.outbox
      ? `, input AS (SELECT * FROM unnest($1::text[]) WITH ORDINALITY AS i(payment_id, n)),
        messages AS (
          SELECT m.* FROM unnest($2::integer[], $3::integer[], $4::text[], $5::text[], $6::text[], $7::jsonb[], $8::text[],
                                 $9::timestamptz[]) AS m(n, k, message_id, receiver, kind, payload, only_if_webhook_of, at)
            JOIN input i ON i.n = m.n JOIN changed c ON c.payment_id = i.payment_id),
        written AS (${Outbox.insertFromSql('messages')})`
      : '';
    const rows = await this.database.query<{ payment_id: string }>(
      preparedSql(
        this.outbox ? 'cp_payment_capture_announced' : 'cp_payment_capture',
        `WITH changed AS (SELECT payment_id FROM cp_payment_capture_many($1::text[]) AS c(payment_id))
       ${written}
       SELECT payment_id FROM changed`,
      ),
      [
        items.map((i) => i.view.paymentId),
        ...(this.outbox
          ? [
              messages.map((m) => m.n),
              messages.map((m) => m.k),
              messages.map((m) => m.message.messageId),
              messages.map((m) => m.message.receiver),
              messages.map((m) => m.message.kind),
              messages.map((m) => JSON.stringify(m.message.payload)),
              messages.map((m) => m.message.onlyIfWebhookOf ?? null),
              messages.map((m) => m.at.toISOString()),
            ]
          : []),
      ],
    );
    const changed = new Set(rows.map((r) => r.payment_id));
    // The same payment twice in a batch (a capture racing a resume): the first one captured it.
    const seen = new Set<string>();
    return items.map(({ view }) => {
      const first = changed.has(view.paymentId) && !seen.has(view.paymentId);
      seen.add(view.paymentId);
      return first;
    });
  }

  /** Voids every hold the payment placed (those never placed answer not found) and marks it failed. */
  private async abandon(
    row: PaymentRow,
    wallet: WalletRecord,
    merchant: MerchantRecord,
    why: string,
    context: CommandContext,
    now: Date,
  ): Promise<void> {
    if (isSingleTender(row)) {
      // No holds: the one transfer either happened (the payment stands) or did not (it failed).
      const posted = await this.ledger.getTransfer(singleTransferId(row.payment_id));
      if (posted) await this.markCaptured(row, wallet, merchant, now);
      else await this.markFailed(row.payment_id, why);
      return;
    }
    for (const leg of this.legsOf(row, wallet, merchant)) {
      const outcome = await this.ledger.execute(
        {
          type: 'VoidTransfer',
          transferId: legTransferId(row.payment_id, leg.name),
          reason: `payment failed: ${why}`.slice(0, 256),
          at: now.toISOString(),
        },
        context,
      );
      if (
        outcome.status === 'refused' &&
        !['transfer_not_found', 'invalid_transfer_state'].includes(outcome.refusal.code)
      )
        throw new Error(
          `assertion: a hold of payment ${row.payment_id} could not be voided: ${outcome.refusal.message}`,
        );
    }
    await this.markFailed(row.payment_id, why);
  }

  private async markFailed(paymentId: string, why: string): Promise<void> {
    await this.database.query(
      `UPDATE cp_payments SET status = 'failed', failure = $2 WHERE payment_id = $1 AND status = 'authorizing'`,
      [paymentId, why],
    );
  }

  private legsOf(row: PaymentRow, wallet: WalletRecord, merchant: MerchantRecord): Leg[] {
    const legs: Leg[] = [
      {
        name: 'wallet',
        debit: wallet.accounts.main,
        credit: merchant.pendingAccount,
        asset: 'CNY',
        amount: new Money(row.wallet_amount),
      },
      {
        name: 'coupon',
        debit: wallet.accounts.voucher,
        credit: merchant.pendingAccount,
        asset: 'CNY',
        amount: new Money(row.coupon_amount),
      },
      {
        name: 'credits',
        debit: wallet.accounts.points,
        credit: REDEMPTION_ACCOUNT,
        asset: 'CCR',
        amount: new Money(row.credits),
      },
      {
        name: 'credits_value',
        debit: MARKETING_ACCOUNT,
        credit: merchant.pendingAccount,
        asset: 'CNY',
        amount: new Money(row.credits_value),
      },
    ];
    // Credits first: they are the scarcest tender and the likeliest refusal, so a refusal costs no wallet hold.
    const order = ['credits', 'credits_value', 'coupon', 'wallet'];
    return legs.filter((l) => l.amount.gt(0)).sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
  }

  /** Splits a refund over the tenders in {@link REFUND_ORDER}, each up to what it paid less what it got back. */
  private async refundSplit(
    tx: SqlQueryable,
    row: PaymentRow,
    amount: Amount,
  ): Promise<{ wallet: Amount; coupon: Amount; credits: Amount; creditsValue: Amount }> {
    const back = (
      await tx.query<{ wallet: string | null; coupon: string | null; credits_value: string | null }>(
        `SELECT sum(wallet_amount)::text AS wallet, sum(coupon_amount)::text AS coupon, sum(credits_value)::text AS credits_value
           FROM cp_refunds WHERE payment_id = $1`,
        [row.payment_id],
      )
    )[0]!;
    let left = amount;
    const take = (paid: string, returned: string | null): Amount => {
      const room = new Money(paid).minus(returned ?? '0');
      const part = Money.min(room, left);
      left = left.minus(part);
      return part;
    };
    const parts: Record<TenderKind, Amount> = { wallet: ZERO, coupon: ZERO, credits: ZERO };
    for (const tender of REFUND_ORDER) {
      if (tender === 'wallet') parts.wallet = take(row.wallet_amount, back.wallet);
      else if (tender === 'coupon') parts.coupon = take(row.coupon_amount, back.coupon);
      else parts.credits = take(row.credits_value, back.credits_value);
    }
    if (!left.eq(0)) throw new Error(`assertion: refund of payment ${row.payment_id} does not fit its tenders`);
    return {
      wallet: parts.wallet,
      coupon: parts.coupon,
      creditsValue: parts.credits,
      credits: parts.credits.div(this.policy.creditValueCny),
    };
  }

  private async paymentRow(db: SqlQueryable, paymentId: string, forUpdate = false): Promise<PaymentRow | undefined> {
    const rows = await db.query<PaymentRow>(
      `SELECT ${PAYMENT_COLUMNS} FROM cp_payments WHERE payment_id = $1${forUpdate ? ' FOR UPDATE' : ''}`,
      [paymentId],
    );
    return rows[0];
  }

  private async merchantIn(
    db: SqlQueryable,
    merchantId: string,
    forUpdate = false,
  ): Promise<MerchantRecord | undefined> {
    const rows = await db.query<{
      merchant_id: string;
      name: string;
      category: string;
      fee_rate_bps: number;
      settlement_bank_account: string;
      pending_account: string;
      settled_account: string;
      status: MerchantRecord['status'];
      review_reason: string | null;
    }>(`SELECT * FROM cp_merchants WHERE merchant_id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [merchantId]);
    const r = rows[0];
    if (!r) return undefined;
    return {
      merchantId: r.merchant_id,
      name: r.name,
      category: r.category,
      feeRateBps: r.fee_rate_bps,
      settlementBankAccount: this.cipher.open('bankAccount', r.settlement_bank_account),
      pendingAccount: r.pending_account,
      settledAccount: r.settled_account,
      status: r.status,
      reviewReason: r.review_reason,
      qrCode: `carbonpay://pay?merchant=${encodeURIComponent(r.merchant_id)}`,
    };
  }
}

/** A fact told to the merchant's webhook (when it has one) and, as a notification, to the payer. */
function announcementsOf(
  merchantId: string,
  walletId: string,
  messageId: string,
  kind: string,
  webhookPayload: Record<string, unknown>,
  notification: Record<string, string>,
): (OutboxMessage & { onlyIfWebhookOf?: string })[] {
  return [
    { messageId, receiver: `webhook:${merchantId}`, kind, payload: webhookPayload, onlyIfWebhookOf: merchantId },
    { messageId: `${messageId}:sms`, receiver: `sms:${walletId}`, kind, payload: notification },
  ];
}

/** One cash tender and no credits: the payment is one transfer, not holds (see postSingle). */
function isSingleTender(row: PaymentRow): boolean {
  const wallet = new Money(row.wallet_amount).gt(0);
  const coupon = new Money(row.coupon_amount).gt(0);
  return wallet !== coupon && new Money(row.credits).eq(0);
}

/** A payment asked for again must be asked with the same wallet and amount; other details are a conflict. */
function checkSameOrder(existing: PaymentView, input: PayInput, gross: Amount): void {
  if (existing.walletId !== input.walletId || !new Money(existing.amount).eq(gross))
    throw new ServiceRefusal('idempotency_conflict', `order ${input.orderId} was paid with other details`);
}

/** A payment not yet captured or failed (a reversal under way is another operation's: the payment itself ended). */
function isUnderWay(status: PaymentView['status']): boolean {
  return status === 'authorizing' || status === 'capturing';
}

function singleTransferId(paymentId: string): string {
  return uuidV5(`payment|${paymentId}`);
}

/**
 * The ledger transfers a captured payment consists of, in the order a cancellation reverses them: one transfer for a
 * single cash tender; else the fee (it gives the merchant back what the tenders' reversals then take) and one
 * captured hold per tender. Clearing marks exactly these settled.
 */
export function paymentTransferIds(payment: Pick<PaymentView, 'paymentId' | 'tenders' | 'fee'>): string[] {
  const { wallet, coupon, credits, creditsValue } = payment.tenders;
  const single = new Money(wallet).gt(0) !== new Money(coupon).gt(0) && new Money(credits).eq(0);
  if (single) return [singleTransferId(payment.paymentId)];
  const ids = new Money(payment.fee).gt(0) ? [uuidV5(`payment-fee|${payment.paymentId}`)] : [];
  for (const [leg, amount] of [
    ['credits', credits],
    ['credits_value', creditsValue],
    ['coupon', coupon],
    ['wallet', wallet],
  ] as const) {
    if (new Money(amount).gt(0)) ids.push(legTransferId(payment.paymentId, leg));
  }
  return ids;
}

/** The payment id a merchant's order stands for: one order, one payment, whichever process or door sees it. */
export function paymentIdOf(merchantId: string, orderId: string): string {
  return uuidV5(`payment|${merchantId}|${orderId}`);
}

function legTransferId(paymentId: string, leg: string): string {
  return uuidV5(`payment-leg|${paymentId}|${leg}`);
}

function dateText(value: string | Date): string {
  return typeof value === 'string' ? value.slice(0, 10) : value.toISOString().slice(0, 10);
}

function cny(text: string, field: string): Amount {
  const parsed = parseAmount('CNY', text, { positive: true });
  if (!parsed.ok) throw new ServiceRefusal('validation_failed', `${field}: ${parsed.error.kind.replace(/_/g, ' ')}`);
  return parsed.amount;
}

function ccr(text: string): Amount {
  const parsed = parseAmount('CCR', text, { positive: true });
  if (!parsed.ok)
    throw new ServiceRefusal('validation_failed', `tenders.credits: ${parsed.error.kind.replace(/_/g, ' ')}`);
  return parsed.amount;
}

function viewOf(row: PaymentRow): PaymentView {
  return {
    paymentId: row.payment_id,
    merchantId: row.merchant_id,
    orderId: row.order_id,
    walletId: row.wallet_id,
    amount: atScale('CNY', row.gross),
    tenders: {
      wallet: atScale('CNY', row.wallet_amount),
      coupon: atScale('CNY', row.coupon_amount),
      credits: atScale('CCR', row.credits),
      creditsValue: atScale('CNY', row.credits_value),
    },
    fee: atScale('CNY', row.fee),
    merchantNet: formatAmount('CNY', amountOf('CNY', row.gross).minus(amountOf('CNY', row.fee))),
    refunded: atScale('CNY', row.refunded),
    status: row.status,
    failure: row.failure,
    businessDate: dateText(row.business_date),
  };
}
