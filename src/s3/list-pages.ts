import { LeanHandover, leanPathOf } from './lean-path.js';
import { leanList, type ListedPage } from './lean-objects.js';
import { ListObjectsV2Command, type S3Client } from './sdk.js';
import type { ListedObject } from '../state/types.js';

export interface ListingPage {
  objects: ListedObject[];
  /** The last key of this page: a listing restarted with StartAfter = this key continues right after it. */
  lastKey: string;
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
    const request = {
      prefix: options.prefix === '' ? undefined : options.prefix,
      maxKeys: options.pageSize ?? 1000,
      // StartAfter only matters on the first request; continuation tokens carry on from there.
      startAfter: continuationToken === undefined && options.startAfter !== '' ? options.startAfter : undefined,
      continuationToken,
      signal: options.signal,
    };
    const page = await listPage(client, options.bucket, request);
    const objects: ListedObject[] = page.contents.map((item) => ({
      key: item.key,
      size: item.size,
      etag: item.etag,
      lastModified: (item.lastModified ?? new Date(0)).toISOString(),
      storageClass: item.storageClass,
    }));
    if (objects.length > 0) yield { objects, lastKey: objects[objects.length - 1]!.key };
    continuationToken = page.isTruncated ? page.nextContinuationToken : undefined;
  } while (continuationToken !== undefined);
}

type PageRequest = Parameters<typeof leanList>[2];

/** One page: on the client's lean path when it has one (the SDK's deserialiser is most of a catalog's CPU), else the SDK. */
async function listPage(client: S3Client, bucket: string, request: PageRequest): Promise<ListedPage> {
  const lean = leanPathOf(client);
  if (lean?.serves(bucket)) {
    try {
      return await leanList(lean, bucket, request);
    } catch (error) {
      if (!(error instanceof LeanHandover)) throw error;
    }
  }
  const response = await client.send(
    new ListObjectsV2Command({
      Bucket: bucket,
      Prefix: request.prefix,
      MaxKeys: request.maxKeys,
      StartAfter: request.startAfter,
      ContinuationToken: request.continuationToken,
    }),
    { abortSignal: request.signal },
  );
  return {
    contents: (response.Contents ?? []).map((item) => ({
      key: item.Key!,
      size: item.Size ?? 0,
      etag: item.ETag,
      lastModified: item.LastModified,
      storageClass: item.StorageClass,
    })),
    isTruncated: response.IsTruncated === true,
    nextContinuationToken: response.NextContinuationToken,
  };
}
