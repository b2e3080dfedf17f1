import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  parseBankPaymentFixedWidth,
  RunBusyError,
  RunPreconditionError,
  settlementIdOf,
  sm3Hex,
  verifySm3Manifest,
} from '../../clearing';
import { paymentTransferIds } from '../../services';
import type { ClearingWorld } from './clearing-fixture';
import { dayOf, startClearingWorld, transfersOfType } from './clearing-fixture';

/** Clearing (清分) and settlement (结算) over real PostgreSQL, the ledger and the payment service. */

jest.setTimeout(120_000);

let world: ClearingWorld;
beforeAll(async () => {
  world = await startClearingWorld('clr_settle');
});
afterAll(async () => {
  await world.close();
});

function filesOf(directory: string): Map<string, Buffer> {
  return new Map(readdirSync(directory).map((name) => [name, readFileSync(join(directory, name))]));
}

function manifestHolds(directory: string): boolean {
  const files = filesOf(directory);
  const manifest = files.get('MANIFEST.sm3')!;
  files.delete('MANIFEST.sm3');
  return verifySm3Manifest(
    manifest,
    [...files].map(([name, bytes]) => ({ name, bytes })),
  ).ok;
}

test('a day is cleared per merchant, settled once, marked settled; reruns give the same bytes and post nothing', async () => {
  const d = dayOf(0);
  const a = await world.merchant('Alpha Shop', 60);
  const b = await world.merchant('Beta Shop', 100);
  const payer = await world.fundedWallet('5000.00');
  const p1 = await world.pay(a.merchantId, payer, 'A-1', '100.00', d.at);
  const p2 = await world.pay(a.merchantId, payer, 'A-2', '50.55', d.at);
  const p3 = await world.pay(b.merchantId, payer, 'B-1', '30.00', d.at);
  await world.refund(p1.paymentId, 'r1', '20.00', d.at);

  const cleared = await world.clearing.clear(d.date);
  expect([cleared.merchants, cleared.paymentCount, cleared.refundCount, cleared.replayed]).toEqual([2, 3, 1, false]);
  const rows = await world.db.query<Record<string, string>>(
    `SELECT merchant_id, payment_amount::text, refund_amount::text, fee::text, net::text, payout::text
       FROM cp_clearing_results WHERE business_date = $1 ORDER BY merchant_id`,
    [d.date],
  );
  // A: 150.55 − 20.00 − (0.60 + 0.30) = 129.65 (fee 0.6 % per payment, half-up: 0.3033 → 0.30); B: 30 − 0.30.
  const byMerchant = new Map(rows.map((r) => [r['merchant_id'], r]));
  expect(byMerchant.get(a.merchantId)).toMatchObject({
    payment_amount: '150.55',
    refund_amount: '20.00',
    fee: '0.90',
    net: '129.65',
  });
  expect(byMerchant.get(b.merchantId)).toMatchObject({
    payment_amount: '30.00',
    fee: '0.30',
    net: '29.70',
    payout: '29.70',
  });
  const report = readFileSync(join(cleared.directory, `clearing-report-${d.date}.csv`), 'utf8');
  expect(report).toContain(`${d.date},${a.merchantId},2,150.55,1,20.00,0.90,0.00,0.00,129.65,129.65,0.00`);
  expect(report.trim().split('\n').at(-1)).toBe('TOTAL,,3,180.55,1,20.00,1.20,0.00,0.00,159.35,159.35,0.00');
  expect(manifestHolds(cleared.directory)).toBe(true);
  const clearingBytes = filesOf(cleared.directory);

  const again = await world.clearing.clear(d.date);
  expect(again.replayed).toBe(true);
  expect(filesOf(again.directory)).toEqual(clearingBytes);

  const settled = await world.clearing.settle(d.date);
  expect([settled.settled, settled.settledAmount, settled.held]).toEqual([2, '159.35', []]);
  // Per payment one transfer (a single cash tender pays gross, net and fee at once); plus the refund: 3 + 1.
  expect(settled.transfersMarked).toBe(4);
  expect(await world.balance(a.settled)).toBe('129.65');
  expect(await world.balance(a.pending)).toBe('0.00');
  expect(await world.balance(b.settled)).toBe('29.70');
  for (const payment of [p1, p2]) {
    for (const transferId of paymentTransferIds(payment))
      expect((await world.ledger.getTransfer(transferId))?.settlementId).toBe(settlementIdOf(d.date, a.merchantId));
  }
  expect((await world.ledger.getTransfer(paymentTransferIds(p3)[0]!))?.settlementId).toBe(
    settlementIdOf(d.date, b.merchantId),
  );
  // A settled transfer can no longer be reversed: the ledger refuses.
  const reversal = await world.ledger.execute({
    type: 'ReverseTransfer',
    transferId: paymentTransferIds(p3)[0]!,
    reversalTransferId: '00000000-0000-4000-8000-000000000001',
    idempotencyKey: 'late-reversal',
    reason: 'too late',
    businessDate: d.date,
    at: d.at.toISOString(),
  });
  expect(reversal.status === 'refused' && reversal.refusal.code).toBe('already_settled');

  const files = filesOf(settled.directory);
  const fixed = parseBankPaymentFixedWidth(files.get(`bank-payment-${d.date}-001.txt`)!);
  expect(fixed.ok).toBe(true);
  if (fixed.ok) {
    expect(fixed.batch.valueDate).toBe(dayOf(1).date);
    expect(fixed.batch.lines.map((l) => [l.payeeName, l.amount]).sort()).toEqual([
      ['Alpha Shop', '129.65'],
      ['Beta Shop', '29.70'],
    ]);
  }
  expect(files.get(`bank-payment-${d.date}-001.csv`)!.toString('utf8')).toContain(',Beta Shop,999999999999,29.70,CNY,');
  expect(manifestHolds(settled.directory)).toBe(true);

  const settlementsBefore = await transfersOfType(world.db, 'settlement');
  const rerun = await world.clearing.settle(d.date);
  expect(rerun.replayed).toBe(true);
  expect(filesOf(rerun.directory)).toEqual(files);
  expect(await transfersOfType(world.db, 'settlement')).toBe(settlementsBefore);
  expect(await world.balance(a.settled)).toBe('129.65');
});

test('killed during settlement (a fault after the first transfer): the rerun completes, every payout exactly once', async () => {
  const d = dayOf(1);
  const merchants = await Promise.all(['K1', 'K2', 'K3', 'K4'].map((name) => world.merchant(name, 0)));
  const payer = await world.fundedWallet('1000.00');
  for (const [i, m] of merchants.entries()) await world.pay(m.merchantId, payer, `K-${i}`, `${10 * (i + 1)}.00`, d.at);
  await world.clearing.clear(d.date);

  let posted = 0;
  world.clearing.hooks.faultAt = (point) => {
    if (point === 'settlement_transfer_posted' && ++posted === 2) throw new Error('injected: killed mid-settlement');
  };
  await expect(world.clearing.settle(d.date)).rejects.toThrow('injected');
  world.clearing.hooks.faultAt = undefined;
  const failed = await world.clearing.run('settlement', '*', d.date);
  expect([failed?.status, failed?.phase]).toEqual(['failed', 'lines']);
  const states = await world.db.query<{ state: string }>(
    'SELECT state FROM cp_settlement_lines WHERE business_date = $1',
    [d.date],
  );
  expect(states.some((s) => s.state !== 'marked')).toBe(true);

  const before = await transfersOfType(world.db, 'settlement');
  const resumed = await world.clearing.settle(d.date);
  expect([resumed.settled, resumed.settledAmount, resumed.replayed]).toEqual([4, '100.00', false]);
  expect(await transfersOfType(world.db, 'settlement')).toBe(before + 4 - posted);
  for (const [i, m] of merchants.entries()) expect(await world.balance(m.settled)).toBe(`${10 * (i + 1)}.00`);
  expect((await world.clearing.run('settlement', '*', d.date))?.attempts).toBe(2);
});

test('one run per step and date: a second run while the first holds the lock is refused as busy', async () => {
  const d = dayOf(2);
  const m = await world.merchant('Lock Shop', 0);
  await world.pay(m.merchantId, await world.fundedWallet('100.00'), 'L-1', '10.00', d.at);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let entered!: () => void;
  const inside = new Promise<void>((resolve) => (entered = resolve));
  world.clearing.hooks.progress = async () => {
    entered();
    await gate;
  };
  const first = world.clearing.clear(d.date);
  await inside;
  world.clearing.hooks.progress = undefined;
  await expect(world.clearing.clear(d.date)).rejects.toBeInstanceOf(RunBusyError);
  release();
  expect((await first).merchants).toBe(1);
  expect((await world.clearing.clear(d.date)).replayed).toBe(true);
});

test('preconditions: settling an uncleared date and clearing before a cleared later date are refused', async () => {
  await expect(world.clearing.settle(dayOf(9).date)).rejects.toBeInstanceOf(RunPreconditionError);
  await expect(world.clearing.clear(dayOf(-1).date)).rejects.toThrow(/cleared in order/);
});

test('a negative net is carried forward into the next date and netted there', async () => {
  const [d3, d4, d5] = [dayOf(3), dayOf(4), dayOf(5)];
  const m = await world.merchant('Carry Shop', 0);
  const payer = await world.fundedWallet('500.00');
  const big = await world.pay(m.merchantId, payer, 'C-1', '80.00', d3.at);
  await world.pay(m.merchantId, payer, 'C-2', '10.00', d4.at);
  // Refunded on day 4 out of funds day 3 left unsettled: day 4 nets 10 − 80 = −70.
  await world.refund(big.paymentId, 'c1', '80.00', d4.at);
  await world.pay(m.merchantId, payer, 'C-3', '100.00', d5.at);
  await world.clearing.clear(d3.date);
  await world.clearing.clear(d4.date);
  await world.clearing.clear(d5.date);
  const rows = await world.db.query<{
    business_date: string;
    carried_in: string;
    net: string;
    payout: string;
    carried_out: string;
  }>(
    `SELECT business_date::text, carried_in::text, net::text, payout::text, carried_out::text
       FROM cp_clearing_results WHERE merchant_id = $1 ORDER BY business_date`,
    [m.merchantId],
  );
  expect(rows).toEqual([
    { business_date: d3.date, carried_in: '0.00', net: '80.00', payout: '80.00', carried_out: '0.00' },
    { business_date: d4.date, carried_in: '0.00', net: '-70.00', payout: '0.00', carried_out: '-70.00' },
    { business_date: d5.date, carried_in: '-70.00', net: '30.00', payout: '30.00', carried_out: '0.00' },
  ]);
  const report = readFileSync(join(world.outputDir, d4.date, 'clearing', `clearing-report-${d4.date}.csv`), 'utf8');
  expect(report).toContain(`${d4.date},${m.merchantId},1,10.00,1,80.00,0.00,0.00,0.00,-70.00,0.00,-70.00`);
  // Nothing settled yet: the pending account holds 80 − 70 + 100 = 110 = day 3's payout plus day 5's after netting.
  expect(await world.balance(m.pending)).toBe('110.00');
  expect(sm3Hex(Buffer.from(report))).toMatch(/^[0-9a-f]{64}$/);
});
