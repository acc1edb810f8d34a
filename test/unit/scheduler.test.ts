// The copy window (src/copy/scheduler.ts), without S3 or SQL: rows are claimed half a window at a time
// whatever the free slots, never more than the window runs at once, and rows claimed but not started
// are given back on a stop.
import { describe, expect, it } from 'vitest';
import { claimBatch, Scheduler } from '../../src/copy/scheduler.js';

/** A store of `total` numbered rows that records every claim's size. */
function rows(total: number): { claim: (count: number) => Promise<number[]>; claims: number[]; left: () => number } {
  let next = 0;
  const claims: number[] = [];
  return {
    claims,
    left: () => total - next,
    claim: async (count) => {
      claims.push(count);
      const taken = Array.from({ length: Math.min(count, total - next) }, (_, i) => next + i);
      next += taken.length;
      return taken;
    },
  };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('Scheduler', () => {
  it('claims half a window (1 to 64 rows) at a time', () => {
    expect([1, 2, 3, 8, 32, 128, 1000].map(claimBatch)).toEqual([1, 1, 2, 4, 16, 64, 64]);
  });

  it('keeps claims at half a window while objects finish one at a time, and never runs more than the window', async () => {
    const store = rows(200);
    const scheduler = new Scheduler<number>(32);
    let running = 0;
    let most = 0;
    // Each row takes a different number of turns, so slots free up one at a time.
    const work = async (row: number): Promise<void> => {
      running += 1;
      most = Math.max(most, running);
      for (let i = 0; i < (row % 7) + 1; i += 1) await tick();
      running -= 1;
    };
    expect(await scheduler.run(store.claim, work, async () => undefined)).toBe(true);
    expect(most).toBe(32);
    expect(store.left()).toBe(0);
    expect(new Set(store.claims)).toEqual(new Set([16]));
    // 200 rows in claims of 16, then the empty claim that ends the run.
    expect(store.claims.length).toBe(Math.ceil(200 / 16) + 1);
  });

  it('a stop lets the rows in flight finish and gives back those claimed but not started', async () => {
    const store = rows(100);
    const scheduler = new Scheduler<number>(4);
    const started: number[] = [];
    const released: number[] = [];
    const work = async (row: number): Promise<void> => {
      started.push(row);
      if (started.length === 5) scheduler.stop();
      await tick();
    };
    expect(await scheduler.run(store.claim, work, async (back) => void released.push(...back))).toBe(false);
    // Claimed: every row either started or was given back, none both.
    const claimed = 100 - store.left();
    expect(started.length + released.length).toBe(claimed);
    expect(started.filter((row) => released.includes(row))).toEqual([]);
    expect(claimed - started.length).toBeLessThanOrEqual(claimBatch(4));
  });
});
