import { createHash, type Hash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { multipartEtag } from '../s3/etag.js';

/** An error that means the bytes we read or wrote are not the object's: the object is retried. */
export class IntegrityError extends Error {
  constructor(
    readonly code: 'TruncatedBody' | 'IntegrityMismatch',
    message: string,
  ) {
    super(message);
    this.name = code;
  }
}

export interface HashingOptions {
  expectedSize: number;
  /** The source's plain-MD5 ETag: the bytes read must hash to it. */
  expectedMd5?: string;
  /** Hash each part of this size too (multipart uploads); omit for a single PUT. */
  partSize?: number;
  /** Compute the MD5 of the whole even without expectedMd5 (single PUTs: it is their ETag). */
  wholeMd5: boolean;
  /** Told of every chunk's size as it passes (throughput); a 'data' listener would defeat backpressure. */
  onBytes?: (bytes: number) => void;
}

/**
 * A pass-through stream that hashes what flows through it, each byte once per digest it needs: the MD5
 * of the whole (single PUTs, or to check a plain-MD5 source ETag) and of each part (multipart ETags).
 * The last chunk is held back until the checks pass: exactly `expectedSize` bytes, hashing to
 * `expectedMd5` when given. So a short or corrupted read errors the stream before the destination has
 * received a complete body, and the upload fails instead of completing with bad bytes.
 */
export class HashingStream extends Transform {
  private readonly whole: Hash | undefined;
  private part: Hash | undefined;
  private partBytes = 0;
  private readonly partDigests: Buffer[] = [];
  private finished = false;
  bytes = 0;
  /** The MD5 of the whole, once all bytes passed (when it was computed). */
  md5: string | undefined;

  constructor(private readonly options: HashingOptions) {
    super();
    this.whole = options.wholeMd5 || options.expectedMd5 ? createHash('md5') : undefined;
    this.part = options.partSize ? createHash('md5') : undefined;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.whole?.update(chunk);
    this.bytes += chunk.length;
    this.options.onBytes?.(chunk.length);
    if (this.part) this.hashParts(chunk);
    if (this.bytes > this.options.expectedSize) {
      return callback(this.sizeError());
    }
    if (this.bytes === this.options.expectedSize) {
      const problem = this.finish();
      if (problem) return callback(problem);
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.bytes !== this.options.expectedSize) return callback(this.sizeError());
    // A 0-byte object never saw a chunk.
    callback(this.finished ? undefined : this.finish());
  }

  private hashParts(chunk: Buffer): void {
    const partSize = this.options.partSize!;
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(partSize - this.partBytes, chunk.length - offset);
      this.part!.update(take === chunk.length ? chunk : chunk.subarray(offset, offset + take));
      this.partBytes += take;
      offset += take;
      if (this.partBytes === partSize) this.closePart();
    }
  }

  private closePart(): void {
    this.partDigests.push(this.part!.digest());
    this.part = createHash('md5');
    this.partBytes = 0;
  }

  /** Closes the digests and checks them; returns the error to fail with, if any. */
  private finish(): IntegrityError | undefined {
    this.finished = true;
    if (this.part && (this.partBytes > 0 || this.partDigests.length === 0)) this.closePart();
    this.md5 = this.whole?.digest('hex');
    if (this.options.expectedMd5 !== undefined && this.md5 !== this.options.expectedMd5) {
      return new IntegrityError(
        'IntegrityMismatch',
        `source bytes hash to ${this.md5}, the source ETag says ${this.options.expectedMd5}`,
      );
    }
    return undefined;
  }

  private sizeError(): IntegrityError {
    return new IntegrityError(
      'TruncatedBody',
      `read ${this.bytes} bytes from the source, expected ${this.options.expectedSize}`,
    );
  }

  /** The ETag S3 gives a multipart upload of these bytes with this part size (when parts were hashed). */
  get multipartEtag(): string | undefined {
    return this.partDigests.length > 0 ? multipartEtag(this.partDigests) : undefined;
  }
}

export interface WholeBody {
  bytes: Buffer;
  /** The MD5 of the bytes (hex), when they were hashed. */
  md5?: string;
}

/**
 * Reads a body whole into one buffer of exactly `expectedSize` bytes (the body's own chunk when it came in
 * one), with HashingStream's checks and
 * without a stream pipeline: more bytes than announced, fewer (an early end, or a close without one), or
 * (with `expectedMd5`) bytes that do not hash to it fail with the same IntegrityErrors; the body's own
 * error is passed on as it is. Hashes only with `wholeMd5` or `expectedMd5`. On any failure the body is
 * destroyed.
 */
export function readWhole(body: Readable, options: Omit<HashingOptions, 'partSize'>): Promise<WholeBody> {
  return new Promise<WholeBody>((resolve, reject) => {
    const { expectedSize, expectedMd5, onBytes } = options;
    const hash = options.wholeMd5 || expectedMd5 !== undefined ? createHash('md5') : undefined;
    // A body that comes in one chunk (most small ones) is kept as it is; a buffer is filled only for more.
    let first: Buffer | undefined;
    let bytes: Buffer | undefined;
    let filled = 0;
    let settled = false;
    const sizeError = (read: number): IntegrityError =>
      new IntegrityError('TruncatedBody', `read ${read} bytes from the source, expected ${expectedSize}`);
    const done = (error: Error | undefined): void => {
      if (settled) return;
      settled = true;
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onClose);
      if (error) {
        body.on('error', () => undefined); // destroying may raise one more
        body.destroy();
        reject(error);
        return;
      }
      const md5 = hash?.digest('hex');
      if (expectedMd5 !== undefined && md5 !== expectedMd5) {
        reject(new IntegrityError('IntegrityMismatch', `source bytes hash to ${md5}, the source ETag says ${expectedMd5}`));
        return;
      }
      resolve({ bytes: bytes ?? first ?? Buffer.alloc(0), md5 });
    };
    const onData = (chunk: Buffer): void => {
      onBytes?.(chunk.length);
      if (filled + chunk.length > expectedSize) return done(sizeError(filled + chunk.length));
      if (filled === 0 && first === undefined) first = chunk;
      else {
        if (bytes === undefined) {
          bytes = Buffer.allocUnsafe(expectedSize);
          if (first) first.copy(bytes, 0);
        }
        chunk.copy(bytes, filled);
      }
      filled += chunk.length;
      hash?.update(chunk);
    };
    const onEnd = (): void => done(filled === expectedSize ? undefined : sizeError(filled));
    const onError = (error: Error): void => done(error);
    // A close without an end: the body was cut (or destroyed) before all of it came.
    const onClose = (): void =>
      done(Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
    body.once('close', onClose);
    if (body.destroyed) done(body.errored ?? Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
  });
}

/** The source object is no longer the one cataloged: the row becomes `changed`, never copied under the old row. */
export class SourceChangedError extends Error {
  readonly code = 'SourceChanged';
  constructor(message: string) {
    super(message);
    this.name = 'SourceChanged';
  }
}

/** The destination accepted the write but nothing proves it holds our bytes: reported, never marked done. */
export class NoEvidenceError extends Error {
  readonly code = 'NoEvidence';
  constructor(
    message: string,
    /** The answer was an encrypted one (SSE-KMS, SSE-C), whose ETag is not an MD5. */
    readonly encryptedAnswer = false,
    /** The write had carried Content-MD5. */
    readonly contentMd5Sent = false,
  ) {
    super(message);
    this.name = 'NoEvidence';
  }
}

/** A multipart copy stopped between parts (first Ctrl+C): its upload is kept for the next run. */
export class TransferStoppedError extends Error {
  readonly code = 'TransferStopped';
  constructor() {
    super('stopped between parts; the upload is kept for the next run');
    this.name = 'TransferStopped';
  }
}
