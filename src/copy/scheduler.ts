/**
 * The continuous window: keeps up to `limit` rows in flight at all times, claiming the next rows in the
 * store's order a few at a time as slots free up, so one slow object never stalls the others. It knows
 * nothing of S3 or SQL: `claim(n)` takes the next n rows, `work(row)` does one row, `release(rows)`
 * gives back rows claimed but never started.
 */
export class Scheduler<Row> {
  private maxInFlight: number;
  private active = 0;
  private stopped = false;
  private waiters: Array<() => void> = [];

  constructor(concurrency: number) {
    this.maxInFlight = concurrency;
  }

  /** Rows in flight at most (lowered under throttling, raised again after). */
  set limit(value: number) {
    this.maxInFlight = value;
    this.wake();
  }

  /** Hands out nothing more; rows already handed out finish. */
  stop(): void {
    this.stopped = true;
    this.wake();
  }

  /**
   * Runs until every row was claimed and finished (returns true) or stop() was called (false, once the
   * rows in flight finished and those claimed but not started were released). `work` must not reject:
   * its failures are its own to record.
   */
  async run(
    claim: (count: number) => Promise<Row[]>,
    work: (row: Row) => Promise<void>,
    release: (rows: Row[]) => Promise<void>,
  ): Promise<boolean> {
    const running = new Set<Promise<void>>();
    const queue: Row[] = [];
    let exhausted = false;
    try {
      while (!this.stopped) {
        while (!this.stopped && this.active >= this.maxInFlight) {
          await new Promise<void>((resolve) => this.waiters.push(resolve));
        }
        if (this.stopped) break;
        // Claims go half a window at a time (at most 64 rows), whatever the free slots: objects finish one
        // by one, and claiming only the free slots made claims of one row, one transaction each (a shared
        // PostgreSQL spends ~3x the CPU per row on claims of 8 as on claims of 64). Rows claimed ahead of
        // their turn stay under half a window, so a worker holds at most 1.5 windows of rows: the fleet's
        // order stays within 2 x workers x concurrency of the global one, and a crash leaves few rows in
        // flight for recovery to check.
        if (queue.length === 0) {
          const batch = claimBatch(this.maxInFlight);
          const rows = await claim(batch);
          if (rows.length === 0) {
            exhausted = true;
            break;
          }
          queue.push(...rows);
          if (this.stopped) break;
        }
        const row = queue.shift()!;
        this.active += 1;
        const task = work(row).finally(() => {
          this.active -= 1;
          running.delete(task);
          this.wake();
        });
        running.add(task);
      }
    } finally {
      await Promise.allSettled(running);
      if (queue.length > 0) await release(queue.splice(0));
    }
    return exhausted;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}

/** Rows per claim for a window of `limit` rows in flight: half of it, at least 1, at most 64. */
export function claimBatch(limit: number): number {
  return Math.max(1, Math.min(64, Math.ceil(limit / 2)));
}
