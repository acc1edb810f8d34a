import type Database from 'better-sqlite3';

interface Pending {
  /** Returns false when it applied nothing it was meant to (a fenced write whose lease was lost). */
  work: () => boolean | void;
  resolve: (applied: boolean) => void;
  reject: (error: unknown) => void;
}

/**
 * Groups small writes into one transaction: each unit is queued and runs inside the next commit, at most
 * `maxDelayMs` later or as soon as `maxBatch` units wait. A unit's promise resolves only once the
 * transaction holding it committed, so a caller that awaits it never acts on a write that could still be
 * lost; if the transaction fails, every unit in it is rejected and none of them took effect.
 */
export class GroupCommit {
  private queue: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** Made once: better-sqlite3 builds a transaction function's wrappers anew on every db.transaction(). */
  private readonly commit: Database.Transaction<(batch: Pending[]) => boolean[]>;

  constructor(
    db: Database.Database,
    private readonly maxDelayMs = 2,
    private readonly maxBatch = 128,
  ) {
    this.commit = db.transaction((batch: Pending[]) => batch.map((unit) => unit.work() !== false));
  }

  /** Resolves with false when the unit applied nothing (its work returned false), once its batch committed. */
  run(work: () => boolean | void): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.queue.push({ work, resolve, reject });
      if (this.queue.length >= this.maxBatch) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.maxDelayMs);
    });
  }

  /** Commits what is queued now. Errors go to the units' promises. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    let applied: boolean[];
    try {
      // IMMEDIATE: the write lock is taken (waiting on busy_timeout) before the first read, so another
      // worker's commit can never turn this batch into an instant SQLITE_BUSY (a deferred read-then-write).
      applied = this.commit.immediate(batch);
    } catch (error) {
      for (const unit of batch) unit.reject(error);
      return;
    }
    batch.forEach((unit, i) => unit.resolve(applied[i]!));
  }
}
