import { describe, expect, it } from 'vitest';
import { ReadSlabs } from '../../src/s3/read-slabs.js';

/** Fills the shared read buffer as a socket read would, and takes the bytes out. */
function read(slabs: ReadSlabs, fill: number, length: number): Buffer {
  slabs.readBuffer.fill(fill, 0, length);
  return slabs.take(length);
}

describe('ReadSlabs', () => {
  it('copies each read out of the shared buffer, so the next read does not change it', () => {
    const slabs = new ReadSlabs(16, 4);
    const first = read(slabs, 1, 6);
    const second = read(slabs, 2, 6);
    expect([...first]).toEqual([1, 1, 1, 1, 1, 1]);
    expect([...second]).toEqual([2, 2, 2, 2, 2, 2]);
  });

  it('reuses a slab only once every view handed out of it came back', () => {
    const slabs = new ReadSlabs(16, 4);
    const a = read(slabs, 1, 8);
    const b = read(slabs, 2, 8);
    read(slabs, 3, 8); // a new slab: the first is full (sealed)
    slabs.recycle(a);
    expect(slabs.idle).toBe(0);
    // b is still held: writing more must not land in its memory
    read(slabs, 4, 8);
    read(slabs, 5, 8);
    expect([...b]).toEqual(Array(8).fill(2));
    slabs.recycle(b);
    expect(slabs.idle).toBe(1);
  });

  it('never reuses a slab with a view that did not come back whole (kept, or cut in two)', () => {
    const slabs = new ReadSlabs(16, 4);
    const kept = read(slabs, 1, 8);
    const cut = read(slabs, 2, 8);
    slabs.recycle(cut.subarray(0, 4));
    slabs.recycle(cut.subarray(4));
    for (let i = 0; i < 10; i += 1) slabs.recycle(read(slabs, 9, 16));
    expect([...kept]).toEqual(Array(8).fill(1));
    expect([...cut]).toEqual(Array(8).fill(2));
    expect(slabs.owns(kept)).toBe(true);
  });

  it('takes a view back once: a second recycle of it does nothing', () => {
    const slabs = new ReadSlabs(16, 4);
    const a = read(slabs, 1, 16);
    const b = read(slabs, 2, 16); // seals a's slab
    slabs.recycle(a);
    slabs.recycle(a);
    expect(slabs.idle).toBe(1);
    expect(slabs.owns(a)).toBe(false);
    expect(slabs.owns(b)).toBe(true);
  });

  it('keeps at most `keep` idle slabs', () => {
    const slabs = new ReadSlabs(16, 2);
    const views = Array.from({ length: 5 }, (_, i) => read(slabs, i, 16));
    read(slabs, 9, 16); // seals the last of them
    for (const view of views) slabs.recycle(view);
    expect(slabs.idle).toBe(2);
  });
});
