import { randomBytes } from 'node:crypto';
import { ERROR_STATUS } from '../../api';
import type { CommandContext } from '../../core-ledger';
import { makeAccountId } from '../../core-ledger';
import type { ClientRegistration } from '../../security';
import { credentialOf, MERCHANT_BOUND_ROLES, MERCHANT_OBJECTS, ROLE_PERMISSIONS, signRequest } from '../../security';
import type { HttpAnswer, TestApi } from '../support/api-server';
import { httpAnswerOf, startTestApi } from '../support/api-server';

/**
 * Object-level authorization over real HTTP (OWASP API1): a merchant's signed credential reaches its own merchant,
 * payments, ledger accounts and transfers, and nothing of another merchant's. Another merchant's objects answer as
 * ones that do not exist; another merchant's path is forbidden.
 */

// Merchant ids are `M` + the pending account's number; a fresh database numbers area 0795 from 1.
const pendingOf = (sequence: number): string =>
  makeAccountId({ customerClass: '1', accountType: '1', areaCode: '0795', sequence });
const SHOP_ONE = `M${pendingOf(1)}`;
const SHOP_TWO = `M${pendingOf(2)}`;
const secret = randomBytes(32);
const clients: ClientRegistration[] = [
  {
    clientId: 'shop-one',
    role: 'merchant',
    method: 'hmac-sm3',
    secretHex: secret.toString('hex'),
    merchantId: SHOP_ONE,
  },
];
const context: CommandContext = { actor: 'e2e-setup', channel: 'api' };
let t: TestApi;
let shopOne: { merchantId: string; pendingAccount: string; settledAccount: string };
let shopTwo: { merchantId: string; pendingAccount: string };
let paidAtOne: string;
let paidAtTwo: string;
/** A transfer that touches none of shop one's accounts: the coupon's issuance to the shopper. */
let couponTransfer: string;
let nonces = 0;

async function asShopOne(method: 'GET' | 'POST', path: string, body?: unknown): Promise<HttpAnswer> {
  const text = body === undefined ? '' : JSON.stringify(body);
  const nonce = `scope${String(++nonces).padStart(11, '0')}${randomBytes(4).toString('hex')}`;
  const headers = signRequest(
    { clientId: 'shop-one', method: 'hmac-sm3', secret },
    { method, pathWithQuery: path, timestamp: String(t.clock.getTime()), nonce, body: Buffer.from(text) },
  );
  const response = await fetch(`${t.base}${path}`, {
    method,
    headers: {
      ...headers,
      ...(method === 'POST' ? { 'content-type': 'application/json', 'idempotency-key': `k-${nonce}` } : {}),
    },
    ...(method === 'POST' ? { body: text } : {}),
  });
  return httpAnswerOf(response);
}

function expectError(answer: HttpAnswer, code: keyof typeof ERROR_STATUS): void {
  expect({ status: answer.status, code: answer.body['code'] }).toEqual({ status: ERROR_STATUS[code], code });
}

beforeAll(async () => {
  t = await startTestApi('postgres', { auth: 'required', clients });
  const { payments, wallets } = t.services;
  const merchant = async (
    name: string,
  ): Promise<{ merchantId: string; pendingAccount: string; settledAccount: string }> => {
    const applied = await payments.applyMerchant(
      { name, category: 'food', feeRateBps: 60, settlementBankAccount: '6222020200112233445', areaCode: '0795' },
      t.clock,
    );
    return payments.reviewMerchant(applied.merchantId, 'approve', 'licence checked', context, t.clock);
  };
  shopOne = await merchant('Shop One');
  shopTwo = await merchant('Shop Two');
  expect([shopOne.merchantId, shopTwo.merchantId]).toEqual([SHOP_ONE, SHOP_TWO]);
  const wallet = await wallets.openWallet(
    { accountNumber: '13907950001', name: '张三', areaCode: '0794', customerClass: '2', purpose: 'general' },
    context,
    t.clock,
  );
  couponTransfer = (
    await payments.issueCoupon({ walletId: wallet.walletId, couponId: 'scope-1', amount: '50.00' }, context, t.clock)
  ).transferId;
  const pay = async (merchantId: string, orderId: string): Promise<string> =>
    (
      await payments.pay(
        { merchantId, orderId, walletId: wallet.walletId, amount: '5.00', tenders: { coupon: '5.00' } },
        context,
        t.clock,
      )
    ).paymentId;
  paidAtOne = await pay(SHOP_ONE, 'order-1');
  paidAtTwo = await pay(SHOP_TWO, 'order-2');
  await t.caughtUp();
}, 60_000);
afterAll(async () => {
  await t.close();
});

describe('a merchant credential reaches its own merchant only', () => {
  test('its payments: read and refunded; another merchant’s answer as not existing', async () => {
    expect((await asShopOne('GET', `/v1/payments/${paidAtOne}`)).body).toMatchObject({
      paymentId: paidAtOne,
      merchantId: SHOP_ONE,
    });
    const refunded = await asShopOne('POST', `/v1/payments/${paidAtOne}/refunds`, { refundId: 'r-1', amount: '1.00' });
    expect([refunded.status, refunded.body['amount']]).toEqual([201, '1.00']);

    const other = await asShopOne('GET', `/v1/payments/${paidAtTwo}`);
    const missing = await asShopOne('GET', '/v1/payments/no-such-payment');
    expectError(other, 'not_found');
    expect(other.body['message']).toBe(`payment ${paidAtTwo} does not exist`);
    expectError(missing, 'not_found');
    expectError(
      await asShopOne('POST', `/v1/payments/${paidAtTwo}/refunds`, { refundId: 'r-2', amount: '1.00' }),
      'not_found',
    );
    // Nothing was refunded at the other merchant.
    expect((await t.services.payments.getPayment(paidAtTwo))!.refunded).toBe('0.00');
  });

  test('its merchant paths: flows and webhook deliveries; another merchant’s are forbidden', async () => {
    const flows = await asShopOne('GET', `/v1/merchants/${SHOP_ONE}/flows?from=2026-11-01&to=2026-11-30`);
    expect([flows.status, flows.body['merchantId']]).toEqual([200, SHOP_ONE]);
    expect((await asShopOne('GET', `/v1/merchants/${SHOP_ONE}/webhook/deliveries`)).status).toBe(200);

    expectError(await asShopOne('GET', `/v1/merchants/${SHOP_TWO}/flows?from=2026-11-01&to=2026-11-30`), 'forbidden');
    expectError(await asShopOne('GET', `/v1/merchants/${SHOP_TWO}/webhook/deliveries`), 'forbidden');
    expectError(
      await asShopOne('POST', `/v1/merchants/${SHOP_TWO}/webhook`, {
        url: 'https://evil.example/hook',
        secret: 'x'.repeat(32),
      }),
      'forbidden',
    );
    expectError(await asShopOne('POST', `/v1/merchants/${SHOP_TWO}/webhook/replay`, { fromSeq: 1 }), 'forbidden');
  });

  test('its ledger accounts and their transfers; another merchant’s answer as not existing', async () => {
    const balance = await asShopOne('GET', `/v1/accounts/${shopOne.pendingAccount}/balance`);
    expect(balance.status).toBe(200);
    expect((await asShopOne('GET', `/v1/accounts/${shopOne.settledAccount}`)).status).toBe(200);
    const statement = await asShopOne('GET', `/v1/accounts/${shopOne.pendingAccount}/statement`);
    expect(statement.status).toBe(200);
    const lines = statement.body['lines'] as { transferId: string }[];
    expect(lines.length).toBeGreaterThan(0);
    expect((await asShopOne('GET', `/v1/transfers/${lines[0]!.transferId}`)).status).toBe(200);

    expectError(await asShopOne('GET', `/v1/accounts/${shopTwo.pendingAccount}/balance`), 'account_not_found');
    expectError(await asShopOne('GET', `/v1/accounts/${shopTwo.pendingAccount}`), 'account_not_found');
    expectError(await asShopOne('GET', `/v1/accounts/${shopTwo.pendingAccount}/statement`), 'account_not_found');
    expect((await t.ledger.getTransfer(couponTransfer))?.postings.length).toBeGreaterThan(0);
    expectError(await asShopOne('GET', `/v1/transfers/${couponTransfer}`), 'transfer_not_found');
    expectError(await asShopOne('GET', '/v1/transfers/no-such-transfer'), 'transfer_not_found');
  });
});

describe('a merchant client registration', () => {
  test('names the merchant it acts for; other roles may not name one', () => {
    const base = { clientId: 'c', method: 'hmac-sm3' as const, secretHex: secret.toString('hex') };
    expect(() => credentialOf({ ...base, role: 'merchant' })).toThrow(/names the merchant/);
    expect(() => credentialOf({ ...base, role: 'partner', merchantId: SHOP_ONE })).toThrow(/merchant clients only/);
    expect(() => credentialOf({ ...base, role: 'merchant', merchantId: 'M 1' })).toThrow(/merchantId must be/);
    expect(credentialOf({ ...base, role: 'merchant', merchantId: SHOP_ONE }).merchantId).toBe(SHOP_ONE);
  });
});

test('every operation a merchant-bound role is granted says which of its objects it names', () => {
  for (const role of MERCHANT_BOUND_ROLES)
    for (const operationId of ROLE_PERMISSIONS[role])
      expect([role, operationId, MERCHANT_OBJECTS[operationId] !== undefined]).toEqual([role, operationId, true]);
});
