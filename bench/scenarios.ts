import { Client } from 'pg';
import type {
  AccountKind,
  CommandOutcome,
  EventStore,
  LedgerCommand,
  PostingInput,
  TransferType,
} from '../core-ledger';
import {
  accountStreamId,
  amountOf,
  feeFor,
  formatAmount,
  Ledger,
  Money,
  openPostgresEventStore,
  PLATFORM_ACCOUNTS,
  transferStreamId,
  uuidV5,
} from '../core-ledger';

export const BENCH_DATABASE = 'carbonpay_bench';
export const BANK = 'PLATFORM-BANK-CLEARING-CNY';
export const FEES = 'PLATFORM-FEE-INCOME-CNY';
export const ISSUANCE = 'PLATFORM-CREDIT-ISSUANCE-CCR';

export function walletId(n: number): string {
  return `8620794${String(n).padStart(9, '0')}`;
}
export function pointsId(n: number): string {
  return `8624794${String(n).padStart(9, '0')}`;
}
export function merchantId(n: number): string {
  return `8611794${String(n).padStart(9, '0')}`;
}

export function databaseUrlFor(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/** A fresh, empty benchmark database on the same server as pgbench's. */
export async function freshDatabase(serverUrl: string, database: string): Promise<string> {
  const admin = new Client({ connectionString: databaseUrlFor(serverUrl, 'postgres') });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${database}`);
  } finally {
    await admin.end();
  }
  return databaseUrlFor(serverUrl, database);
}

export interface BenchLedger {
  readonly ledger: Ledger;
  readonly store: EventStore;
  readonly url: string;
  close(): Promise<void>;
}

export async function openBenchLedger(
  serverUrl: string,
  options: { fresh: boolean; maxBatchCommands?: number },
): Promise<BenchLedger> {
  const url = options.fresh
    ? await freshDatabase(serverUrl, BENCH_DATABASE)
    : databaseUrlFor(serverUrl, BENCH_DATABASE);
  const store = await openPostgresEventStore({ connectionString: url, maxConnections: 8 });
  const ledger = new Ledger(
    store,
    options.maxBatchCommands !== undefined ? { maxBatchCommands: options.maxBatchCommands } : {},
  );
  return {
    ledger,
    store,
    url,
    close: async () => {
      await ledger.close();
      await store.close();
    },
  };
}

const AT = (): string => new Date().toISOString();
const BUSINESS_DATE = (): string => new Date().toISOString().slice(0, 10);

async function must(ledger: Ledger, command: LedgerCommand): Promise<CommandOutcome> {
  const outcome = await ledger.execute(command);
  if (outcome.status === 'refused') throw new Error(`setup refused ${command.type}: ${outcome.refusal.message}`);
  return outcome;
}

/** Runs setup commands in windows of `window`, so they group-commit. */
async function inWindows(
  count: number,
  window: number,
  make: (i: number) => LedgerCommand,
  ledger: Ledger,
): Promise<void> {
  for (let start = 0; start < count; start += window) {
    const end = Math.min(count, start + window);
    await Promise.all(Array.from({ length: end - start }, (_, k) => must(ledger, make(start + k))));
  }
}

export interface Population {
  readonly wallets: number;
  readonly merchants: number;
  readonly points: number;
  /** Opening balance of every wallet, yuan. */
  readonly walletFunds: string;
}

/** Opens the platform accounts, wallets, points accounts and merchants, and funds every wallet. */
export async function populate(ledger: Ledger, population: Population): Promise<void> {
  const at = AT();
  await Promise.all(
    PLATFORM_ACCOUNTS.map((p) =>
      must(ledger, { type: 'OpenAccount', accountId: p.accountId, kind: p.kind, ownerId: 'platform', at }),
    ),
  );
  const open = (accountId: string, kind: AccountKind): LedgerCommand => ({
    type: 'OpenAccount',
    accountId,
    kind,
    ownerId: `owner-${accountId}`,
    at,
  });
  await inWindows(population.wallets, 1_000, (i) => open(walletId(i), 'user_main'), ledger);
  await inWindows(population.points, 1_000, (i) => open(pointsId(i), 'user_points'), ledger);
  await inWindows(population.merchants, 1_000, (i) => open(merchantId(i), 'merchant_pending_settlement'), ledger);
  await inWindows(
    population.wallets,
    1_000,
    (i) => transfer(`fund-${i}`, 'top_up', BANK, walletId(i), population.walletFunds),
    ledger,
  );
}

/** A small deterministic generator, so runs are repeatable. */
export function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

let sequence = 0;
/** A unique idempotency key per command of this process. */
export function nextKey(prefix: string): string {
  sequence += 1;
  return `${prefix}-${process.pid}-${sequence}`;
}

export function transfer(
  key: string,
  type: TransferType,
  from: string,
  to: string,
  amount: string,
  fee?: { account: string; amount: string; net?: string },
): LedgerCommand {
  const postings: PostingInput[] = [{ accountId: from, direction: 'debit', amount }];
  if (fee) {
    const net = fee.net ?? formatAmount('CNY', amountOf('CNY', amount).minus(amountOf('CNY', fee.amount)));
    postings.push({ accountId: to, direction: 'credit', amount: net });
    postings.push({ accountId: fee.account, direction: 'credit', amount: fee.amount });
  } else {
    postings.push({ accountId: to, direction: 'credit', amount });
  }
  return {
    type: 'PostTransfer',
    transferId: uuidV5(key),
    idempotencyKey: key,
    transferType: type,
    postings,
    businessDate: BUSINESS_DATE(),
    at: AT(),
  };
}

/** A payment of 0.01..9.99 yuan from a random wallet to a merchant, with a 0.6 % fee (half-up to the fen). */
export function payment(rng: () => number, wallets: number, merchant: number): LedgerCommand {
  const price = PRICES[Math.floor(rng() * PRICES.length)]!;
  const from = walletId(Math.floor(rng() * wallets));
  return transfer(
    nextKey('pay'),
    'payment',
    from,
    merchantId(merchant),
    price.amount,
    price.fee !== undefined ? { account: FEES, amount: price.fee, net: price.net } : undefined,
  );
}

/**
 * Every price a payment may have, with its fee and the merchant's net, computed once with the ledger's own decimal
 * arithmetic: the load generator should not spend the writer's thread on sums it would repeat a million times.
 */
const PRICES: readonly { amount: string; fee: string | undefined; net: string }[] = Array.from(
  { length: 999 },
  (_, i) => {
    const amount = new Money(i + 1).div(100);
    const fee = feeFor('CNY', amount, 60);
    return {
      amount: formatAmount('CNY', amount),
      fee: fee.gt(0) ? formatAmount('CNY', fee) : undefined,
      net: formatAmount('CNY', amount.minus(fee)),
    };
  },
);

/**
 * Σ balances per asset, computed by PostgreSQL from the journal lines alone (every AccountPosted, signed, grouped
 * by the asset its account was opened with). Independent of the writer's memory. Zero for every asset.
 */
export async function sumOfBalancesByAsset(url: string): Promise<Record<string, string>> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const result = await client.query<{ asset: string; total: string }>(`
      WITH account_asset AS (
        SELECT stream_id, data->>'asset' AS asset FROM cp_events WHERE type = 'AccountOpened'
      )
      SELECT a.asset, sum(CASE WHEN e.data->>'direction' = 'credit' THEN (e.data->>'amount')::numeric ELSE -(e.data->>'amount')::numeric END)::text AS total
        FROM cp_events e JOIN account_asset a USING (stream_id)
       WHERE e.type = 'AccountPosted'
       GROUP BY a.asset`);
    return Object.fromEntries(result.rows.map((r) => [r.asset, r.total]));
  } finally {
    await client.end();
  }
}

/** Writes every dirty buffer now, so the next measured phase does not pay for the last one's writes. */
export async function checkpoint(url: string): Promise<void> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('CHECKPOINT');
  } finally {
    await client.end();
  }
}

export function allZero(sums: Record<string, string>): boolean {
  return Object.values(sums).every((s) => new Money(s).isZero());
}

/**
 * Writes a stream of `events` journal lines on one account straight into the store's tables (seeding a long
 * history through the ledger would take minutes): `events` transfers of 0.01 from BANK's twin, each with its
 * transfer header and both journal lines, running balances consistent, exactly what the ledger would write.
 */
export async function seedLongStream(url: string, accountId: string, partnerId: string, events: number): Promise<void> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const account = accountStreamId(accountId);
    const partner = accountStreamId(partnerId);
    await client.query('BEGIN');
    // Both streams continue from where they are: their revision and their last running balance.
    const tail = async (stream: string): Promise<{ revision: number; balance: string }> => {
      const row = await client.query<{ revision: string; balance: string | null }>(
        `SELECT max(revision)::text AS revision, (SELECT data->>'balance' FROM cp_events e WHERE e.stream_id = $1 AND e.type = 'AccountPosted' ORDER BY e.revision DESC LIMIT 1) AS balance
           FROM cp_events WHERE stream_id = $1`,
        [stream],
      );
      return { revision: Number(row.rows[0]!.revision), balance: row.rows[0]!.balance ?? '0.00' };
    };
    const accountTail = await tail(account);
    const partnerTail = await tail(partner);
    for (const [stream, id, direction, sign, start] of [
      [account, accountId, 'credit', 1, accountTail],
      [partner, partnerId, 'debit', -1, partnerTail],
    ] as const) {
      await client.query(
        `INSERT INTO cp_events (stream_id, revision, event_id, type, data)
         SELECT $1, $5::bigint + g, md5($1 || g)::uuid, 'AccountPosted',
                json_build_object('accountId', $2::text, 'transferId', 'seed-' || g, 'direction', $4::text, 'amount', '0.01',
                                  'balance', to_char($6::numeric + $7::int * g * 0.01, 'FM999999999990.00'), 'at', now()::text)
           FROM generate_series(1, $3::int) g`,
        [stream, id, events, direction, start.revision, start.balance, sign],
      );
    }
    await client.query(
      `INSERT INTO cp_events (stream_id, revision, event_id, type, data)
       SELECT '${transferStreamId('')}' || 'seed-' || g, 0, md5('seed-transfer' || g)::uuid, 'TransferPosted',
              json_build_object('transferId', 'seed-' || g, 'transferType', 'internal', 'idempotencyKey', 'seed-' || g,
                'requestHash', 'seed', 'postings', json_build_array(
                  json_build_object('accountId', $2::text, 'asset', 'CNY', 'direction', 'debit', 'amount', '0.01'),
                  json_build_object('accountId', $1::text, 'asset', 'CNY', 'direction', 'credit', 'amount', '0.01')),
                'reason', null, 'reference', null, 'reverses', null, 'businessDate', current_date::text, 'at', now()::text)
         FROM generate_series(1, $3::int) g`,
      [accountId, partnerId, events],
    );
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    await client.end();
  }
}
