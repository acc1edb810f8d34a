import { setMaxListeners } from 'node:events';
import {
  AbortMultipartUploadCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import pLimit from 'p-limit';
import { describeS3Failure } from '../s3/describe-failure.js';
import { classifyError, isRetryable, type ClassifiedError } from '../s3/errors.js';
import type { StateStore } from '../state/state-store.js';
import type { ObjectRow, SortOrder, EndpointLocation } from '../state/types.js';
import { backoffDelay, sleep } from './backoff.js';
import type { CopyEvent, CopyStats } from './events.js';
import { isPlainMd5, unquote } from './integrity.js';
import { mapKey } from './key-mapping.js';
import { MemoryBudget } from './memory-budget.js';
import { partSizeFor } from './part-size.js';
import { sideOf, type Side } from './side-error.js';
import { AdaptiveConcurrency } from './throttle.js';
import { transferObject, type TransferSettings } from './transfer-object.js';

export interface CopyOptions {
  store: StateStore;
  source: S3Client;
  dest: S3Client;
  sourceLocation: EndpointLocation;
  destLocation: EndpointLocation;
  order: SortOrder;
  /** Objects in flight at once. */
  concurrency: number;
  /** Objects larger than this go as multipart uploads. */
  multipartThreshold: number;
  /** Bytes the transfers in flight may hold in memory together (see MemoryBudget). */
  memoryBudget: number;
  partSize: number;
  destChecksumMode?: 'when-required' | 'when-supported';
  /** Parts in flight per multipart object. */
  partConcurrency: number;
  /** Attempts per object in this run before it is recorded as failed (throttled attempts not counted). */
  maxAttempts: number;
  /**
   * Throttled attempts (503 SlowDown and the like) per object in this run: a budget of their own, apart
   * from maxAttempts, since throttling is the service pacing us, not a fault of the object.
   */
  maxThrottledAttempts?: number;
  /** Where each side's credentials came from, for messages. */
  credentialSources: { source: string; dest: string };
  /** Recorded in the runs table; must hold no secrets. */
  runArguments?: string;
  onEvent?: (event: CopyEvent) => void;
  /** Base of the exponential backoff between attempts (tests shorten it). */
  retryBaseMs?: number;
}

export interface CopySummary {
  stats: CopyStats;
  /** Stopped by stop()/abort() before every pending object was tried. */
  interrupted: boolean;
}

/** Codes that say the credentials themselves are bad: every object of the run would fail the same way. */
const BAD_CREDENTIAL_CODES = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'CredentialsProviderError',
  'InvalidClientTokenId',
]);
/** This many AccessDenied in a row, with no success in between, means access is denied everywhere. */
const DENIED_STREAK_LIMIT = 10;
const PAGE_SIZE = 256;
/**
 * Default throttled-attempt budget per object: with backoff capped at 20 s (10 s on average), about a
 * quarter of an hour of uninterrupted throttling on one object before it is recorded as failed.
 */
export const DEFAULT_MAX_THROTTLED_ATTEMPTS = 100;
/** HeadBucket answers "slow down" this many times before the run gives up on starting. */
const BUCKET_CHECK_THROTTLED_ATTEMPTS = 8;

/**
 * The copy engine. Keeps `concurrency` objects in flight at all times, pulling the next rows from the
 * state file in the chosen order by keyset pagination, and marks each row as it completes. It knows
 * nothing of terminals or signals: the caller calls stop() (drain) or abort() (cancel in-flight).
 */
export class CopyEngine {
  private readonly abortController = new AbortController();
  private readonly throttle: AdaptiveConcurrency;
  private readonly memory: MemoryBudget;
  private readonly limit: ReturnType<typeof pLimit>;
  private readonly settings: TransferSettings;
  private stopping = false;
  private aborting = false;
  /** A row handed to the window ended neither done nor failed (stopped before it started, or aborted). */
  private leftPending = false;
  private fatal: Error | undefined;
  private deniedStreak = 0;
  private waiters: Array<() => void> = [];
  private readonly started = Date.now();
  private readonly stats: Omit<CopyStats, 'concurrency' | 'elapsedMs'> = {
    objectsTotal: 0,
    bytesTotal: 0,
    objectsDone: 0,
    bytesDone: 0,
    objectsFailed: 0,
    objectsCopied: 0,
    bytesCopied: 0,
    inFlight: 0,
    bytesTransferred: 0,
  };

  constructor(private readonly options: CopyOptions) {
    // Every in-flight request listens on the one abort signal.
    setMaxListeners(0, this.abortController.signal);
    this.throttle = new AdaptiveConcurrency(options.concurrency);
    this.memory = new MemoryBudget(options.memoryBudget);
    this.limit = pLimit(options.concurrency);
    this.settings = {
      source: options.source,
      dest: options.dest,
      sourceBucket: options.sourceLocation.bucket,
      destBucket: options.destLocation.bucket,
      multipartThreshold: options.multipartThreshold,
      partSize: options.partSize,
      destChecksumMode: options.destChecksumMode,
      partConcurrency: options.partConcurrency,
      onBytes: (bytes) => {
        this.stats.bytesTransferred += bytes;
      },
    };
  }

  snapshot(): CopyStats {
    return { ...this.stats, concurrency: this.throttle.value, elapsedMs: Date.now() - this.started };
  }

  /** First Ctrl+C: start nothing new, let in-flight objects finish. */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.emit({ type: 'stopping', mode: 'drain' });
    this.wake();
  }

  /** Second Ctrl+C: cancel in-flight objects (and their multipart uploads); their rows go back to pending. */
  abort(): void {
    if (this.aborting) return;
    this.emit({ type: 'stopping', mode: 'abort' });
    this.cancelInFlight();
  }

  private cancelInFlight(): void {
    this.stopping = true;
    this.aborting = true;
    this.memory.releaseAll();
    this.abortController.abort();
    this.wake();
  }

  async run(): Promise<CopySummary> {
    const { store } = this.options;
    // Checked before the state file is touched: a missing bucket or refused credentials change nothing.
    await this.checkBucket('source');
    await this.checkBucket('dest');

    store.acquireLock('copy');
    store.setDestination(this.options.destLocation);
    const runId = store.startRun('copy', this.options.runArguments ?? '');
    try {
      store.ensureSortIndex(this.options.order);
      store.requeueFailed();
      await this.recoverInFlight();
      const summary = store.summary(0);
      this.stats.objectsTotal = summary.objectsTotal;
      this.stats.bytesTotal = summary.bytesTotal;
      this.stats.objectsDone = summary.objectsDone;
      this.stats.bytesDone = summary.bytesDone;
      this.emit({
        type: 'start',
        objectsTotal: summary.objectsTotal,
        bytesTotal: summary.bytesTotal,
        objectsAlreadyDone: summary.objectsDone,
        bytesAlreadyDone: summary.bytesDone,
      });

      const exhausted = await this.schedule();
      const stats = this.snapshot();
      this.emit({ type: 'finish', stats });
      const counts = {
        objectsDone: stats.objectsCopied,
        bytesDone: stats.bytesCopied,
        objectsFailed: stats.objectsFailed,
      };
      if (this.fatal) {
        store.finishRun(runId, 'failed', { ...counts, error: this.fatal.message });
        throw this.fatal;
      }
      store.finishRun(runId, exhausted ? 'completed' : 'interrupted', counts);
      return { stats, interrupted: !exhausted };
    } catch (error) {
      if (error !== this.fatal) store.finishRun(runId, 'failed', { error: (error as Error).message });
      throw error;
    } finally {
      store.releaseLock();
    }
  }

  /** Runs the continuous window; returns true when every pending row was tried to the end. */
  private async schedule(): Promise<boolean> {
    const running = new Set<Promise<void>>();
    let cursor: ObjectRow | undefined;
    let exhausted = false;
    while (!this.stopping) {
      const rows = this.options.store.nextPending(this.options.order, cursor, PAGE_SIZE);
      if (rows.length === 0) {
        exhausted = true;
        break;
      }
      for (const row of rows) {
        // Hand p-limit only what can start now, so stop() takes effect at once and rows are marked
        // in flight only when their transfer really begins.
        while (!this.stopping && this.limit.activeCount + this.limit.pendingCount >= this.limit.concurrency) {
          await new Promise<void>((resolve) => this.waiters.push(resolve));
        }
        if (this.stopping) break;
        cursor = row;
        const task = this.limit(() => this.copyOne(row)).catch((error: unknown) => this.doom(error));
        running.add(task);
        void task.finally(() => {
          running.delete(task);
          this.wake();
        });
      }
    }
    await Promise.all(running);
    // Every row was handed out, but an abort may have sent some back to pending: that is an interrupted run.
    return exhausted && !this.leftPending && !this.fatal;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }

  private emit(event: CopyEvent): void {
    this.options.onEvent?.(event);
  }

  private doom(error: unknown, side: Side = sideOf(error)): void {
    if (!this.fatal) {
      const bucket = side === 'source' ? this.options.sourceLocation.bucket : this.options.destLocation.bucket;
      this.fatal = describeS3Failure(error, { side, bucket, credentialSource: this.options.credentialSources[side] });
    }
    // Not the user's Ctrl+C: cancel quietly, the fatal error is what gets reported.
    this.cancelInFlight();
  }

  /** Waits for the object's share of the memory budget, then copies it. */
  private async copyOne(row: ObjectRow): Promise<void> {
    const granted = await this.memory.acquire(this.memoryShare(row.size));
    try {
      await this.copyRow(row);
    } finally {
      this.memory.release(granted);
    }
  }

  /** What a transfer holds in memory at most: the buffered body, or its parts queued and in flight. */
  private memoryShare(size: number): number {
    if (size <= this.options.multipartThreshold) return size;
    return partSizeFor(size, this.options.partSize) * (this.options.partConcurrency + 1);
  }

  private async copyRow(row: ObjectRow): Promise<void> {
    if (this.stopping) {
      this.leftPending = true;
      return;
    }
    const { store } = this.options;
    const destKey = mapKey(row.key, this.options.sourceLocation.prefix, this.options.destLocation.prefix);
    const signal = this.abortController.signal;
    store.markInFlight(row.id);
    this.stats.inFlight += 1;
    let attempt = 0; // attempts that count against maxAttempts
    let throttledAttempts = 0;
    try {
      for (;;) {
        try {
          const result = await transferObject(this.settings, row.key, destKey, row.size, signal);
          store.markDone(row.id, result);
          this.stats.objectsDone += 1;
          this.stats.bytesDone += row.size;
          this.stats.objectsCopied += 1;
          this.stats.bytesCopied += row.size;
          this.deniedStreak = 0;
          this.throttle.onSuccess();
          this.limit.concurrency = this.throttle.value;
          this.emit({ type: 'object-done', key: row.key, size: row.size });
          return;
        } catch (error) {
          if (this.aborting) {
            store.markPending(row.id, true);
            this.leftPending = true;
            return;
          }
          const classified = classifyError(error);
          const side = sideOf(error);
          if (this.dooms(classified)) {
            store.markPending(row.id, true);
            this.doom(error, side);
            return;
          }
          const message = `${side === 'source' ? 'source' : 'destination'}: ${classified.description}`;
          if (classified.kind === 'throttled' && this.throttle.onThrottle()) {
            this.limit.concurrency = this.throttle.value;
            this.emit({ type: 'throttled', concurrency: this.throttle.value });
          }
          const throttled = classified.kind === 'throttled';
          if (throttled) throttledAttempts += 1;
          else attempt += 1;
          const maxThrottled = this.options.maxThrottledAttempts ?? DEFAULT_MAX_THROTTLED_ATTEMPTS;
          if (
            !isRetryable(classified.kind) ||
            attempt >= this.options.maxAttempts ||
            throttledAttempts >= maxThrottled
          ) {
            store.markFailed(row.id, message);
            this.stats.objectsFailed += 1;
            this.emit({ type: 'object-failed', key: row.key, error: message });
            return;
          }
          const delayMs = backoffDelay(throttled ? throttledAttempts : attempt, {
            baseMs: (this.options.retryBaseMs ?? 250) * (throttled ? 4 : 1),
            capMs: 20_000,
          });
          this.emit({ type: 'object-retry', key: row.key, attempt: attempt + throttledAttempts, error: message, delayMs });
          await sleep(delayMs, signal);
          if (this.aborting) {
            store.markPending(row.id, true);
            this.leftPending = true;
            return;
          }
          store.recordRetry(row.id, message);
        }
      }
    } finally {
      this.stats.inFlight -= 1;
    }
  }

  /** True for errors that would fail every remaining object the same way. */
  private dooms(error: ClassifiedError): boolean {
    if (error.kind === 'no-such-bucket' || BAD_CREDENTIAL_CODES.has(error.code)) return true;
    if (error.kind !== 'auth') return false;
    this.deniedStreak += 1;
    return this.deniedStreak >= DENIED_STREAK_LIMIT && this.stats.objectsCopied === 0;
  }

  /**
   * A killed run cannot abort its multipart upload; the next one does, for the rows that were in flight,
   * so no orphaned parts keep costing money. Servers without ListMultipartUploads are skipped quietly.
   */
  private async abortOrphanUploads(row: ObjectRow): Promise<void> {
    if (row.size <= this.options.multipartThreshold) return;
    const bucket = this.options.destLocation.bucket;
    const destKey = mapKey(row.key, this.options.sourceLocation.prefix, this.options.destLocation.prefix);
    try {
      const listing = await this.options.dest.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: destKey }));
      for (const upload of listing.Uploads ?? []) {
        if (upload.Key !== destKey || !upload.UploadId) continue;
        await this.options.dest.send(
          new AbortMultipartUploadCommand({ Bucket: bucket, Key: destKey, UploadId: upload.UploadId }),
        );
      }
    } catch {
      // Not supported (s3rver answers 501) or not permitted: the bucket's lifecycle rule is the fallback.
    }
  }

  /**
   * HeadBucket: a missing bucket stops the run at once; 403 does not (write-only credentials are common);
   * throttling is waited out (with backoff, a bounded number of times) rather than failing the run.
   */
  private async checkBucket(side: Side): Promise<void> {
    const client = side === 'source' ? this.options.source : this.options.dest;
    const bucket = side === 'source' ? this.options.sourceLocation.bucket : this.options.destLocation.bucket;
    for (let attempt = 1; ; attempt += 1) {
      try {
        await client.send(new HeadBucketCommand({ Bucket: bucket }));
        return;
      } catch (error) {
        const classified = classifyError(error);
        if (classified.kind === 'auth' && !BAD_CREDENTIAL_CODES.has(classified.code)) return;
        if (classified.kind === 'throttled' && attempt < BUCKET_CHECK_THROTTLED_ATTEMPTS && !this.stopping) {
          const baseMs = (this.options.retryBaseMs ?? 250) * 4;
          await sleep(backoffDelay(attempt, { baseMs, capMs: 10_000 }), this.abortController.signal);
          continue;
        }
        throw describeS3Failure(error, { side, bucket, credentialSource: this.options.credentialSources[side] });
      }
    }
  }

  /**
   * Rows a crashed run left in flight: whatever already arrived intact (HeadObject: size, and ETag
   * where comparable) is marked done without sending it again; the rest goes back to pending.
   */
  private async recoverInFlight(): Promise<void> {
    const { store } = this.options;
    const rows = store.inFlightRows();
    if (rows.length === 0) return;
    this.emit({ type: 'recovering', rows: rows.length });
    let done = 0;
    const limit = pLimit(this.options.concurrency);
    await Promise.all(
      rows.map((row) =>
        limit(async () => {
          const destKey = mapKey(row.key, this.options.sourceLocation.prefix, this.options.destLocation.prefix);
          try {
            const head = await this.options.dest.send(
              new HeadObjectCommand({ Bucket: this.options.destLocation.bucket, Key: destKey }),
            );
            const destEtag = unquote(head.ETag);
            const sameSize = head.ContentLength === row.size;
            const comparable = isPlainMd5(row.etag ?? undefined) && isPlainMd5(destEtag);
            if (sameSize && (!comparable || unquote(row.etag!) === destEtag)) {
              store.markDone(row.id, {
                destKey,
                destEtag,
                verifyMethod: comparable ? 'md5' : 'size-only',
              });
              done += 1;
              return;
            }
          } catch {
            // Not there (or not readable): copy it again.
          }
          store.markPending(row.id, true);
        }).then(() => limit(() => this.abortOrphanUploads(row))),
      ),
    );
    this.emit({ type: 'recovered', done, pending: rows.length - done });
  }
}
