import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accountStreamId, makeCardNumber, openPostgresEventStore } from '../../core-ledger';
import { PostgresReadModels } from '../../projections';
import { DataKeyRing, EncryptingEventStore } from '../../security';
import { createTestDatabase } from '../support/databases';
import { freePort } from '../support/free-port';
import { BANK, merchantPending, userWallet } from '../support/ledger-fixtures';

/**
 * Issue #6 must-show 5: after accounts with card and mobile numbers are opened and used through `carbonpay serve`,
 * no plaintext card or mobile number is in a dump of the database or in the service's logs; with the master key
 * they open again.
 */
const ACCOUNTS = 12;

test('no plaintext card or mobile number in a database dump or the logs', async () => {
  const database = await createTestDatabase('pii');
  const folder = mkdtempSync(join(tmpdir(), 'carbonpay-keys-'));
  const masterKeyFile = join(folder, 'master.key');
  const masterKey = randomBytes(16);
  writeFileSync(masterKeyFile, masterKey.toString('hex'), { mode: 0o600 });
  const port = await freePort();
  const child = spawn(process.execPath, [join(__dirname, '..', '..', 'bin', 'carbonpay.js'), 'serve'], {
    env: {
      ...process.env,
      DATABASE_URL: database.url,
      PORT: String(port),
      CARBONPAY_AUTH: 'off',
      CARBONPAY_MASTER_KEY_FILE: masterKeyFile,
      LOG_LEVEL: 'debug',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let logs = '';
  child.stdout.on('data', (chunk: Buffer) => (logs += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (logs += chunk.toString()));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const personal: { accountId: string; cardNumber: string; mobile: string }[] = Array.from(
    { length: ACCOUNTS },
    (_, i) => ({
      accountId: userWallet(800 + i),
      cardNumber: makeCardNumber({ areaCode: '0794', sequence: 8_000 + i }),
      mobile: `139${String(20_000_000 + i * 7_919).padStart(8, '0')}`,
    }),
  );
  try {
    while (!logs.includes('listening')) {
      if (child.exitCode !== null) throw new Error(`serve exited: ${logs}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const post = (path: string, body: unknown, key: string): Promise<Response> =>
      fetch(`http://127.0.0.1:${port}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify(body),
      });
    const shop = merchantPending(80);
    expect(
      (await post('/v1/accounts', { accountId: shop, kind: 'merchant_pending_settlement', ownerId: 'shop' }, 'shop'))
        .status,
    ).toBe(201);
    for (const p of personal) {
      const opened = await post(
        '/v1/accounts',
        {
          accountId: p.accountId,
          kind: 'user_main',
          ownerId: `o-${p.accountId}`,
          cardNumber: p.cardNumber,
          accountNumber: p.mobile,
        },
        `open-${p.accountId}`,
      );
      expect(opened.status).toBe(201);
      const postings = (from: string, to: string, amount: string): unknown[] => [
        { accountId: from, direction: 'debit', amount },
        { accountId: to, direction: 'credit', amount },
      ];
      expect(
        (
          await post(
            '/v1/transfers',
            { transferType: 'top_up', postings: postings(BANK, p.accountId, '10.00') },
            `fund-${p.accountId}`,
          )
        ).status,
      ).toBe(201);
      expect(
        (
          await post(
            '/v1/transfers',
            { transferType: 'payment', postings: postings(p.accountId, shop, '1.00') },
            `pay-${p.accountId}`,
          )
        ).status,
      ).toBe(201);
      const seen = (await (await fetch(`http://127.0.0.1:${port}/v1/accounts/${p.accountId}`)).json()) as Record<
        string,
        unknown
      >;
      expect([seen['cardNumber'], seen['accountNumber']]).toEqual([
        `${p.cardNumber.slice(0, 6)}*****${p.cardNumber.slice(-4)}`,
        `1*****${p.mobile.slice(-2)}`,
      ]);
    }
    // Let the read models catch up, so their tables are in the dump too.
    await new Promise((r) => setTimeout(r, 1_500));
    child.kill('SIGTERM');
    await exited;

    const dump = execFileSync('pg_dump', ['--data-only', '--no-owner', database.url], {
      maxBuffer: 256 * 1024 * 1024,
    }).toString('utf8');
    expect(dump).toContain('sm4gcm:v1:');
    expect(dump).toContain(personal[0]!.accountId); // account ids are not personal data: the dump is the right one
    const leaks = personal
      .flatMap((p) => [p.cardNumber, p.mobile])
      .filter((secret) => dump.includes(secret) || logs.includes(secret));
    expect(leaks).toEqual([]);

    // With the master key, the data opens again.
    const store = await openPostgresEventStore({ connectionString: database.url });
    const readModels = new PostgresReadModels(database.url, 2);
    try {
      const opened = new EncryptingEventStore(store, await DataKeyRing.open(readModels, masterKey));
      const first = (await opened.readStream(accountStreamId(personal[0]!.accountId)))[0]!;
      expect([first.type, first.data['cardNumber'], first.data['accountNumber']]).toEqual([
        'AccountOpened',
        personal[0]!.cardNumber,
        personal[0]!.mobile,
      ]);
      await expect(DataKeyRing.open(readModels, randomBytes(16))).rejects.toThrow(/does not open with this master key/);
    } finally {
      await readModels.close();
      await store.close();
    }
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(folder, { recursive: true, force: true });
    await database.drop();
  }
}, 120_000);
