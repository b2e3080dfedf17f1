import { ACCOUNT_KINDS, COMMAND_LIMITS, TRANSFER_TYPES } from '../core-ledger';
import { BUSINESS_DATE, INSTANT, nullable, object } from './schema-helpers';
import { SERVICE_PATHS, SERVICE_SCHEMAS } from './service-operations';
import { CONSOLE_PATHS, CONSOLE_SCHEMAS } from './console-operations';
import { ERROR_CODES } from './errors';

/**
 * The API as data: OpenAPI 3.1 (JSON Schema 2020-12). Requests and responses are validated against this document
 * by validators compiled once at start (validation.ts); handlers never re-check what a schema says. Later issues add
 * their operations to `paths`.
 */

const ref = (name: string): { $ref: string } => ({ $ref: `#/components/schemas/${name}` });

const text = (maxLength: number): Record<string, unknown> => ({ type: 'string', minLength: 1, maxLength });

const ID = {
  type: 'string',
  minLength: 1,
  maxLength: COMMAND_LIMITS.maxIdLength,
  pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]*$',
};

/** Decimal strings only: JSON numbers lose fen. The ledger then checks the asset's scale and bounds. */
const AMOUNT = {
  type: 'string',
  maxLength: 40,
  pattern: '^(0|[1-9][0-9]{0,17})(\\.[0-9]{1,8})?$',
  description: 'A positive decimal string at the asset scale, e.g. "12.50"',
};

const PAGE_PARAMETERS = [
  { name: 'cursor', in: 'query', required: false, schema: text(1024) },
  { name: 'limit', in: 'query', required: false, schema: { type: 'string', pattern: '^[1-9][0-9]{0,3}$' } },
];

const pathId = (name: string): Record<string, unknown> => ({ name, in: 'path', required: true, schema: ID });

const IDEMPOTENCY_KEY = {
  name: 'Idempotency-Key',
  in: 'header',
  required: true,
  description:
    'Unique per command; a retry with the same key and body gets the first response (Idempotent-Replayed: true)',
  schema: {
    type: 'string',
    minLength: 1,
    maxLength: COMMAND_LIMITS.maxIdempotencyKeyLength,
    pattern: '^[\\x21-\\x7e]+$',
  },
};

const json = (schema: unknown): Record<string, unknown> => ({ content: { 'application/json': { schema } } });

const errorResponses = Object.fromEntries(
  ['400', '404', '409', '413', '415', '422', '429', '500', '503'].map((status) => [
    status,
    { description: `error (${status})`, ...json(ref('Error')) },
  ]),
);

interface OperationSpec {
  readonly operationId: string;
  readonly summary: string;
  readonly tags: string[];
  readonly parameters?: unknown[];
  readonly requestBody?: string;
  readonly responses: Record<string, string>;
  /** Commands need an Idempotency-Key unless they change nothing a retry could repeat (login, logout). */
  readonly withoutIdempotencyKey?: boolean;
}

function operation(spec: OperationSpec): Record<string, unknown> {
  const isCommand = spec.requestBody !== undefined && spec.withoutIdempotencyKey !== true;
  return {
    operationId: spec.operationId,
    summary: spec.summary,
    tags: spec.tags,
    parameters: [...(spec.parameters ?? []), ...(isCommand ? [IDEMPOTENCY_KEY] : [])],
    ...(spec.requestBody !== undefined ? { requestBody: { required: true, ...json(ref(spec.requestBody)) } } : {}),
    responses: {
      ...Object.fromEntries(
        Object.entries(spec.responses).map(([status, schema]) => [
          status,
          { description: schema, ...json(ref(schema)) },
        ]),
      ),
      ...errorResponses,
    },
  };
}

/** The carbon, wallet and mall operations (api/service-operations.ts), or the console's, in this document's shape. */
function servicePaths(
  paths: Record<string, Record<string, unknown>> = SERVICE_PATHS,
): Record<string, Record<string, unknown>> {
  return Object.fromEntries(
    Object.entries(paths).map(([path, methods]) => [
      path,
      Object.fromEntries(
        Object.entries(methods).map(([method, spec]) => [method, operation(spec as unknown as OperationSpec)]),
      ),
    ]),
  );
}

export const OPENAPI_DOCUMENT = {
  openapi: '3.1.0',
  info: {
    title: 'carbonpay ledger API',
    version: '1.0.0',
    description:
      'Commands are POST with JSON bodies and an Idempotency-Key; queries are GET. Amounts are decimal strings. ' +
      'Errors are {code, message, details} with stable codes.',
  },
  jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
  paths: {
    '/health': {
      get: operation({
        operationId: 'health',
        summary: 'Liveness, event store and read models',
        tags: ['operations'],
        responses: { '200': 'Health', '503': 'Error' },
      }),
    },
    '/v1/auth/login': {
      post: operation({
        operationId: 'login',
        summary: 'Operator login: password, and a TOTP code for administrators; answers a session token',
        tags: ['auth'],
        requestBody: 'LoginRequest',
        responses: { '200': 'Session' },
        withoutIdempotencyKey: true,
      }),
    },
    '/v1/auth/logout': {
      post: operation({
        operationId: 'logout',
        summary: 'Ends the session of the bearer token',
        tags: ['auth'],
        requestBody: 'LogoutRequest',
        responses: { '200': 'LoggedOut' },
        withoutIdempotencyKey: true,
      }),
    },
    '/v1/accounts': {
      post: operation({
        operationId: 'openAccount',
        summary: 'Open an account (T5–T7 codes)',
        tags: ['accounts'],
        requestBody: 'OpenAccountRequest',
        responses: { '201': 'AccountCommandResult' },
      }),
    },
    '/v1/accounts/{accountId}': {
      get: operation({
        operationId: 'getAccount',
        summary: 'An account with its current balances (from the ledger)',
        tags: ['accounts'],
        parameters: [pathId('accountId')],
        responses: { '200': 'Account' },
      }),
    },
    '/v1/accounts/{accountId}/balance': {
      get: operation({
        operationId: 'getBalance',
        summary: 'The current balance, or the balance as of an instant (from the read models)',
        tags: ['accounts'],
        parameters: [pathId('accountId'), { name: 'asOf', in: 'query', required: false, schema: INSTANT }],
        responses: { '200': 'Balance' },
      }),
    },
    '/v1/accounts/{accountId}/statement': {
      get: operation({
        operationId: 'getStatement',
        summary: 'Statement lines with the running balance, oldest first',
        tags: ['accounts'],
        parameters: [
          pathId('accountId'),
          { name: 'from', in: 'query', required: false, schema: INSTANT },
          { name: 'to', in: 'query', required: false, schema: INSTANT },
          ...PAGE_PARAMETERS,
        ],
        responses: { '200': 'StatementPage' },
      }),
    },
    '/v1/accounts/{accountId}/freeze': {
      post: operation({
        operationId: 'freezeAccount',
        summary: 'Freeze (止付): credits only',
        tags: ['accounts'],
        parameters: [pathId('accountId')],
        requestBody: 'StatusChangeRequest',
        responses: { '200': 'AccountCommandResult' },
      }),
    },
    '/v1/accounts/{accountId}/unfreeze': {
      post: operation({
        operationId: 'unfreezeAccount',
        summary: 'Unfreeze',
        tags: ['accounts'],
        parameters: [pathId('accountId')],
        requestBody: 'StatusChangeRequest',
        responses: { '200': 'AccountCommandResult' },
      }),
    },
    '/v1/accounts/{accountId}/close': {
      post: operation({
        operationId: 'closeAccount',
        summary: 'Close (balance must be zero)',
        tags: ['accounts'],
        parameters: [pathId('accountId')],
        requestBody: 'StatusChangeRequest',
        responses: { '200': 'AccountCommandResult' },
      }),
    },
    '/v1/transfers': {
      post: operation({
        operationId: 'createTransfer',
        summary: 'Post a balanced transfer (payment, refund, top-up, …)',
        tags: ['transfers'],
        requestBody: 'CreateTransferRequest',
        responses: { '201': 'TransferCommandResult' },
      }),
      get: operation({
        operationId: 'listTransfers',
        summary: 'Transfers by business date, type and status (from the read models)',
        tags: ['transfers'],
        parameters: [
          { name: 'businessDate', in: 'query', required: false, schema: BUSINESS_DATE },
          { name: 'transferType', in: 'query', required: false, schema: ref('JournalTransferType') },
          { name: 'status', in: 'query', required: false, schema: ref('TransferStatus') },
          ...PAGE_PARAMETERS,
        ],
        responses: { '200': 'TransferPage' },
      }),
    },
    '/v1/transfers/{transferId}': {
      get: operation({
        operationId: 'getTransfer',
        summary: 'A transfer as the ledger holds it now',
        tags: ['transfers'],
        parameters: [pathId('transferId')],
        responses: { '200': 'Transfer' },
      }),
    },
    '/v1/transfers/{transferId}/reverse': {
      post: operation({
        operationId: 'reverseTransfer',
        summary: 'Reverse (冲正): mirror every posting',
        tags: ['transfers'],
        parameters: [pathId('transferId')],
        requestBody: 'ReverseTransferRequest',
        responses: { '201': 'TransferCommandResult' },
      }),
    },
    '/v1/authorizations': {
      post: operation({
        operationId: 'authorizeTransfer',
        summary: 'Hold an amount (two-phase, phase one)',
        tags: ['transfers'],
        requestBody: 'AuthorizeTransferRequest',
        responses: { '201': 'TransferCommandResult' },
      }),
    },
    '/v1/authorizations/{transferId}/capture': {
      post: operation({
        operationId: 'captureTransfer',
        summary: 'Capture all or part of a hold',
        tags: ['transfers'],
        parameters: [pathId('transferId')],
        requestBody: 'CaptureTransferRequest',
        responses: { '200': 'TransferCommandResult' },
      }),
    },
    '/v1/authorizations/{transferId}/void': {
      post: operation({
        operationId: 'voidTransfer',
        summary: 'Release a hold',
        tags: ['transfers'],
        parameters: [pathId('transferId')],
        requestBody: 'VoidTransferRequest',
        responses: { '200': 'TransferCommandResult' },
      }),
    },
    '/v1/journal': {
      get: operation({
        operationId: 'getJournal',
        summary: 'Every posting line, by business date (from the read models)',
        tags: ['reports'],
        parameters: [
          { name: 'businessDateFrom', in: 'query', required: false, schema: BUSINESS_DATE },
          { name: 'businessDateTo', in: 'query', required: false, schema: BUSINESS_DATE },
          { name: 'accountId', in: 'query', required: false, schema: ID },
          { name: 'transferId', in: 'query', required: false, schema: ID },
          { name: 'transferType', in: 'query', required: false, schema: ref('JournalTransferType') },
          ...PAGE_PARAMETERS,
        ],
        responses: { '200': 'JournalPage' },
      }),
    },
    '/v1/trial-balance': {
      get: operation({
        operationId: 'getTrialBalance',
        summary: 'Debits, credits and Σ balances per asset (zero in a sound ledger)',
        tags: ['reports'],
        parameters: [{ name: 'businessDateTo', in: 'query', required: false, schema: BUSINESS_DATE }],
        responses: { '200': 'TrialBalance' },
      }),
    },
    '/v1/audit-trail': {
      get: operation({
        operationId: 'getAuditTrail',
        summary: 'Accepted commands: who, what, when, from where',
        tags: ['reports'],
        parameters: [
          { name: 'from', in: 'query', required: false, schema: INSTANT },
          { name: 'to', in: 'query', required: false, schema: INSTANT },
          { name: 'actor', in: 'query', required: false, schema: text(128) },
          { name: 'command', in: 'query', required: false, schema: text(64) },
          ...PAGE_PARAMETERS,
        ],
        responses: { '200': 'AuditPage' },
      }),
    },
    ...servicePaths(),
    ...servicePaths(CONSOLE_PATHS),
  },
  components: {
    schemas: {
      ...SERVICE_SCHEMAS,
      ...CONSOLE_SCHEMAS,
      Error: object(
        {
          code: { type: 'string', enum: [...ERROR_CODES] },
          message: { type: 'string' },
          details: { type: 'object' },
        },
        ['code', 'message', 'details'],
      ),
      AccountKind: { type: 'string', enum: Object.keys(ACCOUNT_KINDS) },
      AccountStatus: { type: 'string', enum: ['open', 'frozen', 'lost', 'closed'] },
      TransferType: { type: 'string', enum: [...TRANSFER_TYPES] },
      JournalTransferType: { type: 'string', enum: [...TRANSFER_TYPES, 'reversal'] },
      TransferStatus: { type: 'string', enum: ['posted', 'pending', 'captured', 'voided', 'expired'] },
      Asset: { type: 'string', enum: ['CNY', 'CCR', 'CO2E'] },
      Amount: AMOUNT,
      /** Amounts the API reports may be negative (balances). */
      SignedAmount: { type: 'string', pattern: '^-?(0|[1-9][0-9]*)(\\.[0-9]+)?$' },
      Id: ID,
      Position: { type: 'string', minLength: 1, maxLength: 64 },
      OpenAccountRequest: object(
        {
          accountId: ID,
          kind: ref('AccountKind'),
          ownerId: ID,
          cardNumber: { type: 'string', pattern: '^[0-9]{12,19}$' },
          accountNumber: { type: 'string', pattern: '^[0-9]{8,32}$' },
        },
        ['accountId', 'kind', 'ownerId'],
      ),
      LoginRequest: object(
        { username: text(64), password: text(128), totp: { type: 'string', pattern: '^[0-9]{6}$' } },
        ['username', 'password'],
      ),
      Session: object(
        {
          token: { type: 'string' },
          operatorId: { type: 'string' },
          role: { type: 'string' },
          idleExpiresAt: { type: 'string' },
          absoluteExpiresAt: { type: 'string' },
        },
        ['token', 'operatorId', 'role', 'idleExpiresAt', 'absoluteExpiresAt'],
      ),
      LogoutRequest: object({}, []),
      LoggedOut: object({ status: { enum: ['logged_out'] } }, ['status']),
      StatusChangeRequest: object({ reason: text(COMMAND_LIMITS.maxReasonLength) }, ['reason']),
      AccountCommandResult: object({ accountId: ID, status: ref('AccountStatus') }, ['accountId', 'status']),
      Account: object(
        {
          accountId: ID,
          kind: ref('AccountKind'),
          asset: ref('Asset'),
          ownerId: ID,
          cardNumber: nullable({ type: 'string' }),
          accountNumber: nullable({ type: 'string' }),
          status: ref('AccountStatus'),
          balance: ref('SignedAmount'),
          available: ref('SignedAmount'),
          heldDebits: ref('SignedAmount'),
          heldCredits: ref('SignedAmount'),
          revision: { type: 'integer', minimum: 0 },
        },
        [
          'accountId',
          'kind',
          'asset',
          'ownerId',
          'cardNumber',
          'accountNumber',
          'status',
          'balance',
          'available',
          'heldDebits',
          'heldCredits',
          'revision',
        ],
      ),
      Balance: object(
        {
          accountId: ID,
          asset: ref('Asset'),
          balance: ref('SignedAmount'),
          asOf: nullable(INSTANT),
          revision: nullable({ type: 'integer', minimum: 0 }),
        },
        ['accountId', 'asset', 'balance', 'asOf', 'revision'],
      ),
      StatementPage: object(
        {
          lines: {
            type: 'array',
            items: object(
              {
                revision: { type: 'integer' },
                at: { type: 'string' },
                transferId: ID,
                direction: { enum: ['debit', 'credit'] },
                amount: ref('Amount'),
                balance: ref('SignedAmount'),
              },
              ['revision', 'at', 'transferId', 'direction', 'amount', 'balance'],
            ),
          },
          nextCursor: nullable({ type: 'string' }),
        },
        ['lines', 'nextCursor'],
      ),
      Posting: object({ accountId: ID, direction: { enum: ['debit', 'credit'] }, amount: AMOUNT }, [
        'accountId',
        'direction',
        'amount',
      ]),
      CreateTransferRequest: object(
        {
          transferId: ID,
          transferType: ref('TransferType'),
          postings: { type: 'array', minItems: 2, maxItems: COMMAND_LIMITS.maxPostings, items: ref('Posting') },
          reason: text(COMMAND_LIMITS.maxReasonLength),
          reference: text(COMMAND_LIMITS.maxReferenceLength),
          businessDate: BUSINESS_DATE,
        },
        ['transferType', 'postings'],
      ),
      AuthorizeTransferRequest: object(
        {
          transferId: ID,
          transferType: ref('TransferType'),
          debitAccountId: ID,
          creditAccountId: ID,
          amount: AMOUNT,
          expiresAt: INSTANT,
          reference: text(COMMAND_LIMITS.maxReferenceLength),
          businessDate: BUSINESS_DATE,
        },
        ['transferType', 'debitAccountId', 'creditAccountId', 'amount', 'expiresAt'],
      ),
      CaptureTransferRequest: object({ amount: AMOUNT }, []),
      VoidTransferRequest: object({ reason: text(COMMAND_LIMITS.maxReasonLength) }, ['reason']),
      ReverseTransferRequest: object(
        { reason: text(COMMAND_LIMITS.maxReasonLength), reversalTransferId: ID, businessDate: BUSINESS_DATE },
        ['reason'],
      ),
      TransferCommandResult: object(
        {
          transferId: ID,
          status: ref('TransferStatus'),
          reverses: { ...ID, description: 'A reversal: the transfer it mirrors' },
        },
        ['transferId', 'status'],
      ),
      Transfer: object(
        {
          transferId: ID,
          transferType: ref('JournalTransferType'),
          status: ref('TransferStatus'),
          asset: nullable(ref('Asset')),
          postings: {
            type: 'array',
            items: object(
              { accountId: ID, direction: { enum: ['debit', 'credit'] }, amount: ref('Amount'), asset: ref('Asset') },
              ['accountId', 'direction', 'amount', 'asset'],
            ),
          },
          authorization: nullable(
            object({ debitAccountId: ID, creditAccountId: ID, amount: ref('Amount'), expiresAt: { type: 'string' } }, [
              'debitAccountId',
              'creditAccountId',
              'amount',
              'expiresAt',
            ]),
          ),
          reverses: nullable(ID),
          reversedBy: nullable(ID),
          settlementId: nullable({ type: 'string' }),
          businessDate: BUSINESS_DATE,
          revision: { type: 'integer', minimum: 0 },
        },
        [
          'transferId',
          'transferType',
          'status',
          'asset',
          'postings',
          'authorization',
          'reverses',
          'reversedBy',
          'settlementId',
          'businessDate',
          'revision',
        ],
      ),
      TransferPage: object(
        { transfers: { type: 'array', items: { type: 'object' } }, nextCursor: nullable({ type: 'string' }) },
        ['transfers', 'nextCursor'],
      ),
      JournalPage: object(
        {
          lines: {
            type: 'array',
            items: object(
              {
                businessDate: BUSINESS_DATE,
                transferId: ID,
                lineNo: { type: 'integer' },
                transferType: ref('JournalTransferType'),
                accountId: ID,
                asset: ref('Asset'),
                direction: { enum: ['debit', 'credit'] },
                amount: ref('Amount'),
                at: { type: 'string' },
              },
              [
                'businessDate',
                'transferId',
                'lineNo',
                'transferType',
                'accountId',
                'asset',
                'direction',
                'amount',
                'at',
              ],
            ),
          },
          nextCursor: nullable({ type: 'string' }),
        },
        ['lines', 'nextCursor'],
      ),
      TrialBalance: object(
        {
          assets: {
            type: 'array',
            items: object(
              {
                asset: ref('Asset'),
                debits: ref('SignedAmount'),
                credits: ref('SignedAmount'),
                balance: ref('SignedAmount'),
                accounts: { type: 'integer' },
              },
              ['asset', 'debits', 'credits', 'balance', 'accounts'],
            ),
          },
        },
        ['assets'],
      ),
      AuditPage: object(
        { entries: { type: 'array', items: { type: 'object' } }, nextCursor: nullable({ type: 'string' }) },
        ['entries', 'nextCursor'],
      ),
      Health: {
        type: 'object',
        properties: { status: { enum: ['ok'] }, eventStore: { type: 'string' } },
        required: ['status', 'eventStore'],
      },
    },
  },
} as const;

export type OpenApiDocument = typeof OPENAPI_DOCUMENT;
