import fc from 'fast-check';
import type { Amount, QuantifiedRecord, RecordDecision } from '../../core-ledger';
import { BEHAVIOUR_CAPS, decideRecords, methodologyFor, Money, quantify } from '../../core-ledger';

/**
 * Must-show 3 of #7: duplicate and overlapping submissions are counted once, whatever their order and however they
 * are split into batches. A model of the rule is checked against the decider over generated submissions.
 */

const NOW_MS = Date.parse('2026-11-23T04:00:00.000Z');
const DAY_START_MS = Date.parse('2026-11-22T16:00:00.000Z'); // 00:00 on the 23rd in Shanghai
const USERS = ['8624794000000001', '8624794000000002'];

interface Submission {
  readonly user: number;
  readonly externalId: string;
  readonly behaviour: 'bus' | 'metro' | 'paperless_bill';
  readonly startMinute: number;
  readonly minutes: number;
}

const submission = fc.record<Submission>({
  user: fc.integer({ min: 0, max: 1 }),
  externalId: fc.constantFrom('e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e7', 'e8'),
  behaviour: fc.constantFrom('bus', 'metro', 'paperless_bill'),
  startMinute: fc.integer({ min: 0, max: 600 }),
  minutes: fc.integer({ min: 1, max: 90 }),
});

function quantified(s: Submission, index: number): QuantifiedRecord {
  const start = DAY_START_MS + s.startMinute * 60_000;
  const unit = methodologyFor(s.behaviour, '2026-11-23')!.unit;
  const q = quantify(
    {
      externalId: s.externalId,
      accountNumber: 'n/a',
      behaviour: s.behaviour,
      quantity: '1',
      unit,
      startAt: new Date(start).toISOString(),
      endAt: new Date(start + s.minutes * 60_000).toISOString(),
    },
    index,
    USERS[s.user]!,
    NOW_MS,
  );
  if (!q.ok) throw new Error(`generator made an invalid record: ${q.reason}`);
  return q.record;
}

/** Applies batches one after another, carrying the committed facts forward as the store would. */
function runBatches(batches: readonly QuantifiedRecord[][]): { record: QuantifiedRecord; decision: RecordDecision }[] {
  const seen = new Set<string>();
  const committed: { record: QuantifiedRecord; grams: Amount }[] = [];
  const out: { record: QuantifiedRecord; decision: RecordDecision }[] = [];
  for (const batch of batches) {
    const facts = new Map(
      USERS.map((user) => {
        const mine = committed.filter((c) => c.record.accountId === user);
        const dayGrams = new Map<string, Amount>();
        const monthGrams = new Map<string, Amount>();
        for (const c of mine) {
          const d = `${c.record.behaviour}|${c.record.businessDate}`;
          const m = `${c.record.behaviour}|${c.record.month}`;
          dayGrams.set(d, (dayGrams.get(d) ?? new Money(0)).plus(c.grams));
          monthGrams.set(m, (monthGrams.get(m) ?? new Money(0)).plus(c.grams));
        }
        const trips = mine
          .filter((c) => c.record.methodology.isTrip)
          .map((c) => ({ startMs: c.record.startMs, endMs: c.record.endMs }));
        return [user, { dayGrams, monthGrams, trips }];
      }),
    );
    const decisions = decideRecords(batch, facts, seen, '1');
    batch.forEach((record, i) => {
      const decision = decisions[i]!;
      out.push({ record, decision });
      seen.add(record.externalId);
      if (decision.status === 'accepted') committed.push({ record, grams: decision.grams });
    });
  }
  return out;
}

test('an external id counts once; overlapping trips of one user count once; caps are never passed', () => {
  fc.assert(
    fc.property(
      fc.array(submission, { minLength: 1, maxLength: 30 }),
      fc.integer({ min: 1, max: 5 }),
      (subs, batchSize) => {
        const records = subs.map(quantified);
        const batches: QuantifiedRecord[][] = [];
        for (let i = 0; i < records.length; i += batchSize) batches.push(records.slice(i, i + batchSize));
        const decided = runBatches(batches);
        const accepted = decided.filter((d) => d.decision.status === 'accepted');

        // 1. No external id is accepted twice, and every repeat is called a duplicate.
        const ids = accepted.map((a) => a.record.externalId);
        expect(new Set(ids).size).toBe(ids.length);
        const firstIndex = new Map<string, number>();
        decided.forEach((d, i) => {
          if (!firstIndex.has(d.record.externalId)) firstIndex.set(d.record.externalId, i);
          else expect(d.decision).toEqual({ status: 'duplicate', reason: 'same_external_id' });
        });

        // 2. No two accepted trips of one user overlap in time.
        for (const a of accepted) {
          for (const b of accepted) {
            if (a === b || a.record.accountId !== b.record.accountId) continue;
            if (!a.record.methodology.isTrip || !b.record.methodology.isTrip) continue;
            expect(a.record.startMs < b.record.endMs && b.record.startMs < a.record.endMs).toBe(false);
          }
        }

        // 3. Per user, behaviour and day, counted grams stay within the cap.
        const perDay = new Map<string, Amount>();
        for (const a of accepted) {
          if (a.decision.status !== 'accepted') continue;
          const key = `${a.record.accountId}|${a.record.behaviour}|${a.record.businessDate}`;
          perDay.set(key, (perDay.get(key) ?? new Money(0)).plus(a.decision.grams));
        }
        for (const [key, grams] of perDay) {
          const behaviour = key.split('|')[1]!;
          expect(grams.lte(BEHAVIOUR_CAPS[behaviour]!.dailyGrams)).toBe(true);
        }

        // 4. Splitting into batches does not change what counts: one big batch decides the same.
        const together = runBatches([records]).map((d) => d.decision.status);
        expect(decided.map((d) => d.decision.status)).toEqual(together);
      },
    ),
    { numRuns: 300 },
  );
});
