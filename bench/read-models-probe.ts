/**
 * A probe of the ledger read model's apply on a copy of a recorded log (not part of `npm run bench`): where a
 * batch's time goes, and catch-up and rebuild speeds without the writer's load.
 *
 *   node -r ts-node/register/transpile-only bench/read-models-probe.ts steps [--source DB] [--batch N]
 *        [--events N] [--indexes] [--explain BATCH]
 *   node -r ts-node/register/transpile-only bench/read-models-probe.ts runner [--source DB] [--rebuild-batch N]
 *
 * The source database holds an event log (e.g. a copy of `carbonpay_bench` after a read-models bench, read-model
 * schemas dropped); each probe runs on a fresh copy of it (`CREATE DATABASE ... TEMPLATE`).
 * - steps: reads the log in batches, encodes them and applies them in one transaction each, with the apply
 *   function instrumented at its `-- step:` comments; prints milliseconds per step per batch. With `--indexes` the
 *   tables have readers' indexes (a live generation), else not (a rebuild); `--explain` prints the plans of one
 *   batch's statements (auto_explain); without `--indexes` it ends with the rebuild's finishing statements
 *   (`rebuildFinishMs`).
 * - runner: a ProjectionRunner catches up from zero, then rebuilds; events/s of each, the checksums compared, and
 *   what the applying session was doing during the rebuild (sampled from pg_stat_activity, on stderr), and the
 *   seconds from its first readers' index statement to the swap (`indexesSeconds`).
 */
import { Client } from 'pg';
import { encodePosition, openPostgresEventStore } from '../core-ledger';
import type { LogPosition, RecordedEvent } from '../core-ledger';
import { LEDGER_READ_MODEL, PostgresReadModels, ProjectionRunner, tableChecksums } from '../projections';
import { databaseUrlFor } from './scenarios';

const serverUrl = process.env['BENCH_DATABASE_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

async function freshCopy(source: string, target: string): Promise<string> {
  const admin = new Client({ connectionString: databaseUrlFor(serverUrl, 'postgres') });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${target} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${target} TEMPLATE ${source}`);
  } finally {
    await admin.end();
  }
  return databaseUrlFor(serverUrl, target);
}

async function steps(url: string, batchSize: number, maxEvents: number, withIndexes: boolean): Promise<void> {
  const store = await openPostgresEventStore({ connectionString: url, maxConnections: 2 });
  const sql = new Client({ connectionString: url });
  await sql.connect();
  const schema = 'cp_rm_probe';
  const def = LEDGER_READ_MODEL;
  await sql.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await sql.query(def.schemaSql(schema));
  if (!withIndexes && def.rebuildStartSql) await sql.query(def.rebuildStartSql(schema));
  const instrumented = def
    .functionsSql(schema)
    .replace(
      /-- step: ([^\n]*)/g,
      (_, step: string) => `INSERT INTO public.probe_timing VALUES ('${step}', clock_timestamp());`,
    );
  await sql.query(
    'DROP TABLE IF EXISTS public.probe_timing; CREATE UNLOGGED TABLE public.probe_timing (step text, at timestamptz)',
  );
  await sql.query(instrumented);
  if (withIndexes) for (const statement of def.indexStatements(schema)) await sql.query(statement);
  await sql.query(def.sessionSql);
  await sql.query('SET synchronous_commit = off');
  const types = new Set(def.eventTypes);
  const encode = def.newEncoder?.() ?? def.encode;
  const explainBatch = Number(option('explain', '-1'));
  let after: LogPosition = '';
  let applied = 0;
  let readMs = 0;
  let encodeMs = 0;
  let applyMs = 0;
  let commitMs = 0;
  let batches = 0;
  const started = Date.now();
  while (applied < maxEvents) {
    let t = process.hrtime.bigint();
    const lap = (): number => {
      const now = process.hrtime.bigint();
      const ms = Number(now - t) / 1e6;
      t = now;
      return ms;
    };
    const events: RecordedEvent[] = [];
    while (events.length < batchSize) {
      const page = await store.readAll({
        after: events.at(-1)?.position ?? after,
        maxCount: Math.min(10_000, batchSize - events.length),
      });
      events.push(...page);
      if (page.length === 0) break;
    }
    if (events.length === 0) break;
    readMs += lap();
    const parameters = encode(events.filter((e) => types.has(e.type)));
    encodeMs += lap();
    if (batches === explainBatch) {
      sql.on('notice', (n) => process.stderr.write(`${n.message}\n`));
      await sql.query(
        `LOAD 'auto_explain'; SET auto_explain.log_min_duration = 3; SET auto_explain.log_nested_statements = on;
         SET auto_explain.log_analyze = on; SET auto_explain.log_level = notice`,
      );
    }
    await sql.query('BEGIN');
    await sql.query(def.applySql(schema), parameters);
    applyMs += lap();
    await sql.query('COMMIT');
    commitMs += lap();
    after = events.at(-1)!.position;
    applied += events.length;
    batches += 1;
  }
  let finishMs = 0;
  if (!withIndexes) {
    const finishStarted = Date.now();
    for (const statement of def.rebuildFinishStatements?.(schema) ?? []) await sql.query(statement);
    finishMs = Date.now() - finishStarted;
  }
  const seconds = (Date.now() - started) / 1000;
  const timing = await sql.query<{ step: string; ms: number }>(`
    WITH t AS (SELECT step, at, lead(at) OVER (ORDER BY at) AS next FROM public.probe_timing)
    SELECT step, round(sum(extract(epoch FROM next - at) * 1000)::numeric / ${batches}, 1)::float AS ms
      FROM t WHERE step <> 'end' GROUP BY step ORDER BY min(at)`);
  process.stdout.write(
    `${JSON.stringify({
      batches,
      events: applied,
      eventsPerSecond: Math.round(applied / seconds),
      perBatchMs: {
        read: +(readMs / batches).toFixed(1),
        encode: +(encodeMs / batches).toFixed(1),
        apply: +(applyMs / batches).toFixed(1),
        commit: +(commitMs / batches).toFixed(1),
      },
      rebuildFinishMs: finishMs,
      insideApplyMs: Object.fromEntries(timing.rows.map((r) => [r.step, r.ms])),
    })}\n`,
  );
  await sql.end();
  await store.close();
}

async function runner(url: string): Promise<void> {
  const store = await openPostgresEventStore({ connectionString: url, maxConnections: 2 });
  const readModels = new PostgresReadModels(url, 2);
  const count = Number((await readModels.query<{ n: string }>('SELECT count(*)::text AS n FROM cp_events'))[0]!.n);
  const last = await readModels.query<{ tx: string; seq: string }>(
    'SELECT tx_id::text AS tx, seq::text AS seq FROM cp_events ORDER BY tx_id DESC, seq DESC LIMIT 1',
  );
  const headPosition = encodePosition(BigInt(last[0]!.tx), BigInt(last[0]!.seq));
  const run = new ProjectionRunner(readModels, store, LEDGER_READ_MODEL, {
    rebuildBatchSize: Number(option('rebuild-batch', '10000')),
  });
  const started = Date.now();
  run.start();
  await run.waitUntilApplied(headPosition);
  const catchUpSeconds = (Date.now() - started) / 1000;
  const live = await tableChecksums(readModels, LEDGER_READ_MODEL);
  const rebuildStarted = Date.now();
  // How busy the applying session is during the rebuild: the share of samples in which it runs a statement.
  const states: Record<string, number> = {};
  let sampling = true;
  let indexesFrom: number | undefined;
  const sampler = (async () => {
    const probe = new Client({ connectionString: url });
    await probe.connect();
    while (sampling) {
      const { rows } = await probe.query<{ state: string; query: string }>(
        `SELECT state, left(query, 30) AS query FROM pg_stat_activity WHERE application_name = 'carbonpay-projection'`,
      );
      for (const r of rows) {
        const key = r.state === 'active' ? `active ${r.query}` : r.state;
        if (indexesFrom === undefined && r.state === 'active' && /^(DO \$pk\$|CREATE INDEX)/.test(r.query))
          indexesFrom = Date.now();
        states[key] = (states[key] ?? 0) + 1;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await probe.end();
  })();
  await run.rebuild();
  sampling = false;
  await sampler;
  process.stderr.write(`${JSON.stringify(states)}\n`);
  const rebuildSeconds = (Date.now() - rebuildStarted) / 1000;
  const rebuilt = await tableChecksums(readModels, LEDGER_READ_MODEL);
  await run.stop();
  process.stdout.write(
    `${JSON.stringify({
      events: count,
      catchUpEventsPerSecond: Math.round(count / catchUpSeconds),
      rebuildEventsPerSecond: Math.round(count / rebuildSeconds),
      rebuildSeconds,
      // from the first readers' index statement seen to the swap (sampled: ± 20 ms)
      indexesSeconds: indexesFrom === undefined ? null : (rebuildStarted + rebuildSeconds * 1000 - indexesFrom) / 1000,
      checksumsEqual: JSON.stringify(live) === JSON.stringify(rebuilt),
      checksums: live,
    })}\n`,
  );
  await readModels.close();
  await store.close();
}

async function main(): Promise<void> {
  const mode = process.argv[2] ?? 'steps';
  const url = await freshCopy(option('source', 'rm_probe_src'), 'rm_probe');
  if (mode === 'steps')
    await steps(
      url,
      Number(option('batch', '5000')),
      Number(option('events', '1000000000')),
      process.argv.includes('--indexes'),
    );
  else if (mode === 'runner') await runner(url);
  else throw new Error(`unknown mode ${mode}`);
}

main().catch((error: unknown) => {
  process.stderr.write(`probe: ${String(error)}\n`);
  process.exit(1);
});
