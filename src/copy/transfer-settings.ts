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
   * How writes go: streamed, or buffered (each single PUT, and each multipart part, read whole and hashed
   * first, so that it carries a Content-MD5). Buffered from the start when the destination is known to
   * encrypt with SSE-C or SSE-KMS (its ETags are not MD5s: see S3Bucket.writesOpaqueEtags); switched to
   * buffered for the rest of the run when an encrypted answer shows it (a bucket's default encryption).
   */
  singlePuts: { buffered: boolean };
  /**
   * Whether the destination refuses a bad Content-MD5 on PutObject and UploadPart (probed once, only when
   * an encrypted answer needs it).
   */
  contentMd5Checked: () => Promise<boolean>;
  /** Tags and storage class (absent: tags copied where the source reports them, the destination's default class). */
  fidelity?: Fidelity;
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

/** --tags: copy (asked only where the source reports tags), always (asked for every object), none. */
export type TagsMode = 'copy' | 'always' | 'none';

/** What travels with an object besides its bytes, headers and user metadata (README: Object fidelity). */
export interface Fidelity {
  /**
   * copy: GetObjectTagging only for objects whose GET (or HEAD) reports tags (x-amz-tagging-count), so
   * untagged objects cost no request; always: for every object (servers that do not report the count);
   * none: no tags written.
   */
  tags: TagsMode;
  /** The class of every object written; `keep`: the source object's own; absent: the destination's default. */
  storageClass?: string;
  /** Where a probe write may go (the destination prefix), to tell a refused storage class from other refusals. */
  probePrefix: string;
  /** Probes made, by storage class (one per class and run). */
  storageClassProbes?: Map<string, Promise<boolean | undefined>>;
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
