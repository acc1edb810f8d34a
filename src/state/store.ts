import { FatalError, S3MigrateError } from '../errors.js';
import type { ObjectFilter } from '../filter/object-filter.js';
import type {
  CatalogPart,
  CatalogProgress,
  CatalogSource,
  PageResume,
  CatalogPassDelta,
  DeletionCandidate,
  MeasuredRate,
  PlanGroupRow,
  StatusCount,
  CopyResult,
  RecordedPart,
  RecordedUpload,
  EndpointLocation,
  ListedObject,
  ObjectRow,
  SortOrder,
  StateSummary,
  VerifyFinding,
  VerifyRow,
} from './types.js';

/**
 * The state file could not be read or written (disk full, locked, I/O error): reported as what it is,
 * with the file and the database's own reason, and never taken for an S3 failure. Exit code 1.
 */
export class StateStoreError extends FatalError {
  constructor(
    readonly location: string,
    readonly reason: string,
    readonly code: string | undefined,
  ) {
    super(
      `The state file ${location} could not be written or read (${code ? `${code}: ` : ''}${reason}). ` +
        `No object was marked by the failed write. Fix the cause (free disk space, a process holding the file) ` +
        `and run the same command again: it carries on from the last committed change.`,
    );
    this.name = 'StateStoreError';
  }
}

/**
 * This worker no longer holds a row's lease (it expired while the worker was paused or cut off, and
 * another worker took the row): the write was refused and nothing of it took effect. Not a failure of
 * the state: the row is someone else's now.
 */
export class LeaseLostError extends Error {
  readonly code = 'LeaseLost';
  constructor(readonly rowId: number) {
    super(`the lease on row ${rowId} was lost to another worker`);
    this.name = 'LeaseLost';
  }
}

/**
 * An inventory cannot see objects written after it was taken, and AWS warns that it may miss objects added
 * or deleted shortly before: a pass from an inventory marks gone only rows last modified at least this long
 * before the report's creationTimestamp. Others keep their status until a listing (or copy) decides.
 */
export const INVENTORY_GONE_MARGIN_MS = 24 * 60 * 60 * 1000;

/** The last modification time before which an inventory taken at `createdAt` may mark a missing row gone. */
export function inventoryGoneBefore(createdAt: string): string {
  return new Date(Date.parse(createdAt) - INVENTORY_GONE_MARGIN_MS).toISOString();
}

/** Row outcomes that decide a copy's exit code. */
export interface OutcomeCounts {
  failed: number;
  changed: number;
  gone: number;
  unproven: number;
  archived: number;
}

/**
 * The state of one migration: the catalog of source objects and what happened to each. Every method is
 * one short transaction; every write either lands whole or not at all. The engine and the commands use
 * only this interface; src/state/sqlite implements it on a local SQLite file.
 */
export interface StateStore {
  /** Where the state lives, for messages (a file path). */
  readonly location: string;
  close(): Promise<void>;

  // identity
  getSource(): Promise<EndpointLocation | undefined>;
  setSource(source: EndpointLocation): Promise<void>;
  getDestination(): Promise<EndpointLocation | undefined>;
  setDestination(dest: EndpointLocation): Promise<void>;

  // the single-writer lock
  acquireLock(command: string): Promise<void>;
  releaseLock(): Promise<void>;

  // runs
  startRun(command: string, args: string): Promise<number>;
  finishRun(
    id: number,
    outcome: 'completed' | 'interrupted' | 'failed',
    counts: { objectsDone?: number; objectsFailed?: number; bytesDone?: number; keysListed?: number; error?: string },
  ): Promise<void>;

  // catalog
  /**
   * Continues the interrupted pass when it lists from the same source (a listing; the same inventory
   * report, by manifest URL and MD5), else starts a new pass (which will reconcile every row).
   */
  beginCatalogPass(source: CatalogSource): Promise<CatalogProgress>;
  /** The current (or last) pass, read only: undefined before any catalog. */
  catalogPass(): Promise<{ pass: number; complete: boolean; source: CatalogSource; nextFile: number } | undefined>;
  /**
   * Stores the parts of a listing pass that has none yet (one transaction); returns the parts the pass
   * has (the stored ones when another call planned it first).
   */
  planCatalogParts(pass: number, ranges: ReadonlyArray<{ startAfter: string; endKey: string | null }>): Promise<CatalogPart[]>;
  /**
   * Splits an unfinished part of the current listing pass at `at` (one transaction): the part ends at `at`,
   * and a new part (the next free number) holds the keys above it up to the old end. Refused (undefined) when
   * the part is done or `at` is not strictly between its resume point and its end. Returns the new part.
   */
  splitCatalogPart(pass: number, part: number, at: string): Promise<CatalogPart | undefined>;
  /**
   * Stores one page and where it leaves its pass (a part's resume point, an inventory's next data file) in
   * ONE transaction. Changed keys go back to pending; unchanged rows keep their status. A page of an
   * inventory never overwrites what the state knows to be newer (see finishCatalogPass). `seen`: keys
   * listed but outside a filtered pass's size or date bounds: their rows (if any) only count as seen by
   * the pass (never gone), nothing of them is recorded.
   */
  ingestPage(pass: number, objects: readonly ListedObject[], resume: PageResume, seen?: readonly string[]): Promise<void>;
  /**
   * Ends a complete pass: rows it did not see become gone, within `scope` only (the key part of a
   * filtered pass's filter); records what the pass found (new, modified, gone) with `scopeText`. A pass
   * from an inventory marks gone only rows last modified more than INVENTORY_GONE_MARGIN_MS before the
   * report was taken.
   */
  finishCatalogPass(pass: number, scope?: ObjectFilter, scopeText?: string): Promise<{ gone: number }>;
  /** What the last finished catalog pass found. */
  lastCatalogPass(): Promise<CatalogPassDelta | undefined>;
  catalogComplete(): Promise<boolean>;
  countListed(): Promise<number>;

  // copy workers: claims with leases
  /**
   * Joins the copy as one worker (several may share the state): refused while a command that needs the
   * state alone (catalog, verify, abort-uploads) holds it. Every claim of this store is leased to the
   * returned worker id for `leaseMs`, renewed by renewLeases(); every row mark and upload record is
   * fenced: it applies only while this worker still holds the row's lease (LeaseLostError otherwise).
   */
  joinAsWorker(leaseMs: number): Promise<string>;
  /** Extends the leases of every row this worker holds; returns how many it still holds. */
  renewLeases(): Promise<number>;
  /** True while this worker holds the row's lease with at least `marginMs` left. */
  holdsLease(id: number, marginMs: number): Promise<boolean>;
  /** In-flight rows leased to other workers whose leases have not expired. */
  liveLeases(): Promise<number>;
  /**
   * Readies the rows for a copy run (within the filter's wave): the index of this order, failed and
   * unproven rows back to pending, pending rows of archive storage classes marked archived.
   */
  prepareCopy(order: SortOrder, filter?: ObjectFilter): Promise<void>;
  /** Every row in flight, whoever holds it, in key order. */
  inFlightRows(): Promise<ObjectRow[]>;
  /**
   * Takes over up to `limit` in-flight rows whose lease expired (their worker died or was cut off), or that
   * have none (a crashed run of an earlier version): leased to this worker, for a destination check before
   * anything else (see src/copy/recovery.ts).
   */
  takeExpired(limit: number): Promise<ObjectRow[]>;
  /**
   * Claims the next `limit` pending rows in the chosen order: marks them in flight (their attempt counted)
   * and leased to this worker in one transaction, and returns them in that order. Claimed rows are no
   * longer pending, so the next claim continues after them; several workers never claim the same row.
   */
  claimPending(order: SortOrder, limit: number, filter?: ObjectFilter): Promise<ObjectRow[]>;
  /** Claimed rows that never started (a stop): back to pending, their attempt not counted. */
  releaseClaims(ids: readonly number[]): Promise<void>;
  /**
   * Called only on positive evidence that the destination holds the source's bytes. Marks may be grouped
   * into one transaction with others: the promise resolves once this one is committed.
   */
  markDone(id: number, result: CopyResult): Promise<void>;
  markFailed(id: number, error: string): Promise<void>;
  /** The source object is not the one cataloged (other ETag or size): `catalog` again reconciles it. */
  markChanged(id: number, reason: string): Promise<void>;
  /** The source key vanished since the catalog. */
  markGone(id: number): Promise<void>;
  /** An interrupted transfer: back to pending; the attempt it started does not count when refunded. */
  markPending(id: number, refundAttempt: boolean): Promise<void>;
  recordRetry(id: number, error: string): Promise<void>;
  /** Rows that decide the exit code, within the filter's selection. */
  outcomeCounts(filter?: ObjectFilter): Promise<OutcomeCounts>;

  // plan, selection and cut-over (read-only but for the two marks)
  /**
   * What a copy would still copy (pending, failed, unproven) and what it skips (archived), within the
   * filter, grouped by storage class and size (objects up to the threshold in one group per class).
   */
  planGroups(filter: ObjectFilter | undefined, multipartThreshold: number): Promise<PlanGroupRow[]>;
  /** Objects and bytes per status within the filter. */
  selectionCounts(filter: ObjectFilter | undefined): Promise<StatusCount[]>;
  /** The totals of the last few copy runs that copied anything, for the plan's duration estimate. */
  measuredRate(): Promise<MeasuredRate | undefined>;
  /** Gone rows (within the filter) whose copy s3migrate wrote (done with a recorded destination ETag), in key order. */
  deletionCandidates(filter?: ObjectFilter): Promise<DeletionCandidate[]>;
  /** The copy of a gone row was deleted from the destination: the row becomes `deleted`. */
  markDeleted(id: number): Promise<void>;
  /** A gone row's destination object was left alone (not ours any more, or absent): the reason is recorded. */
  noteNotDeleted(id: number, reason: string): Promise<void>;

  // multipart uploads kept across runs (part-level resume)
  /** Records the upload a row's copy started (replacing any earlier record of that row). */
  recordUpload(upload: Omit<RecordedUpload, 'parts' | 'startedAt'>): Promise<void>;
  /** Records one part the destination confirmed. Grouped like the marks. */
  recordPart(objectId: number, part: RecordedPart): Promise<void>;
  /** The upload recorded for a row, with its parts; undefined when none. */
  uploadOf(objectId: number): Promise<RecordedUpload | undefined>;
  /** Forgets a row's upload (aborted, gone, or unusable). */
  forgetUpload(objectId: number): Promise<void>;
  /** Every recorded upload, in key order, without parts. */
  recordedUploads(): Promise<Array<Omit<RecordedUpload, 'parts'> & { key: string }>>;

  // verify
  beginVerifyPass(): Promise<number>;
  rowByKey(key: string): Promise<VerifyRow | undefined>;
  /** The rows of `keys` (a listing page's) that are not gone or deleted, by key: one lookup for the page. */
  rowsByKeys(keys: readonly string[]): Promise<Map<string, VerifyRow>>;
  recordVerifyResults(pass: number, results: readonly VerifyFinding[]): Promise<void>;
  finishVerifyPass(pass: number): Promise<void>;
  verifyProblems(): AsyncGenerator<{ key: string; size: number; result: string }>;
  verifyResultCounts(): Promise<Array<{ result: string; objects: number }>>;

  // status
  summary(recentErrorLimit?: number): Promise<StateSummary>;
}

/** Copy workers hold leases on the state: a command that needs it alone must wait. */
export class StateBusyError extends S3MigrateError {
  constructor(location: string, command: string, workers: number) {
    super(
      'fatal',
      `${location} is in use by ${workers} running copy worker${workers === 1 ? '' : 's'}; \`s3migrate ${command}\` needs ` +
        'the state alone. Wait for the copy to finish or stop it (Ctrl+C), then run this again.',
    );
    this.name = 'StateLockedError';
  }
}

