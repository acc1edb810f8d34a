// How many worker processes `copy` starts without --workers (src/cli/copy-command.ts defaultWorkers).
import { describe, expect, it } from 'vitest';
import { defaultWorkers } from '../../src/cli/copy-command.js';

const GiB = 1024 ** 3;

describe('defaultWorkers', () => {
  it('one per core when there is work for all of them', () => {
    expect(defaultWorkers(8, 1_000_000, 50 * GiB, 32)).toBe(8);
  });
  it('one per 10,000 objects or 4 GiB left, whichever asks for more', () => {
    expect(defaultWorkers(8, 25_000, 10 * 1024 ** 2, 32)).toBe(3);
    expect(defaultWorkers(8, 40, 17 * GiB, 32)).toBe(5);
    expect(defaultWorkers(8, 10, 1024, 32)).toBe(1);
  });
  it('one worker for a small run (the bench workloads W1, 5,000 x 10 KiB, and W2, 32 x 64 MiB)', () => {
    expect(defaultWorkers(2, 5_000, 5_000 * 10 * 1024, 32)).toBe(1);
    expect(defaultWorkers(2, 32, 2 * GiB, 32)).toBe(1);
  });
  it('never more than the objects left: one huge object gets one worker', () => {
    expect(defaultWorkers(8, 1, 4 * GiB, 32)).toBe(1);
    expect(defaultWorkers(8, 3, 500 * GiB, 32)).toBe(3);
  });
  it('at least one, even with nothing left', () => {
    expect(defaultWorkers(8, 0, 0, 32)).toBe(1);
  });
});
