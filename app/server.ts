import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { resolve } from 'node:path';
import type { Api, Logger } from '../api';
import { createApi, createLogger, createMetrics, IdempotencyRecords, listenHttp } from '../api';
import { ClearingService } from '../clearing';
import type { EventStore, Ledger } from '../core-ledger';
import { ReadModelQueries } from '../projections';
import type { ClientCredential, ClientRegistration, NonceStore, Role } from '../security';
import {
  IpAllowList,
  AuditChain,
  DataKeyRing,
  EncryptingEventStore,
  readMasterKey,
  credentialOf,
  MemoryNonceStore,
  OperatorDirectory,
  RedisNonceStore,
  Sm2PrivateKey,
} from '../security';
import type { PersonalDataCipher } from '../services';
import {
  BankChannelSimulator,
  CarbonService,
  CrmSyncService,
  DEFAULT_CARBON_POLICY,
  ExchangeReceiver,
  DEFAULT_SIMULATOR_OPTIONS,
  Outbox,
  OutboxDispatcher,
  RiskService,
  SmsSimulator,
  DEFAULT_RISK_OPTIONS,
  STARTER_RULE_SET,
  smsTransport,
  webhookTransport,
  DEFAULT_PAYMENT_POLICY,
  PaymentService,
  PLAINTEXT,
  WalletService,
} from '../services';
import type { Config } from './config';
import { ConfigError } from './config';
import type { ReadModels } from './platform';

export type PlatformApiConfig = Pick<
  Config,
  'cutoffHourLocal' | 'auth' | 'clientsFile' | 'redisUrl' | 'platformKeyFile'
> &
  Partial<
    Pick<
      Config,
      | 'roleAllowedIps'
      | 'masterKeyFile'
      | 'creditsPerGram'
      | 'creditLifetimeDays'
      | 'jobIntervalMs'
      | 'outboxIntervalMs'
      | 'risk'
      | 'riskSyncMs'
    >
  >;

export interface PlatformApi {
  readonly api: Api;
  readonly operators: OperatorDirectory;
  readonly audit: AuditChain;
  readonly services: PlatformServices;
  close(): Promise<void>;
}

/** The HTTP door over this process's ledger and read models, with its callers' credentials. */
export async function createPlatformApi(
  ledger: Ledger,
  store: EventStore,
  readModels: ReadModels,
  config: PlatformApiConfig,
  logger: Logger = createLogger(),
  now: () => Date = () => new Date(),
  clients: readonly ClientRegistration[] = loadClients(config.clientsFile),
): Promise<PlatformApi> {
  const idempotency = new IdempotencyRecords(readModels.database);
  await idempotency.install();
  const operators = new OperatorDirectory(readModels.database);
  await operators.install();
  const audit = new AuditChain(readModels.database);
  await audit.install();
  const services = await startServices(ledger, readModels, config, logger, now);
  const nonces: NonceStore = config.redisUrl ? new RedisNonceStore(config.redisUrl) : new MemoryNonceStore();
  // The console resolves discrepancy cases through the same service as the CLI (the folder it writes reports to is
  // the CLI's; resolving writes none).
  const clearing = new ClearingService(readModels.database, ledger, services.payments, services.wallets, {
    outputDir: resolve(process.env['CARBONPAY_CLEARING_DIR'] ?? 'clearing-output'),
    cutoffHourLocal: config.cutoffHourLocal,
  });
  await clearing.install();
  const api = createApi({
    ledger,
    store,
    queries: new ReadModelQueries(readModels.database),
    idempotency,
    runner: readModels.runner,
    logger,
    metrics: createMetrics(ledger, readModels.runner),
    cutoffHourLocal: config.cutoffHourLocal,
    audit,
    recordUnmask: async (use) => {
      await audit.append({
        actor: use.actor,
        ...(use.role !== null ? { role: use.role } : {}),
        action: 'personal_data.unmask',
        subject: use.subject,
        outcome: 'succeeded',
        ...(use.context.source !== undefined ? { source: use.context.source } : {}),
        ...(use.context.requestId !== undefined ? { requestId: use.context.requestId } : {}),
      });
    },
    auth: {
      mode: config.auth,
      operators,
      clients: credentialsById(clients),
      nonces,
      roleAllowedIps: new Map(
        Object.entries(config.roleAllowedIps ?? {}).map(([role, entries]) => [role as Role, IpAllowList.from(entries)]),
      ),
      ...(config.platformKeyFile !== undefined ? { platformKey: loadPlatformKey(config.platformKeyFile) } : {}),
    },
    now,
    services,
    console: { database: readModels.database, payments: services.payments, clearing },
  });
  return {
    api,
    operators,
    audit,
    services,
    close: async () => {
      await services.stopJobs();
      await nonces.close();
    },
  };
}

export interface PlatformServices {
  readonly wallets: WalletService;
  readonly carbon: CarbonService;
  readonly payments: PaymentService;
  readonly outbox: Outbox;
  readonly crm: CrmSyncService;
  readonly exchange: ExchangeReceiver;
  readonly dispatcher: OutboxDispatcher;
  readonly sms: SmsSimulator;
  /** Runs the idempotent jobs once: issuances and payments a crash left unfinished, then credit expiry. */
  runJobs(): Promise<void>;
  stopJobs(): Promise<void>;
}

const JOB_CONTEXT = { actor: 'scheduler', channel: 'system' } as const;

/**
 * Wallets, merchants, payments and carbon inclusion, with their tables beside the read models. Personal data in
 * their tables is sealed under the master key when one is configured; account numbers are found by a blind index.
 */
async function startServices(
  ledger: Ledger,
  readModels: ReadModels,
  config: PlatformApiConfig,
  logger: Logger,
  now: () => Date,
): Promise<PlatformServices> {
  const { cipher, indexKey } = await serviceKeys(readModels.database, config.masterKeyFile);
  const wallets = new WalletService(readModels.database, ledger, cipher, indexKey);
  const carbon = new CarbonService(readModels.database, ledger, wallets, {
    ...DEFAULT_CARBON_POLICY,
    creditsPerGram: config.creditsPerGram ?? DEFAULT_CARBON_POLICY.creditsPerGram,
    creditLifetimeDays: config.creditLifetimeDays ?? DEFAULT_CARBON_POLICY.creditLifetimeDays,
    cutoffHourLocal: config.cutoffHourLocal,
  });
  const payments = new PaymentService(readModels.database, ledger, wallets, cipher, {
    ...DEFAULT_PAYMENT_POLICY,
    cutoffHourLocal: config.cutoffHourLocal,
  });
  await wallets.install();
  await carbon.install();
  await payments.install();
  const bankSimulator = new BankChannelSimulator(
    (callback) => payments.confirmTopUp(callback, { actor: 'bank_sim', channel: 'bank' }, now()),
    DEFAULT_SIMULATOR_OPTIONS,
    (error) => logger.warn({ err: error }, 'bank simulator callback failed'),
  );
  payments.attachChannel(bankSimulator);
  if ((config.risk ?? 'on') === 'on') {
    const risk = new RiskService(readModels.database, {
      ...DEFAULT_RISK_OPTIONS,
      syncIntervalMs: config.riskSyncMs ?? DEFAULT_RISK_OPTIONS.syncIntervalMs,
    });
    await risk.install();
    // A platform starts with the starter rule set (services/risk/starter-rule-set.ts); operators publish their own.
    if ((await risk.listRuleSets()).length === 0) await risk.publishRuleSet(STARTER_RULE_SET, 'system', now());
    payments.attachRisk(risk);
    carbon.attachRisk(risk);
  }
  const crm = new CrmSyncService(readModels.database, ledger, wallets);
  await crm.install();
  const exchange = new ExchangeReceiver(readModels.database);
  await exchange.install();
  const outbox = new Outbox(readModels.database, cipher);
  await outbox.install();
  wallets.attachOutbox(outbox);
  payments.attachOutbox(outbox);
  // No SMS provider is configured here: messages go to the simulator, which keeps the latest for demos and tests.
  const sms = new SmsSimulator();
  const dispatcher = new OutboxDispatcher(
    readModels.database,
    cipher,
    { webhook: webhookTransport(readModels.database, cipher, now), sms: smsTransport(wallets, sms) },
    now,
  );
  dispatcher.start(config.outboxIntervalMs ?? 1_000, (error) => logger.error({ err: error }, 'outbox round failed'));
  let running: Promise<void> | undefined;
  const runJobs = async (): Promise<void> => {
    if (running) return running;
    running = (async () => {
      const at = now();
      const issued = await carbon.resumeIssuances(JOB_CONTEXT, at);
      // A payment younger than its holds' life may still be in the hands of the request that made it.
      const payments_ = await payments.resumePayments(JOB_CONTEXT, at, DEFAULT_PAYMENT_POLICY.holdMinutes * 60_000);
      const expired = await carbon.expireCredits(at, JOB_CONTEXT);
      logger.info({ event: 'jobs', issued, payments: payments_, expired }, 'scheduled jobs ran');
    })().finally(() => {
      running = undefined;
    });
    return running;
  };
  const interval = config.jobIntervalMs ?? 0;
  const timer =
    interval > 0
      ? setInterval(
          () => void runJobs().catch((error: unknown) => logger.error({ err: error }, 'scheduled jobs failed')),
          interval,
        )
      : undefined;
  timer?.unref();
  return {
    wallets,
    carbon,
    payments,
    outbox,
    dispatcher,
    sms,
    crm,
    exchange,
    runJobs,
    stopJobs: async () => {
      clearInterval(timer);
      bankSimulator.close();
      await dispatcher.stop();
    },
  };
}

/**
 * How the services keep personal data: sealed under the data keys and found by a blind index keyed from the master
 * key; without a master key (development) in clear, with the index keyed by a public label.
 */
export async function serviceKeys(
  database: ReadModels['database'],
  masterKeyFile: string | undefined,
): Promise<{ cipher: PersonalDataCipher; indexKey: Buffer }> {
  if (masterKeyFile === undefined) return { cipher: PLAINTEXT, indexKey: Buffer.from(UNKEYED_INDEX_LABEL, 'utf8') };
  const masterKey = readMasterKey(masterKeyFile);
  return {
    cipher: await DataKeyRing.open(database, masterKey),
    indexKey: createHmac('sm3', masterKey).update(UNKEYED_INDEX_LABEL).digest(),
  };
}

/** Without a master key the blind index is keyed by this public label: fine for development, named in operations.md. */
const UNKEYED_INDEX_LABEL = 'carbonpay account-number index v1';

function loadPlatformKey(file: string): Sm2PrivateKey {
  try {
    return Sm2PrivateKey.from(readFileSync(file, 'utf8').trim());
  } catch (error) {
    throw new ConfigError(
      'CARBONPAY_PLATFORM_SM2_KEY_FILE',
      `must hold an SM2 private key in hex (${(error as Error).message})`,
      file,
    );
  }
}

function loadClients(file: string | undefined): ClientRegistration[] {
  if (file === undefined) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ConfigError('CARBONPAY_CLIENTS_FILE', `must be a readable JSON file (${(error as Error).message})`, file);
  }
  if (!Array.isArray(parsed))
    throw new ConfigError('CARBONPAY_CLIENTS_FILE', 'must hold a JSON array of clients', file);
  return parsed as ClientRegistration[];
}

function credentialsById(clients: readonly ClientRegistration[]): Map<string, ClientCredential> {
  const byId = new Map<string, ClientCredential>();
  for (const registration of clients) {
    const credential = credentialOf(registration);
    if (byId.has(credential.clientId)) throw new Error(`client ${credential.clientId} is registered twice`);
    byId.set(credential.clientId, credential);
  }
  return byId;
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

/**
 * With a master key configured, the ledger writes through a store that seals personal data (card and account
 * numbers) with SM4 under data keys kept wrapped beside the read models; without one, the store as it is.
 */
export async function protectPersonalData(
  store: EventStore,
  readModels: ReadModels,
  config: Pick<Config, 'masterKeyFile'>,
): Promise<EventStore> {
  if (config.masterKeyFile === undefined) return store;
  let masterKey: Buffer;
  try {
    masterKey = readMasterKey(config.masterKeyFile);
  } catch (error) {
    throw new ConfigError('CARBONPAY_MASTER_KEY_FILE', (error as Error).message, config.masterKeyFile);
  }
  return new EncryptingEventStore(store, await DataKeyRing.open(readModels.database, masterKey));
}
