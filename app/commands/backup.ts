import { createHash, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { WriteStream } from 'node:fs';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { finished } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { Client } from 'pg';
import { parseSm3Manifest } from '../../clearing';
import { encodePosition, EVENT_STORE_FUNCTIONS, openPostgresEventStore } from '../../core-ledger';
import type { SqlQueryable, SqlStatement } from '../../projections';
import type { Config } from '../config';
import { ConfigError, loadConfig } from '../config';
import { startReadModels } from '../platform';
import type { Io } from './io';

/**
 * Backups of the event store (the source of truth) and of the service tables beside the read models (wallets,
 * payments, merchants, operators, wrapped data keys, the audit chain …: not derivable from the log), and the
 * restore into an empty database followed by a rebuild of the read models (issue #11, docs/operations.md).
 *
 * A backup is defined by a PostgreSQL snapshot, not by a log position: it holds every event visible in its
 * snapshot, an incremental every event visible in its snapshot and not in its base's. With a position alone an
 * event committed late (by a transaction that started earlier) would fall between two backups, and the service
 * tables — read in the same snapshot — could name a transfer the log part does not hold.
 *
 * Layout: a backup set is a folder; each backup one sub-folder `<NNNN>-<full|incremental>-<UTC time>` holding
 * `backup.json` (what it is), `schema.json` (the service tables' DDL), `events.jsonl.gz`, one
 * `table-<name>.jsonl.gz` per service table and `SM3SUMS` (`<sm3>  <bytes>  <name>` per file, the clearing
 * manifest format) over all of them.
 */

export const BACKUP_FORMAT = 'carbonpay-backup/1';
export const MANIFEST_NAME = 'SM3SUMS';
const DESCRIPTOR_NAME = 'backup.json';
const SCHEMA_NAME = 'schema.json';
const EVENTS_NAME = 'events.jsonl.gz';

/** Bounds (TIGER_STYLE: a limit on everything). */
export const BACKUP_LIMITS = {
  /** Rows fetched per round trip from a cursor. */
  fetchRows: 5_000,
  /** Rows of a service table inserted per statement on restore. */
  insertRows: 1_000,
  /** Events of one original append restored per statement (an append is never split below this). */
  maxEventsPerRestoreStatement: 100_000,
  /** Backups in one restore chain. */
  maxChainLength: 10_000,
  gzipLevel: 6,
} as const;

/**
 * The event store's own tables and the read models' registry: restored from the log or rebuilt, never copied.
 * `cp_streams` is no longer written (the log is its own concurrency check) but may stand in older databases.
 */
const NOT_SERVICE_TABLES = ['cp_events', 'cp_streams', 'cp_snapshots', 'cp_projections', 'cp_projection_checkpoints'];

export interface BackupFileEntry {
  readonly name: string;
  readonly rows: number;
}

export interface BackupDescriptor {
  readonly format: typeof BACKUP_FORMAT;
  readonly kind: 'full' | 'incremental';
  readonly id: string;
  /** Shared by a full backup and the incrementals that follow it. */
  readonly chainId: string;
  readonly sequence: number;
  readonly previousId: string | null;
  readonly createdAt: string;
  /** `system identifier:database oid`: an incremental is refused against another database (e.g. a restored one). */
  readonly eventsDatabase: string;
  readonly servicesDatabase: string;
  /** `pg_current_snapshot()` of the events' transaction: what this backup holds. */
  readonly snapshot: string;
  /** The snapshot of the backup this one follows (incremental only). */
  readonly baseSnapshot: string | null;
  readonly events: {
    readonly count: number;
    readonly firstPosition: string | null;
    readonly lastPosition: string | null;
    /** SM3 over the events' canonical lines in file order (checked again against the restored log). */
    readonly contentSm3: string;
  };
  readonly tables: readonly BackupFileEntry[];
  readonly sequences: readonly { readonly name: string; readonly lastValue: string; readonly isCalled: boolean }[];
}

export interface ColumnSchema {
  readonly name: string;
  readonly type: string;
  readonly notNull: boolean;
  readonly default: string | null;
  /** '' none, 'a' GENERATED ALWAYS AS IDENTITY, 'd' BY DEFAULT */
  readonly identity: string;
  /** '' none, 's' GENERATED ALWAYS AS (…) STORED */
  readonly generated: string;
}

export interface TableSchema {
  readonly name: string;
  readonly columns: readonly ColumnSchema[];
  /** Sequences owned by a serial column (created before the table). */
  readonly ownedSequences: readonly { readonly sequence: string; readonly column: string }[];
  readonly constraints: readonly { readonly name: string; readonly type: string; readonly definition: string }[];
  readonly indexes: readonly string[];
  readonly triggers: readonly string[];
}

export interface ServiceSchema {
  readonly functions: readonly string[];
  readonly tables: readonly TableSchema[];
}

// ---------------------------------------------------------------------------------------------------------------
// The CLI
// ---------------------------------------------------------------------------------------------------------------

const BACKUP_USAGE = [
  'usage: carbonpay backup full|incremental --to <backup set folder>',
  '       carbonpay backup verify --from <backup folder or set>',
  '       carbonpay backup checksums   (SM3 of the journal, balances and statements of the live read models)',
];
const RESTORE_USAGE = 'usage: carbonpay restore --from <backup set or backup folder>… (into an empty database)';

const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

/** Where the event log and the service tables live, from the configuration (PostgreSQL only). */
export interface BackupTargets {
  readonly eventsUrl: string;
  readonly servicesUrl: string;
}

function targetsOf(env: NodeJS.ProcessEnv, io: Io, command: string): BackupTargets | undefined {
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr(`carbonpay ${command}: ${error.message}`);
      return undefined;
    }
    throw error;
  }
  if (config.eventStore !== 'postgres' || config.databaseUrl === undefined) {
    io.stderr(
      `carbonpay ${command}: needs the postgres event store (DATABASE_URL); PGlite: copy the stopped data folder; KurrentDB: its own backups`,
    );
    return undefined;
  }
  return { eventsUrl: config.databaseUrl, servicesUrl: config.readModelUrl ?? config.databaseUrl };
}

/** `carbonpay backup full|incremental --to SET`, `backup verify --from DIR`, `backup checksums`. */
export async function runBackup(args: readonly string[], io: Io, env: NodeJS.ProcessEnv): Promise<number> {
  const [action, ...rest] = args;
  const flags = flagsOf(rest);
  if ((action === 'full' || action === 'incremental') && flags && flags.to !== undefined && flags.from === undefined) {
    const targets = targetsOf(env, io, 'backup');
    if (!targets) return EXIT_USAGE;
    try {
      const { folder, descriptor } = await takeBackup({ ...targets, kind: action, setFolder: flags.to });
      io.stdout(
        `carbonpay backup: ${descriptor.kind} backup ${descriptor.sequence} written to ${folder}: ${descriptor.events.count} events (last position ${descriptor.events.lastPosition ?? 'none'}), ${descriptor.tables.length} service tables, ${descriptor.tables.reduce((n, t) => n + t.rows, 0)} rows`,
      );
      return EXIT_OK;
    } catch (error) {
      if (error instanceof BackupError) {
        io.stderr(`carbonpay backup: ${error.message}`);
        return EXIT_FAILED;
      }
      throw error;
    }
  }
  if (action === 'verify' && flags && flags.from !== undefined && flags.to === undefined && flags.from.length === 1) {
    const folders = chainFolders(flags.from);
    let ok = true;
    for (const folder of folders) {
      const problems = await verifyBackupFolder(folder);
      problems.forEach((p) => io.stdout(`${folder}: ${p}`));
      if (problems.length === 0) io.stdout(`${folder}: intact`);
      ok &&= problems.length === 0;
    }
    return ok ? EXIT_OK : EXIT_FAILED;
  }
  if (action === 'checksums' && rest.length === 0) {
    const targets = targetsOf(env, io, 'backup');
    if (!targets) return EXIT_USAGE;
    const client = new Client({ connectionString: targets.servicesUrl, application_name: 'carbonpay-backup' });
    await client.connect();
    try {
      const sums = await ledgerChecksums(queryableOf(client));
      io.stdout(JSON.stringify(sums));
      return EXIT_OK;
    } finally {
      await client.end();
    }
  }
  BACKUP_USAGE.forEach((line) => io.stderr(`carbonpay backup: ${line}`));
  return EXIT_USAGE;
}

/** `carbonpay restore --from DIR…`: verifies every manifest, refuses a non-empty database, restores, rebuilds. */
export async function runRestore(args: readonly string[], io: Io, env: NodeJS.ProcessEnv): Promise<number> {
  const flags = flagsOf(args);
  if (!flags || flags.from === undefined || flags.to !== undefined) {
    io.stderr(`carbonpay restore: ${RESTORE_USAGE}`);
    return EXIT_USAGE;
  }
  const targets = targetsOf(env, io, 'restore');
  if (!targets) return EXIT_USAGE;
  try {
    const report = await restoreBackups({ ...targets, from: flags.from, log: (line) => io.stdout(line) });
    io.stdout(
      `carbonpay restore: ${report.backups} backups, ${report.events} events, ${report.rows} service rows restored; read models at ${report.readModelPosition}; ${JSON.stringify(report.checksums)}`,
    );
    return EXIT_OK;
  } catch (error) {
    if (error instanceof BackupError) {
      io.stderr(`carbonpay restore: ${error.message}`);
      return EXIT_FAILED;
    }
    throw error;
  }
}

function flagsOf(args: readonly string[]): { to?: string; from?: string[] } | undefined {
  const flags: { to?: string; from?: string[] } = {};
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    if (flag === '--to' && args[i + 1] !== undefined && flags.to === undefined) flags.to = args[++i]!;
    else if (flag === '--from' && args[i + 1] !== undefined && flags.from === undefined) {
      flags.from = [];
      while (args[i + 1] !== undefined && !args[i + 1]!.startsWith('--')) flags.from.push(args[++i]!);
    } else return undefined;
  }
  return flags;
}

/** A backup cannot be taken or restored as asked (not a bug): the CLI prints it and exits 1. */
export class BackupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupError';
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Taking a backup
// ---------------------------------------------------------------------------------------------------------------

export interface TakeBackupOptions extends BackupTargets {
  readonly kind: 'full' | 'incremental';
  readonly setFolder: string;
  readonly now?: () => Date;
}

/**
 * Writes the next backup of the set. The service tables' snapshot is taken first, the events' after it (the same
 * transaction when both live in one database): the services are outboxes in front of the ledger (a row is
 * committed before its ledger command), so whatever a service row says happened is in the log part too.
 */
export async function takeBackup(
  options: TakeBackupOptions,
): Promise<{ readonly folder: string; readonly descriptor: BackupDescriptor }> {
  const now = options.now ?? (() => new Date());
  mkdirSync(options.setFolder, { recursive: true });
  const previous = latestBackup(options.setFolder);
  if (options.kind === 'incremental' && previous === undefined)
    throw new BackupError(`no backup in ${options.setFolder} to follow: take a full backup first`);
  if (options.kind === 'incremental') {
    const problems = await verifyBackupFolder(previous!.folder);
    if (problems.length > 0)
      throw new BackupError(`the last backup ${previous!.folder} does not verify: ${problems.join('; ')}`);
  }
  const sequence = (previous?.descriptor.sequence ?? 0) + 1;
  const createdAt = now();
  const folder = join(
    options.setFolder,
    `${String(sequence).padStart(4, '0')}-${options.kind}-${createdAt
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z')}`,
  );
  if (existsSync(folder)) throw new BackupError(`${folder} exists already`);
  mkdirSync(folder);

  const services = await connect(options.servicesUrl);
  const sameDatabase = options.servicesUrl === options.eventsUrl;
  const events = sameDatabase ? services : await connect(options.eventsUrl);
  try {
    await services.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const servicesDatabase = await databaseIdentity(services); // takes the services' snapshot
    if (!sameDatabase) await events.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const eventsDatabase = await databaseIdentity(events);
    const snapshot = (await events.query<{ s: string }>('SELECT pg_current_snapshot()::text AS s')).rows[0]!.s;
    let baseSnapshot: string | null = null;
    if (options.kind === 'incremental') {
      const base = previous!.descriptor;
      if (base.eventsDatabase !== eventsDatabase)
        throw new BackupError(
          `the last backup is of database ${base.eventsDatabase}, this is ${eventsDatabase}: take a full backup`,
        );
      baseSnapshot = base.snapshot;
    }
    const eventSummary = await writeEvents(events, join(folder, EVENTS_NAME), baseSnapshot);
    const schema = await serviceSchema(services);
    writeFileSync(join(folder, SCHEMA_NAME), `${JSON.stringify(schema, null, 1)}\n`);
    const tables: BackupFileEntry[] = [];
    for (const table of schema.tables) tables.push(await writeTable(services, folder, table));
    const sequences = await sequenceValues(services);
    const descriptor: BackupDescriptor = {
      format: BACKUP_FORMAT,
      kind: options.kind,
      id: randomUUID(),
      chainId: options.kind === 'full' ? randomUUID() : previous!.descriptor.chainId,
      sequence,
      previousId: options.kind === 'full' ? null : previous!.descriptor.id,
      createdAt: createdAt.toISOString(),
      eventsDatabase,
      servicesDatabase,
      snapshot,
      baseSnapshot,
      events: eventSummary,
      tables,
      sequences,
    };
    writeFileSync(join(folder, DESCRIPTOR_NAME), `${JSON.stringify(descriptor, null, 1)}\n`);
    await services.query('COMMIT');
    if (!sameDatabase) await events.query('COMMIT');
    await writeManifest(folder);
    const problems = await verifyBackupFolder(folder);
    if (problems.length > 0)
      throw new Error(`assertion: a backup just written does not verify: ${problems.join('; ')}`);
    return { folder, descriptor };
  } finally {
    await services.end();
    if (!sameDatabase) await events.end();
  }
}

async function connect(url: string): Promise<Client> {
  const client = new Client({ connectionString: url, application_name: 'carbonpay-backup' });
  await client.connect();
  return client;
}

async function databaseIdentity(client: Client): Promise<string> {
  const rows = await client.query<{ id: string }>(
    `SELECT (SELECT system_identifier::text FROM pg_control_system()) || ':' || d.oid::text AS id
       FROM pg_database d WHERE d.datname = current_database()`,
  );
  return rows.rows[0]!.id;
}

/** The canonical line of an event: what its content SM3 covers (the position is not kept by a restore). */
function canonicalEventLine(e: BackupEvent): string {
  return `${JSON.stringify([e.i, e.s, e.r, e.t, e.at, e.d, e.m])}\n`;
}

/** One event in a backup file: its position when backed up, and its data and metadata as stored (raw JSON text). */
interface BackupEvent {
  readonly p: string;
  readonly s: string;
  readonly r: number;
  readonly i: string;
  readonly t: string;
  readonly d: string;
  readonly m: string;
  readonly at: string;
}

const EVENT_SELECT = `SELECT tx_id::text AS tx, seq::text AS seq, stream_id, revision::text AS revision,
  event_id::text AS event_id, type, data::text AS data, metadata::text AS metadata,
  to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS recorded_at FROM cp_events`;

interface EventRow {
  tx: string;
  seq: string;
  stream_id: string;
  revision: string;
  event_id: string;
  type: string;
  data: string;
  metadata: string;
  recorded_at: string;
}

function backupEventOf(row: EventRow): BackupEvent {
  return {
    p: encodePosition(BigInt(row.tx), BigInt(row.seq)),
    s: row.stream_id,
    r: Number(row.revision),
    i: row.event_id,
    t: row.type,
    d: row.data,
    m: row.metadata,
    at: row.recorded_at,
  };
}

/**
 * Every event this transaction sees (rows are never updated, so a row is visible exactly when its transaction is
 * in the snapshot), less those its base snapshot saw, in log order.
 */
async function writeEvents(
  client: Client,
  path: string,
  baseSnapshot: string | null,
): Promise<BackupDescriptor['events']> {
  const out = new GzipLines(path);
  const content = createHash('sm3');
  let count = 0;
  let firstPosition: string | null = null;
  let lastPosition: string | null = null;
  const where =
    baseSnapshot === null
      ? ''
      : `WHERE tx_id >= pg_snapshot_xmin($1::pg_snapshot) AND NOT pg_visible_in_snapshot(tx_id, $1::pg_snapshot)`;
  const params = baseSnapshot === null ? [] : [baseSnapshot];
  for await (const rows of cursor<EventRow>(
    client,
    `${EVENT_SELECT} ${where} ORDER BY cp_events.tx_id, cp_events.seq`,
    params,
  )) {
    for (const row of rows) {
      const event = backupEventOf(row);
      await out.write(JSON.stringify(event));
      content.update(canonicalEventLine(event));
      firstPosition ??= event.p;
      lastPosition = event.p;
      count++;
    }
  }
  await out.close();
  return { count, firstPosition, lastPosition, contentSm3: content.digest('hex') };
}

/** Rows of a query in pages, through a cursor of the current transaction. */
async function* cursor<Row>(client: Client, text: string, params: readonly unknown[] = []): AsyncGenerator<Row[]> {
  const name = `cp_backup_${randomUUID().replace(/-/g, '')}`;
  await client.query(`DECLARE ${name} NO SCROLL CURSOR FOR ${text}`, params as unknown[]);
  try {
    for (;;) {
      const page = await client.query(`FETCH ${BACKUP_LIMITS.fetchRows} FROM ${name}`);
      if (page.rows.length === 0) return;
      yield page.rows as Row[];
    }
  } finally {
    await client.query(`CLOSE ${name}`);
  }
}

/** The service tables: every ordinary table in `public` but the event store's and the read models' registry. */
async function serviceTableNames(client: SqlQueryable): Promise<string[]> {
  const partitioned = await client.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind = 'p'`,
  );
  if (partitioned.length > 0)
    throw new BackupError(`partitioned service tables are not supported: ${partitioned.map((r) => r.name).join(', ')}`);
  const rows = await client.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind = 'r' AND NOT c.relispartition AND c.relname <> ALL($1::text[])
      ORDER BY 1`,
    [NOT_SERVICE_TABLES],
  );
  return rows.map((r) => r.name);
}

function queryableOf(client: Client): SqlQueryable {
  return {
    query: async <Row>(statement: SqlStatement, params: readonly unknown[] = []) =>
      (await client.query(typeof statement === 'string' ? statement : statement.text, params as unknown[]))
        .rows as Row[],
  };
}

/** The DDL of the service tables and of the functions in `public`, from the catalog (a small pg_dump). */
export async function serviceSchema(client: Client): Promise<ServiceSchema> {
  const db = queryableOf(client);
  const functions = await db.query<{ definition: string }>(
    `SELECT pg_get_functiondef(p.oid) AS definition FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = 'public' AND p.prokind IN ('f', 'p') AND p.proname <> ALL ($1::text[])
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
      ORDER BY p.proname, p.oid`,
    [EVENT_STORE_FUNCTIONS],
  );
  const tables: TableSchema[] = [];
  for (const name of await serviceTableNames(db)) {
    const relation = `public.${quoteIdent(name)}`;
    const columns = await db.query<{
      name: string;
      type: string;
      not_null: boolean;
      default: string | null;
      identity: string;
      generated: string;
    }>(
      `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
              pg_get_expr(d.adbin, d.adrelid) AS default, a.attidentity::text AS identity,
              a.attgenerated::text AS generated
         FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [relation],
    );
    const ownedSequences = await db.query<{ sequence: string; column: string }>(
      `SELECT s.relname AS sequence, a.attname AS column
         FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
         JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
        WHERE d.refobjid = $1::regclass AND d.deptype = 'a' ORDER BY 1`,
      [relation],
    );
    const constraints = await db.query<{ name: string; type: string; definition: string }>(
      `SELECT conname AS name, contype::text AS type, pg_get_constraintdef(oid) AS definition
         FROM pg_constraint WHERE conrelid = $1::regclass AND contype IN ('p', 'u', 'c', 'x', 'f') ORDER BY contype, conname`,
      [relation],
    );
    const indexes = await db.query<{ definition: string }>(
      `SELECT pg_get_indexdef(i.indexrelid) AS definition FROM pg_index i
        WHERE i.indrelid = $1::regclass
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid)
        ORDER BY 1`,
      [relation],
    );
    const triggers = await db.query<{ definition: string }>(
      `SELECT pg_get_triggerdef(oid) AS definition FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal ORDER BY tgname`,
      [relation],
    );
    tables.push({
      name,
      columns: columns.map((c) => ({
        name: c.name,
        type: c.type,
        notNull: c.not_null,
        default: c.default,
        identity: c.identity,
        generated: c.generated,
      })),
      ownedSequences,
      constraints,
      indexes: indexes.map((i) => i.definition),
      triggers: triggers.map((t) => t.definition),
    });
  }
  return { functions: functions.map((f) => f.definition), tables };
}

/** Current values of every sequence in `public` (serial and identity): set again after a restore. */
async function sequenceValues(client: Client): Promise<BackupDescriptor['sequences']> {
  const names = await client.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind = 'S'
        AND NOT EXISTS (SELECT 1 FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid
                         WHERE d.objid = c.oid AND d.deptype IN ('a', 'i') AND t.relname = ANY($1::text[]))
      ORDER BY 1`,
    [NOT_SERVICE_TABLES],
  );
  const values: { name: string; lastValue: string; isCalled: boolean }[] = [];
  for (const { name } of names.rows) {
    const row = (
      await client.query<{ last_value: string; is_called: boolean }>(
        `SELECT last_value::text AS last_value, is_called FROM public.${quoteIdent(name)}`,
      )
    ).rows[0]!;
    values.push({ name, lastValue: row.last_value, isCalled: row.is_called });
  }
  return values;
}

async function writeTable(client: Client, folder: string, table: TableSchema): Promise<BackupFileEntry> {
  const name = `table-${table.name}.jsonl.gz`;
  const out = new GzipLines(join(folder, name));
  let rows = 0;
  // row_to_json keeps every value exactly (numeric as written, timestamptz with its offset, bytea as \x hex);
  // json_populate_recordset reads them back with each type's input function.
  for await (const page of cursor<{ line: string }>(
    client,
    `SELECT row_to_json(t)::text AS line FROM public.${quoteIdent(table.name)} t`,
  )) {
    for (const row of page) await out.write(row.line);
    rows += page.length;
  }
  await out.close();
  return { name, rows };
}

/** JSON lines into a gzip file, with back-pressure. */
class GzipLines {
  private readonly gzip = createGzip({ level: BACKUP_LIMITS.gzipLevel });
  private readonly file: WriteStream;

  constructor(path: string) {
    this.file = createWriteStream(path, { flags: 'wx' });
    this.gzip.pipe(this.file);
  }

  async write(line: string): Promise<void> {
    if (!this.gzip.write(`${line}\n`)) await once(this.gzip, 'drain');
  }

  async close(): Promise<void> {
    this.gzip.end();
    await finished(this.file);
  }
}

/** Lines of a gzip file, one at a time. */
export async function* gzipLines(path: string): AsyncGenerator<string> {
  const lines = createInterface({ input: createReadStream(path).pipe(createGunzip()), crlfDelay: Infinity });
  for await (const line of lines) if (line !== '') yield line;
}

export async function sm3OfFile(path: string): Promise<{ sm3: string; size: number }> {
  const hash = createHash('sm3');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sm3: hash.digest('hex'), size };
}

/** `SM3SUMS` over every other file of the folder, sorted by name (the clearing manifest's format). */
export async function writeManifest(folder: string): Promise<void> {
  const names = readdirSync(folder)
    .filter((n) => n !== MANIFEST_NAME)
    .sort();
  const lines: string[] = [];
  for (const name of names) {
    const { sm3, size } = await sm3OfFile(join(folder, name));
    lines.push(`${sm3}  ${size}  ${name}\n`);
  }
  writeFileSync(join(folder, MANIFEST_NAME), lines.join(''), { flag: 'wx' });
}

/** Problems with a folder against its `SM3SUMS`: missing, extra, resized or altered files; empty when intact. */
export async function verifyManifest(folder: string): Promise<string[]> {
  const manifestPath = join(folder, MANIFEST_NAME);
  if (!existsSync(manifestPath)) return [`no ${MANIFEST_NAME}`];
  const { entries, problems } = parseSm3Manifest(readFileSync(manifestPath));
  const found = problems.map((p) => `${MANIFEST_NAME} line ${'line' in p ? p.line : '?'} malformed`);
  const present = new Set(readdirSync(folder).filter((n) => n !== MANIFEST_NAME));
  for (const entry of entries) {
    if (!present.has(entry.name)) {
      found.push(`${entry.name}: missing`);
      continue;
    }
    present.delete(entry.name);
    const { sm3, size } = await sm3OfFile(join(folder, entry.name));
    if (size !== entry.size) found.push(`${entry.name}: ${size} bytes, the manifest says ${entry.size}`);
    else if (sm3 !== entry.sm3) found.push(`${entry.name}: SM3 differs from the manifest`);
  }
  for (const name of present) found.push(`${name}: not in the manifest`);
  return found;
}

/** The manifest, then what the descriptor says against the files (event count and content SM3, row counts). */
export async function verifyBackupFolder(folder: string): Promise<string[]> {
  const problems = await verifyManifest(folder);
  if (problems.length > 0) return problems;
  const descriptor = readDescriptor(folder);
  if (descriptor.format !== BACKUP_FORMAT) return [`unknown format ${String(descriptor.format)}`];
  const content = createHash('sm3');
  let count = 0;
  for await (const line of gzipLines(join(folder, EVENTS_NAME))) {
    content.update(canonicalEventLine(JSON.parse(line) as BackupEvent));
    count++;
  }
  if (count !== descriptor.events.count)
    problems.push(`events: ${count} lines, the descriptor says ${descriptor.events.count}`);
  if (content.digest('hex') !== descriptor.events.contentSm3) problems.push('events: content SM3 differs');
  for (const table of descriptor.tables) {
    let rows = 0;
    for await (const _line of gzipLines(join(folder, table.name))) rows++;
    if (rows !== table.rows) problems.push(`${table.name}: ${rows} rows, the descriptor says ${table.rows}`);
  }
  return problems;
}

function readDescriptor(folder: string): BackupDescriptor {
  return JSON.parse(readFileSync(join(folder, DESCRIPTOR_NAME), 'utf8')) as BackupDescriptor;
}

function backupFoldersOf(setFolder: string): string[] {
  return readdirSync(setFolder, { withFileTypes: true })
    .filter((d) => d.isDirectory() && /^\d{4}-(full|incremental)-/.test(d.name))
    .map((d) => join(setFolder, d.name))
    .sort();
}

function latestBackup(setFolder: string): { folder: string; descriptor: BackupDescriptor } | undefined {
  const last = backupFoldersOf(setFolder).at(-1);
  return last === undefined ? undefined : { folder: last, descriptor: readDescriptor(last) };
}

/**
 * The backups a list of paths names, in order: a backup folder stands for itself; a set folder for its latest
 * chain (the last full backup and the incrementals after it).
 */
export function chainFolders(paths: readonly string[]): string[] {
  const folders: string[] = [];
  for (const path of paths) {
    if (existsSync(join(path, DESCRIPTOR_NAME))) {
      folders.push(path);
      continue;
    }
    if (!existsSync(path)) throw new BackupError(`${path} does not exist`);
    const all = backupFoldersOf(path);
    const lastFull = all.map((f) => /-full-/.test(f)).lastIndexOf(true);
    if (lastFull < 0) throw new BackupError(`${path} holds no full backup`);
    folders.push(...all.slice(lastFull));
  }
  if (folders.length > BACKUP_LIMITS.maxChainLength)
    throw new BackupError(`more than ${BACKUP_LIMITS.maxChainLength} backups in one restore`);
  return folders;
}

// ---------------------------------------------------------------------------------------------------------------
// Restoring
// ---------------------------------------------------------------------------------------------------------------

export interface RestoreOptions extends BackupTargets {
  readonly from: readonly string[];
  readonly log?: (line: string) => void;
}

export interface RestoreReport {
  readonly backups: number;
  readonly events: number;
  readonly rows: number;
  readonly readModelPosition: string;
  readonly checksums: LedgerChecksums;
}

/**
 * Restores a chain into empty databases: every manifest verified first, the chain checked (one full backup, then
 * incrementals each following the one before), the events in the chain's order — one transaction per original
 * append, so a reader never sees half of one — with their ids, streams, revisions and record times; the service
 * tables of the last backup with their DDL; then the read models built from position zero, and the restored log
 * compared with the backup's content SM3s.
 */
export async function restoreBackups(options: RestoreOptions): Promise<RestoreReport> {
  const log = options.log ?? (() => undefined);
  const folders = chainFolders(options.from);
  const descriptors: BackupDescriptor[] = [];
  for (const folder of folders) {
    const problems = await verifyBackupFolder(folder);
    if (problems.length > 0) throw new BackupError(`${folder} does not verify: ${problems.join('; ')}`);
    descriptors.push(readDescriptor(folder));
  }
  checkChain(descriptors, folders);
  log(`verified ${folders.length} backups (chain ${descriptors[0]!.chainId})`);

  const sameDatabase = options.servicesUrl === options.eventsUrl;
  const events = await connect(options.eventsUrl);
  const services = sameDatabase ? events : await connect(options.servicesUrl);
  try {
    await refuseNonEmpty(events, 'event store');
    if (!sameDatabase) await refuseNonEmpty(services, 'read-model');
    // The event store creates its own tables and functions, as on any start.
    const store = await openPostgresEventStore({ connectionString: options.eventsUrl, maxConnections: 2 });
    await store.close();
    const restored = await restoreEvents(events, folders);
    log(`restored ${restored} events`);
    const last = folders[folders.length - 1]!;
    const rows = await restoreServiceTables(services, last, descriptors[descriptors.length - 1]!);
    log(`restored ${rows} rows of ${descriptors[descriptors.length - 1]!.tables.length} service tables`);
    await checkRestoredLog(events, folders);
    const readModelPosition = await rebuildReadModels(options);
    log(`read models built up to ${readModelPosition}`);
    const checksums = await ledgerChecksums(queryableOf(services));
    return { backups: folders.length, events: restored, rows, readModelPosition, checksums };
  } finally {
    await events.end();
    if (!sameDatabase) await services.end();
  }
}

function checkChain(descriptors: readonly BackupDescriptor[], folders: readonly string[]): void {
  descriptors.forEach((d, i) => {
    if (i === 0 && d.kind !== 'full')
      throw new BackupError(`${folders[i]} is incremental: a chain starts with a full backup`);
    if (i > 0) {
      const before = descriptors[i - 1]!;
      if (d.kind !== 'incremental' || d.chainId !== before.chainId || d.previousId !== before.id)
        throw new BackupError(`${folders[i]} does not follow ${folders[i - 1]}`);
    }
  });
}

/** Anything in the database but the catalogs makes it not empty: a restore never merges. */
async function refuseNonEmpty(client: Client, what: string): Promise<void> {
  const rows = await client.query<{ name: string }>(
    `SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
        AND n.nspname NOT LIKE 'pg\\_temp%' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
      ORDER BY 1 LIMIT 5`,
  );
  if (rows.rows.length > 0)
    throw new BackupError(
      `the ${what} database is not empty (${rows.rows.map((r) => r.name).join(', ')}…): restore only into a new, empty database`,
    );
}

async function restoreEvents(client: Client, folders: readonly string[]): Promise<number> {
  // Each statement is its own transaction; their commits need not wait for the disk one by one: the last
  // statement below runs with synchronous_commit on, and its flush covers every commit before it.
  await client.query('SET synchronous_commit = off');
  let restored = 0;
  let group: BackupEvent[] = [];
  const flush = async (): Promise<void> => {
    if (group.length === 0) return;
    await client.query(
      `INSERT INTO cp_events (stream_id, revision, event_id, type, data, metadata, recorded_at)
       SELECT e.s, e.r, e.i, e.t, e.d::json, e.m::json, e.at
         FROM ROWS FROM (json_to_recordset($1::json) AS (s text, r bigint, i uuid, t text, d text, m text, at timestamptz))
              WITH ORDINALITY AS e(s, r, i, t, d, m, at, x)
        ORDER BY e.x`,
      [JSON.stringify(group)],
    );
    restored += group.length;
    group = [];
  };
  for (const folder of folders) {
    for await (const line of gzipLines(join(folder, EVENTS_NAME))) {
      const event = JSON.parse(line) as BackupEvent;
      const major = event.p.slice(0, event.p.indexOf(':'));
      const groupMajor = group[0]?.p.slice(0, group[0].p.indexOf(':'));
      if (
        groupMajor !== undefined &&
        (groupMajor !== major || group.length >= BACKUP_LIMITS.maxEventsPerRestoreStatement)
      )
        await flush();
      group.push(event);
    }
    await flush();
  }
  await client.query('SET synchronous_commit = on');
  return restored;
}

/**
 * Every stream gapless from revision 0, and the restored log, in its order, equal to the backups' events line by
 * line (whose content SM3s were verified with the manifests): the first difference is named.
 */
async function checkRestoredLog(client: Client, folders: readonly string[]): Promise<void> {
  const gaps = await client.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM (SELECT stream_id FROM cp_events GROUP BY stream_id
      HAVING min(revision) <> 0 OR max(revision) + 1 <> count(*)) g`,
  );
  if (gaps.rows[0]!.n !== '0')
    throw new BackupError(`${gaps.rows[0]!.n} restored streams have gaps in their revisions`);
  const backedUp = (async function* () {
    for (const folder of folders) for await (const line of gzipLines(join(folder, EVENTS_NAME))) yield line;
  })();
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    for await (const rows of cursor<EventRow>(client, `${EVENT_SELECT} ORDER BY cp_events.tx_id, cp_events.seq`)) {
      for (const row of rows) {
        const next = await backedUp.next();
        if (next.done) throw new BackupError('the restored log holds more events than the backups');
        const expected = JSON.parse(next.value) as BackupEvent;
        const actual = backupEventOf(row);
        if (canonicalEventLine(actual) !== canonicalEventLine(expected)) {
          const fields = (['i', 's', 'r', 't', 'at', 'd', 'm'] as const).filter((k) => actual[k] !== expected[k]);
          throw new BackupError(
            `the restored log differs from the backups at event ${expected.i} (backed up at ${expected.p}): ${fields
              .map((k) => `${k} ${JSON.stringify(actual[k])} ≠ ${JSON.stringify(expected[k])}`)
              .join(', ')}`,
          );
        }
      }
    }
    if (!(await backedUp.next()).done) throw new BackupError('the restored log holds fewer events than the backups');
  } finally {
    await client.query('COMMIT');
  }
}

async function restoreServiceTables(client: Client, folder: string, descriptor: BackupDescriptor): Promise<number> {
  const schema = JSON.parse(readFileSync(join(folder, SCHEMA_NAME), 'utf8')) as ServiceSchema;
  let rows = 0;
  await client.query('BEGIN');
  try {
    // Function bodies name tables created below.
    await client.query('SET LOCAL check_function_bodies = off');
    for (const definition of schema.functions) await client.query(definition);
    for (const table of schema.tables)
      for (const owned of table.ownedSequences)
        await client.query(`CREATE SEQUENCE public.${quoteIdent(owned.sequence)}`);
    for (const table of schema.tables) await client.query(createTableSql(table));
    for (const table of schema.tables) {
      const entry = descriptor.tables.find((t) => t.name === `table-${table.name}.jsonl.gz`);
      if (!entry) throw new BackupError(`${folder}: no data file for ${table.name}`);
      rows += await loadTable(client, join(folder, entry.name), table);
    }
    for (const table of schema.tables)
      for (const owned of table.ownedSequences)
        await client.query(
          `ALTER SEQUENCE public.${quoteIdent(owned.sequence)} OWNED BY public.${quoteIdent(table.name)}.${quoteIdent(owned.column)}`,
        );
    for (const sequence of descriptor.sequences)
      await client.query(`SELECT setval($1::regclass, $2::bigint, $3)`, [
        `public.${quoteIdent(sequence.name)}`,
        sequence.lastValue,
        sequence.isCalled,
      ]);
    // Keys and checks after the data (one build each), foreign keys once every table is in, triggers last.
    for (const table of schema.tables)
      for (const c of table.constraints.filter((c) => c.type !== 'f'))
        await client.query(
          `ALTER TABLE public.${quoteIdent(table.name)} ADD CONSTRAINT ${quoteIdent(c.name)} ${c.definition}`,
        );
    for (const table of schema.tables) for (const index of table.indexes) await client.query(index);
    for (const table of schema.tables)
      for (const c of table.constraints.filter((c) => c.type === 'f'))
        await client.query(
          `ALTER TABLE public.${quoteIdent(table.name)} ADD CONSTRAINT ${quoteIdent(c.name)} ${c.definition}`,
        );
    for (const table of schema.tables) for (const trigger of table.triggers) await client.query(trigger);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
  return rows;
}

function createTableSql(table: TableSchema): string {
  const columns = table.columns.map((c) => {
    const parts = [quoteIdent(c.name), c.type];
    if (c.generated === 's') parts.push(`GENERATED ALWAYS AS (${c.default!}) STORED`);
    else if (c.identity === 'a') parts.push('GENERATED ALWAYS AS IDENTITY');
    else if (c.identity === 'd') parts.push('GENERATED BY DEFAULT AS IDENTITY');
    else if (c.default !== null) parts.push(`DEFAULT ${c.default}`);
    if (c.notNull) parts.push('NOT NULL');
    return parts.join(' ');
  });
  return `CREATE TABLE public.${quoteIdent(table.name)} (${columns.join(', ')})`;
}

async function loadTable(client: Client, path: string, table: TableSchema): Promise<number> {
  const columns = table.columns.filter((c) => c.generated !== 's').map((c) => quoteIdent(c.name));
  const relation = `public.${quoteIdent(table.name)}`;
  const insert = `INSERT INTO ${relation} (${columns.join(', ')}) OVERRIDING SYSTEM VALUE
    SELECT ${columns.join(', ')} FROM json_populate_recordset(NULL::${relation}, $1::json)`;
  let rows = 0;
  let batch: string[] = [];
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    await client.query(insert, [`[${batch.join(',')}]`]);
    rows += batch.length;
    batch = [];
  };
  for await (const line of gzipLines(path)) {
    batch.push(line);
    if (batch.length >= BACKUP_LIMITS.insertRows) await flush();
  }
  await flush();
  return rows;
}

/** Builds the read models from position zero (a fresh database has none) and waits until they hold the whole log. */
async function rebuildReadModels(targets: BackupTargets): Promise<string> {
  const store = await openPostgresEventStore({ connectionString: targets.eventsUrl, maxConnections: 4 });
  try {
    const readModels = await startReadModels(
      {
        eventStore: 'postgres',
        databaseUrl: targets.eventsUrl,
        readModelUrl: targets.servicesUrl === targets.eventsUrl ? undefined : targets.servicesUrl,
        runProjections: true,
      },
      store,
    );
    try {
      const head = await lastPosition(targets.eventsUrl);
      if (head !== undefined) await readModels.runner!.waitUntilApplied(head);
      return head ?? '(empty log)';
    } finally {
      await readModels.close();
    }
  } finally {
    await store.close();
  }
}

async function lastPosition(url: string): Promise<string | undefined> {
  const client = await connect(url);
  try {
    const rows = await client.query<{ tx: string; seq: string }>(
      'SELECT tx_id::text AS tx, seq::text AS seq FROM cp_events ORDER BY cp_events.tx_id DESC, cp_events.seq DESC LIMIT 1',
    );
    const row = rows.rows[0];
    return row ? encodePosition(BigInt(row.tx), BigInt(row.seq)) : undefined;
  } finally {
    await client.end();
  }
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

// ---------------------------------------------------------------------------------------------------------------
// Checksums of the books (the restore drill compares them before and after)
// ---------------------------------------------------------------------------------------------------------------

export interface LedgerChecksums {
  /** SM3 over every journal line (log positions left out: a restore writes a new log), by its key. */
  readonly journal: string;
  readonly journalLines: number;
  /** SM3 over every account's balance, holds, status and revision, by account id. */
  readonly balances: string;
  readonly accounts: number;
  /** SM3 over every statement line (account, revision, time, transfer, amount, running balance). */
  readonly statements: string;
  /** Σ balances per asset: each must be 0. */
  readonly sumsByAsset: Readonly<Record<string, string>>;
}

interface ChecksumQuery {
  readonly select: string;
  /** The keyset condition after the last row of the previous page ($1…). */
  readonly after: string;
  readonly order: string;
  readonly keys: (row: ChecksumRow) => unknown[];
  readonly start: readonly unknown[];
}

const UTC_MICROS = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;

const CHECKSUM_QUERIES: Readonly<Record<'journal' | 'balances' | 'statements', ChecksumQuery>> = {
  journal: {
    // business_date, transfer_id, line_no is the journal's key
    select: `SELECT to_char(business_date, 'YYYY-MM-DD') AS k1, transfer_id AS k2, line_no::text AS k3,
        json_build_array(to_char(business_date, 'YYYY-MM-DD'), transfer_id, line_no, transfer_type, account_id, asset,
          direction, amount::text, to_char(at AT TIME ZONE 'UTC', ${UTC_MICROS}), event_id)::text AS line
      FROM cp_read.journal`,
    after: 'WHERE (business_date, transfer_id, line_no) > ($1::date, $2::text, $3::int)',
    order: 'ORDER BY business_date, transfer_id, line_no',
    keys: (row) => [row.k1, row.k2, row.k3],
    start: ['0001-01-01', '', -1],
  },
  balances: {
    select: `SELECT account_id AS k1, NULL AS k2, NULL AS k3,
        json_build_array(account_id, kind, asset, status, balance::text, held_debits::text, held_credits::text,
          revision)::text AS line
      FROM cp_read.accounts`,
    after: 'WHERE account_id > $1::text',
    order: 'ORDER BY account_id',
    keys: (row) => [row.k1],
    start: [''],
  },
  statements: {
    select: `SELECT account_id AS k1, revision::text AS k2, NULL AS k3,
        json_build_array(account_id, revision, to_char(at AT TIME ZONE 'UTC', ${UTC_MICROS}), transfer_id,
          direction, amount::text, balance::text)::text AS line
      FROM cp_read.statement_lines`,
    after: 'WHERE (account_id, revision) > ($1::text, $2::bigint)',
    order: 'ORDER BY account_id, revision',
    keys: (row) => [row.k1, row.k2],
    start: ['', '-1'],
  },
};

interface ChecksumRow {
  k1: string;
  k2: string | null;
  k3: string | null;
  line: string;
}

async function sm3OfQuery(db: SqlQueryable, query: ChecksumQuery): Promise<{ sm3: string; count: number }> {
  const hash = createHash('sm3');
  let after: readonly unknown[] = query.start;
  let count = 0;
  for (;;) {
    const rows = await db.query<ChecksumRow>(
      `${query.select} ${query.after} ${query.order} LIMIT ${BACKUP_LIMITS.fetchRows}`,
      after,
    );
    for (const row of rows) hash.update(`${row.line}\n`);
    count += rows.length;
    if (rows.length < BACKUP_LIMITS.fetchRows) break;
    after = query.keys(rows[rows.length - 1]!);
  }
  return { sm3: hash.digest('hex'), count };
}

/** Checksums of the books as the read models hold them (`cp_read.*`): equal books, equal checksums. */
export async function ledgerChecksums(db: SqlQueryable): Promise<LedgerChecksums> {
  const journal = await sm3OfQuery(db, CHECKSUM_QUERIES.journal);
  const balances = await sm3OfQuery(db, CHECKSUM_QUERIES.balances);
  const statements = await sm3OfQuery(db, CHECKSUM_QUERIES.statements);
  const sums = await db.query<{ asset: string; total: string }>(
    'SELECT asset, sum(balance)::text AS total FROM cp_read.accounts GROUP BY asset ORDER BY asset',
  );
  return {
    journal: journal.sm3,
    journalLines: journal.count,
    balances: balances.sm3,
    accounts: balances.count,
    statements: statements.sm3,
    sumsByAsset: Object.fromEntries(sums.map((s) => [s.asset, s.total])),
  };
}

/** SM3 of each service table's rows (sorted), for comparing a restored database with its source. */
export async function serviceTableChecksums(db: SqlQueryable): Promise<Record<string, string>> {
  const sums: Record<string, string> = {};
  for (const name of await serviceTableNames(db)) {
    const rows = await db.query<{ line: string }>(
      `SELECT row_to_json(t)::text AS line FROM public.${quoteIdent(name)} t ORDER BY 1`,
    );
    const hash = createHash('sm3');
    for (const row of rows) hash.update(`${row.line}\n`);
    sums[name] = `${rows.length}:${hash.digest('hex')}`;
  }
  return sums;
}
