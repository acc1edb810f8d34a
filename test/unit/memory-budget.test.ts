import { describe, expect, it } from 'vitest';
import { MemoryBudget } from '../../src/copy/memory-budget.js';

describe('MemoryBudget', () => {
  it('grants shares while they fit and queues the rest in arrival order', async () => {
    const budget = new MemoryBudget(100);
    const order: string[] = [];
    const a = await budget.acquire(60);
    const waitB = budget.acquire(50).then((n) => (order.push('b'), n));
    const waitC = budget.acquire(10).then((n) => (order.push('c'), n));
    await Promise.resolve();
    expect(order).toEqual([]); // c fits, but waits behind b: no starvation of large objects
    budget.release(a);
    const [b, c] = await Promise.all([waitB, waitC]);
    expect(order).toEqual(['b', 'c']);
    expect([b, c]).toEqual([50, 10]);
  });

  it('clamps a share larger than the budget so the object can still run alone', async () => {
    const budget = new MemoryBudget(100);
    expect(await budget.acquire(500)).toBe(100);
  });

  it('lets every waiter through on releaseAll', async () => {
    const budget = new MemoryBudget(10);
    await budget.acquire(10);
    const waiting = budget.acquire(5);
    budget.releaseAll();
    await expect(waiting).resolves.toBe(5);
  });
});
