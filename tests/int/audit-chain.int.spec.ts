import { createHash } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import fc from 'fast-check';
import { PgliteReadModels, PostgresReadModels } from '../../projections';
import type {
  AuditDatabase,
  AuditDetails,
  AuditEntry,
  AuditProblem,
  AuditRecord,
  AuditVerification,
} from '../../security';
import {
  AUDIT_GENESIS_HASH,
  AUDIT_VERIFY_PAGE_ROWS,
  AUDIT_VERIFY_PROBLEMS_MAX,
  AuditChain,
  AuditChainBrokenError,
  AuditChainNotInstalledError,
  AuditEntryError,
  computeAuditHash,
} from '../../security';
import { createTestDatabase } from '../support/databases';

jest.setTimeout(240_000);

/** Separate connections where the backend has them: one pool each on PostgreSQL, the one PGlite otherwise. */
interface Backend {
  readonly name: string;
  start(): Promise<void>;
  /** A database handle for one more writer (on PostgreSQL, a pool of its own: another process, in effect). */
  connect(): AuditDatabase;
  stop(): Promise<void>;
}

function postgresBackend(): Backend {
  let database: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  const pools: PostgresReadModels[] = [];
  return {
    name: 'PostgreSQL',
    start: async () => {
      database = await createTestDatabase('audit_chain');
    },
    connect: () => {
      const pool = new PostgresReadModels(database!.url);
      pools.push(pool);
      return pool;
    },
    stop: async () => {
      await Promise.all(pools.map((pool) => pool.close()));
      await database?.drop();
    },
  };
}

function pgliteBackend(): Backend {
  let pglite: PGlite | undefined;
  return {
    name: 'PGlite',
    start: async () => {
      pglite = await PGlite.create();
    },
    connect: () => new PgliteReadModels(pglite!),
    stop: async () => {
      await pglite?.close();
    },
  };
}

const TABLES = ['cp_audit_log', 'cp_audit_head'] as const;

/** The attacker's way around the append-only trigger: a superuser turns it off, edits, and turns it back on. */
async function asSuperuser(db: AuditDatabase, statements: readonly [string, unknown[]?][]): Promise<void> {
  for (const table of TABLES) await db.query(`ALTER TABLE ${table} DISABLE TRIGGER ALL`);
  try {
    for (const [text, params] of statements) await db.query(text, params ?? []);
  } finally {
    for (const table of TABLES) await db.query(`ALTER TABLE ${table} ENABLE TRIGGER ALL`);
  }
}

function entryNumber(n: number): AuditEntry {
  return {
    at: new Date(Date.UTC(2026, 0, 1, 8, 0, 0, n)),
    actor: `operator-${n % 3}`,
    role: n % 2 === 0 ? 'administrator' : undefined,
    action: 'account.freeze',
    subject: `6210000000000${n}`,
    outcome: n % 5 === 0 ? 'denied' : 'succeeded',
    source: '10.0.0.7',
    requestId: `req-${n}`,
    details: { reason: 'court order', amountFen: 1_000 * n, flags: [n % 2 === 0, null] },
  };
}

const seqKinds = (problems: readonly AuditProblem[]): { seq: number; kind: string }[] =>
  problems.map(({ seq, kind }) => ({ seq, kind }));

/** A row that copies `record` with other values, its hash recomputed: what an attacker who knows the scheme writes. */
function forged(record: AuditRecord, changes: Partial<Omit<AuditRecord, 'hash'>>): AuditRecord {
  const fields = { ...record, ...changes };
  return { ...fields, hash: computeAuditHash(fields) };
}

const INSERT_ROW_SQL = `INSERT INTO cp_audit_log (seq, at, actor, role, action, subject, outcome, source, request_id, details, prev_hash, hash)
  VALUES ($1::bigint, $2::timestamptz, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12)`;

function insertRow(record: AuditRecord): [string, unknown[]] {
  return [
    INSERT_ROW_SQL,
    [
      String(record.seq),
      record.at,
      record.actor,
      record.role,
      record.action,
      record.subject,
      record.outcome,
      record.source,
      record.requestId,
      record.details === null ? null : JSON.stringify(record.details),
      record.prevHash,
      record.hash,
    ],
  ];
}

function rewriteRow(record: AuditRecord): [string, unknown[]] {
  return ['UPDATE cp_audit_log SET actor = $2, hash = $3 WHERE seq = $1', [record.seq, record.actor, record.hash]];
}

test('the canonical encoding is the one documented: SM3(prev_hash ‖ length-prefixed fields)', () => {
  const record: Omit<AuditRecord, 'hash'> = {
    seq: 42,
    at: '2026-01-01T08:00:00.123000Z',
    actor: '运营员-7',
    role: null,
    action: 'operator.login',
    subject: null,
    outcome: 'succeeded',
    source: '10.0.0.7',
    requestId: null,
    details: { b: [1, -2], a: 'x"y', é: null },
    prevHash: 'ab'.repeat(32),
  };
  const field = (text: string | null): Buffer => {
    if (text === null) return Buffer.of(0);
    const bytes = Buffer.from(text, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    return Buffer.concat([Buffer.of(1), length, bytes]);
  };
  const body = [
    'carbonpay.audit.v1',
    '42',
    '2026-01-01T08:00:00.123000Z',
    '运营员-7',
    null,
    'operator.login',
    null,
    'succeeded',
    '10.0.0.7',
    null,
    '{"a":"x\\"y","b":[1,-2],"é":null}',
  ].map(field);
  const expected = createHash('sm3')
    .update(Buffer.concat([Buffer.from(record.prevHash, 'hex'), ...body]))
    .digest('hex');
  expect(computeAuditHash(record)).toBe(expected);
});

describe.each([postgresBackend(), pgliteBackend()])('the audit chain on $name', (backend) => {
  let admin: AuditDatabase;
  let chain: AuditChain;

  beforeAll(async () => {
    await backend.start();
    admin = backend.connect();
  });

  afterAll(async () => {
    await backend.stop();
  });

  beforeEach(async () => {
    await admin.query(`DROP TABLE IF EXISTS ${TABLES.join(', ')}`);
    chain = new AuditChain(admin);
    await chain.install();
  });

  const appendNumbered = async (count: number): Promise<AuditRecord[]> =>
    chain.appendMany(Array.from({ length: count }, (_, i) => entryNumber(i + 1)));

  test('install is idempotent and can race itself; an empty chain verifies', async () => {
    await Promise.all([1, 2, 3, 4].map(() => new AuditChain(backend.connect()).install()));
    await chain.install();
    expect(await chain.verify()).toEqual({
      ok: true,
      rows: 0,
      head: { seq: 0, hash: AUDIT_GENESIS_HASH },
      problems: [],
      problemsTruncated: false,
    });
  });

  test('verify on a database without the tables says so', async () => {
    await admin.query(`DROP TABLE ${TABLES.join(', ')}`);
    await expect(chain.verify()).rejects.toBeInstanceOf(AuditChainNotInstalledError);
  });

  test('appends from concurrent callers and writers keep one valid chain', async () => {
    const writers = [1, 2, 3, 4].map(() => new AuditChain(backend.connect()));
    const appendsPerCaller = 20;
    const singles: AuditRecord[][] = [];
    const batches: AuditRecord[][] = [];
    await Promise.all(
      writers.flatMap((writer, w) => [
        // three callers appending one entry at a time, and one appending batches
        ...[0, 1, 2].map(async (caller) => {
          const records: AuditRecord[] = [];
          for (let i = 0; i < appendsPerCaller; i++)
            records.push(await writer.append(entryNumber(1_000 * w + 100 * caller + i)));
          singles.push(records);
        }),
        (async () => {
          for (let b = 0; b < 3; b++)
            batches.push(await writer.appendMany([1, 2, 3, 4, 5].map((i) => entryNumber(10_000 * w + 10 * b + i))));
        })(),
      ]),
    );
    const records = [...singles.flat(), ...batches.flat()];
    const total = writers.length * (3 * appendsPerCaller + 3 * 5);
    expect(records).toHaveLength(total);
    expect(records.map((r) => r.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    for (const batch of batches) expect(batch.map((r) => r.seq - batch[0]!.seq)).toEqual([0, 1, 2, 3, 4]);
    for (const caller of singles)
      expect(caller.every((record, i) => i === 0 || record.seq > caller[i - 1]!.seq)).toBe(true);

    const stored = await admin.query<{ seq: string; hash: string }>('SELECT seq::text AS seq, hash FROM cp_audit_log');
    const storedHash = new Map(stored.map((row) => [Number(row.seq), row.hash]));
    for (const record of records) expect(storedHash.get(record.seq)).toBe(record.hash);
    const verification = await chain.verify();
    expect(verification).toMatchObject({ ok: true, rows: total, head: { seq: total }, problems: [] });
  });

  test('UPDATE, DELETE and TRUNCATE are refused by the trigger; the head only moves forward', async () => {
    await appendNumbered(3);
    await expect(admin.query(`UPDATE cp_audit_log SET actor = 'mallory' WHERE seq = 2`)).rejects.toThrow(
      'cp_audit_log is append-only: UPDATE refused',
    );
    await expect(admin.query('DELETE FROM cp_audit_log WHERE seq = 3')).rejects.toThrow(
      'cp_audit_log is append-only: DELETE refused',
    );
    await expect(admin.query('TRUNCATE cp_audit_log')).rejects.toThrow('cp_audit_log is append-only: TRUNCATE refused');
    await expect(admin.query('UPDATE cp_audit_head SET seq = 2')).rejects.toThrow(
      'cp_audit_head only moves forward: UPDATE refused',
    );
    await expect(admin.query('DELETE FROM cp_audit_head')).rejects.toThrow(
      'cp_audit_head only moves forward: DELETE refused',
    );
    await expect(admin.query('TRUNCATE cp_audit_head')).rejects.toThrow(
      'cp_audit_head is append-only: TRUNCATE refused',
    );
    expect(await chain.verify()).toMatchObject({ ok: true, rows: 3, head: { seq: 3 } });
  });

  describe('with the trigger disabled by a superuser, verify finds', () => {
    const ROWS = 10;
    const cases: {
      name: string;
      tamper: (records: readonly AuditRecord[]) => [string, unknown[]?][];
      expected: { seq: number; kind: string }[];
    }[] = [
      {
        name: 'a modified row',
        tamper: () => [[`UPDATE cp_audit_log SET actor = 'mallory' WHERE seq = 4`]],
        expected: [{ seq: 4, kind: 'modified' }],
      },
      {
        name: 'a detail re-spelled with more digits than a double holds',
        tamper: () => [
          [
            `UPDATE cp_audit_log SET details = jsonb_set(details, '{amountFen}', '6000.0000000000000001') WHERE seq = 6`,
          ],
        ],
        expected: [{ seq: 6, kind: 'modified' }],
      },
      {
        name: 'a modified timestamp (one microsecond)',
        tamper: () => [[`UPDATE cp_audit_log SET at = at + interval '1 microsecond' WHERE seq = 1`]],
        expected: [{ seq: 1, kind: 'modified' }],
      },
      {
        name: 'a deleted middle row',
        tamper: () => [['DELETE FROM cp_audit_log WHERE seq = 5']],
        expected: [{ seq: 5, kind: 'deleted' }],
      },
      {
        name: 'a deleted first row',
        tamper: () => [['DELETE FROM cp_audit_log WHERE seq = 1']],
        expected: [{ seq: 1, kind: 'deleted' }],
      },
      {
        name: 'a deleted tail',
        tamper: () => [['DELETE FROM cp_audit_log WHERE seq >= 8']],
        expected: [{ seq: 8, kind: 'deleted' }],
      },
      {
        name: 'a row inserted past the head, chained and hashed correctly',
        tamper: (records) => [
          insertRow(forged(records[ROWS - 1]!, { seq: ROWS + 1, actor: 'mallory', prevHash: records[ROWS - 1]!.hash })),
        ],
        expected: [{ seq: ROWS + 1, kind: 'inserted' }],
      },
      {
        name: 'a row inserted before row 1',
        tamper: (records) => [
          ['ALTER TABLE cp_audit_log DROP CONSTRAINT cp_audit_log_seq_check'],
          insertRow(forged(records[0]!, { seq: 0 })),
        ],
        expected: [{ seq: 0, kind: 'inserted' }],
      },
      {
        name: 'a middle row rewritten with a recomputed hash (at the next row, whose link breaks)',
        tamper: (records) => [rewriteRow(forged(records[5]!, { actor: 'mallory' }))],
        expected: [{ seq: 7, kind: 'deleted' }],
      },
      {
        name: 'a deleted row, its successors renumbered, rechained and the head moved (where the chain breaks)',
        tamper: (records) => {
          const renumbered: AuditRecord[] = [];
          let prevHash = records[3]!.prevHash; // row 4 keeps its link to the deleted row 3: the break
          for (const record of records.slice(3)) {
            renumbered.push(forged(record, { seq: record.seq - 1, prevHash }));
            prevHash = renumbered[renumbered.length - 1]!.hash;
          }
          return [
            ['DELETE FROM cp_audit_log WHERE seq >= 3'],
            ...renumbered.map(insertRow),
            ['UPDATE cp_audit_head SET seq = $1, hash = $2', [ROWS - 1, prevHash]],
          ];
        },
        expected: [{ seq: 3, kind: 'deleted' }],
      },
      {
        name: 'the last row rewritten with a recomputed hash',
        tamper: (records) => [rewriteRow(forged(records[ROWS - 1]!, { actor: 'mallory' }))],
        expected: [{ seq: ROWS, kind: 'head_mismatch' }],
      },
      {
        name: 'a deleted head',
        tamper: () => [['DELETE FROM cp_audit_head']],
        expected: [{ seq: 0, kind: 'head_mismatch' }],
      },
    ];

    test.each(cases)('$name', async ({ tamper, expected }) => {
      const records = await appendNumbered(ROWS);
      expect(await chain.verify()).toMatchObject({ ok: true, rows: ROWS });
      await asSuperuser(admin, tamper(records));
      const verification = await new AuditChain(backend.connect()).verify();
      expect(seqKinds(verification.problems)).toEqual(expected);
      expect(verification.ok).toBe(false);
      const [first] = expected;
      if (first!.seq > 0) expect(verification.problems[0]!.message).toMatch(new RegExp(`\\b${first!.seq}\\b`));
    });

    test('a chain an attacker broke refuses further appends instead of extending the forgery', async () => {
      const records = await appendNumbered(3);
      await asSuperuser(admin, [insertRow(forged(records[2]!, { seq: 4, prevHash: records[2]!.hash }))]);
      await expect(new AuditChain(admin).append(entryNumber(4))).rejects.toBeInstanceOf(AuditChainBrokenError);
      await asSuperuser(admin, [['DELETE FROM cp_audit_head']]);
      await expect(new AuditChain(admin).append(entryNumber(5))).rejects.toThrow(
        /head row of cp_audit_head is missing/,
      );
    });
  });

  test(`verify pages through ${AUDIT_VERIFY_PAGE_ROWS}-row pages and finds problems at a page boundary`, async () => {
    const pageRows = AUDIT_VERIFY_PAGE_ROWS;
    for (let start = 0; start < 2 * pageRows + 500; start += pageRows)
      await chain.appendMany(
        Array.from({ length: Math.min(pageRows, 2 * pageRows + 500 - start) }, (_, i) => entryNumber(start + i)),
      );
    expect(await chain.verify()).toMatchObject({ ok: true, rows: 2 * pageRows + 500 });
    await asSuperuser(admin, [
      ['DELETE FROM cp_audit_log WHERE seq IN ($1, $2)', [pageRows, pageRows + 1]],
      [`UPDATE cp_audit_log SET outcome = 'succeeded!' WHERE seq = $1`, [2 * pageRows + 1]],
    ]);
    const verification = await chain.verify();
    expect(seqKinds(verification.problems)).toEqual([
      { seq: pageRows, kind: 'deleted' },
      { seq: 2 * pageRows + 1, kind: 'modified' },
    ]);
    expect(verification.problems[0]!.message).toBe(`rows ${pageRows}..${pageRows + 1} are missing`);

    await asSuperuser(admin, [[`UPDATE cp_audit_log SET actor = actor || '!'`]]);
    const everyRow = await chain.verify();
    expect(everyRow.problems).toHaveLength(AUDIT_VERIFY_PROBLEMS_MAX);
    expect(everyRow.problemsTruncated).toBe(true);
    expect(everyRow.rows).toBe(2 * pageRows + 500 - 2);
  });

  test('every character a text may hold comes back from the database hashing the same', async () => {
    const everyCharacter =
      Array.from({ length: 0x2ff }, (_, i) => String.fromCharCode(i + 1)).join('') + '\u2028\u2029\ufeff😀𝄞"\\/';
    await chain.appendMany([
      { ...entryNumber(1), actor: everyCharacter.slice(0, 300), subject: everyCharacter.slice(300) },
      { ...entryNumber(2), details: { [everyCharacter]: everyCharacter, nested: [{ '': everyCharacter }] } },
    ]);
    expect(await chain.verify()).toMatchObject({ ok: true, rows: 2, problems: [] });
  });

  test('entries that break a rule are refused whole, before anything is written', async () => {
    const good = entryNumber(1);
    const bad: [string, AuditEntry][] = [
      ['a decimal number in details', { ...good, details: { amount: 1.5 } }],
      ['an unsafe integer in details', { ...good, details: { amount: 2 ** 53 } }],
      ['a NUL in a text field', { ...good, actor: 'a\u0000b' }],
      ['a lone surrogate', { ...good, subject: '\uD800' }],
      ['prose as the action', { ...good, action: 'Froze the account' }],
      ['an empty actor', { ...good, actor: '' }],
      ['an oversized field', { ...good, subject: 'x'.repeat(1_025) }],
      ['oversized details', { ...good, details: { blob: 'x'.repeat(8_200) } }],
      ['details nested too deep', { ...good, details: { a: [[[[[[[[[1]]]]]]]]] } }],
      ['a Date in details', { ...good, details: { when: new Date() } as unknown as AuditDetails }],
      ['a year the encoding cannot write', { ...good, at: new Date('+010000-01-01T00:00:00Z') }],
    ];
    for (const [what, entry] of bad)
      await expect(chain.appendMany([good, entry]).then(() => what)).rejects.toBeInstanceOf(AuditEntryError);
    await expect(chain.appendMany([])).rejects.toBeInstanceOf(AuditEntryError);
    expect(await chain.verify()).toMatchObject({ ok: true, rows: 0, head: { seq: 0 } });
  });

  describe('property: for random entries and one random tampering, verify finds it; untouched, it is ok', () => {
    const text = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }).filter((s) => !s.includes('\u0000'));
    const name = fc.stringMatching(/^[a-z][a-z0-9_.:-]{0,15}$/);
    const { json } = fc.letrec<{ json: unknown }>((tie) => ({
      json: fc.oneof(
        { depthSize: 'small', maxDepth: 3 },
        fc.constant(null),
        fc.boolean(),
        fc.maxSafeInteger().map((n) => n + 0),
        text,
        fc.array(tie('json'), { maxLength: 3 }),
        fc.dictionary(text, tie('json'), { maxKeys: 3 }),
      ),
    }));
    const entry: fc.Arbitrary<AuditEntry> = fc.record(
      {
        at: fc.date({
          min: new Date('1970-01-01T00:00:00Z'),
          max: new Date('9999-12-31T23:59:59.999Z'),
          noInvalidDate: true,
        }),
        actor: text,
        role: text,
        action: name,
        subject: text,
        outcome: name,
        source: text,
        requestId: text,
        details: fc.dictionary(text, json, { maxKeys: 4 }) as fc.Arbitrary<AuditDetails>,
      },
      { requiredKeys: ['actor', 'action', 'outcome'] },
    );
    const MODIFIED_FIELDS = {
      at: `at = at + interval '1 microsecond'`,
      actor: `actor = actor || 'x'`,
      role: `role = coalesce(role || 'x', 'x')`,
      action: `action = action || 'x'`,
      subject: `subject = coalesce(subject || 'x', 'x')`,
      outcome: `outcome = outcome || 'x'`,
      source: `source = CASE WHEN source IS NULL THEN 'x' ELSE NULL END`,
      request_id: `request_id = coalesce(request_id || 'x', 'x')`,
      details: `details = CASE WHEN details IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('', details) END`,
      prev_hash: `prev_hash = CASE WHEN prev_hash = repeat('a', 64) THEN repeat('b', 64) ELSE repeat('a', 64) END`,
      hash: `hash = CASE WHEN hash = repeat('a', 64) THEN repeat('b', 64) ELSE repeat('a', 64) END`,
    } as const;
    const tampering = fc.oneof(
      fc.record({ kind: fc.constant('none' as const) }),
      fc.record({
        kind: fc.constant('modify' as const),
        at: fc.nat(),
        field: fc.constantFrom(...(Object.keys(MODIFIED_FIELDS) as (keyof typeof MODIFIED_FIELDS)[])),
      }),
      fc.record({ kind: fc.constantFrom('rewrite' as const, 'delete' as const, 'deleteTail' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('insert' as const), gap: fc.nat({ max: 3 }) }),
    );

    test('on this backend', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(entry, { minLength: 1, maxLength: 25 }), tampering, async (entries, tamper) => {
          await admin.query(`DROP TABLE IF EXISTS ${TABLES.join(', ')}`);
          const chain = new AuditChain(admin);
          await chain.install();
          const records = await chain.appendMany(entries);
          const n = records.length;
          let expected: { seq: number; kind: string }[] = [];
          if (tamper.kind === 'modify') {
            const seq = (tamper.at % n) + 1;
            await asSuperuser(admin, [
              [`UPDATE cp_audit_log SET ${MODIFIED_FIELDS[tamper.field]} WHERE seq = $1`, [seq]],
            ]);
            expected = [{ seq, kind: 'modified' }];
          } else if (tamper.kind === 'rewrite') {
            const record = records[tamper.at % n]!;
            await asSuperuser(admin, [rewriteRow(forged(record, { actor: `${record.actor}x` }))]);
            expected = [
              record.seq === n ? { seq: n, kind: 'head_mismatch' } : { seq: record.seq + 1, kind: 'deleted' },
            ];
          } else if (tamper.kind === 'delete' || tamper.kind === 'deleteTail') {
            const seq = (tamper.at % n) + 1;
            await asSuperuser(admin, [
              [`DELETE FROM cp_audit_log WHERE seq ${tamper.kind === 'delete' ? '=' : '>='} $1`, [seq]],
            ]);
            expected = [{ seq, kind: 'deleted' }];
          } else if (tamper.kind === 'insert') {
            const seq = n + 1 + tamper.gap;
            await asSuperuser(admin, [insertRow(forged(records[n - 1]!, { seq, prevHash: records[n - 1]!.hash }))]);
            expected = [{ seq, kind: 'inserted' }];
          }
          const verification = await chain.verify();
          expect(seqKinds(verification.problems)).toEqual(expected);
          expect(verification.ok).toBe(expected.length === 0);
        }),
        { numRuns: 60 },
      );
    });
  });
});

describe('the audit chain on PostgreSQL, with other sessions at work', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  const pools: PostgresReadModels[] = [];
  const connect = (url: string): PostgresReadModels => {
    const pool = new PostgresReadModels(url);
    pools.push(pool);
    return pool;
  };

  beforeAll(async () => {
    database = await createTestDatabase('audit_sessions');
  });

  beforeEach(async () => {
    await connect(database.url).query('DROP TABLE IF EXISTS cp_audit_log, cp_audit_head');
  });

  afterAll(async () => {
    await Promise.all(pools.map((pool) => pool.close()));
    await database.drop();
  });

  test('verify running beside appenders reports no problem; the last run sees every row', async () => {
    const chain = new AuditChain(connect(database.url));
    await chain.install();
    let appending = true;
    let appended = 0;
    const appenders = [1, 2, 3].map(async (w) => {
      const writer = new AuditChain(connect(database.url));
      while (appending) {
        await writer.appendMany([entryNumber(w), entryNumber(w + 1)]);
        appended += 2;
      }
    });
    const verifications: AuditVerification[] = [];
    // Verify while the chain grows: rows past the head a run read first must not look inserted, nor the head stale.
    while (verifications.length < 10 || appended < 1_000) verifications.push(await chain.verify());
    appending = false;
    await Promise.all(appenders);
    expect(verifications.filter((v) => !v.ok)).toEqual([]);
    expect(new Set(verifications.map((v) => v.head?.seq)).size).toBeGreaterThan(5);
    expect(await chain.verify()).toMatchObject({ ok: true, rows: appended, head: { seq: appended } });
  });

  test('timestamps hash the same whatever the session TimeZone and DateStyle', async () => {
    const url = new URL(database.url);
    url.searchParams.set('options', '-c TimeZone=Asia/Shanghai -c DateStyle=German');
    const shanghai = new AuditChain(connect(url.toString()));
    await shanghai.install();
    await shanghai.append({ ...entryNumber(1), at: new Date('2026-03-01T23:59:59.999Z') });
    await new AuditChain(connect(database.url)).append(entryNumber(2));
    const [row] = await connect(url.toString()).query<{ at: string }>(
      'SELECT at::text AS at FROM cp_audit_log WHERE seq = 1',
    );
    expect(row!.at).toMatch(/^02\.03\.2026 07:59:59\.999/); // the session really is another zone and style
    expect(await shanghai.verify()).toMatchObject({ ok: true, problems: [] });
    expect(await new AuditChain(connect(database.url)).verify()).toMatchObject({ ok: true, problems: [] });
  });
});
