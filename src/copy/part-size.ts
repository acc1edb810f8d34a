export const MIN_PART_SIZE = 5 * 1024 * 1024;
export const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;
export const MAX_PARTS = 10_000;
const MIB = 1024 * 1024;

/** The part size for one object: the requested one, raised (to whole MiB) so no object needs over 10,000 parts. */
export function partSizeFor(objectSize: number, requested: number): number {
  const needed = Math.ceil(objectSize / MAX_PARTS);
  if (needed <= requested) return requested;
  return Math.min(Math.ceil(needed / MIB) * MIB, MAX_PART_SIZE);
}
