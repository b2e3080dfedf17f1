import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Api } from '../../api';
import { createLogger, drainAndClose } from '../../api';
import type { PlatformServices, ReadModels } from '../../app';
import { createPlatformApi, listenPlatform, startLedger, startReadModels } from '../../app';
import type { EventStore, Ledger } from '../../core-ledger';
import { InMemoryEventStore, openPostgresEventStore } from '../../core-ledger';
import type { AuditChain, ClientRegistration, OperatorDirectory } from '../../security';
import { createTestDatabase } from './databases';

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Record<string, unknown>;
}

/** A carbonpay HTTP door on a free port, over a fresh PostgreSQL database (or in memory), with a settable clock. */
export interface TestApi {
  readonly base: string;
  readonly store: EventStore;
  readonly ledger: Ledger;
  readonly readModels: ReadModels;
  readonly api: Api;
  readonly operators: OperatorDirectory;
  readonly audit: AuditChain;
  readonly services: PlatformServices;
  /** The instant the API stamps on commands; tests move it. */
  clock: Date;
  post(path: string, body: unknown, idempotencyKey?: string, headers?: Record<string, string>): Promise<HttpAnswer>;
  get(path: string, headers?: Record<string, string>): Promise<HttpAnswer>;
  /** Waits until the read models have applied everything the log holds now. */
  caughtUp(): Promise<void>;
  close(): Promise<void>;
}

/** An HTTP response as tests read it: status, headers and the JSON body ({} when empty). */
export async function httpAnswerOf(response: Response): Promise<HttpAnswer> {
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
  };
}

export interface TestApiOptions {
  /** `off` unless a test is about authentication. */
  readonly auth?: 'required' | 'off';
  readonly clients?: readonly ClientRegistration[];
  readonly platformKeyFile?: string;
  readonly roleAllowedIps?: Readonly<Record<string, readonly string[]>>;
}

export async function startTestApi(kind: 'postgres' | 'memory', options: TestApiOptions = {}): Promise<TestApi> {
  const database = kind === 'postgres' ? await createTestDatabase('api') : undefined;
  const store: EventStore = database
    ? await openPostgresEventStore({ connectionString: database.url, maxConnections: 8 })
    : new InMemoryEventStore();
  const ledger = await startLedger(store, { batchMaxCommands: 1000, snapshotEveryEvents: 1000 });
  const readModels = await startReadModels(
    { eventStore: kind, databaseUrl: database?.url, readModelUrl: undefined, runProjections: true },
    store,
  );
  const harness: Partial<TestApi> & { clock: Date } = { clock: new Date('2026-11-23T02:00:00.000Z') };
  const platform = await createPlatformApi(
    ledger,
    store,
    readModels,
    {
      cutoffHourLocal: 0,
      auth: options.auth ?? 'off',
      clientsFile: undefined,
      redisUrl: undefined,
      platformKeyFile: options.platformKeyFile,
      roleAllowedIps: options.roleAllowedIps ?? {},
    },
    createLogger('silent'),
    () => harness.clock,
    options.clients ?? [],
  );
  const { api } = platform;
  const server: Server = await listenPlatform(api, {
    host: '127.0.0.1',
    port: 0,
    tlsCertFile: undefined,
    tlsKeyFile: undefined,
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const answer = httpAnswerOf;
  return Object.assign(harness, {
    base,
    store,
    ledger,
    readModels,
    api,
    operators: platform.operators,
    audit: platform.audit,
    services: platform.services,
    post: async (path: string, body: unknown, idempotencyKey?: string, headers: Record<string, string> = {}) =>
      answer(
        await fetch(`${base}${path}`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...(idempotencyKey !== undefined ? { 'idempotency-key': idempotencyKey } : {}),
            ...headers,
          },
          body: typeof body === 'string' ? body : JSON.stringify(body),
        }),
      ),
    get: async (path: string, headers: Record<string, string> = {}) =>
      answer(await fetch(`${base}${path}`, { headers })),
    caughtUp: async () => {
      const last = (await store.readAll({ maxCount: 1_000_000 })).at(-1);
      if (last) await readModels.runner!.waitUntilApplied(last.position);
    },
    close: async () => {
      await drainAndClose(api, server, 2_000);
      await ledger.close();
      await platform.close();
      await readModels.close();
      await store.close();
      await database?.drop();
    },
  }) as TestApi;
}
