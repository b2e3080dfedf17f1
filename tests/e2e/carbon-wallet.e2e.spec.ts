import { ERROR_STATUS } from '../../api';
import type { HttpAnswer, TestApi } from '../support/api-server';
import { startTestApi } from '../support/api-server';

/** #7 and #8 over real HTTP against PostgreSQL: wallet → top-up callback → carbon credits → mixed payment → refunds. */
let t: TestApi;
let keys = 0;
const key = (): string => `e2e-${++keys}`;

function expectError(answer: HttpAnswer, code: keyof typeof ERROR_STATUS): void {
  expect({ status: answer.status, code: answer.body['code'] }).toEqual({ status: ERROR_STATUS[code], code });
}

beforeAll(async () => {
  t = await startTestApi('postgres');
});
afterAll(async () => {
  await t.close();
});

async function openWallet(
  accountNumber: string,
  extra: Record<string, unknown> = {},
): Promise<Record<string, unknown>> {
  const answer = await t.post(
    '/v1/wallets',
    { accountNumber, name: '张三', areaCode: '0794', customerClass: '2', purpose: 'general', ...extra },
    key(),
  );
  expect(answer.status).toBe(201);
  return answer.body;
}

async function activeMerchant(category: string): Promise<string> {
  const applied = await t.post(
    '/v1/merchants',
    { name: 'Green Mall', category, feeRateBps: 60, settlementBankAccount: '6222020200112233445', areaCode: '0794' },
    key(),
  );
  expect(applied.body).toMatchObject({ status: 'applied' });
  const merchantId = applied.body['merchantId'] as string;
  const refusedPay = await t.post(
    '/v1/payments',
    { merchantId, orderId: 'too-early', walletId: 'nobody', amount: '1.00', tenders: { wallet: '1.00' } },
    key(),
  );
  expectError(refusedPay, 'merchant_not_active');
  const reviewed = await t.post(
    `/v1/merchants/${merchantId}/review`,
    { decision: 'approve', reason: 'licence checked' },
    key(),
  );
  expect(reviewed.body).toMatchObject({ status: 'active', reviewReason: 'licence checked' });
  return merchantId;
}

test('open a wallet → top up (callback) → earn credits → pay with a mix → refund part twice → beyond paid is refused', async () => {
  const wallet = await openWallet('13907941234');
  const walletId = wallet['walletId'] as string;
  const accounts = wallet['accounts'] as Record<string, string>;
  expect(accounts['points']).toMatch(/^8624794\d{9}$/);

  const topUp = await t.post(`/v1/wallets/${walletId}/top-ups`, { amount: '100.00', channel: 'bank_sim' }, key());
  expect(topUp.status).toBe(202);
  const topUpId = topUp.body['topUpId'] as string;
  for (let i = 0; i < 3; i++) {
    const callback = await t.post(
      `/v1/top-ups/${topUpId}/callback`,
      { result: 'success', channelTradeNo: 'BANKSIM-1' },
      key(),
    );
    expect(callback.body).toMatchObject({ status: 'confirmed' });
  }
  expect((await t.get(`/v1/accounts/${accounts['main']!}/balance`)).body).toMatchObject({ balance: '100.00' });

  const start = new Date(t.clock.getTime() - 3 * 3_600_000);
  const batch = await t.post(
    '/v1/carbon/behaviours',
    {
      batchId: 'batch-1',
      records: [
        {
          externalId: 'bike-1',
          accountNumber: '13907941234',
          behaviour: 'shared_bike',
          quantity: '3.5',
          unit: 'km',
          startAt: start.toISOString(),
          endAt: new Date(start.getTime() + 20 * 60_000).toISOString(),
          evidence: { kind: 'trip_log', digest: 'ab'.repeat(32) },
        },
        {
          externalId: 'bike-2',
          accountNumber: '13907941234',
          behaviour: 'shared_bike',
          quantity: '2',
          unit: 'km',
          startAt: new Date(start.getTime() + 10 * 60_000).toISOString(),
          endAt: new Date(start.getTime() + 30 * 60_000).toISOString(),
        },
      ],
    },
    key(),
  );
  expect(batch.status).toBe(200);
  expect(batch.body).toMatchObject({ accepted: 1, duplicates: 1, rejected: 0 });
  const credited = (batch.body['records'] as Record<string, string>[])[0]!;
  expect(credited).toMatchObject({ status: 'accepted', creditStatus: 'credited' });
  const credits = credited['credits']!;

  const carbonAccount = await t.get('/v1/carbon/accounts/13907941234');
  expect(carbonAccount.body).toMatchObject({ totalGrams: credited['grams'], creditBalance: credits, records: 1 });
  const stats = await t.get(`/v1/carbon/stats?from=2026-11-01&to=2026-11-30&groupBy=behaviour,day`);
  expect(stats.body['rows']).toEqual([
    expect.objectContaining({ behaviour: 'shared_bike', grams: credited['grams'], records: 1 }),
  ]);
  const methodologies = await t.get('/v1/carbon/methodologies');
  expect((methodologies.body['methodologies'] as unknown[]).length).toBeGreaterThanOrEqual(10);

  const merchantId = await activeMerchant('green_mall');
  const coupon = await t.post(`/v1/wallets/${walletId}/coupons`, { couponId: 'welcome', amount: '5.00' }, key());
  expect(coupon.status).toBe(201);

  // 30.00 = 24.00 wallet + 5.00 coupon + 100 credits × 0.01
  const payBody = {
    merchantId,
    orderId: 'order-1',
    walletId,
    amount: '30.00',
    tenders: { wallet: '24.00', coupon: '5.00', credits: '100.00' },
  };
  const payKey = key();
  const paid = await t.post('/v1/payments', payBody, payKey);
  expect(paid.status).toBe(201);
  expect(paid.body).toMatchObject({ status: 'captured', fee: '0.18', merchantNet: '29.82' });
  const replay = await t.post('/v1/payments', payBody, payKey);
  expect(replay.headers.get('idempotent-replayed')).toBe('true');
  const paymentId = paid.body['paymentId'] as string;
  expect((await t.get(`/v1/accounts/${accounts['main']!}/balance`)).body).toMatchObject({ balance: '76.00' });

  const first = await t.post(`/v1/payments/${paymentId}/refunds`, { refundId: 'r1', amount: '10.00' }, key());
  expect(first.body).toMatchObject({ wallet: '10.00', coupon: '0.00', credits: '0.00' });
  const second = await t.post(`/v1/payments/${paymentId}/refunds`, { refundId: 'r2', amount: '19.50' }, key());
  expect(second.body).toMatchObject({ wallet: '14.00', coupon: '5.00', credits: '50.00' });
  const beyond = await t.post(`/v1/payments/${paymentId}/refunds`, { refundId: 'r3', amount: '0.51' }, key());
  expectError(beyond, 'refund_exceeds_paid');
  expect((await t.get(`/v1/payments/${paymentId}`)).body).toMatchObject({ refunded: '29.50', status: 'captured' });
  expect((await t.get(`/v1/accounts/${accounts['main']!}/balance`)).body).toMatchObject({ balance: '100.00' });
});

test('refusals at the door: earmarked category, password lock-out, bad tenders, unknown wallet', async () => {
  const grocery = await activeMerchant('grocery');
  const earmarked = await openWallet('13907940002', { purpose: 'earmarked', allowedCategories: ['public_transport'] });
  const earmarkedId = earmarked['walletId'] as string;
  const refused = await t.post(
    '/v1/payments',
    { merchantId: grocery, orderId: 'e-1', walletId: earmarkedId, amount: '1.00', tenders: { wallet: '1.00' } },
    key(),
  );
  expectError(refused, 'category_not_allowed');

  const wallet = await openWallet('13907940003');
  const walletId = wallet['walletId'] as string;
  expect((await t.post(`/v1/wallets/${walletId}/payment-password`, { password: '246810' }, key())).status).toBe(200);
  const attempt = (n: number): Promise<HttpAnswer> =>
    t.post(
      '/v1/payments',
      {
        merchantId: grocery,
        orderId: `pw-${n}`,
        walletId,
        amount: '1.00',
        tenders: { wallet: '1.00' },
        paymentPassword: '111111',
      },
      key(),
    );
  for (let i = 0; i < 4; i++) expectError(await attempt(i), 'payment_password_wrong');
  expectError(await attempt(4), 'payment_password_locked');

  const mismatch = await t.post(
    '/v1/payments',
    { merchantId: grocery, orderId: 'm-1', walletId, amount: '2.00', tenders: { wallet: '1.00' } },
    key(),
  );
  expectError(mismatch, 'validation_failed');
  expectError(await t.get('/v1/carbon/accounts/13000000009'), 'not_found');
  const group = await t.post(
    '/v1/wallets/group',
    {
      customers: [
        { accountNumber: '13907940010', name: 'A', areaCode: '0794', customerClass: '1', purpose: 'general' },
        {
          accountNumber: '13907940002',
          name: 'Not the owner',
          areaCode: '0794',
          customerClass: '2',
          purpose: 'general',
        },
      ],
    },
    key(),
  );
  expect((group.body['results'] as { status: string }[]).map((r) => r.status)).toEqual(['opened', 'refused']);
});

test('bank cards bind masked, merchant flows add up, a closing wallet pays out first', async () => {
  const merchantId = await activeMerchant('green_mall');
  const wallet = await openWallet('13907940020');
  const walletId = wallet['walletId'] as string;
  expect(wallet['accountNumber']).toBe('1*****20');
  expect(wallet['cardNumber']).toMatch(/^860079\*{5}\d{4}$/);

  const bound = await t.post(
    `/v1/wallets/${walletId}/bank-cards`,
    { bankCode: 'ICBC', cardNumber: '6222020200112233446' },
    key(),
  );
  expect(bound.status).toBe(201);
  expect(bound.body).toMatchObject({ bankCode: 'ICBC', cardNumber: '622202*****3446', status: 'bound' });
  expectError(
    await t.post(`/v1/wallets/${walletId}/bank-cards`, { bankCode: 'ICBC', cardNumber: '6222020200112233447' }, key()),
    'validation_failed',
  );
  const shown = await t.get(`/v1/wallets/${walletId}`);
  expect(JSON.stringify(shown.body)).not.toContain('6222020200112233446');
  expect(JSON.stringify(shown.body)).not.toContain('13907940020');

  const topUp = await t.post(`/v1/wallets/${walletId}/top-ups`, { amount: '50.00', channel: 'bank_sim' }, key());
  await t.post(
    `/v1/top-ups/${topUp.body['topUpId'] as string}/callback`,
    { result: 'success', channelTradeNo: 'BANKSIM-9' },
    key(),
  );
  const paid = await t.post(
    '/v1/payments',
    { merchantId, orderId: 'flow-1', walletId, amount: '20.00', tenders: { wallet: '20.00' } },
    key(),
  );
  await t.post(`/v1/payments/${paid.body['paymentId'] as string}/refunds`, { refundId: 'f1', amount: '5.00' }, key());
  const flows = await t.get(`/v1/merchants/${merchantId}/flows?from=2026-11-01&to=2026-11-30`);
  expect(flows.status).toBe(200);
  expect(flows.body['totals']).toEqual({
    payments: 1,
    gross: '20.00',
    fees: '0.12',
    refunds: 1,
    refunded: '5.00',
    net: '14.88',
  });
  expect((flows.body['entries'] as { kind: string }[]).map((e) => e.kind)).toEqual(['payment', 'refund']);

  const cardId = bound.body['cardId'] as string;
  const closed = await t.post(`/v1/wallets/${walletId}/close`, { cardId }, key());
  expect(closed.body).toEqual({ walletId, status: 'closed', paidOut: '35.00' });
  const accounts = wallet['accounts'] as Record<string, string>;
  expect((await t.get(`/v1/accounts/${accounts['main']!}`)).body).toMatchObject({ status: 'closed' });
  expectError(
    await t.post(
      '/v1/payments',
      { merchantId, orderId: 'flow-2', walletId, amount: '1.00', tenders: { wallet: '1.00' } },
      key(),
    ),
    'wallet_not_open',
  );
});

test('CRM batch: good, duplicate and malformed records each answered on their own; nothing half-applied', async () => {
  const wallet = await openWallet('13907940030');
  const accounts = wallet['accounts'] as Record<string, string>;
  const batch = {
    records: [
      { recordId: 'crm-1', action: 'suspend', accountNumber: '13907940030', reason: 'customer request' },
      {
        recordId: 'crm-2',
        action: 'open',
        accountNumber: '13907940031',
        name: '钱七',
        areaCode: '0794',
        customerClass: '2',
      },
      { recordId: 'crm-1', action: 'suspend', accountNumber: '13907940030', reason: 'customer request' },
      { recordId: 'crm-3', action: 'teleport', accountNumber: '13907940030' },
      { recordId: 'crm-4', action: 'report_loss', accountNumber: '13907940030' },
      'not a record',
      { recordId: 'crm-5', action: 'resume', accountNumber: '13900000000', reason: 'unknown customer' },
      { recordId: 'crm-1', action: 'resume', accountNumber: '13907940030', reason: 'same id, other content' },
    ],
  };
  const answer = await t.post('/v1/crm/records', batch, key());
  expect(answer.status).toBe(200);
  const results = answer.body['results'] as { recordId: string; status: string; code?: string }[];
  expect(results.map((r) => [r.recordId, r.status, r.code ?? null])).toEqual([
    ['crm-1', 'applied', null],
    ['crm-2', 'applied', null],
    ['crm-1', 'duplicate', null],
    ['crm-3', 'rejected', 'validation_failed'],
    ['crm-4', 'rejected', 'validation_failed'],
    ['#5', 'rejected', 'validation_failed'],
    ['crm-5', 'rejected', 'not_found'],
    ['crm-1', 'rejected', 'idempotency_conflict'],
  ]);
  // The suspension applied to every sub-account, not some.
  for (const id of Object.values(accounts))
    expect((await t.get(`/v1/accounts/${id}`)).body).toMatchObject({ status: 'frozen' });
  // The whole batch again: every record answered as before, nothing applied twice.
  const again = await t.post('/v1/crm/records', { records: batch.records.slice(0, 2) }, key());
  expect((again.body['results'] as { status: string }[]).map((r) => r.status)).toEqual(['duplicate', 'duplicate']);
});
