import type { AddressInfo } from 'node:net';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createPlatformApi, listenPlatform, startLedger, startReadModels } from '../../app';
import { createLogger, drainAndClose } from '../../api';
import { InMemoryEventStore } from '../../core-ledger';

describe('the HTTP door', () => {
  test('GET /health answers with the store and the writer counters; unknown routes get a JSON 404', async () => {
    const store = new InMemoryEventStore();
    const ledger = await startLedger(store, { batchMaxCommands: 100, snapshotEveryEvents: 100 });
    const readModels = await startReadModels(
      { eventStore: 'memory', databaseUrl: undefined, readModelUrl: undefined, runProjections: true },
      store,
    );
    const api = await createPlatformApi(ledger, store, readModels, { cutoffHourLocal: 0 }, createLogger('silent'));
    const server = await listenPlatform(api, {
      host: '127.0.0.1',
      port: 0,
      tlsCertFile: undefined,
      tlsKeyFile: undefined,
    });
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const health = await fetch(`${base}/health`);
      expect(health.status).toBe(200);
      const body = (await health.json()) as {
        status: string;
        eventStore: string;
        ledger: { commandsCommitted: number };
        readModels: { projection: string; leader: boolean };
      };
      expect(body.status).toBe('ok');
      expect(body.eventStore).toBe('memory');
      expect(body.ledger.commandsCommitted).toBe(6); // the six platform accounts opened at start
      // The runner takes the lead and applies the platform accounts' events shortly after start.
      await readModels.runner!.waitUntilApplied((await store.readAll({ maxCount: 100 })).at(-1)!.position);
      const later = (await (await fetch(`${base}/health`)).json()) as typeof body;
      expect(later.readModels).toMatchObject({ projection: 'ledger', leader: true, lagMs: 0 });
      const missing = await fetch(`${base}/nope`);
      expect(missing.status).toBe(404);
      expect(await missing.json()).toEqual({ code: 'not_found', message: 'no such route', details: {} });
    } finally {
      await drainAndClose(api, server, 1_000);
      await ledger.close();
      await readModels.close();
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
