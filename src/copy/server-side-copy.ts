import type { CopySource, PartHead } from '../s3/bucket.js';
import { classifyError } from '../s3/errors.js';
import { isMultipartEtag, isPlainMd5, multipartEtag, normalizeEtag } from '../s3/etag.js';
import type { CopyResult } from '../state/types.js';
import { confirmWrite } from './confirm-write.js';
import { IntegrityError, NoEvidenceError, SourceChangedError } from './integrity.js';
import { objectWrite, refusingStorageClass, storageClassFor, type SourceReport } from './object-write.js';
import { MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE } from './part-size.js';
import type { TransferJob, TransferSettings } from './transfer-settings.js';

/** CopyObject copies objects up to this size; larger ones go part by part (UploadPartCopy). */
export const MAX_COPY_OBJECT = 5 * 1024 ** 3;

/**
 * Copies one object without moving its bytes through us: the destination reads the source itself (same
 * endpoint, destination credentials that can read the source bucket). The evidence is the copy's ETag
 * equal to the source's own: CopyObject for a source whose ETag is its MD5; for a source uploaded in
 * parts, UploadPartCopy mirroring the source's part layout (read with partNumber HEADs), so that the
 * parts' ETags must give the source's multipart ETag and the completed object must carry it, or, where
 * the server does not tell part sizes, CopyObject whose copy must carry that multipart ETag. Sources that
 * cannot be proven this way (an ETag that is neither form, a single part over 5 GiB) throw
 * NoEvidenceError before anything is written, and are streamed instead.
 *
 * Tags: CopyObject copies them (TaggingDirective COPY; for --tags none, REPLACE with none, and then
 * DeleteObjectTagging, since Ceph RGW 16 ignores the directive and copies them anyway); a part-wise
 * copy creates its upload with the tags GetObjectTagging reads (where the HEAD reports some) and sets
 * them again once complete, as the streamed multipart copy does. Storage class: the one asked, or with
 * `keep` the source's (HeadObject), else the destination's default.
 */
export async function copyServerSide(settings: TransferSettings, job: TransferJob, signal: AbortSignal): Promise<CopyResult> {
  const source: CopySource = {
    bucket: settings.source.name,
    key: job.sourceKey,
    ifMatch: normalizeEtag(job.etag),
    sseCustomerKey: settings.source.sseCustomerKey,
  };
  try {
    if (isMultipartEtag(job.etag)) {
      const layout = await sourceLayout(settings, job, signal);
      if (layout) return { ...(await copyParts(settings, job, source, layout, signal)), method: 'server-side' };
      // The server does not tell a part's size (Ceph RGW 16 ignores partNumber): CopyObject, whose copy
      // must then carry the source's multipart ETag itself.
    } else if (!isPlainMd5(job.etag)) {
      throw new NoEvidenceError('no server-side copy of this object could be proven (its ETag is neither an MD5 nor a multipart ETag)');
    }
    if (job.size > MAX_COPY_OBJECT) {
      throw new NoEvidenceError('no server-side copy of this object could be proven (over 5 GiB, and its part layout is unknown)');
    }
    const storageClass = storageClassFor(settings, settings.fidelity?.storageClass === 'keep' ? await sourceHead(settings, job, signal) : undefined);
    const answer = await refusingStorageClass(settings, storageClass, () =>
      settings.dest.copyFrom(source, job.destKey, { storageClass, copyTags: settings.fidelity?.tags !== 'none', signal }),
    );
    const expected = normalizeEtag(job.etag)!;
    const sent = isMultipartEtag(expected) ? { size: job.size, multipartEtag: expected } : { size: job.size, md5: expected };
    const result = await confirmWrite(settings, job.destKey, sent, answer, signal);
    if (settings.fidelity?.tags === 'none') await settings.dest.deleteTags(job.destKey, signal);
    return { ...result, method: 'server-side' };
  } catch (error) {
    throw await sourceFailure(settings, job, error, signal);
  }
}

/**
 * The source-side meaning of a copy's errors: a failed If-Match is a changed source; NoSuchKey a gone
 * one, but only once the source itself confirms it: a server that decodes the copy source differently
 * (s3rver leaves %2B undecoded) answers NoSuchKey for a key that is there, and that object is streamed.
 */
async function sourceFailure(settings: TransferSettings, job: TransferJob, error: unknown, signal: AbortSignal): Promise<unknown> {
  const code = classifyError(error).code;
  if (code === 'PreconditionFailed') return new SourceChangedError('the source object changed since the catalog (If-Match refused)');
  if (code !== 'NoSuchKey' || signal.aborted) return error;
  const there = await settings.source.head(job.sourceKey, signal).catch(() => undefined);
  if (there === undefined) return Object.assign(error as object, { s3migrateSide: 'source' });
  return new NoEvidenceError('the destination could not find the source key to copy it (it decodes copy sources differently)');
}

/** The source object's storage class (--storage-class keep): a HeadObject, since CopyObject reads nothing back. */
async function sourceHead(settings: TransferSettings, job: TransferJob, signal: AbortSignal): Promise<SourceReport> {
  const head = await settings.source.head(job.sourceKey, signal);
  return { storageClass: head?.storageClass };
}

interface SourceLayout {
  sizes: number[];
  headers: PartHead['headers'];
  /** What the first part's HEAD said of the object (tag count, storage class). */
  report: SourceReport;
}

/**
 * The source's part layout, read with partNumber HEADs: the sizes of its parts, in order. Undefined
 * when the server does not answer a part's size (it gives the whole object's), or the layout cannot be
 * mirrored at the destination.
 */
async function sourceLayout(settings: TransferSettings, job: TransferJob, signal: AbortSignal): Promise<SourceLayout | undefined> {
  const count = Number(normalizeEtag(job.etag)!.split('-')[1]);
  const first = await settings.source.headPart(job.sourceKey, 1, signal);
  if (count > 1 && first.size >= job.size) return undefined;
  const uniform = first.size;
  let sizes: number[];
  if (count >= 1 && (count - 1) * uniform < job.size && job.size <= count * uniform) {
    sizes = Array.from({ length: count }, (_, i) => (i < count - 1 ? uniform : job.size - (count - 1) * uniform));
  } else {
    // Parts of different sizes: ask for each.
    sizes = [first.size];
    for (let n = 2; n <= count; n += 1) sizes.push((await settings.source.headPart(job.sourceKey, n, signal)).size);
  }
  const total = sizes.reduce((sum, size) => sum + size, 0);
  const valid =
    total === job.size &&
    sizes.length <= MAX_PARTS &&
    sizes.every((size, i) => size <= MAX_PART_SIZE && (i === sizes.length - 1 || size >= MIN_PART_SIZE));
  return valid ? { sizes, headers: first.headers, report: first } : undefined;
}

async function copyParts(
  settings: TransferSettings,
  job: TransferJob,
  source: CopySource,
  { sizes, headers, report }: SourceLayout,
  signal: AbortSignal,
): Promise<CopyResult> {
  const controller = new AbortController();
  const cancel = (): void => controller.abort();
  signal.addEventListener('abort', cancel, { once: true });
  const own = controller.signal;
  let uploadId: string;
  let write;
  try {
    write = await objectWrite(settings, job, report, own);
    const created = write;
    uploadId = await refusingStorageClass(settings, created.storageClass, () => settings.dest.createUpload(job.destKey, headers, created, own));
  } catch (error) {
    signal.removeEventListener('abort', cancel);
    throw error;
  }
  let completed = false;
  try {
    const etags: string[] = new Array(sizes.length);
    let next = 0;
    let failure: unknown;
    const starts = sizes.map((_, i) => sizes.slice(0, i).reduce((sum, size) => sum + size, 0));
    const worker = async (): Promise<void> => {
      while (next < sizes.length && failure === undefined && !own.aborted) {
        const index = next++;
        const range = { start: starts[index]!, end: starts[index]! + sizes[index]! - 1 };
        const answer = await settings.dest.uploadPartCopy(job.destKey, uploadId, index + 1, { ...source, range }, own);
        const etag = normalizeEtag(answer.etag);
        if (etag === undefined) throw new IntegrityError('IntegrityMismatch', `part ${index + 1}: UploadPartCopy answered without an ETag`);
        etags[index] = etag;
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(settings.partConcurrency, sizes.length) }, () =>
        worker().catch((error: unknown) => {
          failure ??= error;
          controller.abort();
        }),
      ),
    );
    if (failure !== undefined) throw failure;
    if (own.aborted) throw Object.assign(new Error('transfer aborted'), { name: 'AbortError' });
    // The parts' ETags (MD5s the destination computed of what it copied) must give the source's ETag.
    const expected = normalizeEtag(job.etag)!;
    const copied = multipartEtag(etags.map((etag) => Buffer.from(etag, 'hex')));
    if (!etags.every((etag) => isPlainMd5(etag)) || copied !== expected) {
      throw new IntegrityError('IntegrityMismatch', `the copied parts give the multipart ETag ${copied}, the source's is ${expected}`);
    }
    const answer = await settings.dest.completeUpload(
      job.destKey,
      uploadId,
      etags.map((etag, i) => ({ partNumber: i + 1, etag })),
      own,
    );
    completed = true;
    const result = await confirmWrite(settings, job.destKey, { size: job.size, multipartEtag: expected }, answer, own);
    // Ceph RGW 16 ignores tags on CreateMultipartUpload: set them on the completed object.
    if (write.tags) await settings.dest.putTags(job.destKey, write.tags, own);
    return result;
  } catch (error) {
    controller.abort();
    if (!completed) await settings.dest.abortUpload(job.destKey, uploadId).catch(() => undefined);
    throw error;
  } finally {
    signal.removeEventListener('abort', cancel);
  }
}
