import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectTaggingCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type S3Client,
} from './sdk.js';
import type { StorageClass, Tag } from '@aws-sdk/client-s3';
import { classifyError } from './errors.js';
import { LeanHandover, leanPathOf, type LeanPath } from './lean-path.js';
import { leanCopy, leanGet, leanPut, writeHeadersOf } from './lean-objects.js';
import { copiedHeaders, type CopiedHeaders } from './object-headers.js';
import { tagSide, type Side } from './side.js';

/** What a HeadObject tells about an object. */
export interface ObjectHead {
  size: number;
  etag?: string;
  /** SSE-KMS or SSE-C: the ETag is not an MD5 of the content. */
  encrypted: boolean;
  storageClass?: string;
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
  /** x-amz-storage-class: absent for STANDARD on AWS (Ceph RGW names it when it was set explicitly). */
  storageClass?: string;
  /** x-amz-tagging-count: the number of tags, where the server reports it (absent: none, or not reported). */
  tagCount?: number;
}

/** An object on another bucket of the same endpoint, read by the server itself (server-side copy). */
export interface CopySource {
  bucket: string;
  key: string;
  /** Only this version: a server answers 412 when the object's ETag differs. */
  ifMatch?: string;
  /** The source's SSE-C key (base64), for the server to read an SSE-C object. */
  sseCustomerKey?: string;
}

/** What a HeadObject of one part tells (partNumber): the part's size and how many parts the object has. */
export interface PartHead {
  size: number;
  partsCount?: number;
  etag?: string;
  headers: CopiedHeaders;
  storageClass?: string;
  tagCount?: number;
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
  /** Tags and storage class of the object written. */
  write?: ObjectWrite;
  signal?: AbortSignal;
}

/** What a write of one object carries besides its bytes and headers. */
export interface ObjectWrite {
  tags?: readonly Tag[];
  /** Sent as given: only the server knows its classes (a refused one: InvalidStorageClass, or RGW's InvalidArgument). */
  storageClass?: string;
}

/** Server-side encryption of every object written to a bucket: SSE-S3 (AES256) or SSE-KMS. */
export interface WriteEncryption {
  algorithm: 'AES256' | 'aws:kms';
  kmsKeyId?: string;
}

/** How one side's objects are read and written: its SSE-C key, and the encryption of what is written. */
export interface BucketOptions {
  /** SSE-C key (base64 of 32 bytes): sent on every request that reads, writes or heads an object. */
  sseCustomerKey?: string;
  /** Asked for every object written here (PutObject, CreateMultipartUpload, CopyObject). */
  encryption?: WriteEncryption;
}

/** The x-amz-tagging value of a tag set: a URL-encoded query string (`a=1&b=two%20words`). */
export function taggingOf(tags: readonly Tag[]): string {
  return tags.map((tag) => `${encodeURIComponent(tag.Key ?? '')}=${encodeURIComponent(tag.Value ?? '')}`).join('&');
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

/** The x-amz-copy-source-server-side-encryption-customer-* fields of an SSE-C source. */
function copySourceSse(source: CopySource): { CopySourceSSECustomerAlgorithm?: string; CopySourceSSECustomerKey?: string } {
  return source.sseCustomerKey === undefined
    ? {}
    : { CopySourceSSECustomerAlgorithm: 'AES256', CopySourceSSECustomerKey: source.sseCustomerKey };
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
    readonly options: BucketOptions = {},
  ) {}

  /** This side's SSE-C key (base64), to name it as a copy source. */
  get sseCustomerKey(): string | undefined {
    return this.options.sseCustomerKey;
  }

  /**
   * True when what is written here is encrypted so that its ETags are not MD5s of the content (SSE-C,
   * SSE-KMS): writes then need a Content-MD5 the server is proven to check (see evidence.ts).
   */
  get writesOpaqueEtags(): boolean {
    return this.options.sseCustomerKey !== undefined || this.options.encryption?.algorithm === 'aws:kms';
  }

  /** SSECustomerAlgorithm + SSECustomerKey for the SDK (it adds the key's MD5), when this side has a key. */
  private sseInput(): { SSECustomerAlgorithm?: string; SSECustomerKey?: string } {
    const key = this.options.sseCustomerKey;
    return key === undefined ? {} : { SSECustomerAlgorithm: 'AES256', SSECustomerKey: key };
  }

  /** What every object write carries: encryption, SSE-C, and the object's tags and storage class. */
  private writeInput(write: ObjectWrite | undefined): {
    ServerSideEncryption?: 'AES256' | 'aws:kms';
    SSEKMSKeyId?: string;
    StorageClass?: StorageClass;
    Tagging?: string;
    SSECustomerAlgorithm?: string;
    SSECustomerKey?: string;
  } {
    const encryption = this.options.encryption;
    return {
      ...(encryption ? { ServerSideEncryption: encryption.algorithm } : {}),
      ...(encryption?.kmsKeyId !== undefined ? { SSEKMSKeyId: encryption.kmsKeyId } : {}),
      ...(write?.storageClass !== undefined ? { StorageClass: write.storageClass as StorageClass } : {}),
      ...(write?.tags && write.tags.length > 0 ? { Tagging: taggingOf(write.tags) } : {}),
      ...this.sseInput(),
    };
  }

  /** The same as writeInput, as the lean path's request headers. */
  private writeHeaders(write: ObjectWrite | undefined): Record<string, string> {
    return writeHeadersOf({
      tagging: write?.tags && write.tags.length > 0 ? taggingOf(write.tags) : undefined,
      storageClass: write?.storageClass,
      encryption: this.options.encryption,
      sseCustomerKey: this.options.sseCustomerKey,
    });
  }

  private async call<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw tagSide(error, this.side);
    }
  }

  /** The client's lean path for this bucket (GetObject, PutObject, UploadPart, CopyObject), when it has one. */
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
        const answer = await this.client.send(new HeadObjectCommand({ Bucket: this.name, Key: key, ...this.sseInput() }), {
          abortSignal: signal,
        });
        return { size: answer.ContentLength ?? 0, etag: answer.ETag, encrypted: encryptedBy(answer), storageClass: answer.StorageClass };
      } catch (error) {
        if (classifyError(error).kind === 'not-found') return undefined;
        throw error;
      }
    });
  }

  get(key: string, options: GetOptions = {}): Promise<SourceObject> {
    const withKey = { ...options, sseCustomerKey: this.options.sseCustomerKey };
    return this.call(() => this.leanOr((lean) => leanGet(lean, this.name, key, withKey), () => this.sdkGet(key, options)));
  }

  private async sdkGet(key: string, options: GetOptions): Promise<SourceObject> {
    const answer = await this.client.send(
      new GetObjectCommand({
        Bucket: this.name,
        Key: key,
        IfMatch: options.ifMatch === undefined ? undefined : quoted(options.ifMatch),
        Range: options.range ? `bytes=${options.range.start}-${options.range.end}` : undefined,
        ...this.sseInput(),
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
      storageClass: answer.StorageClass,
      tagCount: answer.TagCount,
    };
  }

  /** HeadObject of one part (partNumber): its size, the object's part count and headers. */
  headPart(key: string, partNumber: number, signal?: AbortSignal): Promise<PartHead> {
    return this.call(async () => {
      const answer = await this.client.send(
        new HeadObjectCommand({ Bucket: this.name, Key: key, PartNumber: partNumber, ...this.sseInput() }),
        { abortSignal: signal },
      );
      return {
        size: answer.ContentLength ?? 0,
        partsCount: answer.PartsCount,
        etag: answer.ETag,
        headers: copiedHeaders(answer),
        storageClass: answer.StorageClass,
        tagCount: answer.TagCount,
      };
    });
  }

  /**
   * CopyObject: the server copies `source` to `key`, headers and user metadata included; its tags too
   * unless `copyTags` is false. The storage class is `storageClass` (else the destination's default).
   */
  copyFrom(
    source: CopySource,
    key: string,
    options: { storageClass?: string; copyTags: boolean; signal?: AbortSignal },
  ): Promise<WriteAnswer> {
    const fast = (lean: LeanPath): Promise<WriteAnswer> =>
      leanCopy(lean, this.name, key, {
        copySource: copySourceOf(source),
        ifMatch: source.ifMatch,
        copyTags: options.copyTags,
        sourceSseCustomerKey: source.sseCustomerKey,
        writeHeaders: this.writeHeaders({ storageClass: options.storageClass }),
        signal: options.signal,
      });
    return this.call(() => this.leanOr(fast, () => this.sdkCopyFrom(source, key, options)));
  }

  private async sdkCopyFrom(
    source: CopySource,
    key: string,
    options: { storageClass?: string; copyTags: boolean; signal?: AbortSignal },
  ): Promise<WriteAnswer> {
    const answer = await this.client.send(
      new CopyObjectCommand({
        Bucket: this.name,
        Key: key,
        CopySource: copySourceOf(source),
        CopySourceIfMatch: source.ifMatch === undefined ? undefined : quoted(source.ifMatch),
        MetadataDirective: 'COPY',
        TaggingDirective: options.copyTags ? 'COPY' : 'REPLACE',
        ...copySourceSse(source),
        ...this.writeInput({ storageClass: options.storageClass }),
      }),
      { abortSignal: options.signal },
    );
    return { etag: answer.CopyObjectResult?.ETag, encrypted: encryptedBy(answer) };
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
          ...copySourceSse(source),
          ...this.sseInput(),
        }),
        { abortSignal: signal },
      );
      return { etag: answer.CopyPartResult?.ETag, encrypted: encryptedBy(answer) };
    });
  }

  put(key: string, body: Buffer | Readable, options: PutOptions): Promise<WriteAnswer> {
    return this.call(() =>
      this.leanOr(
        (lean) =>
          leanPut(lean, this.name, key, body, { query: { 'x-id': 'PutObject' }, writeHeaders: this.writeHeaders(options.write), ...options }),
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
        ...this.writeInput(options.write),
      }),
      { abortSignal: options.signal },
    );
    return { etag: answer.ETag, encrypted: encryptedBy(answer) };
  }

  createUpload(key: string, headers: CopiedHeaders, write?: ObjectWrite, signal?: AbortSignal): Promise<string> {
    return this.call(async () => {
      const answer = await this.client.send(
        new CreateMultipartUploadCommand({ Bucket: this.name, Key: key, ...headers, ...this.writeInput(write) }),
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
            // An upload's encryption is fixed when it is created: parts carry the SSE-C key alone.
            writeHeaders: writeHeadersOf({ sseCustomerKey: this.options.sseCustomerKey }),
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
          ...this.sseInput(),
        }),
        { abortSignal: options.signal },
      );
      return { etag: answer.ETag, encrypted: encryptedBy(answer) };
    }
  }

  /** GetObjectTagging: the object's tags (no SSE-C key needed: tags are not encrypted). */
  getTags(key: string, signal?: AbortSignal): Promise<Tag[]> {
    return this.call(async () => {
      const answer = await this.client.send(new GetObjectTaggingCommand({ Bucket: this.name, Key: key }), { abortSignal: signal });
      return answer.TagSet ?? [];
    });
  }

  /** DeleteObjectTagging: the object keeps no tags. */
  deleteTags(key: string, signal?: AbortSignal): Promise<void> {
    return this.call(async () => {
      await this.client.send(new DeleteObjectTaggingCommand({ Bucket: this.name, Key: key }), { abortSignal: signal });
    });
  }

  /** PutObjectTagging: replaces the object's tags. */
  putTags(key: string, tags: readonly Tag[], signal?: AbortSignal): Promise<void> {
    return this.call(async () => {
      await this.client.send(new PutObjectTaggingCommand({ Bucket: this.name, Key: key, Tagging: { TagSet: [...tags] } }), {
        abortSignal: signal,
      });
    });
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
   * Does this server refuse a write whose Content-MD5 does not match its body, on PutObject and on
   * UploadPart alike? Writes one tiny object with a wrong digest at `probeKey`, encrypted as every write
   * here: refused (BadDigest / InvalidDigest) proves the server checks; stored proves it does not (the
   * probe object is deleted again). Then the same for one part of an upload at `probeKey` (aborted
   * afterwards). Anything else counts as "not proven".
   */
  async refusesBadContentMd5(probeKey: string): Promise<boolean> {
    const body = Buffer.from('s3migrate probe');
    const wrong = createHash('md5').update('not the body').digest('base64');
    const refused = (error: unknown): boolean => ['BadDigest', 'InvalidDigest'].includes(classifyError(error).code);
    try {
      await this.client.send(
        new PutObjectCommand({ Bucket: this.name, Key: probeKey, Body: body, ContentLength: body.length, ContentMD5: wrong, ...this.writeInput(undefined) }),
      );
    } catch (error) {
      if (!refused(error)) return false;
      return this.refusesBadPartMd5(probeKey, body, wrong);
    }
    await this.delete(probeKey).catch(() => undefined);
    return false;
  }

  private async refusesBadPartMd5(probeKey: string, body: Buffer, wrong: string): Promise<boolean> {
    let uploadId: string;
    try {
      uploadId = await this.createUpload(probeKey, {});
    } catch {
      return false;
    }
    try {
      await this.client.send(
        new UploadPartCommand({
          Bucket: this.name,
          Key: probeKey,
          UploadId: uploadId,
          PartNumber: 1,
          Body: body,
          ContentLength: body.length,
          ContentMD5: wrong,
          ...this.sseInput(),
        }),
      );
      return false;
    } catch (error) {
      return ['BadDigest', 'InvalidDigest'].includes(classifyError(error).code);
    } finally {
      await this.abortUpload(probeKey, uploadId).catch(() => undefined);
    }
  }

  /**
   * Does this server refuse the storage class `storageClass`? Writes an empty probe object with that
   * class (and nothing else it would not take from every write) at `probeKey`: refused with
   * InvalidStorageClass or InvalidArgument (Ceph RGW's answer, with no message) -> true; stored -> false
   * (deleted again); any other answer -> undefined (cannot tell).
   */
  async refusesStorageClass(probeKey: string, storageClass: string): Promise<boolean | undefined> {
    try {
      await this.client.send(
        new PutObjectCommand({ Bucket: this.name, Key: probeKey, Body: Buffer.alloc(0), ContentLength: 0, ...this.writeInput({ storageClass }) }),
      );
    } catch (error) {
      const code = classifyError(error).code;
      return code === 'InvalidStorageClass' || code === 'InvalidArgument' ? true : undefined;
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
