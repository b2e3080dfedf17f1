import { InMemoryEventStore, Ledger } from '../../core-ledger';
import { installSql, LEDGER_READ_MODEL, PgliteReadModels, ProjectionRunner } from '../../projections';
import { mustAccept, openAccount, openPlatformAccounts, userWallet } from '../support/ledger-fixtures';

/**
 * Regression (a hang seen in CI's shutdown test): a runner that takes the lead of a generation another runner had
 * already brought up to date applies no batch; a caller waiting for a position already applied must still be answered.
 */
test('waitUntilApplied answers for a position applied before this runner led', async () => {
  const { PGlite } = await import('@electric-sql/pglite');
  const pglite = await PGlite.create();
  const store = new InMemoryEventStore();
  const ledger = new Ledger(store);
  try {
    await openPlatformAccounts(ledger);
    const opened = await mustAccept(ledger, openAccount(userWallet(71), 'user_main'));
    const head = opened.status === 'accepted' ? opened.position : '';
    const db = new PgliteReadModels(pglite);
    await db.exec(installSql(LEDGER_READ_MODEL));
    const first = new ProjectionRunner(db, store, LEDGER_READ_MODEL, { idlePollMs: 5 });
    first.start();
    await first.waitUntilApplied(head);
    await first.stop();

    const second = new ProjectionRunner(db, store, LEDGER_READ_MODEL, { idlePollMs: 5 });
    const waited = second.waitUntilApplied(head).then(() => 'applied');
    second.start();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise((r) => (timer = setTimeout(() => r('still waiting after 10 s'), 10_000)));
    const answer = await Promise.race([waited, timeout]);
    clearTimeout(timer);
    await second.stop();
    expect(answer).toBe('applied');
  } finally {
    await ledger.close();
    await pglite.close();
  }
});
