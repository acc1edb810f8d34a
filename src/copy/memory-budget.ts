/**
 * Bounds the bytes the transfers in flight may hold in memory (buffered single PUTs, multipart parts
 * queued and in flight). An object waits for its share before it starts, in arrival order, so memory
 * stays flat whatever the concurrency and the object sizes. A share larger than the whole budget is
 * clamped to it: such an object runs once everything else has given its share back.
 */
export class MemoryBudget {
  private available: number;
  private readonly waiters: Array<{ bytes: number; resolve: () => void }> = [];

  constructor(readonly capacity: number) {
    this.available = capacity;
  }

  /** Resolves with the bytes granted (to pass to release()) once they are free. */
  async acquire(bytes: number): Promise<number> {
    const granted = Math.min(Math.max(bytes, 0), this.capacity);
    if (this.waiters.length === 0 && granted <= this.available) {
      this.available -= granted;
      return granted;
    }
    await new Promise<void>((resolve) => this.waiters.push({ bytes: granted, resolve }));
    return granted;
  }

  release(bytes: number): void {
    this.available += bytes;
    while (this.waiters.length > 0 && this.waiters[0]!.bytes <= this.available) {
      const next = this.waiters.shift()!;
      this.available -= next.bytes;
      next.resolve();
    }
  }

  /** Lets every waiter through (an aborted run must not hang on memory). */
  releaseAll(): void {
    for (const waiter of this.waiters.splice(0)) waiter.resolve();
  }
}
