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
    const response = await client.send(
      new ListObjectsV2Command({
        Bucket: options.bucket,
        Prefix: options.prefix === '' ? undefined : options.prefix,
        MaxKeys: options.pageSize ?? 1000,
        // StartAfter only matters on the first request; continuation tokens carry on from there.
        StartAfter: continuationToken === undefined && options.startAfter !== '' ? options.startAfter : undefined,
        ContinuationToken: continuationToken,
      }),
      { abortSignal: options.signal },
    );
    const objects: ListedObject[] = (response.Contents ?? []).map((item) => ({
      key: item.Key!,
      size: item.Size ?? 0,
      etag: item.ETag,
      lastModified: (item.LastModified ?? new Date(0)).toISOString(),
      storageClass: item.StorageClass,
    }));
    if (objects.length > 0) yield { objects, lastKey: objects[objects.length - 1]!.key };
    continuationToken = response.IsTruncated ? response.NextContinuationToken : undefined;
  } while (continuationToken !== undefined);
}
