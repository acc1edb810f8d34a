import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { CopyResult } from '../state/types.js';
import { HashingStream, IntegrityError, isPlainMd5, unquote } from './integrity.js';
import { copiedHeaders } from './object-headers.js';
import { partSizeFor } from './part-size.js';
import { tagSide } from './side-error.js';

export interface TransferSettings {
  source: S3Client;
  dest: S3Client;
  sourceBucket: string;
  destBucket: string;
  /** Objects larger than this go as multipart uploads; smaller ones as one buffered PutObject. */
  multipartThreshold: number;
  partSize: number;
  partConcurrency: number;
  /** The destination's checksum mode, to name it when a mismatch looks like the aws-chunked trap. */
  destChecksumMode?: 'when-required' | 'when-supported';
  /** Bytes read from the source, as they flow (for throughput). */
  onBytes?: (bytes: number) => void;
}

interface Expected {
  size: number;
  md5?: string;
  multipartEtag?: string;
}

/**
 * Copies one object: GetObject's body streams through a hasher into the destination, never held whole.
 * Objects up to the multipart threshold go as one PutObject (buffered, at most the threshold); larger
 * ones as a multipart upload of `partSize` parts with `partConcurrency` in flight. Resolves only once the
 * destination confirmed bytes that hash to what the source sent.
 */
export async function transferObject(
  settings: TransferSettings,
  sourceKey: string,
  destKey: string,
  catalogSize: number,
  signal: AbortSignal,
): Promise<CopyResult> {
  const get = await settings.source
    .send(new GetObjectCommand({ Bucket: settings.sourceBucket, Key: sourceKey }), { abortSignal: signal })
    .catch((error: unknown) => Promise.reject(tagSide(error, 'source')));
  const body = get.Body as Readable;
  // A chunked answer has no Content-Length: then the catalog's size is what must arrive.
  const size = get.ContentLength ?? catalogSize;
  const multipart = size > settings.multipartThreshold;
  const partSize = partSizeFor(size, settings.partSize);
  const hasher = new HashingStream({
    expectedSize: size,
    expectedMd5: isPlainMd5(get.ETag) ? unquote(get.ETag)!.toLowerCase() : undefined,
    partSize: multipart ? partSize : undefined,
    wholeMd5: !multipart,
    onBytes: settings.onBytes,
  });
  const headers = copiedHeaders(get);

  // Aborting destroys the source stream: the write that reads from it fails (and lib-storage aborts its
  // multipart upload) before the transfer settles.
  const onAbort = (): void => {
    body.destroy(Object.assign(new Error('transfer aborted'), { name: 'AbortError' }));
  };
  signal.addEventListener('abort', onAbort, { once: true });
  // The write gets its own signal: a failed source read must cancel it, or a streamed PUT would wait
  // for the rest of its Content-Length until the socket times out.
  const write = new AbortController();
  const cancelWrite = (): void => write.abort();
  signal.addEventListener('abort', cancelWrite, { once: true });
  let sourceError: unknown;
  let stoppedReading = false;
  const streaming = pipeline(body, hasher).catch((error: unknown) => {
    // A source failure is the body erroring or the hasher's checks failing. Our own stop after a failed
    // write, or lib-storage closing the hasher when an upload fails, is not.
    const fromSource = body.errored !== null || hasher.errored instanceof IntegrityError;
    if (stoppedReading || !fromSource) return;
    sourceError = tagSide(error, 'source');
    write.abort();
  });
  let upload: Upload | undefined;
  try {
    let reportedEtag: string | undefined;
    if (!multipart) {
      // Buffered, not streamed: the hasher releases the last bytes only once they checked out, so a
      // short or corrupted read never becomes a PUT; and a body of known length can be retried by the SDK.
      // One buffer of the final size, filled as chunks arrive: memory is the object's size, not twice it.
      const bytes = Buffer.allocUnsafe(size);
      let filled = 0;
      for await (const chunk of hasher) filled += (chunk as Buffer).copy(bytes, filled);
      await streaming;
      if (sourceError) throw sourceError;
      const put = await settings.dest.send(
        new PutObjectCommand({
          Bucket: settings.destBucket,
          Key: destKey,
          Body: bytes,
          ContentLength: size,
          // The destination checks these bytes itself (BadDigest otherwise).
          ContentMD5: Buffer.from(hasher.md5!, 'hex').toString('base64'),
          ...headers,
        }),
        { abortSignal: write.signal },
      );
      reportedEtag = put.ETag;
    } else {
      upload = new Upload({
        client: settings.dest,
        params: { Bucket: settings.destBucket, Key: destKey, Body: hasher, ...headers },
        partSize,
        queueSize: settings.partConcurrency,
        // We abort a failed upload ourselves (abortLeftoverUpload): lib-storage's own abort would replace
        // the real error (a SlowDown, say) with the abort's, and some servers refuse AbortMultipartUpload.
        leavePartsOnError: true,
      });
      reportedEtag = (await upload.done()).ETag;
    }
    await streaming;
    if (sourceError) throw sourceError;
    return await confirm(settings, destKey, reportedEtag, { size, md5: hasher.md5, multipartEtag: hasher.multipartEtag }, signal);
  } catch (error) {
    // The write failed first: stop reading the source so the pipeline settles.
    stoppedReading = true;
    body.destroy();
    await streaming;
    if (upload) await abortLeftoverUpload(settings, destKey, upload);
    throw sourceError ?? error;
  } finally {
    signal.removeEventListener('abort', onAbort);
    signal.removeEventListener('abort', cancelWrite);
  }
}

/** Aborts a failed multipart upload before the failure is reported, so no orphaned parts are left. */
async function abortLeftoverUpload(settings: TransferSettings, destKey: string, upload: Upload): Promise<void> {
  // lib-storage keeps the id private; the lock file pins the version this was written against.
  const uploadId = (upload as unknown as { uploadId?: string }).uploadId;
  if (!uploadId) return;
  try {
    await settings.dest.send(
      new AbortMultipartUploadCommand({ Bucket: settings.destBucket, Key: destKey, UploadId: uploadId }),
    );
  } catch {
    // Already gone (NoSuchUpload), refused (s3rver: 405) or unreachable: the next run's recovery and the
    // bucket's lifecycle rule are the fallbacks.
  }
}

/**
 * Checks the destination's answer against what we sent. When the write's response carries no usable
 * ETag (Ceph RGW's CompleteMultipartUpload answers with an empty one; SSE-KMS ETags are not MD5s), asks
 * HeadObject instead.
 */
async function confirm(
  settings: TransferSettings,
  destKey: string,
  reportedEtag: string | undefined,
  expected: Expected,
  signal: AbortSignal,
): Promise<CopyResult> {
  const match = matchEtag(reportedEtag, expected);
  if (match) return { destKey, destEtag: unquote(reportedEtag), verifyMethod: match };

  const head = await settings.dest.send(new HeadObjectCommand({ Bucket: settings.destBucket, Key: destKey }), {
    abortSignal: signal,
  });
  const hint =
    settings.destChecksumMode === 'when-supported'
      ? '; the SDK checksums (when-supported) may have framed the body: set DEST_CHECKSUM_MODE=when-required (or --dest-checksum when-required)'
      : '';
  const headEtag = unquote(head.ETag);
  if (head.ContentLength !== expected.size) {
    throw new IntegrityError(
      'IntegrityMismatch',
      `the destination holds ${head.ContentLength} bytes, we sent ${expected.size}${hint}`,
    );
  }
  const headMatch = matchEtag(head.ETag, expected);
  if (headMatch) return { destKey, destEtag: headEtag, verifyMethod: headMatch };
  const encrypted = head.ServerSideEncryption === 'aws:kms' || head.SSECustomerAlgorithm !== undefined;
  // A multipart upload whose ETag is a plain MD5 (s3rver does this) cannot be judged without the whole
  // object's MD5, which is computed only when the source ETag called for it.
  const uncomparable = expected.md5 === undefined && isPlainMd5(headEtag);
  if (!headEtag || encrypted || uncomparable) {
    return { destKey, destEtag: headEtag, verifyMethod: 'size-only' };
  }
  throw new IntegrityError(
    'IntegrityMismatch',
    `the destination ETag ${headEtag} does not match the bytes sent` +
      `${expected.md5 ? ` (MD5 ${expected.md5})` : ''}${expected.multipartEtag ? ` (multipart ${expected.multipartEtag})` : ''}${hint}`,
  );
}

function matchEtag(etag: string | undefined, expected: Expected): CopyResult['verifyMethod'] | undefined {
  const value = unquote(etag)?.toLowerCase();
  if (!value) return undefined;
  if (expected.md5 !== undefined && value === expected.md5) return 'md5';
  if (expected.multipartEtag !== undefined && value === expected.multipartEtag) return 'multipart-etag';
  return undefined;
}
