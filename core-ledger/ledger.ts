import type { LedgerCommand } from './domain/commands';
import type { CommandResult, DecisionState } from './domain/decide';
import { COMMAND_LIMITS, decide, streamsToLoad } from './domain/decide';
import type { AccountEvent, LedgerEvent, StreamEvent, TransferEvent } from './domain/events';
import { ACCOUNT_STREAM_PREFIX, accountStreamId, TRANSFER_STREAM_PREFIX, transferStreamId } from './domain/events';
import type { Refusal } from './domain/refusals';
import { refuse } from './domain/refusals';
import { requestHashOf } from './domain/request-hash';
import type { AccountState, TransferState } from './domain/state';
import { accountFromSnapshot, accountToSnapshot, assert, evolveAccount, evolveTransfer } from './domain/state';
import type {
  AppendResult,
  EventStore,
  JsonObject,
  LogPosition,
  NewEvent,
  RecordedEvent,
  StreamAppend,
} from './eventstore/port';
import { EVENT_STORE_LIMITS, PredecessorNotWrittenError, WrongExpectedRevisionError } from './eventstore/port';
import { BoundedCache } from './bounded-cache';
import { eventIdsFor } from './ids';

export type CommandOutcome =
  | { readonly status: 'accepted'; readonly result: CommandResult; readonly position: LogPosition }
  | { readonly status: 'replayed'; readonly result: CommandResult }
  | { readonly status: 'refused'; readonly refusal: Refusal };

export interface LedgerOptions {
  /** Commands decided and committed together in one append (group commit). */
  readonly maxBatchCommands: number;
  /** Commands waiting for a batch; beyond this `execute` refuses with `conflict` (back-pressure). */
  readonly maxQueuedCommands: number;
  /** Accounts and transfers held in memory; beyond the bound, the one remembered first is dropped (BoundedCache). */
  readonly maxCachedAccounts: number;
  readonly maxCachedTransfers: number;
  /** An account stream gets a snapshot once this many events follow the last one. */
  readonly snapshotEveryEvents: number;
  /** Times a batch is re-decided after a conflict with another writer before its commands are refused. */
  readonly maxConflictRetries: number;
  /** Batches committing at once: the next batch is decided while the previous one waits for the database. */
  readonly maxBatchesInFlight: number;
}

export const DEFAULT_LEDGER_OPTIONS: LedgerOptions = {
  maxBatchCommands: 1_000,
  maxQueuedCommands: 100_000,
  maxCachedAccounts: 2_000_000,
  // Seconds of traffic, enough for a capture or a retry that follows its transfer; an older one is read again when
  // asked for. Every cached state is live heap each major collection marks (200 000 held ~120 MB and stalled the
  // writer ~200 ms a collection: docs/performance.md, session 13).
  maxCachedTransfers: 20_000,
  snapshotEveryEvents: 1_000,
  maxConflictRetries: 8,
  maxBatchesInFlight: 2,
};

/** A transfer's header, one line per posting, and the original's mark for a reversal. */
const MAX_EVENTS_PER_COMMAND = COMMAND_LIMITS.maxPostings + 2;

/** Longest the writer decides without yielding to I/O. */
const DECIDE_SLICE_NANOSECONDS = 1_000_000n;

/**
 * Who asked, and from where (T16's audit trail): written as metadata on the first event of an accepted command, so
 * the audit read model records every change with its author. Never part of the decision or its event ids.
 */
export interface CommandContext {
  /** The operator, partner or service that sent the command. */
  readonly actor: string;
  /** The door it came through: api, pos, cli, batch, system. */
  readonly channel: string;
  /** The client's network address or terminal id, when known. */
  readonly source?: string;
  readonly requestId?: string;
  /** Free attributes read models may group by (e.g. a carbon behaviour and area). */
  readonly tags?: Readonly<Record<string, string>>;
}

const SYSTEM_CONTEXT: CommandContext = { actor: 'system', channel: 'system' };

interface PendingCommand {
  readonly command: LedgerCommand;
  readonly context: CommandContext;
  readonly resolve: (outcome: CommandOutcome) => void;
  readonly reject: (error: unknown) => void;
  /** Times its batch met a conflict. */
  attempts: number;
}

interface DecidedBatch {
  readonly appends: StreamAppend[];
  readonly overlay: BatchOverlay;
  readonly outcomes: ((position: LogPosition | undefined) => CommandOutcome)[];
  readonly refusedIndexes: number[];
  readonly acceptedIndexes: number[];
  /** In-flight batches (oldest first) whose effects the decisions read. */
  readonly decidedOn: readonly InFlightBatch[];
}

interface InFlightBatch {
  readonly overlay: BatchOverlay;
  committed: boolean;
  /** Resolves once its append has returned: true when it committed (or had nothing to append). */
  readonly appendSucceeded: Promise<boolean>;
  settled: Promise<void>;
  /** The first event of its append (undefined when it had nothing to append): what a successor's append names. */
  readonly firstEventId: string | undefined;
}

/** A batch decided on top of one that failed is not sent; it is decided again. */
class PredecessorFailedError extends Error {}

/** Counters for monitoring and benchmarks. */
export interface LedgerStats {
  batches: number;
  commandsCommitted: number;
  conflicts: number;
  accountLoads: number;
  transferLoads: number;
  snapshotsWritten: number;
  /** Appends issued while the one before was still committing, conditional on it (a store that appends in order). */
  appendsIssuedEarly: number;
  /** Of those, appends not written because the one before was not. */
  appendsAfterFailedPredecessor: number;
}

/**
 * The write side: one writer per process. Commands queue; the writer takes what has arrived, loads any state it
 * lacks, decides each command in order against the in-memory state (the decider is the only judge), and appends
 * every resulting event in ONE atomic `appendMany` with the expected revision of every stream it touched. Only
 * after that commit does any command get its answer. A conflict (another writer moved a stream, or a transfer
 * id already exists) drops the affected state, reloads it and re-decides the batch.
 */
export class Ledger {
  private readonly options: LedgerOptions;
  private readonly accounts: BoundedCache<AccountState>;
  private readonly transfers: BoundedCache<TransferState>;
  private readonly snapshotRevisions = new Map<string, number>();
  /** Transfers whose stream must be read before the next decision (a `no_stream` append found them). */
  private readonly transfersToReload = new Set<string>();
  private queue: PendingCommand[] = [];
  private readonly inFlight: InFlightBatch[] = [];
  private settleBeforeDeciding = false;
  /** Set while the writer waits with batches in flight and nothing queued: a new command wakes it. */
  private wakeWriter: (() => void) | undefined;
  private running = false;
  private closed = false;
  private readonly backgroundWrites = new Set<Promise<void>>();
  readonly stats: LedgerStats = {
    batches: 0,
    commandsCommitted: 0,
    conflicts: 0,
    accountLoads: 0,
    transferLoads: 0,
    snapshotsWritten: 0,
    appendsIssuedEarly: 0,
    appendsAfterFailedPredecessor: 0,
  };

  /** What the writer holds now (monitoring): commands waiting for a batch, and batches deciding or committing. */
  get load(): { readonly queuedCommands: number; readonly batchesInFlight: number } {
    return { queuedCommands: this.queue.length, batchesInFlight: this.inFlight.length };
  }

  constructor(
    readonly store: EventStore,
    options: Partial<LedgerOptions> = {},
  ) {
    this.options = { ...DEFAULT_LEDGER_OPTIONS, ...options };
    this.accounts = new BoundedCache(this.options.maxCachedAccounts);
    this.transfers = new BoundedCache(this.options.maxCachedTransfers);
    assert(
      this.options.maxBatchCommands > 0 &&
        this.options.maxBatchCommands * MAX_EVENTS_PER_COMMAND <= EVENT_STORE_LIMITS.maxEventsPerAppend,
      'a full batch fits in one append',
    );
  }

  execute(command: LedgerCommand, context: CommandContext = SYSTEM_CONTEXT): Promise<CommandOutcome> {
    if (this.closed) return Promise.reject(new Error('ledger is closed'));
    if (this.queue.length >= this.options.maxQueuedCommands) {
      return Promise.resolve({
        status: 'refused',
        refusal: refuse('conflict', 'the ledger is busy; retry with the same idempotency key'),
      });
    }
    return new Promise<CommandOutcome>((resolve, reject) => {
      this.queue.push({ command, context, resolve, reject, attempts: 0 });
      this.startOrWakeWriter();
    });
  }

  /** The account as of the last commit of this writer (loading it if needed); undefined if never opened. */
  async getAccount(accountId: string): Promise<AccountState | undefined> {
    return this.accounts.get(accountId) ?? (await this.loadAccount(accountId));
  }

  async getTransfer(transferId: string): Promise<TransferState | undefined> {
    return this.transfers.get(transferId) ?? (await this.loadTransfer(transferId));
  }

  /** Forget cached state, e.g. after another process may have written (tests, operations). */
  invalidate(): void {
    this.accounts.clear();
    this.transfers.clear();
  }

  async close(): Promise<void> {
    this.closed = true;
    while (this.running || this.queue.length > 0) await new Promise((r) => setTimeout(r, 1));
    await Promise.allSettled([...this.backgroundWrites]);
  }

  /**
   * The writer loop. Up to `maxBatchesInFlight` batches are committing at once: while one waits for the database,
   * the next is decided on top of its effects. Deciding is strictly in order; answers are released in order.
   */
  private async drain(): Promise<void> {
    try {
      for (;;) {
        if (this.queue.length === 0) {
          if (this.inFlight.length === 0) break;
          // Batches are committing and nothing waits: commands that arrive meanwhile form the next batch at once
          // (execute wakes the writer), not after every batch in flight has answered.
          await new Promise<void>((resolve) => {
            this.wakeWriter = resolve;
            void Promise.all(this.inFlight.map((b) => b.settled)).then(() => resolve());
          });
          this.wakeWriter = undefined;
          continue;
        }
        if (this.settleBeforeDeciding) {
          // After a conflict, batches still committing were decided on state now known stale: let them settle
          // (and fail) before anything is decided again, so no decision reads a doomed batch's effects.
          await Promise.all(this.inFlight.map((b) => b.settled));
          this.settleBeforeDeciding = false;
          continue;
        }
        if (this.inFlight.length >= this.options.maxBatchesInFlight) {
          await Promise.race(this.inFlight.map((b) => b.settled));
          continue;
        }
        // With nothing committing, half of what waits goes now and half next, so that deciding one overlaps
        // the other's commit (a closed loop of clients would otherwise always arrive as one batch).
        const share =
          this.inFlight.length === 0 && this.options.maxBatchesInFlight > 1
            ? Math.ceil(this.queue.length / 2)
            : this.queue.length;
        const batch = this.queue.splice(0, Math.min(share, this.options.maxBatchCommands));
        try {
          const decided = await this.decideWithState(batch);
          this.launch(batch, decided);
        } catch (error) {
          for (const pending of batch) this.forgetStreamsOf(pending.command);
          for (const pending of batch) pending.reject(error);
        }
      }
    } finally {
      this.running = false;
      if (this.queue.length > 0) {
        this.running = true;
        setImmediate(() => void this.drain());
      }
    }
  }

  /** Loads what the batch lacks and decides it; refusals that could be retries are checked against the store. */
  private async decideWithState(batch: readonly PendingCommand[]): Promise<DecidedBatch> {
    const verifiedAbsent = new Set<string>();
    for (;;) {
      await this.loadStateFor(batch);
      const decided = await this.decideBatch(batch);
      // A refusal of a command that creates a transfer may really be a retry whose transfer this writer has
      // not seen (the first attempt spent the money): look for the transfer once before saying no.
      const unverified = this.unverifiedNewTransfers(batch, decided.refusedIndexes, verifiedAbsent);
      if (unverified.length === 0) return decided;
      const found = await Promise.all(unverified.map((id) => this.loadTransfer(id)));
      unverified.forEach((id) => verifiedAbsent.add(id));
      if (!found.some((t) => t !== undefined)) return decided;
    }
  }

  private launch(batch: PendingCommand[], decided: DecidedBatch): void {
    // The batches whose effects this one was decided on, captured when it was decided (some may have finished).
    const older = decided.decidedOn;
    const predecessor = older[older.length - 1];
    let reportAppend: (succeeded: boolean) => void = () => undefined;
    const entry: InFlightBatch = {
      overlay: decided.overlay,
      committed: false,
      appendSucceeded: new Promise<boolean>((resolve) => (reportAppend = resolve)),
      settled: Promise.resolve(),
      firstEventId: decided.appends[0]?.events[0]?.eventId,
    };
    this.inFlight.push(entry);
    entry.settled = (async () => {
      let appended: AppendResult | undefined;
      let failure: unknown;
      // This batch was decided on top of its predecessor's effects. Revisions alone cannot tell that: if the
      // predecessor failed, another writer may hold the very revisions it expected, with other content. So the
      // append is written only if the predecessor's was: on a store that appends in the order issued, it goes out
      // now and the store checks (the database starts on it the moment the predecessor commits); on any other, it
      // goes out once the predecessor's answer is back.
      const onlyAfter = this.store.appendsInOrder ? predecessor?.firstEventId : undefined;
      if (onlyAfter === undefined && predecessor && !(await predecessor.appendSucceeded)) {
        failure = new PredecessorFailedError();
      } else if (decided.appends.length > 0) {
        if (onlyAfter !== undefined) this.stats.appendsIssuedEarly += 1;
        try {
          appended = await this.store.appendMany(decided.appends, { onlyAfter });
        } catch (error) {
          if (error instanceof PredecessorNotWrittenError) {
            this.stats.appendsAfterFailedPredecessor += 1;
            failure = new PredecessorFailedError();
          } else failure = error;
        }
      }
      reportAppend(failure === undefined);
      await Promise.all(older.map((b) => b.settled));
      const olderFailed = older.some((b) => !b.committed);
      this.inFlight.splice(this.inFlight.indexOf(entry), 1);
      if (failure === undefined) {
        entry.committed = true;
        this.commit(decided.overlay);
        this.stats.batches += 1;
        this.stats.commandsCommitted += decided.acceptedIndexes.length;
        this.snapshotWhereDue(decided.overlay);
        const accepted = new Set(decided.acceptedIndexes);
        const again: PendingCommand[] = [];
        decided.outcomes.forEach((outcome, i) => {
          // Refusals and replays wrote nothing the database could check: if they read the state of a batch that
          // then failed, they are decided again.
          if (!accepted.has(i) && olderFailed) again.push(batch[i]!);
          else batch[i]!.resolve(asReplayIf(appended?.idempotent === true, outcome(appended?.position)));
        });
        this.requeue(again);
      } else if (failure instanceof PredecessorFailedError) {
        this.settleBeforeDeciding = true;
        this.requeue(batch);
      } else if (failure instanceof WrongExpectedRevisionError) {
        this.stats.conflicts += 1;
        this.settleBeforeDeciding = true;
        this.forgetConflicted(failure);
        const again: PendingCommand[] = [];
        for (const pending of batch) {
          pending.attempts += 1;
          if (pending.attempts > this.options.maxConflictRetries) {
            pending.resolve({
              status: 'refused',
              refusal: refuse('conflict', 'the accounts changed concurrently too often; retry'),
            });
          } else again.push(pending);
        }
        this.requeue(again);
      } else {
        // The outcome of the append is unknown: drop what this batch touched, so the next read comes from the
        // store. Clients retry with their idempotency key and get the first result or a fresh decision.
        for (const pending of batch) this.forgetStreamsOf(pending.command);
        for (const pending of batch) pending.reject(failure);
      }
    })();
  }

  private requeue(commands: PendingCommand[]): void {
    if (commands.length === 0) return;
    this.queue.unshift(...commands);
    this.startOrWakeWriter();
  }

  /** Either way, the commands of the current tick arrive before the next batch is cut. */
  private startOrWakeWriter(): void {
    if (!this.running) {
      this.running = true;
      setImmediate(() => void this.drain());
    } else if (this.wakeWriter !== undefined) {
      const wake = this.wakeWriter;
      this.wakeWriter = undefined;
      setImmediate(wake);
    }
  }

  /**
   * Decides each command in order, each seeing the effects of those before it (and of older batches still
   * committing). Returns the appends and, per command, a function from the commit's position to its outcome.
   */
  private async decideBatch(batch: readonly PendingCommand[]): Promise<DecidedBatch> {
    const decidedOn = this.inFlight.slice();
    const overlay = new BatchOverlay(
      this.accounts,
      this.transfers,
      decidedOn.map((b) => b.overlay),
    );
    const outcomes: ((position: LogPosition | undefined) => CommandOutcome)[] = [];
    const refusedIndexes: number[] = [];
    const acceptedIndexes: number[] = [];
    let sliceStarted = process.hrtime.bigint();
    for (const { command, context } of batch) {
      // Deciding a large batch takes milliseconds; yield now and then so the commit of the batch before (an I/O
      // callback) is answered and the next append sent without waiting for this loop to end.
      if (process.hrtime.bigint() - sliceStarted > DECIDE_SLICE_NANOSECONDS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        sliceStarted = process.hrtime.bigint();
      }
      const decision = decide(command, overlay);
      if (decision.outcome === 'refused') {
        refusedIndexes.push(outcomes.length);
        outcomes.push(() => ({ status: 'refused', refusal: decision.refusal }));
      } else if (decision.outcome === 'replayed') {
        outcomes.push(() => ({ status: 'replayed', result: decision.result }));
      } else {
        // The revision the decision was taken on is part of its key: the same command at the same instant, taken again
        // on a later state (freeze, unfreeze, freeze), is another decision with other ids.
        const basis = decision.events.length === 0 ? -1 : overlay.revisionOf(decision.events[0]!);
        const eventIds = eventIdsFor(`${decisionKeyOf(command)}|${basis}`, decision.events.length);
        const audit = auditMetadataOf(command, context);
        decision.events.forEach((streamEvent, index) =>
          overlay.apply(streamEvent, eventIds[index]!, index === 0 ? audit : undefined),
        );
        acceptedIndexes.push(outcomes.length);
        outcomes.push((position) => ({ status: 'accepted', result: decision.result, position: position ?? '' }));
      }
    }
    overlay.endDeciding();
    return { appends: overlay.appends(), overlay, outcomes, refusedIndexes, acceptedIndexes, decidedOn };
  }

  /** A view of committed state with the effects of every batch still committing on top, newest last. */
  private newOverlay(): BatchOverlay {
    return new BatchOverlay(
      this.accounts,
      this.transfers,
      this.inFlight.map((b) => b.overlay),
    );
  }

  private unverifiedNewTransfers(
    batch: readonly PendingCommand[],
    refusedIndexes: readonly number[],
    verifiedAbsent: ReadonlySet<string>,
  ): string[] {
    const ids = new Set<string>();
    for (const i of refusedIndexes) {
      const command = batch[i]!.command;
      const view = this.newOverlay();
      for (const id of streamsToLoad(command, view).newTransferIds) {
        if (!view.transfer(id) && !verifiedAbsent.has(id)) ids.add(id);
      }
    }
    return [...ids];
  }

  /** Committed effects join the cache; a state never replaces a newer one (batches may finish out of order). */
  private commit(overlay: BatchOverlay): void {
    for (const [id, state] of overlay.accounts) {
      const cached = this.accounts.get(id);
      if (!cached || cached.revision < state.revision) this.accounts.remember(id, state);
    }
    for (const [id, state] of overlay.transfers) {
      const cached = this.transfers.get(id);
      if (!cached || cached.revision < state.revision) this.transfers.remember(id, state);
    }
  }

  private forgetConflicted(error: WrongExpectedRevisionError): void {
    for (const conflict of error.conflicts) {
      if (conflict.streamId.startsWith(ACCOUNT_STREAM_PREFIX)) {
        this.accounts.delete(conflict.streamId.slice(ACCOUNT_STREAM_PREFIX.length));
      } else if (conflict.streamId.startsWith(TRANSFER_STREAM_PREFIX)) {
        const transferId = conflict.streamId.slice(TRANSFER_STREAM_PREFIX.length);
        this.transfers.delete(transferId);
        this.transfersToReload.add(transferId);
      }
    }
  }

  private forgetStreamsOf(command: LedgerCommand): void {
    const needs = streamsToLoad(command, new BatchOverlay(this.accounts, this.transfers));
    for (const id of needs.accountIds) this.accounts.delete(id);
    for (const id of [...needs.transferIds, ...needs.newTransferIds]) {
      this.transfers.delete(id);
      this.transfersToReload.add(id);
    }
  }

  /**
   * Loads every account and referenced transfer the batch needs and does not hold, a few rounds deep. A transfer
   * read from the store may be newer than the cached accounts it names (another writer authorized it): those
   * accounts are brought up to its time before anything is decided on them.
   */
  private async loadStateFor(batch: readonly PendingCommand[]): Promise<void> {
    // Streams read in an earlier round and found absent are not read again: only what a round newly reveals is.
    const tried = new Set<string>();
    const behindTransfers = new Set<string>();
    for (let round = 0; round < 3; round++) {
      const accountIds = new Set<string>();
      const transferIds = new Set<string>();
      const view = this.newOverlay();
      for (const { command } of batch) {
        const needs = streamsToLoad(command, view);
        for (const id of needs.accountIds) {
          if ((!view.account(id) || behindTransfers.has(id)) && !tried.has(`a:${id}`)) accountIds.add(id);
        }
        for (const id of needs.transferIds) if (!view.transfer(id) && !tried.has(`t:${id}`)) transferIds.add(id);
        for (const id of needs.newTransferIds) if (this.transfersToReload.has(id)) transferIds.add(id);
      }
      if (accountIds.size === 0 && transferIds.size === 0) return;
      accountIds.forEach((id) => tried.add(`a:${id}`));
      transferIds.forEach((id) => tried.add(`t:${id}`));
      const caughtUp = [...accountIds].filter((id) => view.account(id) !== undefined);
      // A batch still committing that touches such an account was decided on the stale state and will fail;
      // deciding on top of it would read that state again.
      if (this.inFlight.some((b) => caughtUp.some((id) => b.overlay.accounts.has(id)))) {
        await Promise.all(this.inFlight.map((b) => b.settled));
      }
      const loaded = await Promise.all([
        ...[...accountIds].map((id) => this.catchUpAccount(id)),
        ...[...transferIds].map((id) => this.loadTransfer(id)),
      ]);
      for (const id of transferIds) this.transfersToReload.delete(id);
      for (const state of loaded.slice(accountIds.size) as (TransferState | undefined)[]) {
        for (const id of accountsNamedBy(state)) behindTransfers.add(id);
      }
    }
  }

  /** Reads what the store holds beyond the cached state of an account (usually nothing), or loads it whole. */
  private async catchUpAccount(accountId: string): Promise<AccountState | undefined> {
    const cached = this.accounts.get(accountId);
    if (!cached) return this.loadAccount(accountId);
    const streamId = accountStreamId(accountId);
    let state = cached;
    for (const event of await readWholeStream(this.store, streamId, cached.revision + 1)) {
      state = evolveAccount(state, toLedgerEvent(event) as AccountEvent);
    }
    const now = this.accounts.get(accountId);
    if (!now || now.revision < state.revision) this.accounts.remember(accountId, state);
    return now && now.revision > state.revision ? now : state;
  }

  private async loadAccount(accountId: string): Promise<AccountState | undefined> {
    this.stats.accountLoads += 1;
    const streamId = accountStreamId(accountId);
    const snapshot = await this.store.readSnapshot(streamId);
    let state = snapshot ? accountFromSnapshot(snapshot.state, snapshot.revision) : undefined;
    if (snapshot) this.snapshotRevisions.set(streamId, snapshot.revision);
    for (const event of await readWholeStream(this.store, streamId, snapshot ? snapshot.revision + 1 : 0)) {
      state = evolveAccount(state, toLedgerEvent(event) as AccountEvent);
    }
    // A load that started before a commit may end after it: never replace a newer state with it.
    const cached = this.accounts.get(accountId);
    if (state && (!cached || cached.revision < state.revision)) this.accounts.remember(accountId, state);
    return cached && state && cached.revision > state.revision ? cached : state;
  }

  private async loadTransfer(transferId: string): Promise<TransferState | undefined> {
    this.stats.transferLoads += 1;
    let state: TransferState | undefined;
    for (const event of await readWholeStream(this.store, transferStreamId(transferId), 0)) {
      state = evolveTransfer(state, toLedgerEvent(event) as TransferEvent);
    }
    const cached = this.transfers.get(transferId);
    if (state && (!cached || cached.revision < state.revision)) this.transfers.remember(transferId, state);
    return cached && state && cached.revision > state.revision ? cached : state;
  }

  /** Snapshots are written after the commit, off the answer's path; losing one costs only a longer load. */
  private snapshotWhereDue(overlay: BatchOverlay): void {
    for (const [accountId, state] of overlay.accounts) {
      const streamId = accountStreamId(accountId);
      const last = this.snapshotRevisions.get(streamId) ?? -1;
      if (state.revision - last < this.options.snapshotEveryEvents) continue;
      this.snapshotRevisions.set(streamId, state.revision);
      const write = this.store
        .writeSnapshot({ streamId, revision: state.revision, state: accountToSnapshot(state) })
        .then(() => {
          this.stats.snapshotsWritten += 1;
        })
        .catch(() => {
          this.snapshotRevisions.set(streamId, last);
        })
        .finally(() => this.backgroundWrites.delete(write));
      this.backgroundWrites.add(write);
    }
  }
}

/** The state a batch decides against: the writer's cache with this batch's effects on top. */
class BatchOverlay implements DecisionState {
  readonly accounts = new Map<string, AccountState>();
  readonly transfers = new Map<string, TransferState>();
  private readonly pending = new Map<string, { expectedRevision: number; events: NewEvent[] }>();

  constructor(
    private readonly cachedAccounts: ReadonlyMap<string, AccountState>,
    private readonly cachedTransfers: ReadonlyMap<string, TransferState>,
    /**
     * Batches decided earlier and still committing, oldest first; undefined once this batch is decided (from then on
     * only its own effects are read, by the batches after it).
     */
    private earlier: readonly BatchOverlay[] | undefined = [],
  ) {}

  /**
   * Ends deciding: the overlay lets go of the batches it was decided on. A later batch reads this one's own maps only,
   * so nothing needs them; kept, each batch would hold the one before it, and that one the one before, as long as the
   * writer never ran dry: every batch's states and events lived until then (~5 KB a command promoted out of the young
   * generation, measured; docs/performance.md, session 18).
   */
  endDeciding(): void {
    this.earlier = undefined;
  }

  account(accountId: string): AccountState | undefined {
    const earlier = this.earlier;
    assert(earlier !== undefined, 'a decided batch is read through its own effects only');
    const own = this.accounts.get(accountId);
    if (own) return own;
    for (let i = earlier.length - 1; i >= 0; i--) {
      const state = earlier[i]!.accounts.get(accountId);
      if (state) return state;
    }
    return this.cachedAccounts.get(accountId);
  }

  transfer(transferId: string): TransferState | undefined {
    const earlier = this.earlier;
    assert(earlier !== undefined, 'a decided batch is read through its own effects only');
    const own = this.transfers.get(transferId);
    if (own) return own;
    for (let i = earlier.length - 1; i >= 0; i--) {
      const state = earlier[i]!.transfers.get(transferId);
      if (state) return state;
    }
    return this.cachedTransfers.get(transferId);
  }

  /** The revision of the event's stream as this batch sees it (−1: no stream yet). */
  revisionOf(streamEvent: StreamEvent): number {
    return (
      (streamEvent.kind === 'account'
        ? this.account(streamEvent.accountId)?.revision
        : this.transfer(streamEvent.transferId)?.revision) ?? -1
    );
  }

  /** Evolves the state with a decided event (asserting every invariant again) and queues it for the append. */
  apply(streamEvent: StreamEvent, eventId: string, metadata: JsonObject | undefined): void {
    let before: number;
    if (streamEvent.kind === 'account') {
      const previous = this.account(streamEvent.accountId);
      before = previous?.revision ?? -1;
      const next = evolveAccount(previous, streamEvent.event);
      this.accounts.set(streamEvent.accountId, next);
    } else {
      const previous = this.transfer(streamEvent.transferId);
      before = previous?.revision ?? -1;
      const next = evolveTransfer(previous, streamEvent.event);
      this.transfers.set(streamEvent.transferId, next);
    }
    let entry = this.pending.get(streamEvent.streamId);
    if (!entry) {
      entry = { expectedRevision: before, events: [] };
      this.pending.set(streamEvent.streamId, entry);
    }
    entry.events.push(
      metadata === undefined
        ? { eventId, type: streamEvent.event.type, data: streamEvent.event.data as unknown as JsonObject }
        : { eventId, type: streamEvent.event.type, data: streamEvent.event.data as unknown as JsonObject, metadata },
    );
  }

  appends(): StreamAppend[] {
    return [...this.pending].map(([streamId, { expectedRevision, events }]) => ({
      streamId,
      expected: expectedRevision < 0 ? 'no_stream' : expectedRevision,
      events,
    }));
  }
}

/**
 * What a decision's event ids derive from: the command's whole content and time, and (added where it is used) the
 * revision it was decided on. Two different decisions never share an id (else a store would take the second for a
 * retry of the first); a retried append of one decision does.
 */
function decisionKeyOf(command: LedgerCommand): string {
  return `${command.type}|${requestHashOf(command)}|${command.at}`;
}

/** The audit record of an accepted command; the read model keys on `command`. */
function auditMetadataOf(command: LedgerCommand, context: CommandContext): JsonObject {
  const audit: JsonObject = { command: command.type, actor: context.actor, channel: context.channel, at: command.at };
  if (context.source !== undefined) audit['source'] = context.source;
  if (context.requestId !== undefined) audit['requestId'] = context.requestId;
  if (context.tags !== undefined) audit['tags'] = { ...context.tags };
  return audit;
}

function asReplayIf(replayed: boolean, outcome: CommandOutcome): CommandOutcome {
  return replayed && outcome.status === 'accepted' ? { status: 'replayed', result: outcome.result } : outcome;
}

/** The accounts a transfer names: its postings' and, for an authorization, the two it holds between. */
export function accountsNamedBy(transfer: TransferState | undefined): string[] {
  if (!transfer) return [];
  const ids = transfer.postings.map((p) => p.accountId);
  if (transfer.authorization) ids.push(transfer.authorization.debitAccountId, transfer.authorization.creditAccountId);
  return ids;
}

async function readWholeStream(store: EventStore, streamId: string, fromRevision: number): Promise<RecordedEvent[]> {
  const all: RecordedEvent[] = [];
  for (let from = fromRevision; ;) {
    const page = await store.readStream(streamId, { fromRevision: from, maxCount: EVENT_STORE_LIMITS.maxReadCount });
    all.push(...page);
    if (page.length < EVENT_STORE_LIMITS.maxReadCount) return all;
    from = page[page.length - 1]!.revision + 1;
  }
}

export function toLedgerEvent(recorded: RecordedEvent): LedgerEvent {
  return { type: recorded.type, data: recorded.data } as unknown as LedgerEvent;
}
