/**
 * The POS journal: one row per financial message a terminal sent (sale, void, reversal), keyed like the message's
 * idempotency key (42 + 41 + batch + trace, and the kind, since a reversal carries its original's trace), written
 * before the ledger is asked. The payment itself lives in cp_payments; the journal names the order it acts on, so
 * settlement finds a terminal batch's payments by index instead of scanning a merchant's orders, and a crash between
 * the journal and the payment leaves nothing the settlement cannot find.
 *
 * Batch uploads (0320) are kept per item with what the comparison with the ledger found, for the operators.
 */
import { Money, type Amount } from '../core-ledger';
import type { ServiceDatabase } from '../services';
import { GroupCommit } from '../services';

export const POS_JOURNAL_SQL = `
CREATE TABLE IF NOT EXISTS cp_pos_journal (
  card_acceptor_id text NOT NULL,
  terminal_id text NOT NULL,
  batch_number text NOT NULL,
  trace text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('sale', 'void', 'reversal')),
  merchant_id text NOT NULL,
  order_id text NOT NULL,
  amount numeric NOT NULL,
  received_at timestamptz NOT NULL,
  PRIMARY KEY (card_acceptor_id, terminal_id, batch_number, kind, trace)
);
CREATE TABLE IF NOT EXISTS cp_pos_batch_uploads (
  card_acceptor_id text NOT NULL,
  terminal_id text NOT NULL,
  batch_number text NOT NULL,
  trace text NOT NULL,
  amount numeric NOT NULL,
  finding text NOT NULL CHECK (finding IN ('matched', 'missing', 'amount_differs', 'card_differs', 'not_captured')),
  uploaded_at timestamptz NOT NULL,
  PRIMARY KEY (card_acceptor_id, terminal_id, batch_number, trace)
);
`;

export type JournalKind = 'sale' | 'void' | 'reversal';

export interface JournalEntry {
  readonly cardAcceptorId: string;
  readonly terminalId: string;
  readonly batchNumber: string;
  readonly trace: string;
  readonly kind: JournalKind;
  readonly merchantId: string;
  /** The order the message acts on: the sale's own, or the original's for a void or reversal. */
  readonly orderId: string;
  readonly amount: string;
}

export interface BatchTotals {
  readonly debitCount: number;
  readonly debitAmount: Amount;
  readonly creditCount: number;
  readonly creditAmount: Amount;
}

export type UploadFinding = 'matched' | 'missing' | 'amount_differs' | 'card_differs' | 'not_captured';

export class PosJournal {
  private readonly records = new GroupCommit<{ entry: JournalEntry; at: Date }, boolean>((items) =>
    this.recordMany(items),
  );

  constructor(private readonly database: ServiceDatabase) {}

  async install(): Promise<void> {
    await this.database.exec(POS_JOURNAL_SQL);
  }

  /** Records a message; false when this key was recorded before (a retransmission). Group-committed. */
  record(entry: JournalEntry, at: Date): Promise<boolean> {
    return this.records.submit({ entry, at });
  }

  private async recordMany(items: readonly { entry: JournalEntry; at: Date }[]): Promise<boolean[]> {
    const column = (pick: (entry: JournalEntry) => string): string[] => items.map((i) => pick(i.entry));
    const rows = await this.database.query<{ n: string }>(
      `INSERT INTO cp_pos_journal (card_acceptor_id, terminal_id, batch_number, trace, kind, merchant_id, order_id,
         amount, received_at)
       SELECT card_acceptor_id, terminal_id, batch_number, trace, kind, merchant_id, order_id, amount, received_at
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::numeric[], $9::timestamptz[]) WITH ORDINALITY
           AS e(card_acceptor_id, terminal_id, batch_number, trace, kind, merchant_id, order_id, amount, received_at, n)
        ORDER BY n
       ON CONFLICT DO NOTHING
       RETURNING card_acceptor_id || '|' || terminal_id || '|' || batch_number || '|' || kind || '|' || trace AS n`,
      [
        column((e) => e.cardAcceptorId),
        column((e) => e.terminalId),
        column((e) => e.batchNumber),
        column((e) => e.trace),
        column((e) => e.kind),
        column((e) => e.merchantId),
        column((e) => e.orderId),
        column((e) => e.amount),
        items.map((i) => i.at.toISOString()),
      ],
    );
    const recorded = new Set(rows.map((r) => r.n));
    // One key twice in a batch (a retransmission right behind its original): the first is the recorded one.
    return items.map(({ entry: e }) => {
      const key = `${e.cardAcceptorId}|${e.terminalId}|${e.batchNumber}|${e.kind}|${e.trace}`;
      return recorded.delete(key);
    });
  }

  async find(
    key: Pick<JournalEntry, 'cardAcceptorId' | 'terminalId' | 'batchNumber' | 'trace' | 'kind'>,
  ): Promise<JournalEntry | undefined> {
    const rows = await this.database.query<{ merchant_id: string; order_id: string; amount: string }>(
      `SELECT merchant_id, order_id, amount::text FROM cp_pos_journal
        WHERE card_acceptor_id = $1 AND terminal_id = $2 AND batch_number = $3 AND kind = $4 AND trace = $5`,
      [key.cardAcceptorId, key.terminalId, key.batchNumber, key.kind, key.trace],
    );
    const row = rows[0];
    return row ? { ...key, merchantId: row.merchant_id, orderId: row.order_id, amount: row.amount } : undefined;
  }

  /**
   * The batch's totals as the ledger side sees them: sales whose payment is captured are debits (voided and reversed
   * sales are out, as on the terminal); the POS door makes no credits (refunds 0220 are not offered), so credits
   * are zero. Research §5: the classification is the acquirer's to define; this is the common one.
   */
  async batchTotals(cardAcceptorId: string, terminalId: string, batchNumber: string): Promise<BatchTotals> {
    const rows = await this.database.query<{ debit_count: string; debit_amount: string }>(
      `SELECT count(*)::text AS debit_count, coalesce(sum(p.gross), 0)::text AS debit_amount
         FROM cp_pos_journal j
         JOIN cp_payments p ON p.merchant_id = j.merchant_id AND p.order_id = j.order_id
        WHERE j.card_acceptor_id = $1 AND j.terminal_id = $2 AND j.batch_number = $3 AND j.kind = 'sale'
          AND p.status = 'captured'`,
      [cardAcceptorId, terminalId, batchNumber],
    );
    const row = rows[0];
    return {
      debitCount: Number(row?.debit_count ?? '0'),
      debitAmount: new Money(row?.debit_amount ?? '0'),
      creditCount: 0,
      creditAmount: new Money(0),
    };
  }

  async recordUpload(
    item: { cardAcceptorId: string; terminalId: string; batchNumber: string; trace: string; amount: string },
    finding: UploadFinding,
    at: Date,
  ): Promise<void> {
    await this.database.query(
      `INSERT INTO cp_pos_batch_uploads (card_acceptor_id, terminal_id, batch_number, trace, amount, finding, uploaded_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (card_acceptor_id, terminal_id, batch_number, trace)
       DO UPDATE SET amount = excluded.amount, finding = excluded.finding, uploaded_at = excluded.uploaded_at`,
      [item.cardAcceptorId, item.terminalId, item.batchNumber, item.trace, item.amount, finding, at.toISOString()],
    );
  }

  async uploadCount(cardAcceptorId: string, terminalId: string, batchNumber: string): Promise<number> {
    const rows = await this.database.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM cp_pos_batch_uploads WHERE card_acceptor_id = $1 AND terminal_id = $2 AND batch_number = $3`,
      [cardAcceptorId, terminalId, batchNumber],
    );
    return Number(rows[0]?.n ?? '0');
  }
}
