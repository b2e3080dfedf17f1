import { Pool } from 'pg';
import type { PoolClient } from 'pg';
import type { SqlDriver } from './sql-store';
import { SqlEventStore } from './sql-store';

export interface PostgresOptions {
  readonly connectionString: string;
  /** Connections in the pool; the writer needs few (one append in flight), readers and subscribers more. */
  readonly maxConnections?: number;
  readonly statementTimeoutMs?: number;
}

/** PostgreSQL through a `pg` pool; one extra connection is kept for LISTEN when something subscribes. */
export class PostgresDriver implements SqlDriver {
  readonly name = 'postgres';
  private readonly pool: Pool;
  private listener: PoolClient | undefined;
  private writer: Promise<PoolClient> | undefined;
  private listenerReady: Promise<PoolClient> | undefined;
  private readonly callbacks = new Map<string, Set<() => void>>();

  constructor(options: PostgresOptions) {
    this.pool = new Pool({
      connectionString: options.connectionString,
      max: options.maxConnections ?? 10,
      statement_timeout: options.statementTimeoutMs ?? 30_000,
      application_name: 'carbonpay',
      // Short statements only: compiling one with LLVM costs more than it could ever save (decisions.md).
      options: '-c jit=off',
    });
    // An idle client that loses its connection must not crash the process; the next query reconnects.
    this.pool.on('error', () => undefined);
  }

  async query<Row>(text: string, params: readonly unknown[] = []): Promise<Row[]> {
    const result = await this.pool.query(text, params as unknown[]);
    return result.rows as Row[];
  }

  async queryInOrder<Row>(text: string, params: readonly unknown[] = []): Promise<Row[]> {
    this.writer ??= this.pool.connect().then((client) => {
      client.on('error', () => undefined);
      return client;
    });
    const client = await this.writer;
    try {
      const result = await client.query(text, params as unknown[]);
      return result.rows as Row[];
    } catch (error) {
      // A broken connection is replaced; an error the server sent leaves the connection usable.
      if (!(
        typeof error === 'object' &&
        error !== null &&
        'code' in error &&
        typeof (error as { code: unknown }).code === 'string'
      )) {
        this.writer = undefined;
        client.release(true);
      }
      throw error;
    }
  }

  async exec(script: string): Promise<void> {
    const client = await this.pool.connect();
    try {
      // Concurrent processes may run the schema at once; the advisory lock makes CREATE ... IF NOT EXISTS safe.
      await client.query('SELECT pg_advisory_lock(7316281)');
      await client.query(script);
    } finally {
      await client.query('SELECT pg_advisory_unlock(7316281)').catch(() => undefined);
      client.release();
    }
  }

  async listen(channel: string, onNotify: () => void): Promise<() => Promise<void>> {
    const client = await this.listenerClient();
    let set = this.callbacks.get(channel);
    if (!set) {
      set = new Set();
      this.callbacks.set(channel, set);
      await client.query(`LISTEN ${quoteIdentifier(channel)}`);
    }
    set.add(onNotify);
    return async () => {
      set.delete(onNotify);
    };
  }

  private listenerClient(): Promise<PoolClient> {
    this.listenerReady ??= this.pool.connect().then((client) => {
      this.listener = client;
      client.on('notification', (message) => this.callbacks.get(message.channel)?.forEach((cb) => cb()));
      client.on('error', () => undefined);
      return client;
    });
    return this.listenerReady;
  }

  async close(): Promise<void> {
    const writer = this.writer;
    this.writer = undefined;
    if (writer) (await writer.catch(() => undefined))?.release();
    this.listener?.release(true);
    this.listener = undefined;
    await this.pool.end();
  }
}

function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export async function openPostgresEventStore(options: PostgresOptions): Promise<SqlEventStore> {
  return SqlEventStore.open(new PostgresDriver(options));
}
