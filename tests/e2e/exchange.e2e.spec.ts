import { randomBytes } from 'node:crypto';
import { ERROR_STATUS } from '../../api';
import type { ClientRegistration } from '../../security';
import { signRequest, Sm2PrivateKey } from '../../security';
import type { ExchangeBatch } from '../../services';
import { ExchangeSender } from '../../services';
import type { HttpAnswer, TestApi } from '../support/api-server';
import { httpAnswerOf, startTestApi } from '../support/api-server';

/**
 * #13 must-show 1: a city platform sends its day to the province over HTTP between two instances; sent three times it
 * arrives once; a tampered batch is refused; the province's totals equal the city's; a re-send on request.
 */
jest.setTimeout(120_000);

const cityKey = Sm2PrivateKey.generate();
const fieldKey = randomBytes(16);
const adminSecret = randomBytes(32);
const clients: ClientRegistration[] = [
  {
    clientId: 'city-0794',
    role: 'platform_peer',
    method: 'sm2',
    publicKeyHex: cityKey.publicKey.toHex(),
    fieldKeyHex: fieldKey.toString('hex'),
  },
  { clientId: 'province-admin', role: 'administrator', method: 'hmac-sm3', secretHex: adminSecret.toString('hex') },
];
const DATE = '2026-11-23';

let city: TestApi;
let province: TestApi;
let keys = 0;

beforeAll(async () => {
  city = await startTestApi('postgres');
  province = await startTestApi('postgres', { auth: 'required', clients });
});
afterAll(async () => {
  await city.close();
  await province.close();
});

async function asProvinceAdmin(method: 'GET' | 'POST', path: string, body?: unknown): Promise<HttpAnswer> {
  const text = body === undefined ? '' : JSON.stringify(body);
  const headers = signRequest(
    { clientId: 'province-admin', method: 'hmac-sm3', secret: adminSecret },
    {
      method,
      pathWithQuery: path,
      timestamp: String(province.clock.getTime()),
      nonce: randomBytes(16).toString('hex'),
      body: Buffer.from(text),
    },
  );
  const response = await fetch(`${province.base}${path}`, {
    method,
    headers: {
      ...headers,
      ...(method === 'POST' ? { 'content-type': 'application/json', 'idempotency-key': `adm-${++keys}` } : {}),
    },
    ...(method === 'POST' ? { body: text } : {}),
  });
  return httpAnswerOf(response);
}

async function asCity(method: 'GET' | 'POST', path: string, body: string): Promise<HttpAnswer> {
  const headers = signRequest(
    { clientId: 'city-0794', method: 'sm2', privateKey: cityKey },
    {
      method,
      pathWithQuery: path,
      timestamp: String(province.clock.getTime()),
      nonce: randomBytes(16).toString('hex'),
      body: Buffer.from(body),
    },
  );
  const response = await fetch(`${province.base}${path}`, {
    method,
    headers: {
      ...headers,
      ...(method === 'POST' ? { 'content-type': 'application/json', 'idempotency-key': `city-${++keys}` } : {}),
    },
    ...(method === 'POST' ? { body } : {}),
  });
  return httpAnswerOf(response);
}

async function cityDay(): Promise<void> {
  for (const [n, accountNumber] of ['13907941001', '13907941002'].entries()) {
    const opened = await city.post(
      '/v1/wallets',
      { accountNumber, name: '市民', areaCode: '0794', customerClass: '2', purpose: 'general' },
      `w-${n}`,
    );
    expect(opened.status).toBe(201);
  }
  const start = new Date(city.clock.getTime() - 4 * 3_600_000);
  const record = (
    externalId: string,
    accountNumber: string,
    behaviour: string,
    quantity: string,
    unit: string,
    minute: number,
  ): Record<string, unknown> => ({
    externalId,
    accountNumber,
    behaviour,
    quantity,
    unit,
    startAt: new Date(start.getTime() + minute * 60_000).toISOString(),
    endAt: new Date(start.getTime() + (minute + 20) * 60_000).toISOString(),
  });
  const batch = await city.post(
    '/v1/carbon/behaviours',
    {
      batchId: 'city-day',
      records: [
        record('e1', '13907941001', 'shared_bike', '3.5', 'km', 0),
        record('e2', '13907941001', 'walking', '7250', 'step', 60),
        record('e3', '13907941002', 'metro', '12', 'km', 0),
        record('e4', '13907941002', 'paperless_bill', '1', 'bill', 90),
      ],
    },
    'carbon-1',
  );
  expect(batch.body).toMatchObject({ accepted: 4 });
}

test('a day sent three times arrives once; tampering is refused; the province agrees with the city; a re-send', async () => {
  await cityDay();
  const sender = new ExchangeSender(city.readModels.database, 'city-0794', cityKey, fieldKey);
  const accountNumberOf = (id: string): Promise<string> => city.services.wallets.accountNumberOfPoints(id);
  const batch = await sender.buildBatch(DATE, 1, accountNumberOf);
  expect(batch.totals.records).toBe(4);
  expect(JSON.stringify(batch)).not.toContain('13907941001');

  const sends = [];
  for (let i = 0; i < 3; i++) sends.push(await sender.send(province.base, batch, province.clock));
  expect(sends.map((s) => [s.status, s.body['status']])).toEqual([
    [200, 'accepted'],
    [200, 'duplicate'],
    [200, 'duplicate'],
  ]);

  // Tampered at the source after signing (grams and totals changed together): the batch signature fails.
  const forged: ExchangeBatch = {
    ...batch,
    details: batch.details.map((d, i) => (i === 0 ? { ...d, grams: String(Number(d.grams) * 10) } : d)),
  };
  const forgedTotals = {
    ...forged,
    totals: { ...forged.totals, grams: String(forged.details.reduce((s, d) => s + Number(d.grams), 0)) },
  };
  const refused = await asCity('POST', '/v1/exchange/batches', JSON.stringify({ ...forgedTotals, sequence: 2 }));
  expect([refused.status, refused.body['code']]).toEqual([ERROR_STATUS.bad_signature, 'bad_signature']);
  // Tampered in transit: the request signature fails at the door.
  const inTransit = await fetch(`${province.base}/v1/exchange/batches`, {
    method: 'POST',
    headers: {
      ...signRequest(
        { clientId: 'city-0794', method: 'sm2', privateKey: cityKey },
        {
          method: 'POST',
          pathWithQuery: '/v1/exchange/batches',
          timestamp: String(province.clock.getTime()),
          nonce: randomBytes(16).toString('hex'),
          body: Buffer.from(JSON.stringify({ ...batch, sequence: 3 })),
        },
      ),
      'content-type': 'application/json',
      'idempotency-key': 'transit-1',
    },
    body: JSON.stringify({ ...batch, sequence: 4 }),
  });
  expect(inTransit.status).toBe(401);

  const stats = await asProvinceAdmin('GET', `/v1/exchange/stats?from=${DATE}&to=${DATE}`);
  const cityCarbon = await city.get('/v1/carbon/stats?from=2026-11-23&to=2026-11-23&groupBy=day');
  const cityRow = (cityCarbon.body['rows'] as { grams: string; credits: string; records: number }[])[0]!;
  expect(stats.body['rows']).toEqual([
    {
      platformId: 'city-0794',
      date: DATE,
      sequence: 1,
      records: cityRow.records,
      grams: cityRow.grams,
      creditsIssued: cityRow.credits,
      creditsRedeemed: '0.00',
    },
  ]);

  // The province asks for the date again; the city sends the next sequence; the request is then fulfilled.
  expect(
    (
      await asProvinceAdmin('POST', '/v1/exchange/resends', {
        platformId: 'city-0794',
        date: DATE,
        reason: 'audit sample',
      })
    ).status,
  ).toBe(200);
  const open = await asCity('GET', '/v1/exchange/resends', '');
  expect(open.body['resends']).toEqual([{ date: DATE, nextSequence: 2, reason: 'audit sample' }]);
  const again = await sender.send(province.base, await sender.buildBatch(DATE, 2, accountNumberOf), province.clock);
  expect(again.body).toMatchObject({ status: 'accepted', sequence: 2 });
  expect((await asCity('GET', '/v1/exchange/resends', '')).body['resends']).toEqual([]);
});
