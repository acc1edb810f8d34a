/** What the copy engine reports; src/progress renders it. */
export type CopyEvent =
  | { type: 'recovering'; rows: number }
  | { type: 'recovered'; done: number; pending: number }
  | { type: 'start'; objectsTotal: number; bytesTotal: number; objectsAlreadyDone: number; bytesAlreadyDone: number }
  | { type: 'object-done'; key: string; size: number }
  | { type: 'object-retry'; key: string; attempt: number; error: string; delayMs: number }
  | { type: 'object-failed'; key: string; error: string }
  | { type: 'throttled'; concurrency: number }
  | { type: 'stopping'; mode: 'drain' | 'abort' }
  | { type: 'finish'; stats: CopyStats };

export interface CopyStats {
  objectsTotal: number;
  bytesTotal: number;
  objectsDone: number;
  bytesDone: number;
  objectsFailed: number;
  /** Objects and bytes this run copied (the totals above include earlier runs). */
  objectsCopied: number;
  bytesCopied: number;
  inFlight: number;
  /** Bytes read from the source so far, including partial objects (for throughput). */
  bytesTransferred: number;
  concurrency: number;
  elapsedMs: number;
}
