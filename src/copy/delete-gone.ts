/**
 * `copy --delete-gone`: deletes from the destination the copies of objects that vanished from the source,
 * and only those s3migrate wrote. A candidate is a `gone` row that was copied (done, with the ETag the
 * destination gave our write). Before each DeleteObject, a HeadObject must show that very ETag: an object
 * someone wrote or changed at that key since is left alone and reported, as is a key already empty. Each
 * deletion is recorded (row `deleted`, deleted_at). `maxDelete` stops everything before the first
 * deletion when there are more candidates than it allows. Candidates are checked and deleted
 * `concurrency` at a time (the copy's --concurrency), each one's HeadObject right before its own
 * DeleteObject: one at a time, a delta of 100,000 deletions was 200,000 round trips end to end.
 */
import pLimit from 'p-limit';
import { DeleteLimitError } from '../errors.js';
import type { ObjectFilter } from '../filter/object-filter.js';
import type { S3Bucket } from '../s3/bucket.js';
import { sameEtag } from '../s3/etag.js';
import type { StateStore } from '../state/store.js';
import type { DeletionCandidate } from '../state/types.js';

export type DeleteEvent =
  | { type: 'deleted'; key: string; destKey: string; size: number }
  | { type: 'left-alone'; key: string; destKey: string; reason: string };

export interface DeleteGoneResult {
  deleted: number;
  bytesDeleted: number;
  leftAlone: number;
}

/** The candidates, refused whole when there are more than `maxDelete`. */
export async function deletionPlan(store: StateStore, filter: ObjectFilter | undefined, maxDelete: number | undefined): Promise<DeletionCandidate[]> {
  const candidates = await store.deletionCandidates(filter);
  if (maxDelete !== undefined && candidates.length > maxDelete) {
    throw new DeleteLimitError(
      `--delete-gone would delete ${candidates.length} objects from the destination, more than --max-delete ${maxDelete}: ` +
        'nothing was copied or deleted. Check them (`s3migrate plan --delete-gone` lists them), then raise --max-delete.',
    );
  }
  return candidates;
}

/** Candidates checked and deleted at once when the caller does not say. */
const DELETE_CONCURRENCY = 16;

export async function deleteGone(options: {
  store: StateStore;
  dest: S3Bucket;
  candidates: readonly DeletionCandidate[];
  signal?: AbortSignal;
  onEvent?: (event: DeleteEvent) => void;
  /** Candidates at once (default DELETE_CONCURRENCY). */
  concurrency?: number;
}): Promise<DeleteGoneResult> {
  const result: DeleteGoneResult = { deleted: 0, bytesDeleted: 0, leftAlone: 0 };
  const limit = pLimit(Math.max(1, options.concurrency ?? DELETE_CONCURRENCY));
  // The first failure stops candidates not started yet; those in flight end (each recorded), then it is thrown.
  let failure: { error: unknown } | undefined;
  const deleteOne = async (row: DeletionCandidate): Promise<void> => {
    if (options.signal?.aborted || failure !== undefined) return;
    try {
      const head = await options.dest.head(row.destKey, options.signal);
      let reason: string | undefined;
      if (head === undefined) reason = 'not deleted: the destination has no object at this key any more';
      else if (!sameEtag(head.etag, row.destEtag)) {
        reason = `not deleted: the destination object has ETag ${head.etag ?? '(none)'}, not the ${row.destEtag} s3migrate wrote (written or changed by someone else since)`;
      }
      if (reason !== undefined) {
        await options.store.noteNotDeleted(row.id, reason);
        result.leftAlone += 1;
        options.onEvent?.({ type: 'left-alone', key: row.key, destKey: row.destKey, reason });
        return;
      }
      await options.dest.delete(row.destKey, options.signal);
      await options.store.markDeleted(row.id);
      result.deleted += 1;
      result.bytesDeleted += row.size;
      options.onEvent?.({ type: 'deleted', key: row.key, destKey: row.destKey, size: row.size });
    } catch (error) {
      failure ??= { error };
    }
  };
  await Promise.all(options.candidates.map((row) => limit(() => deleteOne(row))));
  if (failure !== undefined) throw failure.error;
  return result;
}
