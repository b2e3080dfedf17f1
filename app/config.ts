import { IpAllowList, isRole } from '../security';
/**
 * Configuration: environment variables only, validated once at start. A bad value stops the process with one
 * line naming the variable, the rule and the value.
 */
export type EventStoreKind = 'pglite' | 'postgres' | 'memory' | 'kurrentdb';

export interface Config {
  readonly eventStore: EventStoreKind;
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly kurrentDbUrl: string | undefined;
  readonly host: string;
  readonly port: number;
  readonly batchMaxCommands: number;
  readonly snapshotEveryEvents: number;
  readonly databasePoolSize: number;
  /** Connections to the read-model database, which the services (wallets, payments, carbon, outbox) share. */
  readonly readPoolSize: number;
  /** Where the read models live; undefined: beside the event store (its PostgreSQL, or its PGlite). */
  readonly readModelUrl: string | undefined;
  /** Whether this process runs the projection runners (one leads across processes; others stand by). */
  readonly runProjections: boolean;
  /** PEM files for HTTPS (TLS 1.2+); without them the server listens on plain HTTP, on loopback only. */
  readonly tlsCertFile: string | undefined;
  readonly tlsKeyFile: string | undefined;
  /** Hour (0..23, China Standard Time) at which the business date turns. */
  readonly cutoffHourLocal: number;
  /** Carbon credits per gram CO2e (a decimal string; 1 as in Wuhan and Shanghai). */
  readonly creditsPerGram: string;
  /** Days a carbon credit stays valid. */
  readonly creditLifetimeDays: number;
  /** Milliseconds between runs of the idempotent jobs (credit expiry, unfinished issuances and payments); 0: never. */
  readonly jobIntervalMs: number;
  /** Risk control on payments and carbon records (#14). */
  readonly risk: 'on' | 'off';
  /** Most milliseconds between two looks of risk control at other instances' decisions (their staleness bound). */
  readonly riskSyncMs: number;
  /** Milliseconds between rounds of the outbox dispatcher (webhooks, notifications). */
  readonly outboxIntervalMs: number;
  /** Milliseconds a shutdown waits for requests in flight. */
  readonly shutdownGraceMs: number;
  /** `required`: sessions or signed requests on every protected operation; `off`: loopback development only. */
  readonly auth: 'required' | 'off';
  /** JSON file of registered clients (partners: SM2 public keys; internal services: HMAC-SM3 keys), kept apart from the database. */
  readonly clientsFile: string | undefined;
  /** Redis for the nonce store shared by instances; without it nonces are remembered in this process only. */
  readonly redisUrl: string | undefined;
  /** File holding the platform's SM2 private key (hex): answers to SM2 partners are signed with it. */
  readonly platformKeyFile: string | undefined;
  /** File holding the master key (32 hex digits) that wraps the data keys sealing personal data at rest. */
  readonly masterKeyFile: string | undefined;
  /** Per role, the addresses and CIDR ranges its callers may come from (roles not named: anywhere). */
  readonly roleAllowedIps: Readonly<Record<string, readonly string[]>>;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    rule: string,
    value: string,
  ) {
    super(`invalid configuration: ${variable} ${rule}, got ${JSON.stringify(value)}`);
    this.name = 'ConfigError';
  }
}

/** Every variable carbonpay reads, with its rule; README.md documents the same list. */
export const CONFIG_VARIABLES = {
  CARBONPAY_READ_POOL_SIZE: 'connections to the read-model database, shared with the services; default 20',
  CARBONPAY_CREDITS_PER_GRAM: 'carbon credits per gram CO2e, a decimal; default 1',
  CARBONPAY_CREDIT_LIFETIME_DAYS: 'days a carbon credit stays valid before the expiry job takes it; default 365',
  CARBONPAY_JOB_INTERVAL_MS:
    'interval of the idempotent jobs (credit expiry, unfinished issuances and payments); 0 never; default 3600000',
  CARBONPAY_OUTBOX_INTERVAL_MS: 'interval of the outbox dispatcher (webhooks, notifications); default 1000',
  CARBONPAY_RISK_SYNC_MS:
    "risk control: most ms between looks at other instances' decisions (how stale limits can be across instances); default 200",
  CARBONPAY_RISK: 'on | off: risk control on payments and carbon records; default on',
  CARBONPAY_CLEARING_DIR:
    'folder of clearing reports, bank payment files and their SM3 manifests; default ./clearing-output',
  CARBONPAY_CLEARING_PAYER_ACCOUNT: 'the platform bank account named as payer in bank payment files',
  CARBONPAY_CLEARING_BANK_CODE: 'the 12-digit CNAPS code of the payees’ bank in bank payment files',
  CARBONPAY_EVENT_STORE:
    'pglite | postgres | memory | kurrentdb; default postgres when DATABASE_URL is set, else pglite',
  DATABASE_URL: 'postgresql://user@host:port/database for the postgres event store',
  CARBONPAY_DATA_DIR: 'folder of the embedded PGlite database; default ./.data/pglite',
  KURRENTDB_URL: 'kurrentdb://host:2113?tls=false for the kurrentdb event store',
  HOST: 'address the HTTP server binds; default 127.0.0.1',
  PORT: 'HTTP port 1..65535; default 3000',
  CARBONPAY_BATCH_MAX_COMMANDS: 'commands per group commit, 1..1000; default 1000',
  CARBONPAY_SNAPSHOT_EVERY: 'account events between snapshots, 10..1000000; default 1000',
  CARBONPAY_DB_POOL_SIZE: 'PostgreSQL connections, 2..100; default 10',
  CARBONPAY_READ_MODEL_URL:
    'postgresql:// database of the read models; default the event store own (required with kurrentdb)',
  CARBONPAY_PROJECTIONS: 'on | off: run the read-model runners in this process; default on',
  CARBONPAY_TLS_CERT: 'PEM certificate file: serve HTTPS (TLS 1.2+); required unless HOST is a loopback address',
  CARBONPAY_TLS_KEY: 'PEM private key file of CARBONPAY_TLS_CERT',
  CARBONPAY_CUTOFF_HOUR: 'hour 0..23 (China Standard Time) at which the business date turns; default 0',
  CARBONPAY_SHUTDOWN_GRACE_MS: 'milliseconds a shutdown waits for requests in flight, 0..600000; default 10000',
  CARBONPAY_AUTH:
    'required | off: authenticate callers (off only with a loopback HOST, for development); default required',
  CARBONPAY_CLIENTS_FILE:
    'JSON file of registered clients: [{clientId, role, method: sm2|hmac-sm3, publicKeyHex|secretHex, userId?, allowedIps?}]',
  CARBONPAY_PLATFORM_SM2_KEY_FILE:
    'file with the platform SM2 private key in hex (answers to SM2 partners are signed); kept apart from the database',
  CARBONPAY_MASTER_KEY_FILE:
    'file with the SM4 master key (32 hex digits) wrapping the data keys that seal personal data; kept apart from the database',
  CARBONPAY_ROLE_ALLOWED_IPS:
    'JSON object role → addresses or CIDR ranges its callers may come from, e.g. {"administrator":["10.0.0.0/8"]}',
  REDIS_URL: 'redis://host:6379 for the nonce store shared by API instances; default: in this process only',
  LOG_LEVEL: 'pino level: fatal | error | warn | info | debug | trace | silent; default info',
} as const;

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);

export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const databaseUrl = optional(env, 'DATABASE_URL');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl))
    throw new ConfigError('DATABASE_URL', 'must start with postgresql://', databaseUrl);
  const kurrentDbUrl = optional(env, 'KURRENTDB_URL');
  if (kurrentDbUrl !== undefined && !/^(kurrentdb|kurrent|kdb|esdb):\/\//.test(kurrentDbUrl)) {
    throw new ConfigError('KURRENTDB_URL', 'must start with kurrentdb://', kurrentDbUrl);
  }
  const storeText = optional(env, 'CARBONPAY_EVENT_STORE') ?? (databaseUrl ? 'postgres' : 'pglite');
  if (!['pglite', 'postgres', 'memory', 'kurrentdb'].includes(storeText)) {
    throw new ConfigError('CARBONPAY_EVENT_STORE', 'must be one of pglite, postgres, memory, kurrentdb', storeText);
  }
  const eventStore = storeText as EventStoreKind;
  if (eventStore === 'postgres' && !databaseUrl)
    throw new ConfigError('DATABASE_URL', 'is required when CARBONPAY_EVENT_STORE=postgres', '');
  if (eventStore === 'kurrentdb' && !kurrentDbUrl)
    throw new ConfigError('KURRENTDB_URL', 'is required when CARBONPAY_EVENT_STORE=kurrentdb', '');
  const readModelUrl = optional(env, 'CARBONPAY_READ_MODEL_URL');
  if (readModelUrl !== undefined && !/^postgres(ql)?:\/\//.test(readModelUrl))
    throw new ConfigError('CARBONPAY_READ_MODEL_URL', 'must start with postgresql://', readModelUrl);
  if (eventStore === 'kurrentdb' && !readModelUrl)
    throw new ConfigError('CARBONPAY_READ_MODEL_URL', 'is required when CARBONPAY_EVENT_STORE=kurrentdb', '');
  const projections = optional(env, 'CARBONPAY_PROJECTIONS') ?? 'on';
  if (projections !== 'on' && projections !== 'off')
    throw new ConfigError('CARBONPAY_PROJECTIONS', 'must be on or off', projections);
  const tlsCertFile = optional(env, 'CARBONPAY_TLS_CERT');
  const tlsKeyFile = optional(env, 'CARBONPAY_TLS_KEY');
  if ((tlsCertFile === undefined) !== (tlsKeyFile === undefined))
    throw new ConfigError(tlsCertFile ? 'CARBONPAY_TLS_KEY' : 'CARBONPAY_TLS_CERT', 'is required with its pair', '');
  const host = optional(env, 'HOST') ?? '127.0.0.1';
  if (tlsCertFile === undefined && !LOOPBACK_HOSTS.has(host))
    throw new ConfigError(
      'HOST',
      'may be a non-loopback address only with CARBONPAY_TLS_CERT and CARBONPAY_TLS_KEY',
      host,
    );
  const logLevel = optional(env, 'LOG_LEVEL');
  if (logLevel !== undefined && !['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel))
    throw new ConfigError('LOG_LEVEL', 'must be a pino level', logLevel);
  const auth = optional(env, 'CARBONPAY_AUTH') ?? 'required';
  if (auth !== 'required' && auth !== 'off') throw new ConfigError('CARBONPAY_AUTH', 'must be required or off', auth);
  if (auth === 'off' && !LOOPBACK_HOSTS.has(host))
    throw new ConfigError('CARBONPAY_AUTH', 'may be off only when HOST is a loopback address', auth);
  const redisUrl = optional(env, 'REDIS_URL');
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl))
    throw new ConfigError('REDIS_URL', 'must start with redis://', redisUrl);
  return {
    eventStore,
    databaseUrl,
    dataDir: optional(env, 'CARBONPAY_DATA_DIR') ?? './.data/pglite',
    kurrentDbUrl,
    host,
    port: integer(env, 'PORT', 3000, 1, 65_535),
    batchMaxCommands: integer(env, 'CARBONPAY_BATCH_MAX_COMMANDS', 1_000, 1, 1_000),
    snapshotEveryEvents: integer(env, 'CARBONPAY_SNAPSHOT_EVERY', 1_000, 10, 1_000_000),
    databasePoolSize: integer(env, 'CARBONPAY_DB_POOL_SIZE', 10, 2, 100),
    readPoolSize: integer(env, 'CARBONPAY_READ_POOL_SIZE', 20, 2, 200),
    readModelUrl,
    runProjections: projections === 'on',
    tlsCertFile,
    tlsKeyFile,
    cutoffHourLocal: integer(env, 'CARBONPAY_CUTOFF_HOUR', 0, 0, 23),
    shutdownGraceMs: integer(env, 'CARBONPAY_SHUTDOWN_GRACE_MS', 10_000, 0, 600_000),
    creditsPerGram: decimalText(env, 'CARBONPAY_CREDITS_PER_GRAM', '1'),
    creditLifetimeDays: integer(env, 'CARBONPAY_CREDIT_LIFETIME_DAYS', 365, 1, 3_650),
    jobIntervalMs: integer(env, 'CARBONPAY_JOB_INTERVAL_MS', 3_600_000, 0, 86_400_000),
    outboxIntervalMs: integer(env, 'CARBONPAY_OUTBOX_INTERVAL_MS', 1_000, 50, 3_600_000),
    riskSyncMs: integer(env, 'CARBONPAY_RISK_SYNC_MS', 200, 10, 60_000),
    risk: onOff(env, 'CARBONPAY_RISK', 'on'),
    auth,
    clientsFile: optional(env, 'CARBONPAY_CLIENTS_FILE'),
    redisUrl,
    platformKeyFile: optional(env, 'CARBONPAY_PLATFORM_SM2_KEY_FILE'),
    masterKeyFile: optional(env, 'CARBONPAY_MASTER_KEY_FILE'),
    roleAllowedIps: roleAllowedIpsOf(optional(env, 'CARBONPAY_ROLE_ALLOWED_IPS')),
  };
}

function onOff(env: NodeJS.ProcessEnv, name: string, fallback: 'on' | 'off'): 'on' | 'off' {
  const value = env[name] ?? fallback;
  if (value !== 'on' && value !== 'off') throw new ConfigError(name, 'must be on or off', value);
  return value;
}

function decimalText(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const value = env[name] ?? fallback;
  if (!/^(0|[1-9][0-9]{0,5})(\.[0-9]{1,6})?$/.test(value) || Number(value) === 0)
    throw new ConfigError(name, 'must be a positive decimal such as 1 or 0.01', value);
  return value;
}

function optional(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const text = optional(env, name);
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max)
    throw new ConfigError(name, `must be an integer ${min}..${max}`, text);
  return Number(text);
}

function roleAllowedIpsOf(text: string | undefined): Record<string, readonly string[]> {
  if (text === undefined) return {};
  const rule = 'must be a JSON object of role → array of IP addresses or CIDR ranges';
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError('CARBONPAY_ROLE_ALLOWED_IPS', rule, text);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new ConfigError('CARBONPAY_ROLE_ALLOWED_IPS', rule, text);
  for (const [role, entries] of Object.entries(parsed)) {
    if (!isRole(role)) throw new ConfigError('CARBONPAY_ROLE_ALLOWED_IPS', `names an unknown role ${role}`, text);
    if (!Array.isArray(entries) || !entries.every((e) => typeof e === 'string'))
      throw new ConfigError('CARBONPAY_ROLE_ALLOWED_IPS', rule, text);
    try {
      IpAllowList.from(entries as string[]);
    } catch (error) {
      throw new ConfigError('CARBONPAY_ROLE_ALLOWED_IPS', (error as Error).message, text);
    }
  }
  return parsed as Record<string, readonly string[]>;
}
