import pLimit from 'p-limit';
import type { S3Bucket } from '../s3/bucket.js';
import { LeaseLostError, type StateStore } from '../state/store.js';
import type { ObjectRow } from '../state/types.js';
import { multipartEtag } from '../s3/etag.js';
import { judgeRecovery } from './evidence.js';
import { MIN_PART_SIZE } from './part-size.js';

export interface RecoveryOptions {
  store: StateStore;
  dest: S3Bucket;
  destKeyOf: (sourceKey: string) => string;
  concurrency: number;
  signal: AbortSignal;
}

/**
 * Rows left in flight by a worker that is gone (a crash, kill -9, an expired lease): taken over, a batch
 * at a time, and each marked done only on the evidence rule (judgeRecovery: the destination object
 * carries the source's own ETag, or the multipart ETag of the parts its recorded upload sent, same size,
 * unencrypted); anything else, a stale or unrelated object of the same size included, goes back to
 * pending and is copied again. Then the multipart uploads a killed run could not abort are aborted, so
 * no orphaned parts keep costing money (a recorded one is kept: the copy resumes it).
 */
export async function recoverExpired(options: RecoveryOptions, onRows?: (rows: number) => void): Promise<{ rows: number; done: number }> {
  let rows = 0;
  let done = 0;
  for (;;) {
    const batch = await options.store.takeExpired(Math.max(options.concurrency, 64));
    if (batch.length === 0) return { rows, done };
    onRows?.(batch.length);
    rows += batch.length;
    done += await recoverRows(options, batch);
  }
}

async function recoverRows(options: RecoveryOptions, rows: ObjectRow[]): Promise<number> {
  const { store, dest } = options;
  let done = 0;
  const limit = pLimit(options.concurrency);
  await Promise.all(
    rows.map((row) =>
      limit(async () => {
        const destKey = options.destKeyOf(row.key);
        let head;
        try {
          head = await dest.head(destKey, options.signal);
        } catch {
          head = undefined; // not readable: copy it again
        }
        // A recorded upload whose every part was confirmed may have been completed just before the crash.
        const recorded = row.size > MIN_PART_SIZE ? await store.uploadOf(row.id) : undefined;
        const uploadedEtag =
          recorded && recorded.parts.length === recorded.partCount
            ? multipartEtag(recorded.parts.map((part) => Buffer.from(part.md5, 'hex')))
            : undefined;
        const judgement = judgeRecovery(row, head, uploadedEtag);
        try {
          if (judgement.verdict === 'proven') {
            await store.markDone(row.id, {
              destKey,
              destEtag: judgement.destEtag,
              evidence: judgement.evidence,
              completedUpload: recorded !== undefined,
            });
            done += 1;
          } else {
            // Pending again; its recorded upload (if any) is resumed by the copy.
            await store.markPending(row.id, true);
          }
        } catch (error) {
          if (error instanceof LeaseLostError) return; // another worker took it meanwhile: its now
          throw error;
        }
        await abortOrphanUploads(dest, row, destKey, recorded?.uploadId);
      }),
    ),
  );
  return done;
}

/**
 * Aborts the open multipart uploads at a row's destination key that no record will resume (a recorded
 * one is kept: the copy continues it). Whatever the threshold of the run that started them, an object of
 * at most one minimum part was never uploaded in parts. Servers without ListMultipartUploads (s3rver
 * answers 501) are skipped quietly; the bucket's lifecycle rule is the fallback.
 */
async function abortOrphanUploads(dest: S3Bucket, row: ObjectRow, destKey: string, keep: string | undefined): Promise<void> {
  if (row.size <= MIN_PART_SIZE) return;
  try {
    for (const upload of await dest.listUploads(destKey)) {
      if (upload.key === destKey && upload.uploadId !== keep) await dest.abortUpload(destKey, upload.uploadId);
    }
  } catch {
    // Not supported or not permitted.
  }
}

/**
 * Kept uploads of objects this run copies with one PUT (its --multipart-threshold is above their size)
 * would never be resumed: they are aborted and forgotten, so that nothing costs money forever.
 */
export async function releaseUnfitUploads(store: StateStore, dest: S3Bucket, multipartThreshold: number): Promise<number> {
  let released = 0;
  for (const upload of await store.recordedUploads()) {
    if (upload.size > multipartThreshold) continue;
    try {
      // Forgotten first: an upload another worker is resuming right now stays (LeaseLostError).
      await store.forgetUpload(upload.objectId);
    } catch (error) {
      if (error instanceof LeaseLostError) continue;
      throw error;
    }
    await dest.abortUpload(upload.destKey, upload.uploadId).catch(() => undefined);
    released += 1;
  }
  return released;
}
