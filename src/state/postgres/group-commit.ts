/** One queued unit: a row mark of some kind, turned into SQL by the store when its batch commits. */
export interface QueuedUnit<U> {
  unit: U;
  /** With false when the unit applied nothing (a fenced write whose lease was lost). */
  resolve: (applied: boolean) => void;
  reject: (error: unknown) => void;
}

/**
 * Groups small writes into one transaction, as src/state/sqlite/group-commit.ts does for the file, but
 * asynchronously: units queue while a batch commits, and the next batch takes everything that queued (at
 * most `maxBatch`), at the latest `maxDelayMs` after its first unit. Batches commit one after another, in
 * the order their units were queued. A unit's promise resolves only once the transaction holding it
 * committed; if it fails, every unit in it is rejected and none of them took effect.
 */
export class AsyncGroupCommit<U> {
  private queue: Array<QueuedUnit<U>> = [];
  private timer: NodeJS.Timeout | undefined;
  private draining: Promise<void> | undefined;

  constructor(
    /**
     * Commits the units of one batch in one transaction (or throws, having committed none); tells, per
     * unit, whether it applied.
     */
    private readonly commit: (units: readonly U[]) => Promise<boolean[]>,
    private readonly maxDelayMs = 2,
    private readonly maxBatch = 256,
  ) {}

  run(unit: U): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.queue.push({ unit, resolve, reject });
      if (this.queue.length >= this.maxBatch) this.kick();
      else this.timer ??= setTimeout(() => this.kick(), this.maxDelayMs);
    });
  }

  /** Several units that resolve together (each still commits with its batch), with whether each applied. */
  runAll(units: readonly U[]): Promise<boolean[]> {
    return Promise.all(units.map((unit) => this.run(unit)));
  }

  /** Commits everything queued now and waits for it (errors go to the units' promises). */
  async flush(): Promise<void> {
    this.kick();
    while (this.draining) await this.draining;
  }

  private kick(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.draining || this.queue.length === 0) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      // Units queued while the last batch committed, if its loop missed them.
      if (this.queue.length > 0) this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      let applied: boolean[];
      try {
        applied = await this.commit(batch.map((queued) => queued.unit));
      } catch (error) {
        for (const queued of batch) queued.reject(error);
        continue;
      }
      batch.forEach((queued, i) => queued.resolve(applied[i] !== false));
    }
  }
}
