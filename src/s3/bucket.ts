import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type S3Client,
} from './sdk.js';
import { classifyError } from './errors.js';
import { LeanHandover, leanPathOf, type LeanPath } from './lean-path.js';
import { leanGet, leanPut } from './lean-objects.js';
import { copiedHeaders, type CopiedHeaders } from './object-headers.js';
import { tagSide, type Side } from './side.js';

/** What a HeadObject tells about an object. */
export interface ObjectHead {
  size: number;
  etag?: string;
  /** SSE-KMS or SSE-C: the ETag is not an MD5 of the content. */
  encrypted: boolean;
}

/** A GetObject answer: the body to stream and what the source says about the object. */
export interface SourceObject {
  body: Readable;
  /** Bytes in this answer (the range's length for a ranged read). */
  contentLength?: number;
  /** The whole object's size (from Content-Range for a ranged read). */
  objectSize?: number;
  etag?: string;
  encrypted: boolean;
  headers: CopiedHeaders;
}

/** An object on another bucket of the same endpoint, read by the server itself (server-side copy). */
export interface CopySource {
  bucket: string;
  key: string;
  /** Only this version: a server answers 412 when the object's ETag differs. */
  ifMatch?: string;
}

/** What a HeadObject of one part tells (partNumber): the part's size and how many parts the object has. */
export interface PartHead {
  size: number;
  partsCount?: number;
  etag?: string;
  headers: CopiedHeaders;
}

/** What the destination answered to a write (PutObject or CompleteMultipartUpload). */
export interface WriteAnswer {
  etag?: string;
  encrypted: boolean;
}

export interface GetOptions {
  /** Only this version: the server answers 412 when the object's ETag differs (where it supports If-Match). */
  ifMatch?: string;
  /** Inclusive byte range. */
  range?: { start: number; end: number };
  signal?: AbortSignal;
}

export interface PutOptions {
  contentLength: number;
  /** Base64 MD5 of the body: servers that check it refuse damaged bytes (BadDigest). */
  contentMd5?: string;
  headers?: CopiedHeaders;
  signal?: AbortSignal;
}

export function encryptedBy(answer: { ServerSideEncryption?: string; SSECustomerAlgorithm?: string }): boolean {
  return (
    answer.SSECustomerAlgorithm !== undefined ||
    answer.ServerSideEncryption === 'aws:kms' ||
    answer.ServerSideEncryption === 'aws:kms:dsse'
  );
}

export function quoted(etag: string): string {
  return etag.startsWith('"') ? etag : `"${etag}"`;
}

/** `bucket/key` for x-amz-copy-source, the key URL-encoded (its slashes kept). */
function copySourceOf(source: CopySource): string {
  return `${source.bucket}/${encodeURIComponent(source.key).replace(/%2F/g, '/')}`;
}

/** Total size from a Content-Range answer header (`bytes 0-99/1234`). */
export function totalOf(contentRange: string | undefined): number | undefined {
  const match = /\/(\d+)\s*$/.exec(contentRange ?? '');
  return match ? Number(match[1]) : undefined;
}

/**
 * One bucket on one side, and the one home of the S3 calls the engine makes: the core asks for objects,
 * writes and uploads; it never builds SDK commands itself. Every error is tagged with its side, so a
 * failure names the right bucket and credentials.
 */
export class S3Bucket {
  constructor(
    readonly client: S3Client,
    readonly name: string,
    readonly side: Side,
  ) {}

  private async call<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw tagSide(error, this.side);
    }
  }

  /** The client's lean path for this bucket (GetObject, PutObject, UploadPart), when it has one. */
  private lean(): LeanPath | undefined {
    const lean = leanPathOf(this.client);
    return lean?.serves(this.name) ? lean : undefined;
  }

  /** `fast` on the lean path; `sdk` when there is none or it hands this call back (LeanHandover). */
  private async leanOr<T>(fast: (lean: LeanPath) => Promise<T>, sdk: () => Promise<T>): Promise<T> {
    const lean = this.lean();
    if (lean) {
      try {
        return await fast(lean);
      } catch (error) {
        if (!(error instanceof LeanHandover)) throw error;
      }
    }
    return sdk();
  }

  /** HeadBucket: resolves when the bucket answers, throws the SDK's error otherwise. */
  check(signal?: AbortSignal): Promise<void> {
    return this.call(async () => {
      await this.client.send(new HeadBucketCommand({ Bucket: this.name }), { abortSignal: signal });
    });
  }

  /** HeadObject; undefined when there is no such object. */
  head(key: string, signal?: AbortSignal): Promise<ObjectHead | undefined> {
    return this.call(async () => {
      try {
        const answer = await this.client.send(new HeadObjectCommand({ Bucket: this.name, Key: key }), {
          abortSignal: signal,
        });
        return { size: answer.ContentLength ?? 0, etag: answer.ETag, encrypted: encryptedBy(answer) };
      } catch (error) {
        if (classifyError(error).kind === 'not-found') return undefined;
        throw error;
      }
    });
  }

  get(key: string, options: GetOptions = {}): Promise<SourceObject> {
    return this.call(() => this.leanOr((lean) => leanGet(lean, this.name, key, options), () => this.sdkGet(key, options)));
  }

  private async sdkGet(key: string, options: GetOptions): Promise<SourceObject> {
    const answer = await this.client.send(
      new GetObjectCommand({
        Bucket: this.name,
        Key: key,
        IfMatch: options.ifMatch === undefined ? undefined : quoted(options.ifMatch),
        Range: options.range ? `bytes=${options.range.start}-${options.range.end}` : undefined,
      }),
      { abortSignal: options.signal },
    );
    return {
      body: answer.Body as Readable,
      contentLength: answer.ContentLength,
      objectSize: options.range ? totalOf(answer.ContentRange) : answer.ContentLength,
      etag: answer.ETag,
      encrypted: encryptedBy(answer),
      headers: copiedHeaders(answer),
    };
  }

  /** HeadObject of one part (partNumber): its size, the object's part count and headers. */
  headPart(key: string, partNumber: number, signal?: AbortSignal): Promise<PartHead> {
    return this.call(async () => {
      const answer = await this.client.send(new HeadObjectCommand({ Bucket: this.name, Key: key, PartNumber: partNumber }), {
        abortSignal: signal,
      });
      return { size: answer.ContentLength ?? 0, partsCount: answer.PartsCount, etag: answer.ETag, headers: copiedHeaders(answer) };
    });
  }

  /** CopyObject: the server copies `source` to `key`, headers and user metadata included. */
  copyFrom(source: CopySource, key: string, signal?: AbortSignal): Promise<WriteAnswer> {
    return this.call(async () => {
      const answer = await this.client.send(
        new CopyObjectCommand({
          Bucket: this.name,
          Key: key,
          CopySource: copySourceOf(source),
          CopySourceIfMatch: source.ifMatch === undefined ? undefined : quoted(source.ifMatch),
          MetadataDirective: 'COPY',
        }),
        { abortSignal: signal },
      );
      return { etag: answer.CopyObjectResult?.ETag, encrypted: encryptedBy(answer) };
    });
  }

  /** UploadPartCopy: the server copies a byte range of `source` into one part of an upload. */
  uploadPartCopy(
    key: string,
    uploadId: string,
    partNumber: number,
    source: CopySource & { range: { start: number; end: number } },
    signal?: AbortSignal,
  ): Promise<WriteAnswer> {
    return this.call(async () => {
      const answer = await this.client.send(
        new UploadPartCopyCommand({
          Bucket: this.name,
          Key: key,
          UploadId: uploadId,
          PartNumber: partNumber,
          CopySource: copySourceOf(source),
          CopySourceIfMatch: source.ifMatch === undefined ? undefined : quoted(source.ifMatch),
          CopySourceRange: `bytes=${source.range.start}-${source.range.end}`,
        }),
        { abortSignal: signal },
      );
      return { etag: answer.CopyPartResult?.ETag, encrypted: encryptedBy(answer) };
    });
  }

  put(key: string, body: Buffer | Readable, options: PutOptions): Promise<WriteAnswer> {
    return this.call(() =>
      this.leanOr(
        (lean) => leanPut(lean, this.name, key, body, { query: { 'x-id': 'PutObject' }, ...options }),
        () => this.sdkPut(key, body, options),
      ),
    );
  }

  private async sdkPut(key: string, body: Buffer | Readable, options: PutOptions): Promise<WriteAnswer> {
    const answer = await this.client.send(
      new PutObjectCommand({
        Bucket: this.name,
        Key: key,
        Body: body,
        ContentLength: options.contentLength,
        ContentMD5: options.contentMd5,
        ...options.headers,
      }),
      { abortSignal: options.signal },
    );
    return { etag: answer.ETag, encrypted: encryptedBy(answer) };
  }

  createUpload(key: string, headers: CopiedHeaders, signal?: AbortSignal): Promise<string> {
    return this.call(async () => {
      const answer = await this.client.send(
        new CreateMultipartUploadCommand({ Bucket: this.name, Key: key, ...headers }),
        { abortSignal: signal },
      );
      if (!answer.UploadId) throw Object.assign(new Error('CreateMultipartUpload answered without an UploadId'), { name: 'InternalError' });
      return answer.UploadId;
    });
  }

  uploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: Buffer | Readable,
    options: { contentLength: number; contentMd5?: string; signal?: AbortSignal },
  ): Promise<WriteAnswer> {
    return this.call(() =>
      this.leanOr(
        (lean) =>
          leanPut(lean, this.name, key, body, {
            query: { partNumber: String(partNumber), uploadId, 'x-id': 'UploadPart' },
            contentLength: options.contentLength,
            contentMd5: options.contentMd5,
            signal: options.signal,
          }),
        () => this.sdkUploadPart(key, uploadId, partNumber, body, options),
      ),
    );
  }

  private async sdkUploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: Buffer | Readable,
    options: { contentLength: number; contentMd5?: string; signal?: AbortSignal },
  ): Promise<WriteAnswer> {
    {
      const answer = await this.client.send(
        new UploadPartCommand({
          Bucket: this.name,
          Key: key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: body,
          ContentLength: options.contentLength,
          ContentMD5: options.contentMd5,
        }),
        { abortSignal: options.signal },
      );
      return { etag: answer.ETag, encrypted: encryptedBy(answer) };
    }
  }

  completeUpload(
    key: string,
    uploadId: string,
    parts: ReadonlyArray<{ partNumber: number; etag: string }>,
    signal?: AbortSignal,
  ): Promise<WriteAnswer> {
    return this.call(async () => {
      const answer = await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.name,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((part) => ({ PartNumber: part.partNumber, ETag: quoted(part.etag) })) },
        }),
        { abortSignal: signal },
      );
      return { etag: answer.ETag, encrypted: encryptedBy(answer) };
    });
  }

  abortUpload(key: string, uploadId: string): Promise<void> {
    return this.call(async () => {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.name, Key: key, UploadId: uploadId }));
    });
  }

  /**
   * The parts the destination holds for an upload (all pages), or undefined where they cannot be listed
   * (s3rver has no ListParts). Throws NoSuchUpload for an upload that is gone.
   */
  listParts(key: string, uploadId: string, signal?: AbortSignal): Promise<Array<{ partNumber: number; etag: string; size: number }> | undefined> {
    return this.call(async () => {
      const parts: Array<{ partNumber: number; etag: string; size: number }> = [];
      let marker: string | undefined;
      try {
        do {
          const answer = await this.client.send(
            new ListPartsCommand({ Bucket: this.name, Key: key, UploadId: uploadId, PartNumberMarker: marker }),
            { abortSignal: signal },
          );
          for (const part of answer.Parts ?? []) {
            if (part.PartNumber !== undefined && part.ETag !== undefined) {
              parts.push({ partNumber: part.PartNumber, etag: part.ETag, size: part.Size ?? 0 });
            }
          }
          marker = answer.IsTruncated ? answer.NextPartNumberMarker : undefined;
        } while (marker !== undefined);
      } catch (error) {
        if (classifyError(error).code === 'NoSuchUpload' || signal?.aborted) throw error;
        // Not supported (s3rver answers this request as a plain GET of the object), not permitted, or
        // not answered: the caller goes by what it recorded, and an upload that is gone shows itself later.
        return undefined;
      }
      return parts;
    });
  }

  /** Open multipart uploads whose key starts with `prefix` (every page). */
  listUploads(prefix: string, signal?: AbortSignal): Promise<Array<{ key: string; uploadId: string }>> {
    return this.call(async () => {
      const uploads: Array<{ key: string; uploadId: string }> = [];
      let keyMarker: string | undefined;
      let uploadIdMarker: string | undefined;
      for (;;) {
        const answer = await this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.name,
            Prefix: prefix === '' ? undefined : prefix,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
          { abortSignal: signal },
        );
        for (const upload of answer.Uploads ?? []) {
          if (upload.Key !== undefined && upload.UploadId !== undefined) uploads.push({ key: upload.Key, uploadId: upload.UploadId });
        }
        if (!answer.IsTruncated) return uploads;
        keyMarker = answer.NextKeyMarker;
        uploadIdMarker = answer.NextUploadIdMarker;
        if (keyMarker === undefined && uploadIdMarker === undefined) return uploads;
      }
    });
  }

  /**
   * Does this server refuse a write whose Content-MD5 does not match its body? Writes one tiny object
   * with a wrong digest at `probeKey`: refused (BadDigest / InvalidDigest) proves the server checks; stored
   * proves it does not (the probe object is deleted again). Anything else counts as "not proven".
   */
  async refusesBadContentMd5(probeKey: string): Promise<boolean> {
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.name,
          Key: probeKey,
          Body: Buffer.from('s3migrate probe'),
          ContentLength: 15,
          ContentMD5: createHash('md5').update('not the body').digest('base64'),
        }),
      );
    } catch (error) {
      const code = classifyError(error).code;
      return code === 'BadDigest' || code === 'InvalidDigest';
    }
    await this.delete(probeKey).catch(() => undefined);
    return false;
  }

  delete(key: string, signal?: AbortSignal): Promise<void> {
    return this.call(async () => {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.name, Key: key }), { abortSignal: signal });
    });
  }
}
