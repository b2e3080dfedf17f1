import fc from 'fast-check';
import type { Amount } from '../../core-ledger';
import { Money } from '../../core-ledger';
import type { ClearingWorld } from '../int/clearing-fixture';
import { dayOf, startClearingWorld } from '../int/clearing-fixture';
import { paymentTransferIds } from '../../services';

/**
 * Property, over real PostgreSQL, the ledger and the payment service: for any merchants, payments (any fee rate,
 * amounts in whole fen) and refunds of a day, after clearing and settlement, per merchant and date
 *
 *   settled + fees = Σ payments − Σ refunds
 *
 * where `settled` is what the merchant's settled account received (ledger), `fees` what its fee transfers moved
 * (ledger), and the right side comes from the generated inputs — three independent sources.
 */

jest.setTimeout(180_000);

let world: ClearingWorld;
beforeAll(async () => {
  world = await startClearingWorld('clr_prop');
});
afterAll(async () => {
  await world.close();
});

const fen = (n: number): string => new Money(n).div(100).toFixed(2);

const merchantArb = fc.record({
  feeRateBps: fc.integer({ min: 0, max: 300 }),
  payments: fc.array(
    fc.record({
      amountFen: fc.integer({ min: 1, max: 500_00 }),
      // Part of the payment refunded the same day, as a fraction in per mille of what the merchant may still give.
      refundPermille: fc.option(fc.integer({ min: 1, max: 1000 }), { nil: undefined }),
    }),
    { minLength: 1, maxLength: 4 },
  ),
});

let run = 0;
test('per merchant and date: settled + fees = payments − refunds', async () => {
  const payer = await world.fundedWallet('1000000.00');
  await fc.assert(
    fc.asyncProperty(fc.array(merchantArb, { minLength: 1, maxLength: 3 }), async (merchants) => {
      run += 1;
      const day = dayOf(run);
      const expected: { settled: string; merchantId: string; paymentIds: string[]; net: Amount }[] = [];
      for (const [i, spec] of merchants.entries()) {
        const m = await world.merchant(`Prop ${run}-${i}`, spec.feeRateBps);
        let net = new Money(0);
        const paymentIds: string[] = [];
        for (const [j, p] of spec.payments.entries()) {
          const view = await world.pay(m.merchantId, payer, `P${run}-${i}-${j}`, fen(p.amountFen), day.at);
          paymentIds.push(view.paymentId);
          net = net.plus(view.amount);
          if (p.refundPermille !== undefined) {
            // At most what the merchant still holds of this payment (the fee is not returned).
            const room = new Money(view.amount).minus(view.fee);
            const refund = room.mul(p.refundPermille).div(1000).toDecimalPlaces(2, Money.ROUND_DOWN);
            if (refund.gt(0)) {
              await world.refund(view.paymentId, 'r', refund.toFixed(2), day.at);
              net = net.minus(refund);
            }
          }
        }
        expected.push({ settled: m.settled, merchantId: m.merchantId, paymentIds, net });
      }
      await world.clearing.clear(day.date);
      const settlement = await world.clearing.settle(day.date);
      expect(settlement.held).toEqual([]);
      for (const e of expected) {
        const settled = new Money(await world.balance(e.settled));
        let fees = new Money(0);
        for (const paymentId of e.paymentIds) {
          const view = (await world.payments.getPayment(paymentId))!;
          for (const transferId of paymentTransferIds(view)) {
            for (const line of (await world.ledger.getTransfer(transferId))!.postings)
              if (line.accountId === 'PLATFORM-FEE-INCOME-CNY' && line.direction === 'credit')
                fees = fees.plus(line.amount);
          }
        }
        expect(settled.plus(fees).toFixed(2)).toBe(e.net.toFixed(2));
      }
    }),
    { numRuns: 8, seed: Number(process.env['FC_SEED'] ?? 20261123) },
  );
});
