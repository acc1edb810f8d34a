import { pipeline } from 'node:stream/promises';
import { isPlainMd5, normalizeEtag } from '../s3/etag.js';
import { tagSide } from '../s3/side.js';
import type { CopyResult } from '../state/types.js';
import { confirmWrite } from './confirm-write.js';
import { classifyError } from '../s3/errors.js';
import { HashingStream, IntegrityError, NoEvidenceError, readWhole, type WholeBody } from './integrity.js';
import { copyMultipart } from './multipart-copy.js';
import { objectWrite, refusingStorageClass } from './object-write.js';
import { copyServerSide } from './server-side-copy.js';
import { openSource } from './source-read.js';
import type { TransferJob, TransferSettings } from './transfer-settings.js';

export type { TransferJob, TransferSettings };

/**
 * Copies one object and resolves only on positive evidence that the destination holds the source's
 * bytes (see evidence.ts). Objects up to the multipart threshold go as one PutObject; larger ones
 * through the part pipeline (multipart-copy.ts). A source object that is not the cataloged one any more
 * throws SourceChangedError before anything is written.
 */
export async function transferObject(settings: TransferSettings, job: TransferJob, signal: AbortSignal): Promise<CopyResult> {
  const { serverSide } = settings;
  if (serverSide.available && serverSide.mode !== 'never' && serverSide.refused === undefined) {
    try {
      return await copyServerSide(settings, job, signal);
    } catch (error) {
      if (serverSide.mode === 'always' || signal.aborted) throw error;
      if (refusesServerSide(error)) {
        // Not allowed or not implemented here: remembered, the rest of the run streams.
        serverSide.refused = classifyError(error).description;
        settings.onServerSideRefused?.(serverSide.refused);
      } else if (!(error instanceof NoEvidenceError || error instanceof IntegrityError)) {
        throw error;
      }
      // This object could not be proven copied server-side: it goes through us.
    }
  }
  if (job.size > settings.multipartThreshold) return copyMultipart(settings, job, signal);
  return copySinglePut(settings, job, signal);
}

/** The destination will not copy from the source for us: no permission to read it, or no support. */
function refusesServerSide(error: unknown): boolean {
  const { kind, code, status } = classifyError(error);
  return kind === 'auth' || code === 'NotImplemented' || status === 501 || status === 405 || code === 'MethodNotAllowed';
}

/** Single PUTs up to this size are read whole before they are sent (see copySinglePut). */
export const BUFFERED_PUT_LIMIT = 1024 * 1024;

/**
 * One GetObject -> one PutObject. Small objects (up to BUFFERED_PUT_LIMIT) are read whole first: a short
 * or corrupted read never becomes a PUT on any server, and the SDK can retry the PUT itself. Larger ones
 * stream from the source into the PUT with their exact length checked on the way: the last bytes are held
 * back until exactly the object's size arrived, so a short read never completes the PUT on a server that
 * checks Content-Length (s3rver does not, and may keep a truncated object: the row is never marked done
 * from it, since the destination's ETag then differs). Bytes are hashed only when the source's ETag is
 * not their MD5; the source's own MD5 goes out as Content-MD5 (servers that check it refuse damaged
 * bytes), and the destination's ETag is compared with it. Where the destination's ETags prove nothing
 * (SSE-KMS, SSE-C), every single PUT is buffered and hashed first so it carries a Content-MD5 the
 * destination is proven to check. Tags and storage class go with the PUT (object-write.ts): tags are
 * asked for only when the source's answer reports some.
 */
async function copySinglePut(settings: TransferSettings, job: TransferJob, signal: AbortSignal): Promise<CopyResult> {
  if (settings.singlePuts.buffered || job.size <= BUFFERED_PUT_LIMIT) return putBuffered(settings, job, signal);
  try {
    return await putStreamed(settings, job, signal);
  } catch (error) {
    // An encrypted destination answered a streamed PUT without Content-MD5: nothing proves it. From now
    // on this run buffers single PUTs, and this object goes again that way.
    if (error instanceof NoEvidenceError && error.encryptedAnswer && !error.contentMd5Sent) {
      settings.singlePuts.buffered = true;
      return putBuffered(settings, job, signal);
    }
    throw error;
  }
}

async function putStreamed(settings: TransferSettings, job: TransferJob, signal: AbortSignal): Promise<CopyResult> {
  const got = await openSource(settings, job, { signal });
  let write;
  try {
    write = await objectWrite(settings, job, got, signal);
  } catch (error) {
    got.body.destroy();
    throw error;
  }
  // The source's own MD5, when its ETag is one (a single-part, unencrypted upload).
  const sourceMd5 = isPlainMd5(got.etag) && !got.encrypted ? normalizeEtag(got.etag) : undefined;
  // Counts the bytes (exactly the object's size must pass; the last ones are held back until they did),
  // and hashes them only when there is no source MD5 to vouch for them.
  const checker = new HashingStream({ expectedSize: job.size, wholeMd5: sourceMd5 === undefined, onBytes: settings.onBytes });
  // The PUT gets its own signal: a failed source read must cancel it, or the streamed PUT would wait for
  // the rest of its Content-Length until the socket times out.
  const cancel = new AbortController();
  const cancelWrite = (): void => cancel.abort();
  signal.addEventListener('abort', cancelWrite, { once: true });
  let sourceError: unknown;
  const reading = pipeline(got.body, checker).catch((error: unknown) => {
    sourceError = tagSide(error, 'source');
    cancel.abort();
  });
  try {
    const answer = await refusingStorageClass(settings, write.storageClass, () =>
      settings.dest.put(job.destKey, checker, {
        contentLength: job.size,
        contentMd5: sourceMd5 === undefined ? undefined : Buffer.from(sourceMd5, 'hex').toString('base64'),
        headers: got.headers,
        write,
        signal: cancel.signal,
      }),
    );
    await reading;
    if (sourceError !== undefined) throw sourceError;
    const md5 = sourceMd5 ?? checker.md5!;
    return await confirmWrite(settings, job.destKey, { size: job.size, md5, contentMd5Sent: sourceMd5 !== undefined }, answer, signal);
  } catch (error) {
    // Only a source failure that came first is the cause (destroying the source makes an error of its own).
    const early = sourceError;
    got.body.destroy();
    checker.destroy();
    await reading;
    throw early ?? error;
  } finally {
    signal.removeEventListener('abort', cancelWrite);
  }
}

/**
 * The body read into one buffer, its exact length checked and, where the source's ETag is not its MD5 or
 * the destination needs our own digest, hashed; then one PutObject with Content-MD5.
 */
async function putBuffered(settings: TransferSettings, job: TransferJob, signal: AbortSignal): Promise<CopyResult> {
  const got = await openSource(settings, job, { signal });
  const sourceMd5 = isPlainMd5(got.etag) && !got.encrypted ? normalizeEtag(got.etag) : undefined;
  // With a source MD5 and ETags that prove things, the destination's check of it is enough: no hashing.
  const hash = sourceMd5 === undefined || settings.singlePuts.buffered;
  const onAbort = (): void => {
    got.body.destroy(Object.assign(new Error('transfer aborted'), { name: 'AbortError' }));
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const write = await objectWrite(settings, job, got, signal);
    let whole: WholeBody;
    try {
      // One buffer of the final size, filled as chunks arrive: memory is the object's size, not twice it.
      whole = await readWhole(got.body, {
        expectedSize: job.size,
        expectedMd5: hash ? sourceMd5 : undefined,
        wholeMd5: hash,
        onBytes: settings.onBytes,
      });
    } catch (error) {
      throw tagSide(error, 'source');
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    const md5 = whole.md5 ?? sourceMd5!;
    const answer = await refusingStorageClass(settings, write.storageClass, () =>
      settings.dest.put(job.destKey, whole.bytes, {
        contentLength: job.size,
        contentMd5: Buffer.from(md5, 'hex').toString('base64'),
        headers: got.headers,
        write,
        signal,
      }),
    );
    return await confirmWrite(settings, job.destKey, { size: job.size, md5, contentMd5Sent: true }, answer, signal);
  } catch (error) {
    got.body.destroy();
    throw error;
  }
}
