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

export interface PartRange {
  /** 1-based, as S3 numbers parts. */
  number: number;
  /** First byte of the part in the object. */
  start: number;
  /** Bytes in the part. */
  length: number;
}

/** The parts of an object of `objectSize` bytes cut at `partSize` (the last one shorter; one empty part for 0 bytes). */
export function partLayout(objectSize: number, partSize: number): PartRange[] {
  const count = Math.max(1, Math.ceil(objectSize / partSize));
  return Array.from({ length: count }, (_, index) => {
    const start = index * partSize;
    return { number: index + 1, start, length: Math.min(partSize, objectSize - start) };
  });
}
