import { createHash, randomBytes } from 'node:crypto';
import type { Amount } from '../core-ledger';
import { canonicalJson, Money } from '../core-ledger';
import type { Sm2PrivateKey, Sm2PublicKey } from '../security';
import { openRequestField, SM2_DEFAULT_USER_ID, sealRequestField, signRequest, sm2Sign, sm2Verify } from '../security';
import type { ServiceDatabase } from './database';
import { ServiceRefusal } from './database';

/**
 * Data exchange between platform levels (C10, DB36/T 1476 §4.1–4.3): a city platform sends the province its day —
 * carbon reductions, credits issued and redeemed, as totals, per behaviour and record by record. A batch is signed by
 * the city's SM2 key over its canonical JSON (non-repudiation, checked again on arrival besides the request's own
 * signature); account numbers travel sealed with SM4 under the field key the province registered for the city. The
 * province keeps one batch per (platform, date, sequence): the same batch again is a duplicate, other content under
 * the same number is refused. It can ask a city to send a date again; the city answers with the next sequence.
 */

export const EXCHANGE_LIMITS = { maxDetailsPerBatch: 100_000 } as const;

export interface ExchangeTotals {
  readonly records: number;
  readonly grams: string;
  readonly creditsIssued: string;
  readonly creditsRedeemed: string;
}

export interface ExchangeBatch {
  readonly platformId: string;
  readonly date: string;
  readonly sequence: number;
  readonly totals: ExchangeTotals;
  readonly behaviours: readonly {
    readonly behaviour: string;
    readonly records: number;
    readonly grams: string;
    readonly credits: string;
  }[];
  readonly details: readonly {
    readonly partnerId: string;
    readonly externalId: string;
    /** Sealed (SM4-GCM under the city's field key, field name `accountNumber`). */
    readonly accountNumber: string;
    readonly behaviour: string;
    readonly methodologyVersion: string;
    readonly grams: string;
    readonly credits: string;
  }[];
  /** SM2 over canonicalJson of everything above, hex. */
  readonly signature: string;
}

export const EXCHANGE_SQL = `
CREATE TABLE IF NOT EXISTS cp_exchange_batches (
  platform_id text NOT NULL,
  exchange_date date NOT NULL,
  sequence integer NOT NULL,
  content_hash text NOT NULL,
  batch jsonb NOT NULL,
  received_at timestamptz NOT NULL,
  PRIMARY KEY (platform_id, exchange_date, sequence)
);
CREATE TABLE IF NOT EXISTS cp_exchange_city_daily (
  platform_id text NOT NULL,
  exchange_date date NOT NULL,
  sequence integer NOT NULL,
  records integer NOT NULL,
  grams numeric NOT NULL,
  credits_issued numeric NOT NULL,
  credits_redeemed numeric NOT NULL,
  PRIMARY KEY (platform_id, exchange_date)
);
CREATE TABLE IF NOT EXISTS cp_exchange_resends (
  platform_id text NOT NULL,
  exchange_date date NOT NULL,
  reason text NOT NULL,
  requested_at timestamptz NOT NULL,
  fulfilled_by integer,
  PRIMARY KEY (platform_id, exchange_date, requested_at)
);
`;

/** The city's side: its day as a signed batch. */
export class ExchangeSender {
  constructor(
    private readonly database: ServiceDatabase,
    private readonly platformId: string,
    private readonly privateKey: Sm2PrivateKey,
    private readonly fieldKey: Buffer,
  ) {}

  async buildBatch(
    date: string,
    sequence: number,
    accountNumberOf: (pointsAccountId: string) => Promise<string>,
  ): Promise<ExchangeBatch> {
    const rows = await this.database.query<{
      partner_id: string;
      external_id: string;
      account_id: string;
      behaviour: string;
      methodology_version: string;
      grams: string;
      credits: string;
    }>(
      `SELECT partner_id, external_id, account_id, behaviour, methodology_version, grams::text, credits::text
         FROM cp_carbon_records WHERE behaviour_date = $1 AND status IN ('credited', 'no_credit')
        ORDER BY partner_id, external_id LIMIT $2`,
      [date, EXCHANGE_LIMITS.maxDetailsPerBatch + 1],
    );
    if (rows.length > EXCHANGE_LIMITS.maxDetailsPerBatch)
      throw new ServiceRefusal(
        'validation_failed',
        `a day of more than ${EXCHANGE_LIMITS.maxDetailsPerBatch} records is sent in parts`,
      );
    const redeemed = await this.database.query<{ credits: string | null }>(
      `SELECT sum(credits)::text AS credits FROM cp_payments WHERE business_date = $1 AND status = 'captured'`,
      [date],
    );
    const details = [];
    for (const r of rows) {
      details.push({
        partnerId: r.partner_id,
        externalId: r.external_id,
        accountNumber: sealRequestField(this.fieldKey, 'accountNumber', await accountNumberOf(r.account_id)),
        behaviour: r.behaviour,
        methodologyVersion: r.methodology_version,
        grams: new Money(r.grams).toFixed(0),
        credits: new Money(r.credits).toFixed(2),
      });
    }
    const unsigned = {
      platformId: this.platformId,
      date,
      sequence,
      totals: totalsOf(details, new Money(redeemed[0]?.credits ?? '0').toFixed(2)),
      behaviours: behavioursOf(details),
      details,
    };
    const signature = sm2Sign(Buffer.from(canonicalJson(unsigned), 'utf8'), this.privateKey, {
      signatureEncoding: 'raw',
      userId: SM2_DEFAULT_USER_ID,
    }).toString('hex');
    return { ...unsigned, signature };
  }

  /** Sends a batch to the province as a signed request (SM2, this platform's key); answers its status and body. */
  async send(
    provinceBase: string,
    batch: ExchangeBatch,
    at: Date,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const body = JSON.stringify(batch);
    const path = '/v1/exchange/batches';
    const headers = signRequest(
      { clientId: this.platformId, method: 'sm2', privateKey: this.privateKey },
      {
        method: 'POST',
        pathWithQuery: path,
        timestamp: String(at.getTime()),
        nonce: randomNonce(),
        body: Buffer.from(body),
      },
    );
    const response = await fetch(`${provinceBase}${path}`, {
      method: 'POST',
      headers: {
        ...headers,
        'content-type': 'application/json',
        // A new key per attempt: the province recognises the batch itself (platform, date, sequence) and says duplicate.
        'idempotency-key': `exchange-${randomNonce()}`,
      },
      body,
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    return { status: response.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
  }
}

function randomNonce(): string {
  return randomBytes(16).toString('hex');
}

/** The province's side. */
export class ExchangeReceiver {
  constructor(private readonly database: ServiceDatabase) {}

  async install(): Promise<void> {
    await this.database.exec(EXCHANGE_SQL);
  }

  /**
   * Takes a city's batch: the sender must be the platform the batch names, its SM2 signature must hold, every sealed
   * field must open and the totals must equal the details. Accepted once per (platform, date, sequence).
   */
  async receive(
    sender: { readonly clientId: string; readonly publicKey: Sm2PublicKey; readonly fieldKey: Buffer | undefined },
    batch: ExchangeBatch,
    at: Date,
  ): Promise<{
    platformId: string;
    date: string;
    sequence: number;
    status: 'accepted' | 'duplicate';
    totals: ExchangeTotals;
  }> {
    if (batch.platformId !== sender.clientId)
      throw new ServiceRefusal('forbidden', `a batch of ${batch.platformId} cannot come from ${sender.clientId}`);
    const { signature, ...unsigned } = batch;
    const signed =
      /^[0-9a-f]{128}$/.test(signature) &&
      sm2Verify(Buffer.from(canonicalJson(unsigned), 'utf8'), signature, sender.publicKey, {
        signatureEncoding: 'raw',
        userId: SM2_DEFAULT_USER_ID,
      });
    if (!signed)
      throw new ServiceRefusal(
        'bad_signature',
        'the batch signature does not verify: it was altered or not signed by its city',
      );
    if (!sender.fieldKey) throw new ServiceRefusal('forbidden', `no field key is registered for ${sender.clientId}`);
    for (const d of batch.details) {
      try {
        if (!/^\d{11,12}$/.test(openRequestField(sender.fieldKey, 'accountNumber', d.accountNumber)))
          throw new Error('malformed');
      } catch {
        throw new ServiceRefusal('validation_failed', `record ${d.externalId}: the account number does not open`);
      }
    }
    const recomputed = totalsOf(batch.details, batch.totals.creditsRedeemed);
    if (
      canonicalJson(recomputed) !== canonicalJson(batch.totals) ||
      canonicalJson(behavioursOf(batch.details)) !== canonicalJson(batch.behaviours)
    )
      throw new ServiceRefusal('validation_failed', 'the totals do not equal the details');
    const hash = createHash('sm3').update(canonicalJson(batch)).digest('hex');
    return this.database.transaction(async (tx) => {
      const inserted = await tx.query(
        `INSERT INTO cp_exchange_batches (platform_id, exchange_date, sequence, content_hash, batch, received_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING sequence`,
        [batch.platformId, batch.date, batch.sequence, hash, JSON.stringify(batch), at.toISOString()],
      );
      const base = { platformId: batch.platformId, date: batch.date, sequence: batch.sequence, totals: batch.totals };
      if (inserted.length === 0) {
        const existing = await tx.query<{ content_hash: string }>(
          'SELECT content_hash FROM cp_exchange_batches WHERE platform_id = $1 AND exchange_date = $2 AND sequence = $3',
          [batch.platformId, batch.date, batch.sequence],
        );
        if (existing[0]!.content_hash !== hash)
          throw new ServiceRefusal(
            'conflict',
            `batch ${batch.sequence} of ${batch.date} was received with other content; send the next sequence`,
          );
        return { ...base, status: 'duplicate' as const };
      }
      // The latest sequence of a date is the city's word for that date.
      await tx.query(
        `INSERT INTO cp_exchange_city_daily (platform_id, exchange_date, sequence, records, grams, credits_issued, credits_redeemed)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (platform_id, exchange_date) DO UPDATE SET sequence = EXCLUDED.sequence, records = EXCLUDED.records,
           grams = EXCLUDED.grams, credits_issued = EXCLUDED.credits_issued, credits_redeemed = EXCLUDED.credits_redeemed
         WHERE cp_exchange_city_daily.sequence < EXCLUDED.sequence`,
        [
          batch.platformId,
          batch.date,
          batch.sequence,
          batch.totals.records,
          batch.totals.grams,
          batch.totals.creditsIssued,
          batch.totals.creditsRedeemed,
        ],
      );
      await tx.query(
        `UPDATE cp_exchange_resends SET fulfilled_by = $3 WHERE platform_id = $1 AND exchange_date = $2 AND fulfilled_by IS NULL`,
        [batch.platformId, batch.date, batch.sequence],
      );
      return { ...base, status: 'accepted' as const };
    });
  }

  /** The province asks a city for a date again (a batch it doubts, or lost on its side). */
  async requestResend(platformId: string, date: string, reason: string, at: Date): Promise<void> {
    await this.database.query(
      'INSERT INTO cp_exchange_resends (platform_id, exchange_date, reason, requested_at) VALUES ($1, $2, $3, $4)',
      [platformId, date, reason, at.toISOString()],
    );
  }

  /** What a city must send again: dates with an open request, and the next sequence to use for each. */
  async openResends(platformId: string): Promise<{ date: string; nextSequence: number; reason: string }[]> {
    const rows = await this.database.query<{ exchange_date: string; reason: string; next: number }>(
      `SELECT r.exchange_date::text, r.reason, coalesce(max(b.sequence), 0) + 1 AS next
         FROM cp_exchange_resends r LEFT JOIN cp_exchange_batches b
           ON b.platform_id = r.platform_id AND b.exchange_date = r.exchange_date
        WHERE r.platform_id = $1 AND r.fulfilled_by IS NULL
        GROUP BY r.exchange_date, r.reason ORDER BY r.exchange_date`,
      [platformId],
    );
    return rows.map((r) => ({ date: r.exchange_date, nextSequence: Number(r.next), reason: r.reason }));
  }

  /** Per city and date: the totals of the latest batch (the province's statistics). */
  async cityStats(
    from: string,
    to: string,
  ): Promise<(ExchangeTotals & { platformId: string; date: string; sequence: number })[]> {
    const rows = await this.database.query<{
      platform_id: string;
      exchange_date: string;
      sequence: number;
      records: number;
      grams: string;
      credits_issued: string;
      credits_redeemed: string;
    }>(
      `SELECT platform_id, exchange_date::text, sequence, records, grams::text, credits_issued::text, credits_redeemed::text
         FROM cp_exchange_city_daily WHERE exchange_date BETWEEN $1 AND $2 ORDER BY platform_id, exchange_date`,
      [from, to],
    );
    return rows.map((r) => ({
      platformId: r.platform_id,
      date: r.exchange_date,
      sequence: r.sequence,
      records: r.records,
      grams: new Money(r.grams).toFixed(0),
      creditsIssued: new Money(r.credits_issued).toFixed(2),
      creditsRedeemed: new Money(r.credits_redeemed).toFixed(2),
    }));
  }
}

function totalsOf(details: ExchangeBatch['details'], creditsRedeemed: string): ExchangeTotals {
  let grams = new Money(0);
  let credits = new Money(0);
  for (const d of details) {
    grams = grams.plus(d.grams);
    credits = credits.plus(d.credits);
  }
  return { records: details.length, grams: grams.toFixed(0), creditsIssued: credits.toFixed(2), creditsRedeemed };
}

function behavioursOf(details: ExchangeBatch['details']): ExchangeBatch['behaviours'] {
  const by = new Map<string, { records: number; grams: Amount; credits: Amount }>();
  for (const d of details) {
    const entry = by.get(d.behaviour) ?? { records: 0, grams: new Money(0), credits: new Money(0) };
    entry.records += 1;
    entry.grams = entry.grams.plus(d.grams);
    entry.credits = entry.credits.plus(d.credits);
    by.set(d.behaviour, entry);
  }
  return [...by.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([behaviour, e]) => ({
      behaviour,
      records: e.records,
      grams: e.grams.toFixed(0),
      credits: e.credits.toFixed(2),
    }));
}
