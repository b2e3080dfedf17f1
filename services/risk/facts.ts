import { isIP } from 'node:net';
import type { Amount } from '../../core-ledger';
import { businessDateOf, Money, parseAmount, shanghaiDateOf } from '../../core-ledger';
import type { Dimension, RiskKind } from './rules';

/**
 * What the engine is told about an event. The caller resolves identities first: `accountId` is the wallet id (or the
 * points account for carbon records), `cardRef` the wallet's card blind index — never a PAN, so neither rule sets nor
 * decision records hold one in clear. Facts are stored as given, in the decision record.
 */

export interface PaymentFacts {
  /** The event's stable identity, e.g. `payment:<paymentId>`: an approved review lets this one through, once. */
  readonly subjectRef: string;
  /** CNY, a decimal string. */
  readonly amount: string;
  readonly accountId: string;
  /** T7 customer class digit of the wallet. */
  readonly customerClass: string;
  /** Wallet purpose: general, earmarked. */
  readonly walletPurpose: string;
  readonly merchantId: string;
  readonly merchantCategory: string;
  /** The door: api, pos. */
  readonly channel: string;
  /** Business date of the payment (YYYY-MM-DD); by default the Shanghai date of the decision. */
  readonly businessDate?: string;
  readonly cardRef?: string;
  readonly terminalId?: string;
  readonly deviceId?: string;
  readonly ip?: string;
}

export interface CarbonRecordFacts {
  /** e.g. `carbon:<partnerId>:<externalId>`. */
  readonly subjectRef: string;
  readonly partnerId: string;
  readonly accountId: string;
  readonly behaviour: string;
  /** Decimal string in the unit (steps, km, rides…). */
  readonly quantity: string;
  readonly unit: string;
  readonly startAt: string;
  readonly endAt: string;
  readonly channel?: string;
  readonly deviceId?: string;
  readonly ip?: string;
}

export type RiskFacts = PaymentFacts | CarbonRecordFacts;

/** Facts parsed once for every rule: amounts as decimals, the dimension values, the business date. */
export interface NormalizedFacts {
  readonly kind: RiskKind;
  readonly subjectRef: string;
  /** CNY of a payment, the quantity of a carbon record. */
  readonly amount: Amount;
  /** Business date of a payment, behaviour date (of the end time, Shanghai) of a record. */
  readonly businessDate: string;
  readonly dimensions: Readonly<Partial<Record<Dimension, string>>>;
  readonly customerClass?: string;
  readonly walletPurpose?: string;
  readonly merchantCategory?: string;
  readonly channel?: string;
  readonly behaviour?: string;
  readonly partnerId?: string;
  readonly unit?: string;
  readonly startMs?: number;
  readonly endMs?: number;
}

export type FactsParse = { ok: true; facts: NormalizedFacts } | { ok: false; error: string };

const IDENTIFIER = /^[A-Za-z0-9._:@|+-]{1,128}$/;
const SUBJECT = /^[A-Za-z0-9._:@|+/-]{1,200}$/;
// Labels (merchant categories, behaviours, channels) are matched against rule scopes as they are: any printable text.
const LABEL = /^\P{Cc}{1,64}$/u;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const QUANTITY = /^\d{1,15}(\.\d{1,6})?$/;

/** Checks facts from a caller (shape, identifiers, amounts) and normalises them; `nowMs` dates a payment. */
export function normalizeFacts(kind: RiskKind, input: unknown, nowMs: number): FactsParse {
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    return { ok: false, error: 'facts: an object' };
  const f = input as Record<string, unknown>;
  const fail = (error: string): FactsParse => ({ ok: false, error });
  if (typeof f['subjectRef'] !== 'string' || !SUBJECT.test(f['subjectRef']))
    return fail('subjectRef: 1..200 safe characters');
  for (const field of ['accountId', 'cardRef', 'terminalId', 'deviceId', 'merchantId', 'partnerId']) {
    const value = f[field];
    if (value !== undefined && (typeof value !== 'string' || !IDENTIFIER.test(value)))
      return fail(`${field}: 1..128 letters, digits or . _ : @ | + -`);
  }
  for (const field of ['customerClass', 'walletPurpose', 'merchantCategory', 'channel', 'behaviour', 'unit']) {
    const value = f[field];
    if (value !== undefined && (typeof value !== 'string' || !LABEL.test(value)))
      return fail(`${field}: 1..64 printable characters`);
  }
  if (f['ip'] !== undefined && (typeof f['ip'] !== 'string' || isIP(f['ip']) === 0)) return fail('ip: an IP address');
  if (typeof f['accountId'] !== 'string') return fail('accountId: required');
  const dimensions: Partial<Record<Dimension, string>> = { account: f['accountId'] };
  if (f['cardRef'] !== undefined) dimensions.card = f['cardRef'] as string;
  if (f['terminalId'] !== undefined) dimensions.terminal = f['terminalId'] as string;
  if (f['deviceId'] !== undefined) dimensions.device = f['deviceId'] as string;
  if (f['ip'] !== undefined) dimensions.ip = f['ip'] as string;
  const label = (name: string): string | undefined => f[name] as string | undefined;

  if (kind === 'payment') {
    for (const field of ['customerClass', 'walletPurpose', 'merchantId', 'merchantCategory', 'channel'])
      if (f[field] === undefined) return fail(`${field}: required for a payment`);
    const amount = parseAmount('CNY', f['amount'], { positive: true });
    if (!amount.ok) return fail(`amount: a positive CNY decimal string (${amount.error.kind.replace(/_/g, ' ')})`);
    const date = f['businessDate'];
    if (date !== undefined && (typeof date !== 'string' || !DATE.test(date) || !Number.isFinite(Date.parse(date))))
      return fail('businessDate: YYYY-MM-DD');
    dimensions.merchant = f['merchantId'] as string;
    return {
      ok: true,
      facts: {
        kind,
        subjectRef: f['subjectRef'],
        amount: amount.amount,
        businessDate: (date as string | undefined) ?? businessDateOf(new Date(nowMs), 0),
        dimensions,
        customerClass: label('customerClass'),
        walletPurpose: label('walletPurpose'),
        merchantCategory: label('merchantCategory'),
        channel: label('channel'),
      },
    };
  }

  for (const field of ['partnerId', 'behaviour', 'unit'])
    if (f[field] === undefined) return fail(`${field}: required for a carbon record`);
  if (typeof f['quantity'] !== 'string' || !QUANTITY.test(f['quantity'])) return fail('quantity: a decimal string');
  const startMs = typeof f['startAt'] === 'string' ? Date.parse(f['startAt']) : Number.NaN;
  const endMs = typeof f['endAt'] === 'string' ? Date.parse(f['endAt']) : Number.NaN;
  if (!Number.isFinite(startMs) || !Number.isFinite(endMs) || startMs > endMs)
    return fail('startAt, endAt: ISO instants, start not after end');
  dimensions.partner = f['partnerId'] as string;
  return {
    ok: true,
    facts: {
      kind,
      subjectRef: f['subjectRef'],
      amount: new Money(f['quantity']),
      businessDate: shanghaiDateOf(endMs),
      dimensions,
      channel: label('channel'),
      behaviour: label('behaviour'),
      partnerId: label('partnerId'),
      unit: label('unit'),
      startMs,
      endMs,
    },
  };
}
