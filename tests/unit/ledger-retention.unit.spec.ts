import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { AppendOptions, AppendResult, StreamAppend } from '../../core-ledger';
import { InMemoryEventStore, Ledger } from '../../core-ledger';
import { BANK, move, mustAccept, openAccount, openPlatformAccounts, userWallet } from '../support/ledger-fixtures';

/** Node's collector, asked for at run time (jest's workers start without --expose-gc). */
function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** Commits one append at a time, each a millisecond after the one before: batches overlap as on a database. */
class SlowerStore extends InMemoryEventStore {
  private previous: Promise<unknown> = Promise.resolve();

  override appendMany(appends: readonly StreamAppend[], options: AppendOptions = {}): Promise<AppendResult> {
    const appended = this.previous
      .catch(() => undefined)
      .then(() => new Promise<void>((resolve) => setTimeout(resolve, 1)))
      .then(() => super.appendMany(appends, options));
    this.previous = appended;
    return appended;
  }
}

describe('the writer under continuous load', () => {
  test('a state two batches old is not kept alive by the batches decided after it', async () => {
    const gc = collector();
    const ledger = new Ledger(new SlowerStore());
    const alice = userWallet(1);
    const bob = userWallet(2);
    await openPlatformAccounts(ledger);
    await mustAccept(ledger, openAccount(alice, 'user_main'));
    await mustAccept(ledger, openAccount(bob, 'user_main'));
    await mustAccept(ledger, move(BANK, alice, '100000.00', { type: 'top_up' }));

    // 32 clients pay alice → bob without pause, so the writer always has a batch committing while it decides the
    // next. Midway, one client keeps a weak reference to alice's state of that moment; much later, with batches
    // still in flight, it collects garbage and looks again.
    let sent = 0;
    let tracked: WeakRef<object> | undefined;
    let collectedWhileBusy: boolean | undefined;
    let chainAt1000 = { batches: 0, issuedEarly: 0 };
    let chainAt5000 = { batches: 0, issuedEarly: 0 };
    const chain = (): { batches: number; issuedEarly: number } => ({
      batches: ledger.stats.batches,
      issuedEarly: ledger.stats.appendsIssuedEarly,
    });
    const client = async (): Promise<void> => {
      while (sent < 6_000) {
        sent += 1;
        const n = sent;
        await mustAccept(ledger, move(alice, bob, '0.01'));
        if (n === 1_000) {
          tracked = new WeakRef((await ledger.getAccount(alice))!);
          chainAt1000 = chain();
        }
        if (n === 5_000) {
          chainAt5000 = chain();
          expect(ledger.load.batchesInFlight).toBeGreaterThan(0);
          gc();
          collectedWhileBusy = tracked!.deref() === undefined;
        }
      }
    };
    await Promise.all(Array.from({ length: 32 }, client));

    // The load was continuous in between: every batch was sent while the one before it was still committing.
    expect(chainAt5000.batches - chainAt1000.batches).toBeGreaterThan(10);
    expect(chainAt5000.issuedEarly - chainAt1000.issuedEarly).toBe(chainAt5000.batches - chainAt1000.batches);
    expect((await ledger.getAccount(alice))!.revision).toBeGreaterThan(6_000);
    expect(collectedWhileBusy).toBe(true);
  });
});
