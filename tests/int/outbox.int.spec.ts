import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CommandContext, EventStore } from '../../core-ledger';
import { Ledger, openPostgresEventStore } from '../../core-ledger';
import { PostgresReadModels } from '../../projections';
import {
  BankChannelSimulator,
  Outbox,
  OutboxDispatcher,
  PaymentService,
  PLAINTEXT,
  SmsSimulator,
  smsTransport,
  WalletService,
  webhookTransport,
} from '../../services';
import { createTestDatabase } from '../support/databases';
import { openPlatformAccounts } from '../support/ledger-fixtures';

/** The outbox (#13): written with the fact, delivered at least once, in order per receiver, signed. */

const CONTEXT: CommandContext = { actor: 'outbox-test', channel: 'api' };
const SECRET = 'whsec-0123456789abcdef';
let clock = new Date('2026-11-23T04:00:00.000Z');
const now = (): Date => clock;

let drop: () => Promise<void>;
let store: EventStore;
let database: PostgresReadModels;
let ledger: Ledger;
let wallets: WalletService;
let payments: PaymentService;
let outbox: Outbox;
let dispatcher: OutboxDispatcher;
let bank: BankChannelSimulator;
const sms = new SmsSimulator();
let receiver: http.Server;
let receiverUp = true;
const received: { id: string; type: string; body: string; timestamp: string; signature: string }[] = [];

beforeAll(async () => {
  const db = await createTestDatabase('outbox');
  drop = db.drop;
  store = await openPostgresEventStore({ connectionString: db.url, maxConnections: 8 });
  database = new PostgresReadModels(db.url, 10);
  ledger = new Ledger(store);
  await openPlatformAccounts(ledger);
  wallets = new WalletService(database, ledger, PLAINTEXT, Buffer.alloc(32, 3));
  payments = new PaymentService(database, ledger, wallets, PLAINTEXT);
  outbox = new Outbox(database, PLAINTEXT);
  await wallets.install();
  await payments.install();
  await outbox.install();
  wallets.attachOutbox(outbox);
  payments.attachOutbox(outbox);
  // Callbacks are delivered by hand here; the simulator's own would come much later (and are dropped at the end).
  bank = new BankChannelSimulator(async () => undefined, { delayMs: 600_000, deliveries: 1, declineAbove: '1e9' });
  payments.attachChannel(bank);
  dispatcher = new OutboxDispatcher(
    database,
    PLAINTEXT,
    { webhook: webhookTransport(database, PLAINTEXT, now), sms: smsTransport(wallets, sms) },
    now,
    10,
  );
  receiver = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    request.on('end', () => {
      if (!receiverUp) {
        response.writeHead(503).end();
        return;
      }
      const parsed = JSON.parse(body) as { id: string; type: string };
      received.push({
        id: parsed.id,
        type: parsed.type,
        body,
        timestamp: String(request.headers['x-cp-timestamp']),
        signature: String(request.headers['x-cp-signature']),
      });
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  bank.close();
  await dispatcher.stop();
  receiver.close();
  await ledger.close();
  await database.close();
  await store.close();
  await drop();
});

async function paidWallet(accountNumber: string): Promise<string> {
  const wallet = await wallets.openWallet(
    { accountNumber, name: '王五', areaCode: '0791', customerClass: '2', purpose: 'general' },
    CONTEXT,
    clock,
  );
  const topUp = await payments.requestTopUp(wallet.walletId, '500.00', 'bank_sim', clock);
  await payments.confirmTopUp(
    { topUpId: topUp.topUpId, result: 'success', channelTradeNo: `T-${accountNumber}` },
    CONTEXT,
    clock,
  );
  return wallet.walletId;
}

/** Runs rounds, moving the clock past every back-off, until nothing is due. */
async function deliverAll(): Promise<void> {
  for (let i = 0; i < 50; i++) {
    clock = new Date(clock.getTime() + 3_600_000);
    await dispatcher.drain();
    const pending = await database.query("SELECT 1 FROM cp_outbox WHERE status = 'pending'");
    if (pending.length === 0) return;
  }
  throw new Error('the outbox did not empty');
}

test('a new wallet gets its initial password by SMS only; the secret leaves the outbox once delivered', async () => {
  await paidWallet('13800000001');
  await deliverAll();
  const initial = sms.sent.find((m) => m.to === '13800000001' && m.text.includes('初始支付密码'));
  expect(initial?.text).toMatch(/初始支付密码\d{6}，/);
  expect(initial?.text).not.toContain('王五');
  const rows = await database.query<{ sealed_secret: string | null; status: string }>(
    "SELECT sealed_secret, status FROM cp_outbox WHERE kind = 'wallet.opened'",
  );
  expect(rows).toEqual([{ sealed_secret: null, status: 'delivered' }]);
  expect(sms.sent.some((m) => m.to === '13800000001' && m.text.includes('充值500.00元已到账'))).toBe(true);
});

test('webhooks: a receiver down for a while gets everything later, in order, once, signed as documented', async () => {
  const walletId = await paidWallet('13800000002');
  const applied = await payments.applyMerchant(
    {
      name: 'Hook Shop',
      category: 'green_mall',
      feeRateBps: 30,
      settlementBankAccount: '6222020200112233445',
      areaCode: '0791',
    },
    clock,
  );
  await payments.reviewMerchant(applied.merchantId, 'approve', 'ok', CONTEXT, clock);
  const port = (receiver.address() as AddressInfo).port;
  await outbox.setWebhook(applied.merchantId, `http://127.0.0.1:${port}/hooks`, SECRET, clock);

  receiverUp = false;
  const paymentIds: string[] = [];
  for (let i = 0; i < 5; i++) {
    const paid = await payments.pay(
      {
        merchantId: applied.merchantId,
        orderId: `hook-${i}`,
        walletId,
        amount: `${i + 1}.00`,
        tenders: { wallet: `${i + 1}.00` },
      },
      CONTEXT,
      clock,
    );
    paymentIds.push(paid.paymentId);
  }
  await payments.refund({ paymentId: paymentIds[0]!, refundId: 'r-1', amount: '0.50' }, CONTEXT, clock);
  for (let i = 0; i < 3; i++) {
    clock = new Date(clock.getTime() + 3_600_000);
    await dispatcher.drain();
  }
  expect(received).toHaveLength(0);
  const waiting = await outbox.list(`webhook:${applied.merchantId}`);
  expect(waiting.every((m) => m.status === 'pending')).toBe(true);
  expect(waiting[0]!.attempts).toBeGreaterThanOrEqual(3);
  // Only the head of the line was tried: the rest wait for it (order per merchant).
  expect(waiting.slice(1).every((m) => m.attempts === 0)).toBe(true);

  receiverUp = true;
  await deliverAll();
  expect(received.map((r) => r.id)).toEqual([
    ...paymentIds.map((id) => `payment.succeeded:${id}`),
    `refund.succeeded:${paymentIds[0]!}:r-1`,
  ]);
  // The webhook's body is the payment as captured; the payer's notification names the order and the amount.
  const first = JSON.parse(received[0]!.body) as { data: Record<string, unknown> };
  expect(first.data).toMatchObject({ paymentId: paymentIds[0], orderId: 'hook-0', amount: '1.00' });
  const sms = await outbox.list(`sms:${walletId}`);
  expect(sms.find((m) => m.messageId === `payment.succeeded:${paymentIds[1]!}:sms`)?.payload).toEqual({
    template: 'payment_succeeded',
    amount: '2.00',
    orderId: 'hook-1',
  });
  for (const r of received) {
    const expected = createHmac('sm3', SECRET).update(`${r.timestamp}.${r.id}.${r.body}`, 'utf8').digest('hex');
    expect(r.signature).toBe(`hmac-sm3=${expected}`);
  }
  // Nothing already acknowledged goes again.
  await deliverAll();
  expect(received).toHaveLength(6);

  // A replay from the third message sends the rest again, with the same ids.
  const third = (await outbox.list(`webhook:${applied.merchantId}`))[2]!;
  expect(await outbox.replay(`webhook:${applied.merchantId}`, third.seq, clock)).toBe(4);
  await deliverAll();
  expect(received.slice(6).map((r) => r.id)).toEqual(received.slice(2, 6).map((r) => r.id));
});
