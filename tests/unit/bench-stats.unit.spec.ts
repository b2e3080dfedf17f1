import { latenciesFromPgbenchLog, parsePgbenchOutput, pgbenchScaleFor } from '../../bench/pgbench';
import { LatencyRecorder, runClosedLoop, runOpenLoop } from '../../bench/stats';

describe('bench statistics', () => {
  test('nearest-rank percentiles', () => {
    const recorder = new LatencyRecorder();
    for (let ms = 1; ms <= 100; ms++) recorder.record(ms);
    expect(recorder.percentile(50)).toBe(50);
    expect(recorder.percentile(99)).toBe(99);
    expect(recorder.summary()).toEqual({ p50Ms: 50, p99Ms: 99, maxMs: 100, count: 100 });
  });

  test("a window's percentile reads only the samples recorded in it", () => {
    const recorder = new LatencyRecorder();
    for (let ms = 1; ms <= 10; ms++) recorder.record(ms);
    const since = recorder.count;
    for (let ms = 101; ms <= 103; ms++) recorder.record(ms);
    expect(recorder.percentile(50, since)).toBe(102);
    expect(recorder.percentile(50)).toBe(7);
    expect(recorder.percentile(50, recorder.count)).toBeNaN();
    const sampling = new LatencyRecorder(4);
    for (let i = 0; i < 5; i++) sampling.record(i);
    expect(() => sampling.percentile(50, 2)).toThrow(/not kept/);
  });

  test('closed loops given one recorder pool their latencies', async () => {
    const recorder = new LatencyRecorder();
    const slow = await runClosedLoop({
      clients: 1,
      seconds: 0.1,
      latency: recorder,
      operation: () => new Promise((r) => setTimeout(() => r(true), 20)),
    });
    const fast = await runClosedLoop({ clients: 1, seconds: 0.1, latency: recorder, operation: async () => true });
    expect(fast.latency.count).toBe(slow.completed + fast.completed);
    expect(fast.latency.maxMs).toBeGreaterThanOrEqual(19);
  });

  test('memory stays bounded beyond the reservoir', () => {
    const recorder = new LatencyRecorder(10);
    for (let i = 0; i < 1_000; i++) recorder.record(5);
    expect(recorder.count).toBe(1_000);
    expect(recorder.summary().p99Ms).toBe(5);
  });

  test('a closed loop counts accepted and refused operations apart', async () => {
    const result = await runClosedLoop({ clients: 4, seconds: 0.2, operation: async (_c, i) => i % 2 === 0 });
    expect(result.completed).toBeGreaterThan(0);
    expect(Math.abs(result.completed - result.refused)).toBeLessThanOrEqual(4);
    expect(result.tps).toBeGreaterThan(0);
  });

  test('an open loop issues at the rate asked, whatever the operation takes', async () => {
    const result = await runOpenLoop({
      ratePerSecond: 200,
      seconds: 0.5,
      operation: () => new Promise((r) => setTimeout(() => r(true), 20)),
    });
    expect(result.completed).toBe(100);
    expect(result.latency.p50Ms).toBeGreaterThanOrEqual(19);
  });

  test('an open loop reports a failed operation once every operation has settled', async () => {
    let settled = 0;
    const run = runOpenLoop({
      ratePerSecond: 100,
      seconds: 0.2,
      operation: async () => {
        await new Promise((r) => setTimeout(r, 5));
        settled += 1;
        if (settled === 3) throw new Error('the third failed');
        return true;
      },
    });
    await expect(run).rejects.toThrow('the third failed');
    expect(settled).toBe(20);
  });

  test("reads pgbench's transaction log: latency from the schedule under a rate, its own time without", () => {
    const paced = '0 1 13877 0 1796688782 17010 1577\n1 1 38598 0 1796688782 46332 76\n';
    expect(latenciesFromPgbenchLog(paced)).toEqual([15.454, 38.674]);
    expect(latenciesFromPgbenchLog('3 7 2500 0 1796688782 17010\n\n')).toEqual([2.5]);
    expect(() => latenciesFromPgbenchLog('3 7 skipped 0 1796688782 17010 90\n')).toThrow(/pgbench log line/);
  });

  test('reads both pgbench report formats', () => {
    const v15 =
      'number of transactions actually processed: 20851\nlatency average = 7.672 ms\ninitial connection time = 10.1 ms\ntps = 2085.419105 (without initial connection time)\n';
    expect(parsePgbenchOutput(v15)).toEqual({ tps: 2085.419105, latencyAvgMs: 7.672, transactions: 20851 });
    const v13 =
      'number of transactions actually processed: 100\nlatency average = 1.5 ms\ntps = 650.5 (including connections establishing)\ntps = 660.25 (excluding connections establishing)\n';
    expect(parsePgbenchOutput(v13).tps).toBe(660.25);
    expect(() => parsePgbenchOutput('pgbench: error: connection refused')).toThrow(/no result/);
    expect(pgbenchScaleFor(4)).toBe(10);
    expect(pgbenchScaleFor(64)).toBe(64);
  });
});
