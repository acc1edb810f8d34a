/**
 * How the SQLite store keeps an object row's values compactly (schema migration 3), in JavaScript: the
 * twins of the SQL expressions in ./schema.ts, which the views use. The store converts at its boundary,
 * so everything above it sees ISO-8601 text and ETags as listed, whatever the file holds.
 */

/** ISO-8601 text as integer milliseconds since 1970; text that is no date is kept as it is. */
export function toMs(iso: string): number | string {
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

/** An ETag as stored: `"<32 hex>"` or `"<32 hex>-<parts>"` as a blob (16 bytes, then `-<parts>`), others as they are. */
export function encodeEtag(etag: string | null | undefined): Buffer | string | null {
  if (etag === null || etag === undefined) return null;
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
