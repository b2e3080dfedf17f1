import { randomBytes } from 'node:crypto';
import { unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ERROR_STATUS, OPENAPI_DOCUMENT } from '../../api';
import type { ClientRegistration, Role } from '../../security';
import {
  isAllowed,
  PUBLIC_OPERATIONS,
  ROLES,
  sealRequestField,
  signRequest,
  Sm2PrivateKey,
  totpCodeOf,
  verifyResponse,
} from '../../security';
import type { HttpAnswer, TestApi } from '../support/api-server';
import { httpAnswerOf, startTestApi } from '../support/api-server';
import { makeCardNumber } from '../../core-ledger';
import { BANK, merchantPending, userWallet } from '../support/ledger-fixtures';

/**
 * Issue #6 must-shows 3 and 4 over real HTTP: every route × every role allowed or denied exactly as the permission
 * table says; lock-out, idle and absolute time-outs, TOTP, a replayed nonce, a stale timestamp and a bad signature
 * each refused with its stable code.
 */
const partnerKey = Sm2PrivateKey.generate();
const fieldKey = randomBytes(16);
const rotatedKey = Sm2PrivateKey.generate();
const platformKey = Sm2PrivateKey.generate();
const platformKeyFile = join(tmpdir(), `carbonpay-platform-key-${process.pid}.hex`);
const secrets = new Map<Role, Buffer>(ROLES.map((role) => [role, randomBytes(32)]));
const clients: ClientRegistration[] = [
  ...ROLES.map((role) => ({
    clientId: `svc-${role}`,
    role,
    method: 'hmac-sm3' as const,
    secretHex: secrets.get(role)!.toString('hex'),
    // A merchant client acts for one merchant: the one the route table's paths name (merchant-scope.e2e.spec.ts
    // shows what it may not reach).
    ...(role === 'merchant' ? { merchantId: 'no-such-merchantId' } : {}),
  })),
  { clientId: 'partner-sm2', role: 'partner', method: 'sm2', publicKeyHex: partnerKey.publicKey.toHex() },
  {
    clientId: 'partner-rotating',
    role: 'partner',
    method: 'sm2',
    publicKeyHex: rotatedKey.publicKey.toHex(),
    previousPublicKeyHex: partnerKey.publicKey.toHex(),
  },
  {
    clientId: 'mall-sealing',
    role: 'payment_service',
    method: 'hmac-sm3',
    secretHex: secrets.get('payment_service')!.toString('hex'),
    fieldKeyHex: fieldKey.toString('hex'),
  },
  {
    clientId: 'partner-fenced',
    role: 'partner',
    method: 'hmac-sm3',
    secretHex: secrets.get('partner')!.toString('hex'),
    allowedIps: ['10.9.9.9'],
  },
];
const alice = userWallet(61);
const shop = merchantPending(61);
let t: TestApi;
let nonceSequence = 0;

function nonce(): string {
  return `n${String(++nonceSequence).padStart(15, '0')}${randomBytes(4).toString('hex')}`;
}

type Signer = Parameters<typeof signRequest>[0];
const hmacSigner = (role: Role, clientId = `svc-${role}`): Signer => ({
  clientId,
  method: 'hmac-sm3',
  secret: secrets.get(role)!,
});
const sm2Signer: Signer = { clientId: 'partner-sm2', method: 'sm2', privateKey: partnerKey };

async function signed(
  signer: Signer,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  tweak: { timestampMs?: number; nonce?: string; corrupt?: boolean; bodyAfterSigning?: string } = {},
): Promise<HttpAnswer> {
  const text = body === undefined ? '' : JSON.stringify(body);
  const headers = signRequest(signer, {
    method,
    pathWithQuery: path,
    timestamp: String(tweak.timestampMs ?? t.clock.getTime()),
    nonce: tweak.nonce ?? nonce(),
    body: Buffer.from(text),
  });
  if (tweak.corrupt)
    headers['x-cp-signature'] = headers['x-cp-signature']!.replace(/^./, (c) => (c === '0' ? '1' : '0'));
  const response = await fetch(`${t.base}${path}`, {
    method,
    headers: {
      ...headers,
      ...(method === 'POST' ? { 'content-type': 'application/json', 'idempotency-key': nonce() } : {}),
    },
    ...(method === 'POST' ? { body: tweak.bodyAfterSigning ?? text } : {}),
  });
  return httpAnswerOf(response);
}

function expectError(answer: HttpAnswer, code: keyof typeof ERROR_STATUS): void {
  expect({ status: answer.status, code: answer.body['code'] }).toEqual({ status: ERROR_STATUS[code], code });
}

const login = (username: string, password: string, totp?: string): Promise<HttpAnswer> =>
  t.post('/v1/auth/login', { username, password, ...(totp !== undefined ? { totp } : {}) });
const asOperator = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

beforeAll(async () => {
  writeFileSync(platformKeyFile, platformKey.exportBytes().toString('hex'));
  t = await startTestApi('memory', { auth: 'required', clients, platformKeyFile });
  const service = hmacSigner('payment_service');
  for (const [accountId, kind] of [
    [alice, 'user_main'],
    [shop, 'merchant_pending_settlement'],
  ] as const) {
    expect((await signed(service, 'POST', '/v1/accounts', { accountId, kind, ownerId: 'o' })).status).toBe(201);
  }
  const topUp = {
    transferType: 'top_up',
    postings: [
      { accountId: BANK, direction: 'debit', amount: '50.00' },
      { accountId: alice, direction: 'credit', amount: '50.00' },
    ],
  };
  expect((await signed(service, 'POST', '/v1/transfers', topUp)).status).toBe(201);
}, 60_000);

afterAll(async () => {
  await t.close();
  unlinkSync(platformKeyFile);
});

test('every route × every role: allowed or denied exactly as the permission table says', async () => {
  const operations: { operationId: string; method: 'GET' | 'POST'; path: string }[] = [];
  for (const [path, methods] of Object.entries(OPENAPI_DOCUMENT.paths)) {
    for (const [method, spec] of Object.entries(methods as unknown as Record<string, { operationId: string }>)) {
      operations.push({
        operationId: spec.operationId,
        method: method.toUpperCase() as 'GET' | 'POST',
        path: path.replace(/\{(\w+)\}/g, (_, name: string) =>
          name === 'accountId' ? alice : name === 'accountNumber' ? '13900000000' : `no-such-${name}`,
        ),
      });
    }
  }
  const mismatches: string[] = [];
  let checked = 0;
  for (const operation of operations) {
    for (const role of ROLES) {
      // An empty body: an allowed caller then gets past authorization and fails validation (or reads), never 403.
      const answer = await signed(
        hmacSigner(role),
        operation.method,
        operation.path,
        operation.method === 'POST' ? {} : undefined,
      );
      const allowed = isAllowed(role, operation.operationId);
      const denied = answer.status === 403;
      if (allowed === denied || answer.status === 401)
        mismatches.push(`${role} ${operation.operationId}: ${answer.status} ${String(answer.body['code'])}`);
      checked += 1;
    }
  }
  expect(mismatches).toEqual([]);
  expect(checked).toBe(operations.length * ROLES.length);
  // The table is not vacuous: every role is denied something and allowed something.
  for (const role of ROLES) {
    const grants = operations.filter(
      (o) => !PUBLIC_OPERATIONS.includes(o.operationId) && isAllowed(role, o.operationId),
    );
    expect([role, grants.length > 0, grants.length < operations.length - PUBLIC_OPERATIONS.length]).toEqual([
      role,
      true,
      true,
    ]);
  }
}, 120_000);

describe('signed requests', () => {
  test('an SM2 partner reads within its role and is denied payments', async () => {
    const account = await signed(sm2Signer, 'GET', `/v1/accounts/${alice}`);
    expect([account.status, account.body['balance']]).toEqual([200, '50.00']);
    const pay = {
      transferType: 'payment',
      postings: [
        { accountId: alice, direction: 'debit', amount: '1.00' },
        { accountId: shop, direction: 'credit', amount: '1.00' },
      ],
    };
    expectError(await signed(sm2Signer, 'POST', '/v1/transfers', pay), 'forbidden');
  });

  test('during a key rotation the new and the previous key are both accepted, no other', async () => {
    const path = `/v1/accounts/${alice}`;
    for (const privateKey of [rotatedKey, partnerKey]) {
      expect((await signed({ clientId: 'partner-rotating', method: 'sm2', privateKey }, 'GET', path)).status).toBe(200);
    }
    const stranger = Sm2PrivateKey.generate();
    expectError(
      await signed({ clientId: 'partner-rotating', method: 'sm2', privateKey: stranger }, 'GET', path),
      'bad_signature',
    );
  });

  test('a replayed nonce, a stale timestamp and a bad signature are each refused with their code', async () => {
    const path = `/v1/accounts/${alice}/balance`;
    const once = nonce();
    expect((await signed(sm2Signer, 'GET', path, undefined, { nonce: once })).status).toBe(200);
    expectError(await signed(sm2Signer, 'GET', path, undefined, { nonce: once }), 'replayed_request');
    expectError(
      await signed(sm2Signer, 'GET', path, undefined, { timestampMs: t.clock.getTime() - 301_000 }),
      'stale_timestamp',
    );
    expectError(
      await signed(sm2Signer, 'GET', path, undefined, { timestampMs: t.clock.getTime() + 301_000 }),
      'stale_timestamp',
    );
    expect((await signed(sm2Signer, 'GET', path, undefined, { timestampMs: t.clock.getTime() - 299_000 })).status).toBe(
      200,
    );
    expectError(await signed(sm2Signer, 'GET', path, undefined, { corrupt: true }), 'bad_signature');
    expectError(
      await signed(hmacSigner('payment_service'), 'GET', path, undefined, { corrupt: true }),
      'bad_signature',
    );
    const pay = {
      transferType: 'payment',
      postings: [
        { accountId: alice, direction: 'debit', amount: '1.00' },
        { accountId: shop, direction: 'credit', amount: '1.00' },
      ],
    };
    const tampered = JSON.stringify({ ...pay, postings: pay.postings.map((p) => ({ ...p, amount: '9.00' })) });
    expectError(
      await signed(hmacSigner('payment_service'), 'POST', '/v1/transfers', pay, { bodyAfterSigning: tampered }),
      'bad_signature',
    );
    expectError(await signed(hmacSigner('payment_service', 'svc-nobody'), 'GET', path), 'unknown_client');
    expectError(await signed(hmacSigner('partner', 'partner-fenced'), 'GET', path), 'ip_not_allowed');
    expectError(await t.get(path), 'unauthorized');
    expect((await t.get(`/v1/accounts/${alice}`)).status).toBe(401);
  });
});

test('personal data is masked unless the role may unmask (C App. B)', async () => {
  const holder = userWallet(62);
  const cardNumber = makeCardNumber({ areaCode: '0794', sequence: 62 });
  const opened = await signed(hmacSigner('payment_service'), 'POST', '/v1/accounts', {
    accountId: holder,
    kind: 'user_main',
    ownerId: 'o62',
    cardNumber,
    accountNumber: '13912345634',
  });
  expect(opened.status).toBe(201);
  for (const role of ['partner', 'payment_service', 'auditor', 'administrator'] as const) {
    const seen = await signed(hmacSigner(role), 'GET', `/v1/accounts/${holder}`);
    expect([role, seen.body['cardNumber'], seen.body['accountNumber']]).toEqual([
      role,
      `${cardNumber.slice(0, 6)}*****${cardNumber.slice(-4)}`,
      '1*****34',
    ]);
  }
  const unmasked = await signed(hmacSigner('customer_service'), 'GET', `/v1/accounts/${holder}`);
  expect([unmasked.body['cardNumber'], unmasked.body['accountNumber']]).toEqual([cardNumber, '13912345634']);
});

test('answers to signed requests are signed back: SM2 with the platform key, HMAC-SM3 with the shared key', async () => {
  const cases = [
    { signer: sm2Signer, verifier: { method: 'sm2' as const, platformPublicKey: platformKey.publicKey } },
    {
      signer: hmacSigner('payment_service'),
      verifier: { method: 'hmac-sm3' as const, secret: secrets.get('payment_service')! },
    },
  ];
  for (const { signer, verifier } of cases) {
    for (const path of [`/v1/accounts/${alice}`, '/v1/accounts/8620794999999999']) {
      const requestNonce = nonce();
      const headers = signRequest(signer, {
        method: 'GET',
        pathWithQuery: path,
        timestamp: String(t.clock.getTime()),
        nonce: requestNonce,
        body: Buffer.alloc(0),
      });
      const response = await fetch(`${t.base}${path}`, { headers });
      const text = await response.text();
      const parts = {
        status: response.status,
        timestamp: response.headers.get('x-cp-timestamp')!,
        requestNonce,
        body: Buffer.from(text),
      };
      const signature = response.headers.get('x-cp-signature')!;
      expect([signer.method, path, verifyResponse(verifier, parts, signature)]).toEqual([signer.method, path, true]);
      expect(verifyResponse(verifier, { ...parts, body: Buffer.from(text.replace(/\d/, '9')) }, signature)).toBe(false);
      expect(verifyResponse(verifier, { ...parts, requestNonce: nonce() }, signature)).toBe(false);
      expect(verifyResponse(verifier, { ...parts, status: parts.status + 1 }, signature)).toBe(false);
    }
  }
});

describe('operators', () => {
  test('lock-out after 5 failures for 15 minutes, then a fresh count', async () => {
    await t.operators.create({
      username: 'olga',
      role: 'operator',
      password: 'Green-Leaf'.replace('-', '_') + '42',
      now: t.clock,
    });
    const good = 'Green_Leaf42';
    for (let i = 0; i < 5; i++)
      expectError(await login('olga', 'wrong-password'.replace('-', '_')), 'invalid_credentials');
    const locked = await login('olga', good);
    expectError(locked, 'account_locked');
    expect(locked.body['details']).toEqual({ retryAfterSeconds: 900 });
    const started = t.clock;
    try {
      t.clock = new Date(started.getTime() + 15 * 60_000 - 1_000);
      expectError(await login('olga', good), 'account_locked');
      t.clock = new Date(started.getTime() + 15 * 60_000 + 1_000);
      expect((await login('olga', good)).status).toBe(200);
      expectError(await login('nobody', good), 'invalid_credentials');
    } finally {
      t.clock = started;
    }
  });

  test('idle time-out after 15 minutes; absolute time-out after 8 hours however active', async () => {
    await t.operators.create({ username: 'ivan', role: 'auditor', password: 'Audit_Trail7', now: t.clock });
    const started = t.clock;
    try {
      const session = await login('ivan', 'Audit_Trail7');
      const token = String(session.body['token']);
      expect((await t.get('/v1/trial-balance', asOperator(token))).status).toBe(200);
      t.clock = new Date(started.getTime() + 15 * 60_000 + 1_000);
      expectError(await t.get('/v1/trial-balance', asOperator(token)), 'session_expired');

      const active = String((await login('ivan', 'Audit_Trail7')).body['token']);
      const loggedInAt = t.clock.getTime();
      for (let minutes = 10; minutes < 8 * 60; minutes += 10) {
        t.clock = new Date(loggedInAt + minutes * 60_000);
        expect([minutes, (await t.get('/v1/trial-balance', asOperator(active))).status]).toEqual([minutes, 200]);
      }
      t.clock = new Date(loggedInAt + 8 * 3_600_000 + 1_000);
      expectError(await t.get('/v1/trial-balance', asOperator(active)), 'session_expired');
      const again = String((await login('ivan', 'Audit_Trail7')).body['token']);
      expect((await t.post('/v1/auth/logout', {}, undefined, asOperator(again))).status).toBe(200);
      expectError(await t.get('/v1/trial-balance', asOperator(again)), 'session_expired');
    } finally {
      t.clock = started;
    }
  }, 60_000);

  test('administrators need a TOTP code, each code works once; an old password must be changed', async () => {
    const { totpSecret } = await t.operators.create({
      username: 'ada',
      role: 'administrator',
      password: 'Root_Of_Trust9',
      now: t.clock,
    });
    expect(totpSecret).toMatch(/^[A-Z2-7]{32}$/);
    expectError(await login('ada', 'Root_Of_Trust9'), 'totp_required');
    const code = totpCodeOf(totpSecret!, t.clock);
    const wrong = code === '000000' ? '111111' : '000000';
    expectError(await login('ada', 'Root_Of_Trust9', wrong), 'invalid_credentials');
    const session = await login('ada', 'Root_Of_Trust9', code);
    expect([session.status, session.body['role']]).toEqual([200, 'administrator']);
    expectError(await login('ada', 'Root_Of_Trust9', code), 'invalid_credentials'); // the same code again
    const started = t.clock;
    try {
      t.clock = new Date(started.getTime() + 62 * 86_400_000);
      expectError(await login('ada', 'Root_Of_Trust9', totpCodeOf(totpSecret!, t.clock)), 'password_expired');
    } finally {
      t.clock = started;
    }
  });

  test('password rules: weak passwords and the last 20 are refused', async () => {
    await expect(
      t.operators.create({ username: 'weak', role: 'operator', password: 'short', now: t.clock }),
    ).rejects.toThrow(/10–64/);
    await expect(
      t.operators.create({ username: 'weak', role: 'operator', password: 'alllowercaseletters', now: t.clock }),
    ).rejects.toThrow(/three/);
    await t.operators.create({ username: 'paula', role: 'operator', password: 'First_Pass11', now: t.clock });
    await t.operators.changePassword({
      username: 'paula',
      current: 'First_Pass11',
      next: 'Second_Pass22',
      now: t.clock,
    });
    await expect(
      t.operators.changePassword({ username: 'paula', current: 'Second_Pass22', next: 'First_Pass11', now: t.clock }),
    ).rejects.toThrow(/last 20/);
    expect((await login('paula', 'Second_Pass22')).status).toBe(200);
  });

  test('the audit trail names the operator or the client that acted', async () => {
    const service = hmacSigner('payment_service');
    const pay = {
      transferType: 'payment',
      postings: [
        { accountId: alice, direction: 'debit', amount: '2.00' },
        { accountId: shop, direction: 'credit', amount: '2.00' },
      ],
    };
    expect((await signed(service, 'POST', '/v1/transfers', pay)).status).toBe(201);
    await t.operators.create({ username: 'fred', role: 'operator', password: 'Freeze_Now123', now: t.clock });
    const token = String((await login('fred', 'Freeze_Now123')).body['token']);
    expect((await t.post(`/v1/accounts/${alice}/freeze`, { reason: 'check' }, nonce(), asOperator(token))).status).toBe(
      200,
    );
    await t.caughtUp();
    const auditor = await signed(hmacSigner('auditor'), 'GET', '/v1/audit-trail?limit=1000');
    const entries = auditor.body['entries'] as { actor: string; channel: string; command: string }[];
    expect(entries).toContainEqual(
      expect.objectContaining({ actor: 'svc-payment_service', channel: 'api', command: 'PostTransfer' }),
    );
    expect(entries).toContainEqual(
      expect.objectContaining({ channel: 'console', command: 'FreezeAccount', actor: expect.stringMatching(/^op-/) }),
    );
  });
});

test('the audit log holds logins, operator actions, denials and unmasked reads, and its chain verifies', async () => {
  const rows = (): Promise<{ actor: string; action: string; outcome: string; subject: string | null }[]> =>
    t.readModels.database.query('SELECT actor, action, outcome, subject FROM cp_audit_log ORDER BY seq');
  const before = (await rows()).length;
  await t.operators.create({ username: 'carl', role: 'customer_service', password: 'Help_Desk_42', now: t.clock });
  expectError(await login('carl', 'Help_Desk_41'), 'invalid_credentials');
  const token = String((await login('carl', 'Help_Desk_42')).body['token']);
  expect((await t.get(`/v1/accounts/${alice}`, asOperator(token))).status).toBe(200);
  expectError(await t.get('/v1/trial-balance', asOperator(token)), 'forbidden');
  expectError(await signed(sm2Signer, 'POST', '/v1/transfers', {}), 'forbidden');
  const added = (await rows()).slice(before);
  expect(added).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ actor: 'login:carl', action: 'api.login', outcome: 'denied' }),
      expect.objectContaining({ actor: 'login:carl', action: 'api.login', outcome: 'succeeded' }),
      expect.objectContaining({ action: 'api.get_account', outcome: 'succeeded', subject: alice }),
      expect.objectContaining({ action: 'api.get_trial_balance', outcome: 'denied' }),
      expect.objectContaining({ actor: 'partner-sm2', action: 'api.create_transfer', outcome: 'denied' }),
    ]),
  );
  const verification = await t.audit.verify();
  expect([verification.ok, verification.problems]).toEqual([true, []]);
});

test('sensitive request fields sealed with SM4 under the client field key are opened; anything else refused', async () => {
  const holder = userWallet(63);
  const cardNumber = makeCardNumber({ areaCode: '0794', sequence: 63 });
  const send = async (
    clientId: string,
    key: Buffer,
    sealed: Record<string, string>,
    fields: string,
  ): Promise<HttpAnswer> => {
    const body = JSON.stringify({ accountId: holder, kind: 'user_main', ownerId: 'o63', ...sealed });
    const headers = signRequest(
      { clientId, method: 'hmac-sm3', secret: key },
      {
        method: 'POST',
        pathWithQuery: '/v1/accounts',
        timestamp: String(t.clock.getTime()),
        nonce: nonce(),
        body: Buffer.from(body),
      },
    );
    const response = await fetch(`${t.base}/v1/accounts`, {
      method: 'POST',
      headers: {
        ...headers,
        'content-type': 'application/json',
        'idempotency-key': nonce(),
        'x-cp-encrypted-fields': fields,
      },
      body,
    });
    return {
      status: response.status,
      headers: response.headers,
      body: (await response.json()) as Record<string, unknown>,
    };
  };
  const secret = secrets.get('payment_service')!;
  const sealedWith = (key: Buffer): Record<string, string> => ({
    cardNumber: sealRequestField(key, 'cardNumber', cardNumber),
    accountNumber: sealRequestField(key, 'accountNumber', '13900000063'),
  });
  expectError(
    await send('mall-sealing', secret, sealedWith(randomBytes(16)), 'cardNumber,accountNumber'),
    'validation_failed',
  );
  const swapped = sealedWith(fieldKey);
  expectError(
    await send(
      'mall-sealing',
      secret,
      { cardNumber: swapped.accountNumber!, accountNumber: swapped.cardNumber! },
      'cardNumber,accountNumber',
    ),
    'validation_failed',
  );
  expectError(
    await send('svc-payment_service', secret, sealedWith(fieldKey), 'cardNumber,accountNumber'),
    'validation_failed',
  );
  expect((await send('mall-sealing', secret, sealedWith(fieldKey), 'cardNumber,accountNumber')).status).toBe(201);
  const seen = await signed(hmacSigner('customer_service'), 'GET', `/v1/accounts/${holder}`);
  expect([seen.body['cardNumber'], seen.body['accountNumber']]).toEqual([cardNumber, '13900000063']);
});
