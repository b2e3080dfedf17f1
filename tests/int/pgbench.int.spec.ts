import { preparePgbench, runPgbench } from '../../bench/pgbench';

const SERVER_URL = process.env['BENCH_DATABASE_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

describe("pgbench as the bench's yardstick", () => {
  test('at a rate, it schedules that many transactions and reports their latencies from their schedule', async () => {
    await preparePgbench({ databaseUrl: SERVER_URL, scale: 1 });
    const paced = await runPgbench({ databaseUrl: SERVER_URL, clients: 2, seconds: 2, ratePerSecond: 50 });
    expect(paced.transactions).toBeGreaterThan(60);
    expect(paced.transactions).toBeLessThan(140);
    expect(paced.latency!.count).toBe(paced.transactions);
    expect(paced.latency!.p50Ms).toBeGreaterThan(0);
    expect(paced.latency!.p99Ms).toBeGreaterThanOrEqual(paced.latency!.p50Ms);
    const unpaced = await runPgbench({ databaseUrl: SERVER_URL, clients: 2, seconds: 1 });
    expect(unpaced.latency).toBeUndefined();
    expect(unpaced.tps).toBeGreaterThan(0);
  }, 60_000);
});
