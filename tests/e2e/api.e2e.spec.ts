import { ERROR_STATUS, OPENAPI_DOCUMENT, REPLAY_HEADER } from '../../api';
import type { HttpAnswer, TestApi } from '../support/api-server';
import { startTestApi } from '../support/api-server';
import {
  BANK,
  CREDIT_ISSUANCE,
  FEES,
  coded,
  merchantPending,
  userPoints,
  userWallet,
} from '../support/ledger-fixtures';

/** Every operation of the document over real HTTP against PostgreSQL: its success and each refusal it can give. */
let t: TestApi;
let keys = 0;
const key = (): string => `key-${++keys}`;
const alice = userWallet(11);
const bob = userWallet(12);
const shop = merchantPending(11);

function expectError(answer: HttpAnswer, code: keyof typeof ERROR_STATUS): void {
  expect({ status: answer.status, code: answer.body['code'] }).toEqual({ status: ERROR_STATUS[code], code });
  expect(typeof answer.body['message']).toBe('string');
  expect(answer.body['details']).toEqual(expect.any(Object));
}

const pay = (
  from: string,
  to: string,
  amount: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> => ({
  transferType: 'payment',
  postings: [
    { accountId: from, direction: 'debit', amount },
    { accountId: to, direction: 'credit', amount },
  ],
  ...extra,
});

beforeAll(async () => {
  t = await startTestApi('postgres');
  for (const [accountId, kind] of [
    [alice, 'user_main'],
    [bob, 'user_main'],
    [shop, 'merchant_pending_settlement'],
    [userPoints(11), 'user_points'],
  ] as const) {
    expect((await t.post('/v1/accounts', { accountId, kind, ownerId: `owner-${accountId}` }, key())).status).toBe(201);
  }
  expect((await t.post('/v1/transfers', pay(BANK, alice, '500.00', { transferType: 'top_up' }), key())).status).toBe(
    201,
  );
}, 60_000);

afterAll(async () => {
  await t.close();
});

describe('the document', () => {
  test('GET /openapi.json is OpenAPI 3.1 with every operation the issue names', async () => {
    const answer = await t.get('/openapi.json');
    expect(answer.status).toBe(200);
    expect(answer.body['openapi']).toBe('3.1.0');
    const ids = Object.values(answer.body['paths'] as Record<string, Record<string, { operationId: string }>>).flatMap(
      (methods) => Object.values(methods).map((m) => m.operationId),
    );
    for (const id of 'openAccount getAccount getBalance getStatement freezeAccount unfreezeAccount closeAccount createTransfer authorizeTransfer captureTransfer voidTransfer reverseTransfer getTransfer getJournal getTrialBalance health'.split(
      ' ',
    )) {
      expect(ids).toContain(id);
    }
    expect(answer.body).toEqual(JSON.parse(JSON.stringify(OPENAPI_DOCUMENT)));
  });

  test('health, readiness and metrics', async () => {
    expect((await t.get('/health')).body).toMatchObject({ status: 'ok', eventStore: 'postgres' });
    expect((await t.get('/ready')).body).toEqual({ status: 'ready' });
    const metrics = await fetch(`${t.base}/metrics`);
    const text = await metrics.text();
    expect(text).toContain(
      'carbonpay_http_request_duration_seconds_bucket{le="0.005",operation="createTransfer",status="201"}',
    );
    expect(text).toMatch(/carbonpay_ledger_commands_committed_total \d+/);
    expect(text).toContain('carbonpay_projection_lag_seconds');
    // The writer's load, read at the scrape (T14): nothing waits once every answer is in.
    expect(text).toMatch(/^carbonpay_ledger_queue_depth 0$/m);
    expect(text).toMatch(/^carbonpay_ledger_batches_in_flight 0$/m);
    expect(text).toMatch(/^carbonpay_ledger_account_loads_total \d+$/m);
  });

  test('unknown routes, wrong methods, media types, sizes and broken JSON get stable codes', async () => {
    expectError(await t.get('/v1/nothing'), 'not_found');
    expectError(await t.get('/v1/authorizations'), 'method_not_allowed');
    expectError(
      await t.post('/v1/transfers', pay(alice, shop, '1.00'), key(), { 'content-type': 'text/plain' }),
      'unsupported_media_type',
    );
    expectError(
      await t.post('/v1/transfers', pay(alice, shop, '1.00'), key(), {
        'content-type': 'application/json; charset=latin1',
      }),
      'unsupported_media_type',
    );
    expectError(
      await t.post('/v1/transfers', { ...pay(alice, shop, '1.00'), reason: 'x'.repeat(70_000) }, key()),
      'payload_too_large',
    );
    expectError(await t.post('/v1/transfers', '{"transferType": "payment",', key()), 'validation_failed');
    expectError(await t.post('/v1/transfers', '{"transferType": TRUE}', key()), 'validation_failed');
    expectError(await t.post('/v1/transfers', '[1, 2]', key()), 'validation_failed');
    expectError(await t.post('/v1/transfers', pay(alice, shop, '1.00')), 'validation_failed'); // no Idempotency-Key
    expectError(await t.get('/v1/accounts/%E0%A4%A'), 'validation_failed');
  });
});

describe('accounts', () => {
  test('openAccount: created, replayed with the header, key reuse and clashes refused', async () => {
    const accountId = coded('user_main', 21);
    const body = { accountId, kind: 'user_main', ownerId: 'owner-21' };
    const first = await t.post('/v1/accounts', body, 'open-21');
    expect(first.status).toBe(201);
    expect(first.body).toEqual({ accountId, status: 'open' });
    const again = await t.post('/v1/accounts', body, 'open-21');
    expect([again.status, again.headers.get(REPLAY_HEADER)]).toEqual([201, 'true']);
    expect(again.body).toEqual(first.body);
    expectError(await t.post('/v1/accounts', { ...body, ownerId: 'someone-else' }, 'open-21'), 'idempotency_conflict');
    expectError(await t.post('/v1/accounts', { ...body, ownerId: 'someone-else' }, key()), 'account_exists');
    expectError(
      await t.post('/v1/accounts', { ...body, accountId: coded('merchant_pending_settlement', 21) }, key()),
      'validation_failed',
    );
    expectError(await t.post('/v1/accounts', { ...body, kind: 'savings' }, key()), 'validation_failed');
    expectError(await t.post('/v1/accounts', { ...body, extra: 1 }, key()), 'validation_failed');
  });

  test('getAccount and getBalance now, and as of an instant from the read models', async () => {
    const account = await t.get(`/v1/accounts/${alice}`);
    expect(account.status).toBe(200);
    expect(account.body).toMatchObject({ accountId: alice, kind: 'user_main', asset: 'CNY', status: 'open' });
    const balance = await t.get(`/v1/accounts/${alice}/balance`);
    expect(balance.body).toMatchObject({
      accountId: alice,
      asset: 'CNY',
      asOf: null,
      balance: account.body['balance'],
    });
    await t.caughtUp();
    const before = await t.get(`/v1/accounts/${alice}/balance?asOf=2000-01-01T00:00:00Z`);
    expect(before.body).toMatchObject({ balance: '0.00', revision: null });
    expectError(await t.get(`/v1/accounts/${coded('user_main', 999)}`), 'account_not_found');
    expectError(await t.get(`/v1/accounts/${coded('user_main', 999)}/balance`), 'account_not_found');
    expectError(await t.get(`/v1/accounts/${alice}/balance?asOf=yesterday`), 'validation_failed');
    expectError(
      await t.get(`/v1/accounts/${alice}/balance?asOf=2026-01-01T00:00:00Z&asOf=2026-01-02T00:00:00Z`),
      'validation_failed',
    );
    expectError(await t.get(`/v1/accounts/${alice}?unknown=1`), 'validation_failed');
  });

  test('getStatement pages with a cursor; a foreign cursor is refused', async () => {
    await t.caughtUp();
    const page = await t.get(`/v1/accounts/${alice}/statement?limit=1`);
    expect(page.status).toBe(200);
    const lines = page.body['lines'] as { transferId: string; balance: string }[];
    expect(lines).toHaveLength(1);
    expect(lines[0]!.balance).toBe('500.00');
    expect(typeof page.body['nextCursor']).toBe(page.body['nextCursor'] === null ? 'object' : 'string');
    expectError(await t.get(`/v1/accounts/${alice}/statement?cursor=not-a-cursor`), 'validation_failed');
    expectError(await t.get(`/v1/accounts/${alice}/statement?limit=0`), 'validation_failed');
    expectError(await t.get(`/v1/accounts/${coded('user_main', 998)}/statement`), 'account_not_found');
  });

  test('freeze, unfreeze, close: each answer, each refusal, and replays', async () => {
    const carol = coded('user_main', 31);
    expect(
      (await t.post('/v1/accounts', { accountId: carol, kind: 'user_main', ownerId: 'carol' }, key())).status,
    ).toBe(201);
    expect((await t.post('/v1/transfers', pay(BANK, carol, '5.00', { transferType: 'top_up' }), key())).status).toBe(
      201,
    );
    const frozen = await t.post(`/v1/accounts/${carol}/freeze`, { reason: 'court order' }, 'freeze-31');
    expect([frozen.status, frozen.body]).toEqual([200, { accountId: carol, status: 'frozen' }]);
    expectError(await t.post('/v1/transfers', pay(carol, shop, '1.00'), key()), 'account_frozen');
    expect((await t.post(`/v1/accounts/${carol}/unfreeze`, { reason: 'lifted' }, 'unfreeze-31')).body).toEqual({
      accountId: carol,
      status: 'open',
    });
    // The freeze's key gives the freeze's answer again, not a second freeze.
    const replay = await t.post(`/v1/accounts/${carol}/freeze`, { reason: 'court order' }, 'freeze-31');
    expect([replay.status, replay.headers.get(REPLAY_HEADER), replay.body['status']]).toEqual([200, 'true', 'frozen']);
    expect((await t.get(`/v1/accounts/${carol}`)).body['status']).toBe('open');
    expectError(
      await t.post(`/v1/accounts/${carol}/unfreeze`, { reason: 'other' }, 'freeze-31'),
      'idempotency_conflict',
    );
    expectError(await t.post(`/v1/accounts/${carol}/close`, { reason: 'customer asked' }, key()), 'balance_not_zero');
    expect(
      (await t.post('/v1/transfers', pay(carol, BANK, '5.00', { transferType: 'withdrawal' }), key())).status,
    ).toBe(201);
    expect((await t.post(`/v1/accounts/${carol}/close`, { reason: 'customer asked' }, key())).body).toEqual({
      accountId: carol,
      status: 'closed',
    });
    expectError(await t.post(`/v1/accounts/${carol}/freeze`, { reason: 'late' }, key()), 'account_closed');
    expectError(
      await t.post(`/v1/accounts/${coded('user_main', 997)}/freeze`, { reason: 'x' }, key()),
      'account_not_found',
    );
    expectError(await t.post(`/v1/accounts/${carol}/freeze`, {}, key()), 'validation_failed');
  });
});

describe('transfers', () => {
  test('createTransfer: posted with its log position; a retry is a replay with the same body', async () => {
    const first = await t.post('/v1/transfers', pay(alice, shop, '12.34', { reference: 'order-1' }), 'pay-1');
    expect(first.status).toBe(201);
    expect(first.body).toEqual({ transferId: expect.any(String), status: 'posted' });
    expect(first.headers.get('x-log-position')).toMatch(/^\d+:\d+$/);
    const again = await t.post('/v1/transfers', pay(alice, shop, '12.34', { reference: 'order-1' }), 'pay-1');
    expect([again.status, again.headers.get(REPLAY_HEADER), again.body]).toEqual([201, 'true', first.body]);
    expectError(
      await t.post('/v1/transfers', pay(alice, shop, '12.35', { reference: 'order-1' }), 'pay-1'),
      'idempotency_conflict',
    );
    const transfer = await t.get(`/v1/transfers/${String(first.body['transferId'])}`);
    expect(transfer.body).toMatchObject({ status: 'posted', transferType: 'payment', asset: 'CNY', reversedBy: null });
    expect(transfer.body['postings']).toEqual([
      { accountId: alice, direction: 'debit', amount: '12.34', asset: 'CNY' },
      { accountId: shop, direction: 'credit', amount: '12.34', asset: 'CNY' },
    ]);
  });

  test('createTransfer refusals: funds, balance, assets, accounts, scale, shape', async () => {
    expectError(await t.post('/v1/transfers', pay(bob, shop, '0.01'), key()), 'insufficient_funds');
    expectError(
      await t.post(
        '/v1/transfers',
        {
          transferType: 'payment',
          postings: [
            { accountId: alice, direction: 'debit', amount: '1.00' },
            { accountId: shop, direction: 'credit', amount: '0.99' },
          ],
        },
        key(),
      ),
      'unbalanced',
    );
    // Lines balance per asset: credits (CCR) cannot pay for yuan (CNY).
    expectError(
      await t.post('/v1/transfers', pay(CREDIT_ISSUANCE, alice, '1.00', { transferType: 'credit_issuance' }), key()),
      'unbalanced',
    );
    expectError(
      await t.post('/v1/transfers', pay(alice, coded('merchant_pending_settlement', 996), '1.00'), key()),
      'account_not_found',
    );
    expectError(await t.post('/v1/transfers', pay(alice, shop, '1.001'), key()), 'validation_failed');
    expectError(await t.post('/v1/transfers', pay(alice, shop, '0.00'), key()), 'validation_failed');
    expectError(await t.post('/v1/transfers', pay(alice, shop, '-1.00'), key()), 'validation_failed');
    expectError(
      await t.post('/v1/transfers', { ...pay(alice, shop, '1.00'), postings: [] }, key()),
      'validation_failed',
    );
    expectError(
      await t.post(
        '/v1/transfers',
        {
          transferType: 'payment',
          postings: [
            { accountId: alice, direction: 'debit', amount: 1 },
            { accountId: shop, direction: 'credit', amount: 1 },
          ],
        },
        key(),
      ),
      'validation_failed',
    );
    expectError(
      await t.post('/v1/transfers', pay(alice, shop, '1.00', { businessDate: '2026-13-01' }), key()),
      'validation_failed',
    );
    expectError(await t.post('/v1/transfers', pay(alice, shop, '1.00'), 'bad key with spaces'), 'validation_failed');
    expectError(await t.get('/v1/transfers/no-such-transfer'), 'transfer_not_found');
  });

  test('authorize, capture in part, void: each answer and each refusal', async () => {
    const expiresAt = new Date(t.clock.getTime() + 30 * 60_000).toISOString();
    const hold = await t.post(
      '/v1/authorizations',
      { transferType: 'payment', debitAccountId: alice, creditAccountId: shop, amount: '50.00', expiresAt },
      'hold-1',
    );
    expect([hold.status, hold.body['status']]).toEqual([201, 'pending']);
    const holdId = String(hold.body['transferId']);
    expect((await t.get(`/v1/accounts/${alice}`)).body['heldDebits']).toBe('50.00');
    expectError(
      await t.post(
        '/v1/authorizations',
        { transferType: 'payment', debitAccountId: bob, creditAccountId: shop, amount: '1.00', expiresAt },
        key(),
      ),
      'insufficient_funds',
    );
    expectError(
      await t.post(`/v1/authorizations/${holdId}/capture`, { amount: '50.01' }, key()),
      'amount_exceeds_authorization',
    );
    const captured = await t.post(`/v1/authorizations/${holdId}/capture`, { amount: '20.00' }, 'cap-1');
    expect([captured.status, captured.body]).toEqual([200, { transferId: holdId, status: 'captured' }]);
    const replay = await t.post(`/v1/authorizations/${holdId}/capture`, { amount: '20.00' }, 'cap-1');
    expect([replay.status, replay.headers.get(REPLAY_HEADER)]).toEqual([200, 'true']);
    expectError(
      await t.post(`/v1/authorizations/${holdId}/capture`, { amount: '1.00' }, key()),
      'invalid_transfer_state',
    );
    expectError(
      await t.post(`/v1/authorizations/${holdId}/void`, { reason: 'too late' }, key()),
      'invalid_transfer_state',
    );
    expect((await t.get(`/v1/accounts/${alice}`)).body['heldDebits']).toBe('0.00');

    const second = await t.post(
      '/v1/authorizations',
      { transferType: 'payment', debitAccountId: alice, creditAccountId: shop, amount: '5.00', expiresAt },
      key(),
    );
    const secondId = String(second.body['transferId']);
    const voided = await t.post(`/v1/authorizations/${secondId}/void`, { reason: 'order cancelled' }, 'void-2');
    expect([voided.status, voided.body]).toEqual([200, { transferId: secondId, status: 'voided' }]);
    expect(
      (await t.post(`/v1/authorizations/${secondId}/void`, { reason: 'order cancelled' }, 'void-2')).headers.get(
        REPLAY_HEADER,
      ),
    ).toBe('true');
    expectError(await t.post('/v1/authorizations/no-such-hold/void', { reason: 'x' }, key()), 'transfer_not_found');
    expectError(await t.post('/v1/authorizations/no-such-hold/capture', {}, key()), 'transfer_not_found');

    const third = await t.post(
      '/v1/authorizations',
      { transferType: 'payment', debitAccountId: alice, creditAccountId: shop, amount: '5.00', expiresAt },
      key(),
    );
    t.clock = new Date(Date.parse(expiresAt) + 1_000);
    try {
      expectError(
        await t.post(`/v1/authorizations/${String(third.body['transferId'])}/capture`, {}, key()),
        'authorization_expired',
      );
    } finally {
      t.clock = new Date('2026-11-23T02:00:00.000Z');
    }
  });

  test('reverseTransfer: mirrored once; a second reversal and unknown transfers refused', async () => {
    const paid = await t.post('/v1/transfers', pay(alice, shop, '3.00'), key());
    const id = String(paid.body['transferId']);
    const reversed = await t.post(`/v1/transfers/${id}/reverse`, { reason: 'terminal timeout' }, 'rev-1');
    expect([reversed.status, reversed.body['status']]).toEqual([201, 'posted']);
    expect(
      (await t.post(`/v1/transfers/${id}/reverse`, { reason: 'terminal timeout' }, 'rev-1')).headers.get(REPLAY_HEADER),
    ).toBe('true');
    expectError(await t.post(`/v1/transfers/${id}/reverse`, { reason: 'again' }, key()), 'already_reversed');
    expectError(await t.post('/v1/transfers/no-such-transfer/reverse', { reason: 'x' }, key()), 'transfer_not_found');
    expect((await t.get(`/v1/transfers/${id}`)).body['reversedBy']).toBe(reversed.body['transferId']);
  });
});

describe('reports from the read models', () => {
  test('journal, transfer list, trial balance and audit trail', async () => {
    await t.post(
      '/v1/transfers',
      { ...pay(alice, shop, '2.00'), postings: [...(pay(alice, shop, '2.00')['postings'] as unknown[])] },
      key(),
    );
    await t.post(
      '/v1/transfers',
      {
        transferType: 'fee',
        postings: [
          { accountId: shop, direction: 'debit', amount: '0.01' },
          { accountId: FEES, direction: 'credit', amount: '0.01' },
        ],
      },
      key(),
    );
    await t.caughtUp();
    const journal = await t.get(`/v1/journal?accountId=${shop}&limit=2`);
    expect(journal.status).toBe(200);
    expect((journal.body['lines'] as unknown[]).length).toBe(2);
    expect(journal.body['nextCursor']).toEqual(expect.any(String));
    const next = await t.get(`/v1/journal?accountId=${shop}&limit=2&cursor=${String(journal.body['nextCursor'])}`);
    expect(next.status).toBe(200);
    expectError(await t.get('/v1/journal?transferType=gift'), 'validation_failed');
    const listed = await t.get('/v1/transfers?businessDate=2026-11-23&transferType=payment&limit=5');
    expect((listed.body['transfers'] as unknown[]).length).toBeGreaterThan(0);
    const trial = await t.get('/v1/trial-balance');
    for (const row of trial.body['assets'] as { balance: string }[]) expect(Number(row.balance)).toBe(0);
    const audit = await t.get('/v1/audit-trail?command=PostTransfer&limit=3');
    const entries = audit.body['entries'] as { channel: string; actor: string; requestId: string | null }[];
    expect(entries.length).toBe(3);
    for (const entry of entries)
      expect(entry).toMatchObject({ channel: 'api', actor: 'unauthenticated', requestId: expect.any(String) });
  });
});
