/**
 * The risk engine's tables and its two PL/pgSQL calls. `cp_risk_assess` is the hot path: ONE round trip and one
 * commit for a whole batch of decisions (the service batches what arrives while the previous batch commits). It takes
 * an advisory lock per counter key of the batch (sorted, so callers never deadlock), then for each request in order
 * sums each check's window, decides whether an enforced limit would be passed, moves the counters only when the event
 * is allowed, and writes the decision record — all in one transaction, so concurrent requests for one account can
 * never overshoot a limit and no counter moves without the decision that moved it. The rule arithmetic it repeats (count + 1 > max, amount + this > max, refuse
 * beats hold) is checked again in TypeScript by `settle()` on the totals it returns.
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
CREATE INDEX IF NOT EXISTS cp_risk_decisions_subject ON cp_risk_decisions (subject_ref);
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

CREATE OR REPLACE FUNCTION cp_risk_assess(p_requests jsonb)
RETURNS TABLE (request integer, outcome text, iso_response_code text, primary_rule text, observed_counts bigint[],
               observed_amounts numeric[], review_id text, review_override text)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_req jsonb;
  v_n integer;
  v_subject text;
  v_digest text;
  v_review record;
  v_override text;
  v_counts bigint[];
  v_amounts numeric[];
  v_count bigint;
  v_amount numeric;
  v_refuse_index integer;
  v_refuse_iso text;
  v_refuse_rule text;
  v_hold_index integer;
  v_hold_iso text;
  v_hold_rule text;
  v_outcome text;
  v_iso text;
  v_rule text;
  v_reserved boolean;
  v_exceeded boolean;
  v_over boolean;
  v_full boolean;
  v_review_id text;
  v_hash integer;
  f jsonb;
  c jsonb;
BEGIN
  -- Every counter key of the batch, locked once, in one order: batches of all processes queue, never deadlock.
  FOR v_hash IN SELECT DISTINCT hashtext(i->>'key') FROM jsonb_array_elements(p_requests) AS r,
                       jsonb_array_elements(r->'increments') AS i ORDER BY 1 LOOP
    PERFORM pg_advisory_xact_lock(${RISK_LOCK_CLASS}, v_hash);
  END LOOP;

  FOR v_req, v_n IN SELECT value, ordinality FROM jsonb_array_elements(p_requests) WITH ORDINALITY LOOP
    v_subject := v_req->>'subjectRef';
    v_digest := v_req->>'factsDigest';
    v_override := NULL; v_review_id := NULL; v_counts := NULL; v_amounts := NULL; v_reserved := false;
    v_refuse_index := NULL; v_hold_index := NULL; v_iso := NULL; v_rule := NULL; v_exceeded := false;

    -- A review already decided for this very event (same subject, same facts) answers for it; an approval once.
    SELECT r.review_id, r.status, r.iso_response_code INTO v_review FROM cp_risk_reviews r
     WHERE r.subject_ref = v_subject AND r.facts_digest = v_digest
       AND (r.status IN ('open', 'rejected') OR (r.status = 'approved' AND r.consumed_by IS NULL))
     ORDER BY r.created_at DESC, r.review_id LIMIT 1;
    IF FOUND THEN
      IF v_review.status = 'approved' THEN
        UPDATE cp_risk_reviews SET consumed_by = v_req->>'decisionId'
         WHERE cp_risk_reviews.review_id = v_review.review_id AND consumed_by IS NULL;
        IF FOUND THEN v_override := 'approved'; END IF;
      ELSE
        v_override := v_review.status;
      END IF;
      v_review_id := v_review.review_id;
    END IF;

    FOR f IN SELECT value FROM jsonb_array_elements(v_req->'fired') LOOP
      CONTINUE WHEN NOT (f->>'enforced')::boolean;
      IF f->>'action' = 'refuse' AND (v_refuse_index IS NULL OR (f->>'ruleIndex')::integer < v_refuse_index) THEN
        v_refuse_index := (f->>'ruleIndex')::integer; v_refuse_iso := f->>'isoResponseCode'; v_refuse_rule := f->>'ruleId';
      ELSIF f->>'action' = 'review' AND (v_hold_index IS NULL OR (f->>'ruleIndex')::integer < v_hold_index) THEN
        v_hold_index := (f->>'ruleIndex')::integer; v_hold_iso := f->>'isoResponseCode'; v_hold_rule := f->>'ruleId';
      END IF;
    END LOOP;

    IF jsonb_array_length(v_req->'checks') > 0
       AND (v_override = 'approved' OR (v_override IS NULL AND v_refuse_index IS NULL)) THEN
      v_counts := '{}';
      v_amounts := '{}';
      FOR c IN SELECT value FROM jsonb_array_elements(v_req->'checks') LOOP
        SELECT coalesce(sum(k.count), 0), coalesce(sum(k.amount), 0) INTO v_count, v_amount
          FROM cp_risk_counters k WHERE k.counter_key = c->>'key'
           AND k.bucket BETWEEN (c->>'since')::bigint AND (c->>'until')::bigint;
        v_counts := v_counts || v_count;
        v_amounts := v_amounts || v_amount;
        v_over := (c->>'maxCount' IS NOT NULL AND v_count + 1 > (c->>'maxCount')::bigint)
               OR (c->>'maxAmount' IS NOT NULL AND v_amount + (c->>'amount')::numeric > (c->>'maxAmount')::numeric);
        v_exceeded := v_exceeded OR v_over;
        IF v_over AND (c->>'enforced')::boolean THEN
          IF c->>'action' = 'refuse' AND (v_refuse_index IS NULL OR (c->>'ruleIndex')::integer < v_refuse_index) THEN
            v_refuse_index := (c->>'ruleIndex')::integer; v_refuse_iso := c->>'isoResponseCode'; v_refuse_rule := c->>'ruleId';
          ELSIF c->>'action' = 'review' AND (v_hold_index IS NULL OR (c->>'ruleIndex')::integer < v_hold_index) THEN
            v_hold_index := (c->>'ruleIndex')::integer; v_hold_iso := c->>'isoResponseCode'; v_hold_rule := c->>'ruleId';
          END IF;
        END IF;
      END LOOP;
    END IF;

    IF v_override = 'approved' THEN
      v_outcome := 'allow';
    ELSIF v_override = 'rejected' THEN
      v_outcome := 'refuse'; v_iso := v_review.iso_response_code; v_rule := 'review:' || v_review_id;
    ELSIF v_override = 'open' THEN
      v_outcome := 'hold'; v_iso := v_review.iso_response_code; v_rule := 'review:' || v_review_id;
    ELSIF v_refuse_index IS NOT NULL THEN
      v_outcome := 'refuse'; v_iso := v_refuse_iso; v_rule := v_refuse_rule;
    ELSIF v_hold_index IS NOT NULL THEN
      v_outcome := 'hold'; v_iso := v_hold_iso; v_rule := v_hold_rule;
    ELSE
      v_outcome := 'allow';
    END IF;

    IF v_outcome = 'allow' AND jsonb_array_length(v_req->'increments') > 0 THEN
      INSERT INTO cp_risk_counters AS k (counter_key, bucket, count, amount)
      SELECT i->>'key', (i->>'bucket')::bigint, (i->>'count')::bigint, (i->>'amount')::numeric
        FROM jsonb_array_elements(v_req->'increments') AS i
      ON CONFLICT (counter_key, bucket) DO UPDATE SET count = k.count + EXCLUDED.count, amount = k.amount + EXCLUDED.amount;
      v_reserved := true;
    END IF;

    v_full := v_outcome <> 'allow' OR v_override IS NOT NULL OR v_exceeded
              OR jsonb_array_length(v_req->'fired') > 0;
    INSERT INTO cp_risk_decisions (decision_id, kind, subject_ref, facts_digest, rule_set_version, dry_run, outcome,
      code, iso_response_code, primary_rule, review_override, facts, fired, checks, observed_counts, observed_amounts,
      reserved, reservations, decided_at)
    VALUES (v_req->>'decisionId', v_req->>'kind', v_subject, v_digest, (v_req->>'ruleSetVersion')::integer,
      (v_req->>'dryRun')::boolean, v_outcome,
      CASE v_outcome WHEN 'refuse' THEN 'risk_refused' WHEN 'hold' THEN 'risk_review' END, v_iso, v_rule,
      v_override, CASE WHEN v_full THEN v_req->'facts' END, CASE WHEN v_full THEN v_req->'fired' ELSE '[]' END,
      CASE WHEN v_full THEN v_req->'checks' ELSE '[]' END, CASE WHEN v_full THEN v_counts END,
      CASE WHEN v_full THEN v_amounts END, v_reserved,
      CASE WHEN v_reserved THEN v_req->'increments' ELSE '[]'::jsonb END, (v_req->>'at')::timestamptz);

    IF v_outcome = 'hold' AND v_override IS NULL THEN
      INSERT INTO cp_risk_reviews (review_id, kind, subject_ref, facts_digest, iso_response_code, status, created_at)
      VALUES (v_req->>'decisionId', v_req->>'kind', v_subject, v_digest, v_iso, 'open', (v_req->>'at')::timestamptz);
      v_review_id := v_req->>'decisionId';
    END IF;

    request := v_n::integer; outcome := v_outcome; iso_response_code := v_iso; primary_rule := v_rule;
    observed_counts := v_counts; observed_amounts := v_amounts;
    review_id := CASE WHEN v_override IS NULL AND v_outcome <> 'hold' THEN NULL ELSE v_review_id END;
    review_override := v_override;
    RETURN NEXT;
  END LOOP;
END
$fn$;

CREATE OR REPLACE FUNCTION cp_risk_release(p_decision_id text, p_at timestamptz) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
  v_row record;
  v_hash integer;
BEGIN
  SELECT reserved, released_at, reservations INTO v_row FROM cp_risk_decisions
   WHERE decision_id = p_decision_id FOR UPDATE;
  IF NOT FOUND THEN RETURN 'not_found'; END IF;
  IF NOT v_row.reserved THEN RETURN 'nothing_reserved'; END IF;
  IF v_row.released_at IS NOT NULL THEN RETURN 'already_released'; END IF;
  FOR v_hash IN SELECT DISTINCT hashtext(r->>'key') FROM jsonb_array_elements(v_row.reservations) AS r ORDER BY 1 LOOP
    PERFORM pg_advisory_xact_lock(${RISK_LOCK_CLASS}, v_hash);
  END LOOP;
  UPDATE cp_risk_counters c SET count = c.count - r.count, amount = c.amount - r.amount
    FROM jsonb_to_recordset(v_row.reservations) AS r(key text, bucket bigint, count bigint, amount numeric)
   WHERE c.counter_key = r.key AND c.bucket = r.bucket;
  UPDATE cp_risk_decisions SET released_at = p_at WHERE decision_id = p_decision_id;
  RETURN 'released';
END
$fn$;
`;
