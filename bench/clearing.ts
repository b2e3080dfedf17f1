/**
 * node -r ts-node/register/transpile-only bench/clearing.ts [--transactions 1000000] [--merchants 2000] [--keep]
 *
 * The daily batch at volume (issue #10, must-show 1): a generated day of N transactions, then
 *   1. clearing of the day (ClearingService.clear: the set-based INSERT … SELECT, the report, its manifest);
 *   2. reconciliation of a bank-simulator bill of N lines against our N records (parse → staging with multi-row
 *      INSERTs → set-based match → cases → suspense holds in the ledger), with 0.1 % of lines made long, short and
 *      amount-mismatched, each class counted and checked against what was injected.
 *
 * The day is bulk-generated with SQL straight into cp_merchants / cp_payments / cp_refunds (generate_series), not
 * through the payment service: 1M payments through the ledger would measure the ledger, not the batch. Its ledger
 * is in memory (only the suspense holds of the cases go to it). A fresh database on the server of DATABASE_URL (or
 * postgresql://postgres@127.0.0.1:5432/postgres) is created and dropped.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { CLEARING_SQL, ClearingService } from '../clearing';
import { InMemoryEventStore, Ledger, Money, PLATFORM_ACCOUNTS } from '../core-ledger';
import { PostgresReadModels } from '../projections';
import { PAYMENTS_SQL, PaymentService, PLAINTEXT, WalletService } from '../services';

const SERVER = process.env['DATABASE_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const DATE = '2026-11-23';

function option(name: string, fallback: number): number {
  const index = process.argv.indexOf(name);
  return index < 0 ? fallback : Number(process.argv[index + 1]);
}

async function admin(sql: string): Promise<void> {
  const client = new Client({ connectionString: SERVER });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function seconds(since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e9;
}

async function main(): Promise<void> {
  const transactions = option('--transactions', 1_000_000);
  const merchants = option('--merchants', 2_000);
  const name = `cp_bench_clearing_${randomBytes(4).toString('hex')}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(SERVER);
  url.pathname = `/${name}`;
  const db = new PostgresReadModels(url.toString(), 4);
  const outputDir = mkdtempSync(join(tmpdir(), 'cp-bench-clearing-'));
  const ledger = new Ledger(new InMemoryEventStore());
  try {
    for (const p of PLATFORM_ACCOUNTS)
      await ledger.execute({
        type: 'OpenAccount',
        accountId: p.accountId,
        kind: p.kind,
        ownerId: 'platform',
        at: `${DATE}T00:00:00Z`,
      });
    const wallets = new WalletService(db, ledger, PLAINTEXT, Buffer.alloc(32, 1));
    const payments = new PaymentService(db, ledger, wallets, PLAINTEXT);
    await db.exec(PAYMENTS_SQL);
    await db.exec(CLEARING_SQL);
    const clearing = new ClearingService(db, ledger, payments, wallets, { outputDir });

    // ---- the generated day ----
    let started = process.hrtime.bigint();
    const refunds = Math.floor(transactions / 100);
    const paymentsCount = transactions - refunds;
    await db.query(
      `INSERT INTO cp_merchants (merchant_id, name, category, fee_rate_bps, settlement_bank_account, pending_account,
         settled_account, status, applied_at)
       SELECT 'M' || i, 'Merchant ' || i, 'green_mall', 60, '6222020200112233445', 'P' || i, 'S' || i, 'active', now()
         FROM generate_series(1, $1) i`,
      [merchants],
    );
    await db.query(
      `INSERT INTO cp_payments (payment_id, merchant_id, order_id, wallet_id, gross, wallet_amount, coupon_amount,
         credits, credits_value, fee, status, business_date, created_at)
       SELECT 'pay-' || i, 'M' || (1 + i % $2), 'ORD' || lpad(i::text, 10, '0'), 'W1', g, g, 0, 0, 0,
              round(g * 0.006, 2), 'captured', $3::date, $3::date + interval '4 hours'
         FROM (SELECT i, ((1 + (hashint4(i) & 2147483647) % 50000) / 100.0)::numeric(12, 2) AS g FROM generate_series(1, $1) i) x`,
      [paymentsCount, merchants, DATE],
    );
    await db.query(
      `INSERT INTO cp_refunds (refund_id, payment_id, amount, wallet_amount, coupon_amount, credits_value, credits,
         transfer_id, status, business_date, created_at)
       SELECT 'r1', 'pay-' || i, round(p.gross / 2, 2), round(p.gross / 2, 2), 0, 0, 0, 'refund-' || i, 'done',
              $2::date, $2::date + interval '5 hours'
         FROM generate_series(1, $1) i JOIN cp_payments p ON p.payment_id = 'pay-' || (i * 97)`,
      [refunds, DATE],
    );
    await db.query('ANALYZE cp_payments; ');
    await db.query('ANALYZE cp_refunds');
    const generateSeconds = seconds(started);

    // ---- 1. clearing ----
    started = process.hrtime.bigint();
    const cleared = await clearing.clear(DATE);
    const clearingSeconds = seconds(started);
    const check = await db.query<{ expected: string }>(
      `SELECT ((SELECT sum(gross - fee) FROM cp_payments) - (SELECT sum(amount) FROM cp_refunds))::text AS expected`,
    );
    if (!new Money(check[0]!.expected).eq(cleared.payout))
      throw new Error('assertion: clearing payout does not add up');

    // ---- 2. reconciliation: the bill, with 0.1 % each of long, short and amount mismatch injected ----
    started = process.hrtime.bigint();
    const rows = await db.query<{ order_id: string; gross: string }>(
      'SELECT order_id, gross::text FROM cp_payments ORDER BY order_id',
    );
    const refundRows = await db.query<{ order_id: string; amount: string }>(
      `SELECT p.order_id, r.amount::text FROM cp_refunds r JOIN cp_payments p USING (payment_id) ORDER BY p.order_id`,
    );
    const every = 1000;
    let credit = new Money(0);
    let debit = new Money(0);
    const lines: string[] = [`H|CARBONPAY-BANK-SIM|1|${DATE}`];
    let injectedShort = 0;
    let injectedAmount = 0;
    rows.forEach((row, i) => {
      if (i % every === 1) return void (injectedShort += 1);
      let amount = row.gross;
      if (i % every === 2) {
        amount = new Money(amount).plus('0.01').toFixed(2);
        injectedAmount += 1;
      }
      credit = credit.plus(amount);
      lines.push(`D|BS${i}|${row.order_id}||CREDIT|${amount}|0.00|${DATE}T12:00:00+08:00|SUCCESS`);
    });
    refundRows.forEach((row, i) => {
      debit = debit.plus(row.amount);
      lines.push(`D|BR${i}|${row.order_id}|r1|DEBIT|${row.amount}|0.00|${DATE}T13:00:00+08:00|SUCCESS`);
    });
    const injectedLong = Math.floor(rows.length / every);
    for (let i = 0; i < injectedLong; i += 1) {
      credit = credit.plus('1.00');
      lines.push(`D|BL${i}|LONG${i}||CREDIT|1.00|0.00|${DATE}T14:00:00+08:00|SUCCESS`);
    }
    const count = lines.length - 1;
    lines.push(`T|${count}|${credit.toFixed(2)}|${debit.toFixed(2)}|0.00`, '');
    const bill = Buffer.from(lines.join('\n'), 'utf8');
    lines.length = 0;
    const billSeconds = seconds(started);

    const phases: string[] = [];
    const reconStarted = process.hrtime.bigint();
    clearing.hooks.progress = (message) => {
      phases.push(`${seconds(reconStarted).toFixed(1)} s ${message}`);
    };
    const recon = await clearing.reconcile('bank_sim', DATE, bill, 'bench-bank-sim.txt');
    const reconciliationSeconds = seconds(reconStarted);
    const ok =
      recon.classes.long === injectedLong &&
      recon.classes.short === injectedShort &&
      recon.classes.amount_mismatch === injectedAmount &&
      recon.matched === rows.length + refundRows.length - injectedShort - injectedAmount;
    const result = {
      transactions,
      payments: rows.length,
      refunds: refundRows.length,
      merchants,
      generateSeconds: Number(generateSeconds.toFixed(1)),
      clearingSeconds: Number(clearingSeconds.toFixed(2)),
      clearingMerchants: cleared.merchants,
      billLines: recon.lines,
      billBytes: bill.length,
      billBuildSeconds: Number(billSeconds.toFixed(1)),
      reconciliationSeconds: Number(reconciliationSeconds.toFixed(2)),
      reconciliationPhases: phases,
      matched: recon.matched,
      classes: recon.classes,
      injected: { long: injectedLong, short: injectedShort, amount_mismatch: injectedAmount },
      classifiedAsInjected: ok,
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    if (!ok) process.exitCode = 1;
  } finally {
    await ledger.close();
    await db.close();
    rmSync(outputDir, { recursive: true, force: true });
    if (!process.argv.includes('--keep')) await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench/clearing: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});
