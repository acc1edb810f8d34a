/**
 * ISO-8601 times in the one form S3 lists them and `toISOString` writes them, `YYYY-MM-DDTHH:MM:SS.sssZ`,
 * read without a regex or Date.parse: a catalog reads one per row, millions of them.
 */

/** The digits of `text` from `at` to `at + length` as a number, or -1 if any is not a digit. */
function digits(text: string, at: number, length: number): number {
  let value = 0;
  for (let i = at; i < at + length; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

/**
 * `YYYY-MM-DDTHH:MM:SS.sssZ` (what S3 lists and toISOString writes) read without Date.parse, for the
 * values that are plainly valid (year 1000-9999, day 1-28, hour 0-23...): the same number Date.parse gives.
 * Anything else (another form, day 29-31, hour 24) is left to Date.parse: undefined.
 */
export function canonicalIsoMs(iso: string): number | undefined {
  if (iso.length !== 24 || iso.charCodeAt(23) !== 90 /* Z */ || iso.charCodeAt(10) !== 84 /* T */) return undefined;
  if (iso.charCodeAt(4) !== 45 || iso.charCodeAt(7) !== 45 || iso.charCodeAt(13) !== 58 || iso.charCodeAt(16) !== 58 || iso.charCodeAt(19) !== 46) {
    return undefined;
  }
  const year = digits(iso, 0, 4);
  const month = digits(iso, 5, 2);
  const day = digits(iso, 8, 2);
  const hour = digits(iso, 11, 2);
  const minute = digits(iso, 14, 2);
  const second = digits(iso, 17, 2);
  const milli = digits(iso, 20, 3);
  if (year < 1000 || month < 1 || month > 12 || day < 1 || day > 28 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59 || milli < 0) {
    return undefined;
  }
  return Date.UTC(year, month - 1, day, hour, minute, second, milli);
}
