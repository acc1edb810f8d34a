import { pipeline } from 'node:stream/promises';
import type { SourceObject } from '../s3/bucket.js';
import { classifyError, isRetryable } from '../s3/errors.js';
import { isPlainMd5, multipartEtag, normalizeEtag } from '../s3/etag.js';
import { tagSide } from '../s3/side.js';
import type { CopyResult } from '../state/types.js';
import { backoffDelay, sleep } from './backoff.js';
import { judgePart } from './evidence.js';
import { HashingStream, IntegrityError, SourceChangedError } from './integrity.js';
import { partLayout, partSizeFor, type PartRange } from './part-size.js';
import { checksumHint, confirmWrite } from './confirm-write.js';
import { openSource } from './source-read.js';
import type { TransferJob, TransferSettings } from './transfer-settings.js';

/** Attempts per part within one attempt of the object: a failed part is retried alone, with a fresh ranged read. */
const PART_ATTEMPTS = 3;

interface SentPart {
  partNumber: number;
  etag: string;
  /** MD5 of the part's bytes (binary), for the multipart ETag. */
  digest: Buffer;
  /** The part's ETag equalled that MD5. */
  proven: boolean;
}

/**
 * The part pipeline: each part is read with its own ranged GetObject (If-Match on the cataloged ETag,
 * and the answer's ETag and total size checked, so an object that changes mid-copy is never stitched
 * from two versions) and streamed, hashed on the way, into its UploadPart with a known Content-Length.
 * `partConcurrency` parts are in flight; memory is their stream buffers, not whole parts. Each part's
 * ETag is checked against its MD5, and the completed object's against the multipart ETag of the parts.
 * On failure or abort every part request is cancelled and has settled before the upload is aborted, so
 * no part lands after the abort.
 */
export async function copyMultipart(settings: TransferSettings, job: TransferJob, signal: AbortSignal): Promise<CopyResult> {
  const layout = partLayout(job.size, partSizeFor(job.size, settings.partSize));
  const controller = new AbortController();
  const cancel = (): void => controller.abort();
  signal.addEventListener('abort', cancel, { once: true });
  if (signal.aborted) cancel();
  const own = controller.signal;
  // Part 1 is opened first: it checks the source and brings the headers the upload is created with.
  let first: SourceObject | undefined = await openPart(settings, job, layout[0]!, own);
  const firstHeaders = first.headers;
  // A plain, unencrypted source ETag is the MD5 of the whole object: where the destination answers with
  // a whole-object MD5 (s3rver), the source's own MD5 is what it must equal.
  const sourceMd5 = isPlainMd5(first.etag) && !first.encrypted ? normalizeEtag(first.etag) : undefined;
  let uploadId: string | undefined;
  let completed = false;
  try {
    uploadId = await settings.dest.createUpload(job.destKey, firstHeaders, own);
    const sent: SentPart[] = new Array(layout.length);
    let next = 0;
    let failure: unknown;
    const worker = async (): Promise<void> => {
      while (next < layout.length && failure === undefined && !own.aborted) {
        const part = layout[next++]!;
        const opened = part.number === 1 ? first : undefined;
        if (part.number === 1) first = undefined;
        sent[part.number - 1] = await sendPart(settings, job, uploadId!, part, opened, own);
      }
    };
    const workers = Array.from({ length: Math.min(settings.partConcurrency, layout.length) }, () =>
      worker().catch((error: unknown) => {
        failure ??= error;
        controller.abort(); // the other parts stop; all settle before the upload is aborted below
      }),
    );
    await Promise.all(workers);
    if (failure !== undefined) throw failure;
    if (own.aborted) throw Object.assign(new Error('transfer aborted'), { name: 'AbortError' });

    const answer = await settings.dest.completeUpload(
      job.destKey,
      uploadId,
      sent.map((part) => ({ partNumber: part.partNumber, etag: part.etag })),
      own,
    );
    completed = true;
    return await confirmWrite(
      settings,
      job.destKey,
      {
        size: job.size,
        md5: sourceMd5,
        multipartEtag: multipartEtag(sent.map((part) => part.digest)),
        partsProven: sent.every((part) => part.proven),
      },
      answer,
      own,
    );
  } catch (error) {
    controller.abort();
    first?.body.destroy();
    if (uploadId !== undefined && !completed) {
      // Not tied to the run's signal: an aborted run must still abort its upload.
      await settings.dest.abortUpload(job.destKey, uploadId).catch(() => undefined);
    }
    throw error;
  } finally {
    signal.removeEventListener('abort', cancel);
  }
}

function openPart(settings: TransferSettings, job: TransferJob, part: PartRange, signal: AbortSignal): Promise<SourceObject> {
  return openSource(settings, job, { range: { start: part.start, end: part.start + part.length - 1 }, signal });
}

/** One part, retried alone on transient failures with a fresh ranged read. */
async function sendPart(
  settings: TransferSettings,
  job: TransferJob,
  uploadId: string,
  part: PartRange,
  opened: SourceObject | undefined,
  signal: AbortSignal,
): Promise<SentPart> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      const got = opened ?? (await openPart(settings, job, part, signal));
      opened = undefined;
      return await uploadPart(settings, job, uploadId, part, got, signal);
    } catch (error) {
      opened?.body.destroy();
      opened = undefined;
      if (signal.aborted || error instanceof SourceChangedError) throw error;
      if (!isRetryable(classifyError(error).kind) || attempt >= PART_ATTEMPTS) throw error;
      await sleep(backoffDelay(attempt, { baseMs: settings.retryBaseMs, capMs: 5_000 }), signal);
    }
  }
}

async function uploadPart(
  settings: TransferSettings,
  job: TransferJob,
  uploadId: string,
  part: PartRange,
  got: SourceObject,
  signal: AbortSignal,
): Promise<SentPart> {
  if (got.contentLength !== undefined && got.contentLength !== part.length) {
    got.body.destroy();
    throw tagSide(
      new IntegrityError('TruncatedBody', `part ${part.number}: the source sent ${got.contentLength} bytes, expected ${part.length}`),
      'source',
    );
  }
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
    const md5 = hasher.md5!;
    const judgement = judgePart(md5, answer);
    if (judgement.verdict === 'mismatch') {
      throw new IntegrityError('IntegrityMismatch', `part ${part.number}: ${judgement.reason}${checksumHint(settings)}`);
    }
    const etag = normalizeEtag(answer.etag);
    if (etag === undefined) throw new IntegrityError('IntegrityMismatch', `part ${part.number}: UploadPart answered without an ETag`);
    return { partNumber: part.number, etag, digest: Buffer.from(md5, 'hex'), proven: judgement.verdict === 'proven' };
  } catch (error) {
    got.body.destroy();
    hasher.destroy();
    await reading;
    throw sourceError ?? error;
  } finally {
    signal.removeEventListener('abort', cancelWrite);
  }
}
