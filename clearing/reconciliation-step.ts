import { Money } from '../core-ledger';
import { AlipayBillParser } from './bills/alipay-bill';
import { BankSimStatementParser } from './bills/bank-sim-statement';
import type { BillChannel, BillParseResult, BillRecord } from './bills/bill-record';
import type { BillLineParser } from './bills/line-reader';
import { BillReader } from './bills/line-reader';
import { UnionpayZmParser } from './bills/unionpay-zm';
import { WechatTradeBillParser } from './bills/wechat-trade-bill';
import type { ClearingDeps } from './context';
import { inParallel } from './context';
import type { DiscrepancyClass } from './discrepancy-classes';
import {
  CHANNEL_STATUS_OK,
  DISCREPANCY_CLASS_NAMES,
  MAX_MATCH_WINDOW_DAYS,
  OUR_STATUS_EFFECT,
} from './discrepancy-classes';
import { csvField } from './files/csv';
import { sm3Hex } from './files/sm3-manifest';
import { writeStepFiles } from './output-files';
import { RunPreconditionError, withRun } from './run-gate';
import { postSuspenseMove } from './suspense';

/**
 * Reconciliation (对账) of one channel bill against our records, set-based in PostgreSQL:
 *
 * 1. **Import** (L1): the bill is parsed by its channel's parser and must parse without a single error (a file that
 *    does not add up to its own summary is a parse problem, not a discrepancy); its lines go into an UNLOGGED staging
 *    table of the run, without indexes, by multi-row INSERTs of column arrays, `IMPORT_BATCH_LINES` at a time, while
 *    the next chunk is parsed. The match drops it.
 * 2. **Match** (L2), in one transaction: our side (captured payments, done refunds and top-ups of the channel, the
 *    bill date ± the window) and the bill's lines are joined on (kind, merchant order no, refund no) and classified
 *    with one CASE each (discrepancy-classes.ts). Only discrepancies are written, as cases; earlier `short`/`long`
 *    cases still held in suspense are matched again here (cross-day), and released.
 * 3. **Suspense**: every case's delta is held in PLATFORM-SUSPENSE-CNY (挂账) by a ledger transfer with an id derived
 *    from the case; re-matched cases are released the same way. A rerun posts nothing twice.
 */

export type ReconChannel = BillChannel;
export const RECON_CHANNELS: readonly ReconChannel[] = ['wechat', 'alipay', 'unionpay', 'bank_sim'];

export interface ReconciliationSummary {
  readonly channel: ReconChannel;
  readonly businessDate: string;
  readonly lines: number;
  readonly matched: number;
  readonly classes: Readonly<Record<DiscrepancyClass, number>>;
  /** Cases of this bill for an operator (every class but cross_day, which the matcher resolves itself). */
  readonly discrepancies: number;
  /** Earlier cases this bill matched again (and released from suspense). */
  readonly rematched: number;
  readonly billSm3: string;
  readonly directory: string;
  readonly files: readonly string[];
  readonly replayed: boolean;
}

/** Lines per multi-row INSERT into staging (13 arrays of this length per statement). */
export const IMPORT_BATCH_LINES = 20_000;

export class BillRejectedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BillRejectedError';
  }
}

export function isReconChannel(value: string): value is ReconChannel {
  return (RECON_CHANNELS as readonly string[]).includes(value);
}

function parserFor(channel: ReconChannel, businessDate: string, onRecord: (r: BillRecord) => void): BillLineParser {
  switch (channel) {
    case 'wechat':
      return new WechatTradeBillParser({ onRecord });
    case 'alipay':
      return new AlipayBillParser({ onRecord });
    case 'unionpay':
      return new UnionpayZmParser({ settleDate: businessDate, onRecord });
    case 'bank_sim':
      return new BankSimStatementParser({ onRecord });
  }
}

export async function runReconciliationStep(
  deps: ClearingDeps,
  channel: ReconChannel,
  businessDate: string,
  bill: Buffer,
  billName: string,
): Promise<ReconciliationSummary> {
  if (deps.options.matchWindowDays < 0 || deps.options.matchWindowDays > MAX_MATCH_WINDOW_DAYS)
    throw new RangeError(`the match window is 0..${MAX_MATCH_WINDOW_DAYS} days`);
  const billSm3 = sm3Hex(bill);
  return withRun(deps.db, 'reconciliation', channel, businessDate, deps.now, { sourceSm3: billSm3 }, async (run) => {
    if (run.sourceSm3 !== null && run.sourceSm3 !== billSm3)
      throw new RunPreconditionError(
        `another bill (SM3 ${run.sourceSm3.slice(0, 16)}…) was reconciled for ${channel} ${businessDate}; a correction is a new bill date or a case resolution`,
      );
    if (!run.alreadySucceeded) {
      if (run.phase === 'imported' && !(await stagingIntact(deps, run.runId))) run.phase = 'new';
      if (run.phase === 'new') {
        const lines = await importBill(deps, run.runId, channel, businessDate, bill);
        await run.setPhase('imported');
        await deps.hooks.progress?.(`reconciliation ${channel} ${businessDate}: ${lines} lines imported`);
        await deps.hooks.faultAt?.('reconciliation_imported');
      }
      if (run.phase === 'imported') {
        // The phase moves in the classifying transaction itself: classified once, or not at all.
        await classify(deps, run.runId, channel, businessDate);
        run.phase = 'classified';
        await deps.hooks.progress?.(`reconciliation ${channel} ${businessDate}: classified`);
        await deps.hooks.faultAt?.('reconciliation_classified');
      }
      await postPendingSuspenseMoves(deps, channel);
    }
    return summarise(deps, run.runId, channel, businessDate, billSm3, bill, billName, run.alreadySucceeded);
  });
}

/** The staging table of one run: UNLOGGED (no WAL) and without any index while it is filled (notes §4.3). */
export function stagingTableOf(runId: string): string {
  return `cp_recon_stage_${runId.replace(/-/g, '')}`;
}

async function importBill(
  deps: ClearingDeps,
  runId: string,
  channel: ReconChannel,
  businessDate: string,
  bill: Buffer,
): Promise<number> {
  const table = stagingTableOf(runId);
  let buffer: BillRecord[] = [];
  let otherDates = 0;
  const parser = parserFor(channel, businessDate, (record) => {
    if (record.businessDate !== businessDate) otherDates += 1;
    buffer.push(record);
  });
  const reader = new BillReader(parser);
  await deps.db.query(`DROP TABLE IF EXISTS ${table}`);
  await deps.db.query(
    `CREATE UNLOGGED TABLE ${table} (line_no integer NOT NULL, kind text NOT NULL, channel_trade_no text NOT NULL,
       merchant_order_no text NOT NULL, refund_no text NOT NULL, amount numeric(20, 2) NOT NULL,
       fee numeric(20, 5) NOT NULL, status text NOT NULL, trade_time text NOT NULL)`,
  );
  const insert = async (rows: readonly BillRecord[]): Promise<void> => {
    await deps.db.query(
      `INSERT INTO ${table} SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[],
         $6::numeric[], $7::numeric[], $8::text[], $9::text[])`,
      [
        rows.map((r) => r.rawLine),
        rows.map((r) => r.kind),
        rows.map((r) => r.channelTradeNo),
        rows.map((r) => r.merchantOrderNo),
        rows.map((r) => r.refundNo ?? ''),
        rows.map((r) => r.amount),
        rows.map((r) => r.fee),
        rows.map((r) => r.status),
        rows.map((r) => r.tradeTime),
      ],
    );
  };
  // Parsing (this process) and inserting (PostgreSQL) overlap: one INSERT in flight while the next chunk is parsed.
  let inFlight: Promise<void> = Promise.resolve();
  const flush = async (): Promise<void> => {
    if (buffer.length === 0) return;
    const rows = buffer;
    buffer = [];
    await inFlight;
    inFlight = insert(rows);
  };
  const CHUNK_BYTES = 1024 * 1024;
  for (let offset = 0; offset < bill.length; offset += CHUNK_BYTES) {
    reader.push(bill.subarray(offset, offset + CHUNK_BYTES));
    if (buffer.length >= IMPORT_BATCH_LINES) await flush();
  }
  const result: BillParseResult = reader.end();
  await flush();
  await inFlight;
  if (result.errors.length > 0) {
    const first = result.errors[0]!;
    throw new BillRejectedError(
      `the ${channel} bill has ${result.errors.length} errors (first: line ${first.line} ${first.code}: ${first.message}); nothing was matched`,
    );
  }
  if (otherDates > 0)
    throw new BillRejectedError(`${otherDates} lines of the ${channel} bill are not dated ${businessDate}`);
  await deps.db.query(`UPDATE cp_clearing_runs SET result = jsonb_build_object('lines', $2::int) WHERE run_id = $1`, [
    runId,
    result.lines.records,
  ]);
  return result.lines.records;
}

/** After a database crash an UNLOGGED table comes back empty: a resumed run then imports the bill again. */
async function stagingIntact(deps: ClearingDeps, runId: string): Promise<boolean> {
  const table = stagingTableOf(runId);
  const rows = await deps.db.query<{ present: boolean; expected: string | null }>(
    `SELECT to_regclass($2) IS NOT NULL AS present,
            (SELECT result->>'lines' FROM cp_clearing_runs WHERE run_id = $1) AS expected`,
    [runId, table],
  );
  if (!rows[0]!.present || rows[0]!.expected === null) return false;
  const count = await deps.db.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`);
  return count[0]!.n === rows[0]!.expected;
}

function effectCase(column: string, table: Readonly<Record<string, string>>): string {
  const whens = Object.entries(table).map(([status, effect]) => `WHEN '${status}' THEN '${effect}'`);
  return `CASE ${column} ${whens.join(' ')} ELSE 'pending' END`;
}

const TOP_UP_DATE = `((coalesce(t.settled_at, t.created_at) AT TIME ZONE 'Asia/Shanghai') + make_interval(hours => :shift::int))::date`;

/** Our side of one channel around the bill date: one row per key (kind, merchant order no, refund no). */
const OURS_SQL = `
CREATE TEMP TABLE rc_ours ON COMMIT DROP AS
SELECT DISTINCT ON (kind, merchant_order_no, refund_no) * FROM (
  SELECT 'payment'::text AS kind, p.order_id AS merchant_order_no, ''::text AS refund_no,
         p.gross::numeric(20, 2) AS amount, ${effectCase('p.status', OUR_STATUS_EFFECT.payment)} AS effect,
         p.status AS our_status, p.business_date AS our_date, 'payment'::text AS source, p.payment_id AS our_id,
         p.merchant_id, p.wallet_id
    FROM cp_payments p LEFT JOIN cp_clearing_merchant_channels mc ON mc.merchant_id = p.merchant_id
   WHERE coalesce(mc.channel, :default_channel) = :channel AND p.business_date BETWEEN :date::date - :window::int AND :date::date + :window::int
  UNION ALL
  SELECT 'refund', p.order_id, r.refund_id, r.amount::numeric(20, 2), ${effectCase('r.status', OUR_STATUS_EFFECT.refund)},
         r.status, r.business_date, 'refund', r.payment_id || '|' || r.refund_id, p.merchant_id, p.wallet_id
    FROM cp_refunds r JOIN cp_payments p ON p.payment_id = r.payment_id
    LEFT JOIN cp_clearing_merchant_channels mc ON mc.merchant_id = p.merchant_id
   WHERE coalesce(mc.channel, :default_channel) = :channel AND r.business_date BETWEEN :date::date - :window::int AND :date::date + :window::int
  UNION ALL
  SELECT 'payment', t.top_up_id, '', t.amount::numeric(20, 2), ${effectCase('t.status', OUR_STATUS_EFFECT.top_up)},
         t.status, ${TOP_UP_DATE}, 'top_up', t.top_up_id, NULL, t.wallet_id
    FROM cp_top_ups t
   WHERE t.channel = :channel AND ${TOP_UP_DATE} BETWEEN :date::date - :window::int AND :date::date + :window::int
) o ORDER BY kind, merchant_order_no, refund_no, our_date, our_id`;

const SIGN = `CASE kind WHEN 'payment' THEN 1 ELSE -1 END`;
const CASE_ID = (cls: string, line: string, our: string): string =>
  `md5('case|' || :channel || '|' || :date::text || '|' || ${cls} || '|' || kind || '|' || merchant_order_no || '|' || refund_no || '|' || coalesce(${line}::text, '') || '|' || coalesce(${our}, ''))::uuid`;

/** Replaces `:name` with positional parameters, so each statement sends exactly the values it uses. */
function named(text: string, values: Readonly<Record<string, unknown>>): [string, unknown[]] {
  const order: string[] = [];
  const sql = text.replace(/(?<!:):([a-z_]+)/g, (_m, name: string) => {
    if (!(name in values)) throw new Error(`assertion: no value for :${name}`);
    let index = order.indexOf(name);
    if (index < 0) index = order.push(name) - 1;
    return `$${index + 1}`;
  });
  return [sql, order.map((name) => values[name])];
}

async function classify(deps: ClearingDeps, runId: string, channel: ReconChannel, businessDate: string): Promise<void> {
  const values = {
    run: runId,
    channel,
    date: businessDate,
    window: deps.options.matchWindowDays,
    default_channel: deps.options.defaultChannel,
    shift: deps.options.cutoffHourLocal === 0 ? 0 : 24 - deps.options.cutoffHourLocal,
    ok_words: CHANNEL_STATUS_OK,
  };
  await deps.db.transaction(async (tx) => {
    const run = async <Row>(text: string): Promise<Row[]> => tx.query<Row>(...named(text, values));
    // A resumed run classifies again from scratch: the cases of this bill are derived, their ids deterministic.
    await run(`DELETE FROM cp_recon_cases WHERE channel = :channel AND bill_date = :date::date AND NOT hold_posted
                 AND state <> 'resolved'`);
    await run(OURS_SQL);
    // Temporary tables have no statistics until analysed: without them the planner picks nested loops over 1M rows.
    await run('ANALYZE rc_ours');
    await run(`
CREATE TEMP TABLE rc_ch ON COMMIT DROP AS
SELECT l.line_no, l.kind, l.merchant_order_no, l.refund_no, l.channel_trade_no, l.amount, l.status,
       CASE WHEN l.status = ANY(:ok_words::text[]) THEN 'ok' ELSE 'void' END AS effect,
       row_number() OVER (PARTITION BY l.kind, l.merchant_order_no, l.refund_no ORDER BY l.line_no) AS rn
  FROM ${stagingTableOf(runId)} l`);
    await run('ANALYZE rc_ch');
    await run(`
CREATE TEMP TABLE rc_open ON COMMIT DROP AS
SELECT case_id, class, kind, merchant_order_no, refund_no, our_id, delta
  FROM cp_recon_cases
 WHERE channel = :channel AND state IN ('open', 'held') AND class IN ('short', 'long')
   AND bill_date < :date::date AND bill_date >= :date::date - :window::int`);
    await run('ANALYZE rc_open');
    await run(`
CREATE TEMP TABLE rc_pairs ON COMMIT DROP AS
SELECT c.line_no, c.kind, c.merchant_order_no, c.refund_no, c.channel_trade_no, c.amount AS c_amount,
       c.status AS c_status, c.effect AS c_effect, o.source, o.our_id, o.amount AS o_amount, o.our_status,
       o.effect AS o_effect, o.our_date, o.merchant_id, o.wallet_id, s.case_id AS open_short,
       CASE
         WHEN o.our_id IS NULL THEN 'long'
         WHEN c.effect <> o.effect THEN 'status_mismatch'
         WHEN c.amount <> o.amount THEN 'amount_mismatch'
         WHEN o.our_date = :date::date THEN 'matched'
         WHEN o.our_date > :date::date OR s.case_id IS NOT NULL THEN 'cross_day'
         -- An earlier record matched on its own bill already: the channel billed it twice.
         WHEN EXISTS (SELECT 1 FROM cp_recon_cases x WHERE x.channel = :channel AND x.our_id = o.our_id AND x.class <> 'short')
           OR EXISTS (SELECT 1 FROM cp_clearing_runs r WHERE r.step = 'reconciliation' AND r.scope = :channel
                        AND r.business_date = o.our_date AND r.status = 'succeeded') THEN 'duplicate'
         ELSE 'cross_day'
       END AS class
  FROM rc_ch c
  LEFT JOIN rc_ours o ON o.kind = c.kind AND o.merchant_order_no = c.merchant_order_no AND o.refund_no = c.refund_no
  LEFT JOIN rc_open s ON s.class = 'short' AND s.our_id = o.our_id
 WHERE c.rn = 1`);
    await run('ANALYZE rc_pairs');
    const cols = `case_id, channel, bill_date, class, kind, merchant_order_no, refund_no, line_no, channel_trade_no,
      channel_amount, channel_status, our_source, our_id, our_amount, our_status, our_date, merchant_id, wallet_id, delta,
      state, resolution, resolved_date, rematches`;
    const channelSigned = `${SIGN} * CASE WHEN c_effect = 'ok' THEN c_amount ELSE 0 END`;
    const oursSigned = `${SIGN} * CASE WHEN o_effect = 'ok' THEN o_amount ELSE 0 END`;
    // Lines of the bill that found a counterpart, or none.
    await run(`
INSERT INTO cp_recon_cases (${cols})
SELECT ${CASE_ID('class', 'line_no', 'our_id')}, :channel, :date::date, class, kind, merchant_order_no, refund_no,
       line_no, channel_trade_no, c_amount, c_status, source, our_id, o_amount, our_status, our_date, merchant_id,
       wallet_id,
       CASE class WHEN 'cross_day' THEN 0 WHEN 'duplicate' THEN ${channelSigned} ELSE ${channelSigned} - ${oursSigned} END,
       CASE class WHEN 'cross_day' THEN 'resolved' ELSE 'open' END,
       CASE class WHEN 'cross_day' THEN 'rematched' END,
       CASE class WHEN 'cross_day' THEN :date::date END,
       open_short
  FROM rc_pairs WHERE class <> 'matched'
ON CONFLICT (case_id) DO NOTHING`);
    // The second and later lines of one key in this bill.
    await run(`
INSERT INTO cp_recon_cases (${cols})
SELECT ${CASE_ID("'duplicate'", 'line_no', 'NULL')}, :channel, :date::date, 'duplicate', kind, merchant_order_no,
       refund_no, line_no, channel_trade_no, amount, status, source, our_id, our_amount, our_status, our_date,
       merchant_id, wallet_id, ${SIGN} * CASE WHEN effect = 'ok' THEN amount ELSE 0 END, 'open', NULL, NULL, NULL
  FROM (SELECT c.*, o.source, o.our_id, o.amount AS our_amount, o.our_status, o.our_date, o.merchant_id, o.wallet_id
          FROM rc_ch c LEFT JOIN rc_ours o
            ON o.kind = c.kind AND o.merchant_order_no = c.merchant_order_no AND o.refund_no = c.refund_no
         WHERE c.rn > 1) d
ON CONFLICT (case_id) DO NOTHING`);
    // Our successful records of the date the bill lacks: short, unless an earlier bill's long case was this record.
    await run(`
INSERT INTO cp_recon_cases (${cols})
SELECT ${CASE_ID('cls', 'NULL', 'our_id')}, :channel, :date::date, cls, kind, merchant_order_no, refund_no, NULL, NULL,
       NULL, NULL, source, our_id, amount, our_status, our_date, merchant_id, wallet_id, delta,
       CASE cls WHEN 'cross_day' THEN 'resolved' ELSE 'open' END, CASE cls WHEN 'cross_day' THEN 'rematched' END,
       CASE cls WHEN 'cross_day' THEN :date::date END, long_case
  FROM (
    SELECT o.*, l.case_id AS long_case,
           coalesce(l.delta, 0) - ${SIGN.replace('kind', 'o.kind')} * o.amount AS delta,
           CASE WHEN l.case_id IS NULL THEN 'short'
                WHEN l.delta = ${SIGN.replace('kind', 'o.kind')} * o.amount THEN 'cross_day'
                ELSE 'amount_mismatch' END AS cls
      FROM rc_ours o
      LEFT JOIN rc_open l ON l.class = 'long' AND l.kind = o.kind AND l.merchant_order_no = o.merchant_order_no
                          AND l.refund_no = o.refund_no
     WHERE o.our_date = :date::date AND o.effect = 'ok'
       AND NOT EXISTS (SELECT 1 FROM rc_pairs p WHERE p.our_id = o.our_id)
       AND NOT EXISTS (SELECT 1 FROM cp_recon_cases x WHERE x.channel = :channel AND x.our_id = o.our_id
                         AND x.bill_date <> :date::date AND x.class <> 'short')
  ) s
ON CONFLICT (case_id) DO NOTHING`);
    // The earlier cases matched again by this bill leave suspense.
    await run(`
UPDATE cp_recon_cases SET state = 'resolved', resolution = 'rematched', resolved_date = :date::date,
       note = 're-matched on the ' || :channel || ' bill of ' || :date
 WHERE case_id IN (SELECT rematches FROM cp_recon_cases
                    WHERE channel = :channel AND bill_date = :date::date AND rematches IS NOT NULL)
   AND state <> 'resolved'`);
    await run(`
UPDATE cp_clearing_runs
   SET result = result || jsonb_build_object('matched', (SELECT count(*) FROM rc_pairs WHERE class = 'matched')),
       phase = 'classified'
 WHERE run_id = :run::uuid`);
    // The staging table has served: the bill itself is kept as a file with the run's manifest.
    await run(`DROP TABLE ${stagingTableOf(runId)}`);
  });
}

/**
 * Holds every case's delta in suspense, and releases the cases the matcher resolved (re-matched); each move is a
 * ledger transfer whose id is derived from the case, so a rerun after a crash moves nothing twice.
 */
export async function postPendingSuspenseMoves(deps: ClearingDeps, channel: string): Promise<void> {
  const holds = await deps.db.query<{ case_id: string; delta: string; bill_date: string }>(
    `SELECT case_id, delta::text, bill_date::text FROM cp_recon_cases
      WHERE channel = $1 AND delta <> 0 AND NOT hold_posted ORDER BY case_id`,
    [channel],
  );
  await inParallel(holds, deps.options.ledgerConcurrency, async (c) => {
    await postSuspenseMove(deps, 'hold', c.case_id, new Money(c.delta), c.bill_date);
    await deps.db.query('UPDATE cp_recon_cases SET hold_posted = true WHERE case_id = $1', [c.case_id]);
  });
  const releases = await deps.db.query<{ case_id: string; delta: string; resolved_date: string }>(
    `SELECT case_id, delta::text, resolved_date::text FROM cp_recon_cases
      WHERE channel = $1 AND resolution = 'rematched' AND delta <> 0 AND hold_posted AND NOT release_posted
      ORDER BY case_id`,
    [channel],
  );
  await inParallel(releases, deps.options.ledgerConcurrency, async (c) => {
    await postSuspenseMove(deps, 'release', c.case_id, new Money(c.delta), c.resolved_date);
    await deps.db.query('UPDATE cp_recon_cases SET release_posted = true WHERE case_id = $1', [c.case_id]);
  });
}

const CASE_COLUMNS = [
  'case_id',
  'class',
  'state',
  'kind',
  'merchant_order_no',
  'refund_no',
  'line_no',
  'channel_trade_no',
  'channel_amount',
  'channel_status',
  'our_source',
  'our_id',
  'our_amount',
  'our_status',
  'our_date',
  'delta',
  'rematches',
] as const;

async function summarise(
  deps: ClearingDeps,
  runId: string,
  channel: ReconChannel,
  businessDate: string,
  billSm3: string,
  bill: Buffer,
  billName: string,
  replayed: boolean,
): Promise<ReconciliationSummary> {
  // The case file lists what the matcher found (its first state), so a rerun writes the same bytes after resolutions.
  const cases = await deps.db.query<Record<(typeof CASE_COLUMNS)[number], string | null>>(
    `SELECT case_id::text, class, CASE class WHEN 'cross_day' THEN 'resolved' ELSE 'open' END AS state, kind,
            merchant_order_no, refund_no, line_no::text, channel_trade_no, channel_amount::text, channel_status,
            our_source, our_id, our_amount::text, our_status, our_date::text, delta::text, rematches::text
       FROM cp_recon_cases WHERE channel = $1 AND bill_date = $2 ORDER BY class, kind, merchant_order_no, refund_no, case_id`,
    [channel, businessDate],
  );
  const csv = [CASE_COLUMNS.join(',')]
    .concat(cases.map((c) => CASE_COLUMNS.map((k) => csvField(c[k] ?? '')).join(',')))
    .join('\n');
  const counts = await deps.db.query<{ class: DiscrepancyClass; n: string }>(
    `SELECT class, count(*)::text AS n
       FROM cp_recon_cases WHERE channel = $1 AND bill_date = $2 GROUP BY class`,
    [channel, businessDate],
  );
  const stats = await deps.db.query<{ lines: string | null; matched: string | null; rematched: string }>(
    `SELECT (SELECT result->>'lines' FROM cp_clearing_runs WHERE run_id = $1) AS lines,
            (SELECT result->>'matched' FROM cp_clearing_runs WHERE run_id = $1) AS matched,
            (SELECT count(*) FROM cp_recon_cases WHERE channel = $2 AND bill_date = $3 AND rematches IS NOT NULL)::text AS rematched`,
    [runId, channel, businessDate],
  );
  const classes = Object.fromEntries(DISCREPANCY_CLASS_NAMES.map((name) => [name, 0])) as Record<
    DiscrepancyClass,
    number
  >;
  let discrepancies = 0;
  for (const row of counts) {
    classes[row.class] = Number(row.n);
    if (row.class !== 'cross_day') discrepancies += Number(row.n);
  }
  const safeName = billName.replace(/[^A-Za-z0-9._-]/g, '_');
  const written = await writeStepFiles(deps.db, deps.options.outputDir, 'reconciliation', channel, businessDate, [
    { name: `bill-${safeName}`, bytes: bill },
    { name: `cases-${channel}-${businessDate}.csv`, bytes: Buffer.from(`${csv}\n`, 'utf8') },
  ]);
  return {
    channel,
    businessDate,
    lines: Number(stats[0]!.lines ?? 0),
    matched: Number(stats[0]!.matched ?? 0),
    classes,
    discrepancies,
    rematched: Number(stats[0]!.rematched),
    billSm3,
    directory: written.directory,
    files: written.files.map((f) => f.name),
    replayed,
  };
}
