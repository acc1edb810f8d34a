import { setMaxListeners } from 'node:events';
import type { ObjectFilter } from '../filter/object-filter.js';
import type { S3Bucket } from '../s3/bucket.js';
import { describeS3Failure } from '../s3/describe-failure.js';
import type { ClassifiedError } from '../s3/errors.js';
import { sideOf } from '../s3/side.js';
import type { OutcomeCounts, StateStore } from '../state/store.js';
import type { EndpointLocation, ObjectRow, SortOrder } from '../state/types.js';
import { sleep } from './backoff.js';
import { checkBuckets } from './bucket-checks.js';
import { copyRow, type RowDeps } from './copy-row.js';
import type { CopyEvent, CopyStats } from './events.js';
import { mapKey } from './key-mapping.js';
import { MemoryBudget } from './memory-budget.js';
import { recoverExpired, releaseUnfitUploads } from './recovery.js';
import { DEFAULT_MAX_THROTTLED_ATTEMPTS, deniedStreakAfter, doomsRun } from './retry-policy.js';
import { Scheduler } from './scheduler.js';
import { AdaptiveConcurrency } from './throttle.js';
import { BUFFERED_PUT_LIMIT } from './transfer-object.js';
import { partSizeFor } from './part-size.js';
import type { Fidelity, TransferSettings } from './transfer-settings.js';

export interface CopyOptions {
  store: StateStore;
  source: S3Bucket;
  dest: S3Bucket;
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
  /** Throttled attempts (503 SlowDown and the like) per object in this run: a budget of their own. */
  maxThrottledAttempts?: number;
  /** Where each side's credentials came from, for messages. */
  credentialSources: { source: string; dest: string };
  /** Recorded in the runs table; must hold no secrets. */
  runArguments?: string;
  onEvent?: (event: CopyEvent) => void;
  /** Base of the exponential backoff between attempts (tests shorten it). */
  retryBaseMs?: number;
  /**
   * How long a claimed row stays this worker's without renewal (renewed every third of it): a worker
   * that dies or is cut off for longer loses its rows to the others. Default 60 s.
   */
  leaseMs?: number;
  /** Server-side copy: as asked (default auto), and whether both sides are one endpoint. */
  serverSide?: { mode: 'auto' | 'always' | 'never'; available: boolean };
  /** Tags and storage class (--tags, --storage-class); default: tags where the source reports them. */
  fidelity?: Fidelity;
  /** The wave of rows to copy (--include, --exclude, sizes, dates); rows outside it stay pending. */
  filter?: ObjectFilter;
}

export interface CopySummary {
  stats: CopyStats;
  /** Stopped by stop()/abort() before every pending object was tried. */
  interrupted: boolean;
  /** Rows of the whole state that decide the exit code (failed, changed, gone, unproven). */
  outcomes: OutcomeCounts;
}

/** How long a claimed row stays a worker's without renewal. */
export const DEFAULT_LEASE_MS = 60_000;

/** What a streamed body (a single PUT, or one part in flight) holds in memory: its stream buffers. */
const STREAMING_SHARE = 1024 * 1024;

/**
 * The copy engine: checks both buckets, recovers what a crashed run left in flight, then keeps
 * `concurrency` objects in flight (scheduler.ts), each copied by copy-row.ts and marked as it ends. It
 * knows nothing of terminals or signals: the caller calls stop() (drain) or abort() (cancel in-flight).
 */
export class CopyEngine {
  private readonly abortController = new AbortController();
  private readonly throttle: AdaptiveConcurrency;
  private readonly memory: MemoryBudget;
  private readonly scheduler: Scheduler<ObjectRow>;
  private readonly transfer: TransferSettings;
  private readonly rowDeps: RowDeps;
  private stopping = false;
  private aborting = false;
  /** A row handed to the window ended neither done nor failed (stopped before it started, or aborted). */
  private leftPending = false;
  private fatal: Error | undefined;
  private deniedStreak = 0;
  private contentMd5Probe: Promise<boolean> | undefined;
  private readonly leaseMs: number;
  private readonly started = Date.now();
  private readonly stats: Omit<CopyStats, 'concurrency' | 'elapsedMs'> = {
    objectsTotal: 0,
    bytesTotal: 0,
    objectsDone: 0,
    bytesDone: 0,
    objectsFailed: 0,
    objectsChanged: 0,
    objectsGone: 0,
    objectsCopied: 0,
    bytesCopied: 0,
    inFlight: 0,
    bytesTransferred: 0,
  };

  constructor(private readonly options: CopyOptions) {
    // Every in-flight request listens on the one abort signal.
    setMaxListeners(0, this.abortController.signal);
    this.leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    this.throttle = new AdaptiveConcurrency(options.concurrency);
    this.memory = new MemoryBudget(options.memoryBudget);
    this.scheduler = new Scheduler(options.concurrency);
    const retryBaseMs = options.retryBaseMs ?? 250;
    this.transfer = {
      source: options.source,
      dest: options.dest,
      multipartThreshold: options.multipartThreshold,
      partSize: options.partSize,
      partConcurrency: options.partConcurrency,
      destChecksumMode: options.destChecksumMode,
      // A destination that encrypts with SSE-C or SSE-KMS gives ETags that are not MD5s: hash every write first.
      singlePuts: { buffered: options.dest.writesOpaqueEtags },
      contentMd5Checked: () => this.destChecksContentMd5(),
      onBytes: (bytes) => {
        this.stats.bytesTransferred += bytes;
      },
      retryBaseMs,
      draining: () => this.stopping,
      serverSide: { ...(options.serverSide ?? { mode: 'never', available: false }) },
      onServerSideRefused: (reason) => this.emit({ type: 'server-side-refused', reason }),
      onUploadRestart: (destKey, reason) => this.emit({ type: 'upload-restarted', key: destKey, reason }),
      fidelity: options.fidelity,
    };
    this.rowDeps = {
      store: options.store,
      transfer: this.transfer,
      destKeyOf: (key) => this.destKeyOf(key),
      retry: {
        maxAttempts: options.maxAttempts,
        maxThrottledAttempts: options.maxThrottledAttempts ?? DEFAULT_MAX_THROTTLED_ATTEMPTS,
        baseMs: retryBaseMs,
        capMs: 20_000,
      },
      signal: this.abortController.signal,
      dooms: (error) => this.dooms(error),
      onThrottled: () => {
        if (this.throttle.onThrottle()) {
          this.scheduler.limit = this.throttle.value;
          this.emit({ type: 'throttled', concurrency: this.throttle.value });
        }
      },
      leaseMarginMs: Math.min(this.leaseMs / 4, 15_000),
      onRetry: (row, attempt, error, delayMs, detail) =>
        this.emit({ type: 'object-retry', key: row.key, attempt, error, ...detail, delayMs }),
    };
  }

  snapshot(): CopyStats {
    return { ...this.stats, concurrency: this.throttle.value, elapsedMs: Date.now() - this.started };
  }

  /** First Ctrl+C: start nothing new, let in-flight objects finish. */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.scheduler.stop();
    this.emit({ type: 'stopping', mode: 'drain' });
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
    this.scheduler.stop();
    this.memory.releaseAll();
    this.abortController.abort();
  }

  async run(): Promise<CopySummary> {
    const { store } = this.options;
    // Checked before the state is touched: a missing bucket or refused credentials change nothing.
    try {
      await checkBuckets(
        [
          { bucket: this.options.source, credentialSource: this.options.credentialSources.source },
          { bucket: this.options.dest, credentialSource: this.options.credentialSources.dest },
        ],
        { retryBaseMs: this.transfer.retryBaseMs, signal: this.abortController.signal },
      );
    } catch (error) {
      if (this.stopping) return { stats: this.snapshot(), interrupted: true, outcomes: await store.outcomeCounts(this.options.filter) };
      throw error;
    }

    // One worker among any others on this state; claims are leased to it and renewed while it works.
    await store.joinAsWorker(this.leaseMs);
    const renewal = setInterval(() => {
      store.renewLeases().catch((error: unknown) => this.doom(error));
    }, this.leaseMs / 3);
    renewal.unref();
    try {
      await store.setDestination(this.options.destLocation);
      const runId = await store.startRun('copy', this.options.runArguments ?? '');
      try {
        return await this.copyAll(runId);
      } catch (error) {
        // The run record is best effort here: the state itself may be what failed.
        await store.finishRun(runId, 'failed', { error: (error as Error).message }).catch(() => undefined);
        throw error;
      }
    } finally {
      clearInterval(renewal);
    }
  }

  private async copyAll(runId: number): Promise<CopySummary> {
    const { store } = this.options;
    await store.prepareCopy(this.options.order, this.options.filter);
    await this.recover();
    await releaseUnfitUploads(store, this.options.dest, this.options.multipartThreshold);

    const summary = await store.summary(0);
    Object.assign(this.stats, {
      objectsTotal: summary.objectsTotal,
      bytesTotal: summary.bytesTotal,
      objectsDone: summary.objectsDone,
      bytesDone: summary.bytesDone,
    });
    this.emit({
      type: 'start',
      runId,
      objectsTotal: summary.objectsTotal,
      bytesTotal: summary.bytesTotal,
      objectsAlreadyDone: summary.objectsDone,
      bytesAlreadyDone: summary.bytesDone,
    });

    const exhausted = await this.scheduler.run(
      (count) =>
        this.claim(count).catch((error: unknown) => {
          this.doom(error);
          throw error;
        }),
      (row) => this.copyOne(row),
      async (rows) => {
        this.leftPending = true;
        await store.releaseClaims(rows.map((row) => row.id)).catch((error: unknown) => this.doom(error));
      },
    );
    if (this.fatal) throw this.fatal;
    const stats = this.snapshot();
    this.emit({ type: 'finish', stats });
    // Every row was handed out, but an abort may have sent some back to pending: that is an interrupted run.
    const interrupted = !exhausted || this.leftPending;
    await store.finishRun(runId, interrupted ? 'interrupted' : 'completed', {
      objectsDone: stats.objectsCopied,
      bytesDone: stats.bytesCopied,
      objectsFailed: stats.objectsFailed,
    });
    return { stats, interrupted, outcomes: await store.outcomeCounts(this.options.filter) };
  }

  /** Takes over and checks the rows of workers that are gone (crashed, killed, cut off past their lease). */
  private async recover(): Promise<number> {
    let announced = false;
    const recovered = await recoverExpired(
      {
        store: this.options.store,
        dest: this.options.dest,
        destKeyOf: (key) => this.destKeyOf(key),
        concurrency: this.options.concurrency,
        signal: this.abortController.signal,
      },
      (rows) => {
        if (!announced) this.emit({ type: 'recovering', rows });
        announced = true;
      },
    );
    if (recovered.rows > 0) this.emit({ type: 'recovered', done: recovered.done, pending: recovered.rows - recovered.done });
    return recovered.rows;
  }

  /**
   * The next rows for this worker. When none is pending: rows of workers that died come back (after a
   * check at the destination); while other workers still hold live leases, this one waits, since their
   * rows may yet come back; when nobody holds any, the work is done (an empty answer).
   */
  private async claim(count: number): Promise<ObjectRow[]> {
    const { store } = this.options;
    for (;;) {
      const rows = await store.claimPending(this.options.order, count, this.options.filter);
      if (rows.length > 0 || this.stopping) return rows;
      if ((await this.recover()) > 0) continue;
      if ((await store.liveLeases()) === 0) return [];
      await sleep(Math.min(this.leaseMs / 4, 300), this.abortController.signal);
      if (this.stopping) return [];
    }
  }

  private destKeyOf(sourceKey: string): string {
    return mapKey(sourceKey, this.options.sourceLocation.prefix, this.options.destLocation.prefix);
  }

  private emit(event: CopyEvent): void {
    this.options.onEvent?.(event);
  }

  /** Stops the run for an error every object would share (or a state store failure); keeps the first. */
  private doom(error: unknown): void {
    if (!this.fatal) {
      const side = sideOf(error);
      const bucket = side === 'source' ? this.options.source.name : this.options.dest.name;
      this.fatal = describeS3Failure(error, { side, bucket, credentialSource: this.options.credentialSources[side] });
    }
    // Not the user's Ctrl+C: cancel quietly, the fatal error is what gets reported.
    this.cancelInFlight();
  }

  private dooms(error: ClassifiedError): boolean {
    this.deniedStreak = deniedStreakAfter(error, this.deniedStreak);
    return doomsRun(error, this.deniedStreak, this.stats.objectsCopied);
  }

  /** Probed once per run, and only when an encrypted destination leaves nothing else to judge by. */
  private destChecksContentMd5(): Promise<boolean> {
    this.contentMd5Probe ??= this.options.dest.refusesBadContentMd5(
      `${this.options.destLocation.prefix}.s3migrate-content-md5-probe-${process.pid}-${Date.now()}`,
    );
    return this.contentMd5Probe;
  }

  /** Waits for the object's share of the memory budget, then gives the row its turn. Never rejects. */
  private async copyOne(row: ObjectRow): Promise<void> {
    const granted = this.stopping ? 0 : await this.memory.acquire(this.memoryShare(row.size));
    this.stats.inFlight += 1;
    try {
      if (this.stopping) {
        // Claimed, but the run stopped before its turn: back to pending, the attempt not counted.
        this.leftPending = true;
        await this.options.store.markPending(row.id, true);
        return;
      }
      const began = Date.now();
      const outcome = await copyRow(this.rowDeps, row);
      switch (outcome.kind) {
        case 'done':
          this.stats.objectsDone += 1;
          this.stats.bytesDone += row.size;
          this.stats.objectsCopied += 1;
          this.stats.bytesCopied += row.size;
          this.deniedStreak = 0;
          this.throttle.onSuccess();
          this.scheduler.limit = this.throttle.value;
          this.emit({
            type: 'object-done',
            key: row.key,
            size: row.size,
            destKey: outcome.result.destKey,
            evidence: outcome.result.evidence,
            attempts: outcome.attempts,
            durationMs: Date.now() - began,
          });
          break;
        case 'failed':
          this.stats.objectsFailed += 1;
          this.emit({
            type: 'object-failed',
            key: row.key,
            size: row.size,
            error: outcome.error,
            errorCode: outcome.errorCode,
            side: outcome.side,
            attempts: outcome.attempts,
            durationMs: Date.now() - began,
          });
          break;
        case 'changed':
          this.stats.objectsChanged += 1;
          this.emit({ type: 'object-changed', key: row.key, size: row.size, reason: outcome.reason });
          break;
        case 'gone':
          this.stats.objectsGone += 1;
          this.emit({ type: 'object-gone', key: row.key, size: row.size });
          break;
        case 'left-pending':
          this.leftPending = true;
          break;
        case 'doomed':
          this.doom(outcome.error);
          break;
        case 'lost':
          this.emit({ type: 'lease-lost', key: row.key });
          break;
      }
    } catch (error) {
      // A state store failure (copyRow lets only those through): the run stops, reported as what it is.
      this.doom(error);
    } finally {
      this.stats.inFlight -= 1;
      this.memory.release(granted);
    }
  }

  /** What a transfer holds in memory at most: a buffered body, or the stream buffers of what is in flight. */
  private memoryShare(size: number): number {
    if (size <= this.options.multipartThreshold) {
      return this.transfer.singlePuts.buffered || size <= BUFFERED_PUT_LIMIT ? size : STREAMING_SHARE;
    }
    // Buffered parts (see singlePuts) hold a whole part each.
    const part = this.transfer.singlePuts.buffered ? partSizeFor(size, this.options.partSize) : STREAMING_SHARE;
    return this.options.partConcurrency * part;
  }
}
