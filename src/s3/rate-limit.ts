import { pipeline, Readable, Transform, type TransformCallback } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { leanPathOf } from './lean-path.js';

/**
 * A token bucket: `rate` tokens a second, at most `burst` saved up. take(n) reserves n tokens at once,
 * going into debt when there are not enough, and resolves when the debt is paid: concurrent takers queue
 * up behind each other's debt, so the total rate holds however many callers share the bucket.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private released = false;
  private readonly timers = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();

  constructor(
    readonly rate: number,
    private readonly burst = rate,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(rate > 0) || !(burst > 0)) throw new RangeError('a token bucket needs a positive rate and burst');
    this.tokens = burst;
    this.last = this.now();
  }

  /** Milliseconds the caller must wait for `n` tokens (0 when available); the tokens are taken either way. */
  reserve(n: number): number {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    this.tokens -= n;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.rate) * 1000;
  }

  async take(n: number): Promise<void> {
    if (this.released) return;
    const waitMs = this.reserve(n);
    if (waitMs <= 0) return;
    await new Promise<void>((resolve) => {
      const entry = { timer: setTimeout(() => finish(), waitMs), resolve: () => finish() };
      const finish = (): void => {
        clearTimeout(entry.timer);
        this.timers.delete(entry);
        resolve();
      };
      this.timers.add(entry);
    });
  }

  /** Lets every waiter (and every later take) through at once: used when the run is aborted. */
  release(): void {
    this.released = true;
    for (const entry of [...this.timers]) entry.resolve();
  }
}

/** Passes a stream through `bucket`, one token per byte. Errors and destruction travel both ways. */
export function limitStream(body: Readable, bucket: TokenBucket): Readable {
  const limiter = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      bucket.take(chunk.length).then(() => callback(null, chunk), callback);
    },
  });
  return pipeline(body, limiter, () => undefined);
}

export interface RateLimits {
  /** Bytes a second read from the source (GetObject bodies), across the whole run. */
  bytesPerSecond?: number;
  /** HTTP requests a second, across both clients, SDK retries included. */
  requestsPerSecond?: number;
}

/**
 * Applies the run's explicit limits to its two clients. Requests: one bucket shared by both clients,
 * taken per HTTP attempt (the middleware sits inside the SDK's retry loop), so a multipart object's
 * part uploads and every retry count, which is what providers' request limits and bills count.
 * Bandwidth: the source's GetObject bodies are paced as they are read, a one-second burst at most.
 * Both apply to the clients' lean paths (lean-path.ts) alike: per HTTP attempt, and per GetObject body.
 * Returns a function that lets every waiter through (for an abort).
 */
export function applyRateLimits(source: S3Client, dest: S3Client, limits: RateLimits): () => void {
  const buckets: TokenBucket[] = [];
  if (limits.requestsPerSecond !== undefined) {
    const requests = new TokenBucket(limits.requestsPerSecond, Math.max(1, limits.requestsPerSecond));
    buckets.push(requests);
    for (const client of [source, dest]) {
      const lean = leanPathOf(client);
      if (lean) lean.beforeAttempt = () => requests.take(1);
      client.middlewareStack.add(
        (next) => async (args) => {
          await requests.take(1);
          return next(args);
        },
        { step: 'deserialize', priority: 'high', name: 's3migrateRequestRate' },
      );
    }
  }
  if (limits.bytesPerSecond !== undefined) {
    const bytes = new TokenBucket(limits.bytesPerSecond, limits.bytesPerSecond);
    buckets.push(bytes);
    const lean = leanPathOf(source);
    if (lean) lean.wrapBody = (body) => limitStream(body, bytes);
    source.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        const output = result.output as { Body?: unknown };
        if (context.commandName === 'GetObjectCommand' && output.Body instanceof Readable) {
          output.Body = limitStream(output.Body, bytes);
        }
        return result;
      },
      { step: 'initialize', name: 's3migrateBandwidth' },
    );
  }
  return () => {
    for (const bucket of buckets) bucket.release();
  };
}
