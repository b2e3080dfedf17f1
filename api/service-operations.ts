import type { BehaviourRecordInput } from '../core-ledger';
import { INGESTION_LIMITS, METHODOLOGIES } from '../core-ledger';
import type {
  BankCardView,
  CarbonService,
  CrmSyncService,
  ExchangeBatch,
  ExchangeReceiver,
  MerchantRecord,
  OpenWalletInput,
  Outbox,
  PaymentService,
  WalletRecord,
  WalletService,
} from '../services';
import { mask, maskAccountNumber } from '../security';
import { CRM_LIMITS, EXCHANGE_LIMITS, ServiceRefusal, WALLET_POLICY } from '../services';
import { ApiError } from './errors';
import { BUSINESS_DATE, INSTANT, KEY, nullable, object, str } from './schema-helpers';
import type { Handler, OperationInput, OperationResult } from './handlers';

/**
 * The carbon (#7), wallet and mall (#8) operations: their part of the OpenAPI document, as data, and their handlers.
 * Handlers translate; the services decide.
 */

const CNY = { type: 'string', maxLength: 24, pattern: '^(0|[1-9][0-9]{0,14})(\\.[0-9]{1,2})?$' };
const CCR = CNY;
const DECIMAL = { type: 'string', maxLength: 24, pattern: '^(0|[1-9][0-9]{0,14})(\\.[0-9]{1,3})?$' };
const ACCOUNT_NUMBER = { type: 'string', pattern: '^[0-9]{11,12}$' };
const DATE = BUSINESS_DATE;
const path = (name: string): Record<string, unknown> => ({ name, in: 'path', required: true, schema: KEY });

/** Operation specs in the shape `openapi.ts`'s `operation()` takes. */
export const SERVICE_PATHS = {
  '/v1/carbon/behaviours': {
    post: {
      operationId: 'submitBehaviours',
      summary: 'A partner platform submits a batch of behaviour records (C2); each is answered',
      tags: ['carbon'],
      requestBody: 'SubmitBehavioursRequest',
      responses: { '200': 'BehaviourBatchResult' },
    },
  },
  '/v1/carbon/accounts/{accountNumber}': {
    get: {
      operationId: 'getCarbonAccount',
      summary: "A user's carbon account: total CO2e, credits, history (C1, C4)",
      tags: ['carbon'],
      parameters: [{ name: 'accountNumber', in: 'path', required: true, schema: ACCOUNT_NUMBER }],
      responses: { '200': 'CarbonAccount' },
    },
  },
  '/v1/carbon/stats': {
    get: {
      operationId: 'getCarbonStats',
      summary: 'Counted reductions per behaviour, area and day',
      tags: ['carbon'],
      parameters: [
        { name: 'from', in: 'query', required: true, schema: DATE },
        { name: 'to', in: 'query', required: true, schema: DATE },
        {
          name: 'groupBy',
          in: 'query',
          required: false,
          schema: { type: 'string', pattern: '^(behaviour|area|day)(,(behaviour|area|day)){0,2}$' },
        },
      ],
      responses: { '200': 'CarbonStats' },
    },
  },
  '/v1/carbon/methodologies': {
    get: {
      operationId: 'listMethodologies',
      summary: 'Every methodology version with its formula, factors and source',
      tags: ['carbon'],
      responses: { '200': 'MethodologyList' },
    },
  },
  '/v1/wallets': {
    post: {
      operationId: 'openWallet',
      summary: 'Open an e-wallet: five T7 sub-accounts, a T6 card (C7)',
      tags: ['wallets'],
      requestBody: 'OpenWalletRequest',
      responses: { '201': 'Wallet' },
    },
  },
  '/v1/wallets/group': {
    post: {
      operationId: 'registerGroupCustomers',
      summary: 'Register group customers in one batch (T2); each is answered',
      tags: ['wallets'],
      requestBody: 'RegisterGroupRequest',
      responses: { '200': 'GroupRegistrationResult' },
    },
  },
  '/v1/wallets/{walletId}': {
    get: {
      operationId: 'getWallet',
      summary: 'A wallet: sub-accounts, purpose, limits, bound cards (personal data masked)',
      tags: ['wallets'],
      parameters: [path('walletId')],
      responses: { '200': 'Wallet' },
    },
  },
  '/v1/wallets/{walletId}/bank-cards': {
    post: {
      operationId: 'bindBankCard',
      summary: 'Bind a bank card for top-ups and pay-outs (kept sealed, answered masked)',
      tags: ['wallets'],
      parameters: [path('walletId')],
      requestBody: 'BindBankCardRequest',
      responses: { '201': 'BankCard' },
    },
  },
  '/v1/wallets/{walletId}/bank-cards/{cardId}/unbind': {
    post: {
      operationId: 'unbindBankCard',
      summary: 'Unbind a bank card',
      tags: ['wallets'],
      parameters: [path('walletId'), path('cardId')],
      requestBody: 'UnbindBankCardRequest',
      responses: { '200': 'BankCard' },
    },
  },
  '/v1/wallets/{walletId}/close': {
    post: {
      operationId: 'closeWallet',
      summary: 'Close a wallet: pay the cash out to a bound card first, then close every sub-account',
      tags: ['wallets'],
      parameters: [path('walletId')],
      requestBody: 'CloseWalletRequest',
      responses: { '200': 'CloseWalletResult' },
    },
  },
  '/v1/wallets/{walletId}/payment-password': {
    post: {
      operationId: 'setPaymentPassword',
      summary: 'Set or change the 6-digit payment password (T4)',
      tags: ['wallets'],
      parameters: [path('walletId')],
      requestBody: 'SetPaymentPasswordRequest',
      responses: { '200': 'StatusResult' },
    },
  },
  '/v1/wallets/{walletId}/top-ups': {
    post: {
      operationId: 'topUp',
      summary: 'Ask the bank channel for a top-up; pending until its callback',
      tags: ['wallets'],
      parameters: [path('walletId')],
      requestBody: 'TopUpRequest',
      responses: { '202': 'TopUp' },
    },
  },
  '/v1/top-ups/{topUpId}/callback': {
    post: {
      operationId: 'confirmTopUp',
      summary: "The bank channel's callback: success credits once, however often it comes",
      tags: ['wallets'],
      parameters: [path('topUpId')],
      requestBody: 'TopUpCallbackRequest',
      responses: { '200': 'TopUp' },
    },
  },
  '/v1/wallets/{walletId}/coupons': {
    post: {
      operationId: 'issueCoupon',
      summary: 'Issue a coupon into the voucher sub-account (T3)',
      tags: ['wallets'],
      parameters: [path('walletId')],
      requestBody: 'IssueCouponRequest',
      responses: { '201': 'CouponResult' },
    },
  },
  '/v1/merchants': {
    post: {
      operationId: 'applyMerchant',
      summary: 'A merchant applies (C6); reviewed before it may be paid',
      tags: ['merchants'],
      requestBody: 'ApplyMerchantRequest',
      responses: { '201': 'Merchant' },
    },
  },
  '/v1/merchants/{merchantId}/review': {
    post: {
      operationId: 'reviewMerchant',
      summary: 'Approve or reject an application, with a reason',
      tags: ['merchants'],
      parameters: [path('merchantId')],
      requestBody: 'ReviewMerchantRequest',
      responses: { '200': 'Merchant' },
    },
  },
  '/v1/merchants/{merchantId}/flows': {
    get: {
      operationId: 'getMerchantFlows',
      summary: "A merchant's receipts and fund flows over business dates, with totals (C8)",
      tags: ['merchants'],
      parameters: [
        path('merchantId'),
        { name: 'from', in: 'query', required: true, schema: DATE },
        { name: 'to', in: 'query', required: true, schema: DATE },
      ],
      responses: { '200': 'MerchantFlows' },
    },
  },
  '/v1/merchants/{merchantId}/webhook': {
    post: {
      operationId: 'setMerchantWebhook',
      summary: "Where the merchant's payment, refund and settlement events go (HMAC-SM3 signed, at least once)",
      tags: ['merchants'],
      parameters: [path('merchantId')],
      requestBody: 'SetWebhookRequest',
      responses: { '200': 'StatusResult' },
    },
  },
  '/v1/merchants/{merchantId}/webhook/deliveries': {
    get: {
      operationId: 'listWebhookDeliveries',
      summary: "The merchant's webhook messages in order, with their delivery state",
      tags: ['merchants'],
      parameters: [path('merchantId')],
      responses: { '200': 'WebhookDeliveries' },
    },
  },
  '/v1/merchants/{merchantId}/webhook/replay': {
    post: {
      operationId: 'replayWebhooks',
      summary: 'Send the merchant its webhook messages again from a sequence number on (same message ids)',
      tags: ['merchants'],
      parameters: [path('merchantId')],
      requestBody: 'ReplayWebhooksRequest',
      responses: { '200': 'ReplayResult' },
    },
  },
  '/v1/crm/records': {
    post: {
      operationId: 'syncCrm',
      summary: 'Account lifecycle from the CRM (T13), one or many records; each answered on its own',
      tags: ['wallets'],
      requestBody: 'CrmSyncRequest',
      responses: { '200': 'CrmSyncResult' },
    },
  },
  '/v1/exchange/batches': {
    post: {
      operationId: 'receiveExchangeBatch',
      summary:
        "A city platform's day, SM2-signed with sealed account numbers (C10); once per (platform, date, sequence)",
      tags: ['exchange'],
      requestBody: 'ExchangeBatch',
      responses: { '200': 'ExchangeAck' },
    },
  },
  '/v1/exchange/resends': {
    get: {
      operationId: 'listExchangeResends',
      summary: 'The dates the province asks this city to send again, with the next sequence to use',
      tags: ['exchange'],
      responses: { '200': 'ExchangeResends' },
    },
    post: {
      operationId: 'requestExchangeResend',
      summary: 'Ask a city platform to send a date again',
      tags: ['exchange'],
      requestBody: 'ExchangeResendRequest',
      responses: { '200': 'StatusResult' },
    },
  },
  '/v1/exchange/stats': {
    get: {
      operationId: 'getExchangeStats',
      summary: "Per city and date, the totals of its latest batch (the province's statistics)",
      tags: ['exchange'],
      parameters: [
        { name: 'from', in: 'query', required: true, schema: DATE },
        { name: 'to', in: 'query', required: true, schema: DATE },
      ],
      responses: { '200': 'ExchangeStats' },
    },
  },
  '/v1/payments': {
    post: {
      operationId: 'pay',
      summary: 'Pay an order with any mix of wallet, credits and coupon; all or nothing (C4, C5)',
      tags: ['payments'],
      requestBody: 'PayRequest',
      responses: { '201': 'Payment' },
    },
  },
  '/v1/payments/{paymentId}': {
    get: {
      operationId: 'getPayment',
      summary: "A payment's status, tenders, fee and refunds",
      tags: ['payments'],
      parameters: [path('paymentId')],
      responses: { '200': 'Payment' },
    },
  },
  '/v1/payments/{paymentId}/refunds': {
    post: {
      operationId: 'refund',
      summary: 'Refund part or all; repeated refunds up to the amount paid',
      tags: ['payments'],
      parameters: [path('paymentId')],
      requestBody: 'RefundRequest',
      responses: { '201': 'Refund' },
    },
  },
} as const;

export const SERVICE_OPERATION_IDS: ReadonlySet<string> = new Set(
  Object.values(SERVICE_PATHS).flatMap((methods) => Object.values(methods).map((spec) => spec.operationId as string)),
);

const BEHAVIOUR_RECORD = object(
  {
    externalId: KEY,
    accountNumber: ACCOUNT_NUMBER,
    behaviour: str(32, '^[a-z_]+$'),
    quantity: DECIMAL,
    unit: str(16, '^[a-z_]+$'),
    startAt: INSTANT,
    endAt: INSTANT,
    evidence: object({ kind: str(32), digest: str(128, '^[0-9a-fA-F]+$'), uri: str(512) }, ['kind', 'digest']),
  },
  ['externalId', 'accountNumber', 'behaviour', 'quantity', 'unit', 'startAt', 'endAt'],
);

const OPEN_WALLET = object(
  {
    accountNumber: ACCOUNT_NUMBER,
    name: str(64),
    areaCode: { type: 'string', pattern: '^0[1-9][0-9]{1,2}$' },
    customerClass: { enum: ['1', '2', '6'] },
    purpose: { enum: ['general', 'earmarked'] },
    allowedCategories: { type: 'array', maxItems: 32, items: str(32, '^[a-z_]+$') },
  },
  ['accountNumber', 'name', 'areaCode', 'customerClass', 'purpose'],
);

const RECORD_RESULT = {
  oneOf: [
    object(
      {
        externalId: KEY,
        status: { const: 'accepted' },
        grams: DECIMAL,
        computedGrams: DECIMAL,
        credits: CCR,
        methodologyVersion: str(64),
        transferId: nullable(KEY),
        creditStatus: { enum: ['credited', 'no_credit', 'pending', 'credit_refused'] },
      },
      ['externalId', 'status', 'grams', 'computedGrams', 'credits', 'methodologyVersion', 'transferId', 'creditStatus'],
    ),
    object({ externalId: KEY, status: { enum: ['duplicate', 'rejected'] }, reason: str(64) }, [
      'externalId',
      'status',
      'reason',
    ]),
  ],
};

const BANK_CARD = object(
  { cardId: KEY, bankCode: str(12), cardNumber: str(24), status: { enum: ['bound', 'unbound'] } },
  ['cardId', 'bankCode', 'cardNumber', 'status'],
);

const EXCHANGE_TOTALS = object(
  { records: { type: 'integer', minimum: 0 }, grams: DECIMAL, creditsIssued: CCR, creditsRedeemed: CCR },
  ['records', 'grams', 'creditsIssued', 'creditsRedeemed'],
);

const STRING_MAP = { type: 'object', additionalProperties: { type: 'string' } };

export const SERVICE_SCHEMAS = {
  SubmitBehavioursRequest: object(
    {
      batchId: KEY,
      records: { type: 'array', minItems: 1, maxItems: INGESTION_LIMITS.maxRecordsPerBatch, items: BEHAVIOUR_RECORD },
    },
    ['batchId', 'records'],
  ),
  BehaviourBatchResult: object(
    {
      batchId: KEY,
      accepted: { type: 'integer' },
      duplicates: { type: 'integer' },
      rejected: { type: 'integer' },
      records: { type: 'array', items: RECORD_RESULT },
    },
    ['batchId', 'accepted', 'duplicates', 'rejected', 'records'],
  ),
  CarbonAccount: object(
    {
      accountNumber: str(16),
      pointsAccountId: KEY,
      totalGrams: DECIMAL,
      creditsIssued: CCR,
      creditBalance: CCR,
      creditsAvailable: CCR,
      records: { type: 'integer' },
      history: { type: 'array', items: STRING_MAP },
    },
    [
      'accountNumber',
      'pointsAccountId',
      'totalGrams',
      'creditsIssued',
      'creditBalance',
      'creditsAvailable',
      'records',
      'history',
    ],
  ),
  CarbonStats: object(
    {
      from: DATE,
      to: DATE,
      rows: {
        type: 'array',
        items: object(
          { behaviour: str(32), area: str(8), day: DATE, grams: DECIMAL, credits: CCR, records: { type: 'integer' } },
          ['grams', 'credits', 'records'],
        ),
      },
    },
    ['from', 'to', 'rows'],
  ),
  MethodologyList: object({ methodologies: { type: 'array', items: { type: 'object' } } }, ['methodologies']),
  OpenWalletRequest: OPEN_WALLET,
  RegisterGroupRequest: object(
    { customers: { type: 'array', minItems: 1, maxItems: WALLET_POLICY.maxGroupRegistration, items: OPEN_WALLET } },
    ['customers'],
  ),
  GroupRegistrationResult: object(
    {
      results: {
        type: 'array',
        items: object({ status: { enum: ['opened', 'refused'] }, walletId: KEY, code: str(64), message: str(512) }, [
          'status',
        ]),
      },
    },
    ['results'],
  ),
  Wallet: object(
    {
      walletId: KEY,
      accountNumber: str(16),
      cardNumber: str(19),
      accounts: object({ main: KEY, online: KEY, offline: KEY, voucher: KEY, points: KEY }, [
        'main',
        'online',
        'offline',
        'voucher',
        'points',
      ]),
      purpose: { enum: ['general', 'earmarked'] },
      allowedCategories: { type: 'array', items: { type: 'string' } },
      passwordSet: { type: 'boolean' },
      passwordFreePerPayment: CNY,
      passwordFreePerDay: CNY,
      status: { enum: ['opening', 'open', 'closed'] },
      bankCards: { type: 'array', items: BANK_CARD },
    },
    [
      'walletId',
      'accountNumber',
      'cardNumber',
      'accounts',
      'purpose',
      'allowedCategories',
      'passwordSet',
      'passwordFreePerPayment',
      'passwordFreePerDay',
      'status',
      'bankCards',
    ],
  ),
  BindBankCardRequest: object(
    { bankCode: str(12, '^[A-Z0-9]{2,12}$'), cardNumber: { type: 'string', pattern: '^[0-9]{12,19}$' } },
    ['bankCode', 'cardNumber'],
  ),
  UnbindBankCardRequest: object({ reason: str(256) }, ['reason']),
  BankCard: BANK_CARD,
  CloseWalletRequest: object({ cardId: KEY }, ['cardId']),
  CloseWalletResult: object({ walletId: KEY, status: { const: 'closed' }, paidOut: CNY }, [
    'walletId',
    'status',
    'paidOut',
  ]),
  MerchantFlows: object(
    {
      merchantId: KEY,
      from: DATE,
      to: DATE,
      totals: object(
        {
          payments: { type: 'integer' },
          gross: CNY,
          fees: CNY,
          refunds: { type: 'integer' },
          refunded: CNY,
          net: { type: 'string', pattern: '^-?(0|[1-9][0-9]{0,14})\\.[0-9]{2}$' },
        },
        ['payments', 'gross', 'fees', 'refunds', 'refunded', 'net'],
      ),
      entries: {
        type: 'array',
        items: object(
          {
            kind: { enum: ['payment', 'refund'] },
            id: KEY,
            paymentId: KEY,
            orderId: KEY,
            amount: CNY,
            fee: CNY,
            status: str(16),
            businessDate: DATE,
            at: INSTANT,
          },
          ['kind', 'id', 'paymentId', 'orderId', 'amount', 'fee', 'status', 'businessDate', 'at'],
        ),
      },
    },
    ['merchantId', 'from', 'to', 'totals', 'entries'],
  ),
  SetWebhookRequest: object(
    {
      url: { type: 'string', maxLength: 512, pattern: '^https?://[^\\s]+$' },
      secret: str(128, '^[\\x21-\\x7e]{16,128}$'),
    },
    ['url', 'secret'],
  ),
  ReplayWebhooksRequest: object({ fromSeq: { type: 'integer', minimum: 1 } }, ['fromSeq']),
  ReplayResult: object({ replayed: { type: 'integer' } }, ['replayed']),
  WebhookDeliveries: object(
    {
      deliveries: {
        type: 'array',
        items: object(
          {
            seq: { type: 'integer' },
            messageId: str(200),
            kind: str(64),
            status: { enum: ['pending', 'delivered', 'dead'] },
            attempts: { type: 'integer' },
            lastError: nullable(str(500)),
          },
          ['seq', 'messageId', 'kind', 'status', 'attempts', 'lastError'],
        ),
      },
    },
    ['deliveries'],
  ),
  CrmSyncRequest: object(
    {
      records: {
        type: 'array',
        minItems: 1,
        maxItems: CRM_LIMITS.maxRecordsPerBatch,
        description: 'Each record is checked on its own: a malformed one is answered rejected, the rest still apply',
        items: {},
      },
    },
    ['records'],
  ),
  CrmSyncResult: object(
    {
      results: {
        type: 'array',
        items: object(
          {
            recordId: str(64),
            status: { enum: ['applied', 'duplicate', 'rejected'] },
            walletId: KEY,
            detail: str(256),
            original: { enum: ['applied', 'rejected'] },
            code: str(64),
            message: str(512),
          },
          ['recordId', 'status'],
        ),
      },
    },
    ['results'],
  ),
  ExchangeBatch: object(
    {
      platformId: KEY,
      date: DATE,
      sequence: { type: 'integer', minimum: 1, maximum: 1_000_000 },
      totals: EXCHANGE_TOTALS,
      behaviours: {
        type: 'array',
        maxItems: 64,
        items: object({ behaviour: str(32), records: { type: 'integer', minimum: 0 }, grams: DECIMAL, credits: CCR }, [
          'behaviour',
          'records',
          'grams',
          'credits',
        ]),
      },
      details: {
        type: 'array',
        maxItems: EXCHANGE_LIMITS.maxDetailsPerBatch,
        items: object(
          {
            partnerId: KEY,
            externalId: KEY,
            accountNumber: str(256, '^[A-Za-z0-9_-]+$'),
            behaviour: str(32),
            methodologyVersion: str(64),
            grams: DECIMAL,
            credits: CCR,
          },
          ['partnerId', 'externalId', 'accountNumber', 'behaviour', 'methodologyVersion', 'grams', 'credits'],
        ),
      },
      signature: { type: 'string', pattern: '^[0-9a-f]{128}$' },
    },
    ['platformId', 'date', 'sequence', 'totals', 'behaviours', 'details', 'signature'],
  ),
  ExchangeAck: object(
    {
      platformId: KEY,
      date: DATE,
      sequence: { type: 'integer' },
      status: { enum: ['accepted', 'duplicate'] },
      totals: EXCHANGE_TOTALS,
    },
    ['platformId', 'date', 'sequence', 'status', 'totals'],
  ),
  ExchangeResendRequest: object({ platformId: KEY, date: DATE, reason: str(256) }, ['platformId', 'date', 'reason']),
  ExchangeResends: object(
    {
      resends: {
        type: 'array',
        items: object({ date: DATE, nextSequence: { type: 'integer' }, reason: str(256) }, [
          'date',
          'nextSequence',
          'reason',
        ]),
      },
    },
    ['resends'],
  ),
  ExchangeStats: object(
    {
      from: DATE,
      to: DATE,
      rows: {
        type: 'array',
        items: object(
          {
            platformId: KEY,
            date: DATE,
            sequence: { type: 'integer' },
            records: { type: 'integer' },
            grams: DECIMAL,
            creditsIssued: CCR,
            creditsRedeemed: CCR,
          },
          ['platformId', 'date', 'sequence', 'records', 'grams', 'creditsIssued', 'creditsRedeemed'],
        ),
      },
    },
    ['from', 'to', 'rows'],
  ),
  SetPaymentPasswordRequest: object({ password: { type: 'string', pattern: '^[0-9]{6}$' } }, ['password']),
  StatusResult: object({ status: str(32) }, ['status']),
  TopUpRequest: object({ amount: CNY, channel: str(32, '^[a-z_]+$') }, ['amount', 'channel']),
  TopUpCallbackRequest: object({ result: { enum: ['success', 'failed'] }, channelTradeNo: KEY }, [
    'result',
    'channelTradeNo',
  ]),
  TopUp: object({ topUpId: KEY, status: { enum: ['pending', 'confirmed', 'failed'] }, transferId: nullable(KEY) }, [
    'topUpId',
    'status',
  ]),
  IssueCouponRequest: object({ couponId: KEY, amount: CNY }, ['couponId', 'amount']),
  CouponResult: object({ transferId: KEY }, ['transferId']),
  ApplyMerchantRequest: object(
    {
      name: str(64),
      category: str(32, '^[a-z_]+$'),
      feeRateBps: { type: 'integer', minimum: 0, maximum: 10_000 },
      settlementBankAccount: { type: 'string', pattern: '^[0-9]{8,30}$' },
      areaCode: { type: 'string', pattern: '^0[1-9][0-9]{1,2}$' },
    },
    ['name', 'category', 'feeRateBps', 'settlementBankAccount', 'areaCode'],
  ),
  ReviewMerchantRequest: object({ decision: { enum: ['approve', 'reject'] }, reason: str(256) }, [
    'decision',
    'reason',
  ]),
  Merchant: object(
    {
      merchantId: KEY,
      name: str(64),
      category: str(32),
      feeRateBps: { type: 'integer' },
      settlementBankAccount: str(40),
      pendingAccount: KEY,
      settledAccount: KEY,
      status: { enum: ['applied', 'active', 'rejected'] },
      reviewReason: nullable(str(256)),
      qrCode: str(256),
    },
    [
      'merchantId',
      'name',
      'category',
      'feeRateBps',
      'settlementBankAccount',
      'pendingAccount',
      'settledAccount',
      'status',
      'reviewReason',
      'qrCode',
    ],
  ),
  PayRequest: object(
    {
      merchantId: KEY,
      orderId: KEY,
      walletId: KEY,
      amount: CNY,
      tenders: object({ wallet: CNY, coupon: CNY, credits: CCR }, []),
      paymentPassword: { type: 'string', pattern: '^[0-9]{6}$' },
    },
    ['merchantId', 'orderId', 'walletId', 'amount', 'tenders'],
  ),
  Payment: object(
    {
      paymentId: KEY,
      merchantId: KEY,
      orderId: KEY,
      walletId: KEY,
      amount: CNY,
      tenders: object({ wallet: CNY, coupon: CNY, credits: CCR, creditsValue: CNY }, [
        'wallet',
        'coupon',
        'credits',
        'creditsValue',
      ]),
      fee: CNY,
      merchantNet: CNY,
      refunded: CNY,
      status: { enum: ['authorizing', 'capturing', 'captured', 'failed', 'reversing', 'reversed'] },
      failure: nullable(str(256)),
      businessDate: DATE,
    },
    [
      'paymentId',
      'merchantId',
      'orderId',
      'walletId',
      'amount',
      'tenders',
      'fee',
      'merchantNet',
      'refunded',
      'status',
      'failure',
      'businessDate',
    ],
  ),
  RefundRequest: object({ refundId: KEY, amount: CNY }, ['refundId', 'amount']),
  Refund: object({ refundId: KEY, amount: CNY, wallet: CNY, coupon: CNY, credits: CCR, transferId: KEY }, [
    'refundId',
    'amount',
    'wallet',
    'coupon',
    'credits',
    'transferId',
  ]),
} as const;

export interface ServiceDependencies {
  readonly wallets: WalletService;
  readonly carbon: CarbonService;
  readonly payments: PaymentService;
  readonly outbox: Outbox;
  readonly crm: CrmSyncService;
  readonly exchange: ExchangeReceiver;
}

type Stored = (input: OperationInput, tag: string, run: () => Promise<OperationResult>) => Promise<OperationResult>;

/** Handlers of the operations above; `stored` gives commands the Idempotency-Key replay of the rest of the API. */
export function createServiceHandlers(services: ServiceDependencies, stored: Stored): Record<string, Handler> {
  const { wallets, carbon, payments, outbox, crm, exchange } = services;
  const command =
    (tag: string, run: (input: OperationInput) => Promise<OperationResult>): Handler =>
    (input) =>
      stored(input, tag, () => refusalsAsErrors(() => run(input)));
  const query =
    (run: (input: OperationInput) => Promise<OperationResult>): Handler =>
    (input) =>
      refusalsAsErrors(() => run(input));

  return {
    submitBehaviours: command('submitBehaviours', async ({ body, principal, context, now }) => {
      const result = await carbon.submitBehaviours(
        principal.id,
        body['batchId'] as string,
        body['records'] as BehaviourRecordInput[],
        context,
        now,
      );
      return { status: 200, body: result };
    }),
    getCarbonAccount: query(async ({ parameters }) => {
      const view = await carbon.carbonAccount(parameters['accountNumber']!);
      if (!view) throw new ApiError('not_found', `no wallet has account number ${parameters['accountNumber']!}`);
      return { status: 200, body: view };
    }),
    getCarbonStats: query(async ({ parameters }) => {
      const from = parameters['from']!;
      const to = parameters['to']!;
      const groupBy = (parameters['groupBy'] ?? 'behaviour').split(',') as ('behaviour' | 'area' | 'day')[];
      return { status: 200, body: { from, to, rows: await carbon.stats(from, to, [...new Set(groupBy)]) } };
    }),
    listMethodologies: query(async () => ({ status: 200, body: { methodologies: METHODOLOGIES } })),
    openWallet: command('openWallet', async ({ body, context, now }) => {
      const wallet = await wallets.openWallet(body as unknown as OpenWalletInput, context, now);
      return { status: 201, body: walletBody(wallet, await wallets.bankCards(wallet.walletId)) };
    }),
    getWallet: query(async ({ parameters }) => {
      const wallet = await wallets.getWallet(parameters['walletId']!);
      if (!wallet) throw new ApiError('not_found', `wallet ${parameters['walletId']!} does not exist`);
      return { status: 200, body: walletBody(wallet, await wallets.bankCards(wallet.walletId)) };
    }),
    bindBankCard: command('bindBankCard', async ({ parameters, body, now }) => ({
      status: 201,
      body: await wallets.bindBankCard(
        parameters['walletId']!,
        { bankCode: body['bankCode'] as string, cardNumber: body['cardNumber'] as string },
        now,
      ),
    })),
    unbindBankCard: command('unbindBankCard', async ({ parameters, now }) => ({
      status: 200,
      body: await wallets.unbindBankCard(parameters['walletId']!, parameters['cardId']!, now),
    })),
    closeWallet: command('closeWallet', async ({ parameters, body, context, now }) => {
      const closed = await wallets.closeWallet(parameters['walletId']!, body['cardId'] as string, context, now);
      return { status: 200, body: { walletId: parameters['walletId']!, status: 'closed', paidOut: closed.paidOut } };
    }),
    receiveExchangeBatch: command('receiveExchangeBatch', async ({ body, principal, now }) => {
      const credential = principal.signedBy?.credential;
      if (!credential?.publicKey)
        throw new ApiError('forbidden', 'a batch comes as a request signed with the city platform’s SM2 key');
      return {
        status: 200,
        body: await exchange.receive(
          { clientId: credential.clientId, publicKey: credential.publicKey, fieldKey: credential.fieldKey },
          body as unknown as ExchangeBatch,
          now,
        ),
      };
    }),
    listExchangeResends: query(async ({ principal }) => ({
      status: 200,
      body: { resends: await exchange.openResends(principal.id) },
    })),
    requestExchangeResend: command('requestExchangeResend', async ({ body, now }) => {
      await exchange.requestResend(body['platformId'] as string, body['date'] as string, body['reason'] as string, now);
      return { status: 200, body: { status: 'requested' } };
    }),
    getExchangeStats: query(async ({ parameters }) => ({
      status: 200,
      body: {
        from: parameters['from']!,
        to: parameters['to']!,
        rows: await exchange.cityStats(parameters['from']!, parameters['to']!),
      },
    })),
    syncCrm: command('syncCrm', async ({ body, principal, context, now }) => ({
      status: 200,
      body: { results: await crm.sync(principal.id, body['records'] as unknown[], context, now) },
    })),
    setMerchantWebhook: command('setMerchantWebhook', async ({ parameters, body, now }) => {
      const merchant = await payments.getMerchant(parameters['merchantId']!);
      if (!merchant) throw new ApiError('not_found', `merchant ${parameters['merchantId']!} does not exist`);
      await outbox.setWebhook(merchant.merchantId, body['url'] as string, body['secret'] as string, now);
      return { status: 200, body: { status: 'set' } };
    }),
    listWebhookDeliveries: query(async ({ parameters }) => ({
      status: 200,
      body: {
        deliveries: (await outbox.list(`webhook:${parameters['merchantId']!}`, 1_000)).map((e) => ({
          seq: e.seq,
          messageId: e.messageId,
          kind: e.kind,
          status: e.status,
          attempts: e.attempts,
          lastError: e.lastError,
        })),
      },
    })),
    replayWebhooks: command('replayWebhooks', async ({ parameters, body, now }) => ({
      status: 200,
      body: { replayed: await outbox.replay(`webhook:${parameters['merchantId']!}`, body['fromSeq'] as number, now) },
    })),
    getMerchantFlows: query(async ({ parameters }) => ({
      status: 200,
      body: await payments.merchantFlows(parameters['merchantId']!, parameters['from']!, parameters['to']!),
    })),
    registerGroupCustomers: command('registerGroupCustomers', async ({ body, context, now }) => ({
      status: 200,
      body: { results: await wallets.registerGroup(body['customers'] as OpenWalletInput[], context, now) },
    })),
    setPaymentPassword: command('setPaymentPassword', async ({ parameters, body }) => {
      await wallets.setPaymentPassword(parameters['walletId']!, body['password'] as string);
      return { status: 200, body: { status: 'set' } };
    }),
    topUp: command('topUp', async ({ parameters, body, now }) => ({
      status: 202,
      body: {
        ...(await payments.requestTopUp(
          parameters['walletId']!,
          body['amount'] as string,
          body['channel'] as string,
          now,
        )),
        transferId: null,
      },
    })),
    confirmTopUp: command('confirmTopUp', async ({ parameters, body, context, now }) => ({
      status: 200,
      body: await payments.confirmTopUp(
        {
          topUpId: parameters['topUpId']!,
          result: body['result'] as 'success' | 'failed',
          channelTradeNo: body['channelTradeNo'] as string,
        },
        context,
        now,
      ),
    })),
    issueCoupon: command('issueCoupon', async ({ parameters, body, context, now }) => ({
      status: 201,
      body: await payments.issueCoupon(
        { walletId: parameters['walletId']!, couponId: body['couponId'] as string, amount: body['amount'] as string },
        context,
        now,
      ),
    })),
    applyMerchant: command('applyMerchant', async ({ body, now }) => ({
      status: 201,
      body: merchantBody(
        await payments.applyMerchant(body as unknown as Parameters<PaymentService['applyMerchant']>[0], now),
      ),
    })),
    reviewMerchant: command('reviewMerchant', async ({ parameters, body, context, now }) => ({
      status: 200,
      body: merchantBody(
        await payments.reviewMerchant(
          parameters['merchantId']!,
          body['decision'] as 'approve' | 'reject',
          body['reason'] as string,
          context,
          now,
        ),
      ),
    })),
    pay: command('pay', async ({ body, context, now }) => ({
      status: 201,
      body: await payments.pay(body as unknown as Parameters<PaymentService['pay']>[0], context, now),
    })),
    getPayment: query(async ({ parameters }) => {
      const payment = await payments.getPayment(parameters['paymentId']!);
      if (!payment) throw new ApiError('not_found', `payment ${parameters['paymentId']!} does not exist`);
      return { status: 200, body: payment };
    }),
    refund: command('refund', async ({ parameters, body, context, now }) => {
      const { replayed: _replayed, ...refund } = await payments.refund(
        { paymentId: parameters['paymentId']!, refundId: body['refundId'] as string, amount: body['amount'] as string },
        context,
        now,
      );
      return { status: 201, body: refund };
    }),
  };
}

/** Personal data leaves masked (App. B): the wallet operations are for services, not for roles that may unmask. */
function walletBody(wallet: WalletRecord, bankCards: readonly BankCardView[]): Record<string, unknown> {
  return {
    walletId: wallet.walletId,
    accountNumber: maskAccountNumber(wallet.accountNumber),
    cardNumber: mask('bank_card', wallet.cardNumber),
    accounts: wallet.accounts,
    purpose: wallet.purpose,
    allowedCategories: wallet.allowedCategories,
    passwordSet: wallet.passwordSet,
    passwordFreePerPayment: wallet.passwordFreePerPayment,
    passwordFreePerDay: wallet.passwordFreePerDay,
    status: wallet.status,
    bankCards,
  };
}

function merchantBody(merchant: MerchantRecord): MerchantRecord {
  return { ...merchant, settlementBankAccount: mask('bank_card', merchant.settlementBankAccount) };
}

async function refusalsAsErrors(run: () => Promise<OperationResult>): Promise<OperationResult> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof ServiceRefusal) throw new ApiError(error.code, error.message, error.details ?? {});
    throw error;
  }
}
