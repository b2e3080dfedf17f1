/**
 * The event store's tables in PostgreSQL (and PGlite, which runs the same SQL).
 *
 * Global order: `(tx_id, seq)`, read only below `pg_snapshot_xmin(pg_current_snapshot())`: every transaction with
 * a smaller id has ended, so no event can later appear before what a subscriber has read — even when writers
 * commit out of order. No gap is ever guessed at or skipped.
 *
 * `cp_append` decides a whole multi-stream append in one statement, one round trip: a conditional revision
 * bump per stream (the optimistic concurrency check), then the events. Any mismatch raises CP409 listing the
 * streams, and the transaction writes nothing. Given the first event id of the append issued just before on the
 * same connection, it first checks that append was written, else raises CP412 and writes nothing.
 */
export const EVENT_STORE_SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS cp_streams (
  stream_id text PRIMARY KEY,
  revision bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS cp_events (
  seq bigint GENERATED ALWAYS AS IDENTITY,
  tx_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
  stream_id text NOT NULL,
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
  stream_id text PRIMARY KEY,
  revision bigint NOT NULL,
  state jsonb NOT NULL,
  written_at timestamptz NOT NULL DEFAULT now()
);

-- The function before p_only_after: beside this one, a call with two arguments would be ambiguous.
DROP FUNCTION IF EXISTS cp_append(json, json);
CREATE OR REPLACE FUNCTION cp_append(p_streams json, p_events json, p_only_after uuid DEFAULT NULL)
RETURNS TABLE (bases bigint[], log_tx text, log_seq text)
LANGUAGE plpgsql AS $fn$
DECLARE
  v_ids text[];
  v_expected bigint[];
  v_counts int[];
  v_bases bigint[];
  v_matched int[];
  v_conflicts json;
BEGIN
  -- The append issued before this one on the same connection has ended; unless it wrote its events, this one is
  -- built on effects that do not exist and must not be written either (another writer may hold those revisions).
  IF p_only_after IS NOT NULL AND NOT EXISTS (SELECT 1 FROM cp_events WHERE event_id = p_only_after) THEN
    RAISE EXCEPTION USING ERRCODE = 'CP412', MESSAGE = 'the append before was not written';
  END IF;

  -- p_streams: [{id: stream id, e: expected (>=0 exact, -1 no_stream, -2 any), n: event count}], in order
  SELECT array_agg(r.id ORDER BY r.o), array_agg(r.e ORDER BY r.o), array_agg(r.n ORDER BY r.o)
    INTO v_ids, v_expected, v_counts
    FROM ROWS FROM (json_to_recordset(p_streams) AS (id text, e bigint, n int)) WITH ORDINALITY AS r(id, e, n, o);

  WITH req AS (
    SELECT u.id, u.e, u.n, u.o FROM unnest(v_ids, v_expected, v_counts) WITH ORDINALITY AS u(id, e, n, o)
  ), exact AS (
    UPDATE cp_streams s SET revision = req.e + req.n FROM req
    WHERE req.e >= 0 AND s.stream_id = req.id AND s.revision = req.e
    RETURNING req.o, req.e AS base
  ), created AS (
    INSERT INTO cp_streams (stream_id, revision)
    SELECT req.id, req.n - 1 FROM req WHERE req.e = -1 ORDER BY req.id
    ON CONFLICT (stream_id) DO NOTHING
    RETURNING stream_id
  ), any_revision AS (
    INSERT INTO cp_streams AS s (stream_id, revision)
    SELECT req.id, req.n - 1 FROM req WHERE req.e = -2 ORDER BY req.id
    ON CONFLICT (stream_id) DO UPDATE SET revision = s.revision + excluded.revision + 1
    RETURNING stream_id, revision
  ), matched AS (
    SELECT o, base FROM exact
    UNION ALL SELECT req.o, -1::bigint FROM created JOIN req ON req.id = created.stream_id
    UNION ALL SELECT req.o, any_revision.revision - req.n FROM any_revision JOIN req ON req.id = any_revision.stream_id
  )
  SELECT array_agg(base ORDER BY o), array_agg(o::int) INTO v_bases, v_matched FROM matched;

  IF coalesce(cardinality(v_matched), 0) < cardinality(v_ids) THEN
    SELECT json_agg(json_build_object('streamId', u.id, 'expected', u.e, 'actual', s.revision))
      INTO v_conflicts
      FROM unnest(v_ids, v_expected) WITH ORDINALITY AS u(id, e, o)
      LEFT JOIN cp_streams s ON s.stream_id = u.id
      WHERE NOT (u.o::int = ANY (coalesce(v_matched, '{}')));
    RAISE EXCEPTION USING ERRCODE = 'CP409', MESSAGE = 'wrong expected revision', DETAIL = v_conflicts::text;
  END IF;

  -- p_events: [{s: stream ordinal (0-based), k: 1-based index in its stream, i, t, d, m}], in order
  RETURN QUERY
  WITH inserted AS (
    INSERT INTO cp_events (stream_id, revision, event_id, type, data, metadata)
    SELECT v_ids[e.s + 1], v_bases[e.s + 1] + e.k, e.i, e.t, e.d, coalesce(e.m, '{}'::json)
      FROM ROWS FROM (json_to_recordset(p_events) AS (s int, k int, i uuid, t text, d json, m json)) WITH ORDINALITY AS e(s, k, i, t, d, m, x)
     ORDER BY e.x
    RETURNING cp_events.tx_id, cp_events.seq
  )
  SELECT v_bases, max(inserted.tx_id::text::numeric)::text, max(inserted.seq)::text FROM inserted;

  PERFORM pg_notify('cp_events', '');
END
$fn$;
`;

export const EVENT_STORE_NOTIFY_CHANNEL = 'cp_events';
