/** What the copy engine reports; src/progress renders it. */
export type CopyEvent =
  | { type: 'recovering'; rows: number }
  | { type: 'recovered'; done: number; pending: number }
  | { type: 'start'; objectsTotal: number; bytesTotal: number; objectsAlreadyDone: number; bytesAlreadyDone: number }
  | { type: 'object-done'; key: string; size: number }
  | { type: 'object-retry'; key: string; attempt: number; error: string; delayMs: number }
  | { type: 'object-failed'; key: string; error: string }
  /** The source object differs from the catalog: not copied; `catalog` again reconciles it. */
  | { type: 'object-changed'; key: string; reason: string }
  /** The source key vanished since the catalog. */
  | { type: 'object-gone'; key: string }
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
