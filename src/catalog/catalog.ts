import type { S3Client } from '@aws-sdk/client-s3';
import { describeLocation, sameLocation } from '../config/s3-url.js';
import { UsageError } from '../errors.js';
import { keyScope, matches, type ObjectFilter } from '../filter/object-filter.js';
import { describeS3Failure } from '../s3/describe-failure.js';
import { StateStoreError, type StateStore } from '../state/store.js';
import type { EndpointLocation } from '../state/types.js';
import { listPages, type ListingPage } from '../s3/list-pages.js';
import { prefetchOne } from './prefetch.js';

export type CatalogEvent =
  | { type: 'start'; resumed: boolean; pass: number; keysAlready: number }
  | { type: 'page'; keysListed: number; pages: number; elapsedMs: number }
  | { type: 'finish'; keysListed: number; totalKeys: number; gone: number; elapsedMs: number };

export interface CatalogOptions {
  store: StateStore;
  client: S3Client;
  source: EndpointLocation;
  /** Who the source credentials are (for error messages), e.g. "SOURCE_AWS_ACCESS_KEY_ID". */
  credentialSource: string;
  signal?: AbortSignal;
  onEvent?: (event: CatalogEvent) => void;
  /** Injected page source for benchmarks and tests of ingest alone; defaults to ListObjectsV2. */
  pages?: (startAfter: string) => AsyncIterable<ListingPage>;
  onListRequest?: () => void;
  /**
   * Limits the pass (--include, --exclude, sizes, dates): only matching objects are recorded, and only
   * keys within its key scope (prefix, includes, excludes) can be found gone. `filterText` is recorded with the pass.
   */
  filter?: ObjectFilter;
  filterText?: string;
}

export interface CatalogResult {
  completed: boolean;
  keysListed: number;
  totalKeys: number;
  gone: number;
}

/** Binds a state file to one source, or refuses a state file cataloged from another. */
export async function bindSource(store: StateStore, source: EndpointLocation): Promise<void> {
  const recorded = await store.getSource();
  if (!recorded) {
    await store.setSource(source);
    return;
  }
  if (!sameLocation(recorded, source)) {
    throw new UsageError(
      `${store.location} holds the catalog of ${describeLocation(recorded)}, not of ${describeLocation(source)}. ` +
        `Use another --state file for this source, or the same --from and endpoint as before.`,
    );
  }
}

/**
 * Lists the source into the state store. Each page lands in one transaction with the listing's resume
 * point, so an interrupted catalog continues after the last committed page. A complete pass reconciles:
 * rows the pass did not see are marked gone.
 */
export async function runCatalog(options: CatalogOptions): Promise<CatalogResult> {
  const { store, source } = options;
  const started = Date.now();
  const progress = await store.beginCatalogPass();
  options.onEvent?.({ type: 'start', resumed: progress.resumed, pass: progress.pass, keysAlready: await store.countListed() });

  const pages =
    options.pages?.(progress.startAfter) ??
    listPages(options.client, {
      bucket: source.bucket,
      prefix: source.prefix,
      startAfter: progress.startAfter,
      signal: options.signal,
      onRequest: options.onListRequest,
    });

  let keysListed = 0;
  let pageCount = 0;
  try {
    // The next page is requested while this one is stored: the listing never waits for SQLite.
    for await (const page of prefetchOne(pages)) {
      const { record, seen } = split(page.objects, options.filter);
      await store.ingestPage(progress.pass, record, page.lastKey, seen);
      keysListed += page.objects.length;
      pageCount += 1;
      options.onEvent?.({ type: 'page', keysListed, pages: pageCount, elapsedMs: Date.now() - started });
      if (options.signal?.aborted) return { completed: false, keysListed, totalKeys: await store.countListed(), gone: 0 };
    }
  } catch (error) {
    if (error instanceof StateStoreError) throw error;
    if (options.signal?.aborted) return { completed: false, keysListed, totalKeys: await store.countListed(), gone: 0 };
    throw describeS3Failure(error, { side: 'source', bucket: source.bucket, credentialSource: options.credentialSource });
  }

  const { gone } = await store.finishCatalogPass(progress.pass, keyScope(options.filter), options.filterText);
  const totalKeys = await store.countListed();
  options.onEvent?.({ type: 'finish', keysListed, totalKeys, gone, elapsedMs: Date.now() - started });
  return { completed: true, keysListed, totalKeys, gone };
}

/**
 * A page under a filter: the objects to record, and the keys listed within the key scope but outside the
 * size or date bounds (seen by the pass, so not gone; nothing of them recorded).
 */
function split(objects: ListingPage['objects'], filter: ObjectFilter | undefined): { record: ListingPage['objects']; seen: string[] } {
  if (filter === undefined) return { record: objects, seen: [] };
  const scope = keyScope(filter);
  const record: ListingPage['objects'] = [];
  const seen: string[] = [];
  for (const object of objects) {
    if (matches(filter, object)) record.push(object);
    else if (matches(scope, object)) seen.push(object.key);
  }
  return { record, seen };
}
