import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { ClearingService } from '../../clearing';
import type { Amount, BehaviourRecordInput, CommandContext } from '../../core-ledger';
import { Money } from '../../core-ledger';
import type { ClientRegistration, Role } from '../../security';
import { DataKeyRing, mask, maskAccountNumber, Sm2PrivateKey, totpCodeOf } from '../../security';
import type { WalletRecord } from '../../services';
import type { TestApi } from '../support/api-server';
import { startTestApi } from '../support/api-server';
import { bankSimBill } from '../int/clearing-fixture';

/**
 * Issue #12 in a real browser: Debian's Chromium driven by playwright-core (never a downloaded browser), against the
 * HTTP door with authentication required and one operator per role. Each test acts through the console's screens
 * and then checks the outcome where it lives (the services, the clearing tables, the ledger, the audit log), and
 * takes the screenshots docs/console.md shows.
 */
const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(__dirname, '..', '..', 'docs', 'console');
const SEED: CommandContext = { actor: 'console-test-seed', channel: 'api' };
/** The harness clock: 10:00 in Shanghai on 2026-11-23, the dashboard's last day by default. */
const TODAY = '2026-11-23';
const YESTERDAY = '2026-11-22';
const MOBILE = '13907941234';

interface Operator {
  readonly username: string;
  readonly password: string;
  readonly role: Role;
  operatorId: string;
  totpSecret: string | null;
}
const operators: Record<string, Operator> = Object.fromEntries(
  (
    [
      ['admin', 'administrator', 'Root_Of_Trust9'],
      ['olivia', 'operator', 'Green_Leaf42'],
      ['locky', 'operator', 'Locked_Out_77'],
      ['audrey', 'auditor', 'Audit_Trail7'],
      ['carl', 'customer_service', 'Help_Desk_42'],
      ['clara', 'clearing_operator', 'Clear_Days_31'],
    ] as const
  ).map(([username, role, password]) => [username, { username, role, password, operatorId: '', totpSecret: null }]),
);

const clients: ClientRegistration[] = [
  { clientId: 'mall-service', role: 'payment_service', method: 'hmac-sm3', secretHex: randomBytes(32).toString('hex') },
  {
    clientId: 'partner-city',
    role: 'partner',
    method: 'sm2',
    publicKeyHex: Sm2PrivateKey.generate().publicKey.toHex(),
    previousPublicKeyHex: Sm2PrivateKey.generate().publicKey.toHex(),
  },
];

let t: TestApi;
let browser: Browser;
let clearing: ClearingService;
let outputDir: string;
let wallet: WalletRecord;
let activeMerchantId: string;
/** What the seeding posted, per business date: the numbers the dashboard must show. */
const expected = new Map<string, { payments: number; amount: Amount; grams: Amount; records: number }>();
/** Every API request the browser made, by the request id the server answered with. */
const browserRequests: { method: string; path: string; status: number; requestId: string }[] = [];

function at(date: string, hourLocal: number): Date {
  return new Date(`${date}T${String(hourLocal).padStart(2, '0')}:00:00+08:00`);
}

function tally(date: string): { payments: number; amount: Amount; grams: Amount; records: number } {
  const found = expected.get(date) ?? { payments: 0, amount: new Money(0), grams: new Money(0), records: 0 };
  expected.set(date, found);
  return found;
}

async function seed(): Promise<void> {
  const { wallets, payments, carbon } = t.services;
  wallet = await wallets.openWallet(
    { accountNumber: MOBILE, name: '李雷', areaCode: '0794', customerClass: '2', purpose: 'general' },
    SEED,
    at('2026-11-20', 9),
  );
  const topUp = await payments.requestTopUp(wallet.walletId, '150.00', 'bank_sim', at('2026-11-20', 9));
  await payments.confirmTopUp(
    { topUpId: topUp.topUpId, result: 'success', channelTradeNo: 'BT-SEED-1' },
    SEED,
    at('2026-11-20', 9),
  );
  const applied = await payments.applyMerchant(
    {
      name: 'Green Mall',
      category: 'green_mall',
      feeRateBps: 60,
      settlementBankAccount: '6222020200112233445',
      areaCode: '0794',
    },
    at('2026-11-20', 9),
  );
  activeMerchantId = (await payments.reviewMerchant(applied.merchantId, 'approve', 'seed', SEED, at('2026-11-20', 9)))
    .merchantId;
  const orders: [string, string, Date][] = [
    ['ORDER-1', '12.50', at(YESTERDAY, 11)],
    ['ORDER-2', '30.00', at(TODAY, 8)],
    ['ORDER-3', '7.25', at(TODAY, 9)],
  ];
  for (const [orderId, amount, when] of orders) {
    const paid = await payments.pay(
      { merchantId: activeMerchantId, orderId, walletId: wallet.walletId, amount, tenders: { wallet: amount } },
      SEED,
      when,
    );
    expect(paid.status).toBe('captured');
    const day = tally(paid.businessDate);
    day.payments += 1;
    day.amount = day.amount.plus(paid.amount);
  }
  const trips: [string, string, string][] = [
    ['bike-1', '3.5', '2026-11-21T08:00:00+08:00'],
    ['bike-2', '5', '2026-11-22T08:00:00+08:00'],
    ['bike-3', '2.25', '2026-11-22T18:00:00+08:00'],
  ];
  const records: BehaviourRecordInput[] = trips.map(([externalId, quantity, start]) => ({
    externalId,
    accountNumber: MOBILE,
    behaviour: 'shared_bike',
    quantity,
    unit: 'km',
    startAt: new Date(start).toISOString(),
    endAt: new Date(Date.parse(start) + 25 * 60_000).toISOString(),
  }));
  const batch = await carbon.submitBehaviours('partner-city', 'seed-batch', records, SEED, at(TODAY, 9));
  expect([batch.accepted, batch.rejected]).toEqual([3, 0]);
  for (const [index, result] of batch.records.entries()) {
    if (result.status !== 'accepted') throw new Error(`seed record ${result.externalId} was ${result.status}`);
    const day = tally(new Date(Date.parse(trips[index]![2]) + 8 * 3_600_000).toISOString().slice(0, 10));
    day.records += 1;
    day.grams = day.grams.plus(result.grams);
  }
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`);
  mkdirSync(SHOTS, { recursive: true });
  t = await startTestApi('postgres', { auth: 'required', clients });
  for (const operator of Object.values(operators)) {
    const created = await t.operators.create({ ...operator, now: t.clock });
    operator.operatorId = created.operatorId;
    operator.totpSecret = created.totpSecret;
  }
  outputDir = mkdtempSync(join(tmpdir(), 'cp-console-'));
  clearing = new ClearingService(
    t.readModels.database,
    t.ledger,
    t.services.payments,
    t.services.wallets,
    { outputDir },
    SEED,
    () => t.clock,
  );
  await clearing.install();
  await seed();
  await t.caughtUp();
  browser = await chromium.launch({ headless: true, executablePath: CHROMIUM, args: ['--no-sandbox'] });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await t?.close();
  if (outputDir) rmSync(outputDir, { recursive: true, force: true });
});

/** A fresh browser context (no session) whose API calls are all remembered with their request ids. */
async function newPage(): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  page.on('response', (response) => {
    const url = new URL(response.url());
    if (!url.pathname.startsWith('/v1/')) return;
    browserRequests.push({
      method: response.request().method(),
      path: url.pathname,
      status: response.status(),
      requestId: response.headers()['x-request-id'] ?? '',
    });
  });
  await page.goto(`${t.base}/console/`);
  return { context, page };
}

/** Submits the login form and waits for the API's answer and the screen that follows it. */
async function submitLogin(page: Page, username: string, password: string, totp?: string): Promise<void> {
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', password);
  if (totp !== undefined) await page.fill('input[name=totp]', totp);
  await Promise.all([
    page.waitForResponse((response) => response.url().endsWith('/v1/auth/login')),
    page.click('button[type=submit]'),
  ]);
  await page.waitForSelector('[data-test=login-error], [data-test=who]');
}

async function loginAs(page: Page, operator: Operator): Promise<void> {
  await submitLogin(page, operator.username, operator.password);
  if (operator.totpSecret !== null)
    await submitLogin(page, operator.username, operator.password, totpCodeOf(operator.totpSecret, t.clock));
  await page.waitForSelector('[data-test=who]');
}

async function shoot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function auditRows(): Promise<
  {
    actor: string;
    role: string | null;
    action: string;
    outcome: string;
    subject: string | null;
    request_id: string | null;
  }[]
> {
  return t.readModels.database.query(
    'SELECT actor, role, action, outcome, subject, request_id FROM cp_audit_log ORDER BY seq',
  );
}

test('login: a wrong password is refused, five lock the account (the lock-out message), administrators give TOTP', async () => {
  const { context, page } = await newPage();
  await shoot(page, 'login');
  for (let attempt = 1; attempt <= 5; attempt++) {
    await submitLogin(page, 'locky', 'Wrong_Password1');
    expect(await page.textContent('[data-test=login-error]')).toBe('Unknown user or wrong password.');
  }
  // The right password after five wrong ones: locked, and the console says for how long.
  await submitLogin(page, 'locky', operators['locky']!.password);
  expect(await page.textContent('[data-test=login-error]')).toBe(
    'Account locked after too many failed logins. Try again in 15 minutes.',
  );
  await shoot(page, 'login-locked');
  const attempts = (await auditRows()).filter((r) => r.actor === 'login:locky').map((r) => [r.action, r.outcome]);
  expect(attempts).toEqual([...Array(5).fill(['api.login', 'denied']), ['api.login', 'refused']]);

  // An administrator is asked for the TOTP code after the password, then sees the key screen among its screens.
  await submitLogin(page, 'admin', operators['admin']!.password);
  expect(await page.isVisible('input[name=totp]')).toBe(true);
  expect(await page.textContent('[data-test=login-error]')).toMatch(/6-digit code/);
  const code = totpCodeOf(operators['admin']!.totpSecret!, t.clock);
  await submitLogin(page, 'admin', operators['admin']!.password, code === '000000' ? '111111' : '000000');
  expect(await page.textContent('[data-test=login-error]')).toBe('Unknown user or wrong password.');
  await submitLogin(page, 'admin', operators['admin']!.password, code);
  expect(await page.textContent('[data-test=who]')).toBe('admin · administrator');
  expect(await page.$$eval('nav button', (buttons) => buttons.map((b) => b.getAttribute('data-nav')))).toEqual([
    'dashboard',
    'accounts',
    'merchants',
    'clearing',
    'audit',
    'keys',
  ]);
  await context.close();
});

test('dashboard: the charts carry the seeded payment volume and carbon reduction per business date', async () => {
  const { context, page } = await newPage();
  await loginAs(page, operators['olivia']!);
  await page.waitForSelector('[data-test=dashboard-table] tbody tr');
  // The Chart.js instances' own data, as the page drew it, and the table beside the charts.
  const read = await page.evaluate(() => {
    type ChartLike = { data: { labels: string[]; datasets: { data: number[] }[] } };
    const page = globalThis as unknown as { Chart: { getChart(id: string): ChartLike | undefined } };
    const of = (id: string): { labels: string[]; values: number[] } => {
      const chart = page.Chart.getChart(id)!;
      return { labels: chart.data.labels, values: chart.data.datasets[0]!.data };
    };
    return { payments: of('payments-chart'), carbon: of('carbon-chart') };
  });
  const table = await page.$$eval('[data-test=dashboard-table] tbody tr', (rows) =>
    rows.map((row) => [...row.querySelectorAll('td')].map((cell) => cell.textContent!.trim())),
  );
  // Fourteen business dates ending on the server's today, zeros where nothing happened.
  const dates = Array.from({ length: 14 }, (_, i) =>
    new Date(Date.parse(`${TODAY}T00:00:00Z`) - (13 - i) * 86_400_000).toISOString().slice(0, 10),
  );
  const day = (date: string): { payments: number; amount: Amount; grams: Amount; records: number } =>
    expected.get(date) ?? { payments: 0, amount: new Money(0), grams: new Money(0), records: 0 };
  expect(read.payments.labels).toEqual(dates);
  expect(read.payments.values).toEqual(dates.map((d) => Number(day(d).amount.toFixed(2))));
  expect(read.carbon.values).toEqual(dates.map((d) => Number(day(d).grams.toFixed(0))));
  expect(table).toEqual(
    dates.map((d) => [
      d,
      String(day(d).payments),
      day(d).amount.toFixed(2),
      String(day(d).records),
      day(d).grams.toFixed(0),
    ]),
  );
  // Not vacuous: the seeded days are there, with what the services answered.
  expect(read.payments.values.filter((v) => v > 0)).toEqual([12.5, 37.25]);
  expect(read.carbon.values.filter((v) => v > 0).length).toBe(2);
  await shoot(page, 'dashboard');
  await context.close();
});

test('accounts: an operator sees the account number masked; customer service sees it unmasked, and that is audited', async () => {
  const main = wallet.accounts.main;
  const { context, page } = await newPage();
  await loginAs(page, operators['olivia']!);
  await page.click('[data-nav=accounts]');
  await page.fill('input[name=q]', wallet.walletId);
  await page.click('form.inline button[type=submit]');
  await page.waitForSelector(`[data-account="${main}"]`);
  expect(await page.$$eval('[data-test=account-results] tbody tr', (rows) => rows.length)).toBe(5);
  await page.click(`[data-account="${main}"]`);
  await page.waitForSelector('[data-test=statement] tbody tr');
  expect(await page.textContent('[data-test=account-number]')).toBe(maskAccountNumber(MOBILE));
  expect(await page.textContent('[data-test=card-number]')).toBe(mask('bank_card', wallet.cardNumber));
  expect(await page.content()).not.toContain(MOBILE);
  await shoot(page, 'accounts-masked');
  await context.close();

  const before = (await auditRows()).length;
  const cs = await newPage();
  await loginAs(cs.page, operators['carl']!);
  // Customer service has the account screen only.
  expect(await cs.page.$$eval('nav button', (buttons) => buttons.map((b) => b.getAttribute('data-nav')))).toEqual([
    'accounts',
  ]);
  await cs.page.fill('input[name=q]', main);
  await cs.page.click('form.inline button[type=submit]');
  await cs.page.click(`[data-account="${main}"]`);
  await cs.page.waitForSelector('[data-test=account-detail]');
  await cs.page.locator('[data-test=account-number]', { hasText: MOBILE }).waitFor();
  expect(await cs.page.textContent('[data-test=card-number]')).toBe(wallet.cardNumber);
  await shoot(cs.page, 'accounts-unmasked');
  await cs.context.close();
  const added = (await auditRows()).slice(before);
  expect(added).toEqual(
    expect.arrayContaining([
      expect.objectContaining({
        actor: operators['carl']!.operatorId,
        role: 'customer_service',
        action: 'personal_data.unmask',
        subject: main,
        outcome: 'succeeded',
      }),
      expect.objectContaining({ actor: operators['carl']!.operatorId, action: 'api.get_account', subject: main }),
    ]),
  );
  // The operator's masked read was not an unmasking.
  const unmasks = (await auditRows()).filter((r) => r.action === 'personal_data.unmask');
  expect(unmasks.map((r) => r.actor)).toEqual([operators['carl']!.operatorId]);
});

test('merchant review: an operator approves an application with a reason; the merchant is active', async () => {
  const applied = await t.services.payments.applyMerchant(
    {
      name: 'Bamboo Café',
      category: 'catering',
      feeRateBps: 38,
      settlementBankAccount: '6217000012345678901',
      areaCode: '0794',
    },
    t.clock,
  );
  const { context, page } = await newPage();
  await loginAs(page, operators['olivia']!);
  await page.click('[data-nav=merchants]');
  const row = `[data-merchant="${applied.merchantId}"]`;
  await page.waitForSelector(row);
  // The queue shows the settlement account masked.
  expect(await page.textContent(`${row} td:nth-child(5)`)).toBe('621700*****8901');
  await shoot(page, 'merchants');
  // No reason, no review.
  await page.click(`${row} [data-action=approve]`);
  expect(await page.textContent('[data-test=error]')).toBe('A review needs a reason.');
  await page.fill(`${row} input[name=reason]`, 'licence and premises checked');
  await page.click(`${row} [data-action=approve]`);
  await page.waitForSelector('[data-test=notice]');
  expect(await page.textContent('[data-test=notice]')).toBe(
    `Merchant ${applied.merchantId} (Bamboo Café) is now active.`,
  );
  await page.waitForSelector(row, { state: 'detached' }); // it left the queue
  await context.close();

  const merchant = await t.services.payments.getMerchant(applied.merchantId);
  expect([merchant?.status, merchant?.reviewReason]).toEqual(['active', 'licence and premises checked']);
  // Approval opened the merchant's ledger accounts, acted by the operator through the console.
  t.ledger.invalidate();
  expect((await t.ledger.getAccount(applied.pendingAccount))?.status).toBe('open');
  const reviewed = (await auditRows()).filter((r) => r.action === 'api.review_merchant');
  expect(reviewed.map((r) => [r.actor, r.role, r.outcome])).toEqual([
    [operators['olivia']!.operatorId, 'operator', 'succeeded'],
  ]);
});

test('clearing: a reconciliation with one discrepancy; the clearing operator resolves it in the console', async () => {
  // Yesterday's bill has yesterday's payment and one order we never booked: a long case (长款) of 40.00.
  const bill = bankSimBill(YESTERDAY, [
    { txn: 'C01', order: 'ORDER-1', amount: '12.50' },
    { txn: 'C02', order: 'O-UNKNOWN', amount: '40.00' },
  ]);
  const summary = await clearing.reconcile('bank_sim', YESTERDAY, bill, 'bank-sim-yesterday.txt');
  expect([summary.matched, summary.discrepancies]).toEqual([1, 1]);
  await clearing.clear(YESTERDAY);
  const [open] = await clearing.listCases({ billDate: YESTERDAY });
  expect([open?.class, open?.state, open?.delta]).toEqual(['long', 'open', '40.00']);
  const suspense = async (): Promise<string> => {
    t.ledger.invalidate();
    return new Money((await t.ledger.getAccount('PLATFORM-SUSPENSE-CNY'))!.posted).toFixed(2);
  };
  expect(await suspense()).toBe('40.00'); // held in suspense (挂账) until resolved

  const { context, page } = await newPage();
  await loginAs(page, operators['clara']!);
  await page.click('[data-nav=clearing]');
  await page.fill('input[name=businessDate]', YESTERDAY);
  await page.click('form.inline button[type=submit]');
  const row = `[data-case="${open!.caseId}"]`;
  await page.waitForSelector(row);
  expect(
    await page.$$eval('[data-test=runs] tbody tr td:first-child', (cells) => cells.map((c) => c.textContent)),
  ).toEqual(expect.arrayContaining(['reconciliation', 'clearing']));
  const results = await page.$$eval('[data-test=results] tbody tr', (rows) =>
    rows.map((r) => [...r.querySelectorAll('td')].slice(0, 3).map((c) => c.textContent)),
  );
  expect(results).toContainEqual([activeMerchantId, '1', '12.50']);
  expect(await page.textContent(`${row} [data-test=case-state]`)).toMatch(/^\s*open\s*$/);
  await page.selectOption(`${row} select[name=resolution]`, 'refund');
  await page.fill(`${row} input[name=note]`, 'not our order: returned to the payer');
  await page.click(`${row} [data-action=resolve]`);
  await page.waitForSelector('[data-test=notice]');
  // The notice comes first; the list is then read again (resolved cases included).
  await page.locator(`${row} [data-test=case-state]`, { hasText: 'resolved (refund by' }).waitFor();
  expect(await page.textContent('[data-test=notice]')).toBe(`Case ${open!.caseId} is resolved (refund).`);
  await shoot(page, 'clearing');
  await context.close();

  const resolved = await clearing.getCase(open!.caseId);
  expect([resolved?.state, resolved?.resolution, resolved?.resolvedBy, resolved?.note]).toEqual([
    'resolved',
    'refund',
    operators['clara']!.operatorId,
    'not our order: returned to the payer',
  ]);
  expect(await suspense()).toBe('0.00');
});

test('keys: the administrator sees key ids, ages and status, never key material', async () => {
  // A TOTP code is good once per 30-second step: the administrator's second login is a minute later.
  t.clock = new Date(t.clock.getTime() + 60_000);
  const masterKey = randomBytes(16);
  await DataKeyRing.open(t.readModels.database, masterKey);
  await DataKeyRing.rotate(t.readModels.database, masterKey);
  const stored = await t.readModels.database.query<{ key_id: string; wrapped: string; retired_at: Date | null }>(
    'SELECT key_id, wrapped, retired_at FROM cp_data_keys ORDER BY created_at, key_id',
  );
  expect(stored.length).toBe(2);
  const { context, page } = await newPage();
  await loginAs(page, operators['admin']!);
  await page.click('[data-nav=keys]');
  await page.waitForSelector('[data-test=clients] tbody tr');
  const keys = await page.$$eval('[data-test=data-keys] tbody tr', (rows) =>
    rows.map((row) => [...row.querySelectorAll('td')].slice(0, 2).map((c) => c.textContent)),
  );
  expect(keys).toEqual(
    expect.arrayContaining([
      [stored.find((k) => k.retired_at !== null)!.key_id, 'retired'],
      [stored.find((k) => k.retired_at === null)!.key_id, 'active'],
    ]),
  );
  const clientRows = await page.$$eval('[data-test=clients] tbody tr', (rows) =>
    rows.map((row) => [...row.querySelectorAll('td')].map((c) => c.textContent)),
  );
  expect(clientRows).toEqual([
    ['mall-service', 'payment_service', 'hmac-sm3', 'no', 'no', 'no'],
    ['partner-city', 'partner', 'sm2', 'yes', 'no', 'no'],
  ]);
  const html = await page.content();
  for (const k of stored) for (const part of k.wrapped.split(':')) expect(html).not.toContain(part);
  for (const c of clients) {
    if (c.secretHex) expect(html).not.toContain(c.secretHex);
    if (c.publicKeyHex) expect(html).not.toContain(c.publicKeyHex.slice(0, 32));
  }
  await shoot(page, 'keys');
  await context.close();

  // Other roles have no key screen, and the API refuses them the operation.
  const login = await t.post('/v1/auth/login', { username: 'audrey', password: operators['audrey']!.password });
  const denied = await t.get('/v1/console/keys', { authorization: `Bearer ${String(login.body['token'])}` });
  expect([denied.status, denied.body['code']]).toEqual([403, 'forbidden']);
});

test('audit: every console action of these tests is in the audit log, and the auditor reads it in the console', async () => {
  const { context, page } = await newPage();
  await loginAs(page, operators['audrey']!);
  await page.click('[data-nav=audit]');
  await page.waitForSelector('[data-test=audit-log] tbody tr');
  await page.waitForSelector('[data-test=ledger-trail] tbody tr'); // read after the log
  const shown = await page.$$eval('[data-test=audit-log] tbody tr', (rows) =>
    rows.map((row) => row.getAttribute('data-action')),
  );
  expect(shown).toEqual(
    expect.arrayContaining([
      'api.login',
      'api.review_merchant',
      'api.resolve_discrepancy_case',
      'personal_data.unmask',
      'api.list_keys',
    ]),
  );
  // The ledger's own trail: the merchant approval opened accounts acted by the operator, through the console.
  const ledgerActors = await page.$$eval('[data-test=ledger-trail] tbody tr', (rows) =>
    rows.map((row) => [...row.querySelectorAll('td')].map((c) => c.textContent)),
  );
  expect(ledgerActors).toEqual(
    expect.arrayContaining([expect.arrayContaining(['OpenAccount', operators['olivia']!.operatorId, 'console'])]),
  );
  await shoot(page, 'audit');
  await context.close();

  // Every request any console page sent, answered or refused, is in the audit log under its request id.
  const logged = new Set((await auditRows()).map((r) => r.request_id));
  const requests = browserRequests.filter((r) => r.requestId !== '');
  expect(requests.length).toBe(browserRequests.length);
  expect(requests.filter((r) => !logged.has(r.requestId))).toEqual([]);
  const paths = new Set(requests.map((r) => r.path));
  for (const path of [
    '/v1/auth/login',
    '/v1/console/profile',
    '/v1/console/dashboard',
    '/v1/console/accounts',
    `/v1/accounts/${wallet.accounts.main}`,
    `/v1/accounts/${wallet.accounts.main}/statement`,
    '/v1/console/merchants',
    `/v1/console/clearing/days/${YESTERDAY}`,
    '/v1/console/clearing/cases',
    '/v1/console/keys',
    '/v1/console/audit-log',
    '/v1/audit-trail',
  ])
    expect([path, paths.has(path)]).toEqual([path, true]);
  expect(requests.filter((r) => r.method === 'POST' && /\/(review|resolve)$/.test(r.path)).length).toBe(2);
  const verification = await t.audit.verify();
  expect([verification.ok, verification.problems]).toEqual([true, []]);
});
