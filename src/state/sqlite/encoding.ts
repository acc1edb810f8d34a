/**
 * How the SQLite store keeps an object row's values compactly (schema migration 3), in JavaScript: the
 * twins of the SQL expressions in ./schema.ts, which the views use. The store converts at its boundary,
 * so everything above it sees ISO-8601 text and ETags as listed, whatever the file holds.
 */

/** ISO-8601 text as integer milliseconds since 1970; text that is no date is kept as it is. */
export function toMs(iso: string): number | string {
  const canonical = canonicalMs(iso);
  if (canonical !== undefined) return canonical;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? iso : ms;
}

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
function canonicalMs(iso: string): number | undefined {
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

/** A stored time as ISO-8601 text (`2024-01-01T00:00:00.000Z`); NULL stays null, text as it is. */
export function fromMs(value: number | string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'number' ? new Date(value).toISOString() : value;
}

/** Now, as stored. */
export const nowMs = (): number => Date.now();

const USUAL_ETAG = /^"([0-9a-f]{32})(-[0-9]+)?"$/;

/** A lowercase hex digit's value, -1 for any other character code. */
function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48; // 0-9
  if (code >= 97 && code <= 102) return code - 87; // a-f
  return -1;
}

/** `"<32 lowercase hex>"` as its 16 bytes, without a regular expression or a substring (most ETags); else undefined. */
function plainMd5Etag(etag: string): Buffer | undefined {
  if (etag.length !== 34 || etag.charCodeAt(0) !== 34 || etag.charCodeAt(33) !== 34) return undefined;
  const bytes = Buffer.allocUnsafe(16);
  for (let i = 0; i < 16; i++) {
    const high = hexValue(etag.charCodeAt(1 + 2 * i));
    const low = hexValue(etag.charCodeAt(2 + 2 * i));
    if (high < 0 || low < 0) return undefined;
    bytes[i] = (high << 4) | low;
  }
  return bytes;
}

/** An ETag as stored: `"<32 hex>"` or `"<32 hex>-<parts>"` as a blob (16 bytes, then `-<parts>`), others as they are. */
export function encodeEtag(etag: string | null | undefined): Buffer | string | null {
  if (etag === null || etag === undefined) return null;
  const plain = plainMd5Etag(etag);
  if (plain !== undefined) return plain;
  const usual = USUAL_ETAG.exec(etag);
  if (!usual) return etag;
  const digest = Buffer.from(usual[1]!, 'hex');
  return usual[2] === undefined ? digest : Buffer.concat([digest, Buffer.from(usual[2], 'latin1')]);
}

/** A stored ETag as its text. */
export function decodeEtag(value: Buffer | string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  return `"${value.subarray(0, 16).toString('hex')}${value.subarray(16).toString('latin1')}"`;
}

/** A storage class as stored: NULL for STANDARD, an empty blob for none. */
export function encodeStorageClass(storageClass: string | null | undefined): Buffer | string | null {
  if (storageClass === null || storageClass === undefined) return Buffer.alloc(0);
  return storageClass === 'STANDARD' ? null : storageClass;
}
