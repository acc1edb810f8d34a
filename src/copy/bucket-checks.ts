import type { S3Bucket } from '../s3/bucket.js';
import { describeS3Failure } from '../s3/describe-failure.js';
import { classifyError } from '../s3/errors.js';
import { backoffDelay, sleep } from './backoff.js';
import { BAD_CREDENTIAL_CODES } from './retry-policy.js';

/** HeadBucket answers "slow down" this many times before the run gives up on starting. */
const THROTTLED_ATTEMPTS = 8;

/**
 * HeadBucket before a run touches the state: a missing bucket or refused credentials stop it at once;
 * a plain 403 does not (write-only credentials are common); throttling is waited out, a bounded number
 * of times, rather than failing the run.
 */
export async function checkBucket(
  bucket: S3Bucket,
  options: { credentialSource: string; retryBaseMs: number; signal: AbortSignal },
): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      await bucket.check(options.signal);
      return;
    } catch (error) {
      const classified = classifyError(error);
      if (classified.kind === 'auth' && !BAD_CREDENTIAL_CODES.has(classified.code)) return;
      if (classified.kind === 'throttled' && attempt < THROTTLED_ATTEMPTS && !options.signal.aborted) {
        await sleep(backoffDelay(attempt, { baseMs: options.retryBaseMs * 4, capMs: 10_000 }), options.signal);
        continue;
      }
      if (options.signal.aborted) throw Object.assign(new Error('stopped before the run started'), { name: 'AbortError' });
      throw describeS3Failure(error, { side: bucket.side, bucket: bucket.name, credentialSource: options.credentialSource });
    }
  }
}

/**
 * Both sides' checks at once (one round trip, not two, before a run starts: on a distant endpoint a
 * fresh HTTPS connection alone is several). The first failure stops the other check and is the one
 * reported; a stop of the run stops both.
 */
export async function checkBuckets(
  sides: ReadonlyArray<{ bucket: S3Bucket; credentialSource: string }>,
  options: { retryBaseMs: number; signal: AbortSignal },
): Promise<void> {
  const both = new AbortController();
  const stop = (): void => both.abort();
  // A run stopped before the checks began stops them at once, as it would stop a single check.
  if (options.signal.aborted) stop();
  else options.signal.addEventListener('abort', stop, { once: true });
  let failure: { error: unknown } | undefined;
  try {
    await Promise.all(
      sides.map(({ bucket, credentialSource }) =>
        checkBucket(bucket, { credentialSource, retryBaseMs: options.retryBaseMs, signal: both.signal }).catch((error: unknown) => {
          failure ??= { error };
          both.abort();
        }),
      ),
    );
  } finally {
    options.signal.removeEventListener('abort', stop);
  }
  if (failure) throw failure.error;
}
