import type { PGlite, Transaction } from '@electric-sql/pglite';
import type { QueryConfig } from 'pg';
import { Client, Pool } from 'pg';
import type { SqlEventStore } from '../core-ledger';
import { PgliteDriver } from '../core-ledger';

/**
 * A statement run on the hot path: PostgreSQL keeps it parsed (and, once a generic plan pays, planned) on each
 * connection under its name, so each run sends only its parameters. Names are unique: one text per name.
 */
export interface PreparedSql {
  readonly name: string;
  readonly text: string;
}

const preparedTexts = new Map<string, string>();

export function preparedSql(name: string, text: string): PreparedSql {
  const known = preparedTexts.get(name);
  if (known !== undefined && known !== text) throw new Error(`assertion: prepared statement ${name} has two texts`);
  preparedTexts.set(name, text);
  return { name, text };
}

/**
 * An array parameter whose length the planner must not see, in a prepared statement. A custom plan sees the array's
 * length and a generic plan guesses, so for small batches the custom plans looked cheaper than the generic one and
 * PostgreSQL planned the statement again on every run (~440 µs a payment statement, session 12). Behind a sub-select
 * the length is a guess in both plans, and the generic plan is kept after the fifth run. Of several arrays unnested
 * together one is enough (the set is guessed as long as its longest). Checked for every named statement by
 * tests/int/payments-risk.int.spec.ts.
 */
export function lengthUnseen(arrayParameter: string): string {
  return `(SELECT ${arrayParameter})`;
}

/** Every named statement this process has defined, by name (their plans are checked by a test). */
export function preparedStatements(): ReadonlyMap<string, string> {
  return preparedTexts;
}

export type SqlStatement = string | PreparedSql;

function textOf(statement: SqlStatement): string {
  return typeof statement === 'string' ? statement : statement.text;
}

/** What `pg` runs: a named statement is parsed once per connection. */
function pgQueryOf(statement: SqlStatement, params: readonly unknown[]): QueryConfig {
  const values = params.map(pgParameterOf);
  return typeof statement === 'string'
    ? { text: statement, values }
    : { name: statement.name, text: statement.text, values };
}

/**
 * A parameter as sent to PostgreSQL. An array of strings (none with a quote or a backslash), numbers or booleans is
 * written as an array literal in one join: `pg` builds the same literal element by element, escaping each with two
 * regular expressions, and on the batched payment statements that was the largest source of garbage (~4.6 KB a mall
 * payment with risk control, session 15). Anything else (nulls, dates, nested arrays, text to escape) is left to `pg`.
 */
export function pgParameterOf(value: unknown): unknown {
  if (!Array.isArray(value)) return value;
  if (value.length === 0) return '{}';
  for (const element of value as unknown[]) {
    const kind = typeof element;
    if (kind === 'string' ? ESCAPED_IN_ARRAY.test(element as string) : kind !== 'number' && kind !== 'boolean')
      return value;
  }
  return `{"${value.join('","')}"}`;
}

const ESCAPED_IN_ARRAY = /["\\]/;

/** Runs one statement; rows come back as the driver parsed them (numeric and bigint as strings). */
export interface SqlQueryable {
  query<Row>(statement: SqlStatement, params?: readonly unknown[]): Promise<Row[]>;
}

/**
 * A connection kept by one projection runner: its leadership lock lives as long as the connection, so a runner
 * whose process dies or whose connection drops loses the lock, and a standby can take over.
 */
export interface ReadModelSession extends SqlQueryable {
  /** Takes the named lock for this session if nobody holds it; never waits. */
  tryLock(name: string): Promise<boolean>;
  /** Runs `work` in one transaction: it commits when `work` resolves and rolls back when it throws. */
  transaction<T>(work: (tx: SqlQueryable) => Promise<T>): Promise<T>;
  /** True until the connection is lost or closed; a runner that sees false stops applying. */
  readonly alive: boolean;
  close(): Promise<void>;
}

/** Where read models live: PostgreSQL through `pg`, or PGlite in this process. */
export interface ReadModelDatabase extends SqlQueryable {
  readonly name: string;
  /** Runs a script of several statements (schema changes). */
  exec(script: string): Promise<void>;
  openSession(): Promise<ReadModelSession>;
  /**
   * Runs `work` in one transaction on a pooled connection: it commits when `work` resolves and rolls back when it
   * throws. Row locks taken inside (`SELECT … FOR UPDATE`) serialise writers of the same rows across processes.
   */
  transaction<T>(work: (tx: SqlQueryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Lock keys: one namespace for carbonpay's read-model locks, the name hashed by PostgreSQL itself. */
const LOCK_NAMESPACE = 7316282;

export class PostgresReadModels implements ReadModelDatabase {
  readonly name = 'postgres';
  private readonly pool: Pool;

  constructor(
    private readonly connectionString: string,
    maxConnections = 5,
  ) {
    // Short statements only: compiling one with LLVM costs more than it could ever save (decisions.md).
    this.pool = new Pool({
      connectionString,
      max: maxConnections,
      application_name: 'carbonpay-read',
      options: '-c jit=off',
    });
    this.pool.on('error', () => undefined);
  }

  async query<Row>(statement: SqlStatement, params: readonly unknown[] = []): Promise<Row[]> {
    return (await this.pool.query(pgQueryOf(statement, params))).rows as Row[];
  }

  async exec(script: string): Promise<void> {
    const client = await this.pool.connect();
    try {
      // Processes starting together serialise their schema scripts (CREATE ... IF NOT EXISTS is not race-free).
      await client.query('SELECT pg_advisory_lock($1, 0)', [LOCK_NAMESPACE]);
      await client.query(script);
    } finally {
      await client.query('SELECT pg_advisory_unlock($1, 0)', [LOCK_NAMESPACE]).catch(() => undefined);
      client.release();
    }
  }

  async transaction<T>(work: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    const tx: SqlQueryable = {
      query: async <Row>(statement: SqlStatement, params: readonly unknown[] = []) =>
        (await client.query(pgQueryOf(statement, params))).rows as Row[],
    };
    let broken = false;
    try {
      await client.query('BEGIN');
      const result = await work(tx);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw error;
    } finally {
      client.release(broken);
    }
  }

  async openSession(): Promise<ReadModelSession> {
    const client = new Client({ connectionString: this.connectionString, application_name: 'carbonpay-projection' });
    const session = new PostgresSession(client);
    await client.connect();
    return session;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

class PostgresSession implements ReadModelSession {
  private lost = false;
  private closed = false;

  constructor(private readonly client: Client) {
    client.on('error', () => {
      this.lost = true;
    });
    client.on('end', () => {
      this.lost = true;
    });
  }

  get alive(): boolean {
    return !this.lost && !this.closed;
  }

  async query<Row>(statement: SqlStatement, params: readonly unknown[] = []): Promise<Row[]> {
    return (await this.client.query(pgQueryOf(statement, params))).rows as Row[];
  }

  async tryLock(name: string): Promise<boolean> {
    const rows = await this.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked', [
      LOCK_NAMESPACE,
      name,
    ]);
    return rows[0]!.locked;
  }

  async transaction<T>(work: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    await this.client.query('BEGIN');
    try {
      const result = await work(this);
      await this.client.query('COMMIT');
      return result;
    } catch (error) {
      await this.client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.client.end().catch(() => undefined);
  }
}

/** Locks held in this process per PGlite database: it has one connection, so PostgreSQL's own locks cannot tell runners apart. */
const pgliteLocks = new WeakMap<PGlite, Set<string>>();

export class PgliteReadModels implements ReadModelDatabase {
  readonly name = 'pglite';

  constructor(private readonly db: PGlite) {}

  async query<Row>(statement: SqlStatement, params: readonly unknown[] = []): Promise<Row[]> {
    return (await this.db.query<Row>(textOf(statement), params as unknown[])).rows;
  }

  async exec(script: string): Promise<void> {
    await this.db.exec(script);
  }

  async openSession(): Promise<ReadModelSession> {
    let held = pgliteLocks.get(this.db);
    if (!held) {
      held = new Set();
      pgliteLocks.set(this.db, held);
    }
    return new PgliteSession(this.db, held);
  }

  transaction<T>(work: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    return pgliteTransaction(this.db, work);
  }

  /** The database belongs to whoever opened it (the event store): nothing to close here. */
  async close(): Promise<void> {}
}

class PgliteSession implements ReadModelSession {
  private readonly mine = new Set<string>();
  private closed = false;

  constructor(
    private readonly db: PGlite,
    private readonly held: Set<string>,
  ) {}

  get alive(): boolean {
    return !this.closed && !this.db.closed;
  }

  async query<Row>(statement: SqlStatement, params: readonly unknown[] = []): Promise<Row[]> {
    return (await this.db.query<Row>(textOf(statement), params as unknown[])).rows;
  }

  async tryLock(name: string): Promise<boolean> {
    if (this.mine.has(name)) return true;
    if (this.held.has(name)) return false;
    this.held.add(name);
    this.mine.add(name);
    return true;
  }

  transaction<T>(work: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    return pgliteTransaction(this.db, work);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const name of this.mine) this.held.delete(name);
    this.mine.clear();
  }
}

/** PGlite's transaction holds its only connection: the writer's appends wait until it ends. */
function pgliteTransaction<T>(db: PGlite, work: (tx: SqlQueryable) => Promise<T>): Promise<T> {
  return db.transaction(async (tx: Transaction) =>
    work({
      query: async <Row>(statement: SqlStatement, params: readonly unknown[] = []) =>
        (await tx.query<Row>(textOf(statement), params as unknown[])).rows,
    }),
  );
}

/** Read models beside an event store on PGlite: the same in-process database, shared. */
export function pgliteReadModelsOf(store: SqlEventStore): PgliteReadModels {
  if (!(store.driver instanceof PgliteDriver))
    throw new Error(`the event store runs on ${store.driver.name}, not PGlite`);
  return new PgliteReadModels(store.driver.database);
}
