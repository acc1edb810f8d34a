import type { S3Bucket } from '../s3/bucket.js';
import type { RecordedPart, RecordedUpload } from '../state/types.js';
import type { CatalogEntry } from './evidence.js';

export interface TransferSettings {
  source: S3Bucket;
  dest: S3Bucket;
  /** Objects up to this size go as one buffered PutObject; larger ones as a multipart upload. */
  multipartThreshold: number;
  partSize: number;
  /** Parts in flight per multipart object. */
  partConcurrency: number;
  /** The destination's checksum mode, to name it when a mismatch looks like the aws-chunked trap. */
  destChecksumMode?: 'when-required' | 'when-supported';
  /**
   * How single PUTs go: streamed, or buffered (hashed first, so the PUT carries a Content-MD5): switched
   * to buffered for the rest of the run when the destination's ETags prove nothing (encrypted answers).
   */
  singlePuts: { buffered: boolean };
  /** Whether the destination refuses a bad Content-MD5 (probed once, only when an encrypted answer needs it). */
  contentMd5Checked: () => Promise<boolean>;
  /** Bytes read from the source, as they flow (for throughput). */
  onBytes?: (bytes: number) => void;
  /** Base of the backoff between attempts of one part. */
  retryBaseMs: number;
  /**
   * Server-side copy (the destination reads the source itself): `mode` as asked, `available` when both
   * sides are the same endpoint; `refused` set (auto mode) once the destination refused it, for the run.
   */
  serverSide: { mode: 'auto' | 'always' | 'never'; available: boolean; refused?: string };
  /** Server-side copy was refused: the run streams from now on. */
  onServerSideRefused?: (reason: string) => void;
  /** True once the run is stopping (first Ctrl+C): a multipart copy starts no new part. */
  draining: () => boolean;
  /** A recorded upload could not be resumed and starts over (gone, or made for another version). */
  onUploadRestart?: (destKey: string, reason: string) => void;
}

/**
 * Where a multipart copy keeps its upload across runs (the state, for one row): the upload it started
 * and each part the destination confirmed, so that a later attempt or run sends only the missing parts.
 */
export interface UploadJournal {
  recorded(): Promise<RecordedUpload | undefined>;
  started(upload: Omit<RecordedUpload, 'objectId' | 'parts' | 'startedAt'>): Promise<void>;
  partDone(part: RecordedPart): Promise<void>;
  forget(): Promise<void>;
  /** Throws LeaseLostError unless this worker still holds the row (checked before CompleteMultipartUpload). */
  assertHeld?(): Promise<void>;
}

/** One object to copy: the catalog's view of it and where it goes. */
export interface TransferJob extends CatalogEntry {
  sourceKey: string;
  destKey: string;
  /** Where a multipart copy records its upload and parts (absent: nothing is kept across attempts). */
  journal?: UploadJournal;
}
