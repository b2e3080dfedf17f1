import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Api, Logger } from '../api';
import { createApi, createLogger, createMetrics, IdempotencyRecords, listenHttp } from '../api';
import type { EventStore, Ledger } from '../core-ledger';
import { ReadModelQueries } from '../projections';
import type { Config } from './config';
import type { ReadModels } from './platform';

/** The HTTP door over this process's ledger and read models. */
export async function createPlatformApi(
  ledger: Ledger,
  store: EventStore,
  readModels: ReadModels,
  config: Pick<Config, 'cutoffHourLocal'>,
  logger: Logger = createLogger(),
  now: () => Date = () => new Date(),
): Promise<Api> {
  const idempotency = new IdempotencyRecords(readModels.database);
  await idempotency.install();
  return createApi({
    ledger,
    store,
    queries: new ReadModelQueries(readModels.database),
    idempotency,
    runner: readModels.runner,
    logger,
    metrics: createMetrics(ledger, readModels.runner),
    cutoffHourLocal: config.cutoffHourLocal,
    now,
  });
}

export function listenPlatform(
  api: Api,
  config: Pick<Config, 'host' | 'port' | 'tlsCertFile' | 'tlsKeyFile'>,
): Promise<Server> {
  const tls =
    config.tlsCertFile !== undefined && config.tlsKeyFile !== undefined
      ? { cert: readFileSync(config.tlsCertFile), key: readFileSync(config.tlsKeyFile) }
      : undefined;
  return listenHttp(api, config.host, config.port, tls);
}
