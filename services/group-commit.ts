/**
 * Group commit for service statements, as the ledger does for its appends: calls that arrive while a batch is at the
 * database go together in the next one — one round trip and one commit for all of them. Under load batches grow and
 * the cost per call falls; alone, a call waits for at most the batch before it.
 *
 * `runBatch` answers one result per item, in the items' order; an error fails every item of its batch. A batch that
 * lost a deadlock or a serialization conflict to another process is run again (its transaction was rolled back).
 */
export interface GroupCommitLimits {
  /** Items in one batch. */
  readonly maxItems: number;
  /** Batches at the database at once; 1 keeps one process's batches from ever waiting on each other's row locks. */
  readonly maxInFlight: number;
  /** Runs of one batch after deadlocks or serialization failures before its items are failed. */
  readonly maxAttempts: number;
}

export const DEFAULT_GROUP_COMMIT_LIMITS: GroupCommitLimits = { maxItems: 500, maxInFlight: 1, maxAttempts: 5 };

/** SQLSTATEs of a transaction rolled back by a conflict with another: deadlock, serialization failure. */
const RETRYABLE_SQLSTATES = new Set(['40P01', '40001']);

interface Waiting<In, Out> {
  readonly item: In;
  readonly resolve: (out: Out) => void;
  readonly reject: (error: unknown) => void;
}

export class GroupCommit<In, Out> {
  private readonly queue: Waiting<In, Out>[] = [];
  private inFlight = 0;

  constructor(
    private readonly runBatch: (items: readonly In[]) => Promise<readonly Out[]>,
    private readonly limits: GroupCommitLimits = DEFAULT_GROUP_COMMIT_LIMITS,
  ) {
    if (limits.maxItems < 1 || limits.maxInFlight < 1 || limits.maxAttempts < 1)
      throw new Error('assertion: group commit limits are positive');
  }

  submit(item: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.queue.length > 0 && this.inFlight < this.limits.maxInFlight) {
      const batch = this.queue.splice(0, this.limits.maxItems);
      this.inFlight += 1;
      void this.run(batch).finally(() => {
        this.inFlight -= 1;
        this.pump();
      });
    }
  }

  private async run(batch: readonly Waiting<In, Out>[]): Promise<void> {
    const items = batch.map((w) => w.item);
    for (let attempt = 1; ; attempt++) {
      try {
        const results = await this.runBatch(items);
        if (results.length !== batch.length)
          throw new Error(`assertion: a batch of ${batch.length} answered ${results.length} results`);
        batch.forEach((w, i) => w.resolve(results[i]!));
        return;
      } catch (error) {
        const sqlState = (error as { code?: unknown }).code;
        if (attempt < this.limits.maxAttempts && typeof sqlState === 'string' && RETRYABLE_SQLSTATES.has(sqlState))
          continue;
        for (const w of batch) w.reject(error);
        return;
      }
    }
  }
}
