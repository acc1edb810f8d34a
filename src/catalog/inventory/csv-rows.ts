/**
 * Rows of one S3 Inventory CSV data file: gzip -> CSV records -> ListedObject, streamed (one record at a time,
 * with backpressure from the consumer down to the file), so memory stays flat whatever the file's size.
 *
 * What a row holds (AWS S3 User Guide, "Amazon S3 Inventory list"): no header, every field quoted, the fields in
 * the manifest's fileSchema order. "When using the CSV file format, the key name is URL-encoded and must be
 * decoded before you can use it." ETag comes without the quotes ListObjectsV2 puts around it; LastModifiedDate
 * is ISO-8601; versioned reports add VersionId, IsLatest and IsDeleteMarker, and a delete marker has no Size.
 */
import { pipeline, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { CsvError, parse } from 'csv-parse';
import { canonicalIsoMs } from '../../iso-time.js';
import { FatalError } from '../../errors.js';
import type { ListedObject } from '../../state/types.js';
import type { InventorySchema } from './manifest.js';

/**
 * Decodes a key as S3 Inventory writes it in CSV. AWS URL-encodes the key the way HTML forms do
 * (application/x-www-form-urlencoded, like S3 event notifications): a space becomes `+`, a literal `+` becomes
 * `%2B`, other reserved and non-ASCII characters become %XX of their UTF-8 bytes. So `+` decodes to a space, and
 * a `%20` (which a percent-encoder would write) decodes to a space too; `%2B` is the only way to say `+`.
 * Throws on a malformed escape or bytes that are not UTF-8: a key we cannot decode exactly is not a key.
 */
export function decodeInventoryKey(encoded: string): string {
  return decodeURIComponent(encoded.replace(/\+/g, ' '));
}

/** ListObjectsV2 (and so the catalog) keeps an ETag in quotes; inventory reports drop them. */
export function quoteEtag(etag: string): string | undefined {
  if (etag === '') return undefined;
  return etag.startsWith('"') ? etag : `"${etag}"`;
}

// ISO-8601 with a date, a time and a zone: anything else Date.parse would read in the local time zone or guess.
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;

export interface CsvRowsStats {
  /** CSV records read so far (every row of the file, kept or not). */
  records: number;
  /** Rows turned into objects. */
  kept: number;
  /** Rows of a versioned report that are not the latest version of their key. */
  noncurrent: number;
  /** Latest versions that are delete markers: the key is deleted. */
  deleteMarkers: number;
}

export function emptyStats(): CsvRowsStats {
  return { records: 0, kept: 0, noncurrent: 0, deleteMarkers: 0 };
}

const isTrue = (value: string | undefined): boolean => value !== undefined && value.trim().toLowerCase() === 'true';

/**
 * One CSV record -> the object it describes, or 'noncurrent' / 'delete-marker' for rows a catalog skips.
 * `where` names the file and row in messages. Pure.
 */
export function recordToObject(
  record: readonly string[],
  schema: InventorySchema,
  where: string,
): ListedObject | 'noncurrent' | 'delete-marker' {
  if (record.length !== schema.fields.length) {
    throw new FatalError(
      `${where} has ${record.length} fields, but the manifest's fileSchema lists ${schema.fields.length} ` +
        `(${schema.fields.join(', ')}). The data file does not belong to this manifest or is damaged; use a ` +
        `complete inventory report.`,
    );
  }
  // A versioned report lists every version; the catalog wants what a listing shows: each key's latest
  // version, unless that is a delete marker.
  if (schema.isLatest !== undefined && !isTrue(record[schema.isLatest])) return 'noncurrent';
  if (schema.isDeleteMarker !== undefined && isTrue(record[schema.isDeleteMarker])) return 'delete-marker';

  const rawKey = record[schema.key]!;
  let key: string;
  try {
    key = decodeInventoryKey(rawKey);
  } catch {
    throw new FatalError(
      `${where} has a Key that is not valid URL encoding: ${JSON.stringify(rawKey)}. The report is damaged; ` +
        `use another inventory report or catalog by listing the bucket (--from).`,
    );
  }
  if (key === '') throw new FatalError(`${where} has an empty Key. The report is damaged; use another inventory report.`);

  const rawSize = record[schema.size]!.trim();
  const size = Number(rawSize);
  if (!/^\d+$/.test(rawSize) || !Number.isSafeInteger(size)) {
    throw new FatalError(
      `${where} (key ${JSON.stringify(key)}) has no valid Size (${JSON.stringify(rawSize)}). The report is ` +
        `damaged; use another inventory report.`,
    );
  }

  const rawDate = record[schema.lastModified]!.trim();
  // The form AWS writes is stored as it is; any other ISO-8601 form is parsed and written in that form.
  const canonical = canonicalIsoMs(rawDate) !== undefined;
  const millis = canonical ? 0 : ISO_8601.test(rawDate) ? Date.parse(rawDate) : Number.NaN;
  if (Number.isNaN(millis)) {
    throw new FatalError(
      `${where} (key ${JSON.stringify(key)}) has no valid LastModifiedDate (${JSON.stringify(rawDate)}, ` +
        `expected ISO-8601). The report is damaged; use another inventory report.`,
    );
  }

  const storageClass = schema.storageClass === undefined ? undefined : record[schema.storageClass]!.trim() || undefined;
  return {
    key,
    size,
    etag: quoteEtag(record[schema.etag]!.trim()),
    lastModified: canonical ? rawDate : new Date(millis).toISOString(),
    storageClass,
  };
}

// A row is a few short fields and a key of at most 1,024 UTF-8 bytes (3 KiB URL-encoded): a "record" larger
// than this is a damaged file (say, an unclosed quote), which must not make the parser buffer the whole file.
const MAX_RECORD_BYTES = 1024 * 1024;

function describeStreamError(error: unknown, file: string): unknown {
  if (error instanceof FatalError) return error;
  if (error instanceof CsvError) {
    return new FatalError(
      `Inventory data file ${file} is not valid CSV (${error.message}). Use a complete inventory report, or ` +
        `catalog by listing the bucket (--from).`,
    );
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.startsWith('Z_')) {
    return new FatalError(
      `Inventory data file ${file} is not a valid gzip file (${(error as Error).message}). Use a complete ` +
        `inventory report, or catalog by listing the bucket (--from).`,
    );
  }
  return error;
}

export interface CsvRowsOptions {
  /** Names the file in messages, e.g. its s3:// URL. */
  file: string;
  /** Filled in as rows are read (records read, kept, skipped). */
  stats?: CsvRowsStats;
}

/**
 * Streams the objects of one gzip-compressed inventory CSV file. Skips noncurrent versions and delete markers.
 * Throws FatalError naming the file (and row) for a damaged file; nothing is buffered beyond a few stream chunks.
 * Stopping the iteration early destroys `input`.
 */
export async function* inventoryCsvRows(
  input: Readable,
  schema: InventorySchema,
  options: CsvRowsOptions,
): AsyncGenerator<ListedObject> {
  const stats = options.stats ?? emptyStats();
  const parser = parse({
    relax_column_count: true, // counted against the schema below, for a message that says more
    skip_empty_lines: true,
    max_record_size: MAX_RECORD_BYTES,
  });
  // pipeline() destroys every stage on an error or an early stop; the error reaches us through the parser.
  const records = pipeline(input, createGunzip(), parser, () => {}) as AsyncIterable<string[]>;
  try {
    for await (const record of records) {
      stats.records += 1;
      const object = recordToObject(record, schema, `Row ${stats.records} of inventory data file ${options.file}`);
      if (object === 'noncurrent') stats.noncurrent += 1;
      else if (object === 'delete-marker') stats.deleteMarkers += 1;
      else {
        stats.kept += 1;
        yield object;
      }
    }
  } catch (error) {
    throw describeStreamError(error, options.file);
  } finally {
    parser.destroy();
  }
}
