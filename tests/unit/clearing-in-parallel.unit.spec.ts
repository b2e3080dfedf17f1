import { inParallel } from '../../clearing';

/** The lanes a clearing step runs its ledger commands in: bounded, and a failed step leaves nothing still writing. */
describe('inParallel', () => {
  test('runs every item, never more than the limit at once', async () => {
    let running = 0;
    let most = 0;
    const done: number[] = [];
    await inParallel([1, 2, 3, 4, 5, 6, 7], 3, async (item) => {
      running += 1;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 5 + (item % 3)));
      running -= 1;
      done.push(item);
    });
    expect(done.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(most).toBe(3);
  });

  test('after a failure no item starts, and the failure is thrown once the items in flight have ended', async () => {
    const started: number[] = [];
    const ended: number[] = [];
    const outcome = inParallel([1, 2, 3, 4, 5, 6, 7, 8], 3, async (item) => {
      started.push(item);
      if (item === 2) throw new Error('item 2 failed');
      await new Promise((resolve) => setTimeout(resolve, 20));
      ended.push(item);
    });
    await expect(outcome).rejects.toThrow('item 2 failed');
    // 1 and 3 were in flight when 2 failed: both ended before the failure was thrown; nothing started after it.
    expect(started).toEqual([1, 2, 3]);
    expect(ended.sort()).toEqual([1, 3]);
  });
});
