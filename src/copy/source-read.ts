import type { SourceObject } from '../s3/bucket.js';
import { normalizeEtag } from '../s3/etag.js';
import { sourceChange } from './evidence.js';
import { SourceChangedError } from './integrity.js';
import type { TransferJob, TransferSettings } from './transfer-settings.js';

/** Opens the source object (If-Match on the cataloged ETag) and checks it is still the cataloged one. */
export async function openSource(
  settings: TransferSettings,
  job: TransferJob,
  options: { range?: { start: number; end: number }; signal: AbortSignal },
): Promise<SourceObject> {
  const got = await settings.source.get(job.sourceKey, {
    ifMatch: normalizeEtag(job.etag),
    range: options.range,
    signal: options.signal,
  });
  const change = sourceChange(job, got);
  if (change) {
    got.body.destroy();
    throw new SourceChangedError(change);
  }
  return got;
}
