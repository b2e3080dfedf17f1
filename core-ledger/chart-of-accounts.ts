import type { AssetCode } from './money';

/**
 * The chart of accounts, as data. Customer and merchant accounts carry T7 account ids (16 digits: 86 · customer
 * class · account type · area · sequence); platform accounts are fixed, named accounts of the ledger itself.
 *
 * `mayGoNegative: false` is the ledger's one balance constraint: such an account's available balance
 * (posted − pending debits) never drops below zero. Balances are credit-normal: balance = credits − debits, so
 * across all accounts of an asset the balances sum to zero.
 */
export type AccountKind =
  | 'user_main'
  | 'user_online'
  | 'user_offline'
  | 'user_voucher'
  | 'user_points'
  | 'merchant_pending_settlement'
  | 'merchant_settled'
  | 'platform_bank_clearing'
  | 'platform_credit_issuance'
  | 'platform_fee_income'
  | 'platform_suspense'
  | 'platform_credit_expiry'
  | 'platform_co2e_registry'
  | 'platform_credit_redemption'
  | 'platform_marketing';

export interface AccountKindDefinition {
  readonly kind: AccountKind;
  readonly asset: AssetCode;
  readonly mayGoNegative: boolean;
  /** T7 account-type digit for coded accounts; undefined for platform accounts. */
  readonly t7AccountType?: '0' | '1' | '2' | '3' | '4';
  /** T7 customer classes allowed for this kind ('1' government/enterprise, '2' public, '6' other). */
  readonly t7CustomerClasses?: readonly ('1' | '2' | '6')[];
  readonly description: string;
}

export const ACCOUNT_KINDS: Readonly<Record<AccountKind, AccountKindDefinition>> = {
  user_main: {
    kind: 'user_main',
    asset: 'CNY',
    mayGoNegative: false,
    t7AccountType: '0',
    t7CustomerClasses: ['1', '2', '6'],
    description: 'main fund sub-account (T3)',
  },
  user_online: {
    kind: 'user_online',
    asset: 'CNY',
    mayGoNegative: false,
    t7AccountType: '1',
    t7CustomerClasses: ['1', '2', '6'],
    description: 'online payment sub-account (T3)',
  },
  user_offline: {
    kind: 'user_offline',
    asset: 'CNY',
    mayGoNegative: false,
    t7AccountType: '2',
    t7CustomerClasses: ['1', '2', '6'],
    description: 'offline (POS) payment sub-account (T3)',
  },
  user_voucher: {
    kind: 'user_voucher',
    asset: 'CNY',
    mayGoNegative: false,
    t7AccountType: '3',
    t7CustomerClasses: ['1', '2', '6'],
    description: 'voucher sub-account: marketing gifts (T3)',
  },
  user_points: {
    kind: 'user_points',
    asset: 'CCR',
    mayGoNegative: false,
    t7AccountType: '4',
    t7CustomerClasses: ['1', '2', '6'],
    description: 'points sub-account: carbon credits (T3, C1)',
  },
  // A merchant is a registered legal entity (T2): customer class 1. Funds received and not yet settled sit in the
  // online-payment type; settled funds in the main-fund type (decisions.md, "merchant accounts").
  merchant_pending_settlement: {
    kind: 'merchant_pending_settlement',
    asset: 'CNY',
    mayGoNegative: false,
    t7AccountType: '1',
    t7CustomerClasses: ['1'],
    description: 'merchant receipts awaiting settlement (C8)',
  },
  merchant_settled: {
    kind: 'merchant_settled',
    asset: 'CNY',
    mayGoNegative: false,
    t7AccountType: '0',
    t7CustomerClasses: ['1'],
    description: 'merchant settled funds (C8, T9)',
  },
  platform_bank_clearing: {
    kind: 'platform_bank_clearing',
    asset: 'CNY',
    mayGoNegative: true,
    description: 'funds at banks and channels; debited by top-ups',
  },
  platform_credit_issuance: {
    kind: 'platform_credit_issuance',
    asset: 'CCR',
    mayGoNegative: true,
    description: 'source of issued carbon credits',
  },
  platform_fee_income: {
    kind: 'platform_fee_income',
    asset: 'CNY',
    mayGoNegative: true,
    description: 'merchant fee income',
  },
  platform_suspense: {
    kind: 'platform_suspense',
    asset: 'CNY',
    mayGoNegative: true,
    description: 'suspense for reconciliation differences (长款/短款)',
  },
  platform_credit_expiry: {
    kind: 'platform_credit_expiry',
    asset: 'CCR',
    mayGoNegative: true,
    description: 'sink of expired and redeemed carbon credits',
  },
  platform_co2e_registry: {
    kind: 'platform_co2e_registry',
    asset: 'CO2E',
    mayGoNegative: true,
    description: 'source of recorded emission reductions (grams CO2e)',
  },
  platform_credit_redemption: {
    kind: 'platform_credit_redemption',
    asset: 'CCR',
    mayGoNegative: true,
    description: 'credits redeemed in the mall (C4); a refund gives them back from here',
  },
  platform_marketing: {
    kind: 'platform_marketing',
    asset: 'CNY',
    mayGoNegative: true,
    description: 'platform marketing funds: coupons issued (T3 voucher) and merchants paid for redeemed credits',
  },
};

/** The platform's own accounts: fixed ids, opened once at start-up. */
export const PLATFORM_ACCOUNTS: readonly { readonly accountId: string; readonly kind: AccountKind }[] = [
  { accountId: 'PLATFORM-BANK-CLEARING-CNY', kind: 'platform_bank_clearing' },
  { accountId: 'PLATFORM-CREDIT-ISSUANCE-CCR', kind: 'platform_credit_issuance' },
  { accountId: 'PLATFORM-FEE-INCOME-CNY', kind: 'platform_fee_income' },
  { accountId: 'PLATFORM-SUSPENSE-CNY', kind: 'platform_suspense' },
  { accountId: 'PLATFORM-CREDIT-EXPIRY-CCR', kind: 'platform_credit_expiry' },
  { accountId: 'PLATFORM-CO2E-REGISTRY', kind: 'platform_co2e_registry' },
  { accountId: 'PLATFORM-CREDIT-REDEMPTION-CCR', kind: 'platform_credit_redemption' },
  { accountId: 'PLATFORM-MARKETING-CNY', kind: 'platform_marketing' },
];

export function isAccountKind(value: unknown): value is AccountKind {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ACCOUNT_KINDS, value);
}
