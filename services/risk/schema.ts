/**
 * The risk engine's tables and its two PL/pgSQL calls. `cp_risk_assess` is the hot path in ONE round trip: it takes
 * an advisory lock per counter key (sorted, so callers never deadlock), sums each check's window, decides whether an
 * enforced limit would be passed, moves the counters only when the event is allowed, and writes the decision record
 * — all in one transaction, so concurrent requests for one account can never overshoot a limit and no counter moves
 * without the decision that moved it. The rule arithmetic it repeats (count + 1 > max, amount + this > max, refuse
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
  facts jsonb NOT NULL,
  fired jsonb NOT NULL,
  checks jsonb NOT NULL,
  observed_counts bigint[],
  observed_amounts numeric[],
  reserved boolean NOT NULL,
  reservations jsonb NOT NULL,
  decided_at timestamptz NOT NULL,
  released_at timestamptz
);
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

CREATE OR REPLACE FUNCTION cp_risk_assess(
  p_decision_id text, p_kind text, p_subject text, p_digest text, p_version integer, p_dry_run boolean,
  p_at timestamptz, p_facts jsonb, p_fired jsonb, p_checks jsonb, p_increments jsonb,
  s_index integer[], s_action text[], s_iso text[], s_rule text[],
  c_key text[], c_since bigint[], c_until bigint[], c_max_count bigint[], c_max_amount numeric[], c_amount numeric,
  c_enforced boolean[], c_index integer[], c_action text[], c_iso text[], c_rule text[],
  i_key text[], i_bucket bigint[], i_count bigint[], i_amount numeric[]
) RETURNS TABLE (outcome text, iso_response_code text, primary_rule text, observed_counts bigint[],
                 observed_amounts numeric[], review_id text, review_override text)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_review record;
  v_override text := NULL;
  v_counts bigint[] := NULL;
  v_amounts numeric[] := NULL;
  v_count bigint;
  v_amount numeric;
  v_refuse_index integer := NULL;
  v_refuse_iso text;
  v_refuse_rule text;
  v_hold_index integer := NULL;
  v_hold_iso text;
  v_hold_rule text;
  v_outcome text;
  v_iso text := NULL;
  v_rule text := NULL;
  v_reserved boolean := false;
  v_review_id text := NULL;
  v_hash integer;
  k integer;
BEGIN
  -- A review already decided for this very event (same subject, same facts) answers for it; an approval once.
  SELECT r.review_id, r.status, r.iso_response_code INTO v_review FROM cp_risk_reviews r
   WHERE r.subject_ref = p_subject AND r.facts_digest = p_digest
     AND (r.status IN ('open', 'rejected') OR (r.status = 'approved' AND r.consumed_by IS NULL))
   ORDER BY r.created_at DESC, r.review_id LIMIT 1;
  IF FOUND THEN
    IF v_review.status = 'approved' THEN
      UPDATE cp_risk_reviews SET consumed_by = p_decision_id
       WHERE cp_risk_reviews.review_id = v_review.review_id AND consumed_by IS NULL;
      IF FOUND THEN v_override := 'approved'; END IF;
    ELSE
      v_override := v_review.status;
    END IF;
    v_review_id := v_review.review_id;
  END IF;

  FOR k IN 1 .. coalesce(array_length(s_index, 1), 0) LOOP
    IF s_action[k] = 'refuse' AND (v_refuse_index IS NULL OR s_index[k] < v_refuse_index) THEN
      v_refuse_index := s_index[k]; v_refuse_iso := s_iso[k]; v_refuse_rule := s_rule[k];
    ELSIF s_action[k] = 'review' AND (v_hold_index IS NULL OR s_index[k] < v_hold_index) THEN
      v_hold_index := s_index[k]; v_hold_iso := s_iso[k]; v_hold_rule := s_rule[k];
    END IF;
  END LOOP;

  IF coalesce(array_length(c_key, 1), 0) > 0
     AND (v_override = 'approved' OR (v_override IS NULL AND v_refuse_index IS NULL)) THEN
    FOR v_hash IN SELECT DISTINCT hashtext(x) FROM unnest(i_key) AS x ORDER BY 1 LOOP
      PERFORM pg_advisory_xact_lock(${RISK_LOCK_CLASS}, v_hash);
    END LOOP;
    v_counts := '{}';
    v_amounts := '{}';
    FOR k IN 1 .. array_length(c_key, 1) LOOP
      SELECT coalesce(sum(c.count), 0), coalesce(sum(c.amount), 0) INTO v_count, v_amount
        FROM cp_risk_counters c WHERE c.counter_key = c_key[k] AND c.bucket BETWEEN c_since[k] AND c_until[k];
      v_counts := v_counts || v_count;
      v_amounts := v_amounts || v_amount;
      IF c_enforced[k] AND ((c_max_count[k] IS NOT NULL AND v_count + 1 > c_max_count[k])
                         OR (c_max_amount[k] IS NOT NULL AND v_amount + c_amount > c_max_amount[k])) THEN
        IF c_action[k] = 'refuse' AND (v_refuse_index IS NULL OR c_index[k] < v_refuse_index) THEN
          v_refuse_index := c_index[k]; v_refuse_iso := c_iso[k]; v_refuse_rule := c_rule[k];
        ELSIF c_action[k] = 'review' AND (v_hold_index IS NULL OR c_index[k] < v_hold_index) THEN
          v_hold_index := c_index[k]; v_hold_iso := c_iso[k]; v_hold_rule := c_rule[k];
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

  IF v_outcome = 'allow' AND coalesce(array_length(i_key, 1), 0) > 0 THEN
    INSERT INTO cp_risk_counters AS c (counter_key, bucket, count, amount)
    SELECT * FROM unnest(i_key, i_bucket, i_count, i_amount)
    ON CONFLICT (counter_key, bucket) DO UPDATE SET count = c.count + EXCLUDED.count, amount = c.amount + EXCLUDED.amount;
    v_reserved := true;
  END IF;

  INSERT INTO cp_risk_decisions (decision_id, kind, subject_ref, facts_digest, rule_set_version, dry_run, outcome,
    code, iso_response_code, primary_rule, review_override, facts, fired, checks, observed_counts, observed_amounts,
    reserved, reservations, decided_at)
  VALUES (p_decision_id, p_kind, p_subject, p_digest, p_version, p_dry_run, v_outcome,
    CASE v_outcome WHEN 'refuse' THEN 'risk_refused' WHEN 'hold' THEN 'risk_review' END, v_iso, v_rule,
    v_override, p_facts, p_fired, p_checks, v_counts, v_amounts, v_reserved,
    CASE WHEN v_reserved THEN p_increments ELSE '[]'::jsonb END, p_at);

  IF v_outcome = 'hold' AND v_override IS NULL THEN
    INSERT INTO cp_risk_reviews (review_id, kind, subject_ref, facts_digest, iso_response_code, status, created_at)
    VALUES (p_decision_id, p_kind, p_subject, p_digest, v_iso, 'open', p_at);
    v_review_id := p_decision_id;
  END IF;

  RETURN QUERY SELECT v_outcome, v_iso, v_rule, v_counts, v_amounts,
    CASE WHEN v_override IS NULL AND v_outcome <> 'hold' THEN NULL ELSE v_review_id END, v_override;
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
