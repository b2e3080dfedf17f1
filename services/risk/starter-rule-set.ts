import type { RuleSet } from './rules';

/**
 * A first rule set to publish (20 rules, one of each kind at least), reviewed like code. The figures are platform
 * policy, not from a regulation: sized so that ordinary traffic (the simulated day of `simulated-day.ts`, < 0.1 %
 * refused) passes and the fraud patterns of #14 are caught. Amounts in CNY; speeds in km/h; steps per day.
 * Block lists start with the documentation ranges (RFC 5737 / RFC 3849) and example ids: operators replace them.
 */
export const STARTER_RULE_SET: RuleSet = {
  schema: 1,
  name: 'starter',
  rules: [
    // ---- amount limits per transaction, by customer class, wallet purpose and merchant category ----
    {
      id: 'tx-limit-public',
      kind: 'transaction_limit',
      action: 'refuse',
      scope: { customerClasses: ['2', '6'] },
      maxAmount: '5000.00',
    },
    {
      id: 'tx-limit-enterprise',
      kind: 'transaction_limit',
      action: 'refuse',
      scope: { customerClasses: ['1'] },
      maxAmount: '50000.00',
    },
    {
      id: 'tx-review-public-large',
      kind: 'transaction_limit',
      action: 'review',
      scope: { customerClasses: ['2', '6'] },
      maxAmount: '2000.00',
    },
    {
      id: 'tx-limit-earmarked',
      kind: 'transaction_limit',
      action: 'refuse',
      scope: { walletPurposes: ['earmarked'] },
      maxAmount: '1000.00',
    },
    {
      id: 'tx-review-jewellery',
      kind: 'transaction_limit',
      action: 'review',
      scope: { merchantCategories: ['jewellery', 'gift_card'] },
      maxAmount: '3000.00',
    },
    // ---- per business day ----
    {
      id: 'day-amount-public',
      kind: 'daily_limit',
      action: 'refuse',
      per: 'account',
      scope: { customerClasses: ['2', '6'] },
      maxAmount: '20000.00',
    },
    { id: 'day-count-account', kind: 'daily_limit', action: 'refuse', per: 'account', maxCount: 60 },
    { id: 'day-amount-card', kind: 'daily_limit', action: 'refuse', per: 'card', maxAmount: '20000.00' },
    // ---- velocity (sliding windows) ----
    {
      id: 'velocity-account-10m',
      kind: 'velocity',
      action: 'refuse',
      appliesTo: 'payment',
      dimension: 'account',
      windowSeconds: 600,
      maxCount: 10,
    },
    {
      id: 'velocity-account-amount-1h',
      kind: 'velocity',
      action: 'review',
      appliesTo: 'payment',
      dimension: 'account',
      windowSeconds: 3_600,
      maxAmount: '10000.00',
    },
    {
      id: 'card-testing',
      description: 'many small payments on one card: someone testing a stolen card',
      kind: 'velocity',
      action: 'refuse',
      appliesTo: 'payment',
      dimension: 'card',
      windowSeconds: 600,
      scope: { amountAtMost: '5.00' },
      maxCount: 5,
    },
    {
      id: 'velocity-terminal-5m',
      kind: 'velocity',
      action: 'review',
      appliesTo: 'payment',
      dimension: 'terminal',
      windowSeconds: 300,
      maxCount: 60,
    },
    {
      id: 'velocity-device-10m',
      kind: 'velocity',
      action: 'refuse',
      appliesTo: 'payment',
      dimension: 'device',
      windowSeconds: 600,
      maxCount: 15,
    },
    // ---- block lists ----
    { id: 'block-device', kind: 'block_list', action: 'refuse', list: 'device', entries: ['device-blocked-0001'] },
    {
      id: 'block-ip',
      kind: 'block_list',
      action: 'refuse',
      list: 'ip',
      entries: ['192.0.2.0/24', '198.51.100.7', '2001:db8::/32'],
    },
    { id: 'block-card', kind: 'block_list', action: 'refuse', list: 'card', entries: ['card-blocked-0001'] },
    { id: 'block-account', kind: 'block_list', action: 'refuse', list: 'account', entries: ['account-blocked-0001'] },
    // ---- carbon data ----
    {
      id: 'trip-speed',
      description:
        'faster than the vehicle can go: e-bike assist is limited to 25 km/h (GB 17761-2018), metro lines run below 120',
      kind: 'trip_speed',
      action: 'refuse',
      maxKmPerHour: { shared_bike: '35', metro: '120', nev_driving: '180' },
    },
    {
      id: 'steps-per-day',
      description: 'beyond what a person walks in a day (a marathon is about 50,000 steps)',
      kind: 'daily_quantity',
      action: 'refuse',
      behaviour: 'walking',
      maxQuantity: '80000',
    },
    {
      id: 'partner-burst',
      description: 'a partner sending far more records a minute than its whole user base produces',
      kind: 'velocity',
      action: 'review',
      appliesTo: 'carbon_record',
      dimension: 'partner',
      windowSeconds: 60,
      maxCount: 500,
    },
  ],
};
