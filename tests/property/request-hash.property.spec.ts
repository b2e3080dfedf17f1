import fc from 'fast-check';
import type { LedgerCommand } from '../../core-ledger';
import { Money, requestHashOf } from '../../core-ledger';

/** An idempotency key is bound to the request's content: amounts equal as numbers are the same request. */

const digits = (min: number, max: number): fc.Arbitrary<string> =>
  fc.array(fc.constantFrom(...'0123456789'), { minLength: min, maxLength: max }).map((d) => d.join(''));

/** Decimal texts in every shape a client may send: signs, leading and trailing zeros, long digit runs, odd forms. */
const amountText: fc.Arbitrary<string> = fc.oneof(
  fc
    .tuple(fc.boolean(), digits(1, 34), fc.option(digits(0, 34), { nil: undefined }))
    .map(
      ([negative, whole, fraction]) => `${negative ? '-' : ''}${whole}${fraction === undefined ? '' : `.${fraction}`}`,
    ),
  fc.constantFrom(
    '0',
    '-0',
    '-0.00',
    '00.10',
    '10.',
    '.5',
    '1e3',
    '1E-2',
    '+5',
    ' 5',
    '5 ',
    '',
    '-',
    'NaN',
    'Infinity',
  ),
  fc.string({ maxLength: 12 }),
);

function transfer(amount: string): LedgerCommand {
  return {
    type: 'PostTransfer',
    transferId: '0f6b1a9e-2a57-5c61-9d2e-0b5c6f1e2d3a',
    idempotencyKey: 'key-1',
    transferType: 'payment',
    postings: [
      { accountId: 'A', direction: 'debit', amount },
      { accountId: 'B', direction: 'credit', amount },
    ],
    businessDate: '2026-12-07',
    at: '2026-12-07T00:00:00.000Z',
  } as LedgerCommand;
}

function asMoney(text: string): InstanceType<typeof Money> | undefined {
  try {
    return new Money(text);
  } catch {
    return undefined;
  }
}

describe('request hash', () => {
  test('an amount and its canonical decimal text hash alike; amounts of different value do not', () => {
    fc.assert(
      fc.property(amountText, amountText, (a, b) => {
        const ma = asMoney(a);
        const mb = asMoney(b);
        if (ma !== undefined) expect(requestHashOf(transfer(a))).toBe(requestHashOf(transfer(ma.toString())));
        if (ma?.isFinite() === true && mb?.isFinite() === true)
          expect(requestHashOf(transfer(a)) === requestHashOf(transfer(b))).toBe(ma.eq(mb));
        if ((ma === undefined) !== (mb === undefined))
          expect(requestHashOf(transfer(a))).not.toBe(requestHashOf(transfer(b)));
      }),
      { numRuns: 3_000 },
    );
  });

  test('hashes stored with past transfers stay the same (vectors from the code before canonical JSON was merged)', () => {
    const commands = [
      {
        type: 'AuthorizeTransfer',
        transferId: '0f6b1a9e-2a57-5c61-9d2e-0b5c6f1e2d3a',
        idempotencyKey: 'payment:p-1:wallet',
        transferType: 'payment',
        debitAccountId: 'W-1',
        creditAccountId: 'M-1',
        amount: '12.50',
        expiresAt: '2026-12-07T00:15:00.000Z',
        reference: 'order-1',
        businessDate: '2026-12-07',
        at: '2026-12-07T00:00:00.000Z',
      },
      { type: 'OpenAccount', accountId: 'W-1', kind: 'user_main', ownerId: '用户-1', at: '2026-12-07T00:00:00.000Z' },
      transfer('10.0'),
    ] as LedgerCommand[];
    expect(commands.map(requestHashOf)).toEqual([
      '16a98b606011b9b32d14dbacecb348e04e71c0a51d3b5b048192aa9369e1e58c',
      '7f1c5daa740dc754a0fa86b0ca4dbb07161bac6c094ee061d36b9ec6259f0b39',
      requestHashOf(transfer('10')),
    ]);
  });
});
