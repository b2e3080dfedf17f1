/**
 * The event store's tables in PostgreSQL (and PGlite, which runs the same SQL).
 *
 * Global order: `(tx_id, seq)`, read only below `pg_snapshot_xmin(pg_current_snapshot())`: every transaction with
 * a smaller id has ended, so no event can later appear before what a subscriber has read — even when writers
 * commit out of order. No gap is ever guessed at or skipped.
 *
 * `cp_append` decides a whole multi-stream append in one statement, one round trip: a conditional revision
 * bump per stream (the optimistic concurrency check), then the events. Any mismatch raises CP409 listing the
 * streams, and the transaction writes nothing.
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
  data jsonb NOT NULL,
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
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

CREATE OR REPLACE FUNCTION cp_append(p_streams jsonb, p_events jsonb)
RETURNS TABLE (bases jsonb, log_tx text, log_seq text)
LANGUAGE plpgsql AS $fn$
DECLARE
  v_requested int := jsonb_array_length(p_streams);
  v_matched int;
  v_bases jsonb;
  v_conflicts jsonb;
BEGIN
  -- p_streams: [{o: ordinal, id: stream id, e: expected (>=0 exact, -1 no_stream, -2 any), n: event count}]
  WITH req AS (
    SELECT r.o, r.id, r.e, r.n FROM jsonb_to_recordset(p_streams) AS r(o int, id text, e bigint, n int)
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
  SELECT coalesce(jsonb_object_agg(o::text, base), '{}'::jsonb), count(*) INTO v_bases, v_matched FROM matched;

  IF v_matched < v_requested THEN
    SELECT jsonb_agg(jsonb_build_object('streamId', r.id, 'expected', r.e, 'actual', s.revision))
      INTO v_conflicts
      FROM jsonb_to_recordset(p_streams) AS r(o int, id text, e bigint, n int)
      LEFT JOIN cp_streams s ON s.stream_id = r.id
      WHERE NOT v_bases ? r.o::text;
    RAISE EXCEPTION USING ERRCODE = 'CP409', MESSAGE = 'wrong expected revision', DETAIL = v_conflicts::text;
  END IF;

  -- p_events: [{x: order, s: stream ordinal, k: 1-based index in its stream, i, t, d, m}]
  RETURN QUERY
  WITH inserted AS (
    INSERT INTO cp_events (stream_id, revision, event_id, type, data, metadata)
    SELECT r.id, (v_bases ->> e.s::text)::bigint + e.k, e.i, e.t, e.d, coalesce(e.m, '{}'::jsonb)
      FROM jsonb_to_recordset(p_events) AS e(x int, s int, k int, i uuid, t text, d jsonb, m jsonb)
      JOIN jsonb_to_recordset(p_streams) AS r(o int, id text) ON r.o = e.s
     ORDER BY e.x
    RETURNING cp_events.tx_id, cp_events.seq
  )
  SELECT v_bases, max(inserted.tx_id::text::numeric)::text, max(inserted.seq)::text FROM inserted;

  PERFORM pg_notify('cp_events', '');
END
$fn$;
`;

export const EVENT_STORE_NOTIFY_CHANNEL = 'cp_events';
