import type { S3Bucket } from '../s3/bucket.js';
import { classifyError } from '../s3/errors.js';
import type { StateStore } from '../state/store.js';
import { mapKey } from './key-mapping.js';

export interface AbortUploadsOptions {
  store: StateStore;
  dest: S3Bucket;
  sourcePrefix: string;
  destPrefix: string;
  signal?: AbortSignal;
}

export interface AbortUploadsReport {
  /** Recorded uploads aborted (or already gone at the destination), and forgotten. */
  recorded: number;
  /** Uploads at our destination keys that no row would resume, found by listing, aborted. */
  unrecorded: number;
  /** The destination could not list its uploads (s3rver cannot): unrecorded ones were not looked for. */
  listingUnsupported: boolean;
  /** Uploads that could not be aborted, with why. */
  failed: Array<{ key: string; uploadId: string; error: string }>;
}

/**
 * Aborts the multipart uploads s3migrate keeps for resumption (the rows stay pending: their next copy
 * starts over), and any other open upload at one of our destination keys, so nothing costs money forever.
 * Uploads at keys that are not ours are left alone.
 */
export async function abortUploads(options: AbortUploadsOptions): Promise<AbortUploadsReport> {
  const { store, dest } = options;
  const report: AbortUploadsReport = { recorded: 0, unrecorded: 0, listingUnsupported: false, failed: [] };
  const recorded = await store.recordedUploads();
  const abort = async (key: string, uploadId: string): Promise<boolean> => {
    try {
      await dest.abortUpload(key, uploadId);
      return true;
    } catch (error) {
      const classified = classifyError(error);
      if (classified.code === 'NoSuchUpload') return true; // already gone
      report.failed.push({ key, uploadId, error: classified.description });
      return false;
    }
  };
  for (const upload of recorded) {
    if (await abort(upload.destKey, upload.uploadId)) {
      await store.forgetUpload(upload.objectId);
      report.recorded += 1;
    }
  }

  let listed: Array<{ key: string; uploadId: string }>;
  try {
    listed = await dest.listUploads(options.destPrefix, options.signal);
  } catch {
    report.listingUnsupported = true;
    return report;
  }
  const known = new Set(recorded.map((upload) => upload.uploadId));
  for (const upload of listed) {
    if (known.has(upload.uploadId)) continue;
    // Ours only when the key is one a cataloged row is copied to.
    const sourceKey = options.sourcePrefix + upload.key.slice(options.destPrefix.length);
    if (!upload.key.startsWith(options.destPrefix) || mapKey(sourceKey, options.sourcePrefix, options.destPrefix) !== upload.key) continue;
    if (!(await store.rowByKey(sourceKey))) continue;
    if (await abort(upload.key, upload.uploadId)) report.unrecorded += 1;
  }
  return report;
}
