import { pipeline } from 'node:stream/promises';
import type { Tag } from '@aws-sdk/client-s3';
import type { SourceObject, WriteAnswer } from '../s3/bucket.js';
import { classifyError, isRetryable } from '../s3/errors.js';
import { isPlainMd5, multipartEtag, normalizeEtag, sameEtag } from '../s3/etag.js';
import { sideOf, tagSide } from '../s3/side.js';
import type { CopyResult, RecordedPart } from '../state/types.js';
import { backoffDelay, sleep } from './backoff.js';
import { checksumHint, confirmWrite } from './confirm-write.js';
import { judgePart } from './evidence.js';
import { HashingStream, IntegrityError, SourceChangedError, TransferStoppedError } from './integrity.js';
import { objectWrite, refusingStorageClass, sourceTags, type SourceReport } from './object-write.js';
import { partLayout, partSizeFor, type PartRange } from './part-size.js';
import { openSource } from './source-read.js';
import type { TransferJob, TransferSettings } from './transfer-settings.js';

/** Attempts per part within one attempt of the object: a failed part is retried alone, with a fresh ranged read. */
const PART_ATTEMPTS = 3;

/** The upload being built: its id and the parts the destination confirmed, by part number. */
interface Upload {
  uploadId: string;
  parts: Map<number, RecordedPart>;
  /** The source's own MD5 (a plain, unencrypted source ETag), once a part read has told. */
  sourceMd5?: string;
  /** What the first part read of this attempt said of the object (tag count, storage class). */
  report?: SourceReport;
  /** The tags the upload was created with (null: none); undefined for an upload resumed from an earlier attempt. */
  tags?: readonly Tag[] | null;
  /** A part of this attempt went without Content-MD5 (streamed): its destination answer was an MD5 ETag. */
  streamedParts?: boolean;
}

/**
 * A part streamed without Content-MD5 got an encrypted answer (the bucket encrypts by default): its ETag
 * proves nothing, so it is not recorded; writes are buffered from now on and the part goes again with
 * Content-MD5. So every recorded part of an encrypted upload was sent with its Content-MD5.
 */
class OpaquePartError extends Error {
  constructor() {
    super('an encrypted destination answered a part sent without Content-MD5');
    this.name = 'OpaquePart';
  }
}

const isNoSuchUpload = (error: unknown): boolean => classifyError(error).code === 'NoSuchUpload';

/**
 * The part pipeline: each part is read with its own ranged GetObject (If-Match on the cataloged ETag,
 * and the answer's ETag and total size checked, so an object that changes mid-copy is never stitched
 * from two versions) and streamed, hashed on the way, into its UploadPart with a known Content-Length.
 * `partConcurrency` parts are in flight; memory is their stream buffers, not whole parts. Each part's
 * ETag is checked against its MD5 and recorded in the job's journal as it completes, and the completed
 * object's ETag is checked against the multipart ETag of the parts. Where the destination's ETags are
 * not MD5s (SSE-C, SSE-KMS: `settings.singlePuts.buffered`), each part is read whole and hashed first and
 * goes with its Content-MD5, so that a server proven to check it gives `content-md5` evidence.
 *
 * Tags and storage class go with CreateMultipartUpload; tags are set again once the upload is complete
 * (PutObjectTagging), since Ceph RGW 16 ignores them on CreateMultipartUpload, and a resumed upload may
 * have been created by an earlier attempt.
 *
 * Resumption: an upload recorded by an earlier attempt or run, for the same source version and layout,
 * is continued: only the parts not recorded (or not listed by the destination, where it lists parts) are
 * sent. An upload that is gone starts over, and says so. Stops keep the upload: after the first Ctrl+C
 * no new part starts (TransferStoppedError once the parts in flight finished); a cancelled run leaves
 * its in-flight parts unrecorded. Failures keep it too (the next attempt resumes it), except those that
 * make it useless: a changed source, or a completed object that does not check out.
 */
export async function copyMultipart(settings: TransferSettings, job: TransferJob, signal: AbortSignal): Promise<CopyResult> {
  const layout = partLayout(job.size, partSizeFor(job.size, settings.partSize));
  for (let restarts = 0; ; restarts += 1) {
    try {
      return await copyParts(settings, job, layout, signal);
    } catch (error) {
      // The destination no longer has the upload (expired, aborted behind our back), or refuses to
      // complete a resumed one we sent nothing to (already completed by a run killed before its done
      // mark; some servers answer that with an error of their own): start over, once.
      const stale = error instanceof StaleUploadError;
      if ((!isNoSuchUpload(error) && !stale) || signal.aborted || restarts > 0) throw stale ? error.cause : error;
      await job.journal?.forget();
      settings.onUploadRestart?.(
        job.destKey,
        stale
          ? 'the destination refused to complete the upload (it may have been completed already)'
          : 'the destination no longer has the upload (expired or aborted)',
      );
    }
  }
}

async function copyParts(settings: TransferSettings, job: TransferJob, layout: PartRange[], signal: AbortSignal): Promise<CopyResult> {
  const controller = new AbortController();
  const cancel = (): void => controller.abort();
  signal.addEventListener('abort', cancel, { once: true });
  if (signal.aborted) cancel();
  const own = controller.signal;
  let first: SourceObject | undefined;
  let upload: Upload | undefined;
  let completed = false;
  // An upload this attempt created and has not recorded (or has no journal to record it in): nobody could
  // resume it, so a failure (a lost lease among them) aborts it rather than leaving it open at the destination.
  let unrecorded: string | undefined;
  try {
    upload = await resumable(settings, job, layout, own);
    if (!upload) {
      // Part 1 is opened first: it checks the source and brings the headers the upload is created with.
      first = await openPart(settings, job, layout[0]!, own);
      const opened = first;
      const write = await objectWrite(settings, job, opened, own);
      const uploadId = await refusingStorageClass(settings, write.storageClass, () =>
        settings.dest.createUpload(job.destKey, opened.headers, write, own),
      );
      unrecorded = uploadId;
      upload = { uploadId, parts: new Map(), sourceMd5: sourceMd5Of(first), report: first, tags: write.tags ?? null };
      await job.journal?.started({
        destKey: job.destKey,
        uploadId,
        sourceEtag: job.etag,
        size: job.size,
        partSize: layout[0]!.length,
        partCount: layout.length,
      });
      if (job.journal) unrecorded = undefined;
    }
    const current = upload;
    const missing = layout.filter((part) => !current.parts.has(part.number));
    let next = 0;
    let failure: unknown;
    let stopped = false;
    const worker = async (): Promise<void> => {
      while (next < missing.length && failure === undefined && !own.aborted) {
        // After the first Ctrl+C the parts in flight finish, and no new one starts.
        if (settings.draining()) {
          stopped = true;
          return;
        }
        const part = missing[next++]!;
        const opened = part.number === 1 && first ? first : undefined;
        if (opened) first = undefined;
        const sent = await sendPart(settings, job, current, part, opened, own);
        current.parts.set(part.number, sent);
        await job.journal?.partDone(sent);
      }
    };
    const workers = Array.from({ length: Math.min(settings.partConcurrency, Math.max(missing.length, 1)) }, () =>
      worker().catch((error: unknown) => {
        failure ??= error;
        controller.abort(); // the other parts stop; all settle before anything else is decided
      }),
    );
    await Promise.all(workers);
    if (failure !== undefined) throw failure;
    if (own.aborted) throw Object.assign(new Error('transfer aborted'), { name: 'AbortError' });
    if (stopped && current.parts.size < layout.length) throw new TransferStoppedError();

    const parts = layout.map((part) => current.parts.get(part.number)!);
    // Fencing: a worker whose lease ran out (paused, cut off) must not complete an upload it lost.
    await job.journal?.assertHeld?.();
    let answer;
    try {
      answer = await settings.dest.completeUpload(
        job.destKey,
        current.uploadId,
        parts.map((part) => ({ partNumber: part.partNumber, etag: part.etag })),
        own,
      );
    } catch (error) {
      const throttled = classifyError(error).kind === 'throttled';
      if (missing.length === 0 && !own.aborted && !throttled && !isNoSuchUpload(error)) throw new StaleUploadError(error);
      throw error;
    }
    completed = true;
    const result = await confirmWrite(
      settings,
      job.destKey,
      {
        size: job.size,
        md5: current.sourceMd5 ?? (isPlainMd5(job.etag) ? normalizeEtag(job.etag) : undefined),
        multipartEtag: multipartEtag(parts.map((part) => Buffer.from(part.md5, 'hex'))),
        partsProven: parts.every((part) => normalizeEtag(part.etag) === part.md5),
        // Every part of an encrypted upload went with its Content-MD5 (see OpaquePartError).
        contentMd5Sent: !current.streamedParts,
      },
      answer,
      own,
    );
    const tags = current.tags !== undefined ? current.tags : await sourceTags(settings, job, current.report, own);
    if (tags) await settings.dest.putTags(job.destKey, tags, own);
    return { ...result, completedUpload: true };
  } catch (error) {
    controller.abort();
    first?.body.destroy();
    if (unrecorded !== undefined) {
      await settings.dest.abortUpload(job.destKey, unrecorded).catch(() => undefined);
    } else if (upload && !completed && discards(error)) {
      // Useless now: parts of another version of the source. Abort it (not tied to the run's signal).
      await settings.dest.abortUpload(job.destKey, upload.uploadId).catch(() => undefined);
      await job.journal?.forget();
    } else if (completed && error instanceof IntegrityError) {
      await job.journal?.forget(); // completed into something that does not check out: nothing to resume
    }
    throw error;
  } finally {
    signal.removeEventListener('abort', cancel);
  }
}

/** A resumed upload, all of whose parts were recorded, that the destination would not complete. */
class StaleUploadError extends Error {
  constructor(override readonly cause: unknown) {
    super('the destination refused to complete a resumed upload');
    this.name = 'StaleUpload';
  }
}

/** Errors after which an open upload cannot be continued (its parts are of another source version): aborted. */
function discards(error: unknown): boolean {
  return error instanceof SourceChangedError || (sideOf(error) === 'source' && classifyError(error).code === 'PreconditionFailed');
}

/**
 * The recorded upload to continue, with the parts the destination still holds; undefined when there is
 * none, or when the record does not fit this copy (another source version, key or layout: that upload is
 * aborted and forgotten).
 */
async function resumable(settings: TransferSettings, job: TransferJob, layout: PartRange[], signal: AbortSignal): Promise<Upload | undefined> {
  const recorded = await job.journal?.recorded();
  if (!recorded) return undefined;
  const fits =
    recorded.destKey === job.destKey &&
    recorded.size === job.size &&
    sameEtag(recorded.sourceEtag, job.etag) &&
    recorded.partSize === layout[0]!.length &&
    recorded.partCount === layout.length;
  if (!fits) {
    await settings.dest.abortUpload(recorded.destKey, recorded.uploadId).catch(() => undefined);
    await job.journal!.forget();
    settings.onUploadRestart?.(job.destKey, 'the recorded upload was made for another version or layout of the object');
    return undefined;
  }
  let listed: Array<{ partNumber: number; etag: string; size: number }> | undefined;
  try {
    listed = await settings.dest.listParts(job.destKey, recorded.uploadId, signal);
  } catch (error) {
    if (!isNoSuchUpload(error)) throw error;
    await job.journal!.forget();
    settings.onUploadRestart?.(job.destKey, 'the destination no longer has the upload (expired or aborted)');
    return undefined;
  }
  // Where the destination lists its parts, only those it holds with the recorded ETag count as sent.
  const held = listed && new Map(listed.map((part) => [part.partNumber, normalizeEtag(part.etag)]));
  const parts = new Map<number, RecordedPart>();
  for (const part of recorded.parts) {
    const expected = layout[part.partNumber - 1];
    if (!expected || expected.length !== part.size) continue;
    if (held && held.get(part.partNumber) !== normalizeEtag(part.etag)) continue;
    parts.set(part.partNumber, part);
  }
  return { uploadId: recorded.uploadId, parts };
}

function sourceMd5Of(got: SourceObject): string | undefined {
  // A plain, unencrypted source ETag is the MD5 of the whole object: where the destination answers with
  // a whole-object MD5 (s3rver), the source's own MD5 is what it must equal.
  return isPlainMd5(got.etag) && !got.encrypted ? normalizeEtag(got.etag) : undefined;
}

function openPart(settings: TransferSettings, job: TransferJob, part: PartRange, signal: AbortSignal): Promise<SourceObject> {
  return openSource(settings, job, { range: { start: part.start, end: part.start + part.length - 1 }, signal });
}

/** One part, retried alone on transient failures with a fresh ranged read. */
async function sendPart(
  settings: TransferSettings,
  job: TransferJob,
  upload: Upload,
  part: PartRange,
  opened: SourceObject | undefined,
  signal: AbortSignal,
): Promise<RecordedPart> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      const got = opened ?? (await openPart(settings, job, part, signal));
      opened = undefined;
      upload.sourceMd5 ??= sourceMd5Of(got);
      upload.report ??= got;
      if (settings.singlePuts.buffered) return await uploadBufferedPart(settings, job, upload.uploadId, part, got, signal);
      const sent = await uploadPart(settings, job, upload.uploadId, part, got, signal);
      upload.streamedParts = true;
      return sent;
    } catch (error) {
      opened?.body.destroy();
      opened = undefined;
      if (error instanceof OpaquePartError) {
        // Not an attempt of its own: the same part again, buffered with its Content-MD5.
        settings.singlePuts.buffered = true;
        attempt -= 1;
        continue;
      }
      if (signal.aborted || error instanceof SourceChangedError || isNoSuchUpload(error)) throw error;
      if (!isRetryable(classifyError(error).kind) || attempt >= PART_ATTEMPTS) throw error;
      await sleep(backoffDelay(attempt, { baseMs: settings.retryBaseMs, capMs: 5_000 }), signal);
    }
  }
}

/** A ranged read whose Content-Length is not the part's: refused before any byte is sent on. */
function checkPartLength(got: SourceObject, part: PartRange): void {
  if (got.contentLength !== undefined && got.contentLength !== part.length) {
    got.body.destroy();
    throw tagSide(
      new IntegrityError('TruncatedBody', `part ${part.number}: the source sent ${got.contentLength} bytes, expected ${part.length}`),
      'source',
    );
  }
}

async function uploadPart(
  settings: TransferSettings,
  job: TransferJob,
  uploadId: string,
  part: PartRange,
  got: SourceObject,
  signal: AbortSignal,
): Promise<RecordedPart> {
  checkPartLength(got, part);
  // Exactly the part's length must arrive; the last bytes are held back until it did, so a short read
  // never completes the part's body.
  const hasher = new HashingStream({ expectedSize: part.length, wholeMd5: true, onBytes: settings.onBytes });
  // The upload gets its own signal: a failed source read must cancel it, or the streamed UploadPart
  // would wait for the rest of its Content-Length until the socket times out.
  const write = new AbortController();
  const cancelWrite = (): void => write.abort();
  signal.addEventListener('abort', cancelWrite, { once: true });
  let sourceError: unknown;
  const reading = pipeline(got.body, hasher).catch((error: unknown) => {
    sourceError = tagSide(error, 'source');
    write.abort();
  });
  try {
    const answer = await settings.dest.uploadPart(job.destKey, uploadId, part.number, hasher, {
      contentLength: part.length,
      signal: write.signal,
    });
    await reading;
    if (sourceError !== undefined) throw sourceError;
    if (answer.encrypted) throw new OpaquePartError();
    return judgedPart(settings, part, hasher.md5!, answer);
  } catch (error) {
    // Only a source failure that came first counts as the cause: destroying the source below makes an
    // error of its own, which must not hide the destination's (NoSuchUpload, say).
    const early = sourceError;
    got.body.destroy();
    hasher.destroy();
    await reading;
    throw early ?? error;
  } finally {
    signal.removeEventListener('abort', cancelWrite);
  }
}

/** A part's destination answer against the MD5 of its bytes: recorded, or an IntegrityError. */
function judgedPart(settings: TransferSettings, part: PartRange, md5: string, answer: WriteAnswer): RecordedPart {
  const judgement = judgePart(md5, answer);
  if (judgement.verdict === 'mismatch') {
    throw new IntegrityError('IntegrityMismatch', `part ${part.number}: ${judgement.reason}${checksumHint(settings)}`);
  }
  const etag = normalizeEtag(answer.etag);
  if (etag === undefined) throw new IntegrityError('IntegrityMismatch', `part ${part.number}: UploadPart answered without an ETag`);
  return { partNumber: part.number, size: part.length, etag, md5 };
}

/**
 * One part read whole into a buffer (its exact length checked), hashed, then sent with its Content-MD5:
 * for destinations whose ETags are not MD5s, where the server's own check of the digest is the evidence.
 */
async function uploadBufferedPart(
  settings: TransferSettings,
  job: TransferJob,
  uploadId: string,
  part: PartRange,
  got: SourceObject,
  signal: AbortSignal,
): Promise<RecordedPart> {
  checkPartLength(got, part);
  const hasher = new HashingStream({ expectedSize: part.length, wholeMd5: true, onBytes: settings.onBytes });
  const onAbort = (): void => {
    got.body.destroy(Object.assign(new Error('transfer aborted'), { name: 'AbortError' }));
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const bytes = Buffer.allocUnsafe(part.length);
    let filled = 0;
    const reading = pipeline(got.body, hasher);
    reading.catch(() => undefined); // settled below; the loop may throw its error first
    try {
      for await (const chunk of hasher) filled += (chunk as Buffer).copy(bytes, filled);
      await reading;
    } catch (error) {
      throw tagSide(error, 'source');
    }
    const md5 = hasher.md5!;
    const answer = await settings.dest.uploadPart(job.destKey, uploadId, part.number, bytes, {
      contentLength: part.length,
      contentMd5: Buffer.from(md5, 'hex').toString('base64'),
      signal,
    });
    return judgedPart(settings, part, md5, answer);
  } catch (error) {
    got.body.destroy();
    hasher.destroy();
    throw error;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
