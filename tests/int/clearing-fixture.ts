import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClearingOptions } from '../../clearing';
import { ClearingService } from '../../clearing';
import type { CommandContext, EventStore } from '../../core-ledger';
import { Ledger, Money, openPostgresEventStore } from '../../core-ledger';
import { PostgresReadModels } from '../../projections';
import type { PaymentView, WalletRecord } from '../../services';
import { PaymentService, PLAINTEXT, WalletService } from '../../services';
import { createTestDatabase } from '../support/databases';
import { openPlatformAccounts } from '../support/ledger-fixtures';

/**
 * A real PostgreSQL database with the event store, the ledger, the wallet and payment services and the clearing
 * service, as tests/int/carbon-payments.int.spec.ts stands them up; plus helpers to make merchants, funded wallets,
 * payments and refunds at a chosen instant (the business date follows from it, cut-off 00:00 Shanghai).
 */

export const CONTEXT: CommandContext = { actor: 'clearing-test', channel: 'api' };
/** 12:00 in Shanghai on 2026-11-23. */
export const NOON = new Date('2026-11-23T04:00:00.000Z');

export function dayOf(offset: number): { at: Date; date: string } {
  const at = new Date(NOON.getTime() + offset * 86_400_000);
  return { at, date: at.toISOString().slice(0, 10) };
}

export interface ClearingWorld {
  readonly url: string;
  readonly store: EventStore;
  readonly db: PostgresReadModels;
  readonly ledger: Ledger;
  readonly wallets: WalletService;
  readonly payments: PaymentService;
  readonly clearing: ClearingService;
  readonly outputDir: string;
  merchant(name: string, feeRateBps?: number): Promise<{ merchantId: string; pending: string; settled: string }>;
  fundedWallet(amount: string, at?: Date): Promise<WalletRecord>;
  pay(merchantId: string, wallet: WalletRecord, orderId: string, amount: string, at: Date): Promise<PaymentView>;
  refund(paymentId: string, refundId: string, amount: string, at: Date): Promise<void>;
  /** Posted balance (credits − debits) of an account, as the ledger holds it now. */
  balance(accountId: string): Promise<string>;
  close(): Promise<void>;
}

let walletNumber = 13_800_000_000;

export async function startClearingWorld(
  prefix: string,
  options: Partial<ClearingOptions> = {},
): Promise<ClearingWorld> {
  const database = await createTestDatabase(prefix);
  const store = await openPostgresEventStore({ connectionString: database.url, maxConnections: 8 });
  const db = new PostgresReadModels(database.url, 16);
  const ledger = new Ledger(store);
  await openPlatformAccounts(ledger);
  const wallets = new WalletService(db, ledger, PLAINTEXT, Buffer.alloc(32, 9));
  const payments = new PaymentService(db, ledger, wallets, PLAINTEXT);
  // The channel takes every top-up and never calls back on its own: each test confirms (or leaves pending) itself.
  let tradeNo = 0;
  payments.attachChannel({
    name: 'bank_sim',
    submitTopUp: async () => ({ channelTradeNo: `BT${String((tradeNo += 1)).padStart(10, '0')}` }),
  });
  await wallets.install();
  await payments.install();
  const outputDir = mkdtempSync(join(tmpdir(), `cp-${prefix}-`));
  const clearing = new ClearingService(db, ledger, payments, wallets, { outputDir, ...options }, CONTEXT);
  await clearing.install();
  return {
    url: database.url,
    store,
    db,
    ledger,
    wallets,
    payments,
    clearing,
    outputDir,
    async merchant(name, feeRateBps = 60) {
      const applied = await payments.applyMerchant(
        { name, category: 'green_mall', feeRateBps, settlementBankAccount: '6222020200112233445', areaCode: '0794' },
        NOON,
      );
      const reviewed = await payments.reviewMerchant(applied.merchantId, 'approve', 'ok', CONTEXT, NOON);
      return { merchantId: reviewed.merchantId, pending: reviewed.pendingAccount, settled: reviewed.settledAccount };
    },
    async fundedWallet(amount, at = dayOf(-10).at) {
      walletNumber += 1;
      const wallet = await wallets.openWallet(
        {
          accountNumber: String(walletNumber),
          name: 'Payer',
          areaCode: '0794',
          customerClass: '2',
          purpose: 'general',
        },
        CONTEXT,
        at,
      );
      // Test wallets pay without a password: lift the password-free limits instead of paying scrypt per payment.
      await db.query(
        'UPDATE cp_wallets SET password_free_per_payment = 1000000, password_free_per_day = 100000000 WHERE wallet_id = $1',
        [wallet.walletId],
      );
      const topUp = await payments.requestTopUp(wallet.walletId, amount, 'bank_sim', at);
      await payments.confirmTopUp(
        { topUpId: topUp.topUpId, result: 'success', channelTradeNo: `BT-${topUp.topUpId.slice(0, 8)}` },
        CONTEXT,
        at,
      );
      return (await wallets.getWallet(wallet.walletId))!;
    },
    async pay(merchantId, wallet, orderId, amount, at) {
      return payments.pay(
        { merchantId, orderId, walletId: wallet.walletId, amount, tenders: { wallet: amount } },
        CONTEXT,
        at,
      );
    },
    async refund(paymentId, refundId, amount, at) {
      await payments.refund({ paymentId, refundId, amount }, CONTEXT, at);
    },
    async balance(accountId) {
      ledger.invalidate();
      const account = await ledger.getAccount(accountId);
      return account ? new Money(account.posted).toFixed(2) : 'absent';
    },
    async close() {
      await ledger.close();
      await db.close();
      await store.close();
      await database.drop();
      rmSync(outputDir, { recursive: true, force: true });
    },
  };
}

/** Count of transfers of a type in the event log (to prove a rerun posted nothing). */
export async function transfersOfType(db: PostgresReadModels, transferType: string): Promise<number> {
  const rows = await db.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM cp_events WHERE type = 'TransferPosted' AND data->>'transferType' = $1`,
    [transferType],
  );
  return Number(rows[0]!.n);
}

/** A bank-simulator statement (clearing/bills/bank-sim-statement.ts) with a trailer that adds up. */
export function bankSimBill(
  businessDate: string,
  lines: readonly {
    txn: string;
    order: string;
    refund?: string;
    amount: string;
    fee?: string;
    status?: string;
  }[],
): Buffer {
  let credit = new Money(0);
  let debit = new Money(0);
  let fees = new Money(0);
  const body = lines.map((l) => {
    const direction = l.refund === undefined ? 'CREDIT' : 'DEBIT';
    if (direction === 'CREDIT') credit = credit.plus(l.amount);
    else debit = debit.plus(l.amount);
    fees = fees.plus(l.fee ?? '0.00');
    return `D|${l.txn}|${l.order}|${l.refund ?? ''}|${direction}|${l.amount}|${l.fee ?? '0.00'}|${businessDate}T10:00:00+08:00|${l.status ?? 'SUCCESS'}`;
  });
  return Buffer.from(
    [
      `H|CARBONPAY-BANK-SIM|1|${businessDate}`,
      ...body,
      `T|${lines.length}|${credit.toFixed(2)}|${debit.toFixed(2)}|${fees.toFixed(2)}`,
      '',
    ].join('\n'),
    'utf8',
  );
}
