/**
 * How many requests, and how many bytes, copying a set of objects takes: the engine's request pattern as
 * a small table of named numbers (REQUEST_RULES), so the engine and the plan cannot drift apart silently
 * (a test counts the requests of a real copy through a proxy and compares them with this model).
 *
 * Per object of `size` bytes, with `threshold` = --multipart-threshold and `partSize` = --part-size:
 * - size <= threshold (0-byte objects included): one PutObject. Source: 1 GetObject. Destination: 1 PutObject.
 * - size > threshold: a multipart upload of parts = ceil(size / p) parts, p = partSizeFor(size, partSize)
 *   (the requested part size, raised to whole MiB so no object needs more than 10,000 parts; at most 5 GiB).
 *   Source: 1 ranged GetObject per part. Destination: 1 CreateMultipartUpload, 1 UploadPart per part,
 *   1 CompleteMultipartUpload.
 * - HeadObject: 0 per object on either side by default (a destination that returns no usable ETag makes the
 *   engine ask one HeadObject: set destHeadsPerObject for it).
 * - A catalog pass: ceil(keys / 1000) ListObjectsV2 requests on the source.
 * Bytes: every byte is read from the source once and written to the destination once. Retries are not
 * counted (the plan is the cost when nothing fails).
 */
import { partSizeFor } from '../copy/part-size.js';

export interface RequestRules {
  /** Keys per ListObjectsV2 page in a catalog pass. */
  listPageSize: number;
  /** Source GetObject per object copied in one PutObject. */
  sourceGetsPerSinglePut: number;
  /** Source GetObject (ranged) per part of a multipart object. */
  sourceGetsPerPart: number;
  /**
   * Source GetObject per multipart object, on top of the per-part ones: 0 with ranged reads per part;
   * { sourceGetsPerPart: 0, sourceGetsPerMultipart: 1 } describes one streamed GetObject per object.
   */
  sourceGetsPerMultipart: number;
  /** Source HeadObject per object. */
  sourceHeadsPerObject: number;
  /** Destination PutObject per object at or below the multipart threshold. */
  destPutsPerSinglePut: number;
  /** Destination CreateMultipartUpload per multipart object. */
  destCreatesPerMultipart: number;
  /** Destination UploadPart per part. */
  destUploadsPerPart: number;
  /** Destination CompleteMultipartUpload per multipart object. */
  destCompletesPerMultipart: number;
  /** Destination HeadObject per object (to confirm a write whose answer had no usable ETag). */
  destHeadsPerObject: number;
}

export const REQUEST_RULES: Readonly<RequestRules> = Object.freeze({
  listPageSize: 1000,
  sourceGetsPerSinglePut: 1,
  sourceGetsPerPart: 1,
  sourceGetsPerMultipart: 0,
  sourceHeadsPerObject: 0,
  destPutsPerSinglePut: 1,
  destCreatesPerMultipart: 1,
  destUploadsPerPart: 1,
  destCompletesPerMultipart: 1,
  destHeadsPerObject: 0,
});

/** The engine settings that shape requests. */
export interface TransferShape {
  /** Objects larger than this go as multipart uploads (--multipart-threshold). */
  multipartThreshold: number;
  /** The requested part size (--part-size), raised per object by partSizeFor. */
  partSize: number;
  /** Overrides of REQUEST_RULES (e.g. destHeadsPerObject: 1 for a destination without usable ETags). */
  rules?: Partial<RequestRules>;
}

/**
 * A group of objects, as one row of a GROUP BY: either `count` objects of exactly `size` bytes, or
 * `count` objects totalling `bytes`, none larger than `maxSize`, which must not exceed the multipart
 * threshold (they all go as one PutObject each, so their sizes do not matter one by one). A store feeds
 * the model with one query, for example:
 *
 *   SELECT storage_class, CASE WHEN size <= :threshold THEN NULL ELSE size END AS size,
 *          COUNT(*) AS count, SUM(size) AS bytes
 *   FROM objects WHERE status = 'pending' AND <filter> GROUP BY 1, 2
 *
 * and sizeGroupsFromRows turns its rows into groups. Only objects above the threshold come back one
 * row per distinct size.
 */
export type SizeGroup =
  | { size: number; count: number; storageClass?: string | null }
  | { count: number; bytes: number; maxSize: number; storageClass?: string | null };

/** A row of the query above. */
export interface SizeGroupRow {
  storageClass?: string | null;
  /** null: the aggregated objects at or below the threshold. */
  size: number | null;
  count: number;
  bytes: number;
}

export function sizeGroupsFromRows(rows: Iterable<SizeGroupRow>, multipartThreshold: number): SizeGroup[] {
  const groups: SizeGroup[] = [];
  for (const row of rows) {
    groups.push(
      row.size === null
        ? { count: Number(row.count), bytes: Number(row.bytes), maxSize: multipartThreshold, storageClass: row.storageClass }
        : { size: Number(row.size), count: Number(row.count), storageClass: row.storageClass },
    );
  }
  return groups;
}

export interface SourceRequests {
  get: number;
  head: number;
  list: number;
}

export interface DestRequests {
  put: number;
  createMultipartUpload: number;
  uploadPart: number;
  completeMultipartUpload: number;
  head: number;
}

/** What copying a set of objects takes. */
export interface TransferEstimate {
  objects: number;
  bytes: number;
  singlePut: { objects: number; bytes: number };
  multipart: { objects: number; bytes: number; parts: number };
  source: SourceRequests;
  dest: DestRequests;
  bytesRead: number;
  bytesWritten: number;
}

export function rulesOf(shape: TransferShape): RequestRules {
  return { ...REQUEST_RULES, ...shape.rules };
}

/** Parts of a multipart upload for an object of `size` bytes; 0 when it goes as one PutObject. */
export function partsFor(size: number, shape: TransferShape): number {
  if (size <= shape.multipartThreshold) return 0;
  return Math.max(1, Math.ceil(size / partSizeFor(size, shape.partSize)));
}

export function emptyEstimate(): TransferEstimate {
  return {
    objects: 0,
    bytes: 0,
    singlePut: { objects: 0, bytes: 0 },
    multipart: { objects: 0, bytes: 0, parts: 0 },
    source: { get: 0, head: 0, list: 0 },
    dest: { put: 0, createMultipartUpload: 0, uploadPart: 0, completeMultipartUpload: 0, head: 0 },
    bytesRead: 0,
    bytesWritten: 0,
  };
}

function check(value: number, what: string): void {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${what} must be a finite number >= 0, got ${value}`);
}

/** Adds one group to an estimate (in place). */
export function addGroup(estimate: TransferEstimate, group: SizeGroup, shape: TransferShape): void {
  const rules = rulesOf(shape);
  check(group.count, 'count');
  if (group.count === 0) return;
  let bytes: number;
  let parts = 0;
  if ('maxSize' in group) {
    check(group.bytes, 'bytes');
    if (group.maxSize > shape.multipartThreshold) {
      throw new RangeError(
        `an aggregated size group must hold only objects at or below the multipart threshold (${shape.multipartThreshold}), got maxSize ${group.maxSize}`,
      );
    }
    bytes = group.bytes;
  } else {
    check(group.size, 'size');
    bytes = group.size * group.count;
    parts = partsFor(group.size, shape) * group.count;
  }
  const count = group.count;
  estimate.objects += count;
  estimate.bytes += bytes;
  estimate.bytesRead += bytes;
  estimate.bytesWritten += bytes;
  estimate.source.head += count * rules.sourceHeadsPerObject;
  estimate.dest.head += count * rules.destHeadsPerObject;
  if (parts === 0) {
    estimate.singlePut.objects += count;
    estimate.singlePut.bytes += bytes;
    estimate.source.get += count * rules.sourceGetsPerSinglePut;
    estimate.dest.put += count * rules.destPutsPerSinglePut;
  } else {
    estimate.multipart.objects += count;
    estimate.multipart.bytes += bytes;
    estimate.multipart.parts += parts;
    estimate.source.get += parts * rules.sourceGetsPerPart + count * rules.sourceGetsPerMultipart;
    estimate.dest.createMultipartUpload += count * rules.destCreatesPerMultipart;
    estimate.dest.uploadPart += parts * rules.destUploadsPerPart;
    estimate.dest.completeMultipartUpload += count * rules.destCompletesPerMultipart;
  }
}

/** Requests and bytes to copy these objects. */
export function estimateTransfer(groups: Iterable<SizeGroup>, shape: TransferShape): TransferEstimate {
  const estimate = emptyEstimate();
  for (const group of groups) addGroup(estimate, group, shape);
  return estimate;
}

/** ListObjectsV2 requests for a catalog pass over `keys` keys (at least one, even for an empty bucket). */
export function listRequests(keys: number, shape?: Pick<TransferShape, 'rules'>): number {
  const pageSize = { ...REQUEST_RULES, ...shape?.rules }.listPageSize;
  return Math.max(1, Math.ceil(keys / pageSize));
}
