import { randomUUID } from 'node:crypto';
import { canonicalJson, digestOf, msOfUuidV7, uuidV7 } from '../../core-ledger';
import type { ServiceDatabase, SqlQueryable } from '../database';
import { lengthUnseen, preparedSql, ServiceRefusal } from '../database';
import { GroupCommit } from '../group-commit';
import { RiskCounters } from './counters';
import type {
  CounterCheck,
  CounterIncrement,
  Evaluation,
  FiredRule,
  Observed,
  RiskOutcome,
  Settlement,
} from './evaluate';
import { countedText, evaluate, incrementsOf, settle, staticOutcome } from './evaluate';
import type { CarbonRecordFacts, NormalizedFacts, PaymentFacts } from './facts';
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
  /**
   * How often, at most, a process reads what other processes decided and released since its last look (before its
   * next batch): the bound on how stale its counters can be about their traffic.
   */
  readonly syncIntervalMs: number;
}

export const DEFAULT_RISK_OPTIONS: RiskOptions = { dryRun: false, ruleSetRefreshMs: 5_000, syncIntervalMs: 200 };

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
  /**
   * Another process's decision is looked for this long behind the last look: a batch that took its recorded_at
   * before the look but committed after it is still seen. Longer than any batch's transaction.
   */
  syncOverlapMs: 5_000,
  /** After a batch met a review it had not read, batches read reviews first for this long. */
  readReviewsForMs: 5_000,
  /** Memory is pruned of buckets no window reaches at most this often. */
  pruneIntervalMs: 60_000,
  /** The decisions of one cp_risk_allows row were decided within this time of its first (it is found by that time). */
  allowRowSpanMs: 60_000,
} as const;

/**
 * An allowed decision with nothing to explain (no rule fired, no review), whose record its caller writes in the caller's own statement (see
 * {@link RiskService.recordingSql}): one commit for the event's first write and the decision that let it through.
 */
export interface DeferredDecision {
  readonly decisionId: string;
  /** Opaque to the caller. */
  readonly pending: unknown;
}

/** What became of a deferred decision's record: written, written released (a review had been opened elsewhere), or not. */
export type DeferredRecordOutcome = 'written' | 'conflict' | 'not_written';

/** The decision records of a statement's batch, as SQL: common table expressions and the parameters they use. */
export interface DecisionRecordingSql {
  /** `risk_input`, `risk_unread`, `risk_decided` (and, for risk control's own batch, `risk_opened`, `risk_used`). */
  readonly ctes: string;
  readonly params: readonly unknown[];
}

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
  counted: string | null;
  /** Rows written before `counted`. */
  reservations: CounterIncrement[] | null;
  decided_at: Date | string;
  released_at: Date | string | null;
}

/** A decision taken, on its way to the decision log with the next batch. */
interface PendingDecision {
  readonly decisionId: string;
  readonly kind: RiskKind;
  readonly subjectRef: string;
  readonly factsDigest: string;
  readonly facts: PaymentFacts | CarbonRecordFacts;
  readonly ruleSetVersion: number;
  readonly dryRun: boolean;
  readonly evaluation: Evaluation;
  readonly at: Date;
  readonly settled: SettledDecision;
}

/** What every decision record starts with. */
type DecisionIdentity = Pick<
  PendingDecision,
  'decisionId' | 'kind' | 'subjectRef' | 'factsDigest' | 'ruleSetVersion' | 'dryRun'
>;

/** A deferred plain allow as it waits for the caller's statement: its lean record, and how to take it back out. */
interface LeanDeferred extends DecisionIdentity {
  readonly reserved: boolean;
  /** Its reservations as text lines (countedText), '' when it reserved nothing. */
  readonly counted: string;
  readonly at: Date;
  readonly undo: () => void;
}

/** What assessDeferred answers: the decision, and either its record deferred to the caller or on its way. */
export type DeferredAssessment =
  | { readonly assessment: RiskAssessment; readonly deferred: DeferredDecision }
  | { readonly assessment: RiskAssessment; readonly recorded: Promise<void> };

/** A deferred assessment waiting for its turn (RiskService.takeAsked). */
interface AskedAssessment {
  readonly facts: PaymentFacts;
  readonly now: Date;
  readonly resolve: (assessed: DeferredAssessment) => void;
  readonly reject: (error: unknown) => void;
}

/** A decision taken in memory: its record to write, how to take it back out, and the caller's answer. */
interface TakenDecision {
  readonly pending: PendingDecision;
  readonly undo: () => void;
  readonly assessment: RiskAssessment;
}

/** How a batch settled one decision. */
interface SettledDecision {
  readonly outcome: RiskOutcome;
  readonly isoResponseCode: string | null;
  readonly primaryRule: string | null;
  readonly settlement: Settlement;
  readonly observed: readonly Observed[] | undefined;
  readonly reserved: boolean;
  readonly reviewId: string | null;
  readonly reviewOverride: 'approved' | 'rejected' | 'open' | null;
  /** Kept in full (facts, fired rules, checks and totals): anything fired, or it was not a plain allow. */
  readonly full: boolean;
  /** The approved review this decision uses up. */
  readonly consumes: string | null;
}

interface ReviewMatch {
  readonly review_id: string;
  readonly subject_ref: string;
  readonly facts_digest: string;
  readonly status: 'open' | 'approved' | 'rejected';
  readonly iso_response_code: string | null;
}

export class RiskService {
  private active: CompiledRuleSet = compileRuleSet(EMPTY_RULE_SET, 0);
  private loadedAtMs = Number.NEGATIVE_INFINITY;
  private loading: Promise<CompiledRuleSet> | undefined;
  private readonly versions = new Map<number, CompiledRuleSet>([[0, this.active]]);
  private readonly counters = new RiskCounters();
  /*
   * What is in the counters is known without a record per decision (which, held for the longest window, grew by
   * kilobytes per payment): this process's decisions are counted when taken; other processes' decisions when a look
   * reads them, and a look reads back only `syncOverlapMs` behind the previous one. So a decision is remembered only
   * while a look can read it again: by id, with the database's time of the write a look reads it by.
   */
  /** Other processes' decisions counted from a look (or at start) that a look may read again. */
  private readonly countedRecently = new Map<string, number>();
  /** Releases taken out of the counters, or found with nothing to take out, that a look may read again. */
  private readonly releasedRecently = new Map<string, number>();
  /** This process's releases and released records, until a look started after them gives them a database time. */
  private unstamped: string[] = [];
  /** This process's decisions taken back because their record's write failed: it may have landed all the same. */
  private readonly takenBack = new Map<string, number>();
  /** The first look counted every reservation recorded since this time (ms; the horizon). */
  private countedSinceMs = Number.POSITIVE_INFINITY;
  private readonly instanceId = randomUUID();
  /**
   * The last look at other processes' decisions, undefined before the first: the database's clock (text and ms), the
   * statement's snapshot and the processes it read.
   */
  private lastLook:
    | { readonly text: string; readonly ms: number; readonly snapshot: string; readonly others: readonly string[] }
    | undefined;
  private lastLookMs = Number.NEGATIVE_INFINITY;
  private lastPruneMs = Date.now();
  /** Reviews that decide an event when it comes again (open, rejected, approved and unused), by subject and facts. */
  private readonly reviews = new Map<string, ReviewMatch>();
  /**
   * Each change this process made to `reviews`, numbered: a look started before a change read the review as it was
   * before, and must not put that back (the next look reads the change).
   */
  private reviewChanges = 0;
  private readonly reviewChangedAt = new Map<string, number>();
  /** The `reviewChanges` each look in progress started at (looks may overlap: catchUp and a background look). */
  private readonly looksStartedAt: number[] = [];
  private looking: Promise<void> | undefined;
  /** Deferred assessments asked since the last turn of the event loop, taken together at the next (see assessDeferred). */
  private asked: AskedAssessment[] = [];
  /** Decision records, group-committed; a batch that fails is not run again (its decisions were answered). */
  private readonly records = new GroupCommit<PendingDecision, void>(
    async (batch) => {
      await this.record(batch);
      return batch.map(() => undefined);
    },
    { maxItems: RISK_LIMITS.maxBatchDecisions, maxInFlight: RISK_LIMITS.maxBatchesInFlight, maxAttempts: 1 },
  );

  constructor(
    private readonly database: ServiceDatabase,
    private readonly options: RiskOptions = DEFAULT_RISK_OPTIONS,
  ) {}

  async install(): Promise<void> {
    await this.database.exec(RISK_SQL);
    await this.refresh();
    await this.look();
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
    const { assessment, recorded } = await this.decide(kind, normalized.facts, facts, now);
    await recorded;
    return assessment;
  }

  /**
   * The decision at the next turn of the event loop (with every other asked meanwhile, in the order asked), its record
   * written later. An allow with nothing to explain (no rule fired, no review) is `deferred`: the caller writes it in
   * its own statement ({@link recordingSql}) and reports the outcome with {@link settleDeferred}. Any other decision is
   * recorded by this service's group commit; `recorded` settles when it is durable. The caller may do its own first
   * step meanwhile, but must not act on an allowed event before its record is durable. If
   * `recorded` rejects (the database failed, or a review of this very event was decided elsewhere a moment ago), the
   * reservation has been given back and the event must not proceed.
   */
  assessDeferred(kind: 'payment', facts: PaymentFacts, now: Date = new Date()): Promise<DeferredAssessment> {
    // Taken with the others asked in this turn of the event loop, one after another in one go: a decision reads the
    // rule set, the counters and the code that judges them, and taken alone between two payments' other work it found
    // them out of the processor's caches (a fourfold cost, measured; docs/performance.md, session 11).
    return new Promise<DeferredAssessment>((resolve, reject) => {
      this.asked.push({ facts, now, resolve, reject });
      if (this.asked.length === 1) setImmediate(() => void this.takeAsked());
    });
  }

  /** The deferred assessments asked so far, in the order asked. */
  private async takeAsked(): Promise<void> {
    let set: CompiledRuleSet;
    try {
      set = this.fresh() ?? (await this.refresh());
    } catch (error) {
      const failed = this.asked;
      this.asked = [];
      for (const a of failed) a.reject(error);
      return;
    }
    const batch = this.asked;
    this.asked = [];
    for (const a of batch) {
      try {
        a.resolve(this.assessOneDeferred(set, a.facts, a.now));
      } catch (error) {
        a.reject(error);
      }
    }
  }

  /** One deferred assessment, synchronously, on the rule set in hand. */
  private assessOneDeferred(set: CompiledRuleSet, facts: PaymentFacts, now: Date): DeferredAssessment {
    const normalized = normalizeFacts('payment', facts, now.getTime());
    if (!normalized.ok) throw new ServiceRefusal('validation_failed', `risk facts: ${normalized.error}`);
    const taken = this.takeWith(set, 'payment', normalized.facts, facts, now);
    const { settled } = taken.pending;
    // Deferred: an allow with nothing to explain (no rule fired, no review), which the lean record below holds whole.
    if (settled.outcome !== 'allow' || settled.full || settled.consumes !== null)
      return { assessment: taken.assessment, recorded: this.submit(taken.pending, taken.undo) };
    const { pending } = taken;
    // Only what its record and its undoing need: the evaluation, the facts and the settlement are left behind, so a
    // payment in flight holds a few hundred bytes of risk control, not its whole decision.
    const lean: LeanDeferred = {
      decisionId: pending.decisionId,
      kind: pending.kind,
      subjectRef: pending.subjectRef,
      factsDigest: pending.factsDigest,
      ruleSetVersion: pending.ruleSetVersion,
      dryRun: pending.dryRun,
      reserved: settled.reserved,
      counted: settled.reserved ? countedText(pending.evaluation.increments) : '',
      at: pending.at,
      undo: taken.undo,
    };
    return { assessment: taken.assessment, deferred: { decisionId: pending.decisionId, pending: lean } };
  }

  /**
   * The records of deferred decisions as common table expressions, their parameters numbered from `firstParam`. A
   * decision whose event has a review this process had not read is written released (its reservation given back)
   * and named in `risk_unread`: the caller's event must not go ahead.
   */
  recordingSql(decisions: readonly DeferredDecision[], firstParam: number): DecisionRecordingSql {
    const batch = decisions.map((d) => d.pending as LeanDeferred);
    const $ = (n: number): string => `$${firstParam + n - 1}`;
    let first = batch[0]!;
    let lastMs = first.at.getTime();
    for (const p of batch) {
      if (p.at.getTime() < first.at.getTime()) first = p;
      lastMs = Math.max(lastMs, p.at.getTime());
    }
    // One row of arrays (cp_risk_allows) when its decisions can be found by the time in their ids; else, and when a
    // decision met a review this process had not read, a row each in cp_risk_decisions.
    const inOneRow = lastMs - first.at.getTime() <= RISK_LIMITS.allowRowSpanMs;
    // Only plain allows come here: outcome, codes, facts, fired rules and checks are those of a plain allow.
    const ctes = `risk_input AS (
         SELECT * FROM unnest(${lengthUnseen(`${$(1)}::text[]`)}, ${$(2)}::text[], ${$(3)}::text[], ${$(4)}::text[], ${$(5)}::integer[],
                              ${$(6)}::boolean[], ${$(7)}::boolean[], ${$(8)}::text[], ${$(9)}::timestamptz[])
           AS i(decision_id, kind, subject_ref, facts_digest, rule_set_version, dry_run, reserved, counted,
                decided_at)),
       risk_unread AS (
         -- One index probe per decision (LATERAL … LIMIT 1): a join could be planned, once, as a scan of every review.
         SELECT i.decision_id FROM risk_input i CROSS JOIN LATERAL (
           SELECT 1 FROM cp_risk_reviews r
            WHERE r.subject_ref = i.subject_ref AND r.facts_digest = i.facts_digest
              AND (r.status IN ('open', 'rejected') OR (r.status = 'approved' AND r.consumed_by IS NULL))
            LIMIT 1) found),
       risk_in_one_row AS (SELECT ${$(11)}::boolean AND NOT EXISTS (SELECT 1 FROM risk_unread) AS yes),
       risk_allowed AS (
         INSERT INTO cp_risk_allows (first_decision_id, instance_id, recorded_at, decided_from, decision_ids, kinds,
           subject_refs, facts_digests, rule_set_versions, dry_runs, reserved, counted, decided_at)
         SELECT ${$(12)}::uuid, ${$(10)}::text, clock_timestamp(), ${$(13)}::timestamptz, ${$(1)}::uuid[], ${$(2)}::text[],
                ${$(3)}::text[], ${$(4)}::text[], ${$(5)}::integer[], ${$(6)}::boolean[], ${$(7)}::boolean[],
                ${$(8)}::text[], ${$(9)}::timestamptz[]
           FROM risk_in_one_row WHERE yes),
       risk_decided AS (
         INSERT INTO cp_risk_decisions (decision_id, kind, subject_ref, facts_digest, rule_set_version, dry_run, outcome,
           fired, checks, reserved, counted, decided_at, instance_id, recorded_at, released_at, release_recorded_at)
         SELECT i.decision_id, kind, subject_ref, facts_digest, rule_set_version, dry_run, 'allow', '[]', '[]', reserved,
                counted, decided_at, ${$(10)}::text, clock_timestamp(),
                CASE WHEN u.decision_id IS NOT NULL AND reserved THEN decided_at END,
                CASE WHEN u.decision_id IS NOT NULL AND reserved THEN clock_timestamp() END
           FROM risk_input i LEFT JOIN risk_unread u ON u.decision_id = i.decision_id
          WHERE NOT (SELECT yes FROM risk_in_one_row))`;
    return {
      ctes,
      params: [
        ...identityColumns(batch),
        batch.map((p) => p.reserved),
        batch.map((p) => p.counted),
        batch.map((p) => p.at.toISOString()),
        this.instanceId,
        inOneRow,
        first.decisionId,
        first.at.toISOString(),
      ],
    };
  }

  /** After the caller's statement: a decision not written, or written released, leaves the counters. */
  settleDeferred(decision: DeferredDecision, outcome: DeferredRecordOutcome): void {
    if (outcome === 'written') return;
    const lean = decision.pending as LeanDeferred;
    lean.undo();
    // Written released: the next looks read its release, already taken out.
    if (outcome === 'conflict') this.unstamped.push(lean.decisionId);
  }

  private async decide(
    kind: RiskKind,
    normalizedFacts: NormalizedFacts,
    facts: PaymentFacts | CarbonRecordFacts,
    now: Date,
  ): Promise<{ assessment: RiskAssessment; recorded: Promise<void> }> {
    const taken = await this.take(kind, normalizedFacts, facts, now);
    return { assessment: taken.assessment, recorded: this.submit(taken.pending, taken.undo) };
  }

  /** The decision, taken in memory: counters read and reserved in, reviews opened or used, nothing written yet. */
  private async take(
    kind: RiskKind,
    normalizedFacts: NormalizedFacts,
    facts: PaymentFacts | CarbonRecordFacts,
    now: Date,
  ): Promise<TakenDecision> {
    // The rule set in hand while it is fresh, without a turn of the event loop.
    const set = this.fresh() ?? (await this.refresh());
    return this.takeWith(set, kind, normalizedFacts, facts, now);
  }

  private takeWith(
    set: CompiledRuleSet,
    kind: RiskKind,
    normalizedFacts: NormalizedFacts,
    facts: PaymentFacts | CarbonRecordFacts,
    now: Date,
  ): TakenDecision {
    if (Date.now() - this.lastLookMs >= this.options.syncIntervalMs) void this.lookInBackground();
    if (Date.now() - this.lastPruneMs >= RISK_LIMITS.pruneIntervalMs) this.pruneCounters();
    const evaluation = evaluate(set, normalizedFacts, now.getTime(), this.options.dryRun);
    const decisionId = uuidV7(now.getTime());
    const subjectRef = normalizedFacts.subjectRef;
    const factsDigest = digestOf(facts);
    const reviewKey = `${subjectRef}\u0000${factsDigest}`;
    const review = this.reviews.get(reviewKey);
    const settled = this.settleOne(decisionId, evaluation, review);
    // Everything below is synchronous: no other decision of this process runs between reading the counters and
    // reserving in them.
    if (settled.reserved) this.counters.apply(evaluation.increments, 1);
    if (settled.consumes !== null) this.changeReview(reviewKey, undefined);
    if (settled.outcome === 'hold' && settled.reviewOverride === null)
      this.changeReview(reviewKey, {
        review_id: decisionId,
        subject_ref: subjectRef,
        facts_digest: factsDigest,
        status: 'open',
        iso_response_code: settled.isoResponseCode,
      });
    // The closure keeps what undoing needs, not the evaluation or the settlement (it waits as long as the record).
    const { increments } = evaluation;
    const { reserved, consumes } = settled;
    const undo = (): void => {
      if (reserved) this.counters.apply(increments, -1);
      // Nothing of it was written: the review it opened does not exist, the approval it used is still there.
      if (this.reviews.get(reviewKey)?.review_id === decisionId) this.changeReview(reviewKey, undefined);
      if (consumes !== null && review !== undefined && !this.reviews.has(reviewKey))
        this.changeReview(reviewKey, review);
      // What this process believed about the event's review may be wrong: read the reviews again.
      this.lastLookMs = Number.NEGATIVE_INFINITY;
    };
    return {
      pending: {
        decisionId,
        kind,
        subjectRef,
        factsDigest,
        facts,
        ruleSetVersion: set.version,
        dryRun: this.options.dryRun,
        evaluation,
        at: now,
        settled,
      },
      undo,
      assessment: {
        decisionId,
        outcome: settled.outcome,
        ...(settled.outcome === 'allow' ? {} : { code: RISK_REFUSAL_CODES[settled.outcome] }),
        ...(settled.isoResponseCode === null ? {} : { isoResponseCode: settled.isoResponseCode }),
        ...(settled.primaryRule === null ? {} : { primaryRuleId: settled.primaryRule }),
        firedRules: settled.settlement.fired,
        wouldOutcome: settled.settlement.wouldOutcome,
        ruleSetVersion: set.version,
        dryRun: this.options.dryRun || set.dryRun,
        ...(settled.reviewId === null ? {} : { reviewId: settled.reviewId }),
        ...(settled.reviewOverride === null ? {} : { reviewOverride: settled.reviewOverride }),
      },
    };
  }

  /** Records a decision with the next batch; if the batch fails, the decision is taken back out of memory. */
  private submit(pending: PendingDecision, undo: () => void): Promise<void> {
    const recorded = this.records.submit(pending).catch((error: unknown) => {
      undo();
      if (pending.settled.reserved) this.takenBack.set(pending.decisionId, Date.now());
      if ((error as { code?: unknown }).code === '40001')
        throw new ServiceRefusal('conflict', 'a review of this event was decided meanwhile: send it again');
      throw error;
    });
    // Answered by the caller, who awaits it: a failure is the caller's, never unhandled here.
    recorded.catch(() => undefined);
    return recorded;
  }

  /**
   * Gives back what an allowed decision added to the counters, once (the payment failed after it was allowed).
   * `nothing_reserved` for a decision that was refused or held; an unknown id is refused as `not_found`.
   */
  async release(
    decisionId: string,
    now: Date = new Date(),
  ): Promise<{ status: 'released' | 'already_released' | 'nothing_reserved' }> {
    const within = allowRowBounds(decisionId);
    // Its row in cp_risk_decisions, or a plain allow of cp_risk_allows copied there released (never both: a decision
    // is written to one of the two, and a copy is made once).
    const rows = await this.database.query<WrittenDecision>(
      `WITH updated AS (
         UPDATE cp_risk_decisions SET released_at = $2, release_recorded_at = clock_timestamp()
          WHERE decision_id = $1 AND reserved AND released_at IS NULL
         RETURNING decision_id, counted, reservations, instance_id, recorded_at),
       copied AS (
         INSERT INTO cp_risk_decisions (${DECISION_COLUMNS}, released_at, release_recorded_at)
         SELECT ${DECISION_COLUMNS}, $2, clock_timestamp() FROM cp_risk_allowed_decisions
          WHERE decided_from BETWEEN $3 AND $4 AND decision_id = $1 AND reserved
         ON CONFLICT (decision_id) DO NOTHING
         RETURNING decision_id, counted, reservations, instance_id, recorded_at)
       SELECT decision_id, counted, reservations, instance_id, ${msOf('recorded_at')} AS recorded_ms FROM updated
       UNION ALL
       SELECT decision_id, counted, reservations, instance_id, ${msOf('recorded_at')} AS recorded_ms FROM copied`,
      [decisionId, now.toISOString(), within?.from ?? null, within?.to ?? null],
    );
    if (rows.length === 1) {
      if (this.countedHere(rows[0]!)) this.takeOut(rows[0]!);
      this.unstamped.push(decisionId);
      return { status: 'released' };
    }
    const current = await this.database.query<{ reserved: boolean }>(
      `SELECT reserved FROM cp_risk_decisions WHERE decision_id = $1
       UNION ALL
       SELECT reserved FROM cp_risk_allowed_decisions WHERE decided_from BETWEEN $2 AND $3 AND decision_id = $1`,
      [decisionId, within?.from ?? null, within?.to ?? null],
    );
    if (!current[0]) throw new ServiceRefusal('not_found', `risk decision ${decisionId} does not exist`);
    return { status: current[0].reserved ? 'already_released' : 'nothing_reserved' };
  }

  /** Reads what other processes decided and released since the last look (done before a batch anyway, at most every `syncIntervalMs`). */
  async catchUp(): Promise<void> {
    await this.look();
  }

  /** This process's counters over every key starting with `prefix` (monitoring and tests). */
  counterTotals(prefix: string): Observed {
    return this.counters.sumOf(prefix);
  }

  // ---- explanation ----

  async decision(decisionId: string): Promise<DecisionRecord | undefined> {
    const within = allowRowBounds(decisionId);
    const read = `${DECISION_COLUMNS_READ}, released_at`;
    const rows = await this.database.query<DecisionRow>(
      `SELECT ${read} FROM cp_risk_decisions WHERE decision_id = $1
       UNION ALL
       SELECT ${read} FROM cp_risk_allowed_decisions a
        WHERE decided_from BETWEEN $2 AND $3 AND decision_id = $1
          AND NOT EXISTS (SELECT 1 FROM cp_risk_decisions d WHERE d.decision_id = $1)`,
      [decisionId, within?.from ?? null, within?.to ?? null],
    );
    if (rows.length > 1) throw new Error(`assertion: decision ${decisionId} is recorded twice`);
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
      canonicalJson(again.checks.map(checkRecordOf)) === canonicalJson(record.checks);
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

  /** Drops counter buckets no window can reach any more (and old taken-back decisions). Answers the buckets dropped. */
  pruneCounters(now: Date = new Date()): number {
    const horizonMs = now.getTime() - RISK_LIMITS.counterRetentionDays * 86_400_000;
    for (const [id, atMs] of this.takenBack) if (atMs < horizonMs) this.takenBack.delete(id);
    this.lastPruneMs = now.getTime();
    return this.counters.prune(
      Math.floor(horizonMs / 1000),
      Math.floor(now.getTime() / 86_400_000) - RISK_LIMITS.counterRetentionDays,
    );
  }

  // ---- helpers ----

  /** The outcome of one decision: a review of this very event decides it; else the rules on the counters. */
  private settleOne(decisionId: string, evaluation: Evaluation, review: ReviewMatch | undefined): SettledDecision {
    const override = review === undefined ? null : review.status === 'approved' ? 'approved' : review.status;
    // A static refusal is final: counters are read only when they can change the outcome (or a review approved it).
    const readCounters =
      evaluation.checks.length > 0 &&
      (override === 'approved' || (override === null && staticOutcome(evaluation) !== 'refuse'));
    const observed = readCounters
      ? evaluation.checks.map((check) => this.counters.total(check.key, check.since, check.until))
      : undefined;
    const settlement = settle(evaluation, observed);
    let outcome: RiskOutcome = settlement.outcome;
    let isoResponseCode = settlement.primary?.isoResponseCode ?? null;
    let primaryRule = settlement.primary?.ruleId ?? null;
    if (review !== undefined && override !== null) {
      outcome = override === 'approved' ? 'allow' : override === 'rejected' ? 'refuse' : 'hold';
      isoResponseCode = override === 'approved' ? null : review.iso_response_code;
      primaryRule = override === 'approved' ? null : `review:${review.review_id}`;
    }
    const reserved = outcome === 'allow' && evaluation.increments.length > 0;
    return {
      outcome,
      isoResponseCode,
      primaryRule,
      settlement,
      observed,
      reserved,
      reviewId: review !== undefined ? review.review_id : outcome === 'hold' ? decisionId : null,
      reviewOverride: override,
      full: outcome !== 'allow' || override !== null || settlement.fired.length > 0,
      consumes: override === 'approved' ? review!.review_id : null,
    };
  }

  /**
   * The batch's decision records, the reviews its holds open and the approvals it uses: one statement, which aborts
   * (40001) if an approval was used meanwhile or the event has a review this process had not read.
   */
  private async record(batch: readonly PendingDecision[]): Promise<void> {
    const { ctes, params } = this.recordingStatement(batch);
    const consumes = batch.filter((p) => p.settled.consumes !== null).length;
    await this.database.query(
      preparedSql(
        'cp_risk_record',
        `WITH ${ctes}
       SELECT CASE WHEN (SELECT count(*) FROM risk_used) < $${params.length + 1}::integer OR EXISTS (SELECT 1 FROM risk_unread)
                   THEN cp_risk_review_taken() END AS taken`,
      ),
      [...params, consumes],
    );
  }

  /**
   * Decision records as common table expressions. `risk_unread` names the decisions whose event has a review (open,
   * rejected, or approved and unused) other than the one the process knew.
   */
  private recordingStatement(batch: readonly PendingDecision[]): DecisionRecordingSql {
    const settled = batch.map((p) => p.settled);
    const full = (i: number): boolean => settled[i]!.full;
    const json = (value: unknown): string => JSON.stringify(value);
    const arrayLiteral = (values: readonly (string | number)[] | undefined): string | null =>
      values === undefined ? null : `{${values.join(',')}}`;
    const ctes = `risk_input AS (
         SELECT * FROM unnest(${lengthUnseen('$1::text[]')}, $2::text[], $3::text[], $4::text[], $5::integer[],
                              $6::boolean[], $7::text[], $8::text[], $9::text[], $10::text[],
                              $11::jsonb[], $12::jsonb[], $13::jsonb[], $14::text[], $15::text[],
                              $16::boolean[], $17::text[], $18::timestamptz[], $19::boolean[],
                              $20::text[], $21::text[])
           AS i(decision_id, kind, subject_ref, facts_digest, rule_set_version, dry_run, outcome, iso_response_code,
                primary_rule, review_override, facts, fired, checks, observed_counts, observed_amounts, reserved,
                counted, decided_at, opens_review, consumes_review, known_review)),
       risk_unread AS (
         SELECT i.decision_id FROM risk_input i CROSS JOIN LATERAL (
           SELECT 1 FROM cp_risk_reviews r
            WHERE r.subject_ref = i.subject_ref AND r.facts_digest = i.facts_digest
              AND r.review_id IS DISTINCT FROM i.known_review
              AND (r.status IN ('open', 'rejected') OR (r.status = 'approved' AND r.consumed_by IS NULL))
            LIMIT 1) found),
       risk_decided AS (
         INSERT INTO cp_risk_decisions (decision_id, kind, subject_ref, facts_digest, rule_set_version, dry_run, outcome,
           code, iso_response_code, primary_rule, review_override, facts, fired, checks, observed_counts, observed_amounts,
           reserved, counted, decided_at, instance_id, recorded_at)
         SELECT decision_id, kind, subject_ref, facts_digest, rule_set_version, dry_run, outcome,
                CASE outcome WHEN 'refuse' THEN 'risk_refused' WHEN 'hold' THEN 'risk_review' END, iso_response_code,
                primary_rule, review_override, facts, fired, checks, observed_counts::bigint[], observed_amounts::numeric[],
                reserved, counted, decided_at, $22::text, clock_timestamp()
           FROM risk_input),
       risk_opened AS (
         INSERT INTO cp_risk_reviews (review_id, kind, subject_ref, facts_digest, iso_response_code, status, created_at,
           recorded_at)
         SELECT decision_id, kind, subject_ref, facts_digest, iso_response_code, 'open', decided_at, clock_timestamp()
           FROM risk_input WHERE opens_review),
       risk_used AS (
         -- Each approval by its key (cp_risk_use_review), not a join whose plan could scan every review.
         SELECT u.review_id FROM risk_input i CROSS JOIN LATERAL cp_risk_use_review(i.consumes_review, i.decision_id)
           AS u(review_id)
          WHERE i.consumes_review IS NOT NULL)`;
    return {
      ctes,
      params: [
        ...identityColumns(batch),
        settled.map((d) => d.outcome),
        settled.map((d) => d.isoResponseCode),
        settled.map((d) => d.primaryRule),
        settled.map((d) => d.reviewOverride),
        batch.map((p, i) => (full(i) ? json(p.facts) : null)),
        batch.map((p, i) => (full(i) ? json(p.evaluation.fired) : '[]')),
        batch.map((p, i) => (full(i) ? json(p.evaluation.checks.map(checkRecordOf)) : '[]')),
        settled.map((d) => (d.full ? arrayLiteral(d.observed?.map((o) => o.count)) : null)),
        settled.map((d) => (d.full ? arrayLiteral(d.observed?.map((o) => o.amount)) : null)),
        settled.map((d) => d.reserved),
        batch.map((p, i) => (settled[i]!.reserved ? countedText(p.evaluation.increments) : '')),
        batch.map((p) => p.at.toISOString()),
        settled.map((d) => d.outcome === 'hold' && d.reviewOverride === null),
        settled.map((d) => d.consumes),
        settled.map((d) => (d.reviewOverride === null ? null : d.reviewId)),
        this.instanceId,
      ],
    };
  }

  /**
   * Brings the counters up to what the decision log holds: at start, every reservation not released within the
   * longest window; after that, what other processes recorded or released since the last look (with an overlap, so
   * a batch that committed late is not missed; reservations already counted are recognised by decision).
   */
  private async lookInBackground(): Promise<void> {
    this.looking ??= this.look()
      .catch(() => {
        // The next decision tries again; until then the counters are as stale as the last look.
      })
      .finally(() => {
        this.looking = undefined;
      });
    return this.looking;
  }

  private async look(): Promise<void> {
    const startedAt = this.reviewChanges;
    this.looksStartedAt.push(startedAt);
    try {
      await this.lookFrom(startedAt);
    } finally {
      this.looksStartedAt.splice(this.looksStartedAt.indexOf(startedAt), 1);
      const oldest = Math.min(this.reviewChanges, ...this.looksStartedAt);
      for (const [key, change] of this.reviewChangedAt) if (change <= oldest) this.reviewChangedAt.delete(key);
    }
  }

  /** One look; `reviewsFrom` is the count of this process's review changes when it started. */
  private async lookFrom(reviewsFrom: number): Promise<void> {
    const horizonMs = Date.now() - RISK_LIMITS.counterRetentionDays * 86_400_000;
    const horizon = new Date(horizonMs).toISOString();
    // Written before this look started: it reads them, or has read them, at a database time before its own.
    const stamping = this.unstamped;
    this.unstamped = [];
    // Each row: a decision to count ('counted'), a release ('release'), a release already in what start counted
    // ('released'), or the look's own time ('end').
    const lookRow = (from: string, part: string): string =>
      `'${part}' AS part, ${from}.decision_id, ${from}.counted, ${from}.reservations, ${from}.instance_id,
       ${from}.released_at,
       ${msOf(`${from}.recorded_at`)} AS recorded_ms, ${msOf(`${from}.release_recorded_at`)} AS released_ms,
       NULL AS looked_at, NULL AS snapshot, NULL::text[] AS others`;
    // The look's time: as text for the next look's parameters, in milliseconds (recorded_ms) for comparisons here;
    // the statement's snapshot, the one its rows were read in; and the processes whose decisions it read.
    const lookTime = (others: string): string =>
      `SELECT 'end', NULL, NULL, NULL, NULL, NULL, ${msOf('t')}, NULL, t::text, pg_current_snapshot()::text, ${others}
         FROM (SELECT clock_timestamp() AS t) c`;
    // Within the overlap, a row of a process the last look read, shown by its snapshot, was read then (a release has
    // a part of its own). A process registered since may have written before it registered: read all of its rows.
    const unseen = (row: string): string =>
      `(NOT o.known OR ${row}.recorded_xid IS NULL OR NOT pg_visible_in_snapshot(${row}.recorded_xid, $5::pg_snapshot))`;
    const reviewColumns = `review_id, subject_ref, facts_digest, status, iso_response_code,
      (status IN ('open', 'rejected') OR (status = 'approved' AND consumed_by IS NULL)) AS decides`;
    let rows: LookRow[];
    let reviews: (ReviewMatch & { decides: boolean })[];
    if (this.lastLook === undefined) {
      rows = await this.database.query<LookRow>(
        `WITH registered AS (
           INSERT INTO cp_risk_instances (instance_id, started_at, seen_at)
           VALUES ($2, clock_timestamp(), clock_timestamp()) ON CONFLICT (instance_id) DO NOTHING),
         -- Processes unseen beyond the longest window are read by nobody (see the next looks): forget them.
         forgotten AS (DELETE FROM cp_risk_instances WHERE seen_at < $1::timestamptz)
         -- Every other process's reservations, one index range each (this process counts its own as it takes them,
         -- some perhaps before its first look).
         SELECT ${lookRow('d', 'counted')}
           FROM cp_risk_instances o CROSS JOIN LATERAL (
             SELECT * FROM cp_risk_decisions
              WHERE instance_id = o.instance_id AND reserved AND recorded_at >= $1::timestamptz OFFSET 0) d
          WHERE o.instance_id <> $2 AND d.released_at IS NULL
         UNION ALL
         -- Their plain allows written a row of many (those released have their own row, above).
         SELECT ${lookRow('a', 'counted')}
           FROM cp_risk_instances o CROSS JOIN LATERAL (
             SELECT * FROM cp_risk_allowed_decisions
              WHERE instance_id = o.instance_id AND recorded_at >= $1::timestamptz AND reserved OFFSET 0) a
          WHERE o.instance_id <> $2 AND NOT EXISTS (SELECT 1 FROM cp_risk_decisions x WHERE x.decision_id = a.decision_id)
         UNION ALL
         -- Written before processes had ids.
         SELECT ${lookRow('d', 'counted')} FROM cp_risk_decisions d
          WHERE instance_id IS NULL AND reserved AND released_at IS NULL AND recorded_at >= $1::timestamptz
         UNION ALL
         SELECT ${lookRow('d', 'released')}
           FROM cp_risk_decisions d
          WHERE release_recorded_at >= clock_timestamp() - $3 * interval '1 millisecond' AND reserved
         UNION ALL ${lookTime('(SELECT array_agg(instance_id) FROM cp_risk_instances WHERE instance_id <> $2)')}`,
        [horizon, this.instanceId, RISK_LIMITS.syncOverlapMs],
      );
      reviews = await this.database.query(
        `SELECT ${reviewColumns} FROM cp_risk_reviews
          WHERE status IN ('open', 'rejected') OR (status = 'approved' AND consumed_by IS NULL)`,
      );
    } else {
      // Each other process the last look read is read from the last look less the overlap (even before its start: a
      // decision taken before it registered may commit late); one it did not (registered since) from the horizon, for
      // it may have recorded decisions before it registered. Releases are read from any process.
      [rows, reviews] = await Promise.all([
        this.database.query<LookRow>(
          // Planned at each look (five a second at most), not prepared: a plan kept from the first looks, on a near-empty
          // log, scanned the whole log for releases.
          `WITH seen AS (
               UPDATE cp_risk_instances SET seen_at = clock_timestamp() WHERE instance_id = $2),
             others AS (
               SELECT instance_id, known,
                      CASE WHEN known THEN $1::timestamptz - $3 * interval '1 millisecond' ELSE $4::timestamptz END
                        AS since
                 FROM cp_risk_instances CROSS JOIN LATERAL (SELECT instance_id = ANY($6::text[]) AS known) k
                WHERE instance_id <> $2 AND seen_at >= $4::timestamptz)
             SELECT ${lookRow('d', 'counted')}
               FROM others o CROSS JOIN LATERAL (
                 -- OFFSET 0 keeps the subquery apart: one index range per process, never a scan of the whole log.
                 SELECT * FROM cp_risk_decisions d
                  WHERE instance_id = o.instance_id AND reserved AND recorded_at >= o.since AND ${unseen('d')}
                 OFFSET 0) d
             UNION ALL
             SELECT ${lookRow('a', 'counted')}
               FROM others o CROSS JOIN LATERAL (
                 SELECT * FROM cp_risk_allowed_decisions a
                  WHERE instance_id = o.instance_id AND recorded_at >= o.since AND reserved AND ${unseen('a')}
                 OFFSET 0) a
              WHERE NOT EXISTS (SELECT 1 FROM cp_risk_decisions x WHERE x.decision_id = a.decision_id)
             UNION ALL
             SELECT ${lookRow('d', 'release')} FROM cp_risk_decisions d
              WHERE release_recorded_at >= $1::timestamptz - $3 * interval '1 millisecond' AND reserved
             UNION ALL ${lookTime('(SELECT array_agg(instance_id) FROM others)')}`,
          [
            this.lastLook.text,
            this.instanceId,
            RISK_LIMITS.syncOverlapMs,
            horizon,
            this.lastLook.snapshot,
            this.lastLook.others,
          ],
        ),
        this.database.query<ReviewMatch & { decides: boolean }>(
          `SELECT ${reviewColumns} FROM cp_risk_reviews
            WHERE recorded_at >= $1::timestamptz - $2 * interval '1 millisecond'`,
          [this.lastLook.text, RISK_LIMITS.syncOverlapMs],
        ),
      ]);
    }
    const end = rows.find((row) => row.part === 'end');
    if (end === undefined) throw new Error('assertion: a look reads its own time');
    const lookedAt = end.looked_at!;
    const lookedAtMs = end.recorded_ms!;
    // The next look reads back to this one's time less the overlap: what was written before that is never read again.
    const forgetBefore = lookedAtMs - RISK_LIMITS.syncOverlapMs - 1;
    if (this.lastLook === undefined) this.countedSinceMs = horizonMs;
    // Taken out already: this look may read them released.
    for (const id of stamping) if (!this.releasedRecently.has(id)) this.releasedRecently.set(id, lookedAtMs);
    for (const row of rows) {
      const id = row.decision_id;
      if (id === null) continue;
      if (row.part === 'released') {
        this.releasedRecently.set(id, row.released_ms!);
      } else if (row.part === 'release' || row.released_at !== null) {
        // A release, or a decision read again released: taken out once, if it was ever counted here.
        if (this.releasedRecently.has(id)) continue;
        if (row.part === 'release' ? this.countedHere(row) : this.countedRecently.has(id)) this.takeOut(row);
        this.releasedRecently.set(id, row.released_ms!);
      } else if (!this.countedRecently.has(id) && !this.releasedRecently.has(id)) {
        this.counters.apply(incrementsOf(row.counted, row.reservations), 1);
        // What no look reads again needs no remembering (at start: all but the last overlap's).
        if (row.recorded_ms! >= forgetBefore) this.countedRecently.set(id, row.recorded_ms!);
      }
    }
    for (const review of reviews) {
      const key = `${review.subject_ref}\u0000${review.facts_digest}`;
      // Changed here since this look began: what it read is older.
      if ((this.reviewChangedAt.get(key) ?? 0) > reviewsFrom) continue;
      const { decides, ...match } = review;
      if (decides) this.reviews.set(key, match);
      else if (this.reviews.get(key)?.review_id === review.review_id) this.reviews.delete(key);
    }
    this.lastLook = { text: lookedAt, ms: lookedAtMs, snapshot: end.snapshot!, others: end.others ?? [] };
    this.lastLookMs = Date.now();
    for (const [id, ms] of this.countedRecently) if (ms < forgetBefore) this.countedRecently.delete(id);
    for (const [id, ms] of this.releasedRecently) if (ms < forgetBefore) this.releasedRecently.delete(id);
  }

  /** A change this process made to what it knows of an event's review (undefined: no review decides it). */
  private changeReview(key: string, review: ReviewMatch | undefined): void {
    if (review === undefined) this.reviews.delete(key);
    else this.reviews.set(key, review);
    this.reviewChangedAt.set(key, ++this.reviewChanges);
  }

  /** Whether a decision read released was in this process's counters: its own (unless taken back), or read by a look. */
  private countedHere(row: WrittenDecision): boolean {
    if (row.instance_id === this.instanceId) return !this.takenBack.has(row.decision_id!);
    if (this.countedRecently.has(row.decision_id!)) return true;
    // Where a look reads again and not counted: not read yet (the look that reads it finds it released). Before:
    // read by a look, or at start if within the horizon.
    if (this.lastLook === undefined || row.recorded_ms! >= this.lastLook.ms - RISK_LIMITS.syncOverlapMs) return false;
    return row.recorded_ms! >= this.countedSinceMs;
  }

  /** Takes a released decision's reservation out of the counters (buckets pruned meanwhile have nothing to give). */
  private takeOut(row: WrittenDecision): void {
    this.counters.takeOut(incrementsOf(row.counted, row.reservations));
  }

  /** The active rule set while it is fresh; undefined once it is due to be read again. */
  private fresh(): CompiledRuleSet | undefined {
    return Date.now() - this.loadedAtMs < this.options.ruleSetRefreshMs ? this.active : undefined;
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
        `UPDATE cp_risk_reviews SET status = $2, reviewer = $3, reason = $4, decided_at = $5,
                recorded_at = clock_timestamp()
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
    const view = (await this.review(reviewId))!;
    const key = `${view.subjectRef}\u0000${(await this.decision(reviewId))!.factsDigest}`;
    this.changeReview(key, {
      review_id: reviewId,
      subject_ref: view.subjectRef,
      facts_digest: key.slice(key.indexOf('\u0000') + 1),
      status,
      iso_response_code: view.isoResponseCode,
    });
    return view;
  }
}

/** A decision record as the looks and releases read it. */
interface WrittenDecision {
  decision_id: string | null;
  counted: string | null;
  /** Rows written before `counted`. */
  reservations: CounterIncrement[] | null;
  instance_id: string | null;
  /** The database's time of the write (recorded_at), in ms since the epoch. */
  recorded_ms: number | null;
}

interface LookRow extends WrittenDecision {
  part: 'counted' | 'release' | 'released' | 'end';
  released_at: Date | string | null;
  released_ms: number | null;
  looked_at: string | null;
  snapshot: string | null;
  others: string[] | null;
}

/** The columns a decision is written with (cp_risk_decisions, cp_risk_allowed_decisions), bar its release. */
const DECISION_COLUMNS = decisionColumns('observed_counts, observed_amounts');

/** The same, with the observed totals as read (text: bigint and numeric arrays kept exact). */
const DECISION_COLUMNS_READ = decisionColumns(
  'observed_counts::text[] AS observed_counts, observed_amounts::text[] AS observed_amounts',
);

function decisionColumns(observed: string): string {
  return `decision_id, kind, subject_ref, facts_digest, rule_set_version, dry_run, outcome, code, iso_response_code,
    primary_rule, review_override, facts, fired, checks, ${observed}, reserved, reservations, counted, decided_at,
    instance_id, recorded_at`;
}

/** Where a plain allow's row of cp_risk_allows starts (decided_from), by the time in the decision's id. */
function allowRowBounds(decisionId: string): { from: string; to: string } | undefined {
  const ms = msOfUuidV7(decisionId);
  if (ms === undefined || ms < RISK_LIMITS.allowRowSpanMs) return undefined;
  return { from: new Date(ms - RISK_LIMITS.allowRowSpanMs).toISOString(), to: new Date(ms).toISOString() };
}

/** Milliseconds since the epoch of a timestamptz expression, as a double. */
function msOf(expression: string): string {
  return `(extract(epoch FROM ${expression}) * 1000)::float8`;
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
    reservations: incrementsOf(r.counted, r.reservations),
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

/** The first six columns of a decision record, for both its statements: id, kind, subject, facts digest, rule set. */
/** A check as its record keeps it: the millionths are the judge's shortcut, derived from the amounts beside them. */
function checkRecordOf(check: CounterCheck): Omit<CounterCheck, 'amountMicros' | 'maxAmountMicros'> {
  const { amountMicros: _amount, maxAmountMicros: _max, ...recorded } = check;
  return recorded;
}

function identityColumns(batch: readonly DecisionIdentity[]): unknown[][] {
  return [
    batch.map((p) => p.decisionId),
    batch.map((p) => p.kind),
    batch.map((p) => p.subjectRef),
    batch.map((p) => p.factsDigest),
    batch.map((p) => p.ruleSetVersion),
    batch.map((p) => p.dryRun),
  ];
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
