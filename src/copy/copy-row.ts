import { classifyError, type ClassifiedError } from '../s3/errors.js';
import { sideOf } from '../s3/side.js';
import type { StateStore } from '../state/store.js';
import type { CopyResult, ObjectRow } from '../state/types.js';
import { sleep } from './backoff.js';
import { LeaseLostError, StateStoreError } from '../state/store.js';
import type { ErrorSide } from './events.js';
import { NoEvidenceError, SourceChangedError, TransferStoppedError } from './integrity.js';
import { afterFailure, type AttemptCounts, type RetryLimits } from './retry-policy.js';
import { transferObject } from './transfer-object.js';
import type { TransferSettings, UploadJournal } from './transfer-settings.js';

export interface RowDeps {
  store: StateStore;
  transfer: TransferSettings;
  destKeyOf: (sourceKey: string) => string;
  retry: RetryLimits;
  /** Aborted by a second Ctrl+C or a fatal error: in-flight transfers are cancelled. */
  signal: AbortSignal;
  /** True when this error would fail every remaining object the same way (the run stops). */
  dooms: (error: ClassifiedError) => boolean;
  onThrottled: () => void;
  /** Lease time that must remain before a multipart upload is completed. */
  leaseMarginMs: number;
  onRetry: (row: ObjectRow, attempt: number, error: string, delayMs: number, detail: FailureDetail) => void;
}

/** What logs say of a failed attempt besides its message. */
export interface FailureDetail {
  /** The classified code: the S3 code (SlowDown, NoSuchKey), a network errno, or an integrity code. */
  errorCode: string;
  side: ErrorSide;
}

/**
 * How one row's turn ended; the row is marked accordingly before this is returned. `attempts` counts
 * this turn's attempts, the last one and throttled ones included.
 */
export type RowOutcome =
  | { kind: 'done'; result: CopyResult; attempts: number }
  | ({ kind: 'failed'; error: string; attempts: number } & FailureDetail)
  | { kind: 'changed'; reason: string }
  | { kind: 'gone' }
  /** Aborted (second Ctrl+C): back to pending, the attempt refunded. */
  | { kind: 'left-pending' }
  /** An error that dooms the run: the row went back to pending; the caller stops the run with `error`. */
  | { kind: 'doomed'; error: unknown }
  /** This worker's lease on the row was lost to another worker: nothing more was written for it. */
  | { kind: 'lost' };

/** "source: NoSuchKey (HTTP 404)", naming the side an error came from. */
function describe(error: unknown, classified: ClassifiedError): string {
  return `${sideOf(error) === 'source' ? 'source' : 'destination'}: ${classified.description}`;
}

/**
 * One row's turn (claimed, so already in flight): copies it with retries (retry-policy.ts), and records how it
 * ended. S3 failures are caught here and become the row's state; a state store failure is not caught:
 * it propagates and stops the run (it is never blamed on S3, and no row is marked by it).
 */
export async function copyRow(deps: RowDeps, row: ObjectRow): Promise<RowOutcome> {
  try {
    return await copyHeldRow(deps, row);
  } catch (error) {
    // Fenced out: the row is another worker's now (this one was paused or cut off past its lease).
    if (error instanceof LeaseLostError) return { kind: 'lost' };
    throw error;
  }
}

async function copyHeldRow(deps: RowDeps, row: ObjectRow): Promise<RowOutcome> {
  const { store } = deps;
  const destKey = deps.destKeyOf(row.key);
  // A multipart copy keeps its upload and parts in the state: a later attempt or run resumes it.
  const journal: UploadJournal = {
    recorded: () => store.uploadOf(row.id),
    started: (upload) => store.recordUpload({ ...upload, objectId: row.id }),
    partDone: (part) => store.recordPart(row.id, part),
    forget: () => store.forgetUpload(row.id),
    // Before completing an upload: still this worker's, with time to spare (else another may take it over).
    assertHeld: async () => {
      if (!(await store.holdsLease(row.id, deps.leaseMarginMs))) throw new LeaseLostError(row.id);
    },
  };
  let counts: AttemptCounts = { counted: 0, throttled: 0 };
  let attempts = 0;
  for (;;) {
    attempts += 1;
    let failure: unknown;
    let result: CopyResult | undefined;
    try {
      result = await transferObject(
        deps.transfer,
        { sourceKey: row.key, destKey, size: row.size, etag: row.etag, journal },
        deps.signal,
      );
    } catch (error) {
      failure = error;
    }
    if (result) {
      await store.markDone(row.id, result);
      return { kind: 'done', result, attempts };
    }

    // The state itself failed (recording a part): the run stops, and it is not blamed on S3. A lost
    // lease ends this row's turn here.
    if (failure instanceof StateStoreError || failure instanceof LeaseLostError) throw failure;
    // Stopped: aborted, or (first Ctrl+C) a multipart copy between parts, its upload kept for the next run.
    if (deps.signal.aborted || failure instanceof TransferStoppedError) {
      await store.markPending(row.id, true);
      return { kind: 'left-pending' };
    }
    const classified = classifyError(failure);
    const side = sideOf(failure);
    if (failure instanceof SourceChangedError || (side === 'source' && classified.code === 'PreconditionFailed')) {
      const reason =
        failure instanceof SourceChangedError ? failure.message : 'the source object changed since the catalog (If-Match refused)';
      await store.markChanged(row.id, reason);
      return { kind: 'changed', reason };
    }
    if (side === 'source' && classified.kind === 'not-found') {
      await store.markGone(row.id);
      return { kind: 'gone' };
    }
    if (deps.dooms(classified)) {
      await store.markPending(row.id, true);
      return { kind: 'doomed', error: failure };
    }
    const message = failure instanceof NoEvidenceError ? `destination: ${failure.message}` : describe(failure, classified);
    const detail: FailureDetail = { errorCode: classified.code, side: side === 'source' ? 'source' : 'destination' };
    if (classified.kind === 'throttled') deps.onThrottled();
    const decision = failure instanceof NoEvidenceError ? { action: 'give-up' as const, counts } : afterFailure(classified, counts, deps.retry);
    counts = decision.counts;
    if (decision.action === 'give-up') {
      await store.markFailed(row.id, message);
      return { kind: 'failed', error: message, attempts, ...detail };
    }
    deps.onRetry(row, attempts, message, decision.delayMs, detail);
    await sleep(decision.delayMs, deps.signal);
    if (deps.signal.aborted) {
      await store.markPending(row.id, true);
      return { kind: 'left-pending' };
    }
    await store.recordRetry(row.id, message);
  }
}
