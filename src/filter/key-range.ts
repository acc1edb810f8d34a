/**
 * Key ranges in byte order, so a store can serve a filter from its index on `key`.
 *
 * Byte order means the order of the keys' UTF-8 bytes, which is also Unicode code point order. That is
 * SQLite's default BINARY collation and PostgreSQL's `COLLATE "C"` on a UTF8 database, but NOT JavaScript's
 * `<` on strings (UTF-16 code units: U+E000..U+FFFF sort after astral characters there): compare with
 * `compareKeys`, never with `<`.
 */

/** `low <= key < high` in byte order; no `high` means no upper bound. */
export interface KeyRange {
  low: string;
  high?: string;
}

const MAX_CODE_POINT = 0x10ffff;

/**
 * Compares two keys in UTF-8 byte order (= code point order) without encoding them. UTF-16 code units
 * sort like code points except that surrogates (U+D800..U+DFFF, which carry U+10000 and up) must sort
 * after U+E000..U+FFFF: both blocks are shifted so they do.
 */
export function compareKeys(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x < y ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/**
 * The smallest string greater than every string that starts with `prefix`, or undefined when there is
 * none (an empty prefix, or one made only of U+10FFFF). The last code point is incremented, carrying
 * over U+10FFFF (the largest code point, F4 8F BF BF in UTF-8; the byte 0xFF never occurs in UTF-8) and
 * skipping the surrogate block, so the bound is always a valid string that any database accepts as a
 * text parameter; incrementing the last raw byte instead could produce invalid UTF-8 (DF BF -> DF C0).
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const points = Array.from(prefix, (char) => char.codePointAt(0)!);
  while (points.length > 0 && points[points.length - 1] === MAX_CODE_POINT) points.pop();
  if (points.length === 0) return undefined;
  const last = points.pop()!;
  points.push(last === 0xd7ff ? 0xe000 : last + 1);
  return String.fromCodePoint(...points);
}

/** Every key that starts with `prefix`, and nothing else. */
export function prefixRange(prefix: string): KeyRange {
  const high = prefixUpperBound(prefix);
  return high === undefined ? { low: prefix } : { low: prefix, high };
}

export function inKeyRange(key: string, range: KeyRange): boolean {
  return compareKeys(key, range.low) >= 0 && (range.high === undefined || compareKeys(key, range.high) < 0);
}

/** Sorted by `low`, overlapping or touching ranges merged: the smallest list that covers the same keys. */
export function mergeKeyRanges(ranges: Iterable<KeyRange>): KeyRange[] {
  const sorted = [...ranges].sort((a, b) => compareKeys(a.low, b.low));
  const merged: KeyRange[] = [];
  for (const range of sorted) {
    const last = merged[merged.length - 1];
    if (last && (last.high === undefined || compareKeys(range.low, last.high) <= 0)) {
      if (last.high !== undefined && (range.high === undefined || compareKeys(range.high, last.high) > 0)) {
        if (range.high === undefined) delete last.high;
        else last.high = range.high;
      }
      continue;
    }
    merged.push(range.high === undefined ? { low: range.low } : { low: range.low, high: range.high });
  }
  return merged;
}
