import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import express from 'express';
import type { ClearingService, Resolution } from '../clearing';
import {
  DISCREPANCY_CLASSES,
  RESOLUTION_NAMES,
  ResolutionRefusedError,
  RunBusyError,
  RunPreconditionError,
} from '../clearing';
import type { AssetCode } from '../core-ledger';
import { formatAmount, Money } from '../core-ledger';
import type { SqlQueryable } from '../projections';
import type { PaymentService } from '../services';
import type { AuditRecord, ClientCredential } from '../security';
import { consoleScreensOf, mask, mayUnmask, ROLE_PERMISSIONS } from '../security';
import { ApiError } from './errors';
import type { Handler, OperationInput, OperationResult } from './handlers';
import { BUSINESS_DATE, KEY, nullable, object, str } from './schema-helpers';

/**
 * The operator and auditor console (#12): the read and command operations its screens need beyond the rest of the
 * API, as data in the shape of service-operations.ts, their handlers, and the static files of the console itself
 * (console/, with Vue and Chart.js served from node_modules: no bundler). The console is only a client of the JSON
 * API: every rule (roles, masking, audit) is the API's, here and in security/permissions.ts.
 */

/** Every bound of these operations. */
export const CONSOLE_LIMITS = {
  /** Days a dashboard series may span (a quarter). */
  maxSeriesDays: 92,
  maxAccountsListed: 200,
  maxMerchantsListed: 500,
  maxAuditRowsListed: 500,
  maxCasesListed: 1_000,
  maxClearingRowsListed: 2_000,
} as const;

const DAY_MS = 86_400_000;

const list = (items: Record<string, unknown>): Record<string, unknown> => ({ type: 'array', items });

const DATE = BUSINESS_DATE;
const CNY = { type: 'string', maxLength: 24, pattern: '^-?(0|[1-9][0-9]{0,17})\\.[0-9]{2}$' };
const DECIMAL = { type: 'string', maxLength: 40, pattern: '^-?(0|[1-9][0-9]*)(\\.[0-9]+)?$' };
const TEXT = { type: 'string', maxLength: 2_048 };
const INTEGER = { type: 'integer', minimum: 0 };
const limitParameter = {
  name: 'limit',
  in: 'query',
  required: false,
  schema: { type: 'string', pattern: '^[1-9][0-9]{0,3}$' },
};
const dateParameter = (name: string, required: boolean): Record<string, unknown> => ({
  name,
  in: 'query',
  required,
  schema: DATE,
});

/** Operation specs in the shape `openapi.ts`'s `operation()` takes. */
export const CONSOLE_PATHS = {
  '/v1/console/profile': {
    get: {
      operationId: 'getConsoleProfile',
      summary: "The caller's role, its operations and the console screens it may open",
      tags: ['console'],
      responses: { '200': 'ConsoleProfile' },
    },
  },
  '/v1/console/dashboard': {
    get: {
      operationId: 'getDashboardSeries',
      summary: 'Per business date: captured mall payments (count, CNY) and counted carbon reduction (grams CO2e)',
      tags: ['console'],
      parameters: [dateParameter('from', true), dateParameter('to', true)],
      responses: { '200': 'DashboardSeries' },
    },
  },
  '/v1/console/accounts': {
    get: {
      operationId: 'searchAccounts',
      summary: 'Accounts whose id starts with, or whose owner is, the query (no personal data: open one to see it)',
      tags: ['console'],
      parameters: [{ name: 'q', in: 'query', required: true, schema: KEY }, limitParameter],
      responses: { '200': 'AccountSearch' },
    },
  },
  '/v1/console/merchants': {
    get: {
      operationId: 'listMerchants',
      summary: 'Merchants by status (the review queue is `applied`), oldest application first',
      tags: ['console'],
      parameters: [
        { name: 'status', in: 'query', required: false, schema: { enum: ['applied', 'active', 'rejected'] } },
        limitParameter,
      ],
      responses: { '200': 'MerchantList' },
    },
  },
  '/v1/console/clearing/days/{businessDate}': {
    get: {
      operationId: 'getClearingDay',
      summary: "A business date's clearing, settlement and reconciliation runs, clearing results and settlement lines",
      tags: ['console'],
      parameters: [{ name: 'businessDate', in: 'path', required: true, schema: DATE }],
      responses: { '200': 'ClearingDay' },
    },
  },
  '/v1/console/clearing/cases': {
    get: {
      operationId: 'listDiscrepancyCases',
      summary: 'Discrepancy cases of a bill date (unresolved only unless state=all), with the resolutions each allows',
      tags: ['console'],
      parameters: [
        dateParameter('billDate', false),
        { name: 'channel', in: 'query', required: false, schema: str(32, '^[a-z_]+$') },
        { name: 'state', in: 'query', required: false, schema: { enum: ['unresolved', 'all'] } },
      ],
      responses: { '200': 'DiscrepancyCaseList' },
    },
  },
  '/v1/console/clearing/cases/{caseId}/resolve': {
    post: {
      operationId: 'resolveDiscrepancyCase',
      summary: 'Resolve a discrepancy case (差错处理): the resolution becomes ledger postings, never an edit',
      tags: ['console'],
      parameters: [
        {
          name: 'caseId',
          in: 'path',
          required: true,
          schema: { type: 'string', pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' },
        },
      ],
      requestBody: 'ResolveCaseRequest',
      responses: { '200': 'DiscrepancyCase' },
    },
  },
  '/v1/console/audit-log': {
    get: {
      operationId: 'listAuditLog',
      summary: "The tamper-evident audit log (operators' actions, denials, unmasked reads), newest first",
      tags: ['console'],
      parameters: [
        { name: 'actor', in: 'query', required: false, schema: str(200) },
        { name: 'action', in: 'query', required: false, schema: str(200, '^[a-z0-9_.]+$') },
        { name: 'beforeSeq', in: 'query', required: false, schema: { type: 'string', pattern: '^[1-9][0-9]{0,15}$' } },
        limitParameter,
      ],
      responses: { '200': 'AuditLogPage' },
    },
  },
  '/v1/console/keys': {
    get: {
      operationId: 'listKeys',
      summary: 'Data keys (id, age, status) and registered clients (id, role, method): metadata, never key material',
      tags: ['console'],
      responses: { '200': 'KeyInventory' },
    },
  },
} as const;

export const CONSOLE_OPERATION_IDS: ReadonlySet<string> = new Set(
  Object.values(CONSOLE_PATHS).flatMap((methods) => Object.values(methods).map((spec) => spec.operationId as string)),
);

const CASE = object(
  {
    caseId: str(36),
    channel: str(32),
    billDate: DATE,
    class: { enum: Object.keys(DISCREPANCY_CLASSES) },
    classLabel: str(64),
    kind: { enum: ['payment', 'refund'] },
    merchantOrderNo: { type: 'string', maxLength: 128 },
    refundNo: { type: 'string', maxLength: 128 },
    channelAmount: nullable(DECIMAL),
    channelStatus: nullable(str(32)),
    ourSource: nullable({ enum: ['payment', 'refund', 'top_up'] }),
    ourId: nullable(str(256)),
    ourAmount: nullable(DECIMAL),
    ourStatus: nullable(str(32)),
    merchantId: nullable(str(64)),
    delta: DECIMAL,
    state: { enum: ['open', 'held', 'resolved'] },
    resolution: nullable(str(32)),
    resolvedDate: nullable(DATE),
    resolvedBy: nullable(str(200)),
    note: nullable(TEXT),
    allowedResolutions: list({ enum: RESOLUTION_NAMES }),
  },
  [
    'caseId',
    'channel',
    'billDate',
    'class',
    'classLabel',
    'kind',
    'merchantOrderNo',
    'refundNo',
    'channelAmount',
    'channelStatus',
    'ourSource',
    'ourId',
    'ourAmount',
    'ourStatus',
    'merchantId',
    'delta',
    'state',
    'resolution',
    'resolvedDate',
    'resolvedBy',
    'note',
    'allowedResolutions',
  ],
);

export const CONSOLE_SCHEMAS = {
  ConsoleProfile: object(
    {
      principalId: str(200),
      role: nullable(str(32)),
      mayUnmask: { type: 'boolean' },
      operations: list(str(64)),
      screens: list(str(32)),
      serverTime: str(40),
    },
    ['principalId', 'role', 'mayUnmask', 'operations', 'screens', 'serverTime'],
  ),
  DashboardSeries: object(
    {
      from: DATE,
      to: DATE,
      days: list(
        object(
          {
            date: DATE,
            payments: INTEGER,
            paymentAmount: CNY,
            carbonRecords: INTEGER,
            carbonGrams: { type: 'string', pattern: '^(0|[1-9][0-9]*)$' },
          },
          ['date', 'payments', 'paymentAmount', 'carbonRecords', 'carbonGrams'],
        ),
      ),
    },
    ['from', 'to', 'days'],
  ),
  AccountSearch: object(
    {
      accounts: list(
        object(
          { accountId: str(64), kind: str(64), asset: str(8), ownerId: str(128), status: str(32), balance: DECIMAL },
          ['accountId', 'kind', 'asset', 'ownerId', 'status', 'balance'],
        ),
      ),
    },
    ['accounts'],
  ),
  MerchantList: object(
    {
      merchants: list(
        object(
          {
            merchantId: KEY,
            name: str(64),
            category: str(32),
            feeRateBps: INTEGER,
            settlementBankAccount: str(40),
            status: { enum: ['applied', 'active', 'rejected'] },
            reviewReason: nullable(str(256)),
            appliedAt: str(40),
          },
          [
            'merchantId',
            'name',
            'category',
            'feeRateBps',
            'settlementBankAccount',
            'status',
            'reviewReason',
            'appliedAt',
          ],
        ),
      ),
    },
    ['merchants'],
  ),
  ClearingDay: object(
    {
      businessDate: DATE,
      runs: list(
        object(
          {
            step: { enum: ['clearing', 'settlement', 'reconciliation'] },
            scope: str(32),
            status: { enum: ['started', 'succeeded', 'failed'] },
            phase: str(64),
            attempts: INTEGER,
            summary: { type: 'object' },
            error: nullable(TEXT),
            startedAt: str(40),
            finishedAt: nullable(str(40)),
          },
          ['step', 'scope', 'status', 'phase', 'attempts', 'summary', 'error', 'startedAt', 'finishedAt'],
        ),
      ),
      results: list(
        object(
          {
            merchantId: str(64),
            payments: INTEGER,
            paymentAmount: CNY,
            refunds: INTEGER,
            refundAmount: CNY,
            fee: CNY,
            adjustment: CNY,
            net: CNY,
            payout: CNY,
          },
          ['merchantId', 'payments', 'paymentAmount', 'refunds', 'refundAmount', 'fee', 'adjustment', 'net', 'payout'],
        ),
      ),
      settlementLines: list(
        object(
          {
            merchantId: str(64),
            amount: CNY,
            settlementId: str(128),
            state: { enum: ['pending', 'posted', 'marked', 'held'] },
            heldReason: nullable(TEXT),
          },
          ['merchantId', 'amount', 'settlementId', 'state', 'heldReason'],
        ),
      ),
    },
    ['businessDate', 'runs', 'results', 'settlementLines'],
  ),
  DiscrepancyCase: CASE,
  DiscrepancyCaseList: object({ cases: list(CASE) }, ['cases']),
  ResolveCaseRequest: object(
    {
      resolution: { enum: RESOLUTION_NAMES },
      businessDate: DATE,
      merchantId: KEY,
      note: str(512),
    },
    ['resolution', 'businessDate'],
  ),
  AuditLogPage: object(
    {
      entries: list(
        object(
          {
            seq: INTEGER,
            at: str(40),
            actor: str(1_024),
            role: nullable(str(64)),
            action: str(1_024),
            subject: nullable(str(1_024)),
            outcome: str(64),
            source: nullable(str(1_024)),
            requestId: nullable(str(1_024)),
            details: nullable({ type: 'object' }),
          },
          ['seq', 'at', 'actor', 'role', 'action', 'subject', 'outcome', 'source', 'requestId', 'details'],
        ),
      ),
      nextBeforeSeq: nullable({ type: 'string' }),
    },
    ['entries', 'nextBeforeSeq'],
  ),
  KeyInventory: object(
    {
      dataKeys: list(
        object(
          {
            keyId: str(64),
            status: { enum: ['active', 'retired'] },
            createdAt: str(40),
            retiredAt: nullable(str(40)),
            ageDays: INTEGER,
          },
          ['keyId', 'status', 'createdAt', 'retiredAt', 'ageDays'],
        ),
      ),
      clients: list(
        object(
          {
            clientId: str(128),
            role: str(32),
            method: str(16),
            rotating: { type: 'boolean' },
            sealsFields: { type: 'boolean' },
            ipFenced: { type: 'boolean' },
          },
          ['clientId', 'role', 'method', 'rotating', 'sealsFields', 'ipFenced'],
        ),
      ),
      platformSigningKey: { type: 'boolean' },
    },
    ['dataKeys', 'clients', 'platformSigningKey'],
  ),
} as const;

export interface ConsoleDependencies {
  /** The read-model database: cp_read.* views, the service, clearing, audit and key tables beside them. */
  readonly database: SqlQueryable;
  readonly payments: PaymentService;
  readonly clearing: ClearingService;
}

/** What the key inventory reads of the HTTP door's own configuration (never the keys). */
export interface ConsoleKeySources {
  readonly clients: ReadonlyMap<string, ClientCredential>;
  readonly platformSigningKey: boolean;
}

type Stored = (input: OperationInput, tag: string, run: () => Promise<OperationResult>) => Promise<OperationResult>;

/** Handlers of the operations above; `stored` gives the command the Idempotency-Key replay of the rest of the API. */
export function createConsoleHandlers(
  deps: ConsoleDependencies,
  keys: ConsoleKeySources,
  stored: Stored,
): Record<string, Handler> {
  const { database, clearing } = deps;
  return {
    getConsoleProfile: async ({ principal, now }) => ({
      status: 200,
      body: {
        principalId: principal.id,
        role: principal.role,
        mayUnmask: mayUnmask(principal.role),
        operations: principal.role === null ? [] : [...ROLE_PERMISSIONS[principal.role]],
        screens: principal.role === null ? [] : consoleScreensOf(principal.role),
        // The console's default dates follow the server's clock, not the browser's.
        serverTime: now.toISOString(),
      },
    }),
    getDashboardSeries: async ({ parameters }) => {
      const from = parameters['from']!;
      const to = parameters['to']!;
      const days = (Date.parse(to) - Date.parse(from)) / DAY_MS + 1;
      if (!(days >= 1 && days <= CONSOLE_LIMITS.maxSeriesDays))
        throw new ApiError('validation_failed', `from..to spans 1..${CONSOLE_LIMITS.maxSeriesDays} days`, {
          in: 'parameters',
          field: 'to',
        });
      return { status: 200, body: { from, to, days: await dashboardSeries(database, from, to) } };
    },
    searchAccounts: async ({ parameters }) => {
      const q = parameters['q']!;
      const limit = Math.min(Number(parameters['limit'] ?? 50), CONSOLE_LIMITS.maxAccountsListed);
      const rows = await database.query<{
        account_id: string;
        kind: string;
        asset: AssetCode;
        owner_id: string;
        status: string;
        balance: string;
      }>(
        `SELECT account_id, kind, asset, owner_id, status, balance::text AS balance FROM cp_read.accounts
          WHERE account_id LIKE $1 ESCAPE '\\' OR owner_id = $2 ORDER BY account_id LIMIT $3`,
        [`${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`, q, limit],
      );
      return {
        status: 200,
        body: {
          accounts: rows.map((r) => ({
            accountId: r.account_id,
            kind: r.kind,
            asset: r.asset,
            ownerId: r.owner_id,
            status: r.status,
            balance: formatAmount(r.asset, new Money(r.balance)),
          })),
        },
      };
    },
    listMerchants: async ({ parameters }) => {
      const limit = Math.min(Number(parameters['limit'] ?? 100), CONSOLE_LIMITS.maxMerchantsListed);
      const rows = await database.query<{ merchant_id: string; applied_at: Date | string }>(
        `SELECT merchant_id, applied_at FROM cp_merchants WHERE ($1::text IS NULL OR status = $1)
          ORDER BY applied_at, merchant_id LIMIT $2`,
        [parameters['status'] ?? null, limit],
      );
      // Through the service, which opens the sealed settlement account; the list is bounded by `limit`.
      const merchants = await Promise.all(
        rows.map(async (r) => ({
          ...(await deps.payments.getMerchant(r.merchant_id))!,
          appliedAt: instant(r.applied_at),
        })),
      );
      return {
        status: 200,
        body: {
          merchants: merchants.map((m) => ({
            merchantId: m.merchantId,
            name: m.name,
            category: m.category,
            feeRateBps: m.feeRateBps,
            // Personal data leaves masked (App. B), as the merchant operations answer it.
            settlementBankAccount: mask('bank_card', m.settlementBankAccount),
            status: m.status,
            reviewReason: m.reviewReason,
            appliedAt: m.appliedAt,
          })),
        },
      };
    },
    getClearingDay: async ({ parameters }) => ({
      status: 200,
      body: await clearingDay(database, parameters['businessDate']!),
    }),
    listDiscrepancyCases: async ({ parameters }) => {
      const cases = await clearing.listCases({
        ...(parameters['billDate'] !== undefined ? { billDate: parameters['billDate'] } : {}),
        ...(parameters['channel'] !== undefined ? { channel: parameters['channel'] } : {}),
        all: parameters['state'] === 'all',
        limit: CONSOLE_LIMITS.maxCasesListed,
      });
      return { status: 200, body: { cases: cases.map(caseBody) } };
    },
    resolveDiscrepancyCase: (input) =>
      stored(input, 'resolveDiscrepancyCase', async () => {
        const { parameters, body, principal, context } = input;
        try {
          // The operator is the actor of every posting the resolution makes, and of the case's `resolved_by`.
          const resolved = await clearing.as({ ...context, actor: principal.id }).resolve({
            caseId: parameters['caseId']!,
            resolution: body['resolution'] as Resolution,
            businessDate: body['businessDate'] as string,
            ...(body['merchantId'] !== undefined ? { merchantId: body['merchantId'] as string } : {}),
            ...(body['note'] !== undefined ? { note: body['note'] as string } : {}),
          });
          return { status: 200, body: caseBody(resolved) };
        } catch (error) {
          throw resolutionError(error);
        }
      }),
    listAuditLog: async ({ parameters }) => {
      const limit = Math.min(Number(parameters['limit'] ?? 100), CONSOLE_LIMITS.maxAuditRowsListed);
      const entries = await auditLog(database, {
        actor: parameters['actor'],
        action: parameters['action'],
        beforeSeq: parameters['beforeSeq'],
        limit,
      });
      const last = entries.at(-1);
      return {
        status: 200,
        body: { entries, nextBeforeSeq: entries.length === limit && last ? String(last.seq) : null },
      };
    },
    listKeys: async ({ now }) => ({
      status: 200,
      body: {
        dataKeys: await dataKeys(database, now),
        clients: [...keys.clients.values()]
          .map((c) => ({
            clientId: c.clientId,
            role: c.role,
            method: c.method,
            rotating: c.previousPublicKey !== undefined || c.previousSecret !== undefined,
            sealsFields: c.fieldKey !== undefined,
            ipFenced: c.allowedIps !== undefined,
          }))
          .sort((a, b) => a.clientId.localeCompare(b.clientId)),
        platformSigningKey: keys.platformSigningKey,
      },
    }),
  };
}

// ---- queries ----------------------------------------------------------------------------------------------------

/** Every date of the range, zeros where nothing happened, so a chart's x axis is the calendar. */
async function dashboardSeries(
  database: SqlQueryable,
  from: string,
  to: string,
): Promise<{ date: string; payments: number; paymentAmount: string; carbonRecords: number; carbonGrams: string }[]> {
  const rows = await database.query<{
    date: string;
    payments: string;
    payment_amount: string;
    carbon_records: string;
    carbon_grams: string;
  }>(
    `SELECT d.day::date::text AS date,
            coalesce(p.payments, 0)::text AS payments, coalesce(p.amount, 0)::text AS payment_amount,
            coalesce(c.records, 0)::text AS carbon_records, coalesce(c.grams, 0)::text AS carbon_grams
       FROM generate_series($1::date, $2::date, interval '1 day') AS d(day)
       LEFT JOIN (SELECT business_date, count(*) AS payments, sum(gross) AS amount FROM cp_payments
                   WHERE status = 'captured' AND business_date BETWEEN $1::date AND $2::date
                   GROUP BY business_date) p ON p.business_date = d.day::date
       LEFT JOIN (SELECT behaviour_date, count(*) AS records, sum(grams) AS grams FROM cp_carbon_records
                   WHERE behaviour_date BETWEEN $1::date AND $2::date
                   GROUP BY behaviour_date) c ON c.behaviour_date = d.day::date
      ORDER BY 1`,
    [from, to],
  );
  return rows.map((r) => ({
    date: r.date,
    payments: Number(r.payments),
    paymentAmount: new Money(r.payment_amount).toFixed(2),
    carbonRecords: Number(r.carbon_records),
    // Whole grams, as getCarbonStats answers them.
    carbonGrams: new Money(r.carbon_grams).toFixed(0),
  }));
}

async function clearingDay(database: SqlQueryable, businessDate: string): Promise<Record<string, unknown>> {
  const max = CONSOLE_LIMITS.maxClearingRowsListed;
  const runs = await database.query<{
    step: string;
    scope: string;
    status: string;
    phase: string;
    attempts: number;
    result: Record<string, unknown> | null;
    error: string | null;
    started_at: Date | string;
    finished_at: Date | string | null;
  }>(
    `SELECT step, scope, status, phase, attempts, result, error, started_at, finished_at FROM cp_clearing_runs
      WHERE business_date = $1 ORDER BY started_at, step, scope`,
    [businessDate],
  );
  const results = await database.query<Record<string, string>>(
    `SELECT merchant_id, payment_count::text, payment_amount::text, refund_count::text, refund_amount::text,
            fee::text, adjustment::text, net::text, payout::text
       FROM cp_clearing_results WHERE business_date = $1 ORDER BY merchant_id LIMIT $2`,
    [businessDate, max],
  );
  const lines = await database.query<Record<string, string | null>>(
    `SELECT merchant_id, amount::text, settlement_id, state, held_reason FROM cp_settlement_lines
      WHERE business_date = $1 ORDER BY merchant_id LIMIT $2`,
    [businessDate, max],
  );
  return {
    businessDate,
    runs: runs.map((r) => ({
      step: r.step,
      scope: r.scope,
      status: r.status,
      phase: r.phase,
      attempts: r.attempts,
      summary: r.result ?? {},
      error: r.error,
      startedAt: instant(r.started_at),
      finishedAt: r.finished_at === null ? null : instant(r.finished_at),
    })),
    results: results.map((r) => ({
      merchantId: r['merchant_id']!,
      payments: Number(r['payment_count']),
      paymentAmount: r['payment_amount']!,
      refunds: Number(r['refund_count']),
      refundAmount: r['refund_amount']!,
      fee: r['fee']!,
      adjustment: r['adjustment']!,
      net: r['net']!,
      payout: r['payout']!,
    })),
    settlementLines: lines.map((l) => ({
      merchantId: l['merchant_id']!,
      amount: l['amount']!,
      settlementId: l['settlement_id']!,
      state: l['state']!,
      heldReason: l['held_reason'] ?? null,
    })),
  };
}

/** A row of the audit chain without its hashes (they are for `carbonpay audit verify`, not for the screen). */
type AuditLogEntry = Omit<AuditRecord, 'prevHash' | 'hash'>;

/** Reads cp_audit_log as stored (security/audit-chain.ts writes it; `carbonpay audit verify` checks its hashes). */
async function auditLog(
  database: SqlQueryable,
  filter: { actor?: string; action?: string; beforeSeq?: string; limit: number },
): Promise<AuditLogEntry[]> {
  const rows = await database.query<{
    seq: string;
    at: Date | string;
    actor: string;
    role: string | null;
    action: string;
    subject: string | null;
    outcome: string;
    source: string | null;
    request_id: string | null;
    details: AuditRecord['details'];
  }>(
    `SELECT seq::text, at, actor, role, action, subject, outcome, source, request_id, details FROM cp_audit_log
      WHERE ($1::text IS NULL OR actor = $1) AND ($2::text IS NULL OR action = $2)
        AND ($3::bigint IS NULL OR seq < $3::bigint)
      ORDER BY seq DESC LIMIT $4`,
    [filter.actor ?? null, filter.action ?? null, filter.beforeSeq ?? null, filter.limit],
  );
  return rows.map((r) => ({
    seq: Number(r.seq),
    at: instant(r.at),
    actor: r.actor,
    role: r.role,
    action: r.action,
    subject: r.subject,
    outcome: r.outcome,
    source: r.source,
    requestId: r.request_id,
    details: r.details,
  }));
}

/** The data key ring's metadata: ids and dates only (the wrapped keys are never selected). */
async function dataKeys(
  database: SqlQueryable,
  now: Date,
): Promise<
  { keyId: string; status: 'active' | 'retired'; createdAt: string; retiredAt: string | null; ageDays: number }[]
> {
  const [table] = await database.query<{ present: boolean }>(
    `SELECT to_regclass('cp_data_keys') IS NOT NULL AS present`,
  );
  if (!table?.present) return []; // no master key configured: personal data is not sealed
  const rows = await database.query<{ key_id: string; created_at: Date | string; retired_at: Date | string | null }>(
    'SELECT key_id, created_at, retired_at FROM cp_data_keys ORDER BY created_at, key_id',
  );
  // DataKeyRing seals with the newest unretired key; any other is only opening history.
  const active = rows.filter((r) => r.retired_at === null).at(-1)?.key_id;
  return rows.map((r) => ({
    keyId: r.key_id,
    status: r.key_id === active ? 'active' : 'retired',
    createdAt: instant(r.created_at),
    retiredAt: r.retired_at === null ? null : instant(r.retired_at),
    ageDays: Math.max(0, Math.floor((now.getTime() - new Date(r.created_at).getTime()) / DAY_MS)),
  }));
}

function caseBody(c: Awaited<ReturnType<ClearingService['listCases']>>[number]): Record<string, unknown> {
  return {
    caseId: c.caseId,
    channel: c.channel,
    billDate: c.billDate,
    class: c.class,
    classLabel: DISCREPANCY_CLASSES[c.class].label,
    kind: c.kind,
    merchantOrderNo: c.merchantOrderNo,
    refundNo: c.refundNo,
    channelAmount: c.channelAmount,
    channelStatus: c.channelStatus,
    ourSource: c.ourSource,
    ourId: c.ourId,
    ourAmount: c.ourAmount,
    ourStatus: c.ourStatus,
    merchantId: c.merchantId,
    delta: c.delta,
    state: c.state,
    resolution: c.resolution,
    resolvedDate: c.resolvedDate,
    resolvedBy: c.resolvedBy,
    note: c.note,
    allowedResolutions: c.state === 'resolved' ? [] : DISCREPANCY_CLASSES[c.class].resolutions,
  };
}

/** The clearing service's refusals as the API's codes; anything else is ours (500). */
function resolutionError(error: unknown): unknown {
  if (error instanceof ResolutionRefusedError) {
    if (error.kind === 'not_found') return new ApiError('not_found', error.message);
    // `refused`: the ledger or a service said no to what the resolution would post; the case stays as it was.
    return new ApiError(error.kind === 'not_allowed' ? 'validation_failed' : 'invalid_transfer_state', error.message);
  }
  if (error instanceof RunPreconditionError) return new ApiError('validation_failed', error.message);
  if (error instanceof RunBusyError) return new ApiError('conflict', error.message);
  return error;
}

function instant(value: Date | string): string {
  return new Date(value).toISOString();
}

// ---- static files -------------------------------------------------------------------------------------------------

/** console/ beside api/ in a source checkout, two levels up from dist/api/ in a build. */
function consoleFolder(): string | undefined {
  return [join(__dirname, '..', 'console'), join(__dirname, '..', '..', 'console')].find((folder) =>
    existsSync(join(folder, 'index.html')),
  );
}

/**
 * Serves the console under /console/: its own three files, and the browser builds of Vue and Chart.js straight
 * from node_modules (their global/UMD builds need no bundler). Static files only: every datum comes from the API.
 */
export function mountConsole(app: express.Express): void {
  const folder = consoleFolder();
  if (folder === undefined) return;
  const vendor: Record<string, string> = {
    'vue.global.prod.js': require.resolve('vue/dist/vue.global.prod.js'),
    // chart.js exports no subpaths: its UMD build sits beside the CommonJS entry.
    'chart.umd.js': join(dirname(require.resolve('chart.js')), 'chart.umd.js'),
  };
  // Express routes ignore a trailing slash: only the bare /console is sent on to /console/.
  app.get('/console', (request, response, next) =>
    request.originalUrl === '/console' ? response.redirect(301, '/console/') : next(),
  );
  app.get('/console/vendor/:file', (request, response, next) => {
    const file = vendor[String(request.params['file'])];
    if (file === undefined) return next();
    response.type('application/javascript').sendFile(file, { maxAge: '1h' });
  });
  app.use('/console', express.static(folder, { index: 'index.html', fallthrough: true, maxAge: 0 }));
}
