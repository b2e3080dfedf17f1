/**
 * The risk engine's tables: rule-set versions, the decision log (one row per decision, written by group commit: one
 * statement per batch), the review queue and the audit of rule and review changes. Decisions are taken in the
 * process (services/risk/risk-service.ts) on counters held in memory and filled from this log.
 */

/** Advisory-lock class of risk counters (the two-int form; the read models use 7316282, the event store 7316281). */
export const RISK_LOCK_CLASS = 7316283;

export const RISK_SQL = `
CREATE TABLE IF NOT EXISTS cp_risk_rule_sets (
  version integer PRIMARY KEY CHECK (version > 0),
  name text NOT NULL,
  digest text NOT NULL,
  rule_set jsonb NOT NULL,
  author text NOT NULL,
  note text,
  published_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS cp_risk_counters (
  counter_key text NOT NULL,
  bucket bigint NOT NULL,
  count bigint NOT NULL,
  amount numeric NOT NULL,
  PRIMARY KEY (counter_key, bucket)
);
CREATE TABLE IF NOT EXISTS cp_risk_decisions (
  decision_id text PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('payment', 'carbon_record')),
  subject_ref text NOT NULL,
  facts_digest text NOT NULL,
  rule_set_version integer NOT NULL,
  dry_run boolean NOT NULL,
  outcome text NOT NULL CHECK (outcome IN ('allow', 'refuse', 'hold')),
  code text,
  iso_response_code text,
  primary_rule text,
  review_override text,
  -- Facts, fired rules and counter checks are kept in full when anything fired (refused, held, dry-run or approved);
  -- a plain allow keeps its digest, version and reservations only: nothing fired, nothing to explain.
  facts jsonb,
  fired jsonb NOT NULL,
  checks jsonb NOT NULL,
  observed_counts bigint[],
  observed_amounts numeric[],
  reserved boolean NOT NULL,
  reservations jsonb NOT NULL,
  decided_at timestamptz NOT NULL,
  released_at timestamptz
);
-- Installed by an earlier snapshot (fb39645) with facts NOT NULL: plain allows now store none.
ALTER TABLE cp_risk_decisions ALTER COLUMN facts DROP NOT NULL;
DROP FUNCTION IF EXISTS cp_risk_assess(text, text, text, text, integer, boolean, timestamptz, jsonb, jsonb, jsonb, jsonb,
  integer[], text[], text[], text[], text[], bigint[], bigint[], bigint[], numeric[], numeric, boolean[], integer[],
  text[], text[], text[], text[], bigint[], bigint[], numeric[]);
CREATE INDEX IF NOT EXISTS cp_risk_decisions_not_allowed ON cp_risk_decisions (decided_at) WHERE outcome <> 'allow';
-- No query reads decisions by subject (reviews have their own index): one index fewer to write per decision.
DROP INDEX IF EXISTS cp_risk_decisions_subject;
CREATE TABLE IF NOT EXISTS cp_risk_reviews (
  review_id text PRIMARY KEY REFERENCES cp_risk_decisions (decision_id),
  kind text NOT NULL,
  subject_ref text NOT NULL,
  facts_digest text NOT NULL,
  iso_response_code text,
  status text NOT NULL CHECK (status IN ('open', 'approved', 'rejected')),
  reviewer text,
  reason text,
  created_at timestamptz NOT NULL,
  decided_at timestamptz,
  consumed_by text
);
CREATE INDEX IF NOT EXISTS cp_risk_reviews_subject ON cp_risk_reviews (subject_ref, facts_digest);
CREATE INDEX IF NOT EXISTS cp_risk_reviews_queue ON cp_risk_reviews (status, created_at, review_id);
CREATE TABLE IF NOT EXISTS cp_risk_audit (
  seq bigserial PRIMARY KEY,
  at timestamptz NOT NULL,
  actor text NOT NULL,
  action text NOT NULL CHECK (action IN ('publish_rule_set', 'approve_review', 'reject_review')),
  subject text NOT NULL,
  detail jsonb NOT NULL
);

-- The counters live in each process's memory (RiskService); the decision log is what fills them: at start (every
-- reservation not released within the longest window) and from other processes (what they recorded since the last
-- look, by recorded_at and release_recorded_at, the database's clock at the write).
ALTER TABLE cp_risk_decisions ADD COLUMN IF NOT EXISTS instance_id text;
ALTER TABLE cp_risk_decisions ADD COLUMN IF NOT EXISTS recorded_at timestamptz;
ALTER TABLE cp_risk_decisions ADD COLUMN IF NOT EXISTS release_recorded_at timestamptz;
UPDATE cp_risk_decisions SET recorded_at = decided_at WHERE recorded_at IS NULL;
CREATE INDEX IF NOT EXISTS cp_risk_decisions_instance ON cp_risk_decisions (instance_id, recorded_at) WHERE reserved;
-- A starting process reads the reservations of each registered process by the index above; rows written before
-- processes had ids by this one (no new row enters it). One index fewer to write per allowed payment.
CREATE INDEX IF NOT EXISTS cp_risk_decisions_unowned ON cp_risk_decisions (recorded_at)
  WHERE instance_id IS NULL AND reserved;
DROP INDEX IF EXISTS cp_risk_decisions_recorded;
ALTER TABLE cp_risk_reviews ADD COLUMN IF NOT EXISTS recorded_at timestamptz;
CREATE INDEX IF NOT EXISTS cp_risk_reviews_recorded ON cp_risk_reviews (recorded_at);
-- Processes that decide, so each reads only the others' decisions (none at all when it is alone).
CREATE TABLE IF NOT EXISTS cp_risk_instances (
  instance_id text PRIMARY KEY,
  started_at timestamptz NOT NULL,
  seen_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS cp_risk_decisions_released ON cp_risk_decisions (release_recorded_at)
  WHERE release_recorded_at IS NOT NULL;
-- Reservations as text lines (countedText in evaluate.ts) instead of JSON: rows written before keep theirs in
-- reservations (readers take counted, else reservations).
ALTER TABLE cp_risk_decisions ADD COLUMN IF NOT EXISTS counted text;
ALTER TABLE cp_risk_decisions ALTER COLUMN reservations DROP NOT NULL;
-- Plain allows of the payment path (deferred decisions, RiskService.recordingSql): one row per statement of the
-- caller's, a decision per array element, instead of a row and two index entries per decision. A decision released
-- later is copied into cp_risk_decisions, released; from then on that row is the decision (cp_risk_decision_log).
-- Found by id through decided_from: every decision of a row was decided within RISK_LIMITS.allowRowSpanMs of it.
CREATE TABLE IF NOT EXISTS cp_risk_allows (
  first_decision_id uuid PRIMARY KEY,
  instance_id text NOT NULL,
  recorded_at timestamptz NOT NULL,
  decided_from timestamptz NOT NULL,
  decision_ids uuid[] NOT NULL,
  kinds text[] NOT NULL,
  subject_refs text[] NOT NULL,
  facts_digests text[] NOT NULL,
  rule_set_versions integer[] NOT NULL,
  dry_runs boolean[] NOT NULL,
  reserved boolean[] NOT NULL,
  counted text[] NOT NULL,
  decided_at timestamptz[] NOT NULL,
  CHECK (cardinality(decision_ids) > 0)
);
-- A row of many is compressed (its reservation lines repeat their keys' shapes); lz4 is several times faster than
-- the default pglz, where the server has it (PGlite has not).
DO $lz4$ BEGIN
  ALTER TABLE cp_risk_allows ALTER COLUMN subject_refs SET COMPRESSION lz4, ALTER COLUMN counted SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN NULL;
END $lz4$;
CREATE INDEX IF NOT EXISTS cp_risk_allows_decided ON cp_risk_allows (decided_from);
CREATE INDEX IF NOT EXISTS cp_risk_allows_instance ON cp_risk_allows (instance_id, recorded_at);
-- The writing transaction's id: a look skips, within its overlap, what the previous look's snapshot already showed
-- (RiskService.look). Rows written before this column have none and are read as before. A default set apart from
-- ADD COLUMN, so existing rows are not rewritten.
ALTER TABLE cp_risk_decisions ADD COLUMN IF NOT EXISTS recorded_xid xid8;
ALTER TABLE cp_risk_decisions ALTER COLUMN recorded_xid SET DEFAULT pg_current_xact_id();
ALTER TABLE cp_risk_allows ADD COLUMN IF NOT EXISTS recorded_xid xid8;
ALTER TABLE cp_risk_allows ALTER COLUMN recorded_xid SET DEFAULT pg_current_xact_id();
-- The plain allows one per row, with cp_risk_decisions' columns (and the row's decided_from, to find them by).
CREATE OR REPLACE VIEW cp_risk_allowed_decisions AS
  SELECT u.decision_id::text AS decision_id, u.kind, u.subject_ref, u.facts_digest, u.rule_set_version, u.dry_run,
         'allow'::text AS outcome, NULL::text AS code, NULL::text AS iso_response_code, NULL::text AS primary_rule,
         NULL::text AS review_override, NULL::jsonb AS facts, '[]'::jsonb AS fired, '[]'::jsonb AS checks,
         NULL::bigint[] AS observed_counts, NULL::numeric[] AS observed_amounts, u.reserved,
         NULL::jsonb AS reservations, u.decided_at, NULL::timestamptz AS released_at, a.instance_id, a.recorded_at,
         NULL::timestamptz AS release_recorded_at, u.counted, a.decided_from, a.recorded_xid
    FROM cp_risk_allows a CROSS JOIN LATERAL unnest(a.decision_ids, a.kinds, a.subject_refs, a.facts_digests,
           a.rule_set_versions, a.dry_runs, a.reserved, a.counted, a.decided_at)
           AS u(decision_id, kind, subject_ref, facts_digest, rule_set_version, dry_run, reserved, counted, decided_at);
-- Every decision once, for auditors and reports: a plain allow's row in cp_risk_decisions (released) wins.
CREATE OR REPLACE VIEW cp_risk_decision_log AS
  SELECT decision_id, kind, subject_ref, facts_digest, rule_set_version, dry_run, outcome, code, iso_response_code,
         primary_rule, review_override, facts, fired, checks, observed_counts, observed_amounts, reserved, reservations,
         decided_at, released_at, instance_id, recorded_at, release_recorded_at, counted
    FROM cp_risk_decisions
  UNION ALL
  SELECT decision_id, kind, subject_ref, facts_digest, rule_set_version, dry_run, outcome, code, iso_response_code,
         primary_rule, review_override, facts, fired, checks, observed_counts, observed_amounts, reserved, reservations,
         decided_at, released_at, instance_id, recorded_at, release_recorded_at, counted
    FROM cp_risk_allowed_decisions a
   WHERE NOT EXISTS (SELECT 1 FROM cp_risk_decisions d WHERE d.decision_id = a.decision_id);
-- Counters and the batch function of the first design (counters in rows, decided in PL/pgSQL under advisory locks).
DROP FUNCTION IF EXISTS cp_risk_assess(jsonb);
DROP FUNCTION IF EXISTS cp_risk_release(text, timestamptz);
DROP TABLE IF EXISTS cp_risk_counters;
-- Marks an approved review used by a decision, found by its key; answers the review if this call used it.
CREATE OR REPLACE FUNCTION cp_risk_use_review(p_review_id text, p_decision_id text)
RETURNS SETOF text LANGUAGE sql AS $fn$
  UPDATE cp_risk_reviews SET consumed_by = p_decision_id, recorded_at = clock_timestamp()
   WHERE review_id = p_review_id AND consumed_by IS NULL
  RETURNING review_id
$fn$;
-- Aborts a batch decided on reviews that were not what it read: an approval another batch used first, or a review it
-- did not read at all (batches read reviews only after one was met). The batch is decided again (SQLSTATE 40001).
CREATE OR REPLACE FUNCTION cp_risk_review_taken() RETURNS integer LANGUAGE plpgsql AS $fn$
BEGIN
  RAISE EXCEPTION 'a review of an event in the batch was not as read' USING ERRCODE = '40001';
END
$fn$;
`;
