import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPgliteEventStore } from '../../core-ledger';
import { runAudit } from '../../app';
import { pgliteReadModelsOf, PostgresReadModels } from '../../projections';
import type { AuditDatabase, AuditEntry } from '../../security';
import { AuditChain } from '../../security';
import { createTestDatabase } from '../support/databases';

jest.setTimeout(180_000);

const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'app', 'cli.ts');

interface Run {
  readonly code: number | null;
  readonly stdout: string[];
  readonly stderr: string[];
}

/** Variables that would point the child elsewhere than the database a test names. */
const DATABASE_VARIABLES = ['DATABASE_URL', 'CARBONPAY_EVENT_STORE', 'CARBONPAY_READ_MODEL_URL', 'CARBONPAY_DATA_DIR'];

function carbonpay(args: readonly string[], env: Record<string, string>): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'silent' };
  for (const name of DATABASE_VARIABLES) delete childEnv[name];
  Object.assign(childEnv, env);
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', CLI, ...args], {
    cwd: ROOT,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const lines = (text: string): string[] => text.split('\n').filter((line) => line.length > 0);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: lines(stdout), stderr: lines(stderr) }));
  });
}

function entryNumber(n: number): AuditEntry {
  return {
    actor: `operator-${n}`,
    role: 'administrator',
    action: 'operator.password_reset',
    subject: `operator-${n + 1}`,
    outcome: 'succeeded',
    source: '10.0.0.7',
    details: { step: n },
  };
}

async function asSuperuser(db: AuditDatabase, statements: readonly string[]): Promise<void> {
  await db.query('ALTER TABLE cp_audit_log DISABLE TRIGGER ALL');
  try {
    for (const statement of statements) await db.query(statement);
  } finally {
    await db.query('ALTER TABLE cp_audit_log ENABLE TRIGGER ALL');
  }
}

describe('carbonpay audit verify on PostgreSQL (DATABASE_URL)', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: PostgresReadModels;
  let env: Record<string, string>;

  beforeAll(async () => {
    database = await createTestDatabase('audit_cli');
    db = new PostgresReadModels(database.url);
    env = { DATABASE_URL: database.url };
  });

  afterAll(async () => {
    await db.close();
    await database.drop();
  });

  test('a database without an audit trail: exit 2, one line on stderr', async () => {
    const run = await carbonpay(['audit', 'verify'], env);
    expect(run).toEqual({
      code: 2,
      stdout: [],
      stderr: [expect.stringMatching(/^carbonpay audit: no audit trail in this database: /)],
    });
  });

  test('intact: exit 0; tampered (a modified row, a deleted row): exit 1, each problem a line naming its seq', async () => {
    const chain = new AuditChain(db);
    await chain.install();
    const records = await chain.appendMany([1, 2, 3, 4, 5, 6].map(entryNumber));

    const [intact, intactJson] = await Promise.all([
      carbonpay(['audit', 'verify'], env),
      carbonpay(['audit', 'verify', '--json'], env),
    ]);
    expect(intact).toEqual({
      code: 0,
      stdout: [`audit chain intact: 6 rows, head seq 6 hash ${records[5]!.hash}`],
      stderr: [],
    });
    expect(intactJson.code).toBe(0);
    expect(JSON.parse(intactJson.stdout.join(''))).toEqual({
      ok: true,
      rows: 6,
      head: { seq: 6, hash: records[5]!.hash },
      problems: [],
      problemsTruncated: false,
    });

    await asSuperuser(db, [
      `UPDATE cp_audit_log SET outcome = 'denied' WHERE seq = 2`,
      'DELETE FROM cp_audit_log WHERE seq = 4',
    ]);
    const [tampered, tamperedJson] = await Promise.all([
      carbonpay(['audit', 'verify'], env),
      carbonpay(['audit', 'verify', '--json'], env),
    ]);
    expect(tampered).toEqual({
      code: 1,
      stdout: [
        'seq 2: modified: row 2: its fields do not hash to its stored hash',
        'seq 4: deleted: row 4 is missing',
        'audit chain broken: 2 problems in 5 rows checked',
      ],
      stderr: [],
    });
    expect(tamperedJson.code).toBe(1);
    expect(JSON.parse(tamperedJson.stdout.join(''))).toMatchObject({
      ok: false,
      rows: 5,
      problems: [
        { seq: 2, kind: 'modified' },
        { seq: 4, kind: 'deleted' },
      ],
    });
  });

  test('bad usage: exit 2, one line on stderr, nothing on stdout', async () => {
    expect(await carbonpay(['audit', 'check'], env)).toEqual({
      code: 2,
      stdout: [],
      stderr: ['carbonpay audit: usage: carbonpay audit verify [--json]'],
    });
    // The rest in this process: the same function the child runs.
    const usageErrors = [[], ['verify', '--yaml'], ['verify', '--json', '--json'], ['verify', 'extra']];
    for (const args of usageErrors) {
      const out: string[] = [];
      const err: string[] = [];
      const code = await runAudit(args, { stdout: (l) => out.push(l), stderr: (l) => err.push(l) }, env);
      expect({ args, code, out, err }).toEqual({
        args,
        code: 2,
        out: [],
        err: ['carbonpay audit: usage: carbonpay audit verify [--json]'],
      });
    }
  });

  test('bad configuration: exit 2 naming the variable', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { stdout: (l: string) => out.push(l), stderr: (l: string) => err.push(l) };
    expect(await runAudit(['verify'], io, { DATABASE_URL: 'mysql://127.0.0.1/carbonpay' })).toBe(2);
    expect(await runAudit(['verify'], io, { CARBONPAY_EVENT_STORE: 'memory' })).toBe(2);
    expect(out).toEqual([]);
    expect(err).toEqual([
      'carbonpay audit: invalid configuration: DATABASE_URL must start with postgresql://, got "mysql://127.0.0.1/carbonpay"',
      'carbonpay audit: the memory event store keeps no audit trail; set DATABASE_URL or CARBONPAY_DATA_DIR',
    ]);
  });
});

describe('carbonpay audit verify on PGlite (CARBONPAY_DATA_DIR)', () => {
  const folder = mkdtempSync(join(tmpdir(), 'carbonpay-audit-'));
  const dataDir = join(folder, 'pglite');

  afterAll(() => {
    rmSync(folder, { recursive: true, force: true });
  });

  test('intact: exit 0; a deleted tail: exit 1 naming the first missing seq', async () => {
    const writeChain = async (work: (db: AuditDatabase) => Promise<void>): Promise<void> => {
      const store = await openPgliteEventStore(dataDir);
      try {
        await work(pgliteReadModelsOf(store));
      } finally {
        await store.close();
      }
    };
    await writeChain(async (db) => {
      const chain = new AuditChain(db);
      await chain.install();
      await chain.appendMany([1, 2, 3, 4].map(entryNumber));
    });
    const intact = await carbonpay(['audit', 'verify'], { CARBONPAY_DATA_DIR: dataDir });
    expect(intact).toMatchObject({
      code: 0,
      stdout: [expect.stringMatching(/^audit chain intact: 4 rows, head seq 4 /)],
    });

    await writeChain((db) => asSuperuser(db, ['DELETE FROM cp_audit_log WHERE seq >= 3']));
    expect(await carbonpay(['audit', 'verify'], { CARBONPAY_DATA_DIR: dataDir })).toEqual({
      code: 1,
      stdout: [
        'seq 3: deleted: rows 3..4 are missing at the end of the chain (the head records seq 4)',
        'audit chain broken: 1 problem in 2 rows checked',
      ],
      stderr: [],
    });
  });
});
