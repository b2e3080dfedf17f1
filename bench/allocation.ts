/**
 * npx tsc -p tsconfig.bench.json && node --max-semi-space-size=32 dist/bench/allocation.js [--payments N] [--json]
 *
 * What the writer allocates and spends per payment, in process, with no database: the ledger on the in-memory event
 * store, 10,000 wallets and 100 merchants, 64 clients paying (the bench's `payment` command). The machine's noise
 * barely touches these figures, so they show a change to the hot path's code where throughput runs cannot:
 *  - bytes allocated a payment (V8's sampling heap profiler, every object counted whether it died young or not),
 *    by where the allocation was made: the ledger core, decimal.js, the in-memory store (not on PostgreSQL's path),
 *    the load generator, or anything else; with the ten costliest functions;
 *  - CPU a payment, without the profiler, in three runs (median).
 * Young collections pause the writer for as long as it takes to copy what survives them, and the rate of garbage
 * sets how often they come (docs/performance.md, session 15).
 */
import { Session } from 'node:inspector/promises';
import { InMemoryEventStore, Ledger } from '../core-ledger';
import { payment, populate } from './scenarios';

const WALLETS = 10_000;
const MERCHANTS = 100;
const CLIENTS = 64;

interface ProfileNode {
  callFrame: { functionName: string; url: string };
  selfSize: number;
  children: ProfileNode[];
}

function parseOptions(argv: readonly string[]): { payments: number; json: boolean } {
  const options = { payments: 20_000, json: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--json') options.json = true;
    else if (arg === '--payments') {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n <= 0) throw new Error('--payments needs a positive integer');
      options.payments = n;
    } else throw new Error(`unknown option ${arg}`);
  }
  return options;
}

/** Where a function lives, by its script's path (compiled or from source). */
function placeOf(url: string): string | undefined {
  if (url === '' || url.startsWith('node:')) return undefined;
  if (url.includes('/node_modules/decimal.js/')) return 'decimal.js';
  if (url.includes('/node_modules/')) return 'other libraries';
  if (url.includes('/core-ledger/eventstore/memory')) return 'in-memory store';
  if (url.includes('/bench/')) return 'load generator';
  if (url.includes('/core-ledger/')) return 'ledger core';
  return 'other';
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const ledger = new Ledger(new InMemoryEventStore());
  await populate(ledger, { wallets: WALLETS, merchants: MERCHANTS, points: 0, walletFunds: '1000000.00' });
  let seed = 1;
  const rng = (): number => (seed = (seed * 16_807) % 2_147_483_647) / 2_147_483_647;
  const pay = async (count: number): Promise<void> => {
    let next = 0;
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (next++ < count) {
          const outcome = await ledger.execute(payment(rng, WALLETS, Math.floor(rng() * MERCHANTS)));
          if (outcome.status !== 'accepted') throw new Error(`assertion: a bench payment was ${outcome.status}`);
        }
      }),
    );
  };
  await pay(options.payments); // compiled and warm

  const cpuUsPerPayment: number[] = [];
  for (let run = 0; run < 3; run++) {
    const before = process.cpuUsage();
    await pay(options.payments);
    const used = process.cpuUsage(before);
    cpuUsPerPayment.push((used.user + used.system) / options.payments);
  }
  cpuUsPerPayment.sort((a, b) => a - b);

  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.enable');
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 1_024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  await pay(options.payments);
  const { profile } = (await session.post('HeapProfiler.stopSampling')) as { profile: { head: ProfileNode } };
  session.disconnect();

  const byPlace = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let total = 0;
  // A built-in (Array.push, Map.set, String.replace…) is charged to the nearest caller with a script of its own.
  const walk = (node: ProfileNode, place: string, caller: string): void => {
    const own = placeOf(node.callFrame.url);
    const here = own ?? place;
    const name = own === undefined ? caller : `${node.callFrame.functionName || '(anonymous)'} (${own})`;
    if (node.selfSize > 0) {
      total += node.selfSize;
      byPlace.set(here, (byPlace.get(here) ?? 0) + node.selfSize);
      byFunction.set(name, (byFunction.get(name) ?? 0) + node.selfSize);
    }
    for (const child of node.children) walk(child, here, name);
  };
  walk(profile.head, 'other', '(root)');
  const perPayment = (bytes: number): number => Math.round(bytes / options.payments);
  const result = {
    scenario: 'allocation',
    payments: options.payments,
    bytesPerPayment: perPayment(total),
    bytesPerPaymentByPlace: Object.fromEntries(
      [...byPlace].sort((a, b) => b[1] - a[1]).map(([place, bytes]) => [place, perPayment(bytes)]),
    ),
    topFunctions: [...byFunction]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 10)
      .map(([name, bytes]) => ({ name, bytesPerPayment: perPayment(bytes) })),
    cpuUsPerPayment: Number(cpuUsPerPayment[1]!.toFixed(1)),
    cpuUsPerPaymentRuns: cpuUsPerPayment.map((us) => Number(us.toFixed(1))),
  };
  if (options.json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  process.stdout.write(
    `allocated ${result.bytesPerPayment} bytes a payment; CPU ${result.cpuUsPerPayment} µs a payment\n`,
  );
  for (const [place, bytes] of Object.entries(result.bytesPerPaymentByPlace))
    process.stdout.write(`  ${String(bytes).padStart(7)} B  ${place}\n`);
  for (const f of result.topFunctions)
    process.stdout.write(`  ${String(f.bytesPerPayment).padStart(7)} B  ${f.name}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
