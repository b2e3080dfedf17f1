import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { startTestApi } from '../support/api-server';
import { PLATFORM_ACCOUNTS } from '../../core-ledger';

describe('the HTTP door', () => {
  test('GET /health answers with the store and the writer counters; unknown routes get a JSON 404', async () => {
    const t = await startTestApi('memory');
    try {
      const health = await t.get('/health');
      expect(health.status).toBe(200);
      expect(health.body).toMatchObject({
        status: 'ok',
        eventStore: 'memory',
        ledger: { commandsCommitted: PLATFORM_ACCOUNTS.length },
      }); // the platform accounts
      // The runner takes the lead and applies the platform accounts' events shortly after start.
      await t.caughtUp();
      expect((await t.get('/health')).body['readModels']).toMatchObject({
        projection: 'ledger',
        leader: true,
        lagMs: 0,
      });
      const missing = await t.get('/nope');
      expect([missing.status, missing.body]).toEqual([
        404,
        { code: 'not_found', message: 'no such route', details: {} },
      ]);
    } finally {
      await t.close();
    }
  });

  test('carbonpay serve refuses a bad configuration with exit 2 and one line on stderr', async () => {
    const child = spawn(process.execPath, [join(__dirname, '..', '..', 'bin', 'carbonpay.js'), 'serve'], {
      env: { ...process.env, PORT: 'http' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toEqual([
      'carbonpay: invalid configuration: PORT must be an integer 1..65535, got "http"',
    ]);
  }, 60_000);
});
