import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { Client } from 'pg';
import type { AssetCode, PostingDirection } from '../../core-ledger';
import { amountOf, formatAmount, isAssetCode } from '../../core-ledger';
import type { JournalLine, StatementLine } from '../../projections';
import type { Config } from '../config';
import { ConfigError, loadConfig } from '../config';
import { gzipLines, verifyManifest, writeManifest } from './backup';
import type { Io } from './io';

/**
 * Retention (T18): `carbonpay archive --before YYYY-MM --to DIR` exports every month before YYYY-MM — its events
 * (by the month of their `at`), its journal lines (by business date) and its statement lines (by time) as the read
 * models hold them — into gzip files with an SM3 manifest per month, and verifies each against the live rows before
 * it counts as archived. `--detach` then removes the verified months from the live read models (their partitions
 * are detached and dropped); without it nothing live changes. The event log is never shortened: it is the source
 * of truth, kept whole (a rebuild brings archived months back into the read models).
 *
 * `carbonpay archive read --from DIR …` verifies a month's manifest and prints its statement (the lines a live
 * `getStatement` printed before the month was archived) or its journal, or its events.
 *
 * Months and times are China Standard Time, as the read models' partitions.
 */

const MONTH = /^(\d{4})-(0[1-9]|1[0-2])$/;
const DESCRIPTOR_NAME = 'archive.json';
export const ARCHIVE_FORMAT = 'carbonpay-archive/1';
const FILES = {
  events: 'events.jsonl.gz',
  journal: 'journal.jsonl.gz',
  statements: 'statement_lines.jsonl.gz',
} as const;

/** Bounds: months archived in one run (a decade), rows fetched per page. */
export const ARCHIVE_LIMITS = { maxMonths: 120, fetchRows: 5_000 } as const;

export interface RetentionPolicy {
  readonly logs: { readonly onlineMonths: number; readonly minimumMonths: number };
  readonly accounting: { readonly minimumYears: number; readonly archiveYears: number };
}

/** ops/retention.json from the sources (app/commands) or from the build (dist/app/commands). */
function defaultPolicyFile(): string {
  const fromSources = join(__dirname, '..', '..', 'ops', 'retention.json');
  return existsSync(fromSources) ? fromSources : join(__dirname, '..', '..', '..', 'ops', 'retention.json');
}

/** The policy file (ops/retention.json): its figures and their sources are reviewed like code. */
export function loadRetentionPolicy(path: string = defaultPolicyFile()): RetentionPolicy {
  const policy = JSON.parse(readFileSync(path, 'utf8')) as RetentionPolicy;
  const { logs, accounting } = policy;
  if (!(logs.onlineMonths >= 1 && logs.minimumMonths >= logs.onlineMonths))
    throw new Error(`${path}: logs.minimumMonths must be ≥ logs.onlineMonths ≥ 1`);
  if (!(accounting.minimumYears >= 10 && accounting.archiveYears >= accounting.minimumYears))
    throw new Error(`${path}: accounting.archiveYears must be ≥ accounting.minimumYears ≥ 10 (T18)`);
  return policy;
}

export interface MonthArchive {
  readonly format: typeof ARCHIVE_FORMAT;
  readonly month: string;
  readonly archivedAt: string;
  /** The read models' generation the rows came from. */
  readonly generation: number;
  /** Keep the files (and this manifest) until then: the policy's accounting years after the month. */
  readonly retainUntil: string;
  readonly files: Readonly<Record<keyof typeof FILES, { readonly rows: number; readonly contentSm3: string }>>;
  /** True once the month's partitions were removed from the live read models (`--detach`). */
  readonly detached: boolean;
}

// ---------------------------------------------------------------------------------------------------------------
// The CLI
// ---------------------------------------------------------------------------------------------------------------

const USAGE = [
  'usage: carbonpay archive --before YYYY-MM --to <folder> [--detach]',
  '       carbonpay archive verify --from <folder>',
  '       carbonpay archive read --from <folder> [--month YYYY-MM] --statement <account> | --journal [--account <id>] | --events',
];

export async function runArchive(
  args: readonly string[],
  io: Io,
  env: NodeJS.ProcessEnv,
  now: () => Date = () => new Date(),
): Promise<number> {
  const [first, ...rest] = args;
  if (first === 'read') return readCommand(rest, io);
  if (first === 'verify') return verifyCommand(rest, io);
  const flags = parseFlags(args, ['--before', '--to'], ['--detach']);
  if (!flags || flags['--before'] === undefined || flags['--to'] === undefined) return usage(io);
  const before = flags['--before'];
  if (!MONTH.test(before)) return usage(io, `--before must be a month YYYY-MM, got ${JSON.stringify(before)}`);
  if (before > monthOf(now())) return usage(io, `--before ${before} is after the current month: only closed months`);
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return usage(io, error.message);
    throw error;
  }
  const readModelUrl = config.readModelUrl ?? (config.eventStore === 'postgres' ? config.databaseUrl : undefined);
  if (config.eventStore !== 'postgres' || readModelUrl === undefined)
    return usage(io, 'archive needs the postgres event store (DATABASE_URL)');
  const result = await archiveMonths({
    eventsUrl: config.databaseUrl!,
    readModelUrl,
    before,
    folder: flags['--to'],
    detach: flags['--detach'] === 'yes',
    policy: loadRetentionPolicy(),
    now,
  });
  for (const month of result.months)
    io.stdout(
      `carbonpay archive: ${month.month}: ${month.files.events.rows} events, ${month.files.journal.rows} journal lines, ${month.files.statements.rows} statement lines; verified${month.detached ? '; detached from the live read models' : ''}; keep until ${month.retainUntil}`,
    );
  for (const problem of result.problems) io.stderr(`carbonpay archive: ${problem}`);
  return result.problems.length === 0 ? 0 : 1;
}

function usage(io: Io, problem?: string): number {
  if (problem !== undefined) io.stderr(`carbonpay archive: ${problem}`);
  USAGE.forEach((line) => io.stderr(`carbonpay archive: ${line}`));
  return 2;
}

/** Flags with a value, and switches (value 'yes'); undefined on anything else. */
function parseFlags(
  args: readonly string[],
  valued: readonly string[],
  switches: readonly string[] = [],
): Record<string, string> | undefined {
  const flags: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]!;
    if (flags[flag] !== undefined) return undefined;
    if (switches.includes(flag)) flags[flag] = 'yes';
    else if (valued.includes(flag) && args[i + 1] !== undefined) flags[flag] = args[++i]!;
    else return undefined;
  }
  return flags;
}

async function verifyCommand(args: readonly string[], io: Io): Promise<number> {
  const flags = parseFlags(args, ['--from']);
  if (!flags || flags['--from'] === undefined) return usage(io);
  let ok = true;
  for (const folder of monthFolders(flags['--from'])) {
    const problems = await verifyMonthFolder(folder);
    problems.forEach((p) => io.stdout(`${folder}: ${p}`));
    if (problems.length === 0) io.stdout(`${folder}: intact`);
    ok &&= problems.length === 0;
  }
  return ok ? 0 : 1;
}

async function readCommand(args: readonly string[], io: Io): Promise<number> {
  const flags = parseFlags(args, ['--from', '--month', '--statement', '--account'], ['--journal', '--events']);
  const kinds = ['--statement', '--journal', '--events'].filter((k) => flags?.[k] !== undefined);
  if (!flags || flags['--from'] === undefined || kinds.length !== 1) return usage(io);
  if (flags['--account'] !== undefined && kinds[0] !== '--journal') return usage(io);
  const month = flags['--month'];
  if (month !== undefined && !MONTH.test(month)) return usage(io, `--month must be YYYY-MM`);
  const folders = monthFolders(flags['--from']).filter((f) => month === undefined || f.endsWith(month));
  if (folders.length === 0) return usage(io, `no archived month in ${flags['--from']}`);
  for (const folder of folders) {
    const problems = await verifyMonthFolder(folder);
    if (problems.length > 0) {
      io.stderr(`carbonpay archive: ${folder} does not verify: ${problems.join('; ')}`);
      return 1;
    }
  }
  for (const folder of folders) {
    if (kinds[0] === '--statement')
      for (const line of await readArchivedStatement(folder, flags['--statement']!)) io.stdout(JSON.stringify(line));
    else if (kinds[0] === '--journal')
      for (const line of await readArchivedJournal(folder, flags['--account'])) io.stdout(JSON.stringify(line));
    else for await (const line of gzipLines(join(folder, FILES.events))) io.stdout(line);
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Archiving
// ---------------------------------------------------------------------------------------------------------------

export interface ArchiveOptions {
  readonly eventsUrl: string;
  readonly readModelUrl: string;
  /** Months strictly before this one (YYYY-MM) are archived. */
  readonly before: string;
  readonly folder: string;
  readonly detach: boolean;
  readonly policy: RetentionPolicy;
  readonly now?: () => Date;
}

export interface ArchiveResult {
  readonly months: MonthArchive[];
  readonly problems: string[];
}

const CST = `'Asia/Shanghai'`;
const UTC_MS = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;

/** Archived rows, one JSON array per line (fixed column order). */
const EXPORTS = {
  journal: (schema: string) =>
    `SELECT json_build_array(to_char(business_date, 'YYYY-MM-DD'), transfer_id, line_no, transfer_type, account_id,
        asset, direction, amount::text, to_char(at AT TIME ZONE 'UTC', ${UTC_MS}), position, event_id)::text AS line
       FROM ${schema}.journal
      WHERE business_date >= $1::date AND business_date < ($1::date + interval '1 month')::date
      ORDER BY position, line_no`,
  statements: (schema: string) =>
    `SELECT json_build_array(s.account_id, a.asset, s.revision, to_char(s.at AT TIME ZONE 'UTC', ${UTC_MS}),
        s.transfer_id, s.direction, s.amount::text, s.balance::text, s.position)::text AS line
       FROM ${schema}.statement_lines s JOIN ${schema}.accounts a ON a.account_id = s.account_id
      WHERE s.at >= ($1::date::timestamp AT TIME ZONE ${CST})
        AND s.at < (($1::date + interval '1 month')::timestamp AT TIME ZONE ${CST})
      ORDER BY s.account_id, s.revision`,
  // Events by the month of the time the ledger stamped on them (`at`, every ledger event has one): the same
  // month as their statement lines. A full scan of the log: monthly, off the hot path.
  events: () =>
    `SELECT json_build_array(lpad(tx_id::text, 20, '0') || ':' || lpad(seq::text, 20, '0'), stream_id, revision,
        event_id, type, data::text, metadata::text,
        to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))::text AS line
       FROM cp_events
      WHERE (data->>'at')::timestamptz >= ($1::date::timestamp AT TIME ZONE ${CST})
        AND (data->>'at')::timestamptz < (($1::date + interval '1 month')::timestamp AT TIME ZONE ${CST})
      ORDER BY tx_id, seq`,
} as const;

/**
 * Archives each month before `before` that the read models hold and that is not archived yet, one folder per month;
 * verifies each (manifest, then the files' content against the live rows); with `detach`, removes the verified
 * months' partitions from the live read models, each only while its row count still equals the archived one.
 */
export async function archiveMonths(options: ArchiveOptions): Promise<ArchiveResult> {
  const now = options.now ?? (() => new Date());
  const readModels = new Client({ connectionString: options.readModelUrl, application_name: 'carbonpay-archive' });
  const sameDatabase = options.readModelUrl === options.eventsUrl;
  const events = sameDatabase
    ? readModels
    : new Client({ connectionString: options.eventsUrl, application_name: 'carbonpay-archive' });
  await readModels.connect();
  if (!sameDatabase) await events.connect();
  const months: MonthArchive[] = [];
  const problems: string[] = [];
  try {
    const { generation, schema } = await activeGeneration(readModels);
    const candidates = await monthsBefore(readModels, schema, options.before);
    if (candidates.length > ARCHIVE_LIMITS.maxMonths)
      throw new Error(`${candidates.length} months to archive: more than ${ARCHIVE_LIMITS.maxMonths} in one run`);
    mkdirSync(options.folder, { recursive: true });
    for (const month of candidates) {
      const folder = join(options.folder, month);
      let archive: MonthArchive;
      if (existsSync(join(folder, 'SM3SUMS'))) {
        const found = await verifyMonthFolder(folder);
        if (found.length > 0) {
          problems.push(`${month}: the archive in ${folder} does not verify: ${found.join('; ')}`);
          continue;
        }
        archive = readDescriptor(folder);
      } else {
        if (existsSync(folder)) rmSync(folder, { recursive: true }); // an interrupted run: written again
        archive = await writeMonth(readModels, events, sameDatabase, folder, month, generation, schema, options, now());
        const found = await verifyMonthFolder(folder);
        if (found.length > 0) {
          problems.push(`${month}: the archive just written does not verify: ${found.join('; ')}`);
          continue;
        }
      }
      if (options.detach && !archive.detached) {
        const detached = await detachMonth(readModels, schema, archive);
        if (detached !== undefined) problems.push(`${month}: not detached: ${detached}`);
        else {
          archive = { ...archive, detached: true };
          // the descriptor changes: the manifest is written again over the same files
          writeFileSync(join(folder, DESCRIPTOR_NAME), `${JSON.stringify(archive, null, 1)}\n`);
          rmSync(join(folder, 'SM3SUMS'));
          await writeManifest(folder);
        }
      }
      months.push(archive);
    }
    return { months, problems };
  } finally {
    await readModels.end();
    if (!sameDatabase) await events.end();
  }
}

async function activeGeneration(client: Client): Promise<{ generation: number; schema: string }> {
  const rows = await client.query<{ generation: number }>(
    `SELECT active_generation AS generation FROM cp_projections WHERE projection = 'ledger'`,
  );
  const generation = rows.rows[0]?.generation;
  if (generation === undefined) throw new Error('no ledger read model in this database');
  return { generation, schema: `cp_rm_ledger_g${generation}` };
}

/** Months before `before` that have a journal or statement partition in the live generation. */
async function monthsBefore(client: Client, schema: string, before: string): Promise<string[]> {
  const rows = await client.query<{ month: string }>(
    `SELECT DISTINCT replace(substring(c.relname FROM '(\\d{4}_\\d{2})$'), '_', '-') AS month
       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
       JOIN pg_namespace n ON n.oid = p.relnamespace
      WHERE n.nspname = $1 AND p.relname IN ('journal', 'statement_lines')
      ORDER BY 1`,
    [schema],
  );
  return rows.rows.map((r) => r.month).filter((m) => MONTH.test(m) && m < before);
}

async function writeMonth(
  readModels: Client,
  events: Client,
  sameDatabase: boolean,
  folder: string,
  month: string,
  generation: number,
  schema: string,
  options: ArchiveOptions,
  archivedAt: Date,
): Promise<MonthArchive> {
  mkdirSync(folder, { recursive: true });
  const first = `${month}-01`;
  // One snapshot for the read-model files (and the events when they share the database).
  await readModels.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  if (!sameDatabase) await events.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    const journal = await exportRows(readModels, EXPORTS.journal(schema), first, join(folder, FILES.journal));
    const statements = await exportRows(readModels, EXPORTS.statements(schema), first, join(folder, FILES.statements));
    const eventRows = await exportRows(events, EXPORTS.events(), first, join(folder, FILES.events));
    const [year, monthNumber] = month.split('-').map(Number) as [number, number];
    const retainUntil = new Date(Date.UTC(year + options.policy.accounting.archiveYears, monthNumber, 1))
      .toISOString()
      .slice(0, 10);
    const archive: MonthArchive = {
      format: ARCHIVE_FORMAT,
      month,
      archivedAt: archivedAt.toISOString(),
      generation,
      retainUntil,
      files: { events: eventRows, journal, statements },
      detached: false,
    };
    writeFileSync(join(folder, DESCRIPTOR_NAME), `${JSON.stringify(archive, null, 1)}\n`);
    await writeManifest(folder);
    return archive;
  } finally {
    await readModels.query('COMMIT');
    if (!sameDatabase) await events.query('COMMIT');
  }
}

async function exportRows(
  client: Client,
  select: string,
  first: string,
  path: string,
): Promise<{ rows: number; contentSm3: string }> {
  const gzip = createGzip({ level: 9 });
  const file = createWriteStream(path, { flags: 'wx' });
  gzip.pipe(file);
  const hash = createHash('sm3');
  let rows = 0;
  const cursorName = 'cp_archive_rows';
  await client.query(`DECLARE ${cursorName} NO SCROLL CURSOR FOR ${select}`, [first]);
  for (;;) {
    const page = await client.query<{ line: string }>(`FETCH ${ARCHIVE_LIMITS.fetchRows} FROM ${cursorName}`);
    for (const { line } of page.rows) {
      hash.update(`${line}\n`);
      if (!gzip.write(`${line}\n`)) await once(gzip, 'drain');
    }
    rows += page.rows.length;
    if (page.rows.length < ARCHIVE_LIMITS.fetchRows) break;
  }
  await client.query(`CLOSE ${cursorName}`);
  gzip.end();
  await finished(file);
  return { rows, contentSm3: hash.digest('hex') };
}

/**
 * Detaches and drops the month's journal and statement partitions in one transaction, only if each still holds
 * exactly the rows archived (a late row — a capture of an old authorization — would otherwise be lost from the
 * read models without being in the archive). Returns why not, or undefined when done.
 */
async function detachMonth(client: Client, schema: string, archive: MonthArchive): Promise<string | undefined> {
  const suffix = archive.month.replace('-', '_');
  const parts = [
    { table: 'journal', rows: archive.files.journal.rows },
    { table: 'statement_lines', rows: archive.files.statements.rows },
  ];
  await client.query('BEGIN');
  try {
    for (const part of parts) {
      const partition = `${schema}.${part.table}_${suffix}`;
      const exists = await client.query<{ r: string | null }>('SELECT to_regclass($1)::text AS r', [partition]);
      if (exists.rows[0]!.r === null) {
        if (part.rows !== 0) throw new Error(`${partition} is gone but ${part.rows} rows were archived`);
        continue;
      }
      await client.query(`ALTER TABLE ${schema}.${part.table} DETACH PARTITION ${partition}`);
      const count = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${partition}`);
      if (Number(count.rows[0]!.n) !== part.rows)
        throw new Error(
          `${partition} holds ${count.rows[0]!.n} rows, the archive ${part.rows}: archive the month again`,
        );
      await client.query(`DROP TABLE ${partition}`);
    }
    await client.query('COMMIT');
    return undefined;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    return (error as Error).message;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Verifying and reading back
// ---------------------------------------------------------------------------------------------------------------

/** The month folders under a folder (or the folder itself when it is one), oldest first. */
export function monthFolders(folder: string): string[] {
  if (existsSync(join(folder, DESCRIPTOR_NAME))) return [folder];
  if (!existsSync(folder)) return [];
  return readdirSync(folder, { withFileTypes: true })
    .filter((d) => d.isDirectory() && MONTH.test(d.name) && existsSync(join(folder, d.name, DESCRIPTOR_NAME)))
    .map((d) => join(folder, d.name))
    .sort();
}

function readDescriptor(folder: string): MonthArchive {
  return JSON.parse(readFileSync(join(folder, DESCRIPTOR_NAME), 'utf8')) as MonthArchive;
}

/** The manifest, then each file's rows and content SM3 against the descriptor (which the manifest covers). */
export async function verifyMonthFolder(folder: string): Promise<string[]> {
  const problems = await verifyManifest(folder);
  if (problems.length > 0) return problems;
  const archive = readDescriptor(folder);
  if (archive.format !== ARCHIVE_FORMAT) return [`unknown format ${String(archive.format)}`];
  for (const kind of Object.keys(FILES) as (keyof typeof FILES)[]) {
    const hash = createHash('sm3');
    let rows = 0;
    for await (const line of gzipLines(join(folder, FILES[kind]))) {
      hash.update(`${line}\n`);
      rows++;
    }
    if (rows !== archive.files[kind].rows)
      problems.push(`${FILES[kind]}: ${rows} rows, archive.json says ${archive.files[kind].rows}`);
    else if (hash.digest('hex') !== archive.files[kind].contentSm3)
      problems.push(`${FILES[kind]}: content SM3 differs`);
  }
  return problems;
}

function asset(text: string): AssetCode {
  if (!isAssetCode(text)) throw new Error(`the archive holds an unknown asset ${JSON.stringify(text)}`);
  return text;
}

const money = (code: string, amount: string): string => formatAmount(asset(code), amountOf(asset(code), amount));

/** An account's statement lines of an archived month, as `ReadModelQueries.getStatement` prints them. */
export async function readArchivedStatement(folder: string, accountId: string): Promise<StatementLine[]> {
  const lines: StatementLine[] = [];
  for await (const text of gzipLines(join(folder, FILES.statements))) {
    const [account, code, revision, at, transferId, direction, amount, balance] = JSON.parse(text) as [
      string,
      string,
      number,
      string,
      string,
      PostingDirection,
      string,
      string,
    ];
    if (account !== accountId) continue;
    lines.push({ revision, at, transferId, direction, amount: money(code, amount), balance: money(code, balance) });
  }
  return lines.sort((a, b) => a.revision - b.revision);
}

/** The journal lines of an archived month (optionally one account's), in log order, as `getJournal` prints them. */
export async function readArchivedJournal(folder: string, accountId?: string): Promise<JournalLine[]> {
  const lines: JournalLine[] = [];
  for await (const text of gzipLines(join(folder, FILES.journal))) {
    const [businessDate, transferId, lineNo, transferType, account, code, direction, amount, at] = JSON.parse(text) as [
      string,
      string,
      number,
      JournalLine['transferType'],
      string,
      string,
      PostingDirection,
      string,
      string,
    ];
    if (accountId !== undefined && account !== accountId) continue;
    lines.push({
      businessDate,
      transferId,
      lineNo,
      transferType,
      accountId: account,
      asset: asset(code),
      direction,
      amount: money(code, amount),
      at,
    });
  }
  return lines;
}

/**
 * An account's statement of an archived month computed from the archived events alone (its `AccountPosted`
 * events carry the running balance): must equal the archived statement lines.
 */
export async function statementFromArchivedEvents(
  folder: string,
  accountId: string,
  assetCode: AssetCode,
): Promise<StatementLine[]> {
  const lines: StatementLine[] = [];
  for await (const text of gzipLines(join(folder, FILES.events))) {
    const [, streamId, revision, , type, data] = JSON.parse(text) as [string, string, number, string, string, string];
    if (type !== 'AccountPosted' || streamId !== `account-${accountId}`) continue;
    const d = JSON.parse(data) as {
      at: string;
      transferId: string;
      direction: PostingDirection;
      amount: string;
      balance: string;
    };
    lines.push({
      revision,
      at: new Date(d.at).toISOString(),
      transferId: d.transferId,
      direction: d.direction,
      amount: money(assetCode, d.amount),
      balance: money(assetCode, d.balance),
    });
  }
  return lines.sort((a, b) => a.revision - b.revision);
}

function monthOf(date: Date): string {
  // China Standard Time: UTC+8, no daylight saving
  return new Date(date.getTime() + 8 * 3_600_000).toISOString().slice(0, 7);
}
