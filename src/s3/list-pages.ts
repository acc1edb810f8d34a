import { ListObjectsV2Command, type S3Client } from './sdk.js';
import { FatalError } from '../errors.js';
import type { ListedObject } from '../state/types.js';
import { leanListObjects, type RawListAnswer } from './lean-list.js';
import { LeanHandover, leanPathOf } from './lean-path.js';

export interface ListingPage {
  objects: ListedObject[];
  /** The last key of this page: a listing restarted with StartAfter = this key continues right after it. */
  lastKey: string;
}

/** One ListObjectsV2 request. */
export interface ListRequest {
  bucket: string;
  /** '' for the whole bucket. */
  prefix: string;
  /** List only keys after this one ('' or undefined: from the first). Ignored with a continuation token. */
  startAfter?: string;
  continuationToken?: string;
  /** Group keys by this delimiter into common prefixes (a "directory" listing). */
  delimiter?: string;
  maxKeys?: number;
  signal?: AbortSignal;
}

/** One ListObjectsV2 answer, its keys and prefixes decoded: exactly the bytes of the keys at the source. */
export interface ListAnswer {
  objects: ListedObject[];
  /** Common prefixes of a delimiter listing, in the server's order. */
  prefixes: string[];
  truncated: boolean;
  /** Opaque: passed back as the server gave it, never decoded. */
  nextToken?: string;
  /** The server URL-encoded the keys of this answer (it supports EncodingType=url). */
  encoded: boolean;
}

/**
 * Decodes a key (or prefix) of a listing asked with EncodingType=url. AWS encodes like an HTML form (a space
 * is `+`, a `+` is `%2B`, other bytes %XX of their UTF-8), as the AWS CLI decodes it (unquote_plus); Ceph RGW
 * writes a space as %20 and a `+` as %2B, which the same decoding reads. Throws on a malformed escape or
 * bytes that are not UTF-8: a key we cannot decode exactly is never stored as some other key.
 */
export function decodeListedKey(encoded: string): string {
  try {
    return decodeURIComponent(encoded.replace(/\+/g, ' '));
  } catch {
    throw new FatalError(
      `The source listed a URL-encoded key that is not valid URL encoding: ${JSON.stringify(encoded)}. ` +
        `It cannot be decoded to the object's exact name; report this with the server's name and version.`,
    );
  }
}

/** Clients of servers that refused EncodingType=url (it is then never asked again of them). */
const noEncoding = new WeakSet<S3Client>();

/**
 * Sends one ListObjectsV2. Asks for EncodingType=url, so that keys holding characters XML cannot carry
 * (control characters) come back intact; whether the answer IS encoded is read from its EncodingType
 * element (s3rver ignores the parameter and answers keys as they are, without the element). A server that
 * refuses the parameter (400) is asked again without it.
 */
export async function listObjectsPage(client: S3Client, request: ListRequest): Promise<ListAnswer> {
  const ask = async (encode: boolean): Promise<RawListAnswer> => {
    const lean = leanPathOf(client);
    if (lean?.serves(request.bucket)) {
      try {
        return await leanListObjects(lean, {
          bucket: request.bucket,
          prefix: request.prefix,
          startAfter: request.startAfter,
          continuationToken: request.continuationToken,
          delimiter: request.delimiter,
          maxKeys: request.maxKeys ?? 1000,
          encodingType: encode ? 'url' : undefined,
          signal: request.signal,
        });
      } catch (error) {
        if (!(error instanceof LeanHandover)) throw error;
      }
    }
    const response = await client.send(
      new ListObjectsV2Command({
        Bucket: request.bucket,
        Prefix: request.prefix === '' ? undefined : request.prefix,
        MaxKeys: request.maxKeys ?? 1000,
        StartAfter: request.continuationToken === undefined && request.startAfter ? request.startAfter : undefined,
        ContinuationToken: request.continuationToken,
        Delimiter: request.delimiter,
        EncodingType: encode ? 'url' : undefined,
      }),
      { abortSignal: request.signal },
    );
    return {
      objects: (response.Contents ?? []).map((item) => ({
        key: item.Key!,
        size: item.Size ?? 0,
        etag: item.ETag,
        lastModified: (item.LastModified ?? new Date(0)).toISOString(),
        storageClass: item.StorageClass,
      })),
      prefixes: (response.CommonPrefixes ?? []).flatMap((entry) => (entry.Prefix === undefined ? [] : [entry.Prefix])),
      truncated: response.IsTruncated === true,
      nextToken: response.IsTruncated ? response.NextContinuationToken : undefined,
      encodingType: response.EncodingType,
    };
  };
  let response: RawListAnswer;
  const encode = !noEncoding.has(client);
  try {
    response = await ask(encode);
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    const name = (error as Error).name;
    if (!encode || status !== 400 || !/InvalidArgument|NotImplemented|InvalidRequest/.test(name)) throw error;
    noEncoding.add(client);
    response = await ask(false);
  }
  const encoded = typeof response.encodingType === 'string' && response.encodingType.toLowerCase() === 'url';
  if (encoded) {
    for (const object of response.objects) object.key = decodeListedKey(object.key);
    response.prefixes = response.prefixes.map(decodeListedKey);
  }
  return { objects: response.objects, prefixes: response.prefixes, truncated: response.truncated, nextToken: response.nextToken, encoded };
}

export interface ListPagesOptions {
  bucket: string;
  prefix: string;
  /** Resume point: list only keys after this one ('' for the beginning). */
  startAfter: string;
  pageSize?: number;
  signal?: AbortSignal;
  /** Called once per ListObjectsV2 request (for progress and tests). */
  onRequest?: () => void;
}

/** Lists a bucket page by page (ListObjectsV2); holds one page in memory at a time. */
export async function* listPages(client: S3Client, options: ListPagesOptions): AsyncGenerator<ListingPage> {
  let continuationToken: string | undefined;
  do {
    options.onRequest?.();
    const answer = await listObjectsPage(client, {
      bucket: options.bucket,
      prefix: options.prefix,
      maxKeys: options.pageSize ?? 1000,
      // StartAfter only matters on the first request; continuation tokens carry on from there.
      startAfter: options.startAfter,
      continuationToken,
      signal: options.signal,
    });
    if (answer.objects.length > 0) yield { objects: answer.objects, lastKey: answer.objects[answer.objects.length - 1]!.key };
    continuationToken = answer.nextToken;
  } while (continuationToken !== undefined);
}
