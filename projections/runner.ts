import type { EventStore, LogPosition, RecordedEvent } from '../core-ledger';
import { appendOf, EVENT_STORE_LIMITS, LOG_START } from '../core-ledger';
import type { ReadModelDatabase, ReadModelSession, SqlQueryable } from './database';
import type { ProjectionDefinition } from './projection';
import { installSql, schemaOf, viewsSql } from './projection';

export interface RunnerOptions {
  /** Events read and applied per transaction (a batch never ends inside an append). */
  readonly batchSize: number;
  /** The same for a generation being rebuilt: larger batches, as nobody waits on each one. */
  readonly rebuildBatchSize: number;
  /** Pause when the log has nothing new. */
  readonly idlePollMs: number;
  /** How often a standby tries to take the lead. */
  readonly standbyPollMs: number;
  /** Called after each committed batch, inside nothing: tests sample invariants here. */
  readonly onBatchCommitted?: (batch: CommittedBatch) => void | Promise<void>;
}

export const DEFAULT_RUNNER_OPTIONS: RunnerOptions = {
  batchSize: 5_000,
  rebuildBatchSize: 10_000,
  idlePollMs: 20,
  standbyPollMs: 250,
};

export interface CommittedBatch {
  readonly generation: number;
  readonly rebuilding: boolean;
  readonly events: number;
  readonly position: LogPosition;
  /** Milliseconds from the oldest event's recording to this commit: how stale readers were. */
  readonly stalenessMs: number;
}

export interface RunnerStatus {
  readonly projection: string;
  readonly leader: boolean;
  readonly generation: number | undefined;
  readonly position: LogPosition;
  /** 0 when caught up; else the age of the last event applied. */
  readonly lagMs: number;
  readonly rebuilding: { readonly generation: number; readonly position: LogPosition } | undefined;
  readonly eventsApplied: number;
  readonly lastError: string | undefined;
}

export class LeadershipLostError extends Error {
  constructor(projection: string) {
    super(`projection ${projection}: its checkpoint moved under this runner; another runner leads`);
    this.name = 'LeadershipLostError';
  }
}

interface Generation {
  readonly generation: number;
  readonly schema: string;
  position: LogPosition;
  /** The next batch, read and encoded while the last one was applied. */
  prefetched?: { readonly after: LogPosition; readonly batch: Promise<Batch> } | undefined;
  /** Readers' indexes still to build before a rebuilt generation is swapped in (undefined: not yet listed). */
  indexesToBuild?: string[] | undefined;
}

interface Batch {
  readonly events: RecordedEvent[];
  /** The parameters of the apply statement; undefined when no event is of the projection's types. */
  readonly parameters: unknown[] | undefined;
}

/**
 * Feeds one projection from the global log. Exactly one runner per projection applies at a time, across
 * processes: the leader holds a lock tied to its database session; standbys retry and take over when it goes.
 *
 * Each batch — the projection's tables and its checkpoint — commits in one transaction, after checking that the
 * checkpoint is still where this runner left it; delivery is at least once and a batch already applied is never
 * applied again. A rebuild fills a new generation from position zero beside the live one, interleaved with live
 * batches, and swaps it in (views, registry, old schema dropped) in one transaction once it has caught up.
 */
export class ProjectionRunner {
  private readonly options: RunnerOptions;
  private session: ReadModelSession | undefined;
  private leader = false;
  private live: Generation | undefined;
  private building: Generation | undefined;
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private lagMs = 0;
  private eventsApplied = 0;
  private lastError: string | undefined;
  private readonly handledTypes: ReadonlySet<string>;
  private readonly encode: (events: readonly RecordedEvent[]) => unknown[];
  private caughtUpWaiters: { position: LogPosition; resolve: () => void }[] = [];

  constructor(
    private readonly db: ReadModelDatabase,
    private readonly store: EventStore,
    private readonly definition: ProjectionDefinition,
    options: Partial<RunnerOptions> = {},
  ) {
    this.options = { ...DEFAULT_RUNNER_OPTIONS, ...options };
    this.handledTypes = new Set(definition.eventTypes);
    this.encode = definition.newEncoder?.() ?? definition.encode;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    this.loop = undefined;
    await this.releaseSession();
  }

  get isLeader(): boolean {
    return this.leader;
  }

  status(): RunnerStatus {
    return {
      projection: this.definition.name,
      leader: this.leader,
      generation: this.live?.generation,
      position: this.live?.position ?? LOG_START,
      lagMs: this.lagMs,
      rebuilding: this.building
        ? { generation: this.building.generation, position: this.building.position }
        : undefined,
      eventsApplied: this.eventsApplied,
      lastError: this.lastError,
    };
  }

  /** Resolves once the live generation has applied everything up to `position` (inclusive). */
  waitUntilApplied(position: LogPosition): Promise<void> {
    if (this.live && this.live.position >= position) return Promise.resolve();
    return new Promise((resolve) => this.caughtUpWaiters.push({ position, resolve }));
  }

  /**
   * Asks for a rebuild from position zero and resolves with the new generation once it is swapped in. Any process
   * may ask (the request is a row in the registry); whichever runner leads does the work.
   */
  async rebuild(timeoutMs = 3_600_000): Promise<number> {
    await this.db.exec(installSql(this.definition));
    const rows = await this.db.query<{ active_generation: number }>(
      'UPDATE cp_projections SET rebuild_requested_at = now() WHERE projection = $1 RETURNING active_generation',
      [this.definition.name],
    );
    const before = rows[0]!.active_generation;
    this.wake?.();
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const now = await this.db.query<{ active_generation: number }>(
        'SELECT active_generation FROM cp_projections WHERE projection = $1',
        [this.definition.name],
      );
      if (now[0]!.active_generation > before) return now[0]!.active_generation;
    }
    throw new Error(`projection ${this.definition.name}: no runner finished the rebuild within ${timeoutMs} ms`);
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        if (!this.leader) {
          if (!(await this.tryLead())) {
            await this.pause(this.options.standbyPollMs);
            continue;
          }
        }
        const liveApplied = await this.step(this.live!);
        let buildApplied = 0;
        if (!this.building && liveApplied === 0) await this.checkRebuildRequest();
        if (this.building) {
          buildApplied = await this.step(this.building);
          if (this.building.position >= this.live!.position && liveApplied === 0) {
            // Caught up: the definition's finishing statements (folds) and readers' indexes, one statement per turn
            // (live batches go on between them), then the swap.
            if (await this.buildNextIndex(this.building)) buildApplied += 1;
            else await this.swap();
          }
        }
        if (liveApplied === 0 && buildApplied === 0) {
          this.lagMs = 0;
          await this.pause(this.options.idlePollMs);
        }
        this.lastError = undefined;
      } catch (error) {
        this.lastError = error instanceof Error ? error.message : String(error);
        // Whatever failed, the transaction rolled back: start again from the committed checkpoint, and give up
        // the lead when the session is gone or another runner moved the checkpoint.
        if (error instanceof LeadershipLostError || !this.session?.alive) await this.releaseSession();
        else await this.reloadCheckpoints().catch(() => this.releaseSession());
        await this.pause(this.options.standbyPollMs);
      }
    }
  }

  private async tryLead(): Promise<boolean> {
    await this.releaseSession();
    const session = await this.db.openSession();
    try {
      if (!(await session.tryLock(`projection:${this.definition.name}`))) {
        await session.close();
        return false;
      }
      this.session = session;
      await this.db.exec(installSql(this.definition));
      await execIn(session, this.definition.sessionSql);
      // Every generation applies batches with this definition's functions (a generation installed by an older
      // build of the runner gets them here; its tables are unchanged unless the version changed).
      const generations = await session.query<{ generation: number }>(
        'SELECT generation FROM cp_projection_checkpoints WHERE projection = $1',
        [this.definition.name],
      );
      for (const { generation } of generations)
        await execIn(session, this.definition.functionsSql(schemaOf(this.definition.name, generation)));
      // A read model is derived: a crash may lose its last commits, but the checkpoint goes with them (one WAL,
      // in order), and they are applied again. So its commits need not wait for the disk.
      await session.query('SET synchronous_commit = off');
      await this.reloadCheckpoints();
      this.leader = true;
      // Whoever waited for a position this generation had already reached before this runner led.
      this.releaseCaughtUpWaiters();
      return true;
    } catch (error) {
      this.session = undefined;
      await session.close();
      throw error;
    }
  }

  private async releaseSession(): Promise<void> {
    this.leader = false;
    this.live = undefined;
    this.building = undefined;
    const session = this.session;
    this.session = undefined;
    await session?.close();
  }

  private async reloadCheckpoints(): Promise<void> {
    const session = this.session!;
    const rows = await session.query<{ active_generation: number; generation: number; position: string }>(
      `SELECT p.active_generation, c.generation, c.position
         FROM cp_projections p JOIN cp_projection_checkpoints c USING (projection)
        WHERE p.projection = $1 ORDER BY c.generation`,
      [this.definition.name],
    );
    this.live = undefined;
    this.building = undefined;
    for (const row of rows) {
      const generation = {
        generation: row.generation,
        schema: schemaOf(this.definition.name, row.generation),
        position: row.position,
      };
      if (row.generation === row.active_generation) this.live = generation;
      else if (row.generation > row.active_generation) this.building = generation;
    }
    if (!this.live) throw new Error(`projection ${this.definition.name} has no active generation`);
  }

  /** Reads the next batch after the generation's checkpoint and applies it; returns the events read. */
  private async step(generation: Generation): Promise<number> {
    const size = generation === this.live ? this.options.batchSize : this.options.rebuildBatchSize;
    const prefetched = generation.prefetched;
    generation.prefetched = undefined;
    const batch =
      prefetched && prefetched.after === generation.position
        ? await prefetched.batch
        : await this.readBatch(generation.position, size);
    const events = batch.events;
    if (events.length === 0) return 0;
    const last = events[events.length - 1]!.position;
    if (events.length * 2 > size) {
      // More is waiting: read and encode it while this batch is applied (the database does both at once).
      const next = this.readBatch(last, size);
      next.catch(() => undefined);
      generation.prefetched = { after: last, batch: next };
    }
    await this.session!.transaction(async (tx) => {
      await this.advanceCheckpoint(tx, generation, last, events.length);
      if (batch.parameters) await tx.query(this.definition.applySql(generation.schema), batch.parameters);
    });
    generation.position = last;
    const rebuilding = generation !== this.live;
    const stalenessMs = Math.max(0, Date.now() - Date.parse(events[0]!.recordedAt));
    if (!rebuilding) {
      this.eventsApplied += events.length;
      this.lagMs = Math.max(0, Date.now() - Date.parse(events[events.length - 1]!.recordedAt));
      this.releaseCaughtUpWaiters();
    }
    await this.options.onBatchCommitted?.({
      generation: generation.generation,
      rebuilding,
      events: events.length,
      position: last,
      stalenessMs,
    });
    return events.length;
  }

  private async advanceCheckpoint(
    tx: SqlQueryable,
    generation: Generation,
    to: LogPosition,
    count: number,
  ): Promise<void> {
    const moved = await tx.query(
      `UPDATE cp_projection_checkpoints
          SET position = $4, events_applied = events_applied + $5, updated_at = now()
        WHERE projection = $1 AND generation = $2 AND position = $3
        RETURNING 1`,
      [this.definition.name, generation.generation, generation.position, to, count],
    );
    if (moved.length !== 1) throw new LeadershipLostError(this.definition.name);
  }

  /** A batch read from the log and encoded for the apply statement. */
  private async readBatch(after: LogPosition, size: number): Promise<Batch> {
    const events = await this.readEvents(after, size);
    const handled = events.filter((e) => this.handledTypes.has(e.type));
    return { events, parameters: handled.length > 0 ? this.encode(handled) : undefined };
  }

  /** Up to `size` events of the log that end where an append ends, so no batch holds half a transfer. */
  private async readEvents(after: LogPosition, size: number): Promise<RecordedEvent[]> {
    const pageSize = Math.min(size, EVENT_STORE_LIMITS.maxReadCount);
    const page: RecordedEvent[] = [];
    while (page.length < size) {
      const wanted = Math.min(pageSize, size - page.length);
      const more = await this.store.readAll({ after: page.at(-1)?.position ?? after, maxCount: wanted });
      page.push(...more);
      // A short page ends at the head of the log, where every append is whole.
      if (more.length < wanted) return page;
    }
    const lastAppend = appendOf(page[page.length - 1]!.position);
    let cut = page.length;
    while (cut > 0 && appendOf(page[cut - 1]!.position) === lastAppend) cut--;
    if (cut > 0) return page.slice(0, cut);
    // One append larger than a batch: read on to its end.
    const whole = [...page];
    for (;;) {
      const more = await this.store.readAll({ after: whole[whole.length - 1]!.position, maxCount: pageSize });
      const sameAppend = more.filter((e) => appendOf(e.position) === lastAppend);
      whole.push(...sameAppend);
      if (sameAppend.length < more.length || more.length < pageSize) return whole;
    }
  }

  /** Builds one of a caught-up rebuilt generation's readers' indexes; false when none is left. */
  private async buildNextIndex(generation: Generation): Promise<boolean> {
    generation.indexesToBuild ??= [
      ...(this.definition.rebuildFinishStatements?.(generation.schema) ?? []),
      ...this.definition.indexStatements(generation.schema),
    ];
    const statement = generation.indexesToBuild.shift();
    if (statement === undefined) return false;
    await this.session!.query(statement);
    return true;
  }

  private async checkRebuildRequest(): Promise<void> {
    const rows = await this.session!.query<{ requested: boolean; version: number }>(
      'SELECT rebuild_requested_at IS NOT NULL AS requested, version FROM cp_projections WHERE projection = $1',
      [this.definition.name],
    );
    const row = rows[0]!;
    if (!row.requested && row.version === this.definition.version) return;
    const generation = this.live!.generation + 1;
    const schema = schemaOf(this.definition.name, generation);
    await this.session!.transaction(async (tx) => {
      await tx.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await tx.query(`DELETE FROM cp_projection_checkpoints WHERE projection = $1 AND generation = $2`, [
        this.definition.name,
        generation,
      ]);
      // Without readers' indexes: they are built in one pass once the generation has caught up.
      await execIn(
        tx,
        [
          this.definition.schemaSql(schema),
          this.definition.rebuildStartSql?.(schema) ?? '',
          this.definition.functionsSql(schema),
        ].join('\n'),
      );
      await tx.query(`INSERT INTO cp_projection_checkpoints (projection, generation, position) VALUES ($1, $2, '')`, [
        this.definition.name,
        generation,
      ]);
    });
    this.building = { generation, schema, position: LOG_START };
  }

  private async swap(): Promise<void> {
    const next = this.building!;
    const previous = this.live!;
    await this.session!.transaction(async (tx) => {
      await execIn(tx, viewsSql(this.definition, next.schema));
      await tx.query(
        `UPDATE cp_projections SET active_generation = $2, version = $3, rebuild_requested_at = NULL, swapped_at = now()
          WHERE projection = $1`,
        [this.definition.name, next.generation, this.definition.version],
      );
      await tx.query('DELETE FROM cp_projection_checkpoints WHERE projection = $1 AND generation = $2', [
        this.definition.name,
        previous.generation,
      ]);
      await tx.query(`DROP SCHEMA ${previous.schema} CASCADE`);
    });
    this.live = next;
    this.building = undefined;
    this.releaseCaughtUpWaiters();
  }

  private releaseCaughtUpWaiters(): void {
    const position = this.live?.position ?? LOG_START;
    this.caughtUpWaiters = this.caughtUpWaiters.filter((w) => {
      if (w.position > position) return true;
      w.resolve();
      return false;
    });
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }
}

/** Runs a script of several statements inside a transaction (one simple-protocol query on PostgreSQL and PGlite). */
async function execIn(tx: SqlQueryable, script: string): Promise<void> {
  await tx.query(`DO $exec$ BEGIN EXECUTE ${dollarQuote(script)}; END $exec$`);
}

function dollarQuote(text: string): string {
  if (text.includes('$body$')) throw new Error('script may not contain $body$');
  return `$body$${text}$body$`;
}
