import type { Evidence } from '../state/types.js';

/** Which side an error came from, as logs name it. */
export type ErrorSide = 'source' | 'destination';

/** What the copy engine reports; src/progress renders it. */
export type CopyEvent =
  | { type: 'recovering'; rows: number }
  | { type: 'recovered'; done: number; pending: number }
  | {
      type: 'start';
      /** This run's row in the state's runs table. */
      runId: number;
      objectsTotal: number;
      bytesTotal: number;
      objectsAlreadyDone: number;
      bytesAlreadyDone: number;
    }
  | {
      type: 'object-done';
      key: string;
      size: number;
      destKey: string;
      evidence: Evidence;
      /** Attempts this run made at the object, the successful one and throttled ones included. */
      attempts: number;
      /** From the row's turn to its done mark, retries and their backoff included. */
      durationMs: number;
    }
  | {
      type: 'object-retry';
      key: string;
      /** The attempt that failed (1 for the first). */
      attempt: number;
      error: string;
      /** The S3 error code (SlowDown, InternalError), a network errno, or an integrity code (TruncatedBody). */
      errorCode: string;
      side: ErrorSide;
      delayMs: number;
    }
  | {
      type: 'object-failed';
      key: string;
      size: number;
      error: string;
      errorCode: string;
      side: ErrorSide;
      attempts: number;
      durationMs: number;
    }
  /** The source object differs from the catalog: not copied; `catalog` again reconciles it. */
  | { type: 'object-changed'; key: string; size: number; reason: string }
  /** The source key vanished since the catalog. */
  | { type: 'object-gone'; key: string; size: number }
  /** A row this run does not copy (e.g. an archive storage class); no emitter yet. */
  | { type: 'object-skipped'; key: string; size: number; reason: string }
  /** This worker's lease on the row expired and another worker took it: nothing more is written for it here. */
  | { type: 'lease-lost'; key: string }
  /** The destination refused to copy from the source itself: the run streams from now on. */
  | { type: 'server-side-refused'; reason: string }
  /** A recorded multipart upload could not be resumed and starts over (`key` is the destination key). */
  | { type: 'upload-restarted'; key: string; reason: string }
  | { type: 'throttled'; concurrency: number }
  | { type: 'stopping'; mode: 'drain' | 'abort' }
  | { type: 'finish'; stats: CopyStats };

export interface CopyStats {
  objectsTotal: number;
  bytesTotal: number;
  objectsDone: number;
  bytesDone: number;
  objectsFailed: number;
  /** Objects this run found changed at the source, or gone from it. */
  objectsChanged: number;
  objectsGone: number;
  /** Objects and bytes this run copied (the totals above include earlier runs). */
  objectsCopied: number;
  bytesCopied: number;
  inFlight: number;
  /** Bytes read from the source so far, including partial objects (for throughput). */
  bytesTransferred: number;
  concurrency: number;
  elapsedMs: number;
}
