import { PGlite } from '@electric-sql/pglite';
import fc from 'fast-check';
import type { JsonObject, RecordedEvent } from '../../core-ledger';
import { encodePosition } from '../../core-ledger';
import { LEDGER_READ_MODEL } from '../../projections';

jest.setTimeout(60_000);

/**
 * The runner decodes each batch into typed column arrays in its own process (`encode`), and writes them as
 * PostgreSQL array literals itself: whatever the events hold must reach the tables unchanged, and amounts it adds
 * up must equal PostgreSQL's own sums, digit for digit.
 */
describe('the ledger read model decoded in the runner (PGlite)', () => {
  const schema = 'cp_rm_encoding';
  let db: PGlite;
  let sequence = 0;

  beforeAll(async () => {
    db = new PGlite();
    await db.exec(LEDGER_READ_MODEL.schemaSql(schema));
    await db.exec(LEDGER_READ_MODEL.functionsSql(schema));
    await db.exec(LEDGER_READ_MODEL.sessionSql);
  });

  afterAll(async () => {
    await db.close();
  });

  const recorded = (type: string, streamId: string, data: JsonObject, metadata: JsonObject = {}): RecordedEvent => {
    sequence += 1;
    return {
      eventId: `00000000-0000-4000-8000-${String(sequence).padStart(12, '0')}`,
      type,
      data,
      metadata,
      streamId,
      revision: 0,
      position: encodePosition(sequence, sequence),
      recordedAt: '2026-11-25T02:00:00.000Z',
    };
  };

  const apply = async (events: RecordedEvent[]): Promise<void> => {
    await db.transaction(async (tx) => {
      await tx.query(LEDGER_READ_MODEL.applySql(schema), LEDGER_READ_MODEL.encode(events));
    });
  };

  test('strings with quotes, backslashes, commas, braces, blanks, NULL and non-ASCII arrive unchanged', async () => {
    const awkward = ['a"b', 'a\\b', 'a,b', '{a}', ' padded ', '', 'NULL', 'null', '碳普惠 ✓', 'line\nbreak', '\\"'];
    const events = awkward.map((ownerId, i) =>
      recorded(
        'AccountOpened',
        `account-awkward-${i}`,
        {
          accountId: `awkward-${i}`,
          kind: 'user_main',
          asset: 'CNY',
          ownerId,
          cardNumber: null,
          accountNumber: null,
          at: '2026-11-25T02:00:00.000Z',
        },
        { command: 'OpenAccount', actor: ownerId, channel: 'test', at: '2026-11-25T02:00:00.000Z' },
      ),
    );
    await apply(events);
    const rows = await db.query<{ owner_id: string; card_number: string | null; actor: string }>(
      `SELECT a.owner_id, a.card_number, t.actor FROM ${schema}.accounts a
         JOIN ${schema}.audit_trail t ON t.subject = 'account-' || a.account_id
        WHERE a.account_id LIKE 'awkward-%' ORDER BY length(a.account_id), a.account_id`,
    );
    expect(rows.rows.map((r) => r.owner_id)).toEqual(awkward);
    expect(rows.rows.map((r) => r.actor)).toEqual(awkward);
    expect(rows.rows.every((r) => r.card_number === null)).toBe(true);
  });

  test("a transfer's amount is the sum of its debit lines exactly as PostgreSQL adds them", async () => {
    const decimal = fc
      .tuple(fc.integer({ min: 0, max: 99_999 }), fc.integer({ min: 0, max: 4 }), fc.boolean())
      .map(([units, scale, negative]) => {
        const digits = String(units).padStart(scale + 1, '0');
        const text = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
        return negative && units > 0 ? `-${text}` : text;
      });
    const term = fc.oneof(decimal, decimal, fc.constantFrom('1e1', '2.5E-1', '+3.00', ' 4.10'));
    await fc.assert(
      fc.asyncProperty(fc.array(term, { minLength: 1, maxLength: 4 }), async (debits) => {
        sequence += 1;
        const transferId = `sum-${sequence}`;
        await apply([
          recorded('TransferPosted', `transfer-${transferId}`, {
            transferId,
            transferType: 'internal',
            idempotencyKey: transferId,
            requestHash: 'h',
            postings: [
              ...debits.map((amount) => ({ accountId: 'A', asset: 'CNY', direction: 'debit', amount })),
              { accountId: 'B', asset: 'CNY', direction: 'credit', amount: '0' },
            ],
            reason: null,
            reference: null,
            reverses: null,
            businessDate: '2026-11-25',
            at: '2026-11-25T02:00:00.000Z',
          }),
        ]);
        const rows = await db.query<{ stored: string; expected: string }>(
          `SELECT (SELECT amount::text FROM ${schema}.transfers WHERE transfer_id = $1) AS stored,
                  (SELECT sum(x::numeric)::text FROM unnest($2::text[]) AS x) AS expected`,
          [transferId, debits],
        );
        expect(rows.rows[0]!.stored).toBe(rows.rows[0]!.expected);
      }),
      { numRuns: 150 },
    );
  });
});
