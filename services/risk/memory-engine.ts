import { RiskCounters } from './counters';
import type { CounterIncrement, Observed } from './evaluate';
import { evaluate, needsCounters, settle } from './evaluate';
import type { CarbonRecordFacts, PaymentFacts } from './facts';
import { normalizeFacts } from './facts';
import { RISK_REFUSAL_CODES } from './response-codes';
import type { RiskAssessment } from './risk-service';
import type { CompiledRuleSet, RiskKind } from './rules';

/**
 * The engine in one process's memory, for simulations and tests of the rules themselves (a generated day of
 * traffic, properties): the same `evaluate` and `settle` as {@link RiskService}, counters in a map, nothing stored
 * and no review queue. Not for production: counters here are neither shared between processes nor durable.
 */
export class InMemoryRiskEngine {
  private readonly counters = new RiskCounters();
  private readonly reservations = new Map<string, readonly CounterIncrement[]>();
  private sequence = 0;

  constructor(
    private readonly ruleSet: CompiledRuleSet,
    private readonly options: { readonly dryRun: boolean } = { dryRun: false },
  ) {}

  assess(kind: RiskKind, facts: PaymentFacts | CarbonRecordFacts, now: Date): RiskAssessment {
    const normalized = normalizeFacts(kind, facts, now.getTime());
    if (!normalized.ok) throw new RangeError(`risk facts: ${normalized.error}`);
    const evaluation = evaluate(this.ruleSet, normalized.facts, now.getTime(), this.options.dryRun);
    const observed = needsCounters(evaluation)
      ? evaluation.checks.map((c): Observed => this.counters.total(c.key, c.since, c.until))
      : undefined;
    const settled = settle(evaluation, observed);
    this.sequence += 1;
    const decisionId = `memory-${this.sequence}`;
    if (settled.reserve) {
      this.counters.apply(evaluation.increments, 1);
      this.reservations.set(decisionId, evaluation.increments);
    }
    return {
      decisionId,
      outcome: settled.outcome,
      ...(settled.outcome === 'allow' ? {} : { code: RISK_REFUSAL_CODES[settled.outcome] }),
      ...(settled.primary
        ? { isoResponseCode: settled.primary.isoResponseCode, primaryRuleId: settled.primary.ruleId }
        : {}),
      firedRules: settled.fired,
      wouldOutcome: settled.wouldOutcome,
      ruleSetVersion: this.ruleSet.version,
      dryRun: this.options.dryRun || this.ruleSet.dryRun,
    };
  }

  /** Gives back an allowed decision's counters, once. */
  release(decisionId: string): boolean {
    const increments = this.reservations.get(decisionId);
    if (!increments) return false;
    this.reservations.delete(decisionId);
    this.counters.apply(increments, -1);
    return true;
  }

  /** A counter's totals over buckets since..until (inclusive). */
  total(key: string, since: number, until: number): Observed {
    return this.counters.total(key, since, until);
  }
}
