/**
 * A writer process under load, to be killed: opens the ledger on DATABASE_URL, then posts transfers from many
 * concurrent clients and prints `ACK <transferId>` for each only after the ledger answered it (after commit).
 */
import type { LedgerCommand } from '../../core-ledger';
import { Ledger, openPostgresEventStore, PLATFORM_ACCOUNTS } from '../../core-ledger';

const WALLETS = 50;
const CLIENTS = 32;

async function main(): Promise<void> {
  const store = await openPostgresEventStore({ connectionString: process.env['DATABASE_URL']! });
  const ledger = new Ledger(store, { snapshotEveryEvents: 50 });
  const at = new Date().toISOString();
  const run = async (command: LedgerCommand): Promise<void> => {
    const outcome = await ledger.execute(command);
    if (outcome.status === 'refused' && outcome.refusal.code !== 'insufficient_funds')
      throw new Error(outcome.refusal.message);
  };
  await Promise.all(
    PLATFORM_ACCOUNTS.map((p) =>
      run({ type: 'OpenAccount', accountId: p.accountId, kind: p.kind, ownerId: 'platform', at }),
    ),
  );
  const wallet = (i: number): string => `8620794${String(i).padStart(9, '0')}`;
  await Promise.all(
    Array.from({ length: WALLETS }, (_, i) =>
      run({ type: 'OpenAccount', accountId: wallet(i), kind: 'user_main', ownerId: `u${i}`, at }),
    ),
  );
  process.stdout.write('READY\n');
  let sequence = 0;
  const client = async (c: number): Promise<void> => {
    for (;;) {
      const n = sequence++;
      const id = `load-${process.pid}-${n}`;
      const topUp = n % 3 === 0;
      const from = topUp ? 'PLATFORM-BANK-CLEARING-CNY' : wallet((c + n) % WALLETS);
      const to = topUp ? wallet(n % WALLETS) : wallet((c + n + 1) % WALLETS);
      const outcome = await ledger.execute({
        type: 'PostTransfer',
        transferId: id,
        idempotencyKey: id,
        transferType: topUp ? 'top_up' : 'payment',
        postings: [
          { accountId: from, direction: 'debit', amount: '1.00' },
          { accountId: to, direction: 'credit', amount: '1.00' },
        ],
        businessDate: '2026-11-23',
        at: new Date().toISOString(),
      });
      if (outcome.status === 'accepted') process.stdout.write(`ACK ${id}\n`);
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack}\n`);
  process.exit(1);
});
