import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runClearing } from '../../app';
import type { DiscrepancyCase, ReconciliationSummary } from '../../clearing';
import { PLATFORM_SUSPENSE_ACCOUNT, ResolutionRefusedError, RunPreconditionError } from '../../clearing';
import { Money } from '../../core-ledger';
import type { ClearingWorld } from './clearing-fixture';
import { bankSimBill, dayOf, startClearingWorld, transfersOfType } from './clearing-fixture';

/**
 * Reconciliation (对账) of a bank-simulator bill with every discrepancy class injected, against real payments,
 * refunds and top-ups; resolutions posted through PLATFORM-SUSPENSE-CNY; a held case re-matched on the next bill;
 * the CLI's exit codes. After the resolutions and the next day's bill the suspense account is back to 0.
 */

jest.setTimeout(120_000);

let world: ClearingWorld;
beforeAll(async () => {
  world = await startClearingWorld('clr_recon');
});
afterAll(async () => {
  await world.close();
});

async function cli(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runClearing(args, { stdout: (l) => out.push(l), stderr: (l) => err.push(l) }, {}, async () => ({
    clearing: world.clearing,
    close: async () => undefined,
  }));
  return { code, out, err };
}

test('every discrepancy class is found and resolved; suspense returns to zero; reruns change nothing', async () => {
  const [d, d1] = [dayOf(0), dayOf(1)];
  const m = await world.merchant('Recon Shop', 0);
  const payer = await world.fundedWallet('1000.00');
  const pay = (order: string, amount: string, at = d.at) => world.pay(m.merchantId, payer, order, amount, at);
  const p1 = await pay('O-MATCH', '100.00');
  await world.refund(p1.paymentId, 'r1', '20.00', d.at);
  await pay('O-AMOUNT', '50.00');
  const short = await pay('O-SHORT', '30.00');
  const status = await pay('O-STATUS', '20.00');
  await pay('O-DUP', '10.00');
  await pay('O-HELD', '40.00');
  await pay('O-NEXT', '12.00', d1.at);
  const topUp = await world.payments.requestTopUp(payer.walletId, '25.00', 'bank_sim', d.at); // left pending
  const walletBefore = await world.balance(payer.accounts.main);

  const bill = bankSimBill(d.date, [
    { txn: 'B01', order: 'O-MATCH', amount: '100.00' },
    { txn: 'B02', order: 'O-MATCH', refund: 'r1', amount: '20.00' },
    { txn: 'B03', order: 'O-AMOUNT', amount: '45.00' },
    { txn: 'B04', order: 'O-STATUS', amount: '20.00', status: 'REVERSED' },
    { txn: 'B05', order: 'O-DUP', amount: '10.00' },
    { txn: 'B06', order: 'O-DUP', amount: '10.00' },
    { txn: 'B07', order: 'O-LONG', amount: '15.00' },
    { txn: 'B08', order: topUp.topUpId, amount: '25.00' },
    { txn: 'B09', order: 'O-NEXT', amount: '12.00' },
  ]);
  const billFile = join(world.outputDir, 'bank-sim-d.txt');
  writeFileSync(billFile, bill);

  const run = await cli(['reconcile', '--file', billFile, '--channel', 'bank_sim', '--date', d.date, '--json']);
  expect(run.code).toBe(3); // discrepancies found
  const summary = JSON.parse(run.out[0]!) as ReconciliationSummary;
  expect([summary.lines, summary.matched, summary.discrepancies]).toEqual([9, 3, 7]);
  expect(summary.classes).toEqual({
    long: 1,
    short: 2,
    amount_mismatch: 1,
    status_mismatch: 2,
    duplicate: 1,
    cross_day: 1,
  });
  const cases = await world.clearing.listCases({ billDate: d.date, all: true });
  const classOf = (order: string): [string, string] => {
    const c = cases.find((x) => x.merchantOrderNo === order)!;
    return [c.class, c.delta];
  };
  expect(classOf('O-AMOUNT')).toEqual(['amount_mismatch', '-5.00']);
  expect(classOf('O-SHORT')).toEqual(['short', '-30.00']);
  expect(classOf('O-HELD')).toEqual(['short', '-40.00']);
  expect(classOf('O-STATUS')).toEqual(['status_mismatch', '-20.00']);
  expect(classOf('O-DUP')).toEqual(['duplicate', '10.00']);
  expect(classOf('O-LONG')).toEqual(['long', '15.00']);
  expect(classOf(topUp.topUpId)).toEqual(['status_mismatch', '25.00']);
  expect(classOf('O-NEXT')).toEqual(['cross_day', '0.00']);
  expect(cases.find((c) => c.merchantOrderNo === 'O-NEXT')!.state).toBe('resolved');
  // Every delta is held in suspense: −5 −30 −40 −20 +10 +15 +25.
  expect(await world.balance(PLATFORM_SUSPENSE_ACCOUNT)).toBe('-45.00');

  // A rerun of the same bill: the same files, no posting; another bill for the date is refused.
  const adjustments = await transfersOfType(world.db, 'adjustment');
  const directory = summary.directory;
  const bytes = new Map(readdirSync(directory).map((n) => [n, readFileSync(join(directory, n))]));
  const rerun = await world.clearing.reconcile('bank_sim', d.date, bill, 'bank-sim-d.txt');
  expect(rerun.replayed).toBe(true);
  expect(new Map(readdirSync(directory).map((n) => [n, readFileSync(join(directory, n))]))).toEqual(bytes);
  expect(await transfersOfType(world.db, 'adjustment')).toBe(adjustments);
  await expect(
    world.clearing.reconcile('bank_sim', d.date, bankSimBill(d.date, []), 'other.txt'),
  ).rejects.toBeInstanceOf(RunPreconditionError);

  const listed = await cli(['discrepancies', 'list', '--date', d.date, '--json']);
  expect(listed.code).toBe(0);
  expect((JSON.parse(listed.out[0]!) as DiscrepancyCase[]).length).toBe(7);
  const id = (order: string): string =>
    cases.find((c) => c.merchantOrderNo === order && c.class !== 'cross_day')!.caseId;

  // Not every resolution fits every class.
  await expect(
    world.clearing.resolve({ caseId: id('O-DUP'), resolution: 'reversal', businessDate: d1.date }),
  ).rejects.toBeInstanceOf(ResolutionRefusedError);
  const refused = await cli([
    'discrepancies',
    'resolve',
    '--case',
    id('O-LONG'),
    '--resolution',
    'book_missing',
    '--date',
    d1.date,
  ]);
  expect([refused.code, refused.err.length]).toEqual([2, 1]); // a channel-only line names no merchant
  expect(refused.err[0]).toMatch(/--merchant/);

  const resolve = async (order: string, resolution: string, extra: string[] = []): Promise<void> => {
    const answer = await cli([
      'discrepancies',
      'resolve',
      '--case',
      id(order),
      '--resolution',
      resolution,
      '--date',
      d1.date,
      ...extra,
    ]);
    expect([answer.code, answer.err]).toEqual([0, []]);
  };
  await resolve('O-AMOUNT', 'adjustment');
  await resolve('O-SHORT', 'reversal');
  await resolve('O-STATUS', 'reversal');
  await resolve('O-DUP', 'refund');
  await resolve('O-DUP', 'refund'); // again: a replay
  await resolve('O-LONG', 'book_missing', ['--merchant', m.merchantId]);
  await resolve(topUp.topUpId, 'book_missing');
  await resolve('O-HELD', 'hold');
  expect((await world.payments.getPayment(short.paymentId))!.status).toBe('reversed');
  expect((await world.payments.getPayment(status.paymentId))!.status).toBe('reversed');
  // The payer got back the two reversed payments and the top-up booked late.
  expect(await world.balance(payer.accounts.main)).toBe(new Money(walletBefore).plus('75.00').toFixed(2));
  expect(await world.balance(PLATFORM_SUSPENSE_ACCOUNT)).toBe('-40.00'); // only the held case
  expect((await world.clearing.listCases({})).map((c) => [c.merchantOrderNo, c.state])).toEqual([['O-HELD', 'held']]);

  // The next day's bill has the held payment: re-matched across the day, released from suspense.
  const next = await world.clearing.reconcile(
    'bank_sim',
    d1.date,
    bankSimBill(d1.date, [{ txn: 'C01', order: 'O-HELD', amount: '40.00' }]),
    'bank-sim-d1.txt',
  );
  expect([next.matched, next.discrepancies, next.classes.cross_day, next.rematched]).toEqual([0, 0, 1, 1]);
  expect(await world.balance(PLATFORM_SUSPENSE_ACCOUNT)).toBe('0.00');
  expect(await world.clearing.listCases({})).toEqual([]);

  // Clearing counts what the resolutions left: reversed payments out, the merchant's adjustments on their date.
  await world.clearing.clear(d.date);
  await world.clearing.clear(d1.date);
  const rows = await world.db.query<{ business_date: string; payment_amount: string; adjustment: string; net: string }>(
    `SELECT business_date::text, payment_amount::text, adjustment::text, net::text FROM cp_clearing_results
      WHERE merchant_id = $1 ORDER BY business_date`,
    [m.merchantId],
  );
  expect(rows).toEqual([
    { business_date: d.date, payment_amount: '200.00', adjustment: '0.00', net: '180.00' },
    { business_date: d1.date, payment_amount: '12.00', adjustment: '10.00', net: '22.00' },
  ]);
  expect(await world.balance(m.pending)).toBe('202.00');

  const early = await cli(['settle', '--date', dayOf(5).date]);
  expect([early.code, early.err.length]).toEqual([5, 1]);
  const usage = await cli(['reconcile', '--channel', 'nowhere', '--date', d.date, '--file', billFile]);
  expect(usage.code).toBe(2);
  expect(usage.err[0]).toMatch(/--channel/);
});
