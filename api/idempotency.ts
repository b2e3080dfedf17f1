import { canonicalJson, sha256Hex } from '../core-ledger';
import type { SqlQueryable } from '../projections';

/**
 * First responses of the commands whose key the ledger does not keep (account lifecycle, void). Transfers keep
 * theirs in their own stream, atomically with their effect, so the payment path writes nothing here.
 *
 * A record is written after the ledger answered. Those commands are idempotent by state as well (opening the same
 * account again or freezing a frozen one is a replay in the ledger), so a crash between the two writes leaves a
 * retry that the ledger itself answers as a replay.
 */
export interface StoredResponse {
  readonly operationId: string;
  readonly requestHash: string;
  readonly status: number;
  readonly body: unknown;
}

export const IDEMPOTENCY_SQL = `
CREATE TABLE IF NOT EXISTS cp_api_idempotency (
  idempotency_key text PRIMARY KEY,
  operation_id text NOT NULL,
  request_hash text NOT NULL,
  status integer NOT NULL,
  body jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS cp_api_idempotency_created_at ON cp_api_idempotency (created_at);
`;

export class IdempotencyRecords {
  constructor(private readonly db: SqlQueryable) {}

  async install(): Promise<void> {
    for (const statement of IDEMPOTENCY_SQL.split(';')
      .map((s) => s.trim())
      .filter(Boolean)) {
      await this.db.query(statement);
    }
  }

  async find(key: string): Promise<StoredResponse | undefined> {
    const rows = await this.db.query<{ operation_id: string; request_hash: string; status: number; body: unknown }>(
      'SELECT operation_id, request_hash, status, body FROM cp_api_idempotency WHERE idempotency_key = $1',
      [key],
    );
    const row = rows[0];
    return row && { operationId: row.operation_id, requestHash: row.request_hash, status: row.status, body: row.body };
  }

  /** Keeps the first response for the key; a concurrent first writer wins and its record stays. */
  async remember(key: string, response: StoredResponse): Promise<void> {
    await this.db.query(
      `INSERT INTO cp_api_idempotency (idempotency_key, operation_id, request_hash, status, body)
       VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (idempotency_key) DO NOTHING`,
      [key, response.operationId, response.requestHash, response.status, JSON.stringify(response.body)],
    );
  }

  /** Forgets records older than the retention (operations run it daily; keys are for retries, not history). */
  async purgeOlderThan(cutoff: Date): Promise<number> {
    const rows = await this.db.query<{ n: string }>(
      'WITH gone AS (DELETE FROM cp_api_idempotency WHERE created_at < $1 RETURNING 1) SELECT count(*)::text AS n FROM gone',
      [cutoff.toISOString()],
    );
    return Number(rows[0]?.n ?? 0);
  }
}

/** The request a key is bound to: operation, path parameters and body, canonicalised (keys sorted). */
export function requestHashOf(operationId: string, pathParameters: unknown, body: unknown): string {
  return sha256Hex(canonicalJson([operationId, pathParameters, body]));
}
