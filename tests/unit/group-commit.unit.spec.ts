import { GroupCommit } from '../../services';

describe('GroupCommit', () => {
  it('sends what arrives while a batch runs as the next batch, and answers each caller its own result', async () => {
    const batches: number[][] = [];
    const group = new GroupCommit<number, string>(async (items) => {
      batches.push([...items]);
      await new Promise((resolve) => setTimeout(resolve, 5));
      return items.map((n) => `r${n}`);
    });
    const answers = await Promise.all(Array.from({ length: 10 }, (_, n) => group.submit(n)));
    expect(answers).toEqual(Array.from({ length: 10 }, (_, n) => `r${n}`));
    // The first call goes alone; the nine that arrived meanwhile go together.
    expect(batches).toEqual([[0], [1, 2, 3, 4, 5, 6, 7, 8, 9]]);
  });

  it('never sends more than maxItems in one batch nor more than maxInFlight batches at once', async () => {
    let inFlight = 0;
    let mostInFlight = 0;
    const sizes: number[] = [];
    const group = new GroupCommit<number, number>(
      async (items) => {
        inFlight += 1;
        mostInFlight = Math.max(mostInFlight, inFlight);
        sizes.push(items.length);
        await new Promise((resolve) => setTimeout(resolve, 2));
        inFlight -= 1;
        return items.map((n) => n * 2);
      },
      { maxItems: 3, maxInFlight: 2, maxAttempts: 1 },
    );
    const answers = await Promise.all(Array.from({ length: 20 }, (_, n) => group.submit(n)));
    expect(answers).toEqual(Array.from({ length: 20 }, (_, n) => n * 2));
    expect(Math.max(...sizes)).toBe(3);
    expect(mostInFlight).toBe(2);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(20);
  });

  it('runs a batch again after a deadlock or serialization failure, and fails it after maxAttempts', async () => {
    let runs = 0;
    const retried = new GroupCommit<string, string>(
      async (items) => {
        runs += 1;
        if (runs < 3) throw Object.assign(new Error('deadlock detected'), { code: runs === 1 ? '40P01' : '40001' });
        return items.map((s) => s.toUpperCase());
      },
      { maxItems: 10, maxInFlight: 1, maxAttempts: 3 },
    );
    await expect(retried.submit('a')).resolves.toBe('A');
    expect(runs).toBe(3);

    const hopeless = new GroupCommit<string, string>(
      async () => {
        throw Object.assign(new Error('deadlock detected'), { code: '40P01' });
      },
      { maxItems: 10, maxInFlight: 1, maxAttempts: 2 },
    );
    await expect(hopeless.submit('a')).rejects.toThrow('deadlock detected');
  });

  it('fails every caller of a batch that errs otherwise, and serves the next batch', async () => {
    let fail = true;
    const group = new GroupCommit<number, number>(async (items) => {
      await new Promise((resolve) => setTimeout(resolve, 2));
      if (fail) {
        fail = false;
        throw Object.assign(new Error('unique violation'), { code: '23505' });
      }
      return items;
    });
    const first = group.submit(1);
    const second = group.submit(2);
    await expect(first).rejects.toThrow('unique violation');
    await expect(second).resolves.toBe(2);
  });

  it('refuses a batch answered with a wrong number of results', async () => {
    const group = new GroupCommit<number, number>(async () => [1, 2]);
    await expect(group.submit(1)).rejects.toThrow(/answered 2 results/);
  });

  it('refuses limits that are not positive', () => {
    expect(() => new GroupCommit(async () => [], { maxItems: 0, maxInFlight: 1, maxAttempts: 1 })).toThrow(/positive/);
  });
});
