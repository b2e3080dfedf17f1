/**
 * npx tsc -p tsconfig.bench.json && node dist/bench/append.js [--batches N] [--json]
 *
 * What PostgreSQL spends on the ledger's appends, per payment: batches shaped as the writer's group commit sends them
 * (32 payments: each a new transfer stream, a wallet and a merchant at their exact revisions, and one run of fee
 * lines on the fee account), one after another through the event store's own append, on a fresh database of 20,000
 * wallets and 1,000 merchants. Reported: PostgreSQL's CPU a payment (every server process, from /proc) and the wall
 * time a payment, in two rounds, each after a CHECKPOINT. Node is idle meanwhile, so the figure is the database's
 * alone and moves little with the machine's load (docs/performance.md, session 16).
 */
import { randomUUID } from 'node:crypto';
import type { StreamAppend } from '../core-ledger';
import { accountStreamId, openPostgresEventStore, transferStreamId } from '../core-ledger';
import { BENCH_DATABASE, checkpoint, FEES, freshDatabase, merchantId, mulberry32, walletId } from './scenarios';
import { localPostgresCpuUs, postgresCpuUsSince } from './stats';

const WALLETS = 20_000;
const MERCHANTS = 1_000;
const PAYMENTS_PER_BATCH = 32;

function parseOptions(argv: readonly string[]): { batches: number; json: boolean } {
  const options = { batches: 300, json: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--json') options.json = true;
    else if (arg === '--batches') {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n <= 0) throw new Error('--batches needs a positive integer');
      options.batches = n;
    } else throw new Error(`unknown option ${arg}`);
  }
  return options;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const serverUrl = process.env['BENCH_DATABASE_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
  const url = await freshDatabase(serverUrl, `${BENCH_DATABASE}_append`);
  const store = await openPostgresEventStore({ connectionString: url });
  const accounts = [
    ...Array.from({ length: WALLETS }, (_, i) => walletId(i)),
    ...Array.from({ length: MERCHANTS }, (_, i) => merchantId(i)),
    FEES,
  ];
  const revisions = new Map<string, number>();
  for (let start = 0; start < accounts.length; start += 500) {
    const opened = accounts.slice(start, start + 500);
    await store.appendMany(
      opened.map((id) => ({
        streamId: accountStreamId(id),
        expected: 'no_stream' as const,
        events: [{ eventId: randomUUID(), type: 'AccountOpened', data: { accountId: id, asset: 'CNY' } }],
      })),
    );
    for (const id of opened) revisions.set(id, 0);
  }

  const rng = mulberry32(7);
  const at = new Date().toISOString();
  const batch = (): StreamAppend[] => {
    const appends: StreamAppend[] = [];
    const fees: StreamAppend['events'][number][] = [];
    const used = new Set<string>();
    const pick = (from: number, count: number, name: (n: number) => string): string => {
      for (;;) {
        const id = name(from + Math.floor(rng() * count));
        if (!used.has(id)) {
          used.add(id);
          return id;
        }
      }
    };
    for (let p = 0; p < PAYMENTS_PER_BATCH; p++) {
      const wallet = pick(0, WALLETS, walletId);
      const merchant = pick(0, MERCHANTS, merchantId);
      const transferId = randomUUID();
      const line = (accountId: string, direction: string, amount: string): StreamAppend['events'][number] => ({
        eventId: randomUUID(),
        type: 'AccountPosted',
        data: { accountId, transferId, direction, amount, balance: '999982.88', at },
      });
      appends.push({
        streamId: transferStreamId(transferId),
        expected: 'no_stream',
        events: [
          {
            eventId: randomUUID(),
            type: 'TransferPosted',
            data: {
              transferId,
              transferType: 'payment',
              idempotencyKey: `pay-${p}`,
              requestHash: randomUUID().replace(/-/g, '').repeat(2),
              postings: [
                { accountId: wallet, asset: 'CNY', direction: 'debit', amount: '2.82' },
                { accountId: merchant, asset: 'CNY', direction: 'credit', amount: '2.80' },
                { accountId: FEES, asset: 'CNY', direction: 'credit', amount: '0.02' },
              ],
              reason: null,
              reference: null,
              reverses: null,
              businessDate: at.slice(0, 10),
              at,
            },
            metadata: { command: 'PostTransfer', actor: 'system', channel: 'system', at },
          },
        ],
      });
      for (const [id, direction, amount] of [
        [wallet, 'debit', '2.82'],
        [merchant, 'credit', '2.80'],
      ] as const) {
        appends.push({
          streamId: accountStreamId(id),
          expected: revisions.get(id)!,
          events: [line(id, direction, amount)],
        });
        revisions.set(id, revisions.get(id)! + 1);
      }
      fees.push(line(FEES, 'credit', '0.02'));
    }
    appends.push({ streamId: accountStreamId(FEES), expected: revisions.get(FEES)!, events: fees });
    revisions.set(FEES, revisions.get(FEES)! + fees.length);
    return appends;
  };

  const rounds: { postgresCpuUsPerPayment: number; wallUsPerPayment: number }[] = [];
  for (let round = 0; round < 2; round++) {
    const batches = Array.from({ length: options.batches }, batch);
    await checkpoint(url);
    const cpuBefore = localPostgresCpuUs();
    const started = process.hrtime.bigint();
    for (const appends of batches) await store.appendMany(appends);
    const wallUs = Number(process.hrtime.bigint() - started) / 1e3;
    const cpuUs = postgresCpuUsSince(cpuBefore, localPostgresCpuUs());
    const payments = options.batches * PAYMENTS_PER_BATCH;
    rounds.push({
      postgresCpuUsPerPayment: Math.round(cpuUs / payments),
      wallUsPerPayment: Math.round(wallUs / payments),
    });
  }
  await store.close();
  const result = { batches: options.batches, paymentsPerBatch: PAYMENTS_PER_BATCH, rounds };
  if (options.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else
    for (const [i, r] of rounds.entries())
      process.stdout.write(
        `round ${i + 1}: PostgreSQL ${r.postgresCpuUsPerPayment} µs CPU a payment, ${r.wallUsPerPayment} µs wall\n`,
      );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
