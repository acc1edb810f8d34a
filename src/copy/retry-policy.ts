/**
 * What to do after a failed attempt at an object: pure functions of the error's class and the attempts
 * so far, so the policy can be read and tested on its own.
 */
import type { ClassifiedError } from '../s3/errors.js';
import { backoffDelay } from './backoff.js';

export interface RetryLimits {
  /** Attempts per object in one run (throttled attempts not counted). */
  maxAttempts: number;
  /** Throttled attempts per object in one run: their own budget, since throttling is the service pacing us. */
  maxThrottledAttempts: number;
  /** Base of the exponential backoff; throttled attempts wait 4x longer. */
  baseMs: number;
  capMs: number;
}

export interface AttemptCounts {
  /** Attempts that count against maxAttempts. */
  counted: number;
  throttled: number;
}

export type RetryDecision =
  | { action: 'retry'; delayMs: number; counts: AttemptCounts }
  | { action: 'give-up'; counts: AttemptCounts };

/**
 * Default throttled-attempt budget per object: with backoff capped at 20 s (10 s on average), about a
 * quarter of an hour of uninterrupted throttling on one object before it is recorded as failed.
 */
export const DEFAULT_MAX_THROTTLED_ATTEMPTS = 100;

/** Codes that say the credentials themselves are bad: every object of the run would fail the same way. */
export const BAD_CREDENTIAL_CODES: ReadonlySet<string> = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'CredentialsProviderError',
  'InvalidClientTokenId',
]);

/** This many AccessDenied in a row, with no success in between, means access is denied everywhere. */
export const DENIED_STREAK_LIMIT = 10;

/** After a failed attempt: retry (after a jittered backoff) or give up and record the object as failed. */
export function afterFailure(
  error: ClassifiedError,
  counts: AttemptCounts,
  limits: RetryLimits,
  random: () => number = Math.random,
): RetryDecision {
  const throttled = error.kind === 'throttled';
  const next: AttemptCounts = throttled
    ? { counted: counts.counted, throttled: counts.throttled + 1 }
    : { counted: counts.counted + 1, throttled: counts.throttled };
  const retryable = error.kind === 'throttled' || error.kind === 'retryable';
  if (!retryable || next.counted >= limits.maxAttempts || next.throttled >= limits.maxThrottledAttempts) {
    return { action: 'give-up', counts: next };
  }
  const delayMs = backoffDelay(
    throttled ? next.throttled : next.counted,
    { baseMs: limits.baseMs * (throttled ? 4 : 1), capMs: limits.capMs },
    random,
  );
  return { action: 'retry', delayMs, counts: next };
}

/** The AccessDenied streak after this error (reset by a success elsewhere). */
export function deniedStreakAfter(error: ClassifiedError, streak: number): number {
  return error.kind === 'auth' ? streak + 1 : streak;
}

/**
 * True when an error would fail every remaining object the same way: a missing bucket, bad credentials,
 * a storage class the destination does not offer (--storage-class), or a streak of AccessDenied before
 * anything was copied (a denied key among readable ones is not).
 */
export function doomsRun(error: ClassifiedError, deniedStreak: number, objectsCopied: number): boolean {
  if (error.kind === 'no-such-bucket' || BAD_CREDENTIAL_CODES.has(error.code) || error.code === 'InvalidStorageClass') return true;
  return error.kind === 'auth' && deniedStreak >= DENIED_STREAK_LIMIT && objectsCopied === 0;
}
