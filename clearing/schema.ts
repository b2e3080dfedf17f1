/**
 * The tables of the clearing runs, beside the service tables (cp_payments, cp_refunds, cp_top_ups) in the
 * read-model database. Every table is keyed by what makes a rerun a no-op: a run by (step, scope, date), a result
 * by (date, merchant), a settlement line by (date, merchant), a staged bill line by (run, line), a case by a
 * deterministic id derived from what it is about.
 */
export const CLEARING_SQL = `
CREATE TABLE IF NOT EXISTS cp_clearing_runs (
  step text NOT NULL CHECK (step IN ('clearing', 'settlement', 'reconciliation')),
  -- '*' for clearing and settlement (all merchants), the channel for reconciliation.
  scope text NOT NULL,
  business_date date NOT NULL,
  run_id uuid NOT NULL UNIQUE,
  status text NOT NULL CHECK (status IN ('started', 'succeeded', 'failed')),
  -- How far a run got; a rerun of a failed run resumes after the last phase it finished.
  phase text NOT NULL DEFAULT 'new',
  attempts integer NOT NULL DEFAULT 1,
  source_sm3 text,
  result jsonb,
  error text,
  started_at timestamptz NOT NULL,
  finished_at timestamptz,
  PRIMARY KEY (step, scope, business_date)
);
CREATE TABLE IF NOT EXISTS cp_clearing_files (
  step text NOT NULL,
  scope text NOT NULL,
  business_date date NOT NULL,
  name text NOT NULL,
  sm3 text NOT NULL,
  size_bytes bigint NOT NULL,
  PRIMARY KEY (step, scope, business_date, name)
);
CREATE TABLE IF NOT EXISTS cp_clearing_results (
  business_date date NOT NULL,
  merchant_id text NOT NULL,
  payment_count bigint NOT NULL,
  payment_amount numeric(20, 2) NOT NULL,
  refund_count bigint NOT NULL,
  refund_amount numeric(20, 2) NOT NULL,
  fee numeric(20, 2) NOT NULL,
  adjustment numeric(20, 2) NOT NULL,
  carried_in numeric(20, 2) NOT NULL CHECK (carried_in <= 0),
  net numeric(20, 2) NOT NULL,
  payout numeric(20, 2) NOT NULL CHECK (payout >= 0),
  carried_out numeric(20, 2) NOT NULL CHECK (carried_out <= 0),
  PRIMARY KEY (business_date, merchant_id),
  CHECK (net = payment_amount - refund_amount - fee + adjustment + carried_in),
  CHECK (payout = greatest(net, 0) AND carried_out = least(net, 0))
);
CREATE INDEX IF NOT EXISTS cp_clearing_results_merchant ON cp_clearing_results (merchant_id, business_date);
CREATE TABLE IF NOT EXISTS cp_clearing_adjustments (
  transfer_id text PRIMARY KEY,
  merchant_id text NOT NULL,
  business_date date NOT NULL,
  -- Signed: positive credits the merchant's pending settlement account.
  amount numeric(20, 2) NOT NULL,
  case_id uuid,
  reason text NOT NULL
);
CREATE INDEX IF NOT EXISTS cp_clearing_adjustments_date ON cp_clearing_adjustments (business_date, merchant_id);
CREATE TABLE IF NOT EXISTS cp_settlement_lines (
  business_date date NOT NULL,
  merchant_id text NOT NULL,
  amount numeric(20, 2) NOT NULL CHECK (amount >= 0),
  settlement_id text NOT NULL,
  state text NOT NULL CHECK (state IN ('pending', 'posted', 'marked', 'held')),
  transfers_marked integer NOT NULL DEFAULT 0,
  held_reason text,
  PRIMARY KEY (business_date, merchant_id)
);
-- Which channel acquires a merchant's orders (its bill lists them); merchants without a row use the default channel.
CREATE TABLE IF NOT EXISTS cp_clearing_merchant_channels (
  merchant_id text PRIMARY KEY,
  channel text NOT NULL
);
-- Staging of a bill: an UNLOGGED table per run (reconciliation-step.ts), dropped once the bill is matched.
CREATE TABLE IF NOT EXISTS cp_recon_cases (
  case_id uuid PRIMARY KEY,
  channel text NOT NULL,
  bill_date date NOT NULL,
  class text NOT NULL,
  kind text NOT NULL,
  merchant_order_no text NOT NULL,
  refund_no text NOT NULL,
  line_no integer,
  channel_trade_no text,
  channel_amount numeric(20, 2),
  channel_status text,
  our_source text,
  our_id text,
  our_amount numeric(20, 2),
  our_status text,
  our_date date,
  merchant_id text,
  wallet_id text,
  -- Signed money difference, channel minus ours (payments count positive, refunds negative): what the case holds
  -- in PLATFORM-SUSPENSE-CNY until it is resolved.
  delta numeric(20, 2) NOT NULL,
  state text NOT NULL CHECK (state IN ('open', 'held', 'resolved')),
  resolution text,
  resolved_date date,
  resolved_by text,
  -- The earlier case this one re-matched (cross-day), if any.
  rematches uuid,
  hold_posted boolean NOT NULL DEFAULT false,
  release_posted boolean NOT NULL DEFAULT false,
  note text
);
CREATE INDEX IF NOT EXISTS cp_recon_cases_key ON cp_recon_cases (channel, kind, merchant_order_no, refund_no);
CREATE INDEX IF NOT EXISTS cp_recon_cases_bill ON cp_recon_cases (channel, bill_date);
CREATE INDEX IF NOT EXISTS cp_recon_cases_our ON cp_recon_cases (our_id) WHERE our_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS cp_recon_cases_unresolved ON cp_recon_cases (state) WHERE state <> 'resolved';
`;
