import { classifyError, type ClassifiedError } from '../s3/errors.js';
import { sideOf } from '../s3/side.js';
import type { StateStore } from '../state/store.js';
import type { CopyResult, ObjectRow } from '../state/types.js';
import { sleep } from './backoff.js';
import { StateStoreError } from '../state/store.js';
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
  onRetry: (row: ObjectRow, attempt: number, error: string, delayMs: number) => void;
}

/** How one row's turn ended; the row is marked accordingly before this is returned. */
export type RowOutcome =
  | { kind: 'done'; result: CopyResult }
  | { kind: 'failed'; error: string }
  | { kind: 'changed'; reason: string }
  | { kind: 'gone' }
  /** Aborted (second Ctrl+C): back to pending, the attempt refunded. */
  | { kind: 'left-pending' }
  /** An error that dooms the run: the row went back to pending; the caller stops the run with `error`. */
  | { kind: 'doomed'; error: unknown };

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
  const { store } = deps;
  const destKey = deps.destKeyOf(row.key);
  // A multipart copy keeps its upload and parts in the state: a later attempt or run resumes it.
  const journal: UploadJournal = {
    recorded: () => store.uploadOf(row.id),
    started: (upload) => store.recordUpload({ ...upload, objectId: row.id }),
    partDone: (part) => store.recordPart(row.id, part),
    forget: () => store.forgetUpload(row.id),
  };
  let counts: AttemptCounts = { counted: 0, throttled: 0 };
  for (;;) {
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
      return { kind: 'done', result };
    }

    // The state itself failed (recording a part): the run stops, and it is not blamed on S3.
    if (failure instanceof StateStoreError) throw failure;
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
    if (classified.kind === 'throttled') deps.onThrottled();
    const decision = failure instanceof NoEvidenceError ? { action: 'give-up' as const, counts } : afterFailure(classified, counts, deps.retry);
    counts = decision.counts;
    if (decision.action === 'give-up') {
      await store.markFailed(row.id, message);
      return { kind: 'failed', error: message };
    }
    deps.onRetry(row, counts.counted + counts.throttled, message, decision.delayMs);
    await sleep(decision.delayMs, deps.signal);
    if (deps.signal.aborted) {
      await store.markPending(row.id, true);
      return { kind: 'left-pending' };
    }
    await store.recordRetry(row.id, message);
  }
}
