import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

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

export function unquote(etag: string | undefined): string | undefined {
  return etag === undefined ? undefined : etag.replace(/^W\//, '').replace(/^"+|"+$/g, '');
}

/** True when an ETag is a plain MD5 of the content (a single PUT without SSE-KMS/SSE-C). */
export function isPlainMd5(etag: string | undefined): boolean {
  const value = unquote(etag);
  return value !== undefined && /^[0-9a-f]{32}$/i.test(value);
}

/** S3's multipart ETag: MD5 of the concatenated binary part MD5s, then "-<parts>". */
export function multipartEtag(partDigests: readonly Buffer[]): string {
  const hash = createHash('md5');
  for (const digest of partDigests) hash.update(digest);
  return `${hash.digest('hex')}-${partDigests.length}`;
}

/**
 * A pass-through stream that hashes what flows through it: the MD5 of the whole and of each part
 * (parts cut at `partSize`, as lib-storage cuts them). It checks at the end that exactly `expectedSize`
 * bytes came, and that their MD5 matches `expectedMd5` when the source gave a plain-MD5 ETag; failing
 * either, the stream errors before the upload can complete.
 */
export class HashingStream extends Transform {
  private readonly whole = createHash('md5');
  private part: Hash = createHash('md5');
  private partBytes = 0;
  private readonly partDigests: Buffer[] = [];
  bytes = 0;
  md5 = '';

  constructor(
    private readonly partSize: number,
    private readonly expectedSize: number,
    private readonly expectedMd5: string | undefined,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.whole.update(chunk);
    this.bytes += chunk.length;
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(this.partSize - this.partBytes, chunk.length - offset);
      this.part.update(take === chunk.length ? chunk : chunk.subarray(offset, offset + take));
      this.partBytes += take;
      offset += take;
      if (this.partBytes === this.partSize) this.closePart();
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.partBytes > 0 || this.partDigests.length === 0) this.closePart();
    this.md5 = this.whole.digest('hex');
    if (this.bytes !== this.expectedSize) {
      return callback(
        new IntegrityError('TruncatedBody', `read ${this.bytes} bytes from the source, expected ${this.expectedSize}`),
      );
    }
    if (this.expectedMd5 !== undefined && this.md5 !== this.expectedMd5) {
      return callback(
        new IntegrityError('IntegrityMismatch', `source bytes hash to ${this.md5}, the source ETag says ${this.expectedMd5}`),
      );
    }
    callback();
  }

  private closePart(): void {
    this.partDigests.push(this.part.digest());
    this.part = createHash('md5');
    this.partBytes = 0;
  }

  /** The ETag S3 gives a multipart upload of these bytes with this part size. */
  get multipartEtag(): string {
    return multipartEtag(this.partDigests);
  }
}
