import { pipeline } from 'node:stream/promises';
import { isPlainMd5, normalizeEtag } from '../s3/etag.js';
import { tagSide } from '../s3/side.js';
import type { CopyResult } from '../state/types.js';
import { confirmWrite } from './confirm-write.js';
import { HashingStream } from './integrity.js';
import { copyMultipart } from './multipart-copy.js';
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
  if (job.size > settings.multipartThreshold) return copyMultipart(settings, job, signal);
  return copySinglePut(settings, job, signal);
}

/**
 * One GetObject -> one PutObject. The body is buffered (at most the threshold) so that the hasher can
 * hold back the last bytes until they checked out: a short or corrupted read never becomes a PUT, and a
 * body of known length can be retried by the SDK. The PUT carries Content-MD5.
 */
async function copySinglePut(settings: TransferSettings, job: TransferJob, signal: AbortSignal): Promise<CopyResult> {
  const got = await openSource(settings, job, { signal });
  // The source's own MD5, when its ETag is one (a single-part, unencrypted upload): the bytes must hash to it.
  const sourceMd5 = isPlainMd5(got.etag) && !got.encrypted ? normalizeEtag(got.etag) : undefined;
  const hasher = new HashingStream({ expectedSize: job.size, expectedMd5: sourceMd5, wholeMd5: true, onBytes: settings.onBytes });
  const onAbort = (): void => {
    got.body.destroy(Object.assign(new Error('transfer aborted'), { name: 'AbortError' }));
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const bytes = Buffer.allocUnsafe(job.size);
    let filled = 0;
    const reading = pipeline(got.body, hasher);
    reading.catch(() => undefined); // settled below; the loop may throw its error first
    try {
      // One buffer of the final size, filled as chunks arrive: memory is the object's size, not twice it.
      for await (const chunk of hasher) filled += (chunk as Buffer).copy(bytes, filled);
      await reading;
    } catch (error) {
      throw tagSide(error, 'source');
    }
    const md5 = hasher.md5!;
    const answer = await settings.dest.put(job.destKey, bytes, {
      contentLength: job.size,
      // The destination checks these bytes itself where it can (BadDigest otherwise).
      contentMd5: Buffer.from(md5, 'hex').toString('base64'),
      headers: got.headers,
      signal,
    });
    return await confirmWrite(settings, job.destKey, { size: job.size, md5, contentMd5Sent: true }, answer, signal);
  } catch (error) {
    got.body.destroy();
    throw error;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
