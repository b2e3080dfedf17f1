import { PGlite } from '@electric-sql/pglite';
import { PgliteReadModels } from '../../projections';
import type { PaymentFacts } from '../../services';
import { RiskService } from '../../services';
import { countingRuleSet } from '../support/risk-fixtures';

/**
 * Risk control on the embedded default (PGlite, `npm start`): two engines on one database count each other's plain
 * allows through their looks, which read by snapshot (`pg_current_snapshot`, `xid8`) as on PostgreSQL.
 */

const OPTIONS = { dryRun: false, ruleSetRefreshMs: 3_600_000, syncIntervalMs: 3_600_000 };

test('on PGlite, an engine counts what another recorded, once, however often it looks', async () => {
  const pglite = new PGlite();
  try {
    const database = new PgliteReadModels(pglite);
    const writer = new RiskService(database, OPTIONS);
    await writer.install();
    await writer.publishRuleSet(countingRuleSet('pglite'), 'risk-officer');
    const reader = new RiskService(database, OPTIONS);
    await reader.install();
    const facts = (n: number): PaymentFacts => ({
      subjectRef: `payment:pglite-${n}`,
      amount: '2.50',
      accountId: 'W-pglite',
      customerClass: '2',
      walletPurpose: 'general',
      merchantId: 'M1',
      merchantCategory: 'food',
      channel: 'api',
    });
    for (const round of [0, 1]) {
      const taken = await Promise.all([1, 2, 3].map((n) => writer.assessDeferred('payment', facts(round * 10 + n))));
      const deferred = taken.map((t) => {
        if (!('deferred' in t)) throw new Error('assertion: a plain allow is deferred');
        return t.deferred;
      });
      const { ctes, params } = writer.recordingSql(deferred, 1);
      await database.query(`WITH ${ctes} SELECT 1`, params);
      for (const d of deferred) writer.settleDeferred(d, 'written');
      for (let look = 0; look < 3; look++) await reader.catchUp();
      const want = { count: 3 * (round + 1), amount: String(7.5 * (round + 1)) };
      expect(reader.counterTotals('payment|account:W-pglite|')).toMatchObject(want);
      expect(writer.counterTotals('payment|account:W-pglite|')).toMatchObject(want);
    }
  } finally {
    await pglite.close();
  }
});
