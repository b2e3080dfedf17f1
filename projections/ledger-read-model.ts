import type { ProjectionDefinition } from './projection';

/**
 * The ledger's read model: accounts with balances, statement lines (each with the running balance), transfers
 * (the clearing inputs), the journal (one row per posting line), merchant daily totals, carbon statistics and the
 * audit trail of commands — all in one projection, so one transaction moves every table and the checkpoint.
 *
 * Each batch is applied by one call of `apply(json)`, set-based inside PostgreSQL: the events land once in a
 * session-local staging table and each table is fed by one statement. Every row is a function of the events alone
 * (no clock, no sequence), so a rebuild from position zero reproduces the live tables byte for byte.
 *
 * Statement lines are partitioned by the month of their time and journal lines by the month of their business
 * date (T18): an old month is detached and archived without rewriting the rest (docs/operations.md). Month
 * boundaries are in China Standard Time, the platform's business calendar.
 */

const STAGING_SQL = `
CREATE TEMP TABLE IF NOT EXISTS cp_rm_events (
  ord int NOT NULL, pos text NOT NULL, stream_id text NOT NULL, revision bigint NOT NULL, event_id uuid NOT NULL,
  type text NOT NULL, data jsonb NOT NULL, metadata jsonb NOT NULL, recorded_at timestamptz NOT NULL
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS cp_rm_lines (
  business_date date NOT NULL, transfer_id text NOT NULL, line_no int NOT NULL, transfer_type text NOT NULL,
  account_id text NOT NULL, asset text NOT NULL, direction text NOT NULL, amount numeric NOT NULL,
  at timestamptz NOT NULL, pos text NOT NULL, event_id uuid NOT NULL, metadata jsonb NOT NULL
) ON COMMIT DELETE ROWS;
`;

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
CREATE INDEX ON ${s}.accounts (owner_id);
CREATE INDEX ON ${s}.accounts (kind);

CREATE TABLE ${s}.statement_lines (
  account_id text NOT NULL,
  revision bigint NOT NULL,
  at timestamptz NOT NULL,
  transfer_id text NOT NULL,
  direction text NOT NULL,
  amount numeric NOT NULL,
  balance numeric NOT NULL,
  position text NOT NULL,
  PRIMARY KEY (account_id, revision, at)
) PARTITION BY RANGE (at);
CREATE INDEX ON ${s}.statement_lines (account_id, at, revision);

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
CREATE INDEX ON ${s}.transfers (business_date, transfer_type);
CREATE INDEX ON ${s}.transfers (reference) WHERE reference IS NOT NULL;
CREATE INDEX ON ${s}.transfers (position);

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
  event_id uuid NOT NULL,
  PRIMARY KEY (business_date, transfer_id, line_no)
) PARTITION BY RANGE (business_date);
CREATE INDEX ON ${s}.journal (position, line_no);
CREATE INDEX ON ${s}.journal (account_id, business_date);

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
  position text PRIMARY KEY,
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
CREATE INDEX ON ${s}.audit_trail (at);
CREATE INDEX ON ${s}.audit_trail (actor, at);

-- Creates the month partitions a batch needs; months are China Standard Time (+08).
CREATE FUNCTION ${s}.ensure_month_partitions(p_table text, p_months date[]) RETURNS void
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

CREATE FUNCTION ${s}.apply(p_events jsonb) RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
  v_count integer;
  v_change record;
BEGIN
  -- jsonb_array_elements: parsing the batch once as jsonb costs a third of json_to_recordset (docs/performance.md)
  INSERT INTO pg_temp.cp_rm_events (ord, pos, stream_id, revision, event_id, type, data, metadata, recorded_at)
  SELECT (x->>'o')::int, x->>'p', x->>'s', (x->>'r')::bigint, (x->>'i')::uuid, x->>'t', x->'d',
         coalesce(x->'m', '{}'::jsonb), (x->>'at')::timestamptz
    FROM jsonb_array_elements(p_events) AS x;
  GET DIAGNOSTICS v_count = ROW_COUNT;

  -- accounts
  INSERT INTO ${s}.accounts (account_id, kind, asset, owner_id, card_number, account_number, status, balance,
                             held_debits, held_credits, revision, opened_at, updated_at)
  SELECT data->>'accountId', data->>'kind', data->>'asset', data->>'ownerId', data->>'cardNumber',
         data->>'accountNumber', 'open', 0, 0, 0, revision, (data->>'at')::timestamptz, (data->>'at')::timestamptz
    FROM pg_temp.cp_rm_events WHERE type = 'AccountOpened';

  -- lifecycle changes are rare and order matters (a new card reopens a lost account): one at a time
  FOR v_change IN
    SELECT type, data FROM pg_temp.cp_rm_events WHERE type IN ('AccountStatusChanged', 'CardReplaced') ORDER BY ord
  LOOP
    IF v_change.type = 'AccountStatusChanged' THEN
      UPDATE ${s}.accounts SET status = v_change.data->>'status' WHERE account_id = v_change.data->>'accountId';
    ELSE
      UPDATE ${s}.accounts
         SET card_number = v_change.data->>'newCardNumber',
             status = CASE WHEN status = 'lost' THEN 'open' ELSE status END
       WHERE account_id = v_change.data->>'accountId';
    END IF;
  END LOOP;

  PERFORM ${s}.ensure_month_partitions('statement_lines', array_agg(DISTINCT date_trunc('month', (data->>'at')::timestamptz AT TIME ZONE 'Asia/Shanghai')::date))
     FROM pg_temp.cp_rm_events WHERE type = 'AccountPosted' HAVING count(*) > 0;
  INSERT INTO ${s}.statement_lines (account_id, revision, at, transfer_id, direction, amount, balance, position)
  SELECT data->>'accountId', revision, (data->>'at')::timestamptz, data->>'transferId', data->>'direction',
         (data->>'amount')::numeric, (data->>'balance')::numeric, pos
    FROM pg_temp.cp_rm_events WHERE type = 'AccountPosted';

  UPDATE ${s}.accounts a
     SET balance = coalesce(x.balance, a.balance),
         held_debits = a.held_debits + x.held_debits,
         held_credits = a.held_credits + x.held_credits,
         revision = x.revision,
         updated_at = greatest(a.updated_at, x.at)
    FROM (
      SELECT data->>'accountId' AS account_id,
             max(revision) AS revision,
             max((data->>'at')::timestamptz) AS at,
             ((array_agg(data->>'balance' ORDER BY revision DESC) FILTER (WHERE type = 'AccountPosted'))[1])::numeric AS balance,
             coalesce(sum(CASE type WHEN 'HoldPlaced' THEN 1 ELSE -1 END * (data->>'amount')::numeric)
               FILTER (WHERE type IN ('HoldPlaced', 'HoldReleased') AND data->>'direction' = 'debit'), 0) AS held_debits,
             coalesce(sum(CASE type WHEN 'HoldPlaced' THEN 1 ELSE -1 END * (data->>'amount')::numeric)
               FILTER (WHERE type IN ('HoldPlaced', 'HoldReleased') AND data->>'direction' = 'credit'), 0) AS held_credits
        FROM pg_temp.cp_rm_events
       WHERE type IN ('AccountOpened', 'AccountStatusChanged', 'CardReplaced', 'AccountPosted', 'HoldPlaced', 'HoldReleased')
       GROUP BY 1
    ) x
   WHERE a.account_id = x.account_id;

  -- transfers: created by TransferPosted or TransferAuthorized, then changed by later events of their stream
  INSERT INTO ${s}.transfers (transfer_id, transfer_type, status, idempotency_key, business_date, asset, amount,
                              debit_account_id, credit_account_id, postings, reference, reason, reverses,
                              expires_at, created_at, updated_at, revision, position)
  SELECT e.data->>'transferId', e.data->>'transferType', 'posted', e.data->>'idempotencyKey',
         (e.data->>'businessDate')::date,
         CASE WHEN p.assets = 1 THEN p.asset END, CASE WHEN p.assets = 1 THEN p.amount END,
         p.debit_account_id, p.credit_account_id, e.data->'postings', e.data->>'reference', e.data->>'reason',
         e.data->>'reverses', NULL, (e.data->>'at')::timestamptz, (e.data->>'at')::timestamptz, e.revision, e.pos
    FROM pg_temp.cp_rm_events e
    CROSS JOIN LATERAL (
      SELECT count(DISTINCT l->>'asset') AS assets, min(l->>'asset') AS asset,
             sum((l->>'amount')::numeric) FILTER (WHERE l->>'direction' = 'debit') AS amount,
             (array_agg(l->>'accountId') FILTER (WHERE l->>'direction' = 'debit'))[1] AS debit_account_id,
             (array_agg(l->>'accountId') FILTER (WHERE l->>'direction' = 'credit'))[1] AS credit_account_id
        FROM jsonb_array_elements(e.data->'postings') AS l
    ) p
   WHERE e.type = 'TransferPosted'
  UNION ALL
  SELECT data->>'transferId', data->>'transferType', 'pending', data->>'idempotencyKey',
         (data->>'businessDate')::date, data->>'asset', (data->>'amount')::numeric,
         data->>'debitAccountId', data->>'creditAccountId', '[]'::jsonb, data->>'reference', NULL, NULL,
         (data->>'expiresAt')::timestamptz, (data->>'at')::timestamptz, (data->>'at')::timestamptz, revision, pos
    FROM pg_temp.cp_rm_events WHERE type = 'TransferAuthorized';

  UPDATE ${s}.transfers t
     SET status = coalesce(x.status, t.status),
         captured_amount = coalesce(x.captured_amount, t.captured_amount),
         postings = coalesce(x.postings, t.postings),
         reversed_by = coalesce(x.reversed_by, t.reversed_by),
         settlement_id = coalesce(x.settlement_id, t.settlement_id),
         revision = x.revision,
         updated_at = greatest(t.updated_at, x.at)
    FROM (
      SELECT data->>'transferId' AS transfer_id,
             max(revision) AS revision,
             max((data->>'at')::timestamptz) AS at,
             max(CASE type WHEN 'AuthorizationCaptured' THEN 'captured' WHEN 'AuthorizationVoided' THEN 'voided'
                           WHEN 'AuthorizationExpired' THEN 'expired' END) AS status,
             max((data->>'capturedAmount')::numeric) AS captured_amount,
             (array_agg(data->'postings') FILTER (WHERE type = 'AuthorizationCaptured'))[1] AS postings,
             max(data->>'reversalTransferId') AS reversed_by,
             max(data->>'settlementId') AS settlement_id
        FROM pg_temp.cp_rm_events
       WHERE type IN ('AuthorizationCaptured', 'AuthorizationVoided', 'AuthorizationExpired', 'TransferReversed',
                      'TransferSettled')
       GROUP BY 1
    ) x
   WHERE t.transfer_id = x.transfer_id;

  -- posting lines: of a posted transfer, or of a capture (its date and type are the authorization's)
  INSERT INTO pg_temp.cp_rm_lines (business_date, transfer_id, line_no, transfer_type, account_id, asset,
                                   direction, amount, at, pos, event_id, metadata)
  SELECT (e.data->>'businessDate')::date, e.data->>'transferId', l.n::int - 1, e.data->>'transferType',
         l.line->>'accountId', l.line->>'asset', l.line->>'direction', (l.line->>'amount')::numeric,
         (e.data->>'at')::timestamptz, e.pos, e.event_id, e.metadata
    FROM pg_temp.cp_rm_events e, jsonb_array_elements(e.data->'postings') WITH ORDINALITY AS l(line, n)
   WHERE e.type = 'TransferPosted'
  UNION ALL
  SELECT t.business_date, t.transfer_id, l.n::int - 1, t.transfer_type,
         l.line->>'accountId', l.line->>'asset', l.line->>'direction', (l.line->>'amount')::numeric,
         (e.data->>'at')::timestamptz, e.pos, e.event_id, e.metadata
    FROM pg_temp.cp_rm_events e
    JOIN ${s}.transfers t ON t.transfer_id = e.data->>'transferId',
         jsonb_array_elements(e.data->'postings') WITH ORDINALITY AS l(line, n)
   WHERE e.type = 'AuthorizationCaptured';

  PERFORM ${s}.ensure_month_partitions('journal', array_agg(DISTINCT date_trunc('month', business_date)::date))
     FROM pg_temp.cp_rm_lines HAVING count(*) > 0;
  INSERT INTO ${s}.journal (business_date, transfer_id, line_no, transfer_type, account_id, asset, direction,
                            amount, at, position, event_id)
  SELECT business_date, transfer_id, line_no, transfer_type, account_id, asset, direction, amount, at, pos, event_id
    FROM pg_temp.cp_rm_lines;

  -- merchant daily totals: per merchant account, business date and transfer type; fees are what the fee-income
  -- account earned in the transfers that debited the merchant
  INSERT INTO ${s}.merchant_daily AS m (business_date, account_id, transfer_type, transfers, credits, debits, fees)
  WITH fee AS (
    SELECT fl.transfer_id, sum(fl.amount) AS amount
      FROM pg_temp.cp_rm_lines fl JOIN ${s}.accounts fa ON fa.account_id = fl.account_id
     WHERE fl.direction = 'credit' AND fa.kind = 'platform_fee_income'
     GROUP BY 1
  )
  SELECT l.business_date, l.account_id, l.transfer_type, count(DISTINCT l.transfer_id),
         coalesce(sum(l.amount) FILTER (WHERE l.direction = 'credit'), 0),
         coalesce(sum(l.amount) FILTER (WHERE l.direction = 'debit'), 0),
         coalesce(sum(fee.amount) FILTER (WHERE l.direction = 'debit'), 0)
    FROM pg_temp.cp_rm_lines l
    JOIN ${s}.accounts a ON a.account_id = l.account_id AND a.kind LIKE 'merchant%'
    LEFT JOIN fee ON fee.transfer_id = l.transfer_id
   GROUP BY 1, 2, 3
  ON CONFLICT (business_date, account_id, transfer_type) DO UPDATE
     SET transfers = m.transfers + excluded.transfers, credits = m.credits + excluded.credits,
         debits = m.debits + excluded.debits, fees = m.fees + excluded.fees;

  -- carbon statistics: credits moved on users' points accounts, CO2e recorded; behaviour and area from the
  -- command's tags, else the area coded in the account id (T7), else unknown
  INSERT INTO ${s}.carbon_daily AS c (business_date, behaviour, area, co2e_grams, credits_issued, credits_redeemed,
                                      credits_expired, issuances, redemptions, expiries)
  SELECT l.business_date,
         coalesce(l.metadata->'tags'->>'behaviour', 'unspecified'),
         coalesce(l.metadata->'tags'->>'area',
                  CASE WHEN l.account_id ~ '^86[0-9]{14}$' THEN substr(l.account_id, 5, 3) ELSE 'unknown' END),
         coalesce(sum(l.amount) FILTER (WHERE l.transfer_type = 'co2e_recording' AND l.asset = 'CO2E' AND l.direction = 'credit'), 0),
         coalesce(sum(l.amount) FILTER (WHERE l.transfer_type = 'credit_issuance' AND a.kind = 'user_points' AND l.direction = 'credit'), 0),
         coalesce(sum(l.amount) FILTER (WHERE l.transfer_type = 'credit_redemption' AND a.kind = 'user_points' AND l.direction = 'debit'), 0),
         coalesce(sum(l.amount) FILTER (WHERE l.transfer_type = 'credit_expiry' AND a.kind = 'user_points' AND l.direction = 'debit'), 0),
         count(DISTINCT l.transfer_id) FILTER (WHERE l.transfer_type = 'credit_issuance' AND a.kind = 'user_points'),
         count(DISTINCT l.transfer_id) FILTER (WHERE l.transfer_type = 'credit_redemption' AND a.kind = 'user_points'),
         count(DISTINCT l.transfer_id) FILTER (WHERE l.transfer_type = 'credit_expiry' AND a.kind = 'user_points')
    FROM pg_temp.cp_rm_lines l
    JOIN ${s}.accounts a ON a.account_id = l.account_id
   WHERE l.transfer_type IN ('credit_issuance', 'credit_redemption', 'credit_expiry', 'co2e_recording')
     AND (a.kind = 'user_points' OR (l.transfer_type = 'co2e_recording' AND l.asset = 'CO2E' AND l.direction = 'credit'))
   GROUP BY 1, 2, 3
  ON CONFLICT (business_date, behaviour, area) DO UPDATE
     SET co2e_grams = c.co2e_grams + excluded.co2e_grams, credits_issued = c.credits_issued + excluded.credits_issued,
         credits_redeemed = c.credits_redeemed + excluded.credits_redeemed,
         credits_expired = c.credits_expired + excluded.credits_expired, issuances = c.issuances + excluded.issuances,
         redemptions = c.redemptions + excluded.redemptions, expiries = c.expiries + excluded.expiries;

  -- the audit trail: one row per accepted command, from the metadata of its first event
  INSERT INTO ${s}.audit_trail (position, event_id, command, actor, channel, source, request_id, subject, at, recorded_at)
  SELECT pos, event_id, metadata->>'command', metadata->>'actor', metadata->>'channel', metadata->>'source',
         metadata->>'requestId', stream_id, (metadata->>'at')::timestamptz, recorded_at
    FROM pg_temp.cp_rm_events WHERE metadata ? 'command';

  RETURN v_count;
END
$fn$;
`;
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
  applySql: (schema) => `SELECT ${schema}.apply($1::jsonb) AS applied`,
};
