// Writes an S3 Inventory report (CSV) into a bucket the way AWS delivers one: gzip data files without a header,
// every field quoted, keys URL-encoded form-style; a manifest.json listing them with their MD5s; and the
// manifest.checksum beside it. Options damage the report the ways a real one can be damaged.
import { createHash, randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';

/** One row of a report: an object (or, in a versioned report, one version of it, or a delete marker). */
export interface InventoryRow {
  key: string;
  /** Ignored for a delete marker (its Size is empty). */
  size: number;
  /** With or without quotes: the report carries it without. */
  etag?: string;
  /** ISO-8601. */
  lastModified: string;
  storageClass?: string;
  versionId?: string;
  /** Default true. */
  isLatest?: boolean;
  isDeleteMarker?: boolean;
}

export const FLAT_FIELDS = ['Bucket', 'Key', 'Size', 'LastModifiedDate', 'ETag', 'StorageClass'];
export const VERSIONED_FIELDS = [
  'Bucket',
  'Key',
  'VersionId',
  'IsLatest',
  'IsDeleteMarker',
  'Size',
  'LastModifiedDate',
  'ETag',
  'StorageClass',
  'IsMultipartUploaded',
  'ReplicationStatus',
  'EncryptionStatus',
];

export interface WriteInventoryOptions {
  sourceBucket: string;
  /** Destination prefix of the report (default `inventory/`). */
  prefix?: string;
  /** The inventory configuration's name (default `all-objects`). */
  configId?: string;
  /** Number of data files; rows are dealt round-robin, so keys are out of order across files (default 1). */
  files?: number;
  /** The fileSchema's fields, in column order (default FLAT_FIELDS). */
  fields?: string[];
  /** How a space is written in keys: `+` as AWS does (default), or `%20` as a percent-encoder would. */
  space?: '+' | '%20';
  /** Default: now. */
  creationTimestamp?: Date;
  /** This data file's bytes are altered after its MD5 went into the manifest. */
  corruptFile?: number;
  /** This data file is listed in the manifest but never written. */
  omitFile?: number;
  /** Write manifest.checksum (default true); 'wrong' writes a checksum that does not match. */
  checksum?: boolean | 'wrong';
}

export interface WrittenInventory {
  bucket: string;
  manifestKey: string;
  manifestUrl: string;
  /** The data files in manifest order, with the rows each holds. */
  files: Array<{ key: string; md5: string; size: number; rows: InventoryRow[] }>;
}

/**
 * Encodes a key as S3 Inventory does in CSV: form encoding, as Java's URLEncoder.encode(key, "UTF-8"):
 * letters, digits and `.-*_` stay, a space becomes `+` (or `%20`), everything else (`/` and `+` included) is
 * %XX of its UTF-8 bytes.
 */
export function encodeInventoryKey(key: string, space: '+' | '%20' = '+'): string {
  return encodeURIComponent(key)
    .replace(/[!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, space);
}

const quoted = (field: string): string => `"${field.replace(/"/g, '""')}"`;

function field(name: string, row: InventoryRow, bucket: string, space: '+' | '%20'): string {
  const marker = row.isDeleteMarker === true;
  switch (name) {
    case 'Bucket':
      return bucket;
    case 'Key':
      return encodeInventoryKey(row.key, space);
    case 'VersionId':
      return row.versionId ?? '';
    case 'IsLatest':
      return String(row.isLatest ?? true);
    case 'IsDeleteMarker':
      return String(marker);
    case 'Size':
      return marker ? '' : String(row.size);
    case 'LastModifiedDate':
      return new Date(row.lastModified).toISOString();
    case 'ETag':
      return marker ? '' : (row.etag ?? '').replace(/"/g, '');
    case 'StorageClass':
      return marker ? '' : (row.storageClass ?? 'STANDARD');
    case 'IsMultipartUploaded':
      return String(/-\d+"?$/.test(row.etag ?? ''));
    case 'ReplicationStatus':
      return '';
    case 'EncryptionStatus':
      return 'SSE-S3';
    default:
      return '';
  }
}

/** One gzip CSV data file holding `rows` in `fields` order. */
export function inventoryCsvGz(rows: readonly InventoryRow[], fields: readonly string[], bucket: string, space: '+' | '%20' = '+'): Buffer {
  const text = rows.map((row) => `${fields.map((name) => quoted(field(name, row, bucket, space))).join(',')}\n`).join('');
  return gzipSync(text);
}

const md5Hex = (bytes: Buffer | string): string => createHash('md5').update(bytes).digest('hex');

/** `2024-01-31T01-00Z`, the dated folder of a delivery. */
function deliveryFolder(date: Date): string {
  return `${date.toISOString().slice(0, 16).replace(':', '-')}Z`;
}

/** Writes a report of `rows` into `bucket` and returns where its manifest is. */
export async function writeInventory(
  client: S3Client,
  bucket: string,
  rows: readonly InventoryRow[],
  options: WriteInventoryOptions,
): Promise<WrittenInventory> {
  const fields = options.fields ?? FLAT_FIELDS;
  const fileCount = options.files ?? 1;
  const space = options.space ?? '+';
  const created = options.creationTimestamp ?? new Date();
  const base = `${options.prefix ?? 'inventory/'}${options.sourceBucket}/${options.configId ?? 'all-objects'}/`;

  const dealt: InventoryRow[][] = Array.from({ length: fileCount }, () => []);
  rows.forEach((row, i) => dealt[i % fileCount]!.push(row));

  const files: WrittenInventory['files'] = [];
  for (const [index, fileRows] of dealt.entries()) {
    const key = `${base}data/${randomUUID()}.csv.gz`;
    const gz = inventoryCsvGz(fileRows, fields, options.sourceBucket, space);
    files.push({ key, md5: md5Hex(gz), size: gz.length, rows: fileRows });
    if (index === options.omitFile) continue;
    let body = gz;
    if (index === options.corruptFile) {
      body = Buffer.from(gz);
      const at = Math.floor(body.length / 2);
      body[at] = body[at]! ^ 0xff; // same size, other bytes
    }
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  }

  const manifest = {
    sourceBucket: options.sourceBucket,
    destinationBucket: `arn:aws:s3:::${bucket}`,
    version: '2016-11-30',
    creationTimestamp: String(created.getTime()),
    fileFormat: 'CSV',
    fileSchema: fields.join(', '),
    files: files.map((file) => ({ key: file.key, size: file.size, MD5checksum: file.md5 })),
  };
  const manifestText = JSON.stringify(manifest, null, 4);
  const folder = `${base}${deliveryFolder(created)}/`;
  const manifestKey = `${folder}manifest.json`;
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: manifestKey, Body: manifestText }));
  const checksum = options.checksum ?? true;
  if (checksum !== false) {
    const text = checksum === 'wrong' ? md5Hex(`${manifestText} `) : md5Hex(manifestText);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${folder}manifest.checksum`, Body: text }));
  }
  return { bucket, manifestKey, manifestUrl: `s3://${bucket}/${manifestKey}`, files };
}

/**
 * The rows of a versioned report of `current` objects: each object's latest version, an older version of it,
 * and `deleted` keys whose latest version is a delete marker (so they are not in a listing).
 */
export function versionedRows(current: readonly InventoryRow[], deleted: readonly string[]): InventoryRow[] {
  const old = '2001-02-03T04:05:06.000Z';
  const rows: InventoryRow[] = [];
  current.forEach((row, i) => {
    rows.push({ ...row, versionId: `v2-${i}`, isLatest: true, isDeleteMarker: false });
    rows.push({ ...row, size: row.size + 1, etag: 'ffffffffffffffffffffffffffffffff', lastModified: old, versionId: `v1-${i}`, isLatest: false });
  });
  deleted.forEach((key, i) => {
    rows.push({ key, size: 0, lastModified: old, versionId: `dm-${i}`, isLatest: true, isDeleteMarker: true });
    rows.push({ key, size: 5, etag: '00000000000000000000000000000000', lastModified: old, versionId: `d1-${i}`, isLatest: false });
  });
  return rows;
}
