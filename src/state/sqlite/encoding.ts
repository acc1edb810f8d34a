/**
 * How the SQLite store keeps an object row's values compactly (schema migration 3), in JavaScript: the
 * twins of the SQL expressions in ./schema.ts, which the views use. The store converts at its boundary,
 * so everything above it sees ISO-8601 text and ETags as listed, whatever the file holds.
 */
import { canonicalIsoMs } from '../../iso-time.js';

/** ISO-8601 text as integer milliseconds since 1970; text that is no date is kept as it is. */
export function toMs(iso: string): number | string {
  const canonical = canonicalIsoMs(iso);
  if (canonical !== undefined) return canonical;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? iso : ms;
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
