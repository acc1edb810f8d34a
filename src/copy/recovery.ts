import pLimit from 'p-limit';
import type { S3Bucket } from '../s3/bucket.js';
import type { StateStore } from '../state/store.js';
import type { ObjectRow } from '../state/types.js';
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
 * Rows a crashed run left in flight. Each is done only on the evidence rule (judgeRecovery: the
 * destination object carries the source's own ETag, same size, unencrypted); anything else, a stale or
 * unrelated object of the same size included, goes back to pending and is copied again. Then the
 * multipart uploads a killed run could not abort are aborted, so no orphaned parts keep costing money.
 */
export async function recoverInFlight(options: RecoveryOptions): Promise<{ rows: number; done: number }> {
  const { store, dest } = options;
  const rows = await store.inFlightRows();
  if (rows.length === 0) return { rows: 0, done: 0 };
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
        const judgement = judgeRecovery(row, head);
        if (judgement.verdict === 'proven') {
          await store.markDone(row.id, { destKey, destEtag: judgement.destEtag, evidence: judgement.evidence });
          done += 1;
        } else {
          await store.markPending(row.id, true);
        }
        await abortOrphanUploads(dest, row, destKey);
      }),
    ),
  );
  return { rows: rows.length, done };
}

/**
 * Aborts the open multipart uploads at a row's destination key. Whatever the threshold of the run that
 * started them, an object of at most one minimum part was never uploaded in parts. Servers without
 * ListMultipartUploads (s3rver answers 501) are skipped quietly; the bucket's lifecycle rule is the fallback.
 */
async function abortOrphanUploads(dest: S3Bucket, row: ObjectRow, destKey: string): Promise<void> {
  if (row.size <= MIN_PART_SIZE) return;
  try {
    for (const upload of await dest.listUploads(destKey)) {
      if (upload.key === destKey) await dest.abortUpload(destKey, upload.uploadId);
    }
  } catch {
    // Not supported or not permitted.
  }
}
