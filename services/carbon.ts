import type {
  Amount,
  BehaviourRecordInput,
  CommandContext,
  Ledger,
  QuantifiedRecord,
  RecordDecision,
  UserCarbonFacts,
} from '../core-ledger';
import {
  amountOf,
  businessDateOf,
  creditsToExpire,
  decideRecords,
  formatAmount,
  INGESTION_LIMITS,
  Money,
  quantify,
  uuidV5,
  ZERO,
} from '../core-ledger';
import type { ServiceDatabase, SqlQueryable } from './database';
import { ServiceRefusal } from './database';
import type { RiskService } from './risk';
import type { WalletService } from './wallets';

/**
 * Carbon inclusion (C1, C2, C4): partner batches of behaviour records become grams CO2e and carbon credits.
 *
 * A batch is decided in ONE transaction holding the row lock of every user it names (sorted, so two batches never
 * deadlock): duplicates, overlapping trips and the daily and monthly caps are checked against what is committed, so
 * concurrent batches for one user cannot overshoot. The accepted records are committed with status `pending` — the
 * outbox — and each becomes a `credit_issuance` transfer in the ledger with an id derived from (partner, external id),
 * so a retry after a crash issues once. `resumeIssuances` finishes what a crash left pending.
 */

export const ISSUANCE_ACCOUNT = 'PLATFORM-CREDIT-ISSUANCE-CCR';
export const EXPIRY_ACCOUNT = 'PLATFORM-CREDIT-EXPIRY-CCR';

export interface CarbonPolicy {
  /** Credits per gram CO2e, a decimal string (e.g. '1': one credit per gram, as in Wuhan and Shanghai). */
  readonly creditsPerGram: string;
  /** Days a credit stays valid after issuance. */
  readonly creditLifetimeDays: number;
  /** Records a partner may submit per minute (token bucket, per process). */
  readonly partnerRecordsPerMinute: number;
  readonly cutoffHourLocal: number;
}

export const DEFAULT_CARBON_POLICY: CarbonPolicy = {
  creditsPerGram: '1',
  creditLifetimeDays: 365,
  partnerRecordsPerMinute: 60_000,
  cutoffHourLocal: 0,
};

export const CARBON_SQL = `
CREATE TABLE IF NOT EXISTS cp_carbon_users (account_id text PRIMARY KEY);
CREATE TABLE IF NOT EXISTS cp_carbon_records (
  partner_id text NOT NULL,
  external_id text NOT NULL,
  account_id text NOT NULL,
  behaviour text NOT NULL,
  behaviour_class text NOT NULL,
  methodology_version text NOT NULL,
  quantity numeric NOT NULL,
  unit text NOT NULL,
  start_at timestamptz NOT NULL,
  end_at timestamptz NOT NULL,
  is_trip boolean NOT NULL,
  behaviour_date date NOT NULL,
  behaviour_month text NOT NULL,
  area text NOT NULL,
  computed_grams numeric NOT NULL,
  grams numeric NOT NULL,
  credits numeric NOT NULL,
  transfer_id text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'credited', 'no_credit', 'credit_refused')),
  status_reason text,
  expires_at timestamptz NOT NULL,
  evidence jsonb,
  batch_id text NOT NULL,
  received_at timestamptz NOT NULL,
  PRIMARY KEY (partner_id, external_id)
);
CREATE INDEX IF NOT EXISTS cp_carbon_records_user_day ON cp_carbon_records (account_id, behaviour, behaviour_date);
CREATE INDEX IF NOT EXISTS cp_carbon_records_user_trips ON cp_carbon_records (account_id, start_at) WHERE is_trip;
CREATE INDEX IF NOT EXISTS cp_carbon_records_pending ON cp_carbon_records (received_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS cp_carbon_records_expiry ON cp_carbon_records (expires_at, account_id);
`;

export type RecordResult =
  | {
      readonly externalId: string;
      readonly status: 'accepted';
      readonly grams: string;
      readonly computedGrams: string;
      readonly credits: string;
      readonly methodologyVersion: string;
      readonly transferId: string | null;
      readonly creditStatus: 'credited' | 'no_credit' | 'pending' | 'credit_refused';
    }
  | { readonly externalId: string; readonly status: 'duplicate'; readonly reason: string }
  | { readonly externalId: string; readonly status: 'rejected'; readonly reason: string };

export interface BatchResult {
  readonly batchId: string;
  readonly accepted: number;
  readonly duplicates: number;
  readonly rejected: number;
  readonly records: readonly RecordResult[];
}

interface AcceptedRow {
  readonly transferId: string;
  readonly accountId: string;
  readonly credits: Amount;
  readonly externalId: string;
  readonly behaviour: string;
  readonly methodologyVersion: string;
  readonly grams: string;
  readonly area: string;
}

export class CarbonService {
  private readonly buckets = new Map<string, { tokens: number; refilledAtMs: number }>();
  private risk: RiskService | undefined;

  constructor(
    private readonly database: ServiceDatabase,
    private readonly ledger: Ledger,
    private readonly wallets: WalletService,
    private readonly policy: CarbonPolicy = DEFAULT_CARBON_POLICY,
  ) {}

  async install(): Promise<void> {
    await this.database.exec(CARBON_SQL);
  }

  async submitBehaviours(
    partnerId: string,
    batchId: string,
    inputs: readonly BehaviourRecordInput[],
    context: CommandContext,
    now: Date,
  ): Promise<BatchResult> {
    if (inputs.length === 0 || inputs.length > INGESTION_LIMITS.maxRecordsPerBatch)
      throw new ServiceRefusal('validation_failed', `a batch has 1..${INGESTION_LIMITS.maxRecordsPerBatch} records`);
    this.takeTokens(partnerId, inputs.length, now.getTime());
    const results: (RecordResult | undefined)[] = inputs.map(() => undefined);
    const pointsAccounts = await this.wallets.pointsAccountsOf([...new Set(inputs.map((r) => r.accountNumber))]);
    const quantified: QuantifiedRecord[] = [];
    for (const [index, input] of inputs.entries()) {
      const accountId = pointsAccounts.get(input.accountNumber);
      if (accountId === undefined) {
        results[index] = { externalId: input.externalId, status: 'rejected', reason: 'unknown_user' };
        continue;
      }
      const account = await this.ledger.getAccount(accountId);
      if (!account || account.status !== 'open') {
        results[index] = { externalId: input.externalId, status: 'rejected', reason: 'account_not_open' };
        continue;
      }
      const q = quantify(input, index, accountId, now.getTime());
      if (q.ok) quantified.push(q.record);
      else results[index] = { externalId: input.externalId, status: 'rejected', reason: q.reason };
    }

    const riskDecisions = await this.assessRisk(partnerId, inputs, quantified, results, context, now);
    const counted = quantified.filter((r) => results[r.index] === undefined);
    let accepted: AcceptedRow[];
    try {
      accepted = await this.decideAndRecord(partnerId, batchId, inputs, counted, results, now);
    } catch (error) {
      await Promise.all([...riskDecisions.values()].map((id) => this.risk!.release(id, now)));
      throw error;
    }
    // Records that did not count (duplicates, caps) give their risk reservations back.
    await Promise.all(
      [...riskDecisions]
        .filter(([index]) => results[index]?.status !== 'accepted')
        .map(([, id]) => this.risk!.release(id, now)),
    );

    const statuses = await Promise.all(accepted.map((row) => this.issue(row, context, now)));
    const statusOf = new Map(accepted.map((row, i) => [row.transferId, statuses[i]!]));
    for (const [i, result] of results.entries()) {
      if (result?.status === 'accepted' && result.transferId !== null)
        results[i] = { ...result, creditStatus: statusOf.get(result.transferId) ?? result.creditStatus };
    }
    const done = results.map((r, i) => {
      if (!r) throw new Error(`assertion: record ${i} of batch ${batchId} has no outcome`);
      return r;
    });
    return {
      batchId,
      accepted: done.filter((r) => r.status === 'accepted').length,
      duplicates: done.filter((r) => r.status === 'duplicate').length,
      rejected: done.filter((r) => r.status === 'rejected').length,
      records: done,
    };
  }

  /** Risk control on carbon data (#14): records it refuses or holds are rejected with its code; the rest go on. */
  private async assessRisk(
    partnerId: string,
    inputs: readonly BehaviourRecordInput[],
    quantified: readonly QuantifiedRecord[],
    results: (RecordResult | undefined)[],
    context: CommandContext,
    now: Date,
  ): Promise<Map<number, string>> {
    const allowed = new Map<number, string>();
    if (!this.risk) return allowed;
    const decisions = await Promise.all(
      quantified.map((record) => {
        const input = inputs[record.index]!;
        return this.risk!.assess(
          'carbon_record',
          {
            subjectRef: `carbon:${uuidV5(`credit-issuance|${partnerId}|${input.externalId}`)}`,
            partnerId,
            accountId: record.accountId,
            behaviour: input.behaviour,
            quantity: input.quantity,
            unit: input.unit,
            startAt: input.startAt,
            endAt: input.endAt,
            channel: context.channel,
          },
          now,
        );
      }),
    );
    decisions.forEach((decision, i) => {
      const record = quantified[i]!;
      if (decision.outcome === 'allow') allowed.set(record.index, decision.decisionId);
      else results[record.index] = { externalId: record.externalId, status: 'rejected', reason: decision.code! };
    });
    return allowed;
  }

  /** The batch's one transaction: lock its users, decide against what they have counted, record the outcome. */
  private decideAndRecord(
    partnerId: string,
    batchId: string,
    inputs: readonly BehaviourRecordInput[],
    quantified: readonly QuantifiedRecord[],
    results: (RecordResult | undefined)[],
    now: Date,
  ): Promise<AcceptedRow[]> {
    return this.database.transaction(async (tx) => {
      const users = [...new Set(quantified.map((r) => r.accountId))].sort();
      await lockUsers(tx, users);
      const seen = await this.seenExternalIds(tx, partnerId, quantified);
      const facts = await factsOf(tx, quantified);
      const decisions = decideRecords(quantified, facts, seen, this.policy.creditsPerGram);
      const rows: AcceptedRow[] = [];
      for (const [i, decision] of decisions.entries()) {
        const record = quantified[i]!;
        const row = await this.recordDecision(tx, partnerId, batchId, inputs[record.index]!, record, decision, now);
        results[record.index] = row.result;
        if (row.accepted) rows.push(row.accepted);
      }
      return rows;
    });
  }

  attachRisk(risk: RiskService): void {
    this.risk = risk;
  }

  /** Issues the credits of records a crash left pending (run at start-up and on a schedule). */
  async resumeIssuances(context: CommandContext, now: Date, limit = 1_000): Promise<number> {
    const rows = await this.database.query<{
      transfer_id: string;
      account_id: string;
      credits: string;
      external_id: string;
      behaviour: string;
      methodology_version: string;
      grams: string;
      area: string;
    }>(
      `SELECT transfer_id, account_id, credits::text, external_id, behaviour, methodology_version, grams::text, area
         FROM cp_carbon_records WHERE status = 'pending' ORDER BY received_at LIMIT $1`,
      [limit],
    );
    for (const r of rows) {
      await this.issue(
        {
          transferId: r.transfer_id,
          accountId: r.account_id,
          credits: new Money(r.credits),
          externalId: r.external_id,
          behaviour: r.behaviour,
          methodologyVersion: r.methodology_version,
          grams: r.grams,
          area: r.area,
        },
        context,
        now,
      );
    }
    return rows.length;
  }

  /**
   * Expires credits past their lifetime as of `asOf`: per points account, what the balance holds beyond the credits
   * still valid goes to the expiry account. Idempotent: a second run finds nothing due; two runs at once are
   * serialised by the user's row lock and share the transfer id of one `asOf`.
   */
  async expireCredits(asOf: Date, context: CommandContext): Promise<{ accounts: number; expired: string }> {
    const accounts = await this.database.query<{ account_id: string }>(
      `SELECT DISTINCT account_id FROM cp_carbon_records
        WHERE expires_at <= $1 AND status IN ('pending', 'credited') ORDER BY account_id`,
      [asOf.toISOString()],
    );
    let total = ZERO;
    let touched = 0;
    for (const { account_id: accountId } of accounts) {
      const expired = await this.database.transaction(async (tx) => {
        await lockUsers(tx, [accountId]);
        const valid = await tx.query<{ valid: string | null }>(
          `SELECT sum(credits)::text AS valid FROM cp_carbon_records
            WHERE account_id = $1 AND expires_at > $2 AND status IN ('pending', 'credited')`,
          [accountId, asOf.toISOString()],
        );
        const account = await this.ledger.getAccount(accountId);
        if (!account) throw new Error(`assertion: points account ${accountId} of a credited record does not exist`);
        const amount = creditsToExpire({
          posted: account.posted,
          available: account.posted.minus(account.pendingDebits),
          stillValidIssued: new Money(valid[0]?.valid ?? '0'),
        });
        if (amount.lte(0)) return ZERO;
        const outcome = await this.ledger.execute(
          {
            type: 'PostTransfer',
            transferId: uuidV5(`credit-expiry|${accountId}|${asOf.toISOString()}`),
            idempotencyKey: `credit-expiry:${accountId}:${asOf.toISOString()}`,
            transferType: 'credit_expiry',
            postings: [
              { accountId, direction: 'debit', amount: formatAmount('CCR', amount) },
              { accountId: EXPIRY_ACCOUNT, direction: 'credit', amount: formatAmount('CCR', amount) },
            ],
            reason: `credits older than ${this.policy.creditLifetimeDays} days`,
            businessDate: businessDateOf(asOf, this.policy.cutoffHourLocal),
            at: asOf.toISOString(),
          },
          context,
        );
        return outcome.status === 'accepted' ? amount : ZERO;
      });
      if (expired.gt(0)) {
        total = total.plus(expired);
        touched += 1;
      }
    }
    return { accounts: touched, expired: formatAmount('CCR', total) };
  }

  /** A user's carbon account (C1, C4): total grams, credits, and the latest records. */
  async carbonAccount(accountNumber: string, historyLimit = 50): Promise<CarbonAccountView | undefined> {
    const wallet = await this.wallets.findByAccountNumber(accountNumber);
    if (!wallet) return undefined;
    const pointsAccount = wallet.accounts.points;
    const totals = await this.database.query<{ grams: string | null; credits: string | null; records: string }>(
      `SELECT sum(grams)::text AS grams, sum(credits) FILTER (WHERE status = 'credited')::text AS credits,
              count(*)::text AS records
         FROM cp_carbon_records WHERE account_id = $1`,
      [pointsAccount],
    );
    const history = await this.database.query<HistoryRow>(
      `SELECT partner_id, external_id, behaviour, behaviour_class, methodology_version, quantity::text, unit,
              behaviour_date::text, grams::text, credits::text, status, end_at, expires_at
         FROM cp_carbon_records WHERE account_id = $1 ORDER BY end_at DESC, external_id LIMIT $2`,
      [pointsAccount, historyLimit],
    );
    const account = await this.ledger.getAccount(pointsAccount);
    return {
      accountNumber,
      pointsAccountId: pointsAccount,
      totalGrams: new Money(totals[0]?.grams ?? '0').toFixed(0),
      creditsIssued: new Money(totals[0]?.credits ?? '0').toFixed(2),
      creditBalance: account ? formatAmount('CCR', account.posted) : '0.00',
      creditsAvailable: account ? formatAmount('CCR', account.posted.minus(account.pendingDebits)) : '0.00',
      records: Number(totals[0]?.records ?? '0'),
      history: history.map((h) => ({
        partnerId: h.partner_id,
        externalId: h.external_id,
        behaviour: h.behaviour,
        behaviourClass: h.behaviour_class,
        methodologyVersion: h.methodology_version,
        quantity: h.quantity,
        unit: h.unit,
        date: h.behaviour_date,
        grams: new Money(h.grams).toFixed(0),
        credits: new Money(h.credits).toFixed(2),
        status: h.status,
        endAt: new Date(h.end_at).toISOString(),
        expiresAt: new Date(h.expires_at).toISOString(),
      })),
    };
  }

  /** Statistics per behaviour, area and day (C1): grams, credits and records of counted behaviour. */
  async stats(from: string, to: string, groupBy: readonly ('behaviour' | 'area' | 'day')[]): Promise<CarbonStatRow[]> {
    const columns = { behaviour: 'behaviour', area: 'area', day: 'behaviour_date::text' } as const;
    const keys = groupBy.length > 0 ? groupBy : (['behaviour'] as const);
    const select = keys.map((k) => `${columns[k]} AS ${k}`).join(', ');
    const rows = await this.database.query<Record<string, string>>(
      `SELECT ${select}, sum(grams)::text AS grams, sum(credits)::text AS credits, count(*)::text AS records
         FROM cp_carbon_records WHERE behaviour_date BETWEEN $1 AND $2
        GROUP BY ${keys.map((_, i) => String(i + 1)).join(', ')} ORDER BY ${keys.map((_, i) => String(i + 1)).join(', ')}`,
      [from, to],
    );
    return rows.map((r) => ({
      ...(r['behaviour'] !== undefined ? { behaviour: r['behaviour'] } : {}),
      ...(r['area'] !== undefined ? { area: r['area'] } : {}),
      ...(r['day'] !== undefined ? { day: r['day'] } : {}),
      grams: new Money(r['grams']!).toFixed(0),
      credits: new Money(r['credits']!).toFixed(2),
      records: Number(r['records']),
    }));
  }

  private async recordDecision(
    tx: SqlQueryable,
    partnerId: string,
    batchId: string,
    input: BehaviourRecordInput,
    record: QuantifiedRecord,
    decision: RecordDecision,
    now: Date,
  ): Promise<{ result: RecordResult; accepted?: AcceptedRow }> {
    if (decision.status !== 'accepted') {
      return {
        result: { externalId: input.externalId, status: decision.status, reason: decision.reason } as RecordResult,
      };
    }
    const transferId = uuidV5(`credit-issuance|${partnerId}|${input.externalId}`);
    const status = decision.credits.gt(0) ? 'pending' : 'no_credit';
    const area = record.accountId.slice(4, 7);
    const expiresAt = new Date(now.getTime() + this.policy.creditLifetimeDays * 86_400_000);
    await tx.query(
      `INSERT INTO cp_carbon_records (partner_id, external_id, account_id, behaviour, behaviour_class,
         methodology_version, quantity, unit, start_at, end_at, is_trip, behaviour_date, behaviour_month, area,
         computed_grams, grams, credits, transfer_id, status, expires_at, evidence, batch_id, received_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)`,
      [
        partnerId,
        input.externalId,
        record.accountId,
        record.behaviour,
        record.methodology.behaviourClass,
        record.methodology.version,
        record.quantity,
        record.methodology.unit,
        new Date(record.startMs).toISOString(),
        new Date(record.endMs).toISOString(),
        record.methodology.isTrip,
        record.businessDate,
        record.month,
        area,
        record.grams.toFixed(0),
        decision.grams.toFixed(0),
        formatAmount('CCR', decision.credits),
        transferId,
        status,
        expiresAt.toISOString(),
        input.evidence === undefined ? null : JSON.stringify(input.evidence),
        batchId,
        now.toISOString(),
      ],
    );
    const result: RecordResult = {
      externalId: input.externalId,
      status: 'accepted',
      grams: decision.grams.toFixed(0),
      computedGrams: record.grams.toFixed(0),
      credits: formatAmount('CCR', decision.credits),
      methodologyVersion: record.methodology.version,
      transferId: status === 'pending' ? transferId : null,
      creditStatus: status,
    };
    if (status !== 'pending') return { result };
    return {
      result,
      accepted: {
        transferId,
        accountId: record.accountId,
        credits: decision.credits,
        externalId: input.externalId,
        behaviour: record.behaviour,
        methodologyVersion: record.methodology.version,
        grams: decision.grams.toFixed(0),
        area,
      },
    };
  }

  /** One record's credits into the ledger; the record's status follows the ledger's answer. */
  private async issue(row: AcceptedRow, context: CommandContext, now: Date): Promise<'credited' | 'credit_refused'> {
    const amount = formatAmount('CCR', row.credits);
    const outcome = await this.ledger.execute(
      {
        type: 'PostTransfer',
        transferId: row.transferId,
        idempotencyKey: `credit-issuance:${row.transferId}`,
        transferType: 'credit_issuance',
        postings: [
          { accountId: ISSUANCE_ACCOUNT, direction: 'debit', amount },
          { accountId: row.accountId, direction: 'credit', amount },
        ],
        reference: row.externalId.slice(0, 64),
        reason: `${row.behaviour} ${row.grams} g CO2e under ${row.methodologyVersion}`,
        businessDate: businessDateOf(now, this.policy.cutoffHourLocal),
        at: now.toISOString(),
      },
      {
        ...context,
        tags: {
          behaviour: row.behaviour,
          methodologyVersion: row.methodologyVersion,
          reductionGrams: row.grams,
          area: row.area,
        },
      },
    );
    if (outcome.status === 'refused' && outcome.refusal.code === 'idempotency_conflict')
      throw new Error(`assertion: issuance ${row.transferId} was decided twice with different content`);
    const status = outcome.status === 'refused' ? 'credit_refused' : 'credited';
    await this.database.query(
      `UPDATE cp_carbon_records SET status = $2, status_reason = $3 WHERE transfer_id = $1 AND status = 'pending'`,
      [row.transferId, status, outcome.status === 'refused' ? outcome.refusal.code : null],
    );
    return status;
  }

  private async seenExternalIds(
    tx: SqlQueryable,
    partnerId: string,
    records: readonly QuantifiedRecord[],
  ): Promise<Set<string>> {
    if (records.length === 0) return new Set();
    const rows = await tx.query<{ external_id: string }>(
      'SELECT external_id FROM cp_carbon_records WHERE partner_id = $1 AND external_id = ANY($2::text[])',
      [partnerId, records.map((r) => r.externalId)],
    );
    return new Set(rows.map((r) => r.external_id));
  }

  /** A token bucket per partner: refilled continuously up to one minute's allowance. */
  private takeTokens(partnerId: string, count: number, nowMs: number): void {
    const capacity = this.policy.partnerRecordsPerMinute;
    const bucket = this.buckets.get(partnerId) ?? { tokens: capacity, refilledAtMs: nowMs };
    bucket.tokens = Math.min(capacity, bucket.tokens + ((nowMs - bucket.refilledAtMs) * capacity) / 60_000);
    bucket.refilledAtMs = nowMs;
    this.buckets.set(partnerId, bucket);
    if (bucket.tokens < count)
      throw new ServiceRefusal('rate_limited', `partner ${partnerId} may submit ${capacity} records a minute`, {
        retryAfterSeconds: Math.ceil(((count - bucket.tokens) * 60) / capacity),
      });
    bucket.tokens -= count;
  }
}

export interface CarbonAccountView {
  readonly accountNumber: string;
  readonly pointsAccountId: string;
  readonly totalGrams: string;
  readonly creditsIssued: string;
  readonly creditBalance: string;
  readonly creditsAvailable: string;
  readonly records: number;
  readonly history: readonly Record<string, string>[];
}

export interface CarbonStatRow {
  readonly behaviour?: string;
  readonly area?: string;
  readonly day?: string;
  readonly grams: string;
  readonly credits: string;
  readonly records: number;
}

interface HistoryRow {
  partner_id: string;
  external_id: string;
  behaviour: string;
  behaviour_class: string;
  methodology_version: string;
  quantity: string;
  unit: string;
  behaviour_date: string;
  grams: string;
  credits: string;
  status: string;
  end_at: Date | string;
  expires_at: Date | string;
}

/** Row locks on every user of a batch, in one order, so batches for the same users queue instead of deadlocking. */
async function lockUsers(tx: SqlQueryable, accountIds: readonly string[]): Promise<void> {
  if (accountIds.length === 0) return;
  await tx.query('INSERT INTO cp_carbon_users (account_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING', [
    accountIds,
  ]);
  await tx.query(
    'SELECT account_id FROM cp_carbon_users WHERE account_id = ANY($1::text[]) ORDER BY account_id FOR UPDATE',
    [accountIds],
  );
}

/** What each user of the batch has counted on the batch's days and months, and their trips near the batch's. */
async function factsOf(tx: SqlQueryable, records: readonly QuantifiedRecord[]): Promise<Map<string, UserCarbonFacts>> {
  const facts = new Map<
    string,
    { dayGrams: Map<string, Amount>; monthGrams: Map<string, Amount>; trips: { startMs: number; endMs: number }[] }
  >();
  const users = [...new Set(records.map((r) => r.accountId))];
  if (users.length === 0) return facts;
  for (const id of users) facts.set(id, { dayGrams: new Map(), monthGrams: new Map(), trips: [] });
  const months = [...new Set(records.map((r) => r.month))];
  const sums = await tx.query<{ account_id: string; behaviour: string; behaviour_date: string; grams: string }>(
    `SELECT account_id, behaviour, behaviour_date::text, sum(grams)::text AS grams FROM cp_carbon_records
      WHERE account_id = ANY($1::text[]) AND behaviour_month = ANY($2::text[])
      GROUP BY account_id, behaviour, behaviour_date`,
    [users, months],
  );
  for (const s of sums) {
    const user = facts.get(s.account_id)!;
    const grams = amountOf('CO2E', new Money(s.grams).toFixed(0));
    user.dayGrams.set(`${s.behaviour}|${s.behaviour_date}`, grams);
    const monthKey = `${s.behaviour}|${s.behaviour_date.slice(0, 7)}`;
    user.monthGrams.set(monthKey, (user.monthGrams.get(monthKey) ?? ZERO).plus(grams));
  }
  const trips = records.filter((r) => r.methodology.isTrip);
  if (trips.length > 0) {
    const fromMs = Math.min(...trips.map((r) => r.startMs));
    const toMs = Math.max(...trips.map((r) => r.endMs));
    const rows = await tx.query<{ account_id: string; start_at: Date | string; end_at: Date | string }>(
      `SELECT account_id, start_at, end_at FROM cp_carbon_records
        WHERE account_id = ANY($1::text[]) AND is_trip AND start_at < $3 AND end_at > $2`,
      [users, new Date(fromMs).toISOString(), new Date(toMs).toISOString()],
    );
    for (const r of rows)
      facts
        .get(r.account_id)!
        .trips.push({ startMs: new Date(r.start_at).getTime(), endMs: new Date(r.end_at).getTime() });
  }
  return facts;
}
