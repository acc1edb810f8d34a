import { createHash } from 'node:crypto';
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
  partSize: number;
  partConcurrency: number;
  /** Bytes read from the source, as they flow (for throughput). */
  onBytes?: (bytes: number) => void;
}

interface Expected {
  size: number;
  md5: string;
  multipartEtag?: string;
}

/**
 * Copies one object: GetObject's body streams through a hasher into the destination. Objects up to one
 * part go as one PutObject with Content-MD5 (the server checks it); larger ones as a multipart upload of
 * `partSize` parts with `partConcurrency` in flight. Resolves only once the destination confirmed bytes
 * that hash to what the source sent.
 */
export async function transferObject(
  settings: TransferSettings,
  sourceKey: string,
  destKey: string,
  signal: AbortSignal,
): Promise<CopyResult> {
  const get = await settings.source
    .send(new GetObjectCommand({ Bucket: settings.sourceBucket, Key: sourceKey }), { abortSignal: signal })
    .catch((error: unknown) => Promise.reject(tagSide(error, 'source')));
  const body = get.Body as Readable;
  const size = get.ContentLength ?? 0;
  const sourceMd5 = isPlainMd5(get.ETag) ? unquote(get.ETag)!.toLowerCase() : undefined;
  const partSize = partSizeFor(size, settings.partSize);
  const hasher = new HashingStream(partSize, size, sourceMd5);
  if (settings.onBytes) hasher.on('data', (chunk: Buffer) => settings.onBytes!(chunk.length));
  const headers = copiedHeaders(get);

  if (size <= partSize) {
    const chunks: Buffer[] = [];
    await pipeline(body, hasher, async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) chunks.push(chunk);
    }).catch((error: unknown) => Promise.reject(tagSide(error, 'source')));
    const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
    const put = await settings.dest.send(
      new PutObjectCommand({
        Bucket: settings.destBucket,
        Key: destKey,
        Body: bytes,
        ContentLength: size,
        ContentMD5: createHash('md5').update(bytes).digest('base64'),
        ...headers,
      }),
      { abortSignal: signal },
    );
    return confirm(settings, destKey, put.ETag, { size, md5: hasher.md5 }, signal);
  }

  const upload = new Upload({
    client: settings.dest,
    params: { Bucket: settings.destBucket, Key: destKey, Body: hasher, ...headers },
    partSize,
    queueSize: settings.partConcurrency,
    leavePartsOnError: false,
  });
  // Aborting destroys the source stream: lib-storage then fails the upload and aborts the multipart
  // upload before done() settles, so no parts are left behind.
  const onAbort = (): void => {
    body.destroy(Object.assign(new Error('transfer aborted'), { name: 'AbortError' }));
  };
  signal.addEventListener('abort', onAbort, { once: true });
  let sourceError: unknown;
  try {
    const streaming = pipeline(body, hasher).catch((error: unknown) => {
      sourceError = tagSide(error, 'source');
      hasher.destroy(error as Error);
    });
    const result = await upload.done();
    await streaming;
    return await confirm(
      settings,
      destKey,
      result.ETag,
      { size, md5: hasher.md5, multipartEtag: hasher.multipartEtag },
      signal,
    );
  } catch (error) {
    await abortLeftoverUpload(settings, destKey, upload);
    throw sourceError ?? error;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** lib-storage normally aborts its multipart upload itself; this makes sure, before we report the failure. */
async function abortLeftoverUpload(settings: TransferSettings, destKey: string, upload: Upload): Promise<void> {
  const uploadId = (upload as unknown as { uploadId?: string }).uploadId;
  if (!uploadId) return;
  try {
    await settings.dest.send(
      new AbortMultipartUploadCommand({ Bucket: settings.destBucket, Key: destKey, UploadId: uploadId }),
    );
  } catch {
    // Already aborted (NoSuchUpload) or unreachable: nothing more we can do here.
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
  const headEtag = unquote(head.ETag);
  if (head.ContentLength !== expected.size) {
    throw new IntegrityError(
      'IntegrityMismatch',
      `the destination holds ${head.ContentLength} bytes, we sent ${expected.size}`,
    );
  }
  const headMatch = matchEtag(head.ETag, expected);
  if (headMatch) return { destKey, destEtag: headEtag, verifyMethod: headMatch };
  const encrypted = head.ServerSideEncryption === 'aws:kms' || head.SSECustomerAlgorithm !== undefined;
  if (!headEtag || encrypted) {
    return {
      destKey,
      destEtag: headEtag,
      verifyMethod: 'size-only',
      verifyNote: encrypted ? 'encrypted ETag is not an MD5' : 'destination returned no ETag',
    };
  }
  throw new IntegrityError(
    'IntegrityMismatch',
    `the destination ETag ${headEtag} does not match the bytes sent (MD5 ${expected.md5}` +
      `${expected.multipartEtag ? `, multipart ${expected.multipartEtag}` : ''}); if the destination is not AWS, ` +
      `set DEST_CHECKSUM_MODE=when-required (or --dest-checksum when-required)`,
  );
}

function matchEtag(etag: string | undefined, expected: Expected): CopyResult['verifyMethod'] | undefined {
  const value = unquote(etag)?.toLowerCase();
  if (!value) return undefined;
  if (value === expected.md5) return 'md5';
  if (expected.multipartEtag !== undefined && value === expected.multipartEtag) return 'multipart-etag';
  return undefined;
}
