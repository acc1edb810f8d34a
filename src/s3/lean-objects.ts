import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { GetObjectCommandOutput } from '@aws-sdk/client-s3';
import type { GetOptions, PutOptions, SourceObject, WriteAnswer, WriteEncryption } from './bucket.js';
import { encryptedBy, quoted, totalOf } from './bucket.js';
import { xmlField, type LeanPath } from './lean-path.js';
import { copiedHeaders, type CopiedHeaders } from './object-headers.js';

/**
 * GetObject and PutObject/UploadPart on the lean path (lean-path.ts): the SDK's request headers from our
 * inputs, and its output fields from the answer's headers, for exactly the fields S3Bucket uses.
 */

type Headers = Record<string, string | string[] | undefined>;

function header(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

const DAYS = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const MONTHS = '(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
// The three HTTP date forms the SDK parses (RFC 7231: IMF-fixdate, RFC 850, asctime); anything else is
// not a date to the SDK, which then leaves Expires unset (and the header is not copied).
const HTTP_DATE = new RegExp(
  `^(?:${DAYS}, \\d{2} ${MONTHS} \\d{4} \\d{2}:\\d{2}:\\d{2}(?:\\.\\d+)? GMT` +
    `|(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), \\d{2}-${MONTHS}-\\d{2} \\d{2}:\\d{2}:\\d{2}(?:\\.\\d+)? GMT` +
    `|${DAYS} ${MONTHS} [ \\d]\\d \\d{2}:\\d{2}:\\d{2}(?:\\.\\d+)? \\d{4})$`,
);

function httpDate(value: string | undefined): Date | undefined {
  if (value === undefined || !HTTP_DATE.test(value)) return undefined;
  const date = new Date(value.includes('GMT') || !/\d{4}$/.test(value) ? value : `${value} GMT`);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** The GetObject output fields S3Bucket reads, from an answer's headers (as the SDK deserialises them). */
export function getOutputOf(headers: Headers): GetObjectCommandOutput {
  const metadata: Record<string, string> = {};
  let hasMetadata = false;
  for (const name of Object.keys(headers)) {
    if (name.startsWith('x-amz-meta-')) {
      metadata[name.slice('x-amz-meta-'.length)] = header(headers, name)!;
      hasMetadata = true;
    }
  }
  const length = header(headers, 'content-length');
  const tagCount = header(headers, 'x-amz-tagging-count');
  return {
    $metadata: {},
    ContentLength: length === undefined ? undefined : Number(length),
    ContentRange: header(headers, 'content-range'),
    ETag: header(headers, 'etag'),
    ServerSideEncryption: header(headers, 'x-amz-server-side-encryption') as GetObjectCommandOutput['ServerSideEncryption'],
    SSECustomerAlgorithm: header(headers, 'x-amz-server-side-encryption-customer-algorithm'),
    ContentType: header(headers, 'content-type'),
    ContentEncoding: header(headers, 'content-encoding'),
    ContentDisposition: header(headers, 'content-disposition'),
    ContentLanguage: header(headers, 'content-language'),
    CacheControl: header(headers, 'cache-control'),
    Expires: httpDate(header(headers, 'expires')),
    WebsiteRedirectLocation: header(headers, 'x-amz-website-redirect-location'),
    StorageClass: header(headers, 'x-amz-storage-class') as GetObjectCommandOutput['StorageClass'],
    TagCount: tagCount === undefined ? undefined : Number(tagCount),
    Metadata: hasMetadata ? metadata : {},
  };
}

/** The SSE-C request headers the SDK writes for SSECustomerAlgorithm + SSECustomerKey (its MD5 computed). */
export function sseCustomerHeaders(base64Key: string | undefined, prefix = 'x-amz-server-side-encryption-customer'): Record<string, string> {
  if (base64Key === undefined) return {};
  return {
    [`${prefix}-algorithm`]: 'AES256',
    [`${prefix}-key`]: base64Key,
    [`${prefix}-key-md5`]: createHash('md5').update(Buffer.from(base64Key, 'base64')).digest('base64'),
  };
}

/**
 * The headers the SDK's PutObject / CreateMultipartUpload serialiser writes for what a write carries
 * besides the copied headers: tags, storage class, SSE-S3/SSE-KMS and SSE-C.
 */
export function writeHeadersOf(write: {
  tagging?: string;
  storageClass?: string;
  encryption?: WriteEncryption;
  sseCustomerKey?: string;
}): Record<string, string> {
  const headers: Record<string, string> = {};
  if (write.encryption) {
    headers['x-amz-server-side-encryption'] = write.encryption.algorithm;
    if (write.encryption.kmsKeyId !== undefined) headers['x-amz-server-side-encryption-aws-kms-key-id'] = write.encryption.kmsKeyId;
  }
  if (write.storageClass !== undefined) headers['x-amz-storage-class'] = write.storageClass;
  if (write.tagging !== undefined) headers['x-amz-tagging'] = write.tagging;
  return { ...headers, ...sseCustomerHeaders(write.sseCustomerKey) };
}

export async function leanGet(
  lean: LeanPath,
  bucket: string,
  key: string,
  options: GetOptions & { sseCustomerKey?: string },
): Promise<SourceObject> {
  const headers: Record<string, string> = {};
  if (options.ifMatch !== undefined) headers['if-match'] = quoted(options.ifMatch);
  if (options.range) headers.range = `bytes=${options.range.start}-${options.range.end}`;
  Object.assign(headers, sseCustomerHeaders(options.sseCustomerKey));
  const answer = await lean.send({
    method: 'GET',
    bucket,
    key,
    query: { 'x-id': 'GetObject' },
    headers,
    unsignedPayload: false,
    signal: options.signal,
  });
  const output = getOutputOf(answer.headers);
  // A 2xx GET answer always comes with its body stream.
  const body: Readable = lean.wrapBody ? lean.wrapBody(answer.body!) : answer.body!;
  return {
    body,
    contentLength: output.ContentLength,
    objectSize: options.range ? totalOf(output.ContentRange) : output.ContentLength,
    etag: output.ETag,
    encrypted: encryptedBy(output),
    headers: copiedHeaders(output),
    storageClass: output.StorageClass,
    tagCount: output.TagCount,
  };
}

/** The headers the SDK's PutObject / CreateMultipartUpload serialiser writes for the copied fields. */
export function putHeadersOf(copied: CopiedHeaders | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  if (!copied) return headers;
  if (copied.ContentType !== undefined) headers['content-type'] = copied.ContentType;
  if (copied.ContentEncoding !== undefined) headers['content-encoding'] = copied.ContentEncoding;
  if (copied.ContentDisposition !== undefined) headers['content-disposition'] = copied.ContentDisposition;
  if (copied.ContentLanguage !== undefined) headers['content-language'] = copied.ContentLanguage;
  if (copied.CacheControl !== undefined) headers['cache-control'] = copied.CacheControl;
  if (copied.Expires instanceof Date) headers.expires = copied.Expires.toUTCString();
  if (copied.WebsiteRedirectLocation !== undefined) headers['x-amz-website-redirect-location'] = copied.WebsiteRedirectLocation;
  for (const [name, value] of Object.entries(copied.Metadata ?? {})) headers[`x-amz-meta-${name.toLowerCase()}`] = value;
  return headers;
}

export async function leanPut(
  lean: LeanPath,
  bucket: string,
  key: string,
  body: Buffer | Readable,
  options: PutOptions & { query: Record<string, string>; writeHeaders: Record<string, string> },
): Promise<WriteAnswer> {
  const headers = { ...putHeadersOf(options.headers), ...options.writeHeaders };
  headers['content-length'] = String(options.contentLength);
  if (options.contentMd5 !== undefined) headers['content-md5'] = options.contentMd5;
  const answer = await lean.send({
    method: 'PUT',
    bucket,
    key,
    query: options.query,
    headers,
    body,
    // The signed Content-MD5 covers the body; the server refuses one that does not match it.
    unsignedPayload: options.contentMd5 !== undefined,
    signal: options.signal,
  });
  return {
    etag: header(answer.headers, 'etag'),
    encrypted: encryptedBy({
      ServerSideEncryption: header(answer.headers, 'x-amz-server-side-encryption'),
      SSECustomerAlgorithm: header(answer.headers, 'x-amz-server-side-encryption-customer-algorithm'),
    }),
  };
}

/**
 * CopyObject as the SDK sends it (an empty PUT with x-amz-copy-source and the directives), its answer's
 * ETag read from the CopyObjectResult document; a 200 whose document is an <Error> fails as the SDK's
 * does (lean-path.ts). Server-side copies of small objects were CPU-bound on the SDK's request stack.
 */
export async function leanCopy(
  lean: LeanPath,
  bucket: string,
  key: string,
  options: {
    copySource: string;
    ifMatch?: string;
    copyTags: boolean;
    sourceSseCustomerKey?: string;
    writeHeaders: Record<string, string>;
    signal?: AbortSignal;
  },
): Promise<WriteAnswer> {
  const headers: Record<string, string> = {
    'x-amz-copy-source': options.copySource,
    'x-amz-metadata-directive': 'COPY',
    'x-amz-tagging-directive': options.copyTags ? 'COPY' : 'REPLACE',
    ...sseCustomerHeaders(options.sourceSseCustomerKey, 'x-amz-copy-source-server-side-encryption-customer'),
    ...options.writeHeaders,
  };
  if (options.ifMatch !== undefined) headers['x-amz-copy-source-if-match'] = quoted(options.ifMatch);
  const query = { 'x-id': 'CopyObject' };
  const answer = await lean.send({ method: 'PUT', bucket, key, query, headers, unsignedPayload: false, readWhole: true, signal: options.signal });
  return {
    etag: xmlField(answer.text ?? '', 'ETag'),
    encrypted: encryptedBy({
      ServerSideEncryption: header(answer.headers, 'x-amz-server-side-encryption'),
      SSECustomerAlgorithm: header(answer.headers, 'x-amz-server-side-encryption-customer-algorithm'),
    }),
  };
}
