/** Plain data shapes shared by the state store and the modules that use it. */

export type ObjectStatus = 'pending' | 'in_flight' | 'done' | 'failed' | 'gone';
export type SortOrder = 'key' | 'newest' | 'oldest' | 'largest' | 'smallest';
export const SORT_ORDERS: readonly SortOrder[] = ['key', 'newest', 'oldest', 'largest', 'smallest'];
export type VerifyMethod = 'md5' | 'multipart-etag' | 'size-only' | 'unverified';

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

export interface CatalogProgress {
  pass: number;
  /** The last key committed by this pass; the listing resumes after it. '' at the start of a pass. */
  startAfter: string;
  resumed: boolean;
}

export interface CopyResult {
  destKey: string;
  destEtag?: string;
  verifyMethod: VerifyMethod;
  verifyNote?: string;
}

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
  counts: StatusCount[];
  objectsTotal: number;
  objectsDone: number;
  bytesTotal: number;
  bytesDone: number;
  /** How copies were checked as they were made (md5, multipart-etag, size-only, unverified). */
  verifyCounts: Array<{ method: string; objects: number }>;
  /** What the last `verify` found (ok, missing, size-mismatch, ...; not-verified before any verify). */
  verifyResults: Array<{ result: string; objects: number }>;
  recentErrors: RecentError[];
  lastRun?: { command: string; startedAt: string; finishedAt?: string; outcome: string };
}

export type VerifyResult = 'ok' | 'missing' | 'size-mismatch' | 'etag-mismatch' | 'content-mismatch' | 'not-copied';

/** A catalog row as verify compares it. */
export interface VerifyRow {
  id: number;
  key: string;
  size: number;
  etag: string | null;
  status: ObjectStatus;
  destEtag: string | null;
  verifyMethod: VerifyMethod | null;
}

export interface VerifyFinding {
  id: number;
  result: VerifyResult;
  /** Set when verify itself proved the content (e.g. --deep hashing). */
  method?: VerifyMethod;
}
