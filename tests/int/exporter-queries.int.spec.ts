import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestApi } from '../support/api-server';
import { startTestApi } from '../support/api-server';

/**
 * The database figures of docs/monitoring.md come from postgres_exporter running ops/postgres-exporter-queries.yml.
 * Each of its queries runs here against the platform's own schema and answers every column it declares as a label or
 * a gauge: a renamed table or column fails this test, not the monitoring on the day it is needed.
 */

jest.setTimeout(60_000);

interface ExporterQuery {
  readonly name: string;
  readonly sql: string;
  readonly columns: readonly string[];
}

/** The file's shape (a query per top-level key, its SQL quoted or a folded block, its columns a list): read without a YAML library. */
function exporterQueries(text: string): ExporterQuery[] {
  const queries: ExporterQuery[] = [];
  let current: { name: string; sql: string[]; columns: string[]; in: 'none' | 'sql' | 'metrics' } | undefined;
  const finish = (): void => {
    if (current) queries.push({ name: current.name, sql: current.sql.join(' '), columns: current.columns });
  };
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const top = /^([a-z_]+):$/.exec(line);
    if (top) {
      finish();
      current = { name: top[1]!, sql: [], columns: [], in: 'none' };
    } else if (current && /^ {2}query: '.*'$/.test(line))
      current.sql.push(line.trim().slice(8, -1).replace(/''/g, "'"));
    else if (current && /^ {2}query: >-$/.test(line)) current.in = 'sql';
    else if (current && /^ {2}metrics:$/.test(line)) current.in = 'metrics';
    else if (current?.in === 'sql' && line.startsWith('    ')) current.sql.push(line.trim());
    else if (current?.in === 'metrics' && /^ {4}- [a-z_]+:$/.test(line)) current.columns.push(line.trim().slice(2, -1));
  }
  finish();
  return queries;
}

let t: TestApi;
beforeAll(async () => {
  t = await startTestApi('postgres');
});
afterAll(async () => {
  await t.close();
});

test('every postgres_exporter query runs on the schema and answers the columns it declares', async () => {
  const queries = exporterQueries(readFileSync(join(__dirname, '../../ops/postgres-exporter-queries.yml'), 'utf8'));
  expect(queries.map((q) => q.name)).toEqual(
    expect.arrayContaining(['carbonpay_books', 'carbonpay_recon', 'carbonpay_clearing_runs', 'carbonpay_payments']),
  );
  for (const query of queries) {
    expect(query.sql).toMatch(/^SELECT /);
    expect(query.columns.length).toBeGreaterThan(0);
    // Joined to a row of its own, the query answers its columns (NULL) even where its tables are empty.
    const [row] = await t.readModels.database.query<Record<string, unknown>>(
      `SELECT q.* FROM (SELECT 1) AS one LEFT JOIN (${query.sql}) AS q ON true LIMIT 1`,
    );
    expect(Object.keys(row!).sort()).toEqual([...query.columns].sort());
  }
});
