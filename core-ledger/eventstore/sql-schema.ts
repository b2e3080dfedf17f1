/**
 * The event store's tables in PostgreSQL (and PGlite, which runs the same SQL).
 *
 * Global order: `(tx_id, seq)`, read only below `pg_snapshot_xmin(pg_current_snapshot())`: every transaction with
 * a smaller id has ended, so no event can later appear before what a subscriber has read — even when writers
 * commit out of order. No gap is ever guessed at or skipped.
 *
 * `cp_append` decides a whole multi-stream append in one statement, one round trip. The log is its own
 * concurrency check: an exact expected revision must be stored, and the events' primary key `(stream_id, revision)`
 * refuses the next one when another writer took it (no revision table to update: a fifth less PostgreSQL time per
 * payment, docs/performance.md). Any mismatch raises CP409 listing the streams, and the transaction writes nothing.
 * Given the first event id of the append issued just before on the same connection, it first checks that append
 * was written, else raises CP412 and writes nothing.
 *
 * Stream ids compare as bytes (`COLLATE "C"`): ids are not words, and a locale's collation costs every index step.
 */
export const EVENT_STORE_SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS cp_events (
  seq bigint GENERATED ALWAYS AS IDENTITY,
  tx_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
  stream_id text COLLATE "C" NOT NULL,
  revision bigint NOT NULL,
  event_id uuid NOT NULL,
  type text NOT NULL,
  -- json, not jsonb: the log keeps each event as written and only validates it (a third cheaper on the hot
  -- path, measured in docs/performance.md); read models build their own indexed tables.
  data json NOT NULL,
  metadata json NOT NULL DEFAULT '{}'::json,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (stream_id, revision)
);
CREATE UNIQUE INDEX IF NOT EXISTS cp_events_event_id ON cp_events (event_id);
CREATE INDEX IF NOT EXISTS cp_events_log_order ON cp_events (tx_id, seq);
CREATE TABLE IF NOT EXISTS cp_snapshots (
  stream_id text COLLATE "C" PRIMARY KEY,
  revision bigint NOT NULL,
  state jsonb NOT NULL,
  written_at timestamptz NOT NULL DEFAULT now()
);

-- The streams whose last revision is not the one expected (an exact revision; with p_new_streams, no_stream too),
-- as CP409's detail; null when there are none. One primary-key probe per stream, as scalar subqueries: a join here
-- may be planned as a hash over the whole log, and PL/pgSQL keeps a connection's plan from when the log was small
-- (200 ms an append on a log of 100 000 events, measured).
CREATE OR REPLACE FUNCTION cp_append_conflicts(p_ids text[], p_expected bigint[], p_new_streams boolean)
RETURNS json
LANGUAGE plpgsql AS $fn$
DECLARE
  v_conflicts json;
BEGIN
  SELECT json_agg(json_build_object('streamId', c.id, 'expected', c.e, 'actual', c.actual))
    INTO v_conflicts
    FROM (SELECT u.id, u.e, (SELECT max(x.revision) FROM cp_events x WHERE x.stream_id = u.id) AS actual
            FROM unnest(p_ids, p_expected) AS u(id, e)
           WHERE u.e >= 0 OR (p_new_streams AND u.e = -1)) AS c
   WHERE c.actual IS DISTINCT FROM nullif(c.e, -1);
  RETURN v_conflicts;
END
$fn$;

-- The function before p_only_after: beside this one, a call with two arguments would be ambiguous.
DROP FUNCTION IF EXISTS cp_append(json, json);
CREATE OR REPLACE FUNCTION cp_append(p_streams json, p_events json, p_only_after uuid DEFAULT NULL)
RETURNS TABLE (bases bigint[], log_tx text, log_seq text)
LANGUAGE plpgsql AS $fn$
DECLARE
  v_ids text[];
  v_expected bigint[];
  v_bases bigint[];
  v_constraint text;
  v_conflicts json;
BEGIN
  -- The append issued before this one on the same connection has ended; unless it wrote its events, this one is
  -- built on effects that do not exist and must not be written either (another writer may hold those revisions).
  IF p_only_after IS NOT NULL AND NOT EXISTS (SELECT 1 FROM cp_events WHERE event_id = p_only_after) THEN
    RAISE EXCEPTION USING ERRCODE = 'CP412', MESSAGE = 'the append before was not written';
  END IF;

  -- p_streams: [{id: stream id, e: expected (>=0 exact, -1 no_stream, -2 any)}], in order
  SELECT array_agg(r.id ORDER BY r.o), array_agg(r.e ORDER BY r.o)
    INTO v_ids, v_expected
    FROM ROWS FROM (json_to_recordset(p_streams) AS (id text, e bigint)) WITH ORDINALITY AS r(id, e, o);

  -- 'any': appenders of one stream take turns (a transaction lock), then build on its last revision.
  PERFORM pg_advisory_xact_lock(hashtextextended(u.id, 0))
     FROM unnest(v_ids, v_expected) AS u(id, e) WHERE u.e = -2 ORDER BY u.id;
  SELECT array_agg(CASE WHEN u.e = -2
                        THEN (SELECT coalesce(max(c.revision), -1) FROM cp_events c WHERE c.stream_id = u.id)
                        ELSE u.e END ORDER BY u.o)
    INTO v_bases
    FROM unnest(v_ids, v_expected) WITH ORDINALITY AS u(id, e, o);

  -- An exact expected revision must be the stream's last; that nothing is written after it meanwhile, the events'
  -- primary key checks on insert.
  v_conflicts := cp_append_conflicts(v_ids, v_expected, false);
  IF v_conflicts IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'CP409', MESSAGE = 'wrong expected revision', DETAIL = v_conflicts::text;
  END IF;

  -- p_events: [{s: stream ordinal (0-based), k: 1-based index in its stream, i, t, d, m}], in order
  BEGIN
    RETURN QUERY
    WITH inserted AS (
      INSERT INTO cp_events (stream_id, revision, event_id, type, data, metadata)
      SELECT v_ids[e.s + 1], v_bases[e.s + 1] + e.k, e.i, e.t, e.d, coalesce(e.m, '{}'::json)
        FROM ROWS FROM (json_to_recordset(p_events) AS (s int, k int, i uuid, t text, d json, m json)) WITH ORDINALITY AS e(s, k, i, t, d, m, x)
       ORDER BY e.x
      RETURNING cp_events.tx_id, cp_events.seq
    )
    SELECT v_bases, max(inserted.tx_id::text::numeric)::text, max(inserted.seq)::text FROM inserted;
  EXCEPTION WHEN unique_violation THEN
    GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME;
    IF v_constraint IS DISTINCT FROM 'cp_events_pkey' THEN
      RAISE;
    END IF;
    -- A revision it would write is taken: another writer appended first (and committed, or the insert would have
    -- waited for it).
    v_conflicts := cp_append_conflicts(v_ids, v_expected, true);
    IF v_conflicts IS NULL THEN
      -- Only an 'any' stream lost: a writer with an exact revision (it takes no turn) wrote after its last revision
      -- was read. Nothing was written; the store sends it again.
      RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = 'an append with any revision met a concurrent append';
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'CP409', MESSAGE = 'wrong expected revision', DETAIL = v_conflicts::text;
  END;

  PERFORM pg_notify('cp_events', '');
END
$fn$;
`;

export const EVENT_STORE_NOTIFY_CHANNEL = 'cp_events';

/** The functions the event store creates on every start (a backup of the service schema leaves them out). */
export const EVENT_STORE_FUNCTIONS: readonly string[] = ['cp_append', 'cp_append_conflicts'];
