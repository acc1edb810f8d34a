/**
 * The manifest.json of an S3 Inventory report: parsed and checked before any data file is read, so a report
 * we cannot use is refused up front with a message that says what to do.
 *
 * Format (AWS S3 User Guide, "Amazon S3 Inventory" > "Inventory manifest"):
 *   { "sourceBucket": "example-source-bucket",
 *     "destinationBucket": "arn:aws:s3:::example-inventory-destination-bucket",
 *     "version": "2016-11-30",
 *     "creationTimestamp": "1514944800000",            // ms since the epoch, as a string
 *     "fileFormat": "CSV",                              // or "ORC" | "Parquet"
 *     "fileSchema": "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, ...",
 *     "files": [ { "key": ".../939c6d46-....csv.gz", "size": 2147483647, "MD5checksum": "f1116606..." } ] }
 * The CSV data files are gzip-compressed, have no header row, and hold the fields in fileSchema order.
 */
import { FatalError } from '../../errors.js';

/** Fields the catalog cannot do without: the key, and the evidence and sort keys of every row. */
export const REQUIRED_FIELDS = ['Key', 'Size', 'LastModifiedDate', 'ETag'] as const;

export interface InventoryDataFile {
  /** Key of the .csv.gz file in the bucket that holds the report. */
  key: string;
  /** Size in bytes of the compressed file, when the manifest gives it. */
  size?: number;
  /** Lowercase hex MD5 of the compressed file. */
  md5: string;
}

/** Column positions (0-based) of the fields a reader uses; optional ones are absent from some reports. */
export interface InventorySchema {
  /** The field names, in column order, as the manifest lists them. */
  fields: string[];
  key: number;
  size: number;
  lastModified: number;
  etag: number;
  storageClass?: number;
  versionId?: number;
  isLatest?: number;
  isDeleteMarker?: number;
}

export interface InventoryManifest {
  sourceBucket: string;
  /** As the manifest writes it: usually an ARN, `arn:aws:s3:::bucket`. */
  destinationBucket?: string;
  version?: string;
  /** When the report generation began scanning the bucket, ISO-8601 UTC. */
  creationTimestamp: string;
  fileFormat: 'CSV';
  schema: InventorySchema;
  files: InventoryDataFile[];
}

const HOW =
  'Give --from-inventory the s3:// URL of the manifest.json of an S3 Inventory report, e.g. ' +
  's3://inventory-bucket/PREFIX/SOURCE-BUCKET/CONFIG-ID/2024-01-31T01-00Z/manifest.json';

function refuse(where: string, problem: string, what: string = HOW): FatalError {
  return new FatalError(`The inventory manifest ${where} ${problem}. ${what}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Splits a CSV fileSchema ("Bucket, Key, Size, ...") into column positions; refuses one lacking a required field. */
export function parseFileSchema(fileSchema: string, where: string): InventorySchema {
  const fields = fileSchema.split(',').map((field) => field.trim());
  if (fields.some((field) => field === '')) {
    throw refuse(where, `has an empty field name in its fileSchema "${fileSchema}"`);
  }
  const seen = new Set<string>();
  for (const field of fields) {
    if (seen.has(field)) throw refuse(where, `lists the field ${field} twice in its fileSchema "${fileSchema}"`);
    seen.add(field);
  }
  const missing = REQUIRED_FIELDS.filter((field) => !seen.has(field));
  if (missing.length > 0) {
    throw refuse(
      where,
      `has no ${missing.join(', ')} field${missing.length > 1 ? 's' : ''} (its fileSchema is "${fileSchema}")`,
      `s3migrate needs Key, Size, LastModifiedDate and ETag: they identify each object, prove its copy and order the ` +
        `work. Add ${missing.join(', ')} to the inventory configuration's optional fields and wait for the next ` +
        `report, or catalog by listing the bucket (--from) instead.`,
    );
  }
  const at = (field: string): number | undefined => {
    const index = fields.indexOf(field);
    return index === -1 ? undefined : index;
  };
  return {
    fields,
    key: at('Key')!,
    size: at('Size')!,
    lastModified: at('LastModifiedDate')!,
    etag: at('ETag')!,
    storageClass: at('StorageClass'),
    versionId: at('VersionId'),
    isLatest: at('IsLatest'),
    isDeleteMarker: at('IsDeleteMarker'),
  };
}

function parseCreationTimestamp(value: unknown, where: string): string {
  // AWS writes milliseconds since the epoch as a string; accept a plain number too.
  const text = typeof value === 'number' ? String(value) : value;
  if (typeof text !== 'string' || !/^\d{1,15}$/.test(text.trim())) {
    throw refuse(where, `has no valid creationTimestamp (milliseconds since 1970 as a string, got ${JSON.stringify(value)})`);
  }
  return new Date(Number(text.trim())).toISOString();
}

function parseFiles(value: unknown, where: string): InventoryDataFile[] {
  if (value === undefined) {
    throw refuse(where, 'has no "files" list, so it names no data file to read');
  }
  if (!Array.isArray(value)) throw refuse(where, `has a "files" entry that is not a list`);
  return value.map((entry, index): InventoryDataFile => {
    const which = `file ${index + 1} of its "files" list`;
    if (!isRecord(entry)) throw refuse(where, `has ${which} that is not an object`);
    const { key, size, MD5checksum: md5 } = entry;
    if (typeof key !== 'string' || key === '') throw refuse(where, `has ${which} without a "key"`);
    if (typeof md5 !== 'string' || !/^[0-9a-fA-F]{32}$/.test(md5)) {
      throw refuse(where, `has ${which} (${key}) without a valid "MD5checksum" (32 hex digits)`);
    }
    if (size !== undefined && !(typeof size === 'number' && Number.isSafeInteger(size) && size >= 0)) {
      throw refuse(where, `has ${which} (${key}) with an invalid "size" ${JSON.stringify(size)}`);
    }
    return { key, size, md5: md5.toLowerCase() };
  });
}

/**
 * Parses and validates the text of a manifest.json. `where` names it in messages (its s3:// URL).
 * Throws FatalError for anything a reader cannot use: not JSON, no files list, ORC or Parquet data files,
 * a fileSchema without Key, Size, LastModifiedDate or ETag.
 */
export function parseManifest(text: string, where: string): InventoryManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw refuse(where, `is not JSON (${(error as Error).message})`);
  }
  if (!isRecord(json)) throw refuse(where, 'is JSON but not an object');

  const { fileFormat } = json;
  if (typeof fileFormat !== 'string' || fileFormat === '') {
    throw refuse(where, 'has no "fileFormat"');
  }
  if (/^(orc|parquet)$/i.test(fileFormat)) {
    throw refuse(
      where,
      `describes a ${fileFormat} inventory, which is not supported yet`,
      'Configure a CSV inventory for the bucket (Output format: CSV) and use its manifest.json once the first ' +
        'report is delivered, or catalog by listing the bucket (--from) instead.',
    );
  }
  if (fileFormat.toUpperCase() !== 'CSV') {
    throw refuse(where, `has an unknown fileFormat "${fileFormat}" (S3 Inventory writes CSV, ORC or Parquet)`);
  }

  const { sourceBucket } = json;
  if (typeof sourceBucket !== 'string' || sourceBucket === '') throw refuse(where, 'has no "sourceBucket"');
  const destinationBucket = typeof json.destinationBucket === 'string' ? json.destinationBucket : undefined;
  const version = typeof json.version === 'string' ? json.version : undefined;
  const creationTimestamp = parseCreationTimestamp(json.creationTimestamp, where);

  if (typeof json.fileSchema !== 'string' || json.fileSchema.trim() === '') {
    throw refuse(where, 'has no "fileSchema", so the columns of its data files are unknown');
  }
  const schema = parseFileSchema(json.fileSchema, where);
  const files = parseFiles(json.files, where);

  return { sourceBucket, destinationBucket, version, creationTimestamp, fileFormat: 'CSV', schema, files };
}
