import { PrivateCluster } from '../../bench/drills/harness';
import { sigkillDrill } from '../../bench/drills/sigkill';

jest.setTimeout(120_000);

/**
 * Fault drill (a), CI-sized: `carbonpay serve` killed with SIGKILL under a payment load over HTTP, started again;
 * every payment without an answer is retried with its idempotency key. Nothing acknowledged is lost, nothing is
 * applied twice, Σ balances = 0 per asset, the read models converge on the log (bench/drills/sigkill.ts for the
 * full-size run and docs/operations.md for its figures).
 */
test('SIGKILL of the service under load: no acknowledged payment lost, none twice, books balanced, read models converged', async () => {
  const result = await PrivateCluster.around('cp-test-drill-kill', (cluster) =>
    sigkillDrill({ serverUrl: cluster.serverUrl, seconds: 4, clients: 8, wallets: 10, kills: 1 }),
  );
  expect(result.load.acknowledged).toBeGreaterThan(20);
  expect(result.load.acknowledged).toBe(result.load.sent); // every payment answered in the end, after retries
  expect(result.checks).toMatchObject({ lost: 0, duplicated: 0, readModelDiffers: 0 });
  expect(result.checks.inLog).toBe(result.load.sent);
  expect(Object.values(result.checks.sumsByAsset).map(Number)).toEqual([0, 0, 0]);
  expect(result.passed).toBe(true);
});
