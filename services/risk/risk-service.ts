import { randomUUID } from 'node:crypto';
import type { ServiceDatabase, SqlQueryable } from '../database';
import { ServiceRefusal } from '../database';
import { canonicalJson, digestOf } from './canonical-json';
import type { CounterCheck, CounterIncrement, FiredRule, Observed, RiskOutcome } from './evaluate';
import { evaluate, settle } from './evaluate';
import type { CarbonRecordFacts, PaymentFacts } from './facts';
import { normalizeFacts } from './facts';
import type { RiskRefusalCode } from './response-codes';
import { RISK_REFUSAL_CODES } from './response-codes';
import type { CompiledRuleSet, RiskKind, RuleSet } from './rules';
import { compileRuleSet, EMPTY_RULE_SET, validateRuleSet } from './rules';
import { RISK_LOCK_CLASS, RISK_SQL } from './schema';

/**
 * Risk control (#14) for the payment and carbon paths: `assess` scores an event against the active rule set and
 * answers allow, refuse (with the ISO 8583 field 39 to give at the POS door) or hold for review; every decision is
 * stored with the rule-set version, the facts, the rules that fired and the counter totals they fired on. An allowed
 * payment that then fails gives its counters back with `release`. Rule sets are published as numbered versions,
 * every one kept and audited; operators approve or reject held events from the review queue.
 */

export interface RiskOptions {
  /** The whole engine scores and records what it would have done, and always allows. */
  readonly dryRun: boolean;
  /** How long a process keeps the active rule set before it looks for a newer version (other processes publish). */
  readonly ruleSetRefreshMs: number;
}

export const DEFAULT_RISK_OPTIONS: RiskOptions = { dryRun: false, ruleSetRefreshMs: 5_000 };

export const RISK_LIMITS = {
  /** Decisions per database call; what arrives while batches commit waits for the next one. */
  maxBatchDecisions: 256,
  /** Batches committing at once per process (one deciding while the other commits). */
  maxBatchesInFlight: 2,
  maxReviewPage: 500,
  maxReasonLength: 500,
  maxActorLength: 100,
  maxNoteLength: 500,
  /** Counters are kept this long past the longest window (a day), then pruned. */
  counterRetentionDays: 2,
} as const;

export interface RiskAssessment {
  readonly decisionId: string;
  readonly outcome: RiskOutcome;
  /** `risk_refused` or `risk_review`; absent when allowed. */
  readonly code?: RiskRefusalCode;
  /** Field 39 for the POS door; absent when allowed. */
  readonly isoResponseCode?: string;
  readonly primaryRuleId?: string;
  /** Every rule that fired, enforced or dry-run, in rule order. */
  readonly firedRules: readonly FiredRule[];
  /** What the rules alone would have answered (differs from `outcome` under dry-run or a review's decision). */
  readonly wouldOutcome: RiskOutcome;
  readonly ruleSetVersion: number;
  readonly dryRun: boolean;
  /** The review that holds (or decided) this event. */
  readonly reviewId?: string;
  readonly reviewOverride?: 'approved' | 'rejected' | 'open';
}

export interface DecisionRecord {
  readonly decisionId: string;
  readonly kind: RiskKind;
  readonly subjectRef: string;
  readonly factsDigest: string;
  readonly ruleSetVersion: number;
  /** The engine's dry-run flag when it decided (a rule set's own flag is in the stored set). */
  readonly engineDryRun: boolean;
  readonly outcome: RiskOutcome;
  readonly code: string | null;
  readonly isoResponseCode: string | null;
  readonly primaryRule: string | null;
  readonly reviewOverride: 'approved' | 'rejected' | 'open' | null;
  /** Null for a plain allow (nothing fired): such a decision keeps only its digest, version and reservations. */
  readonly facts: PaymentFacts | CarbonRecordFacts | null;
  /** Rules fired on the event alone. */
  readonly staticFired: readonly FiredRule[];
  readonly checks: readonly CounterCheck[];
  /** Counter totals before the event, one per check; null when the counters were not read. */
  readonly observed: readonly Observed[] | null;
  /** Every fired rule: the static ones and the counter checks judged on the stored totals. */
  readonly firedRules: readonly FiredRule[];
  readonly reserved: boolean;
  readonly reservations: readonly CounterIncrement[];
  readonly decidedAt: string;
  readonly releasedAt: string | null;
}

export interface Explanation {
  readonly record: DecisionRecord;
  readonly ruleSet: RuleSet;
  /** The decision made again from the stored facts, rule-set version and counter totals. */
  readonly reevaluated: { readonly outcome: RiskOutcome; readonly primaryRuleId: string | null };
  /** True when evaluating again gives the same static firings, counter checks, outcome and primary rule. */
  readonly consistent: boolean;
}

export interface ReviewView {
  readonly reviewId: string;
  readonly kind: RiskKind;
  readonly subjectRef: string;
  readonly status: 'open' | 'approved' | 'rejected';
  readonly createdAt: string;
  readonly ruleSetVersion: number;
  readonly isoResponseCode: string | null;
  readonly primaryRule: string | null;
  readonly firedRules: readonly FiredRule[];
  readonly facts: PaymentFacts | CarbonRecordFacts;
  readonly reviewer: string | null;
  readonly reason: string | null;
  readonly decidedAt: string | null;
  /** The decision that used an approval (the event let through once). */
  readonly consumedBy: string | null;
}

export interface StoredRuleSet {
  readonly version: number;
  readonly name: string;
  readonly digest: string;
  readonly author: string;
  readonly note: string | null;
  readonly publishedAt: string;
  readonly ruleSet: RuleSet;
}

export interface AuditEntry {
  readonly seq: number;
  readonly at: string;
  readonly actor: string;
  readonly action: 'publish_rule_set' | 'approve_review' | 'reject_review';
  readonly subject: string;
  readonly detail: Readonly<Record<string, unknown>>;
}

interface AssessRow {
  request: number;
  outcome: RiskOutcome;
  iso_response_code: string | null;
  primary_rule: string | null;
  observed_counts: string[] | null;
  observed_amounts: string[] | null;
  review_id: string | null;
  review_override: 'approved' | 'rejected' | 'open' | null;
}

interface DecisionRow {
  decision_id: string;
  kind: RiskKind;
  subject_ref: string;
  facts_digest: string;
  rule_set_version: number;
  dry_run: boolean;
  outcome: RiskOutcome;
  code: string | null;
  iso_response_code: string | null;
  primary_rule: string | null;
  review_override: DecisionRecord['reviewOverride'];
  facts: PaymentFacts | CarbonRecordFacts | null;
  fired: FiredRule[];
  checks: CounterCheck[];
  observed_counts: string[] | null;
  observed_amounts: string[] | null;
  reserved: boolean;
  reservations: CounterIncrement[];
  decided_at: Date | string;
  released_at: Date | string | null;
}

const ASSESS_SQL = `SELECT request, outcome, iso_response_code, primary_rule, observed_counts::text[] AS observed_counts,
  observed_amounts::text[] AS observed_amounts, review_id, review_override FROM cp_risk_assess($1::jsonb)`;

/** One decision waiting for the next batch. */
interface PendingDecision {
  readonly request: Readonly<Record<string, unknown>>;
  readonly resolve: (row: AssessRow) => void;
  readonly reject: (error: unknown) => void;
}

export class RiskService {
  private active: CompiledRuleSet = compileRuleSet(EMPTY_RULE_SET, 0);
  private loadedAtMs = Number.NEGATIVE_INFINITY;
  private loading: Promise<CompiledRuleSet> | undefined;
  private readonly versions = new Map<number, CompiledRuleSet>([[0, this.active]]);
  private readonly queue: PendingDecision[] = [];
  private batchesInFlight = 0;

  constructor(
    private readonly database: ServiceDatabase,
    private readonly options: RiskOptions = DEFAULT_RISK_OPTIONS,
  ) {}

  async install(): Promise<void> {
    await this.database.exec(RISK_SQL);
    await this.refresh();
  }

  // ---- rule sets ----

  /** Validates and publishes a rule set as the next version, which is then in force; every version is kept. */
  async publishRuleSet(
    ruleSet: unknown,
    author: string,
    now: Date = new Date(),
    note?: string,
  ): Promise<{ version: number; digest: string }> {
    const checked = validateRuleSet(ruleSet);
    if (!checked.ok)
      throw new ServiceRefusal('validation_failed', `rule set: ${checked.errors.slice(0, 10).join('; ')}`, {
        problems: checked.errors.length,
      });
    checkActor(author, 'author');
    if (note !== undefined && note.length > RISK_LIMITS.maxNoteLength)
      throw new ServiceRefusal('validation_failed', `note: at most ${RISK_LIMITS.maxNoteLength} characters`);
    const digest = digestOf(checked.ruleSet);
    const version = await this.database.transaction(async (tx) => {
      // Publishers queue on one lock, so versions are dense and in publication order.
      await tx.query('SELECT pg_advisory_xact_lock($1, 0)', [RISK_LOCK_CLASS]);
      const next =
        Number((await tx.query<{ v: number | null }>('SELECT max(version) AS v FROM cp_risk_rule_sets'))[0]?.v ?? 0) +
        1;
      await tx.query(
        `INSERT INTO cp_risk_rule_sets (version, name, digest, rule_set, author, note, published_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [next, checked.ruleSet.name, digest, canonicalJson(checked.ruleSet), author, note ?? null, now.toISOString()],
      );
      await audit(tx, now, author, 'publish_rule_set', `rule-set:${next}`, {
        version: next,
        digest,
        name: checked.ruleSet.name,
        rules: checked.ruleSet.rules.length,
        dryRun: checked.ruleSet.dryRun === true,
        ...(note === undefined ? {} : { note }),
      });
      return next;
    });
    await this.refresh();
    return { version, digest };
  }

  async ruleSet(version: number): Promise<StoredRuleSet | undefined> {
    const rows = await this.database.query<{
      version: number;
      name: string;
      digest: string;
      author: string;
      note: string | null;
      published_at: Date | string;
      rule_set: RuleSet;
    }>('SELECT * FROM cp_risk_rule_sets WHERE version = $1', [version]);
    const r = rows[0];
    if (!r) return undefined;
    return {
      version: r.version,
      name: r.name,
      digest: r.digest,
      author: r.author,
      note: r.note,
      publishedAt: new Date(r.published_at).toISOString(),
      ruleSet: r.rule_set,
    };
  }

  async listRuleSets(): Promise<Omit<StoredRuleSet, 'ruleSet'>[]> {
    const rows = await this.database.query<{
      version: number;
      name: string;
      digest: string;
      author: string;
      note: string | null;
      published_at: Date | string;
    }>('SELECT version, name, digest, author, note, published_at FROM cp_risk_rule_sets ORDER BY version');
    return rows.map((r) => ({
      version: r.version,
      name: r.name,
      digest: r.digest,
      author: r.author,
      note: r.note,
      publishedAt: new Date(r.published_at).toISOString(),
    }));
  }

  /** The rule set in force in this process. */
  get activeVersion(): number {
    return this.active.version;
  }

  /** Loads the newest published version (validated again: a stored set that no longer validates is a bug). */
  async refresh(): Promise<CompiledRuleSet> {
    this.loading ??= (async () => {
      try {
        const rows = await this.database.query<{ version: number }>(
          'SELECT max(version) AS version FROM cp_risk_rule_sets',
        );
        const version = Number(rows[0]?.version ?? 0);
        if (version !== this.active.version) this.active = await this.compiled(version);
        this.loadedAtMs = Date.now();
        return this.active;
      } finally {
        this.loading = undefined;
      }
    })();
    return this.loading;
  }

  // ---- the hot path ----

  /**
   * Scores one event and records the decision. Refused and held events move no counter; an allowed one counts at
   * once (so concurrent requests cannot pass a limit together) and is given back by {@link release} if it fails.
   * Invalid facts are the caller's bug, refused as `validation_failed`.
   */
  async assess(kind: 'payment', facts: PaymentFacts, now?: Date): Promise<RiskAssessment>;
  async assess(kind: 'carbon_record', facts: CarbonRecordFacts, now?: Date): Promise<RiskAssessment>;
  async assess(kind: RiskKind, facts: PaymentFacts | CarbonRecordFacts, now?: Date): Promise<RiskAssessment>;
  async assess(kind: RiskKind, facts: PaymentFacts | CarbonRecordFacts, now = new Date()): Promise<RiskAssessment> {
    if (kind !== 'payment' && kind !== 'carbon_record')
      throw new ServiceRefusal('validation_failed', 'kind: payment or carbon_record');
    const normalized = normalizeFacts(kind, facts, now.getTime());
    if (!normalized.ok) throw new ServiceRefusal('validation_failed', `risk facts: ${normalized.error}`);
    const set = await this.current();
    const evaluation = evaluate(set, normalized.facts, now.getTime(), this.options.dryRun);
    const decisionId = randomUUID();
    const row = await this.decide({
      decisionId,
      kind,
      subjectRef: normalized.facts.subjectRef,
      factsDigest: digestOf(facts),
      ruleSetVersion: set.version,
      dryRun: this.options.dryRun,
      at: now.toISOString(),
      facts,
      fired: evaluation.fired,
      checks: evaluation.checks,
      increments: evaluation.increments,
    });
    const observed = observedOf(row.observed_counts, row.observed_amounts);
    const settled = settle(evaluation, observed);
    // Assert twice: what PostgreSQL decided under the lock is what the rules decide on the totals it saw.
    if (
      row.review_override === null &&
      (settled.outcome !== row.outcome || (settled.primary?.ruleId ?? null) !== row.primary_rule)
    )
      throw new Error(
        `assertion: risk decision ${decisionId}: SQL said ${row.outcome}/${row.primary_rule}, rules say ${settled.outcome}/${settled.primary?.ruleId}`,
      );
    return {
      decisionId,
      outcome: row.outcome,
      ...(row.outcome === 'allow' ? {} : { code: RISK_REFUSAL_CODES[row.outcome] }),
      ...(row.iso_response_code === null ? {} : { isoResponseCode: row.iso_response_code }),
      ...(row.primary_rule === null ? {} : { primaryRuleId: row.primary_rule }),
      firedRules: settled.fired,
      wouldOutcome: settled.wouldOutcome,
      ruleSetVersion: set.version,
      dryRun: this.options.dryRun || set.dryRun,
      ...(row.review_id === null ? {} : { reviewId: row.review_id }),
      ...(row.review_override === null ? {} : { reviewOverride: row.review_override }),
    };
  }

  /**
   * Gives back what an allowed decision added to the counters, once (the payment failed after it was allowed).
   * `nothing_reserved` for a decision that was refused or held; an unknown id is refused as `not_found`.
   */
  async release(
    decisionId: string,
    now: Date = new Date(),
  ): Promise<{ status: 'released' | 'already_released' | 'nothing_reserved' }> {
    const rows = await this.database.query<{ status: string }>('SELECT cp_risk_release($1, $2) AS status', [
      decisionId,
      now.toISOString(),
    ]);
    const status = rows[0]?.status;
    if (status === 'not_found') throw new ServiceRefusal('not_found', `risk decision ${decisionId} does not exist`);
    if (status !== 'released' && status !== 'already_released' && status !== 'nothing_reserved')
      throw new Error(`assertion: cp_risk_release answered ${String(status)}`);
    return { status };
  }

  // ---- explanation ----

  async decision(decisionId: string): Promise<DecisionRecord | undefined> {
    const rows = await this.database.query<DecisionRow>(
      `SELECT *, observed_counts::text[] AS observed_counts, observed_amounts::text[] AS observed_amounts
         FROM cp_risk_decisions WHERE decision_id = $1`,
      [decisionId],
    );
    return rows[0] ? recordOf(rows[0]) : undefined;
  }

  /** A stored decision with its rule-set version, decided again from storage alone. */
  async explain(decisionId: string): Promise<Explanation> {
    const record = await this.decision(decisionId);
    if (!record) throw new ServiceRefusal('not_found', `risk decision ${decisionId} does not exist`);
    if (record.facts === null)
      throw new ServiceRefusal('not_found', `risk decision ${decisionId} was a plain allow: nothing fired to explain`);
    const set = await this.compiled(record.ruleSetVersion);
    const decidedAtMs = Date.parse(record.decidedAt);
    const normalized = normalizeFacts(record.kind, record.facts, decidedAtMs);
    if (!normalized.ok)
      throw new Error(`assertion: stored facts of ${decisionId} no longer parse: ${normalized.error}`);
    const again = evaluate(set, normalized.facts, decidedAtMs, record.engineDryRun);
    const settled = settle(again, record.observed ?? undefined);
    const sameInputs =
      canonicalJson(again.fired) === canonicalJson(record.staticFired) &&
      canonicalJson(again.checks) === canonicalJson(record.checks);
    const sameOutcome =
      record.reviewOverride !== null ||
      (settled.outcome === record.outcome && (settled.primary?.ruleId ?? null) === record.primaryRule);
    return {
      record,
      ruleSet: set.ruleSet,
      reevaluated: { outcome: settled.outcome, primaryRuleId: settled.primary?.ruleId ?? null },
      consistent: sameInputs && sameOutcome,
    };
  }

  // ---- the review queue ----

  /** Reviews, oldest first; `after` is the cursor of the previous page. */
  async listReviews(
    query: { status?: 'open' | 'approved' | 'rejected'; limit?: number; after?: string } = {},
  ): Promise<{ reviews: ReviewView[]; next: string | null }> {
    const limit = query.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > RISK_LIMITS.maxReviewPage)
      throw new ServiceRefusal('validation_failed', `limit: 1..${RISK_LIMITS.maxReviewPage}`);
    let after: { at: string; id: string } | undefined;
    if (query.after !== undefined) {
      const [at, id] = Buffer.from(query.after, 'base64url').toString('utf8').split('|');
      if (at === undefined || id === undefined || !Number.isFinite(Date.parse(at)))
        throw new ServiceRefusal('validation_failed', 'after: not a cursor of this query');
      after = { at, id };
    }
    const rows = await this.database.query<ReviewRow>(
      `${REVIEW_SELECT} WHERE r.status = $1 AND ($2::timestamptz IS NULL OR (r.created_at, r.review_id) > ($2, $3))
        ORDER BY r.created_at, r.review_id LIMIT $4`,
      [query.status ?? 'open', after?.at ?? null, after?.id ?? '', limit + 1],
    );
    const page = rows.slice(0, limit).map(reviewOf);
    const last = page[page.length - 1];
    return {
      reviews: page,
      next:
        rows.length > limit && last
          ? Buffer.from(`${last.createdAt}|${last.reviewId}`, 'utf8').toString('base64url')
          : null,
    };
  }

  async review(reviewId: string): Promise<ReviewView | undefined> {
    const rows = await this.database.query<ReviewRow>(`${REVIEW_SELECT} WHERE r.review_id = $1`, [reviewId]);
    return rows[0] ? reviewOf(rows[0]) : undefined;
  }

  /** Approves a held event: the same event (same subject and facts) is let through once when it comes again. */
  async approveReview(reviewId: string, reviewer: string, reason: string, now: Date = new Date()): Promise<ReviewView> {
    return this.decideReview(reviewId, 'approved', reviewer, reason, now);
  }

  /** Rejects a held event: the same event coming again is refused (with its rule's field 39), without a new review. */
  async rejectReview(reviewId: string, reviewer: string, reason: string, now: Date = new Date()): Promise<ReviewView> {
    return this.decideReview(reviewId, 'rejected', reviewer, reason, now);
  }

  async auditTrail(limit = 100): Promise<AuditEntry[]> {
    const rows = await this.database.query<{
      seq: string;
      at: Date | string;
      actor: string;
      action: AuditEntry['action'];
      subject: string;
      detail: Record<string, unknown>;
    }>('SELECT * FROM cp_risk_audit ORDER BY seq DESC LIMIT $1', [Math.max(1, Math.min(limit, 1_000))]);
    return rows.map((r) => ({
      seq: Number(r.seq),
      at: new Date(r.at).toISOString(),
      actor: r.actor,
      action: r.action,
      subject: r.subject,
      detail: r.detail,
    }));
  }

  /** Deletes counter buckets no window can reach any more (run on a schedule). */
  async pruneCounters(now: Date = new Date()): Promise<number> {
    const seconds = Math.floor(now.getTime() / 1000);
    const keepDays = RISK_LIMITS.counterRetentionDays;
    const rows = await this.database.query<{ n: string }>(
      `WITH gone AS (DELETE FROM cp_risk_counters WHERE
          (counter_key LIKE '%|m1' AND bucket < $1) OR (counter_key LIKE '%|m15' AND bucket < $2)
          OR (counter_key LIKE '%|d' AND bucket < $3) RETURNING 1)
       SELECT count(*)::text AS n FROM gone`,
      [
        Math.floor((seconds - keepDays * 86_400) / 60),
        Math.floor((seconds - keepDays * 86_400) / 900),
        Math.floor(seconds / 86_400) - keepDays,
      ],
    );
    return Number(rows[0]?.n ?? 0);
  }

  // ---- helpers ----

  /** Queues one decision for the next batch (TigerBeetle style: take what has arrived, commit it together). */
  private decide(request: Readonly<Record<string, unknown>>): Promise<AssessRow> {
    return new Promise<AssessRow>((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.queue.length > 0 && this.batchesInFlight < RISK_LIMITS.maxBatchesInFlight) {
      const batch = this.queue.splice(0, RISK_LIMITS.maxBatchDecisions);
      this.batchesInFlight += 1;
      void this.runBatch(batch).finally(() => {
        this.batchesInFlight -= 1;
        this.pump();
      });
    }
  }

  private async runBatch(batch: readonly PendingDecision[]): Promise<void> {
    try {
      const rows = await this.database.query<AssessRow>(ASSESS_SQL, [JSON.stringify(batch.map((p) => p.request))]);
      if (rows.length !== batch.length) throw new Error('assertion: cp_risk_assess answers one row per request');
      for (const row of rows) batch[row.request - 1]!.resolve(row);
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    }
  }

  private async current(): Promise<CompiledRuleSet> {
    if (Date.now() - this.loadedAtMs < this.options.ruleSetRefreshMs) return this.active;
    return this.refresh();
  }

  private async compiled(version: number): Promise<CompiledRuleSet> {
    const known = this.versions.get(version);
    if (known) return known;
    const stored = await this.ruleSet(version);
    if (!stored) throw new Error(`assertion: rule set version ${version} is not stored`);
    const checked = validateRuleSet(stored.ruleSet);
    if (!checked.ok)
      throw new Error(`assertion: stored rule set ${version} does not validate: ${checked.errors.join('; ')}`);
    const compiled = compileRuleSet(checked.ruleSet, version);
    if (compiled.digest !== stored.digest) throw new Error(`assertion: rule set ${version} does not match its digest`);
    this.versions.set(version, compiled);
    return compiled;
  }

  private async decideReview(
    reviewId: string,
    status: 'approved' | 'rejected',
    reviewer: string,
    reason: string,
    now: Date,
  ): Promise<ReviewView> {
    checkActor(reviewer, 'reviewer');
    if (reason.trim().length === 0 || reason.length > RISK_LIMITS.maxReasonLength)
      throw new ServiceRefusal('validation_failed', `reason: 1..${RISK_LIMITS.maxReasonLength} characters`);
    await this.database.transaction(async (tx) => {
      const rows = await tx.query<{ review_id: string }>(
        `UPDATE cp_risk_reviews SET status = $2, reviewer = $3, reason = $4, decided_at = $5
          WHERE review_id = $1 AND status = 'open' RETURNING review_id`,
        [reviewId, status, reviewer, reason, now.toISOString()],
      );
      if (rows.length === 0) {
        const current = await tx.query<{ status: string }>('SELECT status FROM cp_risk_reviews WHERE review_id = $1', [
          reviewId,
        ]);
        if (!current[0]) throw new ServiceRefusal('not_found', `review ${reviewId} does not exist`);
        throw new ServiceRefusal('conflict', `review ${reviewId} is already ${current[0].status}`);
      }
      await audit(tx, now, reviewer, status === 'approved' ? 'approve_review' : 'reject_review', `review:${reviewId}`, {
        reason,
      });
    });
    return (await this.review(reviewId))!;
  }
}

interface ReviewRow {
  review_id: string;
  kind: RiskKind;
  subject_ref: string;
  status: ReviewView['status'];
  created_at: Date | string;
  rule_set_version: number;
  iso_response_code: string | null;
  primary_rule: string | null;
  facts: PaymentFacts | CarbonRecordFacts;
  fired: FiredRule[];
  checks: CounterCheck[];
  observed_counts: string[] | null;
  observed_amounts: string[] | null;
  reviewer: string | null;
  reason: string | null;
  decided_at: Date | string | null;
  consumed_by: string | null;
}

const REVIEW_SELECT = `SELECT r.review_id, r.kind, r.subject_ref, r.status, r.created_at, d.rule_set_version,
    r.iso_response_code, d.primary_rule, d.facts, d.fired, d.checks, d.observed_counts::text[] AS observed_counts,
    d.observed_amounts::text[] AS observed_amounts, r.reviewer, r.reason, r.decided_at, r.consumed_by
  FROM cp_risk_reviews r JOIN cp_risk_decisions d ON d.decision_id = r.review_id`;

function reviewOf(r: ReviewRow): ReviewView {
  return {
    reviewId: r.review_id,
    kind: r.kind,
    subjectRef: r.subject_ref,
    status: r.status,
    createdAt: new Date(r.created_at).toISOString(),
    ruleSetVersion: r.rule_set_version,
    isoResponseCode: r.iso_response_code,
    primaryRule: r.primary_rule,
    firedRules: allFired(r.fired, r.checks, observedOf(r.observed_counts, r.observed_amounts)),
    facts: r.facts,
    reviewer: r.reviewer,
    reason: r.reason,
    decidedAt: r.decided_at === null ? null : new Date(r.decided_at).toISOString(),
    consumedBy: r.consumed_by,
  };
}

function recordOf(r: DecisionRow): DecisionRecord {
  const observed = observedOf(r.observed_counts, r.observed_amounts) ?? null;
  return {
    decisionId: r.decision_id,
    kind: r.kind,
    subjectRef: r.subject_ref,
    factsDigest: r.facts_digest,
    ruleSetVersion: r.rule_set_version,
    engineDryRun: r.dry_run,
    outcome: r.outcome,
    code: r.code,
    isoResponseCode: r.iso_response_code,
    primaryRule: r.primary_rule,
    reviewOverride: r.review_override,
    facts: r.facts,
    staticFired: r.fired,
    checks: r.checks,
    observed,
    firedRules: allFired(r.fired, r.checks, observed ?? undefined),
    reserved: r.reserved,
    reservations: r.reservations,
    decidedAt: new Date(r.decided_at).toISOString(),
    releasedAt: r.released_at === null ? null : new Date(r.released_at).toISOString(),
  };
}

function allFired(
  fired: readonly FiredRule[],
  checks: readonly CounterCheck[],
  observed: readonly Observed[] | undefined,
): FiredRule[] {
  return [...settle({ fired, checks, increments: [] }, observed).fired];
}

function observedOf(counts: readonly string[] | null, amounts: readonly string[] | null): Observed[] | undefined {
  if (counts === null || amounts === null) return undefined;
  return counts.map((c, i) => ({ count: Number(c), amount: String(amounts[i]) }));
}

function checkActor(actor: string, field: string): void {
  if (typeof actor !== 'string' || actor.trim().length === 0 || actor.length > RISK_LIMITS.maxActorLength)
    throw new ServiceRefusal('validation_failed', `${field}: 1..${RISK_LIMITS.maxActorLength} characters`);
}

async function audit(
  tx: SqlQueryable,
  now: Date,
  actor: string,
  action: AuditEntry['action'],
  subject: string,
  detail: Record<string, unknown>,
): Promise<void> {
  await tx.query('INSERT INTO cp_risk_audit (at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)', [
    now.toISOString(),
    actor,
    action,
    subject,
    JSON.stringify(detail),
  ]);
}
