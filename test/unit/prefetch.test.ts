import { describe, expect, it } from 'vitest';
import { prefetchOne } from '../../src/prefetch.js';

describe('prefetchOne', () => {
  it('keeps order and ends with the source', async () => {
    async function* numbers(): AsyncGenerator<number> {
      for (let i = 0; i < 5; i++) yield i;
    }
    const seen: number[] = [];
    for await (const n of prefetchOne(numbers())) seen.push(n);
    expect(seen).toEqual([0, 1, 2, 3, 4]);
  });

  it("has the next item's request sent before the consumer gets the current one", async () => {
    // A listing request takes many promise hops before it is written to its socket; the consumer's work
    // (storing a page) is synchronous. The request must be out before that work starts.
    const sent: number[] = [];
    async function* pages(): AsyncGenerator<number> {
      for (let i = 0; i < 3; i++) {
        for (let hop = 0; hop < 50; hop++) await Promise.resolve();
        sent.push(i);
        await new Promise((resolve) => setTimeout(resolve, 2));
        yield i;
      }
    }
    const sentWhenDelivered: number[][] = [];
    for await (const page of prefetchOne(pages())) {
      sentWhenDelivered[page] = [...sent];
    }
    expect(sentWhenDelivered[0]).toEqual([0, 1]);
    expect(sentWhenDelivered[1]).toEqual([0, 1, 2]);
  });

  it('surfaces an error of the item ahead when the consumer reaches it', async () => {
    async function* failing(): AsyncGenerator<number> {
      yield 1;
      throw new Error('second page failed');
    }
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const n of prefetchOne(failing())) seen.push(n);
      })(),
    ).rejects.toThrow('second page failed');
    expect(seen).toEqual([1]);
  });
});
