/**
 * Who may do what (C11): roles × operations, as data. Each operation of the API belongs to one business step
 * (query, add, modify, delete); a role is granted operations, never routes, so a new route is denied to every role
 * until this table names it. Reviewed like code: every grant here is a decision.
 */
export const ROLES = [
  'administrator',
  'operator',
  'auditor',
  'merchant',
  'customer_service',
  'clearing_operator',
  'partner',
  'payment_service',
  'platform_peer',
] as const;

export type Role = (typeof ROLES)[number];

export type BusinessStep = 'query' | 'add' | 'modify' | 'delete';

/** Every operation the API serves behind authentication, with its business step. */
export const OPERATION_STEPS = {
  openAccount: 'add',
  getAccount: 'query',
  getBalance: 'query',
  getStatement: 'query',
  freezeAccount: 'modify',
  unfreezeAccount: 'modify',
  closeAccount: 'delete',
  createTransfer: 'add',
  authorizeTransfer: 'add',
  captureTransfer: 'modify',
  voidTransfer: 'modify',
  reverseTransfer: 'add',
  getTransfer: 'query',
  listTransfers: 'query',
  getJournal: 'query',
  getTrialBalance: 'query',
  getAuditTrail: 'query',
  logout: 'modify',
  // Carbon inclusion (#7)
  submitBehaviours: 'add',
  getCarbonAccount: 'query',
  getCarbonStats: 'query',
  listMethodologies: 'query',
  // Wallets, merchants and mall payments (#8)
  openWallet: 'add',
  registerGroupCustomers: 'add',
  setPaymentPassword: 'modify',
  topUp: 'add',
  confirmTopUp: 'modify',
  issueCoupon: 'add',
  pay: 'add',
  refund: 'add',
  getPayment: 'query',
  applyMerchant: 'add',
  reviewMerchant: 'modify',
  getWallet: 'query',
  bindBankCard: 'add',
  unbindBankCard: 'delete',
  closeWallet: 'delete',
  getMerchantFlows: 'query',
  setMerchantWebhook: 'modify',
  listWebhookDeliveries: 'query',
  replayWebhooks: 'modify',
  syncCrm: 'modify',
  receiveExchangeBatch: 'add',
  listExchangeResends: 'query',
  requestExchangeResend: 'modify',
  getExchangeStats: 'query',
  // Operator and auditor console (#12)
  getConsoleProfile: 'query',
  getDashboardSeries: 'query',
  searchAccounts: 'query',
  listMerchants: 'query',
  getClearingDay: 'query',
  listDiscrepancyCases: 'query',
  resolveDiscrepancyCase: 'modify',
  listAuditLog: 'query',
  listKeys: 'query',
} as const satisfies Record<string, BusinessStep>;

export type ProtectedOperation = keyof typeof OPERATION_STEPS;

/** Operations anyone may call: they prove who the caller is, or say whether the service is up. */
export const PUBLIC_OPERATIONS: readonly string[] = ['health', 'login'];

const ACCOUNT_QUERIES: readonly ProtectedOperation[] = ['getAccount', 'getBalance', 'getStatement', 'getTransfer'];
const REPORTS: readonly ProtectedOperation[] = ['listTransfers', 'getJournal', 'getTrialBalance'];
const PAYMENTS: readonly ProtectedOperation[] = [
  'createTransfer',
  'authorizeTransfer',
  'captureTransfer',
  'voidTransfer',
  'reverseTransfer',
];

/** What every console user reads: who they are, the dashboard, the account search (no personal data in it). */
const CONSOLE_READS: readonly ProtectedOperation[] = ['getConsoleProfile', 'getDashboardSeries', 'searchAccounts'];

const CARBON_QUERIES: readonly ProtectedOperation[] = ['getCarbonAccount', 'getCarbonStats', 'listMethodologies'];
const WALLET_SERVICE: readonly ProtectedOperation[] = [
  'openWallet',
  'registerGroupCustomers',
  'setPaymentPassword',
  'topUp',
  'confirmTopUp',
  'pay',
  'refund',
  'getPayment',
  'applyMerchant',
  'getWallet',
  'bindBankCard',
  'unbindBankCard',
  'closeWallet',
  'getMerchantFlows',
  'setMerchantWebhook',
  'listWebhookDeliveries',
  'syncCrm',
];

export const ROLE_PERMISSIONS: Readonly<Record<Role, readonly ProtectedOperation[]>> = {
  // Administrators run the platform: accounts and reports, not payments (least privilege, T20).
  administrator: [
    'openAccount',
    'freezeAccount',
    'unfreezeAccount',
    'closeAccount',
    ...ACCOUNT_QUERIES,
    ...REPORTS,
    'getAuditTrail',
    ...CARBON_QUERIES,
    'requestExchangeResend',
    'getExchangeStats',
    ...CONSOLE_READS,
    'listMerchants',
    'getClearingDay',
    'listDiscrepancyCases',
    'listAuditLog',
    'listKeys',
    'logout',
  ],
  // Operators review merchants (C6) and issue marketing coupons.
  operator: [
    'openAccount',
    'freezeAccount',
    'unfreezeAccount',
    ...ACCOUNT_QUERIES,
    'listTransfers',
    'reviewMerchant',
    'issueCoupon',
    'setMerchantWebhook',
    'listWebhookDeliveries',
    'replayWebhooks',
    'getPayment',
    ...CARBON_QUERIES,
    ...CONSOLE_READS,
    'listMerchants',
    'logout',
  ],
  auditor: [
    ...ACCOUNT_QUERIES,
    ...REPORTS,
    'getAuditTrail',
    'getExchangeStats',
    'getPayment',
    'getMerchantFlows',
    ...CARBON_QUERIES,
    ...CONSOLE_READS,
    'listMerchants',
    'getClearingDay',
    'listDiscrepancyCases',
    'listAuditLog',
    'logout',
  ],
  merchant: [
    'getAccount',
    'getBalance',
    'getStatement',
    'getTransfer',
    'getPayment',
    'refund',
    'getMerchantFlows',
    'setMerchantWebhook',
    'listWebhookDeliveries',
    'replayWebhooks',
    'logout',
  ],
  customer_service: [
    'getAccount',
    'getBalance',
    'getStatement',
    'getTransfer',
    'freezeAccount',
    'getConsoleProfile',
    'searchAccounts',
    'logout',
  ],
  clearing_operator: [
    ...ACCOUNT_QUERIES,
    ...REPORTS,
    'reverseTransfer',
    ...CONSOLE_READS,
    'getClearingDay',
    'listDiscrepancyCases',
    'resolveDiscrepancyCase',
    'logout',
  ],
  // Partner platforms push behaviour data (C2) and read what it earned.
  partner: ['getAccount', 'getBalance', 'getTransfer', 'submitBehaviours', 'getCarbonAccount', 'listMethodologies'],
  // Another level's platform (a city sending to this province, C10).
  platform_peer: ['receiveExchangeBatch', 'listExchangeResends'],
  payment_service: ['openAccount', ...PAYMENTS, ...ACCOUNT_QUERIES, ...WALLET_SERVICE, ...CARBON_QUERIES],
};

/**
 * The console (#12): each screen and the operation it opens with. A role sees a screen when it holds that operation;
 * what the screen then does is each time the API's decision (a button the role lacks is hidden, and refused if sent).
 * Key management reads key metadata only and is granted to administrators alone.
 */
export const CONSOLE_SCREENS = {
  dashboard: 'getDashboardSeries',
  accounts: 'searchAccounts',
  merchants: 'listMerchants',
  clearing: 'listDiscrepancyCases',
  audit: 'listAuditLog',
  keys: 'listKeys',
} as const satisfies Record<string, ProtectedOperation>;

export type ConsoleScreen = keyof typeof CONSOLE_SCREENS;

export function consoleScreensOf(role: Role): ConsoleScreen[] {
  return (Object.keys(CONSOLE_SCREENS) as ConsoleScreen[]).filter((screen) =>
    ROLE_PERMISSIONS[role].includes(CONSOLE_SCREENS[screen]),
  );
}

/** Roles that see personal data unmasked (C17, App. B); each use is recorded. Everyone else sees it masked. */
export const UNMASK_ROLES: readonly Role[] = ['customer_service'];

export function mayUnmask(role: Role | null): boolean {
  return role !== null && UNMASK_ROLES.includes(role);
}

/**
 * Roles whose principals act for one merchant (its client registration names it, `merchantId`): they reach that
 * merchant's own objects only (OWASP API1, object-level authorization). How each operation they may call names its
 * object is data below; an operation granted to them but not named here is refused to them.
 */
export const MERCHANT_BOUND_ROLES: readonly Role[] = ['merchant'];

/** What an operation's request names: the merchant (path), a payment, a ledger account, a transfer, or nothing. */
export type MerchantObject = 'merchant' | 'payment' | 'account' | 'transfer' | 'none';

export const MERCHANT_OBJECTS: Readonly<Partial<Record<ProtectedOperation, MerchantObject>>> = {
  getMerchantFlows: 'merchant',
  setMerchantWebhook: 'merchant',
  listWebhookDeliveries: 'merchant',
  replayWebhooks: 'merchant',
  getPayment: 'payment',
  refund: 'payment',
  getAccount: 'account',
  getBalance: 'account',
  getStatement: 'account',
  getTransfer: 'transfer',
  logout: 'none',
};

export function isMerchantBound(role: Role | null): boolean {
  return role !== null && MERCHANT_BOUND_ROLES.includes(role);
}

const GRANTS = new Map<Role, ReadonlySet<string>>(ROLES.map((role) => [role, new Set<string>(ROLE_PERMISSIONS[role])]));

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

export function isAllowed(role: Role, operationId: string): boolean {
  return PUBLIC_OPERATIONS.includes(operationId) || GRANTS.get(role)!.has(operationId);
}
