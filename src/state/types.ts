/** Plain data shapes shared by the state store and the modules that use it. */

/**
 * pending: to copy; in_flight: a transfer started (a crash leaves it so: the next run checks it);
 * done: at the destination, on positive evidence; failed: gave up after retries (retried by the next run);
 * changed: the source object differs from the catalog (catalog again); gone: the source key vanished;
 * unproven: marked done by the first release on size alone (verify --deep proves it, copy copies it again);
 * archived: in an archive storage class (GLACIER, DEEP_ARCHIVE): copy skips it (it must be restored first);
 * deleted: gone from the source, and its copy deleted from the destination by `copy --delete-gone`.
 */
export type ObjectStatus = 'pending' | 'in_flight' | 'done' | 'failed' | 'changed' | 'gone' | 'unproven' | 'archived' | 'deleted';

/** Storage classes whose objects cannot be read without a restore: copy marks their rows `archived`. */
export const ARCHIVE_CLASSES: readonly string[] = ['GLACIER', 'DEEP_ARCHIVE'];

/** What one catalog pass found, compared with the state before it (recorded per pass). */
export interface CatalogPassDelta {
  pass: number;
  startedAt?: string;
  finishedAt?: string;
  /** The filter the pass was limited to (JSON of the flags), or undefined for the whole prefix. */
  scope?: string;
  new: { objects: number; bytes: number };
  modified: { objects: number; bytes: number };
  gone: { objects: number; bytes: number };
}

/** A row whose source vanished and whose copy s3migrate wrote: what `--delete-gone` may delete. */
export interface DeletionCandidate {
  id: number;
  key: string;
  size: number;
  destKey: string;
  /** The ETag the destination gave our write. */
  destEtag: string;
}

/** A group of rows for the plan: size NULL for the objects at or below the multipart threshold. */
export interface PlanGroupRow {
  storageClass: string | null;
  size: number | null;
  count: number;
  bytes: number;
}

/** Throughput earlier copy runs of this state achieved (their totals). */
export interface MeasuredRate {
  runs: number;
  objects: number;
  bytes: number;
  seconds: number;
}
export type SortOrder = 'key' | 'newest' | 'oldest' | 'largest' | 'smallest';
export const SORT_ORDERS: readonly SortOrder[] = ['key', 'newest', 'oldest', 'largest', 'smallest'];
/**
 * What a done row's bytes were checked against (see src/copy/evidence.ts):
 * md5: the destination's ETag for our write is the MD5 of the bytes, which are the source's;
 * multipart-etag: the destination's multipart ETag equals the one computed from the part MD5s we sent;
 * part-etags: each part's ETag equals the MD5 of the bytes we sent for it (servers whose completed
 *   multipart object gets a whole-object ETag);
 * content-md5: the destination checked our Content-MD5 (a server proven to refuse bad digests);
 * deep-md5: `verify --deep` read both sides and their MD5s agree.
 * size-only and unverified exist only in state files of the first release (rows now `unproven`).
 */
export type Evidence = 'md5' | 'multipart-etag' | 'part-etags' | 'content-md5' | 'deep-md5' | 'size-only' | 'unverified';
export const PROVEN_EVIDENCE: readonly Evidence[] = ['md5', 'multipart-etag', 'part-etags', 'content-md5', 'deep-md5'];

/** A bucket and prefix at one endpoint: where the catalog was listed from, or where copies go. */
export interface EndpointLocation {
  endpoint: string;
  bucket: string;
  prefix: string;
}

/** One object as a listing reports it. */
export interface ListedObject {
  key: string;
  size: number;
  etag?: string;
  /** ISO-8601 UTC. */
  lastModified: string;
  storageClass?: string;
}

/** A catalog row as the copy engine needs it. */
export interface ObjectRow {
  id: number;
  key: string;
  size: number;
  etag: string | null;
  lastModified: string;
  attempts: number;
}

/**
 * Where a catalog pass takes its keys from: a listing of the bucket (ListObjectsV2), or an S3 Inventory
 * report (identified by its manifest's URL and MD5, taken at `createdAt`).
 */
export type CatalogSource =
  | { kind: 'listing' }
  | { kind: 'inventory'; manifestUrl: string; manifestMd5: string; createdAt: string; fileCount: number };

/**
 * One part of a listing pass: the keys k with startAfter < k <= endKey in byte order (endKey null: to the
 * last key), listed on its own (ListObjectsV2 with StartAfter, stopping at the first key above endKey),
 * with its own resume point. The parts of a pass cover the key space without gap or overlap.
 */
export interface CatalogPart {
  part: number;
  startAfter: string;
  endKey: string | null;
  /** The last key stored by this part: it resumes after it (startAfter before its first page). */
  resumeAfter: string;
  done: boolean;
  keysListed: number;
}

export interface CatalogProgress {
  pass: number;
  resumed: boolean;
  source: CatalogSource;
  /** A listing pass: its parts in key order ([] until the pass is planned: see planCatalogParts). */
  parts: CatalogPart[];
  /** An inventory pass: the first data file (0-based) not yet stored whole. */
  nextFile: number;
  /** An interrupted pass of another source that this call left behind to start a new pass. */
  abandoned?: CatalogSource;
}

/** Where a stored page leaves its pass, committed with the page. */
export type PageResume =
  /** A listing part: resume after `resumeAfter`; `done` when the part reached its end. */
  | { part: number; resumeAfter: string; done: boolean }
  /** An inventory data file: `done` when this page is the file's last (the pass resumes at file + 1). */
  | { file: number; done: boolean };

export interface CopyResult {
  destKey: string;
  /** The ETag the destination gave our write (the reference verify compares with). */
  destEtag?: string;
  evidence: Evidence;
  /** A multipart upload completed: its record (upload and parts) goes with the done mark. */
  completedUpload?: boolean;
  /** How the bytes went: through us (stream, the default) or copied by the destination itself. */
  method?: CopyMethod;
}

export type CopyMethod = 'stream' | 'server-side';

/** A multipart upload a row's copy is building, as recorded (see the uploads and parts tables). */
export interface RecordedUpload {
  objectId: number;
  destKey: string;
  uploadId: string;
  sourceEtag: string | null;
  size: number;
  partSize: number;
  partCount: number;
  startedAt: string;
  parts: RecordedPart[];
}

export interface RecordedPart {
  partNumber: number;
  size: number;
  etag: string;
  /** Hex MD5 of the bytes sent. */
  md5: string;
}

/** An open upload as status lists it. */
export interface OpenUpload {
  key: string;
  destKey: string;
  uploadId: string;
  size: number;
  partsDone: number;
  partCount: number;
  bytesDone: number;
  startedAt: string;
}

export type CatalogSourceSummary =
  | { kind: 'listing'; parts: number; partsDone: number }
  | { kind: 'inventory'; manifestUrl: string; createdAt: string; files: number; filesDone: number };

export interface StatusCount {
  status: string;
  objects: number;
  bytes: number;
}

export interface RecentError {
  key: string;
  attempts: number;
  error: string;
  updatedAt: string;
}

export interface StateSummary {
  source?: EndpointLocation;
  catalogState?: string;
  catalogStartedAt?: string;
  catalogFinishedAt?: string;
  /** What the last (or running) catalog pass listed from, and how far it got. */
  catalogSource?: CatalogSourceSummary;
  counts: StatusCount[];
  objectsTotal: number;
  objectsDone: number;
  bytesTotal: number;
  bytesDone: number;
  /** What done rows' bytes were checked against as they were copied (md5, multipart-etag, ...). */
  evidenceCounts: Array<{ evidence: string; objects: number }>;
  /** What the last `verify` found (ok, missing, size-mismatch, ...; not-verified before any verify). */
  verifyResults: Array<{ result: string; objects: number }>;
  recentErrors: RecentError[];
  /** Multipart uploads recorded for resumption (costing storage until completed or aborted). */
  openUploads: { count: number; bytesDone: number; sample: OpenUpload[] };
  lastRun?: { command: string; startedAt: string; finishedAt?: string; outcome: string };
  /** What the last finished catalog pass found (new, modified, gone). */
  lastCatalogPass?: CatalogPassDelta;
}

export type VerifyResult =
  | 'ok'
  | 'missing'
  | 'size-mismatch'
  | 'etag-mismatch'
  | 'content-mismatch'
  | 'not-copied'
  /** Marked done by the first release on size alone: not proven until verify --deep or a new copy. */
  | 'unproven';
export const VERIFY_RESULTS: readonly VerifyResult[] = [
  'ok',
  'missing',
  'size-mismatch',
  'etag-mismatch',
  'content-mismatch',
  'not-copied',
  'unproven',
];

/** A catalog row as verify compares it. */
export interface VerifyRow {
  id: number;
  key: string;
  size: number;
  etag: string | null;
  status: ObjectStatus;
  destEtag: string | null;
  evidence: Evidence | null;
}

export interface VerifyFinding {
  id: number;
  result: VerifyResult;
  /** Set when verify itself proved the content (--deep hashing): the row becomes done on this evidence. */
  evidence?: Evidence;
  /** The destination ETag of the object verify proved (recorded with the evidence). */
  destEtag?: string;
}
