import type { JsonObject, JsonValue, RecordedEvent } from '../core-ledger';
import type { ProjectionDefinition } from './projection';

/**
 * The ledger's read model: accounts with balances, statement lines (each with the running balance), transfers
 * (the clearing inputs), the journal (one row per posting line), merchant daily totals, carbon statistics and the
 * audit trail of commands — all in one projection, so one transaction moves every table and the checkpoint.
 *
 * Each batch is applied by one call of `apply(...)`, set-based inside PostgreSQL. The runner's process decodes the
 * events into typed column arrays (`encodeLedgerBatch`: one array per column, one group of columns per kind of
 * row), so PostgreSQL parses no JSON and each table is fed by one statement over `unnest` of its arrays. Every row
 * is a function of the events alone (no clock, no sequence), so a rebuild from position zero reproduces the live
 * tables byte for byte.
 *
 * Statement lines are partitioned by the month of their time and journal lines by the month of their business
 * date (T18): an old month is detached and archived without rewriting the rest (docs/operations.md). Month
 * boundaries are in China Standard Time, the platform's business calendar.
 */

const STAGING_SQL = `
CREATE TEMP TABLE IF NOT EXISTS cp_rm_posting_lines (
  business_date date, transfer_id text NOT NULL, line_no int NOT NULL, transfer_type text,
  account_id text NOT NULL, asset text NOT NULL, direction text NOT NULL, amount numeric NOT NULL,
  at timestamptz NOT NULL, pos text NOT NULL, event_id uuid NOT NULL, behaviour text NOT NULL, area text NOT NULL,
  kind text
) ON COMMIT DELETE ROWS;
`;

/**
 * The tables, with the keys `apply` relies on (account and transfer lookups, the upserts of the daily totals).
 * The indexes that only readers use are in `indexStatements`: a rebuilding generation gets them once it has
 * caught up, built in one pass instead of row by row.
 */
function schemaSql(s: string): string {
  return `
CREATE SCHEMA ${s};

CREATE TABLE ${s}.accounts (
  account_id text PRIMARY KEY,
  kind text NOT NULL,
  asset text NOT NULL,
  owner_id text NOT NULL,
  card_number text,
  account_number text,
  status text NOT NULL,
  balance numeric NOT NULL,
  held_debits numeric NOT NULL,
  held_credits numeric NOT NULL,
  revision bigint NOT NULL,
  opened_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);

CREATE TABLE ${s}.statement_lines (
  account_id text NOT NULL,
  revision bigint NOT NULL,
  at timestamptz NOT NULL,
  transfer_id text NOT NULL,
  direction text NOT NULL,
  amount numeric NOT NULL,
  balance numeric NOT NULL,
  position text NOT NULL
) PARTITION BY RANGE (at);

CREATE TABLE ${s}.transfers (
  transfer_id text PRIMARY KEY,
  transfer_type text NOT NULL,
  status text NOT NULL,
  idempotency_key text NOT NULL,
  business_date date NOT NULL,
  asset text,
  amount numeric,
  debit_account_id text,
  credit_account_id text,
  postings jsonb NOT NULL,
  reference text,
  reason text,
  reverses text,
  reversed_by text,
  captured_amount numeric,
  expires_at timestamptz,
  settlement_id text,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  revision bigint NOT NULL,
  position text NOT NULL
);

CREATE TABLE ${s}.journal (
  business_date date NOT NULL,
  transfer_id text NOT NULL,
  line_no int NOT NULL,
  transfer_type text NOT NULL,
  account_id text NOT NULL,
  asset text NOT NULL,
  direction text NOT NULL,
  amount numeric NOT NULL,
  at timestamptz NOT NULL,
  position text NOT NULL,
  event_id uuid NOT NULL
) PARTITION BY RANGE (business_date);

CREATE TABLE ${s}.merchant_daily (
  business_date date NOT NULL,
  account_id text NOT NULL,
  transfer_type text NOT NULL,
  transfers bigint NOT NULL,
  credits numeric NOT NULL,
  debits numeric NOT NULL,
  fees numeric NOT NULL,
  PRIMARY KEY (business_date, account_id, transfer_type)
);

CREATE TABLE ${s}.carbon_daily (
  business_date date NOT NULL,
  behaviour text NOT NULL,
  area text NOT NULL,
  co2e_grams numeric NOT NULL,
  credits_issued numeric NOT NULL,
  credits_redeemed numeric NOT NULL,
  credits_expired numeric NOT NULL,
  issuances bigint NOT NULL,
  redemptions bigint NOT NULL,
  expiries bigint NOT NULL,
  PRIMARY KEY (business_date, behaviour, area)
);

CREATE TABLE ${s}.audit_trail (
  position text NOT NULL,
  event_id uuid NOT NULL,
  command text NOT NULL,
  actor text NOT NULL,
  channel text NOT NULL,
  source text,
  request_id text,
  subject text NOT NULL,
  at timestamptz NOT NULL,
  recorded_at timestamptz NOT NULL
);
`;
}

/** Adds a primary key unless the table has one (ALTER TABLE has no IF NOT EXISTS for constraints). */
function primaryKey(s: string, table: string, columns: string): string {
  return `DO $pk$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = '${s}.${table}'::regclass AND contype = 'p') THEN
    ALTER TABLE ${s}.${table} ADD CONSTRAINT ${table}_pkey PRIMARY KEY (${columns});
  END IF;
END $pk$`;
}

/**
 * Keys and indexes for readers only, one statement each, idempotent. Installed with a generation that readers see
 * at once (the first); a rebuilding generation builds them after it has caught up, before the swap.
 */
function indexStatements(s: string): string[] {
  return [
    primaryKey(s, 'statement_lines', 'account_id, revision, at'),
    primaryKey(s, 'journal', 'business_date, transfer_id, line_no'),
    primaryKey(s, 'audit_trail', 'position'),
    `CREATE INDEX IF NOT EXISTS statement_lines_account_id_at_revision_idx ON ${s}.statement_lines (account_id, at, revision)`,
    `CREATE INDEX IF NOT EXISTS journal_position_line_no_idx ON ${s}.journal (position, line_no)`,
    `CREATE INDEX IF NOT EXISTS journal_account_id_business_date_idx ON ${s}.journal (account_id, business_date)`,
    `CREATE INDEX IF NOT EXISTS transfers_business_date_transfer_type_idx ON ${s}.transfers (business_date, transfer_type)`,
    `CREATE INDEX IF NOT EXISTS transfers_reference_idx ON ${s}.transfers (reference) WHERE reference IS NOT NULL`,
    `CREATE INDEX IF NOT EXISTS transfers_position_idx ON ${s}.transfers (position)`,
    `CREATE INDEX IF NOT EXISTS accounts_owner_id_idx ON ${s}.accounts (owner_id)`,
    `CREATE INDEX IF NOT EXISTS accounts_kind_idx ON ${s}.accounts (kind)`,
    `CREATE INDEX IF NOT EXISTS audit_trail_at_idx ON ${s}.audit_trail (at)`,
    `CREATE INDEX IF NOT EXISTS audit_trail_actor_at_idx ON ${s}.audit_trail (actor, at)`,
  ];
}

/** The balance, hold and revision changes of the accounts in a batch, one row per event (the apply's parameters). */
const ACCOUNT_CHANGES = `SELECT account_id, revision, at, balance, NULL::numeric AS held_debit, NULL::numeric AS held_credit
      FROM unnest(p_post_account, p_post_revision, p_post_at, p_post_balance) AS p(account_id, revision, at, balance)
    UNION ALL
    SELECT account_id, revision, at, NULL,
           CASE WHEN direction = 'debit' THEN sign * amount END, CASE WHEN direction = 'credit' THEN sign * amount END
      FROM unnest(p_acct_account, p_acct_revision, p_acct_at, p_acct_hold_sign, p_acct_hold_direction,
                  p_acct_hold_amount) AS e(account_id, revision, at, sign, direction, amount)`;

/** Per account of `changes`: the last balance (by revision), the last revision and time, the holds' totals. */
function accountTotals(changes: string): string {
  return `SELECT account_id, max(revision) AS revision, max(at) AS at,
             (array_agg(balance ORDER BY revision DESC) FILTER (WHERE balance IS NOT NULL))[1] AS balance,
             coalesce(sum(held_debit), 0) AS held_debits, coalesce(sum(held_credit), 0) AS held_credits
        FROM ${changes} changes
       GROUP BY account_id`;
}

/**
 * A generation created for a rebuild appends the accounts' changes to `account_changes` (no key, no index)
 * instead of updating the accounts batch after batch; `rebuildFinishStatements` folds them in once it has caught up.
 */
function rebuildStartSql(s: string): string {
  return `
CREATE TABLE ${s}.account_changes (
  account_id text NOT NULL,
  revision bigint NOT NULL,
  at timestamptz NOT NULL,
  balance numeric,
  held_debit numeric,
  held_credit numeric
);
`;
}

/**
 * Folds the appended changes into the accounts (as the batches' updates would have), and stops appending. The
 * accounts are written anew rather than updated (an update of every row costs several times more): same columns,
 * constraints and key, the key built once at the end.
 */
function rebuildFinishStatements(s: string): string[] {
  return [
    `DO $fold$ BEGIN
  IF to_regclass('${s}.account_changes') IS NOT NULL THEN
    CREATE TABLE ${s}.accounts_folded (LIKE ${s}.accounts INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
    INSERT INTO ${s}.accounts_folded (account_id, kind, asset, owner_id, card_number, account_number, status,
                                      balance, held_debits, held_credits, revision, opened_at, updated_at)
    SELECT a.account_id, a.kind, a.asset, a.owner_id, a.card_number, a.account_number, a.status,
           coalesce(x.balance, a.balance), a.held_debits + coalesce(x.held_debits, 0),
           a.held_credits + coalesce(x.held_credits, 0), coalesce(x.revision, a.revision), a.opened_at,
           greatest(a.updated_at, x.at)
      FROM ${s}.accounts a LEFT JOIN (${accountTotals(`${s}.account_changes`)}) x ON x.account_id = a.account_id;
    DROP TABLE ${s}.accounts;
    ALTER TABLE ${s}.accounts_folded RENAME TO accounts;
    ALTER TABLE ${s}.accounts ADD CONSTRAINT accounts_pkey PRIMARY KEY (account_id);
    DROP TABLE ${s}.account_changes;
  END IF;
END $fold$`,
  ];
}

/**
 * The parameters of `apply`, in order: one array per column, grouped by the kind of row they make. The function's
 * signature and the call are both generated from this list, so they cannot drift apart.
 */
const APPLY_PARAMETERS = [
  ['count', 'integer'],
  // AccountOpened
  ['open_account', 'text[]'],
  ['open_kind', 'text[]'],
  ['open_asset', 'text[]'],
  ['open_owner', 'text[]'],
  ['open_card', 'text[]'],
  ['open_number', 'text[]'],
  ['open_revision', 'bigint[]'],
  ['open_at', 'timestamptz[]'],
  // AccountStatusChanged and CardReplaced, in log order (a new card reopens a lost account)
  ['change_type', 'text[]'],
  ['change_account', 'text[]'],
  ['change_value', 'text[]'],
  // every account event but AccountPosted: its revision and time; holds placed (+) and released (-)
  ['acct_account', 'text[]'],
  ['acct_revision', 'bigint[]'],
  ['acct_at', 'timestamptz[]'],
  ['acct_hold_sign', 'integer[]'],
  ['acct_hold_direction', 'text[]'],
  ['acct_hold_amount', 'numeric[]'],
  // AccountPosted: statement lines
  ['post_account', 'text[]'],
  ['post_revision', 'bigint[]'],
  ['post_at', 'timestamptz[]'],
  ['post_transfer', 'text[]'],
  ['post_direction', 'text[]'],
  ['post_amount', 'numeric[]'],
  ['post_balance', 'numeric[]'],
  ['post_pos', 'text[]'],
  // TransferPosted and TransferAuthorized: new transfers
  ['new_transfer', 'text[]'],
  ['new_type', 'text[]'],
  ['new_status', 'text[]'],
  ['new_key', 'text[]'],
  ['new_date', 'date[]'],
  ['new_asset', 'text[]'],
  ['new_amount', 'numeric[]'],
  ['new_amount_from_lines', 'boolean[]'],
  ['new_debit', 'text[]'],
  ['new_credit', 'text[]'],
  ['new_postings', 'text[]'],
  ['new_reference', 'text[]'],
  ['new_reason', 'text[]'],
  ['new_reverses', 'text[]'],
  ['new_expires', 'timestamptz[]'],
  ['new_at', 'timestamptz[]'],
  ['new_revision', 'bigint[]'],
  ['new_pos', 'text[]'],
  ['new_event', 'uuid[]'],
  ['new_behaviour', 'text[]'],
  // later events of a transfer's stream
  ['upd_transfer', 'text[]'],
  ['upd_revision', 'bigint[]'],
  ['upd_at', 'timestamptz[]'],
  ['upd_status', 'text[]'],
  ['upd_captured', 'numeric[]'],
  ['upd_postings', 'text[]'],
  ['upd_reversed_by', 'text[]'],
  ['upd_settlement', 'text[]'],
  // AuthorizationCaptured: what its posting lines share (date and type NULL: the authorization's)
  ['cap_transfer', 'text[]'],
  ['cap_at', 'timestamptz[]'],
  ['cap_pos', 'text[]'],
  ['cap_event', 'uuid[]'],
  ['cap_behaviour', 'text[]'],
  // posting lines: only what differs per line; what a line shares with its event is in the event's arrays, at
  // index line_ev of the new_ arrays (TransferPosted) or -line_ev of the cap_ arrays (AuthorizationCaptured)
  ['line_ev', 'integer[]'],
  ['line_no', 'integer[]'],
  ['line_account', 'text[]'],
  ['line_asset', 'text[]'],
  ['line_direction', 'text[]'],
  ['line_amount', 'numeric[]'],
  ['line_area', 'text[]'],
  ['line_kind', 'text[]'],
  // the first event of each accepted command: the audit trail
  ['audit_pos', 'text[]'],
  ['audit_event', 'uuid[]'],
  ['audit_command', 'text[]'],
  ['audit_actor', 'text[]'],
  ['audit_channel', 'text[]'],
  ['audit_source', 'text[]'],
  ['audit_request', 'text[]'],
  ['audit_subject', 'text[]'],
  ['audit_at', 'timestamptz[]'],
  ['audit_recorded_at', 'timestamptz[]'],
] as const;

type ApplyParameter = (typeof APPLY_PARAMETERS)[number][0];
type ArrayParameter = Exclude<ApplyParameter, 'count'>;

function functionsSql(s: string): string {
  const signature = APPLY_PARAMETERS.map(([name, type]) => `p_${name} ${type}`).join(', ');
  return `
-- Creates the month partitions a batch needs; months are China Standard Time (+08).
CREATE OR REPLACE FUNCTION ${s}.ensure_month_partitions(p_table text, p_months date[]) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
  v_month date;
  v_name text;
BEGIN
  FOREACH v_month IN ARRAY p_months LOOP
    v_name := p_table || '_' || to_char(v_month, 'YYYY_MM');
    IF to_regclass('${s}.' || v_name) IS NULL THEN
      IF p_table = 'journal' THEN
        EXECUTE format('CREATE TABLE ${s}.%I PARTITION OF ${s}.journal FOR VALUES FROM (%L) TO (%L)',
          v_name, v_month, (v_month + interval '1 month')::date);
      ELSE
        EXECUTE format('CREATE TABLE ${s}.%I PARTITION OF ${s}.%I FOR VALUES FROM (%L) TO (%L)',
          v_name, p_table, v_month::text || ' 00:00:00+08', (v_month + interval '1 month')::date::text || ' 00:00:00+08');
      END IF;
    END IF;
  END LOOP;
END
$fn$;

-- The batch format before typed columns (one jsonb document).
DROP FUNCTION IF EXISTS ${s}.apply(jsonb);

-- Plans stay small and simple (a few thousand rows a statement): JIT compiling them costs more than it saves.
CREATE OR REPLACE FUNCTION ${s}.apply(${signature}) RETURNS integer
LANGUAGE plpgsql SET jit = off AS $fn$
DECLARE
  v_months date[];
  v_rebuilding boolean := to_regclass('${s}.account_changes') IS NOT NULL;
BEGIN
  -- step: accounts_opened
  INSERT INTO ${s}.accounts (account_id, kind, asset, owner_id, card_number, account_number, status, balance,
                             held_debits, held_credits, revision, opened_at, updated_at)
  SELECT o.account_id, o.kind, o.asset, o.owner_id, o.card_number, o.account_number, 'open', 0, 0, 0, o.revision,
         o.at, o.at
    FROM unnest(p_open_account, p_open_kind, p_open_asset, p_open_owner, p_open_card, p_open_number,
                p_open_revision, p_open_at)
         AS o(account_id, kind, asset, owner_id, card_number, account_number, revision, at);

  -- lifecycle changes are rare and order matters (a new card reopens a lost account): one at a time
  FOR i IN 1 .. coalesce(cardinality(p_change_type), 0) LOOP
    IF p_change_type[i] = 'AccountStatusChanged' THEN
      UPDATE ${s}.accounts SET status = p_change_value[i] WHERE account_id = p_change_account[i];
    ELSE
      UPDATE ${s}.accounts
         SET card_number = p_change_value[i],
             status = CASE WHEN status = 'lost' THEN 'open' ELSE status END
       WHERE account_id = p_change_account[i];
    END IF;
  END LOOP;

  -- step: statement_lines
  SELECT array_agg(DISTINCT date_trunc('month', at AT TIME ZONE 'Asia/Shanghai')::date) INTO v_months
    FROM unnest(p_post_at) AS at;
  IF v_months IS NOT NULL THEN
    PERFORM ${s}.ensure_month_partitions('statement_lines', v_months);
  END IF;
  INSERT INTO ${s}.statement_lines (account_id, revision, at, transfer_id, direction, amount, balance, position)
  SELECT * FROM unnest(p_post_account, p_post_revision, p_post_at, p_post_transfer, p_post_direction, p_post_amount,
                       p_post_balance, p_post_pos);

  -- step: accounts_updated
  IF v_rebuilding THEN
    -- a rebuilding generation (not read yet): each batch's changes are appended, folded into the accounts once
    -- it has caught up (rebuildFinishStatements): one INSERT instead of an UPDATE of every account the batch touched
    INSERT INTO ${s}.account_changes (account_id, revision, at, balance, held_debit, held_credit)
    ${ACCOUNT_CHANGES};
  ELSE
    -- the last balance, holds, revision and time of each account in the batch
    UPDATE ${s}.accounts a
       SET balance = coalesce(x.balance, a.balance),
           held_debits = a.held_debits + x.held_debits,
           held_credits = a.held_credits + x.held_credits,
           revision = x.revision,
           updated_at = greatest(a.updated_at, x.at)
      FROM (${accountTotals(`(${ACCOUNT_CHANGES})`)}) x
     WHERE a.account_id = x.account_id;
  END IF;

  -- step: lines_staged
  -- posting lines, staged for the journal and the daily totals with the kind of their account: one lookup by
  -- key per line, so the totals below join nothing (joins of a staged batch with the accounts table are planned
  -- on guesses, and a wrong guess cost 80 ms a batch, docs/performance.md)
  -- (the decoder sends the kinds it saw opened; the others are looked up). What a line shares with its event is
  -- taken from the event's arrays by index (plpgsql holds array parameters expanded: a subscript is O(1)).
  INSERT INTO pg_temp.cp_rm_posting_lines (business_date, transfer_id, line_no, transfer_type, account_id, asset,
                                           direction, amount, at, pos, event_id, behaviour, area, kind)
  SELECT CASE WHEN l.ev > 0 THEN p_new_date[l.ev] END,
         CASE WHEN l.ev > 0 THEN p_new_transfer[l.ev] ELSE p_cap_transfer[-l.ev] END,
         l.line_no,
         CASE WHEN l.ev > 0 THEN p_new_type[l.ev] END,
         l.account_id, l.asset, l.direction, l.amount,
         CASE WHEN l.ev > 0 THEN p_new_at[l.ev] ELSE p_cap_at[-l.ev] END,
         CASE WHEN l.ev > 0 THEN p_new_pos[l.ev] ELSE p_cap_pos[-l.ev] END,
         CASE WHEN l.ev > 0 THEN p_new_event[l.ev] ELSE p_cap_event[-l.ev] END,
         CASE WHEN l.ev > 0 THEN p_new_behaviour[l.ev] ELSE p_cap_behaviour[-l.ev] END,
         l.area,
         coalesce(l.kind, (SELECT a.kind FROM ${s}.accounts a WHERE a.account_id = l.account_id))
    FROM unnest(p_line_ev, p_line_no, p_line_account, p_line_asset, p_line_direction, p_line_amount, p_line_area,
                p_line_kind)
         AS l(ev, line_no, account_id, asset, direction, amount, area, kind);

  -- step: transfers_created
  -- transfers created by TransferPosted or TransferAuthorized
  INSERT INTO ${s}.transfers (transfer_id, transfer_type, status, idempotency_key, business_date, asset, amount,
                              debit_account_id, credit_account_id, postings, reference, reason, reverses,
                              expires_at, created_at, updated_at, revision, position)
  SELECT n.transfer_id, n.transfer_type, n.status, n.idempotency_key, n.business_date, n.asset, n.amount,
         n.debit_account_id, n.credit_account_id, n.postings::jsonb, n.reference, n.reason, n.reverses,
         n.expires_at, n.at, n.at, n.revision, n.pos
    FROM unnest(p_new_transfer, p_new_type, p_new_status, p_new_key, p_new_date, p_new_asset, p_new_amount,
                p_new_amount_from_lines, p_new_debit, p_new_credit, p_new_postings, p_new_reference, p_new_reason,
                p_new_reverses, p_new_expires, p_new_at, p_new_revision, p_new_pos, p_new_event)
         AS n(transfer_id, transfer_type, status, idempotency_key, business_date, asset, amount, amount_from_lines,
              debit_account_id, credit_account_id, postings, reference, reason, reverses, expires_at, at, revision,
              pos, event_id);
  -- amounts the decoder could not add up exactly (not plain decimals): PostgreSQL adds them
  IF true = ANY(p_new_amount_from_lines) THEN
    UPDATE ${s}.transfers t
       SET amount = (SELECT sum(l.amount) FROM pg_temp.cp_rm_posting_lines l
                      WHERE l.event_id = n.event_id AND l.direction = 'debit')
      FROM unnest(p_new_transfer, p_new_event, p_new_amount_from_lines) AS n(transfer_id, event_id, from_lines)
     WHERE n.from_lines AND t.transfer_id = n.transfer_id;
  END IF;

  -- step: transfers_changed
  -- transfers changed by the later events of their stream
  IF cardinality(p_upd_transfer) > 0 THEN
    UPDATE ${s}.transfers t
       SET status = coalesce(x.status, t.status),
           captured_amount = coalesce(x.captured_amount, t.captured_amount),
           postings = coalesce(x.postings::jsonb, t.postings),
           reversed_by = coalesce(x.reversed_by, t.reversed_by),
           settlement_id = coalesce(x.settlement_id, t.settlement_id),
           revision = x.revision,
           updated_at = greatest(t.updated_at, x.at)
      FROM (
        SELECT transfer_id, max(revision) AS revision, max(at) AS at, max(status) AS status,
               max(captured_amount) AS captured_amount,
               (array_agg(postings) FILTER (WHERE postings IS NOT NULL))[1] AS postings,
               max(reversed_by) AS reversed_by, max(settlement_id) AS settlement_id
          FROM unnest(p_upd_transfer, p_upd_revision, p_upd_at, p_upd_status, p_upd_captured, p_upd_postings,
                      p_upd_reversed_by, p_upd_settlement)
               AS u(transfer_id, revision, at, status, captured_amount, postings, reversed_by, settlement_id)
         GROUP BY transfer_id
      ) x
     WHERE t.transfer_id = x.transfer_id;
  END IF;

  -- a capture's lines take their date and type from the authorization; without one they have no transfer
  IF EXISTS (SELECT 1 FROM pg_temp.cp_rm_posting_lines WHERE business_date IS NULL) THEN
    UPDATE pg_temp.cp_rm_posting_lines l
       SET business_date = t.business_date, transfer_type = t.transfer_type
      FROM ${s}.transfers t
     WHERE l.business_date IS NULL AND t.transfer_id = l.transfer_id;
    DELETE FROM pg_temp.cp_rm_posting_lines WHERE business_date IS NULL;
  END IF;

  -- step: journal
  SELECT array_agg(DISTINCT date_trunc('month', business_date)::date) INTO v_months FROM pg_temp.cp_rm_posting_lines;
  IF v_months IS NOT NULL THEN
    PERFORM ${s}.ensure_month_partitions('journal', v_months);
  END IF;
  INSERT INTO ${s}.journal (business_date, transfer_id, line_no, transfer_type, account_id, asset, direction,
                            amount, at, position, event_id)
  SELECT business_date, transfer_id, line_no, transfer_type, account_id, asset, direction, amount, at, pos, event_id
    FROM pg_temp.cp_rm_posting_lines;

  -- step: merchant_daily
  -- merchant daily totals: per merchant account, business date and transfer type; fees are what the
  -- fee-income account earned in the transfers that debited the merchant
  INSERT INTO ${s}.merchant_daily AS m (business_date, account_id, transfer_type, transfers, credits, debits, fees)
  SELECT l.business_date, l.account_id, l.transfer_type, count(DISTINCT l.transfer_id),
         coalesce(sum(l.amount) FILTER (WHERE l.direction = 'credit'), 0),
         coalesce(sum(l.amount) FILTER (WHERE l.direction = 'debit'), 0),
         coalesce(sum(l.fee) FILTER (WHERE l.direction = 'debit'), 0)
    FROM (
      SELECT f.*, sum(f.amount) FILTER (WHERE f.direction = 'credit' AND f.kind = 'platform_fee_income')
                    OVER (PARTITION BY f.transfer_id) AS fee
        FROM pg_temp.cp_rm_posting_lines f
    ) l
   WHERE l.kind LIKE 'merchant%'
   GROUP BY 1, 2, 3
  ON CONFLICT (business_date, account_id, transfer_type) DO UPDATE
     SET transfers = m.transfers + excluded.transfers, credits = m.credits + excluded.credits,
         debits = m.debits + excluded.debits, fees = m.fees + excluded.fees;

  -- step: carbon_daily
  -- carbon statistics: credits moved on users' points accounts, CO2e recorded; behaviour and area from the
  -- command's tags, else the area coded in the account id (T7), else unknown (decoded with the batch)
  INSERT INTO ${s}.carbon_daily AS c (business_date, behaviour, area, co2e_grams, credits_issued, credits_redeemed,
                                      credits_expired, issuances, redemptions, expiries)
  SELECT l.business_date, l.behaviour, l.area,
         coalesce(sum(l.amount) FILTER (WHERE l.transfer_type = 'co2e_recording' AND l.asset = 'CO2E' AND l.direction = 'credit'), 0),
         coalesce(sum(l.amount) FILTER (WHERE l.transfer_type = 'credit_issuance' AND l.kind = 'user_points' AND l.direction = 'credit'), 0),
         coalesce(sum(l.amount) FILTER (WHERE l.transfer_type = 'credit_redemption' AND l.kind = 'user_points' AND l.direction = 'debit'), 0),
         coalesce(sum(l.amount) FILTER (WHERE l.transfer_type = 'credit_expiry' AND l.kind = 'user_points' AND l.direction = 'debit'), 0),
         count(DISTINCT l.transfer_id) FILTER (WHERE l.transfer_type = 'credit_issuance' AND l.kind = 'user_points'),
         count(DISTINCT l.transfer_id) FILTER (WHERE l.transfer_type = 'credit_redemption' AND l.kind = 'user_points'),
         count(DISTINCT l.transfer_id) FILTER (WHERE l.transfer_type = 'credit_expiry' AND l.kind = 'user_points')
    FROM pg_temp.cp_rm_posting_lines l
   WHERE l.kind IS NOT NULL
     AND l.transfer_type IN ('credit_issuance', 'credit_redemption', 'credit_expiry', 'co2e_recording')
     AND (l.kind = 'user_points' OR (l.transfer_type = 'co2e_recording' AND l.asset = 'CO2E' AND l.direction = 'credit'))
   GROUP BY 1, 2, 3
  ON CONFLICT (business_date, behaviour, area) DO UPDATE
     SET co2e_grams = c.co2e_grams + excluded.co2e_grams, credits_issued = c.credits_issued + excluded.credits_issued,
         credits_redeemed = c.credits_redeemed + excluded.credits_redeemed,
         credits_expired = c.credits_expired + excluded.credits_expired, issuances = c.issuances + excluded.issuances,
         redemptions = c.redemptions + excluded.redemptions, expiries = c.expiries + excluded.expiries;

  -- step: audit_trail
  -- the audit trail: one row per accepted command, from the metadata of its first event
  INSERT INTO ${s}.audit_trail (position, event_id, command, actor, channel, source, request_id, subject, at, recorded_at)
  SELECT * FROM unnest(p_audit_pos, p_audit_event, p_audit_command, p_audit_actor, p_audit_channel, p_audit_source,
                       p_audit_request, p_audit_subject, p_audit_at, p_audit_recorded_at);

  -- step: end
  RETURN p_count;
END
$fn$;
`;
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding a batch into columns (in the runner's process, which is otherwise idle while PostgreSQL applies)
// ---------------------------------------------------------------------------------------------------------------

/** `data->>'key'`: a string as is, JSON null or a missing key as NULL, anything else as its JSON text. */
function text(value: JsonValue | undefined): string | null {
  if (value === undefined || value === null) return null;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function objectOf(value: JsonValue | undefined): JsonObject | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : undefined;
}

function linesOf(value: JsonValue | undefined): JsonObject[] {
  return Array.isArray(value) ? value.map((line) => objectOf(line) ?? {}) : [];
}

const PLAIN_DECIMAL = /^(-?)(\d+)(?:\.(\d+))?$/;

/**
 * Σ of decimal strings exactly as PostgreSQL's numeric sum prints it (the scale of the widest term), or undefined
 * when a term is not a plain decimal (PostgreSQL then sums it). Undefined for no terms, as SQL's sum is NULL.
 */
export function decimalSum(terms: readonly string[]): string | undefined {
  if (terms.length === 0) return undefined;
  if (terms.length === 1 && PLAIN_DECIMAL.test(terms[0]!)) return terms[0];
  const parsed: { units: bigint; scale: number }[] = [];
  for (const term of terms) {
    const match = PLAIN_DECIMAL.exec(term);
    if (!match) return undefined;
    const fraction = match[3] ?? '';
    const units = BigInt(match[2]! + fraction);
    parsed.push({ units: match[1] === '-' ? -units : units, scale: fraction.length });
  }
  const scale = Math.max(...parsed.map((p) => p.scale));
  let total = 0n;
  for (const p of parsed) total += p.units * 10n ** BigInt(scale - p.scale);
  const negative = total < 0n;
  const digits = (negative ? -total : total).toString().padStart(scale + 1, '0');
  const whole = digits.slice(0, digits.length - scale);
  return `${negative ? '-' : ''}${whole}${scale > 0 ? `.${digits.slice(digits.length - scale)}` : ''}`;
}

/** `account_id ~ '^86[0-9]{14}$'`: an account number that codes its area (T7) in digits 5..7. */
const AREA_CODED = /^86[0-9]{14}$/;

const TRANSFER_CHANGE_STATUS: Readonly<Record<string, string>> = {
  AuthorizationCaptured: 'captured',
  AuthorizationVoided: 'voided',
  AuthorizationExpired: 'expired',
};

/**
 * The kind of each account a decoder has seen opened (kinds never change): sent with the posting lines, so `apply`
 * looks up only the kinds of accounts opened before this decoder started reading (a rebuild, which reads from
 * position zero, looks up none). One map per runner (`newEncoder`): a process may follow several logs. Bounded:
 * emptied when full, the lookups then cover the rest.
 */
type AccountKinds = Map<string, string>;
const ACCOUNT_KINDS_MAX = 2_000_000;

function rememberKind(kinds: AccountKinds | undefined, account: string | null, kind: string | null): void {
  if (kinds === undefined || account === null || kind === null) return;
  if (kinds.size >= ACCOUNT_KINDS_MAX) kinds.clear();
  kinds.set(account, kind);
}

/**
 * The parameters of `apply` for a batch (events of the projection's types, in log order): every value the SQL
 * used to extract from JSON, extracted here, column by column.
 */
export function encodeLedgerBatch(events: readonly RecordedEvent[], kinds?: AccountKinds): unknown[] {
  const columns = Object.fromEntries(
    APPLY_PARAMETERS.filter(([name]) => name !== 'count').map(([name]) => [name, [] as unknown[]]),
  ) as Record<ArrayParameter, unknown[]>;
  const push = (values: Partial<Record<ArrayParameter, unknown>>): void => {
    for (const key in values) columns[key as ArrayParameter].push(values[key as ArrayParameter]);
  };
  const accountEvent = (d: JsonObject, e: RecordedEvent, holdSign: 1 | -1 | null = null): void =>
    push({
      acct_account: text(d['accountId']),
      acct_revision: e.revision,
      acct_at: text(d['at']),
      acct_hold_sign: holdSign,
      acct_hold_direction: holdSign === null ? null : text(d['direction']),
      acct_hold_amount: holdSign === null ? null : text(d['amount']),
    });
  const lineEv = columns.line_ev;
  const lineNo = columns.line_no;
  const lineAccount = columns.line_account;
  const lineAsset = columns.line_asset;
  const lineDirection = columns.line_direction;
  const lineAmount = columns.line_amount;
  const lineArea = columns.line_area;
  const lineKind = columns.line_kind;
  /** The event's posting lines, pushed with `ev`: the index of what they share in the new_ (+) or cap_ (-) arrays. */
  const postingLines = (e: RecordedEvent, d: JsonObject, ev: number): JsonObject[] => {
    const lines = linesOf(d['postings']);
    const taggedArea = text(objectOf(objectOf(e.metadata)?.['tags'])?.['area']);
    lines.forEach((line, n) => {
      const account = text(line['accountId']);
      lineEv.push(ev);
      lineNo.push(n);
      lineAccount.push(account);
      lineAsset.push(text(line['asset']));
      lineDirection.push(text(line['direction']));
      lineAmount.push(text(line['amount']));
      lineArea.push(taggedArea ?? (account !== null && AREA_CODED.test(account) ? account.slice(4, 7) : 'unknown'));
      lineKind.push(account === null ? null : (kinds?.get(account) ?? null));
    });
    return lines;
  };
  const behaviourOf = (e: RecordedEvent): string =>
    text(objectOf(objectOf(e.metadata)?.['tags'])?.['behaviour']) ?? 'unspecified';

  for (const e of events) {
    const d = e.data;
    const metadata = objectOf(e.metadata);
    if (metadata && Object.prototype.hasOwnProperty.call(metadata, 'command'))
      push({
        audit_pos: e.position,
        audit_event: e.eventId,
        audit_command: text(metadata['command']),
        audit_actor: text(metadata['actor']),
        audit_channel: text(metadata['channel']),
        audit_source: text(metadata['source']),
        audit_request: text(metadata['requestId']),
        audit_subject: e.streamId,
        audit_at: text(metadata['at']),
        audit_recorded_at: e.recordedAt,
      });
    switch (e.type) {
      case 'AccountOpened':
        rememberKind(kinds, text(d['accountId']), text(d['kind']));
        push({
          open_account: text(d['accountId']),
          open_kind: text(d['kind']),
          open_asset: text(d['asset']),
          open_owner: text(d['ownerId']),
          open_card: text(d['cardNumber']),
          open_number: text(d['accountNumber']),
          open_revision: e.revision,
          open_at: text(d['at']),
        });
        accountEvent(d, e);
        break;
      case 'AccountStatusChanged':
      case 'CardReplaced':
        push({
          change_type: e.type,
          change_account: text(d['accountId']),
          change_value: text(e.type === 'CardReplaced' ? d['newCardNumber'] : d['status']),
        });
        accountEvent(d, e);
        break;
      case 'HoldPlaced':
      case 'HoldReleased':
        accountEvent(d, e, e.type === 'HoldPlaced' ? 1 : -1);
        break;
      case 'AccountPosted':
        push({
          post_account: text(d['accountId']),
          post_revision: e.revision,
          post_at: text(d['at']),
          post_transfer: text(d['transferId']),
          post_direction: text(d['direction']),
          post_amount: text(d['amount']),
          post_balance: text(d['balance']),
          post_pos: e.position,
        });
        break;
      case 'TransferPosted': {
        const lines = postingLines(e, d, columns.new_transfer.length + 1);
        // count(DISTINCT asset) ignores NULL
        const assets = new Set(lines.map((l) => text(l['asset'])).filter((a) => a !== null));
        const debits = lines.filter((l) => text(l['direction']) === 'debit');
        const credits = lines.filter((l) => text(l['direction']) === 'credit');
        const amount =
          assets.size === 1 && debits.length > 0 ? decimalSum(debits.map((l) => text(l['amount']) ?? '')) : undefined;
        push({
          new_transfer: text(d['transferId']),
          new_type: text(d['transferType']),
          new_status: 'posted',
          new_key: text(d['idempotencyKey']),
          new_date: text(d['businessDate']),
          new_asset: assets.size === 1 ? [...assets][0] : null,
          new_amount: amount ?? null,
          new_amount_from_lines: assets.size === 1 && debits.length > 0 && amount === undefined,
          new_debit: debits.length > 0 ? text(debits[0]!['accountId']) : null,
          new_credit: credits.length > 0 ? text(credits[0]!['accountId']) : null,
          new_postings: d['postings'] === undefined ? null : JSON.stringify(d['postings']),
          new_reference: text(d['reference']),
          new_reason: text(d['reason']),
          new_reverses: text(d['reverses']),
          new_expires: null,
          new_at: text(d['at']),
          new_revision: e.revision,
          new_pos: e.position,
          new_event: e.eventId,
          new_behaviour: behaviourOf(e),
        });
        break;
      }
      case 'TransferAuthorized':
        push({
          new_transfer: text(d['transferId']),
          new_type: text(d['transferType']),
          new_status: 'pending',
          new_key: text(d['idempotencyKey']),
          new_date: text(d['businessDate']),
          new_asset: text(d['asset']),
          new_amount: text(d['amount']),
          new_amount_from_lines: false,
          new_debit: text(d['debitAccountId']),
          new_credit: text(d['creditAccountId']),
          new_postings: '[]',
          new_reference: text(d['reference']),
          new_reason: null,
          new_reverses: null,
          new_expires: text(d['expiresAt']),
          new_at: text(d['at']),
          new_revision: e.revision,
          new_pos: e.position,
          new_event: e.eventId,
          new_behaviour: null,
        });
        break;
      case 'AuthorizationCaptured':
      case 'AuthorizationVoided':
      case 'AuthorizationExpired':
      case 'TransferReversed':
      case 'TransferSettled':
        push({
          upd_transfer: text(d['transferId']),
          upd_revision: e.revision,
          upd_at: text(d['at']),
          upd_status: TRANSFER_CHANGE_STATUS[e.type] ?? null,
          upd_captured: text(d['capturedAmount']),
          upd_postings:
            e.type === 'AuthorizationCaptured' && d['postings'] !== undefined ? JSON.stringify(d['postings']) : null,
          upd_reversed_by: text(d['reversalTransferId']),
          upd_settlement: text(d['settlementId']),
        });
        if (e.type === 'AuthorizationCaptured') {
          push({
            cap_transfer: text(d['transferId']),
            cap_at: text(d['at']),
            cap_pos: e.position,
            cap_event: e.eventId,
            cap_behaviour: behaviourOf(e),
          });
          postingLines(e, d, -columns.cap_transfer.length);
        }
        break;
    }
  }
  return APPLY_PARAMETERS.map(([name]) => (name === 'count' ? events.length : arrayLiteral(columns[name])));
}

const NEEDS_ESCAPE = /[\\"]/;

/**
 * A PostgreSQL array literal, every element quoted: built here, ahead of the query (the batch is encoded while the
 * previous one is applied), and several times faster than the driver's generic conversion of arrays.
 */
function arrayLiteral(values: readonly unknown[]): string {
  const elements = new Array<string>(values.length);
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (value === null || value === undefined) elements[i] = 'NULL';
    else if (typeof value === 'number' || typeof value === 'boolean') elements[i] = String(value);
    else {
      const element = String(value);
      elements[i] = NEEDS_ESCAPE.test(element) ? `"${element.replace(/[\\"]/g, '\\$&')}"` : `"${element}"`;
    }
  }
  return `{${elements.join(',')}}`;
}

export const LEDGER_READ_MODEL: ProjectionDefinition = {
  name: 'ledger',
  version: 1,
  eventTypes: [
    'AccountOpened',
    'AccountStatusChanged',
    'CardReplaced',
    'AccountPosted',
    'HoldPlaced',
    'HoldReleased',
    'TransferPosted',
    'TransferAuthorized',
    'AuthorizationCaptured',
    'AuthorizationVoided',
    'AuthorizationExpired',
    'TransferReversed',
    'TransferSettled',
  ],
  tables: [
    { name: 'accounts', key: 'account_id' },
    { name: 'statement_lines', key: 'account_id, revision' },
    { name: 'transfers', key: 'transfer_id' },
    { name: 'journal', key: 'business_date, transfer_id, line_no' },
    { name: 'merchant_daily', key: 'business_date, account_id, transfer_type' },
    { name: 'carbon_daily', key: 'business_date, behaviour, area' },
    { name: 'audit_trail', key: 'position' },
  ],
  sessionSql: STAGING_SQL,
  schemaSql,
  indexStatements,
  rebuildStartSql,
  rebuildFinishStatements,
  functionsSql,
  encode: (events) => encodeLedgerBatch(events),
  newEncoder: () => {
    const kinds: AccountKinds = new Map();
    return (events) => encodeLedgerBatch(events, kinds);
  },
  applySql: (schema) =>
    `SELECT ${schema}.apply(${APPLY_PARAMETERS.map(([, type], i) => `$${i + 1}::${type}`).join(', ')}) AS applied`,
};
