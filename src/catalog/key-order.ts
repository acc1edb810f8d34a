/**
 * Keys in the order S3 lists them: by their UTF-8 bytes. JavaScript compares strings by UTF-16 code
 * units, which differs in one place: a character above U+FFFF (a surrogate pair, 0xD800-0xDFFF) sorts
 * below U+E000-U+FFFF in UTF-16 but above them in UTF-8. Fixing that one case gives byte order without
 * encoding every key.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) return shift(x) - shift(y);
    return x - y;
  }
  return a.length - b.length;
}

/** Surrogates above U+E000-U+FFFF, the rest of 0xD800-0xFFFF below them: code point (UTF-8) order. */
const shift = (unit: number): number => (unit >= 0xe000 ? unit - 0x800 : unit + 0x2000);
