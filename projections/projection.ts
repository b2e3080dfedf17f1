import type { RecordedEvent } from '../core-ledger';
import type { SqlQueryable } from './database';

export interface ReadModelTable {
  readonly name: string;
  /** Columns that order the rows uniquely (checksums and pagination use them). */
  readonly key: string;
}

/**
 * A projection as data: its tables, the SQL that creates them in a schema, and the SQL that applies a batch of
 * events with the parameters its `encode` makes of them. Each generation of a projection lives in its own schema
 * (`cp_rm_<name>_g<generation>`); readers see the active one through the views of schema `cp_read`, so a rebuilt
 * generation is swapped in by replacing the views.
 */
export interface ProjectionDefinition {
  readonly name: string;
  /** Raised when the tables or the way events are applied change: the runner then rebuilds and swaps. */
  readonly version: number;
  /** Event types the projection reads; others only advance its checkpoint. */
  readonly eventTypes: readonly string[];
  readonly tables: readonly ReadModelTable[];
  /** Run once on each session that applies batches (staging tables). */
  readonly sessionSql: string;
  /** Creates the schema and its tables, with the keys applying a batch relies on. */
  readonly schemaSql: (schema: string) => string;
  /**
   * The keys and indexes only readers need, one idempotent statement each: installed with a generation readers see
   * at once; a rebuilding generation builds them after it has caught up, before it is swapped in.
   */
  readonly indexStatements: (schema: string) => readonly string[];
  /**
   * Run after `schemaSql` when a generation is created for a rebuild (nobody reads it until it is swapped in):
   * tables that let its batches append instead of update.
   */
  readonly rebuildStartSql?: (schema: string) => string;
  /**
   * Run one at a time once a rebuilt generation has caught up, before its readers' indexes: folds what
   * `rebuildStartSql` let the batches append into the tables readers see. Idempotent: a later batch applies as live.
   */
  readonly rebuildFinishStatements?: (schema: string) => readonly string[];
  /** The functions `applySql` calls (CREATE OR REPLACE): installed on every generation when a runner takes the lead. */
  readonly functionsSql: (schema: string) => string;
  /** The parameters of `applySql` for a batch of the projection's events, in log order. */
  readonly encode: (events: readonly RecordedEvent[]) => unknown[];
  /**
   * The same, with memory across the batches of one log (a runner makes one and feeds it every batch it reads, in
   * log order per generation); what it returns for a batch must equal what `encode` returns, applied.
   */
  readonly newEncoder?: () => (events: readonly RecordedEvent[]) => unknown[];
  /** One statement applying a batch encoded by `encode`. */
  readonly applySql: (schema: string) => string;
}

/** Everything a generation readers see at once needs: tables, functions, and readers' indexes. */
export function generationSql(definition: ProjectionDefinition, schema: string): string {
  return [
    definition.schemaSql(schema),
    definition.functionsSql(schema),
    ...definition.indexStatements(schema).map((statement) => `${statement};`),
  ].join('\n');
}

export const READ_SCHEMA = 'cp_read';

export const REGISTRY_SQL = `
CREATE TABLE IF NOT EXISTS cp_projections (
  projection text PRIMARY KEY,
  active_generation int NOT NULL,
  version int NOT NULL,
  rebuild_requested_at timestamptz,
  swapped_at timestamptz
);
CREATE TABLE IF NOT EXISTS cp_projection_checkpoints (
  projection text NOT NULL,
  generation int NOT NULL,
  position text NOT NULL,
  events_applied bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (projection, generation)
);
CREATE SCHEMA IF NOT EXISTS ${READ_SCHEMA};
`;

export function schemaOf(projection: string, generation: number): string {
  if (!/^[a-z][a-z0-9_]{0,30}$/.test(projection)) throw new RangeError(`bad projection name ${projection}`);
  return `cp_rm_${projection}_g${generation}`;
}

/** The views readers query: `cp_read.<table>` over the active generation. */
export function viewsSql(definition: ProjectionDefinition, schema: string): string {
  return definition.tables
    .map((t) => `CREATE OR REPLACE VIEW ${READ_SCHEMA}.${t.name} AS SELECT * FROM ${schema}.${t.name};`)
    .join('\n');
}

/** Installs generation 1 unless the projection exists; safe to run from several processes (callers serialise). */
export function installSql(definition: ProjectionDefinition): string {
  const schema = schemaOf(definition.name, 1);
  const body = `${generationSql(definition, schema)}
${viewsSql(definition, schema)}
INSERT INTO cp_projection_checkpoints (projection, generation, position) VALUES ('${definition.name}', 1, '');
INSERT INTO cp_projections (projection, active_generation, version) VALUES ('${definition.name}', 1, ${definition.version});`;
  if (body.includes('$install$')) throw new Error('schema SQL may not contain $install$');
  return `${REGISTRY_SQL}
DO $do$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM cp_projections WHERE projection = '${definition.name}') THEN
    EXECUTE $install$${body}$install$;
  END IF;
END
$do$;`;
}

/** An md5 of each table of a generation, rows in key order: equal checksums, equal tables. */
export async function tableChecksums(
  db: SqlQueryable,
  definition: ProjectionDefinition,
  schema: string = READ_SCHEMA,
): Promise<Record<string, string>> {
  const checksums: Record<string, string> = {};
  for (const table of definition.tables) {
    const rows = await db.query<{ checksum: string | null; count: string }>(
      `SELECT md5(string_agg(t::text, E'\\n' ORDER BY ${table.key})) AS checksum, count(*)::text AS count
         FROM ${schema}.${table.name} t`,
    );
    checksums[table.name] = `${rows[0]!.count}:${rows[0]!.checksum ?? 'empty'}`;
  }
  return checksums;
}
