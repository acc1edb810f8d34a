import pLimit from 'p-limit';

/**
 * The continuous window: keeps up to `limit` rows in flight at all times, pulling the next rows in the
 * store's order as slots free up, so one slow object never stalls the others. It knows nothing of S3 or
 * SQL: `next(after)` gives the rows after the last one handed out, `work(row)` does one row.
 */
export class Scheduler<Row> {
  private readonly slots: ReturnType<typeof pLimit>;
  private stopped = false;
  private waiters: Array<() => void> = [];

  constructor(concurrency: number) {
    this.slots = pLimit(concurrency);
  }

  /** Rows in flight at most (lowered under throttling, raised again after). */
  set limit(value: number) {
    this.slots.concurrency = value;
    this.wake();
  }

  /** Hands out nothing more; rows already handed out finish. */
  stop(): void {
    this.stopped = true;
    this.wake();
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /**
   * Runs until every row was handed out and finished (returns true) or stop() was called (false, once
   * the rows in flight finished). `work` must not reject: its failures are its own to record.
   */
  async run(next: (after: Row | undefined) => Promise<Row[]>, work: (row: Row) => Promise<void>): Promise<boolean> {
    const running = new Set<Promise<void>>();
    let cursor: Row | undefined;
    let exhausted = false;
    try {
      while (!this.stopped) {
        const rows = await next(cursor);
        if (rows.length === 0) {
          exhausted = true;
          break;
        }
        for (const row of rows) {
          // Hand p-limit only what can start now, so stop() takes effect at once.
          while (!this.stopped && this.slots.activeCount + this.slots.pendingCount >= this.slots.concurrency) {
            await new Promise<void>((resolve) => this.waiters.push(resolve));
          }
          if (this.stopped) break;
          cursor = row;
          const task = this.slots(() => work(row));
          running.add(task);
          void task.finally(() => {
            running.delete(task);
            this.wake();
          });
        }
      }
    } finally {
      await Promise.allSettled(running);
    }
    return exhausted;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}
