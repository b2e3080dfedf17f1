import type { Server } from 'node:http';
import express from 'express';
import type { EventStore, Ledger } from '../core-ledger';
import type { ReadModels } from './platform';

/**
 * The HTTP door as it stands: health and readiness with the writer's counters. The command and query API
 * (issue #5) mounts on this app.
 */
export function createApp(ledger: Ledger, store: EventStore, readModels?: ReadModels): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/health', async (_request, response) => {
    try {
      await store.streamRevision('health-probe');
      response.json({
        status: 'ok',
        eventStore: store.name,
        ledger: ledger.stats,
        readModels: readModels?.runner?.status() ?? null,
      });
    } catch (error) {
      response.status(503).json({
        code: 'unavailable',
        message: 'event store unreachable',
        details: { reason: (error as Error).message },
      });
    }
  });
  app.use((_request, response) => {
    response.status(404).json({ code: 'not_found', message: 'no such route', details: {} });
  });
  return app;
}

export function listen(app: express.Express, host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host, (error?: Error) => (error ? reject(error) : resolve(server)));
    server.on('error', reject);
  });
}
