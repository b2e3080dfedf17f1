import type {
  AccountKind,
  AccountStatus,
  AssetCode,
  PostingDirection,
  TransferStatus,
  TransferType,
} from '../core-ledger';
import { amountOf, formatAmount, isAssetCode, TRANSFER_TYPES, ZERO } from '../core-ledger';
import type { SqlQueryable } from './database';

/**
 * The queries of the ledger read model, for the API and clearing. Everything is read through the views of schema
 * `cp_read` (never a generation's tables, which a rebuild swaps), with parameterised SQL only.
 *
 * What comes out: amounts as decimal strings at their asset's scale ("5.00", CO2E "120"), instants as ISO-8601 in
 * UTC with milliseconds, business dates as YYYY-MM-DD, revisions and counts as numbers. Instants and dates are
 * formatted by PostgreSQL, so the driver's own type parsing (and the server's DateStyle) never matters.
 *
 * Lists page by keyset: `nextCursor` is an opaque base64url string holding the last row's key; pass it back as
 * `cursor` with the same filters for the next page. It is `null` on the last page. Ranges of instants are
 * half-open (`from` ≤ at < `to`); ranges of business dates include both ends.
 *
 * Bad input (a malformed cursor, date or instant; a limit outside 1..1000; an unknown enumerated value) throws a
 * `QueryError` with code `validation_failed`, before any SQL runs.
 */

export type QueryErrorCode = 'validation_failed';

export class QueryError extends Error {
  readonly code: QueryErrorCode = 'validation_failed';

  constructor(
    message: string,
    /** The parameter at fault. */
    readonly field: string,
  ) {
    super(message);
    this.name = 'QueryError';
  }
}

export const QUERY_LIMITS = {
  defaultLimit: 100,
  maxLimit: 1_000,
  maxTextLength: 256,
  maxCursorLength: 1_024,
} as const;

export interface Page {
  /** Opaque; null when this page is the last. */
  readonly nextCursor: string | null;
}

export interface PageOptions {
  readonly cursor?: string;
  /** Rows per page, 1..1000; 100 when absent. */
  readonly limit?: number;
}

export interface AccountView {
  readonly accountId: string;
  readonly kind: AccountKind;
  readonly asset: AssetCode;
  readonly ownerId: string;
  readonly cardNumber: string | null;
  readonly accountNumber: string | null;
  readonly status: AccountStatus;
  /** Posted balance: credits − debits. */
  readonly balance: string;
  /** balance − heldDebits. */
  readonly available: string;
  readonly heldDebits: string;
  readonly heldCredits: string;
  readonly revision: number;
  readonly openedAt: string;
  readonly updatedAt: string;
}

export interface BalanceView {
  readonly accountId: string;
  readonly asset: AssetCode;
  readonly balance: string;
  /** The instant asked for (normalised to UTC), or null for the current balance. */
  readonly asOf: string | null;
  /** The account's revision, or with `asOf` that of the statement line the balance is from (null: none yet). */
  readonly revision: number | null;
}

export interface StatementLine {
  readonly revision: number;
  readonly at: string;
  readonly transferId: string;
  readonly direction: PostingDirection;
  readonly amount: string;
  /** The account's balance after this line. */
  readonly balance: string;
}

export interface StatementQuery extends PageOptions {
  /** Lines at or after this instant. */
  readonly from?: string;
  /** Lines before this instant. */
  readonly to?: string;
}

export interface StatementPage extends Page {
  readonly lines: StatementLine[];
}

export interface JournalLine {
  readonly businessDate: string;
  readonly transferId: string;
  readonly lineNo: number;
  readonly transferType: TransferType | 'reversal';
  readonly accountId: string;
  readonly asset: AssetCode;
  readonly direction: PostingDirection;
  readonly amount: string;
  readonly at: string;
}

export interface JournalQuery extends PageOptions {
  readonly businessDateFrom?: string;
  readonly businessDateTo?: string;
  readonly accountId?: string;
  readonly transferId?: string;
  readonly transferType?: TransferType | 'reversal';
}

export interface JournalPage extends Page {
  readonly lines: JournalLine[];
}

export interface TransferPostingView {
  readonly accountId: string;
  readonly asset: AssetCode;
  readonly direction: PostingDirection;
  readonly amount: string;
}

export interface TransferView {
  readonly transferId: string;
  readonly transferType: TransferType | 'reversal';
  readonly status: TransferStatus;
  readonly idempotencyKey: string;
  readonly businessDate: string;
  /** Null when the postings span several assets. */
  readonly asset: AssetCode | null;
  /** Σ debits (an authorization: the amount authorized); null when the postings span several assets. */
  readonly amount: string | null;
  readonly debitAccountId: string | null;
  readonly creditAccountId: string | null;
  /** What was posted (an authorization: what its capture posted; empty before). */
  readonly postings: TransferPostingView[];
  readonly reference: string | null;
  readonly reason: string | null;
  readonly reverses: string | null;
  readonly reversedBy: string | null;
  readonly capturedAmount: string | null;
  readonly expiresAt: string | null;
  readonly settlementId: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly revision: number;
}

export interface TransferListQuery extends PageOptions {
  readonly businessDate?: string;
  readonly transferType?: TransferType | 'reversal';
  readonly status?: TransferStatus;
}

export interface TransferPage extends Page {
  readonly transfers: TransferView[];
}

export interface TrialBalanceRow {
  readonly asset: AssetCode;
  readonly debits: string;
  readonly credits: string;
  /** Σ of the accounts' current balances: zero in a sound ledger. */
  readonly balance: string;
  readonly accounts: number;
}

export interface MerchantDailyTotals {
  readonly businessDate: string;
  readonly accountId: string;
  readonly asset: AssetCode;
  readonly payments: { readonly count: number; readonly amount: string };
  readonly refunds: { readonly count: number; readonly amount: string };
  readonly fees: string;
  /** Σ credits − Σ debits over every transfer type. */
  readonly net: string;
}

export interface CarbonStatisticsRow {
  readonly businessDate: string;
  readonly behaviour: string;
  readonly area: string;
  readonly co2eGrams: string;
  readonly creditsIssued: string;
  readonly creditsRedeemed: string;
  readonly creditsExpired: string;
  readonly issuances: number;
  readonly redemptions: number;
  readonly expiries: number;
}

export interface CarbonStatisticsQuery {
  /** First business date, included. */
  readonly from: string;
  /** Last business date, included. */
  readonly to: string;
  readonly behaviour?: string;
  readonly area?: string;
}

export interface AuditEntry {
  /** The log position of the command's first event. */
  readonly position: string;
  readonly eventId: string;
  readonly command: string;
  readonly actor: string;
  readonly channel: string;
  readonly source: string | null;
  readonly requestId: string | null;
  /** The stream the command's first event went to. */
  readonly subject: string;
  /** When the command was accepted (its `at`). */
  readonly at: string;
  readonly recordedAt: string;
}

export interface AuditQuery extends PageOptions {
  /** Commands at or after this instant. */
  readonly from?: string;
  /** Commands before this instant. */
  readonly to?: string;
  readonly actor?: string;
  readonly command?: string;
}

export interface AuditPage extends Page {
  readonly entries: AuditEntry[];
}

const TRANSFER_STATUSES: readonly TransferStatus[] = ['posted', 'pending', 'captured', 'voided', 'expired'];
const JOURNAL_TRANSFER_TYPES: readonly string[] = [...TRANSFER_TYPES, 'reversal'];

export class ReadModelQueries {
  constructor(private readonly db: SqlQueryable) {}

  async getAccount(accountId: string): Promise<AccountView | undefined> {
    const id = requiredText('accountId', accountId);
    const rows = await this.db.query<AccountRow>(
      `SELECT account_id, kind, asset, owner_id, card_number, account_number, status, balance::text AS balance,
              held_debits::text AS held_debits, held_credits::text AS held_credits, revision::text AS revision,
              ${iso('opened_at')} AS opened_at, ${iso('updated_at')} AS updated_at
         FROM cp_read.accounts WHERE account_id = $1`,
      [id],
    );
    const row = rows[0];
    if (!row) return undefined;
    const asset = assetOf(row.asset);
    const balance = amountOf(asset, row.balance);
    const heldDebits = amountOf(asset, row.held_debits);
    return {
      accountId: row.account_id,
      kind: row.kind as AccountKind,
      asset,
      ownerId: row.owner_id,
      cardNumber: row.card_number,
      accountNumber: row.account_number,
      status: row.status as AccountStatus,
      balance: formatAmount(asset, balance),
      available: formatAmount(asset, balance.minus(heldDebits)),
      heldDebits: formatAmount(asset, heldDebits),
      heldCredits: money(asset, row.held_credits),
      revision: Number(row.revision),
      openedAt: row.opened_at,
      updatedAt: row.updated_at,
    };
  }

  /**
   * The current balance, or with `asOf` the balance after the last statement line (by revision) at or before that
   * instant (zero when there is none). Undefined when the account does not exist.
   */
  async getBalance(accountId: string, asOf?: string): Promise<BalanceView | undefined> {
    const id = requiredText('accountId', accountId);
    const instant = optionalInstant('asOf', asOf);
    if (instant === undefined) {
      const rows = await this.db.query<{ asset: string; balance: string; revision: string }>(
        `SELECT asset, balance::text AS balance, revision::text AS revision
           FROM cp_read.accounts WHERE account_id = $1`,
        [id],
      );
      const row = rows[0];
      if (!row) return undefined;
      const asset = assetOf(row.asset);
      return { accountId: id, asset, balance: money(asset, row.balance), asOf: null, revision: Number(row.revision) };
    }
    const rows = await this.db.query<{ asset: string; balance: string | null; revision: string | null }>(
      `SELECT a.asset, l.balance::text AS balance, l.revision::text AS revision
         FROM cp_read.accounts a
         LEFT JOIN LATERAL (
           SELECT s.balance, s.revision FROM cp_read.statement_lines s
            WHERE s.account_id = a.account_id AND s.at <= $2::timestamptz
            ORDER BY s.revision DESC LIMIT 1
         ) l ON true
        WHERE a.account_id = $1`,
      [id, instant.text],
    );
    const row = rows[0];
    if (!row) return undefined;
    const asset = assetOf(row.asset);
    return {
      accountId: id,
      asset,
      balance: row.balance === null ? formatAmount(asset, ZERO) : money(asset, row.balance),
      asOf: instant.iso,
      revision: row.revision === null ? null : Number(row.revision),
    };
  }

  /** An account's statement lines by revision, optionally within [from, to). Empty for an unknown account. */
  async getStatement(accountId: string, query: StatementQuery = {}): Promise<StatementPage> {
    const id = requiredText('accountId', accountId);
    const limit = limitOf(query.limit);
    const after = decodeCursor('statement', query.cursor, ['integer']);
    const sql = new Sql();
    sql.where(`s.account_id = ${sql.param(id)}`);
    const range = instantRange(query.from, query.to);
    if (range.from) sql.where(`s.at >= ${sql.param(range.from.text)}::timestamptz`);
    if (range.to) sql.where(`s.at < ${sql.param(range.to.text)}::timestamptz`);
    if (after) sql.where(`s.revision > ${sql.param(String(after[0]))}::bigint`);
    const rows = await this.db.query<StatementRow>(
      `SELECT a.asset, s.revision::text AS revision, ${iso('s.at')} AS at, s.transfer_id, s.direction,
              s.amount::text AS amount, s.balance::text AS balance
         FROM cp_read.statement_lines s JOIN cp_read.accounts a ON a.account_id = s.account_id
        ${sql.whereClause()}
        ORDER BY s.revision
        LIMIT ${sql.param(limit + 1)}`,
      sql.params,
    );
    const lines = rows.slice(0, limit).map((row): StatementLine => {
      const asset = assetOf(row.asset);
      return {
        revision: Number(row.revision),
        at: row.at,
        transferId: row.transfer_id,
        direction: row.direction as PostingDirection,
        amount: money(asset, row.amount),
        balance: money(asset, row.balance),
      };
    });
    const last = lines[lines.length - 1];
    return { lines, nextCursor: rows.length > limit && last ? encodeCursor('statement', [last.revision]) : null };
  }

  /** Journal lines (one per posting) in log order: by position, then line number. */
  async getJournal(query: JournalQuery = {}): Promise<JournalPage> {
    const limit = limitOf(query.limit);
    const after = decodeCursor('journal', query.cursor, ['string', 'integer']);
    const sql = new Sql();
    const dates = dateRange('businessDateFrom', query.businessDateFrom, 'businessDateTo', query.businessDateTo);
    if (dates.from) sql.where(`business_date >= ${sql.param(dates.from)}::date`);
    if (dates.to) sql.where(`business_date <= ${sql.param(dates.to)}::date`);
    const accountId = optionalText('accountId', query.accountId);
    if (accountId !== undefined) sql.where(`account_id = ${sql.param(accountId)}`);
    const transferId = optionalText('transferId', query.transferId);
    if (transferId !== undefined) sql.where(`transfer_id = ${sql.param(transferId)}`);
    const transferType = optionalChoice('transferType', query.transferType, JOURNAL_TRANSFER_TYPES);
    if (transferType !== undefined) sql.where(`transfer_type = ${sql.param(transferType)}`);
    if (after) sql.where(`(position, line_no) > (${sql.param(after[0])}, ${sql.param(after[1])}::int)`);
    const rows = await this.db.query<JournalRow>(
      `SELECT ${isoDate('business_date')} AS business_date, transfer_id, line_no::text AS line_no, transfer_type,
              account_id, asset, direction, amount::text AS amount, ${iso('at')} AS at, position
         FROM cp_read.journal
        ${sql.whereClause()}
        ORDER BY position, line_no
        LIMIT ${sql.param(limit + 1)}`,
      sql.params,
    );
    const page = rows.slice(0, limit);
    const lines = page.map((row): JournalLine => {
      const asset = assetOf(row.asset);
      return {
        businessDate: row.business_date,
        transferId: row.transfer_id,
        lineNo: Number(row.line_no),
        transferType: row.transfer_type as TransferType | 'reversal',
        accountId: row.account_id,
        asset,
        direction: row.direction as PostingDirection,
        amount: money(asset, row.amount),
        at: row.at,
      };
    });
    const last = page[page.length - 1];
    return {
      lines,
      nextCursor: rows.length > limit && last ? encodeCursor('journal', [last.position, Number(last.line_no)]) : null,
    };
  }

  async getTransfer(transferId: string): Promise<TransferView | undefined> {
    const id = requiredText('transferId', transferId);
    const rows = await this.db.query<TransferRow>(`${TRANSFER_SELECT} WHERE transfer_id = $1`, [id]);
    return rows[0] && transferOf(rows[0]);
  }

  /** Transfers in log order (the clearing inputs), by business date, type and status. */
  async listTransfers(query: TransferListQuery = {}): Promise<TransferPage> {
    const limit = limitOf(query.limit);
    const after = decodeCursor('transfers', query.cursor, ['string']);
    const sql = new Sql();
    const businessDate = optionalDate('businessDate', query.businessDate);
    if (businessDate !== undefined) sql.where(`business_date = ${sql.param(businessDate)}::date`);
    const transferType = optionalChoice('transferType', query.transferType, JOURNAL_TRANSFER_TYPES);
    if (transferType !== undefined) sql.where(`transfer_type = ${sql.param(transferType)}`);
    const status = optionalChoice('status', query.status, TRANSFER_STATUSES);
    if (status !== undefined) sql.where(`status = ${sql.param(status)}`);
    if (after) sql.where(`position > ${sql.param(after[0])}`);
    const rows = await this.db.query<TransferRow>(
      `${TRANSFER_SELECT} ${sql.whereClause()} ORDER BY position LIMIT ${sql.param(limit + 1)}`,
      sql.params,
    );
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      transfers: page.map(transferOf),
      nextCursor: rows.length > limit && last ? encodeCursor('transfers', [last.position]) : null,
    };
  }

  /**
   * Per asset: Σ debits and Σ credits of the journal up to a business date (all of it when absent), and Σ of the
   * accounts' current balances with their count.
   */
  async getTrialBalance(query: { readonly businessDateTo?: string } = {}): Promise<TrialBalanceRow[]> {
    const sql = new Sql();
    const to = optionalDate('businessDateTo', query.businessDateTo);
    if (to !== undefined) sql.where(`business_date <= ${sql.param(to)}::date`);
    const rows = await this.db.query<{
      asset: string;
      debits: string;
      credits: string;
      balance: string;
      accounts: string;
    }>(
      `WITH j AS (
         SELECT asset, coalesce(sum(amount) FILTER (WHERE direction = 'debit'), 0) AS debits,
                coalesce(sum(amount) FILTER (WHERE direction = 'credit'), 0) AS credits
           FROM cp_read.journal ${sql.whereClause()} GROUP BY asset
       ), a AS (
         SELECT asset, sum(balance) AS balance, count(*) AS accounts FROM cp_read.accounts GROUP BY asset
       )
       SELECT coalesce(a.asset, j.asset) AS asset, coalesce(j.debits, 0)::text AS debits,
              coalesce(j.credits, 0)::text AS credits, coalesce(a.balance, 0)::text AS balance,
              coalesce(a.accounts, 0)::text AS accounts
         FROM a FULL JOIN j ON j.asset = a.asset
        ORDER BY 1`,
      sql.params,
    );
    return rows.map((row) => {
      const asset = assetOf(row.asset);
      return {
        asset,
        debits: money(asset, row.debits),
        credits: money(asset, row.credits),
        balance: money(asset, row.balance),
        accounts: Number(row.accounts),
      };
    });
  }

  /** One row per merchant account that moved on the business date, by account id. */
  async getMerchantDailyTotals(query: {
    readonly businessDate: string;
    readonly accountId?: string;
  }): Promise<MerchantDailyTotals[]> {
    const sql = new Sql();
    const businessDate = requiredDate('businessDate', query.businessDate);
    sql.where(`m.business_date = ${sql.param(businessDate)}::date`);
    const accountId = optionalText('accountId', query.accountId);
    if (accountId !== undefined) sql.where(`m.account_id = ${sql.param(accountId)}`);
    const rows = await this.db.query<MerchantRow>(
      `SELECT m.account_id, a.asset,
              coalesce(sum(m.transfers) FILTER (WHERE m.transfer_type = 'payment'), 0)::text AS payments,
              coalesce(sum(m.credits) FILTER (WHERE m.transfer_type = 'payment'), 0)::text AS payment_amount,
              coalesce(sum(m.transfers) FILTER (WHERE m.transfer_type = 'refund'), 0)::text AS refunds,
              coalesce(sum(m.debits) FILTER (WHERE m.transfer_type = 'refund'), 0)::text AS refund_amount,
              sum(m.fees)::text AS fees, (sum(m.credits) - sum(m.debits))::text AS net
         FROM cp_read.merchant_daily m JOIN cp_read.accounts a ON a.account_id = m.account_id
        ${sql.whereClause()}
        GROUP BY m.account_id, a.asset
        ORDER BY m.account_id`,
      sql.params,
    );
    return rows.map((row) => {
      const asset = assetOf(row.asset);
      return {
        businessDate,
        accountId: row.account_id,
        asset,
        payments: { count: Number(row.payments), amount: money(asset, row.payment_amount) },
        refunds: { count: Number(row.refunds), amount: money(asset, row.refund_amount) },
        fees: money(asset, row.fees),
        net: money(asset, row.net),
      };
    });
  }

  /** Carbon statistics per business date, behaviour and area, in that order; both dates included. */
  async getCarbonStatistics(query: CarbonStatisticsQuery): Promise<CarbonStatisticsRow[]> {
    const sql = new Sql();
    const range = dateRange('from', requiredDate('from', query.from), 'to', requiredDate('to', query.to));
    sql.where(`business_date >= ${sql.param(range.from)}::date`);
    sql.where(`business_date <= ${sql.param(range.to)}::date`);
    const behaviour = optionalText('behaviour', query.behaviour);
    if (behaviour !== undefined) sql.where(`behaviour = ${sql.param(behaviour)}`);
    const area = optionalText('area', query.area);
    if (area !== undefined) sql.where(`area = ${sql.param(area)}`);
    const rows = await this.db.query<CarbonRow>(
      `SELECT ${isoDate('business_date')} AS business_date, behaviour, area, co2e_grams::text AS co2e_grams,
              credits_issued::text AS credits_issued, credits_redeemed::text AS credits_redeemed,
              credits_expired::text AS credits_expired, issuances::text AS issuances,
              redemptions::text AS redemptions, expiries::text AS expiries
         FROM cp_read.carbon_daily
        ${sql.whereClause()}
        ORDER BY business_date, behaviour, area`,
      sql.params,
    );
    return rows.map((row) => ({
      businessDate: row.business_date,
      behaviour: row.behaviour,
      area: row.area,
      co2eGrams: money('CO2E', row.co2e_grams),
      creditsIssued: money('CCR', row.credits_issued),
      creditsRedeemed: money('CCR', row.credits_redeemed),
      creditsExpired: money('CCR', row.credits_expired),
      issuances: Number(row.issuances),
      redemptions: Number(row.redemptions),
      expiries: Number(row.expiries),
    }));
  }

  /** Accepted commands in log order, optionally within [from, to) of their time, by actor and command. */
  async getAuditTrail(query: AuditQuery = {}): Promise<AuditPage> {
    const limit = limitOf(query.limit);
    const after = decodeCursor('audit', query.cursor, ['string']);
    const sql = new Sql();
    const range = instantRange(query.from, query.to);
    if (range.from) sql.where(`at >= ${sql.param(range.from.text)}::timestamptz`);
    if (range.to) sql.where(`at < ${sql.param(range.to.text)}::timestamptz`);
    const actor = optionalText('actor', query.actor);
    if (actor !== undefined) sql.where(`actor = ${sql.param(actor)}`);
    const command = optionalText('command', query.command);
    if (command !== undefined) sql.where(`command = ${sql.param(command)}`);
    if (after) sql.where(`position > ${sql.param(after[0])}`);
    const rows = await this.db.query<AuditRow>(
      `SELECT position, event_id::text AS event_id, command, actor, channel, source, request_id, subject,
              ${iso('at')} AS at, ${iso('recorded_at')} AS recorded_at
         FROM cp_read.audit_trail
        ${sql.whereClause()}
        ORDER BY position
        LIMIT ${sql.param(limit + 1)}`,
      sql.params,
    );
    const entries = rows.slice(0, limit).map((row): AuditEntry => ({
      position: row.position,
      eventId: row.event_id,
      command: row.command,
      actor: row.actor,
      channel: row.channel,
      source: row.source,
      requestId: row.request_id,
      subject: row.subject,
      at: row.at,
      recordedAt: row.recorded_at,
    }));
    const last = entries[entries.length - 1];
    return { entries, nextCursor: rows.length > limit && last ? encodeCursor('audit', [last.position]) : null };
  }
}

// ---- rows as they come from SQL (every number as text) ----

interface AccountRow {
  account_id: string;
  kind: string;
  asset: string;
  owner_id: string;
  card_number: string | null;
  account_number: string | null;
  status: string;
  balance: string;
  held_debits: string;
  held_credits: string;
  revision: string;
  opened_at: string;
  updated_at: string;
}

interface StatementRow {
  asset: string;
  revision: string;
  at: string;
  transfer_id: string;
  direction: string;
  amount: string;
  balance: string;
}

interface JournalRow {
  business_date: string;
  transfer_id: string;
  line_no: string;
  transfer_type: string;
  account_id: string;
  asset: string;
  direction: string;
  amount: string;
  at: string;
  position: string;
}

interface TransferRow {
  transfer_id: string;
  transfer_type: string;
  status: string;
  idempotency_key: string;
  business_date: string;
  asset: string | null;
  amount: string | null;
  debit_account_id: string | null;
  credit_account_id: string | null;
  postings: string;
  reference: string | null;
  reason: string | null;
  reverses: string | null;
  reversed_by: string | null;
  captured_amount: string | null;
  expires_at: string | null;
  settlement_id: string | null;
  created_at: string;
  updated_at: string;
  revision: string;
  position: string;
}

interface MerchantRow {
  account_id: string;
  asset: string;
  payments: string;
  payment_amount: string;
  refunds: string;
  refund_amount: string;
  fees: string;
  net: string;
}

interface CarbonRow {
  business_date: string;
  behaviour: string;
  area: string;
  co2e_grams: string;
  credits_issued: string;
  credits_redeemed: string;
  credits_expired: string;
  issuances: string;
  redemptions: string;
  expiries: string;
}

interface AuditRow {
  position: string;
  event_id: string;
  command: string;
  actor: string;
  channel: string;
  source: string | null;
  request_id: string | null;
  subject: string;
  at: string;
  recorded_at: string;
}

const TRANSFER_SELECT = `
SELECT transfer_id, transfer_type, status, idempotency_key, ${isoDate('business_date')} AS business_date, asset,
       amount::text AS amount, debit_account_id, credit_account_id, postings::text AS postings, reference, reason,
       reverses, reversed_by, captured_amount::text AS captured_amount, ${iso('expires_at')} AS expires_at,
       settlement_id, ${iso('created_at')} AS created_at, ${iso('updated_at')} AS updated_at,
       revision::text AS revision, position
  FROM cp_read.transfers`;

function transferOf(row: TransferRow): TransferView {
  const asset = row.asset === null ? null : assetOf(row.asset);
  const postings = JSON.parse(row.postings) as {
    accountId: string;
    asset: string;
    direction: string;
    amount: string;
  }[];
  return {
    transferId: row.transfer_id,
    transferType: row.transfer_type as TransferType | 'reversal',
    status: row.status as TransferStatus,
    idempotencyKey: row.idempotency_key,
    businessDate: row.business_date,
    asset,
    amount: asset !== null && row.amount !== null ? money(asset, row.amount) : null,
    debitAccountId: row.debit_account_id,
    creditAccountId: row.credit_account_id,
    postings: postings.map((line) => {
      const lineAsset = assetOf(line.asset);
      return {
        accountId: line.accountId,
        asset: lineAsset,
        direction: line.direction as PostingDirection,
        amount: money(lineAsset, line.amount),
      };
    }),
    reference: row.reference,
    reason: row.reason,
    reverses: row.reverses,
    reversedBy: row.reversed_by,
    capturedAmount: asset !== null && row.captured_amount !== null ? money(asset, row.captured_amount) : null,
    expiresAt: row.expires_at,
    settlementId: row.settlement_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    revision: Number(row.revision),
  };
}

// ---- SQL helpers ----

/** Parameters and WHERE conditions of one statement; values only ever travel as parameters. */
class Sql {
  readonly params: unknown[] = [];
  private readonly conditions: string[] = [];

  param(value: unknown): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }

  where(condition: string): void {
    this.conditions.push(condition);
  }

  whereClause(): string {
    return this.conditions.length === 0 ? '' : `WHERE ${this.conditions.join(' AND ')}`;
  }
}

/** An instant as ISO-8601 in UTC with milliseconds, formatted by PostgreSQL (NULL stays NULL). */
function iso(column: string): string {
  return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
}

function isoDate(column: string): string {
  return `to_char(${column}, 'YYYY-MM-DD')`;
}

function assetOf(value: string): AssetCode {
  if (!isAssetCode(value)) throw new Error(`assertion: the read model holds an unknown asset ${JSON.stringify(value)}`);
  return value;
}

/** A stored amount at its asset's scale; one that does not fit the scale is a bug and throws. */
function money(asset: AssetCode, text: string): string {
  return formatAmount(asset, amountOf(asset, text));
}

// ---- validation ----

function limitOf(limit: unknown): number {
  if (limit === undefined) return QUERY_LIMITS.defaultLimit;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > QUERY_LIMITS.maxLimit) {
    throw new QueryError(`limit must be an integer in 1..${QUERY_LIMITS.maxLimit}`, 'limit');
  }
  return limit;
}

function optionalText(field: string, value: unknown): string | undefined {
  return value === undefined ? undefined : requiredText(field, value);
}

function requiredText(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > QUERY_LIMITS.maxTextLength) {
    throw new QueryError(`${field} must be a string of 1..${QUERY_LIMITS.maxTextLength} characters`, field);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) throw new QueryError(`${field} must not contain control characters`, field);
  return value;
}

function optionalChoice<T extends string>(field: string, value: unknown, choices: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw new QueryError(`${field} must be one of ${choices.join(', ')}`, field);
  }
  return value as T;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const INSTANT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?(Z|[+-](\d{2}):(\d{2}))$/;

function isCalendarDate(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
  return year >= 1 && day <= days;
}

function requiredDate(field: string, value: unknown): string {
  const match = typeof value === 'string' ? DATE.exec(value) : null;
  if (!match || !isCalendarDate(Number(match[1]), Number(match[2]), Number(match[3]))) {
    throw new QueryError(`${field} must be a date YYYY-MM-DD`, field);
  }
  return value as string;
}

function optionalDate(field: string, value: unknown): string | undefined {
  return value === undefined ? undefined : requiredDate(field, value);
}

/** Both ends included; `from` after `to` is refused. */
function dateRange(
  fromField: string,
  from: unknown,
  toField: string,
  to: unknown,
): { from: string | undefined; to: string | undefined } {
  const range = { from: optionalDate(fromField, from), to: optionalDate(toField, to) };
  // YYYY-MM-DD compares as text.
  if (range.from !== undefined && range.to !== undefined && range.from > range.to) {
    throw new QueryError(`${fromField} must not be after ${toField}`, fromField);
  }
  return range;
}

interface Instant {
  /** As given (PostgreSQL reads it exactly, to the microsecond). */
  readonly text: string;
  /** Normalised: UTC, milliseconds. */
  readonly iso: string;
  readonly ms: number;
}

function optionalInstant(field: string, value: unknown): Instant | undefined {
  if (value === undefined) return undefined;
  const match = typeof value === 'string' ? INSTANT.exec(value) : null;
  const valid =
    match !== null &&
    isCalendarDate(Number(match[1]), Number(match[2]), Number(match[3])) &&
    Number(match[4]) <= 23 &&
    Number(match[5]) <= 59 &&
    Number(match[6] ?? 0) <= 59 &&
    Number(match[8] ?? 0) <= 15 &&
    Number(match[9] ?? 0) <= 59;
  const ms = valid ? Date.parse(value as string) : NaN;
  if (Number.isNaN(ms)) {
    throw new QueryError(`${field} must be an ISO-8601 instant with a time zone, e.g. 2026-11-23T10:00:00Z`, field);
  }
  return { text: value as string, iso: new Date(ms).toISOString(), ms };
}

/** `from` included, `to` excluded; `from` after `to` is refused. */
function instantRange(from: unknown, to: unknown): { from: Instant | undefined; to: Instant | undefined } {
  const range = { from: optionalInstant('from', from), to: optionalInstant('to', to) };
  if (range.from && range.to && range.from.ms > range.to.ms) throw new QueryError('from must not be after to', 'from');
  return range;
}

// ---- cursors ----

type CursorKind = 'statement' | 'journal' | 'transfers' | 'audit';
type CursorKey = readonly (string | number)[];

function encodeCursor(kind: CursorKind, key: CursorKey): string {
  return Buffer.from(JSON.stringify({ q: kind, k: key }), 'utf8').toString('base64url');
}

/** The key a cursor holds, checked against the query it is for; undefined when there is no cursor. */
function decodeCursor(
  kind: CursorKind,
  cursor: unknown,
  shape: readonly ('string' | 'integer')[],
): CursorKey | undefined {
  if (cursor === undefined) return undefined;
  const malformed = (): QueryError => new QueryError(`cursor is not a cursor of this ${kind} query`, 'cursor');
  if (
    typeof cursor !== 'string' ||
    cursor.length === 0 ||
    cursor.length > QUERY_LIMITS.maxCursorLength ||
    !/^[A-Za-z0-9_-]+$/.test(cursor)
  ) {
    throw malformed();
  }
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw malformed();
  }
  if (typeof decoded !== 'object' || decoded === null) throw malformed();
  const { q, k } = decoded as { q?: unknown; k?: unknown };
  if (q !== kind || !Array.isArray(k) || k.length !== shape.length) throw malformed();
  shape.forEach((type, i) => {
    const part: unknown = k[i];
    const ok =
      type === 'integer'
        ? typeof part === 'number' && Number.isSafeInteger(part) && part >= 0
        : typeof part === 'string' && part.length > 0 && part.length <= QUERY_LIMITS.maxTextLength;
    if (!ok) throw malformed();
  });
  return k as CursorKey;
}
