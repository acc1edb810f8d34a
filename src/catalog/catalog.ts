import { setMaxListeners } from 'node:events';
import type { S3Client } from '@aws-sdk/client-s3';
import { describeLocation, sameLocation } from '../config/s3-url.js';
import { UsageError } from '../errors.js';
import { keyScope, matches, type ObjectFilter } from '../filter/object-filter.js';
import { describeS3Failure } from '../s3/describe-failure.js';
import { listObjectsPage, type ListAnswer } from '../s3/list-pages.js';
import { StateStoreError, type StateStore } from '../state/store.js';
import type { CatalogPart, CatalogProgress, CatalogSource, EndpointLocation, ListedObject } from '../state/types.js';
import type { InventoryReader } from './inventory/read-inventory.js';
import { compareKeys } from './key-order.js';
import { planParts, type Lister } from './plan-parts.js';
import { prefetchOne } from './prefetch.js';

export type CatalogEvent =
  | {
      type: 'start';
      resumed: boolean;
      pass: number;
      keysAlready: number;
      source: CatalogSource;
      /** A listing: its parts, how many are already done, and how many are listed at once. */
      parts?: { total: number; done: number; concurrency: number };
      /** An inventory: the first data file to read (0-based). */
      nextFile?: number;
      /** An interrupted pass of another source, left behind for this one. */
      abandoned?: CatalogSource;
    }
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
  /** Parts of the key space listed at once (--list-concurrency). Default 1. */
  listConcurrency?: number;
  /** Catalog from this S3 Inventory report instead of listing the bucket (opened and verified by the caller). */
  inventory?: InventoryReader;
  /** Where the inventory reader keeps the data file it parses (default: the OS temporary directory). */
  inventoryTempDir?: string;
  /** Injected listing (benchmarks and tests of ingest alone); defaults to ListObjectsV2 on `client`. */
  lister?: Lister;
  /** Called once per ListObjectsV2 request (for progress and tests). */
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

/** The source a catalog run lists from. */
export function catalogSourceFor(inventory: InventoryReader | undefined): CatalogSource {
  if (!inventory) return { kind: 'listing' };
  const { identity } = inventory;
  return {
    kind: 'inventory',
    manifestUrl: identity.manifestUrl,
    manifestMd5: identity.manifestMd5,
    createdAt: identity.creationTimestamp,
    fileCount: identity.fileCount,
  };
}

/** Stops the other listers when one fails; remembers the first failure. */
class Stop {
  readonly controller = new AbortController();
  failure: unknown;
  constructor(readonly outer: AbortSignal | undefined) {
    // Every request in flight (two per part being listed) listens to it.
    setMaxListeners(0, this.controller.signal);
    if (outer?.aborted) this.controller.abort();
    else outer?.addEventListener('abort', () => this.controller.abort(), { once: true });
  }
  get stopped(): boolean {
    return this.controller.signal.aborted;
  }
  fail(error: unknown): void {
    if (this.failure === undefined && !this.outer?.aborted) this.failure = error;
    this.controller.abort();
  }
}

/**
 * Catalogs the source into the state store: by listing it (its key space cut into parts listed side by
 * side, each page stored in one transaction with its part's resume point), or from an S3 Inventory report
 * (each page stored with the report's next data file). An interrupted catalog continues where each part
 * (or the report) stopped. A complete pass reconciles: rows the pass did not see are marked gone.
 */
export async function runCatalog(options: CatalogOptions): Promise<CatalogResult> {
  const { store, source } = options;
  const started = Date.now();
  const progress = await store.beginCatalogPass(catalogSourceFor(options.inventory));
  const concurrency = Math.max(1, options.listConcurrency ?? 1);
  const stop = new Stop(options.signal);
  const counters = { keysListed: 0, pages: 0 };
  const onPage = (objects: number): void => {
    // A part's last page is often empty (its end reached): progress counts pages that brought keys.
    if (objects === 0) return;
    counters.keysListed += objects;
    counters.pages += 1;
    options.onEvent?.({ type: 'page', keysListed: counters.keysListed, pages: counters.pages, elapsedMs: Date.now() - started });
  };
  const interrupted = async (): Promise<CatalogResult> => ({
    completed: false,
    keysListed: counters.keysListed,
    totalKeys: await store.countListed(),
    gone: 0,
  });
  const s3Failure = (error: unknown): unknown =>
    error instanceof StateStoreError || (error as { kind?: unknown })?.kind !== undefined
      ? error
      : describeS3Failure(error, { side: 'source', bucket: source.bucket, credentialSource: options.credentialSource });

  const lister: Lister =
    options.lister ??
    ((request) => {
      options.onListRequest?.();
      return listObjectsPage(options.client, { ...request, bucket: source.bucket, signal: stop.controller.signal });
    });

  try {
    const start = {
      type: 'start' as const,
      resumed: progress.resumed,
      pass: progress.pass,
      keysAlready: await store.countListed(),
      source: progress.source,
      ...(progress.abandoned ? { abandoned: progress.abandoned } : {}),
    };
    if (options.inventory) {
      options.onEvent?.({ ...start, nextFile: progress.nextFile });
      await ingestInventory(options, progress, stop, onPage);
    } else {
      let parts = progress.parts;
      if (parts.length === 0) parts = await store.planCatalogParts(progress.pass, await planParts(lister, source.prefix, concurrency));
      options.onEvent?.({ ...start, parts: { total: parts.length, done: parts.filter((part) => part.done).length, concurrency } });
      await listParts({ store, pass: progress.pass, parts, lister, prefix: source.prefix, concurrency, stop, onPage, filter: options.filter });
    }
  } catch (error) {
    stop.fail(error);
  }
  if (stop.failure !== undefined) throw s3Failure(stop.failure);
  if (stop.stopped) return interrupted();

  const { gone } = await store.finishCatalogPass(progress.pass, keyScope(options.filter), options.filterText);
  const totalKeys = await store.countListed();
  options.onEvent?.({ type: 'finish', keysListed: counters.keysListed, totalKeys, gone, elapsedMs: Date.now() - started });
  return { completed: true, keysListed: counters.keysListed, totalKeys, gone };
}

interface ListPartsOptions {
  store: StateStore;
  pass: number;
  parts: readonly CatalogPart[];
  lister: Lister;
  prefix: string;
  concurrency: number;
  stop: Stop;
  onPage: (objects: number) => void;
  /** A filtered pass's filter: only matching objects are recorded. */
  filter: ObjectFilter | undefined;
}

/** Lists the parts not yet done, `concurrency` at a time. The first failure stops the others. */
async function listParts(options: ListPartsOptions): Promise<void> {
  const queue = options.parts.filter((part) => !part.done).map((part) => ({ ...part }));
  const worker = async (): Promise<void> => {
    while (!options.stop.stopped) {
      const part = queue.shift();
      if (!part) return;
      try {
        await listPart(part, options);
      } catch (error) {
        options.stop.fail(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, queue.length) }, worker));
}

interface PartPage {
  objects: ListedObject[];
  resumeAfter: string;
  done: boolean;
}

/** The first page after a part's own prefix is small: it usually holds the next part's keys only. */
const GAP_PAGE_KEYS = 100;
/** Above every key that starts with a prefix and has a character after it (U+10FFFF is the last one). */
const ABOVE_ALL = '\u{10FFFF}';

/**
 * One part's pages, from its resume point until its end key or the end of the listing. A part that starts
 * at a prefix (`photos/`, as planned from a delimiter listing) is listed in two phases, so that no request
 * reads far into the next part: its own keys with Prefix=`photos/` (the server stops at the prefix's end),
 * then what lies between them and the end key (keys such as `photos0` or a prefix the delimiter listing
 * did not report) after the highest possible key of the prefix. The resume point tells the phases apart.
 */
async function* partPages(part: CatalogPart, lister: Lister, prefix: string): AsyncGenerator<PartPage> {
  const scope = part.startAfter.endsWith('/') && part.startAfter.startsWith(prefix) && part.startAfter !== prefix ? part.startAfter : undefined;
  let resumeAfter = part.resumeAfter;
  let inScope = scope !== undefined && resumeAfter.startsWith(scope);
  let token: string | undefined;
  let gapPages = 0;
  // The first page after the prefix is asked for with the prefix's first page, and waits in memory until
  // the prefix is stored (the resume point only moves forward): one round trip less per part.
  let gapAhead = inScope ? lister({ prefix, startAfter: scope! + ABOVE_ALL, maxKeys: GAP_PAGE_KEYS }) : undefined;
  gapAhead?.catch(() => undefined);
  for (;;) {
    let answer: ListAnswer;
    if (inScope) {
      answer = await lister({ prefix: scope!, startAfter: token === undefined ? resumeAfter : undefined, continuationToken: token, maxKeys: 1000 });
    } else if (gapAhead !== undefined) {
      answer = await gapAhead;
      gapAhead = undefined;
      gapPages += 1;
    } else {
      const after = scope !== undefined && compareKeys(resumeAfter, scope + ABOVE_ALL) < 0 ? scope + ABOVE_ALL : resumeAfter;
      answer = await lister({
        prefix,
        startAfter: token === undefined ? after : undefined,
        continuationToken: token,
        maxKeys: scope !== undefined && gapPages === 0 ? GAP_PAGE_KEYS : 1000,
      });
      gapPages += 1;
    }
    // A part stops at the first key above its end, which is exact only if the server lists in byte order
    // (as S3 and RGW do). s3rver walks its directories instead (`a/b.jpg` before `a b.jpg`): such an answer
    // stops the catalog rather than dropping keys. Disorder across pages is not seen here.
    if (part.endKey !== null) assertByteOrder(answer.objects);
    // Keys of the prefix met after it (a key such as `photos/\u{10FFFF}x`) were listed with it.
    let objects = !inScope && scope !== undefined ? answer.objects.filter((object) => !object.key.startsWith(scope)) : answer.objects;
    let done = !answer.truncated && !inScope;
    if (part.endKey !== null) {
      const endKey = part.endKey;
      const beyond = objects.findIndex((object) => compareKeys(object.key, endKey) > 0);
      if (beyond !== -1) {
        objects = objects.slice(0, beyond);
        done = true;
      }
    }
    if (objects.length > 0) resumeAfter = objects[objects.length - 1]!.key;
    yield { objects, resumeAfter, done };
    if (done) return;
    // Without a token (a server that gives none), the next page starts after the last key stored.
    token = answer.nextToken;
    if (inScope && !answer.truncated) {
      inScope = false;
      token = undefined;
    }
  }
}

function assertByteOrder(objects: readonly ListedObject[]): void {
  for (let i = 1; i < objects.length; i++) {
    if (compareKeys(objects[i - 1]!.key, objects[i]!.key) >= 0) {
      throw new Error(
        `the source listed ${JSON.stringify(objects[i]!.key)} after ${JSON.stringify(objects[i - 1]!.key)}, not in byte order: ` +
          'listing in parts needs the order S3 lists in; run catalog with --list-concurrency 1',
      );
    }
  }
}

async function listPart(part: CatalogPart, options: ListPartsOptions): Promise<void> {
  // The next page is requested while this one is stored: the listing never waits for the state.
  for await (const page of prefetchOne(partPages(part, options.lister, options.prefix))) {
    const { record, seen } = split(page.objects, options.filter);
    await options.store.ingestPage(options.pass, record, { part: part.part, resumeAfter: page.resumeAfter, done: page.done }, seen);
    options.onPage(page.objects.length);
    if (options.stop.stopped) return;
  }
}

/** Reads the inventory report from the pass's next data file; each page is stored with its file's progress. */
async function ingestInventory(
  options: CatalogOptions,
  progress: CatalogProgress,
  stop: Stop,
  onPage: (objects: number) => void,
): Promise<void> {
  const prefix = options.source.prefix;
  const pages = options.inventory!.pages({ startAtFile: progress.nextFile, signal: stop.controller.signal, tempDir: options.inventoryTempDir });
  for await (const page of prefetchOne(pages)) {
    // A report lists the whole bucket (or its own filter): the catalog keeps the --from prefix only.
    const objects = prefix === '' ? page.objects : page.objects.filter((object) => object.key.startsWith(prefix));
    const { record, seen } = split(objects, options.filter);
    await options.store.ingestPage(progress.pass, record, { file: page.fileIndex, done: page.fileComplete }, seen);
    onPage(objects.length);
    if (stop.stopped) return;
  }
}

/**
 * A page under a filter: the objects to record, and the keys listed within the key scope but outside the
 * size or date bounds (seen by the pass, so not gone; nothing of them recorded).
 */
function split(objects: ListedObject[], filter: ObjectFilter | undefined): { record: ListedObject[]; seen: string[] } {
  if (filter === undefined) return { record: objects, seen: [] };
  const scope = keyScope(filter);
  const record: ListedObject[] = [];
  const seen: string[] = [];
  for (const object of objects) {
    if (matches(filter, object)) record.push(object);
    else if (matches(scope, object)) seen.push(object.key);
  }
  return { record, seen };
}
