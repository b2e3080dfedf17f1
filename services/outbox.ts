import { createHmac } from 'node:crypto';
import type { PersonalDataCipher, ServiceDatabase, SqlQueryable } from './database';

/**
 * The transactional outbox (T12, #13): a message is written in the same transaction as the fact it reports (a payment
 * captured, a refund made, a wallet opened), and a dispatcher delivers it afterwards, retrying with back-off. Nothing is
 * sent that did not happen; nothing that happened is lost. Delivery is at least once: a receiver that acknowledged a
 * message never gets it again from the outbox, but a crash between its acknowledgement and our record of it can repeat
 * it, so every message carries a stable id receivers deduplicate on. Messages to one receiver go out in the order they
 * were written: the next waits until the one before is delivered (or given up).
 */

export const OUTBOX_SQL = `
CREATE TABLE IF NOT EXISTS cp_outbox (
  seq bigserial PRIMARY KEY,
  message_id text NOT NULL UNIQUE,
  receiver text NOT NULL,
  kind text NOT NULL,
  payload jsonb NOT NULL,
  sealed_secret text,
  status text NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL,
  last_error text,
  created_at timestamptz NOT NULL,
  delivered_at timestamptz
);
CREATE INDEX IF NOT EXISTS cp_outbox_pending ON cp_outbox (receiver, seq) WHERE status = 'pending';
CREATE TABLE IF NOT EXISTS cp_webhook_endpoints (
  merchant_id text PRIMARY KEY,
  url text NOT NULL,
  secret text NOT NULL,
  updated_at timestamptz NOT NULL
);
`;

export const OUTBOX_LIMITS = {
  /** Attempts before a message is given up ('dead', visible, replayable). */
  maxAttempts: 25,
  /** Back-off: 2^attempts seconds, at most this. */
  maxBackoffMs: 3_600_000,
  /** Receivers served per dispatcher round. */
  receiversPerRound: 16,
  deliveryTimeoutMs: 5_000,
  /** A claimed message is someone else's to retry after this. */
  leaseMs: 30_000,
} as const;

export interface OutboxMessage {
  /** Stable and unique: derived from the fact (e.g. `payment.succeeded:<paymentId>`). */
  readonly messageId: string;
  /** `webhook:<merchantId>` or `sms:<walletId>`. */
  readonly receiver: string;
  readonly kind: string;
  readonly payload: Record<string, unknown>;
  /** A secret the message must carry (an initial password), sealed; dropped once delivered. */
  readonly secret?: string;
}

/** Writes messages inside the caller's transaction. */
export class Outbox {
  constructor(
    private readonly database: ServiceDatabase,
    private readonly cipher: PersonalDataCipher,
  ) {}

  async install(): Promise<void> {
    await this.database.exec(OUTBOX_SQL);
  }

  async enqueue(tx: SqlQueryable, message: OutboxMessage, at: Date): Promise<void> {
    await tx.query(
      `INSERT INTO cp_outbox (message_id, receiver, kind, payload, sealed_secret, status, next_attempt_at, created_at)
       VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6) ON CONFLICT (message_id) DO NOTHING`,
      [
        message.messageId,
        message.receiver,
        message.kind,
        JSON.stringify(message.payload),
        message.secret === undefined ? null : this.cipher.seal('outboxSecret', message.secret),
        at.toISOString(),
      ],
    );
  }

  /**
   * The INSERT of messages a caller's statement produces, for a CTE of that statement: `source` names a relation with
   * columns `message_id, receiver, kind, payload (jsonb), only_if_webhook_of (text: the message is written only if
   * that merchant has a webhook; NULL: always), at (timestamptz), n, k` — messages are numbered in `n, k` order, so
   * messages to one receiver keep it. Messages written this way carry no sealed secret.
   */
  static insertFromSql(source: string): string {
    return `INSERT INTO cp_outbox (message_id, receiver, kind, payload, sealed_secret, status, next_attempt_at, created_at)
      SELECT m.message_id, m.receiver, m.kind, m.payload, NULL, 'pending', m.at, m.at FROM ${source} m
       WHERE m.only_if_webhook_of IS NULL
          OR EXISTS (SELECT 1 FROM cp_webhook_endpoints w WHERE w.merchant_id = m.only_if_webhook_of)
       ORDER BY m.n, m.k
      ON CONFLICT (message_id) DO NOTHING`;
  }

  /** A merchant's webhook: where its payment, refund and settlement events go, signed with its secret. */
  async setWebhook(merchantId: string, url: string, secret: string, at: Date): Promise<void> {
    await this.database.query(
      `INSERT INTO cp_webhook_endpoints (merchant_id, url, secret, updated_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (merchant_id) DO UPDATE SET url = EXCLUDED.url, secret = EXCLUDED.secret, updated_at = EXCLUDED.updated_at`,
      [merchantId, url, this.cipher.seal('webhookSecret', secret), at.toISOString()],
    );
  }

  async hasWebhook(tx: SqlQueryable, merchantId: string): Promise<boolean> {
    const rows = await tx.query('SELECT 1 FROM cp_webhook_endpoints WHERE merchant_id = $1', [merchantId]);
    return rows.length > 0;
  }

  /**
   * Sends a receiver's messages again from `fromSeq` on (the console's or CLI's replay): delivered and dead messages
   * become pending with their ids unchanged, so receivers recognise what they have.
   */
  async replay(receiver: string, fromSeq: number, at: Date): Promise<number> {
    const rows = await this.database.query<{ seq: string }>(
      `UPDATE cp_outbox SET status = 'pending', attempts = 0, next_attempt_at = $3, last_error = NULL
        WHERE receiver = $1 AND seq >= $2 AND status <> 'pending' RETURNING seq`,
      [receiver, fromSeq, at.toISOString()],
    );
    return rows.length;
  }

  async list(receiver: string, limit = 100): Promise<OutboxEntry[]> {
    const rows = await this.database.query<OutboxRow>(
      `SELECT seq::text, message_id, receiver, kind, payload, status, attempts, last_error, created_at, delivered_at
         FROM cp_outbox WHERE receiver = $1 ORDER BY cp_outbox.seq LIMIT $2`,
      [receiver, limit],
    );
    return rows.map(entryOf);
  }
}

export interface OutboxEntry {
  readonly seq: number;
  readonly messageId: string;
  readonly receiver: string;
  readonly kind: string;
  readonly payload: Record<string, unknown>;
  readonly status: 'pending' | 'delivered' | 'dead';
  readonly attempts: number;
  readonly lastError: string | null;
}

interface OutboxRow {
  seq: string;
  message_id: string;
  receiver: string;
  kind: string;
  payload: Record<string, unknown>;
  sealed_secret?: string | null;
  status: OutboxEntry['status'];
  attempts: number;
  last_error: string | null;
}

function entryOf(row: OutboxRow): OutboxEntry {
  return {
    seq: Number(row.seq),
    messageId: row.message_id,
    receiver: row.receiver,
    kind: row.kind,
    payload: row.payload,
    status: row.status,
    attempts: row.attempts,
    lastError: row.last_error,
  };
}

/** Delivers one message; resolves when the receiver acknowledged it, rejects otherwise. */
export type Transport = (message: OutboxEntry & { readonly secret: string | undefined }) => Promise<void>;

export class OutboxDispatcher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(
    private readonly database: ServiceDatabase,
    private readonly cipher: PersonalDataCipher,
    /** By receiver prefix (`webhook`, `sms`). */
    private readonly transports: Readonly<Record<string, Transport>>,
    private readonly now: () => Date = () => new Date(),
    /** First retry after this; doubling per attempt. */
    private readonly baseBackoffMs = 1_000,
  ) {}

  /** Rounds until a round delivers nothing: what is due now goes out, in order per receiver. */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const delivered = await this.runOnce();
      if (delivered === 0) return total;
      total += delivered;
    }
  }

  /** One round: the oldest pending message of each receiver whose turn has come. Returns how many were delivered. */
  runOnce(): Promise<number> {
    this.running ??= this.round().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  start(intervalMs: number, onError: (error: unknown) => void): void {
    this.timer = setInterval(() => void this.runOnce().catch(onError), intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  private async round(): Promise<number> {
    const heads = await this.database.query<{ seq: string; next_attempt_at: Date | string }>(
      `SELECT DISTINCT ON (receiver) seq::text, next_attempt_at FROM cp_outbox WHERE status = 'pending'
        ORDER BY receiver, cp_outbox.seq LIMIT $1`,
      [OUTBOX_LIMITS.receiversPerRound],
    );
    const due = heads.filter((h) => new Date(h.next_attempt_at).getTime() <= this.now().getTime());
    const delivered = await Promise.all(due.map((h) => this.deliver(Number(h.seq))));
    return delivered.filter(Boolean).length;
  }

  /**
   * Claims one message with a lease (so two dispatchers never send it at once, and no connection is held while the
   * receiver answers), delivers it, and records the outcome. A dispatcher that dies mid-send lets the lease lapse.
   */
  private async deliver(seq: number): Promise<boolean> {
    const at = this.now();
    const claimed = await this.database.query<OutboxRow>(
      `UPDATE cp_outbox SET next_attempt_at = $3 WHERE seq = $1 AND status = 'pending' AND next_attempt_at <= $2
       RETURNING seq::text, message_id, receiver, kind, payload, sealed_secret, status, attempts, last_error`,
      [seq, at.toISOString(), new Date(at.getTime() + OUTBOX_LIMITS.leaseMs).toISOString()],
    );
    const row = claimed[0];
    if (!row) return false;
    const transport = this.transports[row.receiver.slice(0, row.receiver.indexOf(':'))];
    try {
      if (!transport) throw new Error(`no transport for ${row.receiver}`);
      const secret = row.sealed_secret ? this.cipher.open('outboxSecret', row.sealed_secret) : undefined;
      await transport({ ...entryOf(row), secret });
    } catch (error) {
      const attempts = row.attempts + 1;
      const backoffMs = Math.min(OUTBOX_LIMITS.maxBackoffMs, this.baseBackoffMs * 2 ** Math.min(attempts - 1, 20));
      await this.database.query(
        `UPDATE cp_outbox SET attempts = $2, last_error = $3, next_attempt_at = $4, status = $5 WHERE seq = $1`,
        [
          seq,
          attempts,
          String((error as Error).message ?? error).slice(0, 500),
          new Date(this.now().getTime() + backoffMs).toISOString(),
          attempts >= OUTBOX_LIMITS.maxAttempts ? 'dead' : 'pending',
        ],
      );
      return false;
    }
    await this.database.query(
      `UPDATE cp_outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = $2, sealed_secret = NULL,
         last_error = NULL WHERE seq = $1`,
      [seq, this.now().toISOString()],
    );
    return true;
  }
}

/**
 * Webhook signature (documented in docs/operations.md): `X-CP-Signature: hmac-sm3=<hex>` where hex is HMAC-SM3 under
 * the merchant's secret of `<X-CP-Timestamp>.<X-CP-Message-Id>.<body>` (the body's exact bytes, UTF-8).
 */
export function webhookSignature(secret: string, timestamp: string, messageId: string, body: string): string {
  return createHmac('sm3', secret).update(`${timestamp}.${messageId}.${body}`, 'utf8').digest('hex');
}

/** Posts webhooks to the merchant's endpoint; a 2xx answer within the time-out is the acknowledgement. */
export function webhookTransport(
  database: ServiceDatabase,
  cipher: PersonalDataCipher,
  now: () => Date = () => new Date(),
): Transport {
  return async (message) => {
    const merchantId = message.receiver.slice('webhook:'.length);
    const endpoint = (
      await database.query<{ url: string; secret: string }>(
        'SELECT url, secret FROM cp_webhook_endpoints WHERE merchant_id = $1',
        [merchantId],
      )
    )[0];
    if (!endpoint) throw new Error(`merchant ${merchantId} has no webhook endpoint`);
    const body = JSON.stringify({ id: message.messageId, type: message.kind, data: message.payload });
    const timestamp = now().toISOString();
    const signature = webhookSignature(
      cipher.open('webhookSecret', endpoint.secret),
      timestamp,
      message.messageId,
      body,
    );
    const response = await fetch(endpoint.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-cp-message-id': message.messageId,
        'x-cp-timestamp': timestamp,
        'x-cp-signature': `hmac-sm3=${signature}`,
      },
      body,
      signal: AbortSignal.timeout(OUTBOX_LIMITS.deliveryTimeoutMs),
    });
    await response.arrayBuffer().catch(() => undefined);
    if (response.status < 200 || response.status > 299) throw new Error(`webhook answered ${response.status}`);
  };
}
