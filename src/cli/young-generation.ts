/**
 * A bound on V8's young generation ("new space") for a long-running process.
 *
 * V8 doubles its young generation each time enough objects survive its minor collections, up to its own
 * maximum: 2 x 16 MiB on Node 20 and 22, 2 x 64 MiB on Node 24. A catalog of millions of rows lets it reach
 * that maximum after some minutes, so its memory rises by 30 to 120 MiB during the run for nothing it keeps:
 * not flat, and more on newer Node. `node --max-semi-space-size=4` would prevent it, but V8 reads that flag
 * only at start-up. The growth factor is read at each growth, though, so this waits until the young
 * generation reaches `limitBytes` by V8's own growth (small runs keep V8's smaller start) and then sets the
 * factor to 1: no further growth.
 *
 * Measured (README, Catalog at scale and Performance): a catalog at 2 x 4 MiB keeps its memory flat from 1
 * to 30 million rows, at no CPU cost from an inventory and ~10 % more CPU from a listing (which waits on the
 * network far more); a copy of 64 MiB objects at 2 x 4 MiB spent ~12 % more CPU per GiB, so copies keep
 * Node 20's own maximum, 2 x 16 MiB, which also holds Node 24 to it.
 */
import v8 from 'node:v8';

/** Node 20's and 22's maximum young generation (2 x 16 MiB): what a copy keeps on every Node. */
export const YOUNG_GENERATION_NODE_20 = 32 * 1024 * 1024;
/** A catalog's (2 x 4 MiB): its memory stays flat over millions of rows. */
export const YOUNG_GENERATION_CATALOG = 8 * 1024 * 1024;

export class YoungGenerationCap {
  /** The young generation's size (both semi-spaces) at which growth stops: V8's own maximum on Node 20 and 22. */
  readonly limitBytes: number = YOUNG_GENERATION_NODE_20;
  /** How often the size is looked at until then. */
  readonly checkEveryMs: number = 25;
  private timer?: NodeJS.Timeout;
  private capped = false;

  constructor(options: { limitBytes?: number; checkEveryMs?: number } = {}) {
    if (options.limitBytes !== undefined) this.limitBytes = options.limitBytes;
    if (options.checkEveryMs !== undefined) this.checkEveryMs = options.checkEveryMs;
  }

  /** Starts watching; the timer never keeps the process alive. */
  start(): this {
    if (this.capped || this.timer) return this;
    if (!this.check()) {
      this.timer = setInterval(() => this.check(), this.checkEveryMs);
      this.timer.unref();
    }
    return this;
  }

  /** Whether growth was stopped. */
  get stopped(): boolean {
    return this.capped;
  }

  /** Stops growth once the young generation is at the limit; true when it did. */
  private check(): boolean {
    if (youngGenerationBytes() < this.limitBytes) return false;
    v8.setFlagsFromString('--semi-space-growth-factor=1');
    this.capped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    return true;
  }
}

/** The young generation's current size in bytes (V8's new space). */
export function youngGenerationBytes(): number {
  return v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')?.space_size ?? 0;
}
