/**
 * The tamper-evident audit trail (C14, T23): every operator action and data change as one row of an append-only
 * table, each row's hash chained to the one before it with SM3, and a head row naming the last seq and hash.
 *
 * What the chain proves: a row changed in place, a row removed from the middle or the end, and a row written
 * around the append path are each found by `verify`. What it cannot prove alone: someone with the database's
 * owner rights who rewrites every hash from the forged row to the head, and the head too. A head recorded outside
 * the database (`head()`), whose row must later still carry that hash, closes that gap; the append-only trigger
 * and a role without UPDATE, DELETE and TRUNCATE keep honest mistakes and ordinary roles out.
 *
 * Hashes are computed here, in this process, never by the database: the database only stores them. Appends are
 * one statement each (a compare-and-swap on the head, see APPEND_SQL), so they are atomic on any connection, a
 * pool or PGlite, without a transaction API.
 */
import { sm3Digest } from './crypto';

/** One statement at a time; rows come back as the driver parsed them. `pg` wrappers and PGlite both fit. */
export interface AuditDatabase {
  query<Row>(text: string, params?: readonly unknown[]): Promise<Row[]>;
}

// ---- bounds ---------------------------------------------------------------------------------------------------

/** Entries per statement: one `appendMany`, or several callers' appends grouped into one commit. */
export const AUDIT_APPEND_BATCH_ROWS_MAX = 1_000;
/** Compare-and-swap attempts of one append before it gives up under contention from other writers. */
export const AUDIT_APPEND_ATTEMPTS_MAX = 100;
/** Ceiling of the random pause between two attempts, in milliseconds. */
export const AUDIT_APPEND_BACKOFF_MS_MAX = 50;
/** UTF-8 bytes of one text field (actor, role, action, subject, outcome, source, request id). */
export const AUDIT_TEXT_FIELD_BYTES_MAX = 1_024;
/** UTF-8 bytes of the canonical JSON of one entry's details. */
export const AUDIT_DETAILS_BYTES_MAX = 8_192;
/** Nesting of arrays and objects in details. */
export const AUDIT_DETAILS_DEPTH_MAX = 8;
/** Rows read by one query of `verify`: memory stays bounded whatever the length of the chain. */
export const AUDIT_VERIFY_PAGE_ROWS = 1_000;
/** Problems kept by one `verify`; past this many the report says it was truncated and keeps counting rows. */
export const AUDIT_VERIFY_PROBLEMS_MAX = 1_000;

export const AUDIT_LOG_TABLE = 'cp_audit_log';
export const AUDIT_HEAD_TABLE = 'cp_audit_head';
/** The prev_hash of row 1, and the head's hash while the log is empty. */
export const AUDIT_GENESIS_HASH = '0'.repeat(64);

const HASH_PATTERN = /^[0-9a-f]{64}$/;
/** Actions and outcomes are names from a vocabulary (`operator.login`, `denied`), not prose. */
const IDENTIFIER_PATTERN = /^[a-z][a-z0-9_.:-]*$/;
const SEQ_PATTERN = /^(?:0|[1-9][0-9]*)$/;
/** A UTF-16 surrogate without its pair cannot be written as UTF-8: the database would store U+FFFD instead. */
const LONE_SURROGATE_PATTERN = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** Timestamps the canonical encoding can write in its fixed 27-character form. */
const AT_YEAR_MIN = 1970;
const AT_YEAR_MAX = 9999;
const BIGINT_MIN_TEXT = '-9223372036854775808';
const BIGINT_MAX_TEXT = '9223372036854775807';
const ADVISORY_LOCK_INSTALL = 'carbonpay.audit_chain.install';

// ---- entries and records --------------------------------------------------------------------------------------

/** JSON that survives jsonb unchanged: integers only (write amounts and decimals as strings), no NUL characters. */
export type AuditJsonValue =
  null | boolean | number | string | readonly AuditJsonValue[] | { readonly [key: string]: AuditJsonValue };

export type AuditDetails = { readonly [key: string]: AuditJsonValue };

/** What happened, as the caller tells it; the chain adds seq, prev_hash and hash. */
export interface AuditEntry {
  /** When it happened; default: the chain's clock. Kept to the millisecond a Date carries. */
  readonly at?: Date;
  /** The operator, partner or service that acted. */
  readonly actor: string;
  /** The role the actor acted in, when it had one. */
  readonly role?: string;
  /** What was done: `operator.login`, `account.freeze`, `keys.rotate`. */
  readonly action: string;
  /** What it was done to: an account id, an operator, a key id. */
  readonly subject?: string;
  /** How it ended: `succeeded`, `denied`, `failed`. */
  readonly outcome: string;
  /** Where the request came from: the client's address or a terminal id. */
  readonly source?: string;
  readonly requestId?: string;
  readonly details?: AuditDetails;
}

/** A row of the chain as stored. Absent optional fields are null. */
export interface AuditRecord {
  readonly seq: number;
  /** UTC, `YYYY-MM-DDTHH:MM:SS.ffffffZ`: the form the hash covers. */
  readonly at: string;
  readonly actor: string;
  readonly role: string | null;
  readonly action: string;
  readonly subject: string | null;
  readonly outcome: string;
  readonly source: string | null;
  readonly requestId: string | null;
  readonly details: AuditDetails | null;
  /** Lowercase hex, 64 characters. */
  readonly prevHash: string;
  readonly hash: string;
}

/** The last row the chain holds, as the head row records it: seq 0 and the genesis hash while empty. */
export interface AuditHead {
  readonly seq: number;
  readonly hash: string;
}

/**
 * - `modified`: the row's fields no longer hash to its stored hash.
 * - `deleted`: rows are missing — a gap in seq, rows past the last one up to the head, or a row whose prev_hash is
 *   not the hash of the row before it (the row it was chained to was removed and the rest renumbered, or was
 *   rewritten with a recomputed hash; the data cannot tell those apart).
 * - `inserted`: a row outside the chain — past the head, before seq 1, or a repeated seq.
 * - `head_mismatch`: the head row is missing or malformed, or its hash is not the hash of the row it names.
 */
export type AuditProblemKind = 'modified' | 'deleted' | 'inserted' | 'head_mismatch';

export interface AuditProblem {
  /** The row the problem is found at; for a range of missing rows, the first of them. */
  readonly seq: number;
  readonly kind: AuditProblemKind;
  readonly message: string;
}

export interface AuditVerification {
  readonly ok: boolean;
  /** Rows read and checked. */
  readonly rows: number;
  /** The head the walk checked the chain against; undefined when the head row is missing or malformed. */
  readonly head: AuditHead | undefined;
  readonly problems: readonly AuditProblem[];
  /** More than AUDIT_VERIFY_PROBLEMS_MAX problems: only the first are listed. */
  readonly problemsTruncated: boolean;
}

export interface AuditChainOptions {
  /** The clock for entries without `at`. */
  readonly now?: () => Date;
}

// ---- errors ---------------------------------------------------------------------------------------------------

/** An entry that cannot be recorded as given: a bound, a pattern or a JSON rule broken. Nothing was written. */
export class AuditEntryError extends Error {
  override readonly name = 'AuditEntryError';
}

/** The stored chain is not in a state an append can extend (head missing, a row squatting on the next seq). */
export class AuditChainBrokenError extends Error {
  override readonly name = 'AuditChainBrokenError';
}

/** Neither table exists: `install()` never ran against this database. */
export class AuditChainNotInstalledError extends Error {
  override readonly name = 'AuditChainNotInstalledError';
}

/** Other writers won every compare-and-swap of AUDIT_APPEND_ATTEMPTS_MAX attempts. Nothing was written. */
export class AuditAppendContentionError extends Error {
  override readonly name = 'AuditAppendContentionError';
}

export class AuditAssertionError extends Error {
  override readonly name = 'AuditAssertionError';
}

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new AuditAssertionError(`audit chain assertion failed: ${message}`);
}

// ---- the canonical encoding -----------------------------------------------------------------------------------

/**
 * hash(row) = SM3( prev_hash ‖ body ), lowercase hex; prev_hash enters as its 32 raw bytes (row 1: 32 zero bytes).
 *
 * body = field("carbonpay.audit.v1") ‖ field(seq) ‖ field(at) ‖ field(actor) ‖ field(role) ‖ field(action)
 *        ‖ field(subject) ‖ field(outcome) ‖ field(source) ‖ field(request_id) ‖ field(details)
 *   field(null) = 0x00
 *   field(text) = 0x01 ‖ length of UTF-8(text) as 4 bytes big-endian ‖ UTF-8(text)
 *   seq         decimal digits, no sign, no leading zero
 *   at          UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ`: always six fraction digits (PostgreSQL keeps microseconds)
 *   details     canonical JSON, or null: no whitespace; object members sorted by key, comparing UTF-16 code units;
 *               strings as ECMAScript's JSON.stringify writes them; numbers are integers in decimal digits, as
 *               jsonb writes them back (RFC 8785 restricted to integers)
 * The lengths make the encoding injective: no two rows share a body, whatever their texts contain.
 */
const ENCODING_TAG = 'carbonpay.audit.v1';
const FIELD_NULL = 0x00;
const FIELD_TEXT = 0x01;
const FIELD_HEADER_BYTES = 5;
const HASH_BYTES = 32;

/** The fields of a row in hash order, as text; details already in canonical JSON. */
interface HashedFields {
  readonly seq: string;
  readonly at: string | null;
  readonly actor: string | null;
  readonly role: string | null;
  readonly action: string | null;
  readonly subject: string | null;
  readonly outcome: string | null;
  readonly source: string | null;
  readonly requestId: string | null;
  readonly detailsJson: string | null;
}

function hashOf(prevHash: string, fields: HashedFields): string {
  assert(HASH_PATTERN.test(prevHash), 'prev_hash is 64 lowercase hex characters');
  const body = [
    ENCODING_TAG,
    fields.seq,
    fields.at,
    fields.actor,
    fields.role,
    fields.action,
    fields.subject,
    fields.outcome,
    fields.source,
    fields.requestId,
    fields.detailsJson,
  ];
  const parts: Buffer[] = [Buffer.from(prevHash, 'hex')];
  for (const text of body) {
    if (text === null) {
      parts.push(Buffer.of(FIELD_NULL));
      continue;
    }
    const bytes = Buffer.from(text, 'utf8');
    const header = Buffer.alloc(FIELD_HEADER_BYTES);
    header.writeUInt8(FIELD_TEXT, 0);
    header.writeUInt32BE(bytes.length, 1);
    parts.push(header, bytes);
  }
  assert(parts[0]!.length === HASH_BYTES, 'prev_hash decodes to 32 bytes');
  return sm3Digest(Buffer.concat(parts)).toString('hex');
}

/** The hash a record must carry: for tools that check rows one by one, and for tests that forge rows. */
export function computeAuditHash(record: Omit<AuditRecord, 'hash'>): string {
  return hashOf(record.prevHash, {
    seq: String(record.seq),
    at: record.at,
    actor: record.actor,
    role: record.role,
    action: record.action,
    subject: record.subject,
    outcome: record.outcome,
    source: record.source,
    requestId: record.requestId,
    detailsJson: record.details === null ? null : canonicalJsonOf(record.details, 'details', 0),
  });
}

/** The canonical JSON (see the encoding above) of details given by a caller; throws AuditEntryError. */
function canonicalJsonOf(value: unknown, path: string, depth: number): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || Object.is(value, -0))
      throw new AuditEntryError(`${path} must be a safe integer (write decimals and amounts as strings)`);
    return String(value);
  }
  if (typeof value === 'string') return canonicalString(checkedText(value, path));
  if (depth >= AUDIT_DETAILS_DEPTH_MAX)
    throw new AuditEntryError(`${path} nests deeper than ${AUDIT_DETAILS_DEPTH_MAX} levels`);
  if (Array.isArray(value)) {
    return `[${value.map((item: unknown, index) => canonicalJsonOf(item, `${path}[${index}]`, depth + 1)).join(',')}]`;
  }
  if (typeof value === 'object' && isPlainObject(value)) {
    const members = Object.entries(value).map(([key, member]): [string, string] => [
      checkedText(key, `a key of ${path}`),
      canonicalJsonOf(member, `${path}.${key}`, depth + 1),
    ]);
    return canonicalObject(members);
  }
  throw new AuditEntryError(`${path} must be JSON: null, a boolean, an integer, a string, an array or a plain object`);
}

function isPlainObject(value: object): boolean {
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

function canonicalString(text: string): string {
  return JSON.stringify(text);
}

/** Members as [decoded key, canonical value]; keys are unique. */
function canonicalObject(members: [string, string][]): string {
  members.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${members.map(([key, value]) => `${canonicalString(key)}:${value}`).join(',')}}`;
}

/**
 * The canonical JSON of details as jsonb writes them back, or undefined when the text is not JSON this chain
 * could have written (too deep, duplicate keys). Numbers are kept as the digits jsonb wrote — never parsed into
 * a double, which would let 1 and 1.0000000000000000001 hash the same.
 */
function canonicalJsonOfStored(text: string): string | undefined {
  const reader = { text, at: 0 };
  const value = readStoredValue(reader, 0);
  skipWhitespace(reader);
  if (value === undefined || reader.at !== text.length) return undefined;
  return value;
}

interface JsonReader {
  readonly text: string;
  at: number;
}

// JSON forbids raw control characters inside strings; jsonb writes them escaped.
// eslint-disable-next-line no-control-regex
const STORED_STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const STORED_NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const STORED_LITERAL = /true|false|null/y;
const WHITESPACE = /[ \t\n\r]*/y;

function skipWhitespace(reader: JsonReader): void {
  WHITESPACE.lastIndex = reader.at;
  WHITESPACE.exec(reader.text);
  reader.at = WHITESPACE.lastIndex;
}

function readToken(reader: JsonReader, pattern: RegExp): string | undefined {
  pattern.lastIndex = reader.at;
  const match = pattern.exec(reader.text);
  if (match === null) return undefined;
  reader.at = pattern.lastIndex;
  return match[0];
}

function readStoredValue(reader: JsonReader, depth: number): string | undefined {
  skipWhitespace(reader);
  const next = reader.text[reader.at];
  if (next === '"') {
    const token = readToken(reader, STORED_STRING);
    return token === undefined ? undefined : canonicalString(JSON.parse(token) as string);
  }
  if (next === '[' || next === '{') {
    if (depth >= AUDIT_DETAILS_DEPTH_MAX) return undefined;
    reader.at += 1;
    return next === '[' ? readStoredArray(reader, depth + 1) : readStoredObject(reader, depth + 1);
  }
  return readToken(reader, STORED_NUMBER) ?? readToken(reader, STORED_LITERAL);
}

function readStoredArray(reader: JsonReader, depth: number): string | undefined {
  const items: string[] = [];
  skipWhitespace(reader);
  if (reader.text[reader.at] === ']') {
    reader.at += 1;
    return '[]';
  }
  for (;;) {
    const item = readStoredValue(reader, depth);
    if (item === undefined) return undefined;
    items.push(item);
    skipWhitespace(reader);
    const separator = reader.text[reader.at];
    reader.at += 1;
    if (separator === ']') return `[${items.join(',')}]`;
    if (separator !== ',') return undefined;
  }
}

function readStoredObject(reader: JsonReader, depth: number): string | undefined {
  const members: [string, string][] = [];
  const keys = new Set<string>();
  skipWhitespace(reader);
  if (reader.text[reader.at] === '}') {
    reader.at += 1;
    return '{}';
  }
  for (;;) {
    skipWhitespace(reader);
    const keyToken = readToken(reader, STORED_STRING);
    if (keyToken === undefined) return undefined;
    const key = JSON.parse(keyToken) as string;
    if (keys.has(key)) return undefined;
    keys.add(key);
    skipWhitespace(reader);
    if (reader.text[reader.at] !== ':') return undefined;
    reader.at += 1;
    const value = readStoredValue(reader, depth);
    if (value === undefined) return undefined;
    members.push([key, value]);
    skipWhitespace(reader);
    const separator = reader.text[reader.at];
    reader.at += 1;
    if (separator === '}') return canonicalObject(members);
    if (separator !== ',') return undefined;
  }
}

/** A Date as the canonical `at`: the millisecond a Date holds, padded to microseconds. */
function canonicalAtOf(at: Date): string {
  if (!(at instanceof Date) || Number.isNaN(at.getTime())) throw new AuditEntryError('at must be a valid Date');
  const year = at.getUTCFullYear();
  if (year < AT_YEAR_MIN || year > AT_YEAR_MAX)
    throw new AuditEntryError(`at must fall in the years ${AT_YEAR_MIN}..${AT_YEAR_MAX}, got ${year}`);
  const iso = at.toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ within those years
  assert(iso.length === 24 && iso.endsWith('Z'), 'toISOString gives the 24-character form');
  return `${iso.slice(0, 23)}000Z`;
}

/** SQL that reads a timestamptz back in the canonical form, whatever the session's TimeZone and DateStyle. */
const AT_SQL = `to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

function checkedText(text: string, what: string): string {
  if (typeof text !== 'string') throw new AuditEntryError(`${what} must be a string`);
  if (text.includes('\u0000')) throw new AuditEntryError(`${what} must not contain NUL characters`);
  if (LONE_SURROGATE_PATTERN.test(text)) throw new AuditEntryError(`${what} has an unpaired UTF-16 surrogate`);
  return text;
}

function fieldText(text: string, what: string): string {
  checkedText(text, what);
  if (text.length === 0) throw new AuditEntryError(`${what} must not be empty`);
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > AUDIT_TEXT_FIELD_BYTES_MAX)
    throw new AuditEntryError(`${what} is ${bytes} bytes of UTF-8, more than ${AUDIT_TEXT_FIELD_BYTES_MAX}`);
  return text;
}

function optionalFieldText(text: string | undefined, what: string): string | null {
  return text === undefined ? null : fieldText(text, what);
}

function identifierText(text: string, what: string): string {
  fieldText(text, what);
  if (!IDENTIFIER_PATTERN.test(text))
    throw new AuditEntryError(`${what} must be a lowercase name (a-z, 0-9, _ . : -), got ${JSON.stringify(text)}`);
  return text;
}

/** An entry checked against every bound and put in the form the hash covers; no seq yet. */
interface PreparedEntry {
  readonly at: string;
  readonly actor: string;
  readonly role: string | null;
  readonly action: string;
  readonly subject: string | null;
  readonly outcome: string;
  readonly source: string | null;
  readonly requestId: string | null;
  readonly details: AuditDetails | null;
  readonly detailsJson: string | null;
}

function prepareEntry(entry: AuditEntry, now: () => Date): PreparedEntry {
  if (typeof entry !== 'object' || entry === null) throw new AuditEntryError('an audit entry must be an object');
  let detailsJson: string | null = null;
  if (entry.details !== undefined) {
    if (typeof entry.details !== 'object' || entry.details === null || Array.isArray(entry.details))
      throw new AuditEntryError('details must be a plain object');
    detailsJson = canonicalJsonOf(entry.details, 'details', 0);
    const bytes = Buffer.byteLength(detailsJson, 'utf8');
    if (bytes > AUDIT_DETAILS_BYTES_MAX)
      throw new AuditEntryError(`details are ${bytes} bytes of canonical JSON, more than ${AUDIT_DETAILS_BYTES_MAX}`);
  }
  return {
    at: canonicalAtOf(entry.at ?? now()),
    actor: fieldText(entry.actor, 'actor'),
    role: optionalFieldText(entry.role, 'role'),
    action: identifierText(entry.action, 'action'),
    subject: optionalFieldText(entry.subject, 'subject'),
    outcome: identifierText(entry.outcome, 'outcome'),
    source: optionalFieldText(entry.source, 'source'),
    requestId: optionalFieldText(entry.requestId, 'requestId'),
    // A copy that later changes to the caller's object cannot reach.
    details: detailsJson === null ? null : (JSON.parse(detailsJson) as AuditDetails),
    detailsJson,
  };
}

// ---- SQL ------------------------------------------------------------------------------------------------------

/**
 * One statement, so one transaction, and serialised by PostgreSQL's own lock: the installers of several
 * processes starting together take turns (CREATE ... IF NOT EXISTS alone is not race-free).
 */
const INSTALL_SQL = `
DO $install$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('${ADVISORY_LOCK_INSTALL}'));

  CREATE TABLE IF NOT EXISTS ${AUDIT_LOG_TABLE} (
    seq bigint PRIMARY KEY CHECK (seq >= 1),
    at timestamptz NOT NULL,
    actor text NOT NULL,
    role text,
    action text NOT NULL,
    subject text,
    outcome text NOT NULL,
    source text,
    request_id text,
    details jsonb,
    prev_hash text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    hash text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$')
  );
  CREATE TABLE IF NOT EXISTS ${AUDIT_HEAD_TABLE} (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq bigint NOT NULL CHECK (seq >= 0),
    hash text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$')
  );
  -- Only beside an empty log: a head removed from under existing rows stays missing, for verify to report.
  INSERT INTO ${AUDIT_HEAD_TABLE} (id, seq, hash)
  SELECT true, 0, '${AUDIT_GENESIS_HASH}' WHERE NOT EXISTS (SELECT 1 FROM ${AUDIT_LOG_TABLE})
  ON CONFLICT (id) DO NOTHING;

  CREATE OR REPLACE FUNCTION cp_audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $refuse$
  BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'restrict_violation';
  END
  $refuse$;
  CREATE OR REPLACE FUNCTION cp_audit_head_advance_only() RETURNS trigger LANGUAGE plpgsql AS $advance$
  BEGIN
    IF TG_OP = 'UPDATE' AND NEW.id AND NEW.seq > OLD.seq THEN
      RETURN NEW;
    END IF;
    RAISE EXCEPTION '% only moves forward: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'restrict_violation';
  END
  $advance$;

  CREATE OR REPLACE TRIGGER cp_audit_log_append_only BEFORE UPDATE OR DELETE ON ${AUDIT_LOG_TABLE}
    FOR EACH ROW EXECUTE FUNCTION cp_audit_refuse_change();
  CREATE OR REPLACE TRIGGER cp_audit_log_no_truncate BEFORE TRUNCATE ON ${AUDIT_LOG_TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION cp_audit_refuse_change();
  CREATE OR REPLACE TRIGGER cp_audit_head_advance_only BEFORE UPDATE OR DELETE ON ${AUDIT_HEAD_TABLE}
    FOR EACH ROW EXECUTE FUNCTION cp_audit_head_advance_only();
  CREATE OR REPLACE TRIGGER cp_audit_head_no_truncate BEFORE TRUNCATE ON ${AUDIT_HEAD_TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION cp_audit_refuse_change();
END
$install$`;

/**
 * The append: a compare-and-swap of the head from the head the hashes were computed on ($1, $2) to the last new
 * row ($3, $4), and the rows inserted only when the swap happened. Two writers racing both wait on the head
 * row's lock; the second sees the first's new head, matches no row, and inserts nothing — it re-reads the head,
 * rehashes and tries again. Row and head commit together or not at all.
 */
const APPEND_SQL = `
WITH moved AS (
  UPDATE ${AUDIT_HEAD_TABLE} SET seq = $3::bigint, hash = $4::text
   WHERE id AND seq = $1::bigint AND hash = $2::text
  RETURNING seq
)
INSERT INTO ${AUDIT_LOG_TABLE} (seq, at, actor, role, action, subject, outcome, source, request_id, details, prev_hash, hash)
SELECT r.seq, r.at, r.actor, r.role, r.action, r.subject, r.outcome, r.source, r.request_id, r.details, r.prev_hash, r.hash
  FROM moved
 CROSS JOIN unnest($5::bigint[], $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
                   $12::text[], $13::text[], $14::jsonb[], $15::text[], $16::text[])
       AS r(seq, at, actor, role, action, subject, outcome, source, request_id, details, prev_hash, hash)
RETURNING seq::text AS seq`;

const HEAD_SQL = `SELECT seq::text AS seq, hash FROM ${AUDIT_HEAD_TABLE} WHERE id`;

const TABLES_SQL = `SELECT to_regclass('${AUDIT_LOG_TABLE}') IS NOT NULL AS log, to_regclass('${AUDIT_HEAD_TABLE}') IS NOT NULL AS head`;

/** A page of the walk: rows with after < seq <= until, in seq order (the column's: the alias is text). */
const PAGE_SQL = `
SELECT seq::text AS seq, ${AT_SQL} AS at, actor, role, action, subject, outcome, source, request_id,
       details::text AS details, prev_hash, hash
  FROM ${AUDIT_LOG_TABLE}
 WHERE seq > $1::bigint AND seq <= $2::bigint
 ORDER BY ${AUDIT_LOG_TABLE}.seq
 LIMIT $3::integer`;

/**
 * Rows past the head, the head read in the same statement: one snapshot, in which every append shows its rows and
 * its head together (two statements would let an append land between them and look inserted).
 */
const BEYOND_HEAD_SQL = `
SELECT log.seq::text AS seq, head.seq::text AS head_seq
  FROM ${AUDIT_HEAD_TABLE} head JOIN ${AUDIT_LOG_TABLE} log ON log.seq > head.seq
 WHERE head.id
 ORDER BY log.seq
 LIMIT $1::integer`;

interface StoredRow {
  readonly seq: string;
  readonly at: string | null;
  readonly actor: string | null;
  readonly role: string | null;
  readonly action: string | null;
  readonly subject: string | null;
  readonly outcome: string | null;
  readonly source: string | null;
  readonly request_id: string | null;
  readonly details: string | null;
  readonly prev_hash: string | null;
  readonly hash: string | null;
}

/** PostgreSQL error codes an append handles. */
const SQLSTATE_UNIQUE_VIOLATION = '23505';
/** Only under REPEATABLE READ or SERIALIZABLE as the default isolation: the swap lost a race, like 0 rows. */
const SQLSTATE_SERIALIZATION_FAILURE = '40001';

function sqlStateOf(error: unknown): unknown {
  return typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
}

// ---- the chain ------------------------------------------------------------------------------------------------

interface PendingAppend {
  readonly entries: readonly PreparedEntry[];
  readonly resolve: (records: AuditRecord[]) => void;
  readonly reject: (error: unknown) => void;
}

export class AuditChain {
  private readonly now: () => Date;
  /** The head after this instance's last append; other writers may have moved it since (the swap finds out). */
  private knownHead: AuditHead | undefined;
  /** Appends waiting for the writer; each stays whole and in order within one statement. */
  private readonly pending: PendingAppend[] = [];
  private writing = false;

  constructor(
    private readonly database: AuditDatabase,
    options: AuditChainOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
  }

  /** Creates the tables, the head and the append-only triggers; safe to run again and from several processes. */
  async install(): Promise<void> {
    await this.database.query(INSTALL_SQL);
  }

  async append(entry: AuditEntry): Promise<AuditRecord> {
    const [record] = await this.appendMany([entry]);
    assert(record !== undefined, 'one entry appended gives one record');
    return record;
  }

  /**
   * Appends entries as consecutive rows, all or none. Concurrent calls on one chain are grouped into one
   * statement (up to AUDIT_APPEND_BATCH_ROWS_MAX rows). An entry that breaks a rule rejects the call with
   * AuditEntryError before anything is queued.
   */
  appendMany(entries: readonly AuditEntry[]): Promise<AuditRecord[]> {
    if (entries.length < 1 || entries.length > AUDIT_APPEND_BATCH_ROWS_MAX)
      return Promise.reject(
        new AuditEntryError(`appendMany takes 1..${AUDIT_APPEND_BATCH_ROWS_MAX} entries, got ${entries.length}`),
      );
    let prepared: PreparedEntry[];
    try {
      prepared = entries.map((entry, index) => {
        try {
          return prepareEntry(entry, this.now);
        } catch (error) {
          if (error instanceof AuditEntryError && entries.length > 1)
            throw new AuditEntryError(`entry ${index}: ${error.message}`);
          throw error;
        }
      });
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ entries: prepared, resolve, reject });
      void this.writePending();
    });
  }

  /** The head as stored now: record it outside the database to catch a rewrite of the whole chain later. */
  async head(): Promise<AuditHead> {
    const head = parseHead(await this.database.query<{ seq: string; hash: string }>(HEAD_SQL));
    if (typeof head === 'string') throw new AuditChainBrokenError(head);
    return head;
  }

  /**
   * Walks the chain in seq order, AUDIT_VERIFY_PAGE_ROWS rows at a time, recomputing every hash. The walk covers
   * the rows up to the head read when it starts; rows appended meanwhile are left to the next run. Rows past the
   * head as it stands when the walk ends were written around the append path.
   */
  async verify(): Promise<AuditVerification> {
    const [tables] = await this.database.query<{ log: boolean; head: boolean }>(TABLES_SQL);
    assert(tables !== undefined, 'the table probe returns one row');
    if (!tables.log && !tables.head)
      throw new AuditChainNotInstalledError(`neither ${AUDIT_LOG_TABLE} nor ${AUDIT_HEAD_TABLE} exists`);
    const report = new ProblemReport();
    if (!tables.log) {
      report.add({ seq: 1, kind: 'deleted', message: `the table ${AUDIT_LOG_TABLE} is missing` });
      return report.result(0, undefined);
    }
    let headAtStart: AuditHead | undefined;
    if (!tables.head) {
      report.add({ seq: 0, kind: 'head_mismatch', message: `the table ${AUDIT_HEAD_TABLE} is missing` });
    } else {
      const parsed = parseHead(await this.database.query<{ seq: string; hash: string }>(HEAD_SQL));
      if (typeof parsed === 'string') report.add({ seq: 0, kind: 'head_mismatch', message: parsed });
      else headAtStart = parsed;
    }

    const walk = new ChainWalk(report);
    const until = headAtStart === undefined ? BIGINT_MAX_TEXT : String(headAtStart.seq);
    let after = BIGINT_MIN_TEXT;
    for (;;) {
      const page = await this.database.query<StoredRow>(PAGE_SQL, [after, until, AUDIT_VERIFY_PAGE_ROWS]);
      assert(page.length <= AUDIT_VERIFY_PAGE_ROWS, 'a page holds at most its limit');
      for (const row of page) walk.check(row);
      if (page.length < AUDIT_VERIFY_PAGE_ROWS) break;
      const last = page[page.length - 1]!.seq;
      assert(after === BIGINT_MIN_TEXT || BigInt(last) > BigInt(after), 'the walk moves forward');
      after = last;
    }
    if (headAtStart !== undefined) {
      walk.checkHead(headAtStart);
      const beyond = await this.database.query<{ seq: string; head_seq: string }>(BEYOND_HEAD_SQL, [
        AUDIT_VERIFY_PROBLEMS_MAX,
      ]);
      for (const row of beyond)
        report.add({
          seq: Number(row.seq),
          kind: 'inserted',
          message: `row ${row.seq} is past the head (seq ${row.head_seq}): written around the append path`,
        });
    }
    return report.result(walk.rows, headAtStart);
  }

  private async writePending(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    try {
      while (this.pending.length > 0) {
        const group = takeGroup(this.pending);
        try {
          const records = await this.writeGroup(group.flatMap((append) => append.entries));
          let offset = 0;
          for (const append of group) {
            append.resolve(records.slice(offset, offset + append.entries.length));
            offset += append.entries.length;
          }
          assert(offset === records.length, 'every record goes back to its caller');
        } catch (error) {
          for (const append of group) append.reject(error);
        }
      }
    } finally {
      this.writing = false;
    }
  }

  private async writeGroup(entries: readonly PreparedEntry[]): Promise<AuditRecord[]> {
    assert(entries.length >= 1 && entries.length <= AUDIT_APPEND_BATCH_ROWS_MAX, 'a group fits one statement');
    for (let attempt = 1; attempt <= AUDIT_APPEND_ATTEMPTS_MAX; attempt++) {
      const headWasKnown = this.knownHead !== undefined;
      const head = this.knownHead ?? (await this.head());
      this.knownHead = undefined;
      const records = chainRecords(head, entries);
      const last = records[records.length - 1]!;
      let inserted: { seq: string }[];
      try {
        inserted = await this.database.query<{ seq: string }>(APPEND_SQL, appendParams(head, last, records));
      } catch (error) {
        const sqlState = sqlStateOf(error);
        if (sqlState === SQLSTATE_UNIQUE_VIOLATION)
          throw new AuditChainBrokenError(
            `a row already holds a seq in ${records[0]!.seq}..${last.seq}, past the head: ` +
              'a row was written around the append path (run carbonpay audit verify)',
          );
        if (sqlState !== SQLSTATE_SERIALIZATION_FAILURE) throw error;
        inserted = [];
      }
      if (inserted.length === records.length) {
        this.knownHead = { seq: last.seq, hash: last.hash };
        return records;
      }
      assert(inserted.length === 0, 'the swap inserts every row or none');
      // A head cached from this instance's last append is often just stale: retry at once on a fresh one.
      if (!headWasKnown) await pause(attempt);
    }
    throw new AuditAppendContentionError(
      `other writers moved the audit head during each of ${AUDIT_APPEND_ATTEMPTS_MAX} attempts; nothing was written`,
    );
  }
}

function takeGroup(pending: PendingAppend[]): PendingAppend[] {
  const group: PendingAppend[] = [];
  let rows = 0;
  while (pending.length > 0 && rows + pending[0]!.entries.length <= AUDIT_APPEND_BATCH_ROWS_MAX) {
    const next = pending.shift()!;
    rows += next.entries.length;
    group.push(next);
  }
  assert(group.length > 0, 'every append fits a group alone');
  return group;
}

function chainRecords(head: AuditHead, entries: readonly PreparedEntry[]): AuditRecord[] {
  assert(head.seq + entries.length <= Number.MAX_SAFE_INTEGER, 'seq stays a safe integer');
  const records: AuditRecord[] = [];
  let prevHash = head.hash;
  for (const [index, entry] of entries.entries()) {
    const seq = head.seq + 1 + index;
    const hash = hashOf(prevHash, { ...entry, seq: String(seq) });
    const { detailsJson: _detailsJson, ...fields } = entry;
    records.push({ seq, ...fields, prevHash, hash });
    prevHash = hash;
  }
  return records;
}

function appendParams(head: AuditHead, last: AuditRecord, records: readonly AuditRecord[]): unknown[] {
  const column = <T>(pick: (record: AuditRecord) => T): T[] => records.map(pick);
  return [
    String(head.seq),
    head.hash,
    String(last.seq),
    last.hash,
    column((r) => String(r.seq)),
    column((r) => r.at),
    column((r) => r.actor),
    column((r) => r.role),
    column((r) => r.action),
    column((r) => r.subject),
    column((r) => r.outcome),
    column((r) => r.source),
    column((r) => r.requestId),
    column((r) => (r.details === null ? null : JSON.stringify(r.details))),
    column((r) => r.prevHash),
    column((r) => r.hash),
  ];
}

function pause(attempt: number): Promise<void> {
  const ceilingMs = Math.min(AUDIT_APPEND_BACKOFF_MS_MAX, 2 ** attempt);
  return new Promise((resolve) => setTimeout(resolve, Math.random() * ceilingMs));
}

/** The head row, or a sentence saying why there is none usable. */
function parseHead(rows: readonly { seq: string; hash: string }[]): AuditHead | string {
  if (rows.length === 0) return `the head row of ${AUDIT_HEAD_TABLE} is missing`;
  assert(rows.length === 1, 'the head table holds one row (its key is the constant true)');
  const { seq, hash } = rows[0]!;
  if (!SEQ_PATTERN.test(seq) || !Number.isSafeInteger(Number(seq)))
    return `the head's seq ${JSON.stringify(seq)} is not a safe integer`;
  if (!HASH_PATTERN.test(hash)) return `the head's hash ${JSON.stringify(hash)} is not 64 lowercase hex characters`;
  return { seq: Number(seq), hash };
}

class ProblemReport {
  private readonly problems: AuditProblem[] = [];
  private truncated = false;

  add(problem: AuditProblem): void {
    if (this.problems.length < AUDIT_VERIFY_PROBLEMS_MAX) this.problems.push(problem);
    else this.truncated = true;
  }

  result(rows: number, head: AuditHead | undefined): AuditVerification {
    const ok = this.problems.length === 0;
    assert(ok || this.problems.every((p) => p.message.length > 0), 'every problem says what it is');
    return { ok, rows, head, problems: this.problems, problemsTruncated: this.truncated };
  }
}

/**
 * The walk's state between rows. A row already reported is not blamed again through its links (the next row's
 * prev_hash, the head's hash): one change, one problem.
 */
class ChainWalk {
  rows = 0;
  /** The seq the next row must have. */
  private expectedSeq = 1;
  /** The stored hash of the last row in the chain, which the next row's prev_hash must equal. */
  private previousHash = AUDIT_GENESIS_HASH;
  /** False right after a gap or a reported row: the next row's link is not checked. */
  private linkCheckable = true;

  constructor(private readonly report: ProblemReport) {}

  check(row: StoredRow): void {
    this.rows += 1;
    const seq = Number(row.seq);
    if (!(seq >= this.expectedSeq)) {
      this.report.add({
        seq,
        kind: 'inserted',
        message: seq < 1 ? `row ${row.seq} is before row 1` : `row ${row.seq} repeats a seq already in the chain`,
      });
      return;
    }
    if (seq > this.expectedSeq) {
      this.report.add({ seq: this.expectedSeq, kind: 'deleted', message: missingRows(this.expectedSeq, seq - 1) });
      this.linkCheckable = false;
    }
    let reported = true;
    if (!storedHashMatches(row)) {
      this.report.add({ seq, kind: 'modified', message: `row ${seq}: its fields do not hash to its stored hash` });
    } else if (this.linkCheckable && row.prev_hash !== this.previousHash) {
      this.report.add({
        seq,
        kind: 'deleted',
        message:
          `row ${seq}'s prev_hash is not the hash of row ${seq - 1}: the row it was chained to is gone ` +
          `(deleted and the chain renumbered, or row ${seq - 1} rewritten with a recomputed hash)`,
      });
    } else {
      reported = false;
    }
    this.expectedSeq = seq + 1;
    this.previousHash = row.hash ?? '';
    this.linkCheckable = !reported;
  }

  /** After the walk up to the head read at its start: the rows it names are all there, and the last is its row. */
  checkHead(head: AuditHead): void {
    const lastSeq = this.expectedSeq - 1;
    assert(lastSeq <= head.seq, 'the walk reads no row past the head');
    if (lastSeq < head.seq) {
      this.report.add({
        seq: lastSeq + 1,
        kind: 'deleted',
        message: `${missingRows(lastSeq + 1, head.seq)} at the end of the chain (the head records seq ${head.seq})`,
      });
    } else if (this.linkCheckable && head.hash !== this.previousHash) {
      this.report.add({
        seq: head.seq,
        kind: 'head_mismatch',
        message: `the head records hash ${head.hash} for row ${head.seq}, which has ${this.previousHash}: row ${head.seq} was replaced`,
      });
    }
  }
}

function missingRows(first: number, last: number): string {
  return first === last ? `row ${first} is missing` : `rows ${first}..${last} are missing`;
}

function storedHashMatches(row: StoredRow): boolean {
  if (row.hash === null || row.prev_hash === null || !HASH_PATTERN.test(row.prev_hash)) return false;
  if (!SEQ_PATTERN.test(row.seq)) return false;
  let detailsJson: string | null = null;
  if (row.details !== null) {
    const canonical = canonicalJsonOfStored(row.details);
    if (canonical === undefined) return false;
    detailsJson = canonical;
  }
  const recomputed = hashOf(row.prev_hash, {
    seq: row.seq,
    at: row.at,
    actor: row.actor,
    role: row.role,
    action: row.action,
    subject: row.subject,
    outcome: row.outcome,
    source: row.source,
    requestId: row.request_id,
    detailsJson,
  });
  return recomputed === row.hash;
}
