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
import { prefetchOne } from '../prefetch.js';

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

/** A part being listed in this run: its stored fields, kept current, and what its listing has shown so far. */
interface LivePart extends CatalogPart {
  /** Serialises the part's page stores and its splits: a split never lands between a page's clip and its store. */
  lock: Promise<unknown>;
  /** Being listed by a worker. */
  active: boolean;
  /** The highest key any answer for this part brought so far (its pages in flight included). */
  lastKey?: string;
  /** Characters seen in the varying tails of this part's keys (the split's guess of the key alphabet). */
  alphabet: Set<number>;
  /** Where the keys of its last answer start to differ (its first and last key's common prefix length). */
  varyFrom: number;
  /** Pages stored; and when a split was last tried (in pages), so a part is not probed again at once. */
  pages: number;
  triedAt: number;
  /** The part's last answer was truncated: more pages are likely to follow. */
  more: boolean;
  /** An idle lister is probing where to split it. */
  splitting: boolean;
}

function withLock<T>(part: LivePart, work: () => Promise<T>): Promise<T> {
  const run = part.lock.then(work);
  part.lock = run.catch(() => undefined);
  return run;
}

/**
 * Lists the parts not yet done, `concurrency` at a time. The first failure stops the others. A lister that
 * finds no part left to start splits the busiest part still being listed (see splitPart): parts planned
 * from directories are as unequal as the directories, and a single large one would otherwise be listed
 * page after page while the other listers wait.
 */
async function listParts(options: ListPartsOptions): Promise<void> {
  const live = (part: CatalogPart): LivePart => ({ ...part, lock: Promise.resolve(), active: false, alphabet: new Set(), varyFrom: 0, pages: 0, triedAt: -1, more: true, splitting: false });
  const queue: LivePart[] = options.parts.filter((part) => !part.done).map(live);
  const active = new Set<LivePart>();
  let wake: () => void = () => undefined;
  let changed = new Promise<void>((resolve) => (wake = resolve));
  const notify = (): void => {
    wake();
    changed = new Promise<void>((resolve) => (wake = resolve));
  };
  let splitting = 0;
  /**
   * Splits `victim`; the new parts queue behind the planned parts not yet started (any of those may be
   * large too, and is split in turn once it has shown it).
   */
  const trySplit = async (victim: LivePart): Promise<void> => {
    splitting += 1;
    victim.splitting = true;
    try {
      const parts = await splitPart(victim, options);
      queue.push(...parts.map(live));
    } catch (error) {
      options.stop.fail(error);
    } finally {
      splitting -= 1;
      victim.splitting = false;
      notify();
    }
  };
  const worker = async (): Promise<void> => {
    while (!options.stop.stopped) {
      const part = queue.shift();
      if (part) {
        part.active = true;
        active.add(part);
        try {
          await listPart(part, options, notify);
        } catch (error) {
          options.stop.fail(error);
        } finally {
          active.delete(part);
          part.active = false;
          notify();
        }
        continue;
      }
      if (active.size === 0 && splitting === 0) return;
      const next = changed;
      if (options.concurrency > 1) {
        const victim = pickVictim(active);
        if (victim) {
          await trySplit(victim);
          continue;
        }
      }
      await next;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
}

/**
 * Pages a part must have stored before it may be split. Each probe is a request the server pays for (on a
 * local Ceph RGW 5-7 ms of CPU, a third of a 1,000-key page; on s3rver a whole directory read): splitting
 * parts of 2,000-6,566 keys (50,000 keys under 40 prefixes, 8 listers, 20 ms per request) cost RGW more
 * than the balance gained: 1.7 s against 1.3 s without splits when splitting two pages in, 3.3 s against
 * 2.0 s four pages in. Eight pages in, only a directory of many thousand keys, the tail no plan can cut, is
 * split.
 */
const SPLIT_AFTER_PAGES = 8;

/**
 * The part to split: one being listed that has stored SPLIT_AFTER_PAGES pages and whose last answer was
 * full (a large part, more to come), the one with the fewest pages stored (one many pages in may be near
 * its end). Parts are split only when a lister would otherwise wait, never on a guess.
 */
function pickVictim(active: ReadonlySet<LivePart>): LivePart | undefined {
  let best: LivePart | undefined;
  for (const part of active) {
    if (part.done || part.splitting || !part.more || part.lastKey === undefined || part.pages < SPLIT_AFTER_PAGES || part.pages <= part.triedAt + 1) continue;
    if (!best || part.pages < best.pages) best = part;
  }
  return best;
}

/** The smallest string above every string that starts with `head` followed by the character code `unit`. */
function bump(head: string, unit: number): string | undefined {
  if (unit >= 0xd7ff && unit < 0xe000) return undefined; // no surrogate halves
  if (unit >= 0xffff) return undefined;
  return head + String.fromCharCode(unit + 1);
}

/** Probes answering one key each, all at once: the first key above each candidate, if within (after, end]. */
async function sample(candidates: readonly string[], after: string, end: string | null, options: ListPartsOptions): Promise<Array<string | undefined>> {
  const answers = await Promise.all(candidates.map((startAfter) => options.lister({ prefix: options.prefix, startAfter, maxKeys: 1 })));
  return answers.map((answer) => {
    const key = answer.objects[0]?.key;
    return key !== undefined && compareKeys(key, after) > 0 && (end === null || compareKeys(key, end) <= 0) ? key : undefined;
  });
}

/**
 * Splits a part being listed at keys sampled from the server, so that idle listers can take what lies
 * ahead of it. S3 has no way to ask where the middle of a range is, so the boundaries are found by probing
 * (ListObjectsV2 with MaxKeys=1 after a candidate key, one round trip for all candidates at once): first
 * at the last key listed with one character raised, at each position (`obj-000999` -> `obj-00099:`,
 * `obj-001`, `obj-01`, `obj-1`, ...), which finds how far the keys go in a few requests whatever their
 * shape; then, at the coarsest position that still had keys after it, at each character of the part's
 * alphabet (`obj-002` ... `obj-009`). The keys found are the boundaries. The plan only proposes: the
 * parts still cover the range exactly once whatever the probes answer, and each split is stored (with the
 * part's end moved) before the new part is listed, so a killed catalog resumes every piece.
 */
async function splitPart(victim: LivePart, options: ListPartsOptions): Promise<CatalogPart[]> {
  victim.triedAt = victim.pages;
  const last = victim.lastKey!;
  const end = victim.endKey;
  const floor = Math.max(options.prefix.length, end === null ? 0 : commonPrefixLength(last, end));
  // Round 1: the last key with one character raised, at each position up.
  const raised: Array<{ at: number; key: string }> = [];
  // From a little into the part where its last page's keys vary (not a constant suffix such as `.jpg`).
  for (let at = Math.min(last.length - 1, victim.varyFrom + 2); at >= floor && raised.length < 8; at--) {
    const key = bump(last.slice(0, at), last.charCodeAt(at));
    if (key !== undefined && (end === null || compareKeys(key, end) < 0)) raised.push({ at, key });
  }
  if (raised.length === 0) return [];
  const above = await sample(raised.map((r) => r.key), last, end, options);
  // The first raised key's sample is (nearly always) the key right after the last one listed: the victim's
  // own next page, so no boundary at or before it.
  const next = above[0];
  if (options.stop.stopped || next === undefined) return [];
  const found = new Set(above.filter((key): key is string => key !== undefined));
  // Round 2: at the coarsest position whose raised key still had keys above it, each character of the
  // part's alphabet above that position's own
  // (coarsest: from the last position up, the last one whose sample still shares the last key's head up to
  // that position, i.e. the keys go on there rather than jumping to another prefix).
  let coarsest: (typeof raised)[number] | undefined;
  for (const [i, r] of raised.entries()) {
    if (above[i]?.startsWith(last.slice(0, r.at))) coarsest = r;
    else if (coarsest !== undefined) break;
  }
  if (coarsest !== undefined) {
    const head = last.slice(0, coarsest.at);
    const from = last.charCodeAt(coarsest.at) + 1;
    const alphabet = [...victim.alphabet].filter((unit) => unit > from && (unit < 0xd800 || unit >= 0xe000)).sort((a, b) => a - b);
    const step = Math.max(1, Math.ceil(alphabet.length / options.concurrency));
    const candidates = alphabet
      .filter((_, i) => i % step === 0)
      .map((unit) => head + String.fromCharCode(unit))
      .filter((key) => compareKeys(key, last) > 0 && (end === null || compareKeys(key, end) < 0));
    for (const key of await sample(candidates, last, end, options)) if (key !== undefined) found.add(key);
  }
  const boundaries = [...found].filter((key) => compareKeys(key, next) > 0).sort(compareKeys).slice(0, 2 * options.concurrency);
  if (boundaries.length === 0 || options.stop.stopped) return [];
  return withLock(victim, async () => {
    const made: CatalogPart[] = [];
    let from: { part: number; resumeAfter: string } = victim;
    for (const at of boundaries) {
      if (victim.done || compareKeys(at, from.resumeAfter) <= 0) continue;
      const part = await options.store.splitCatalogPart(options.pass, from.part, at);
      if (!part) continue;
      if (from === victim) victim.endKey = at;
      else made[made.length - 1]!.endKey = at;
      made.push(part);
      from = part;
    }
    return made;
  });
}

function commonPrefixLength(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
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
async function* partPages(part: CatalogPart, lister: Lister, prefix: string, onAnswer: (answer: ListAnswer) => void): AsyncGenerator<PartPage> {
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
    onAnswer(answer);
    // A part stops at the first key above its end, which is exact only if the server lists in byte order
    // (as S3 and RGW do). s3rver walks its directories instead (`a/b.jpg` before `a b.jpg`): such an answer
    // stops the catalog rather than dropping keys. Disorder across pages is not seen here.
    if (part.endKey !== null) assertByteOrder(answer.objects);
    // Keys of the prefix met after it (a key such as `photos/\u{10FFFF}x`) were listed with it.
    let objects = !inScope && scope !== undefined ? answer.objects.filter((object) => !object.key.startsWith(scope)) : answer.objects;
    let done = !answer.truncated && !inScope;
    if (part.endKey !== null) {
      const clipped = clipToEnd(objects, part.endKey);
      objects = clipped.objects;
      done ||= clipped.reachedEnd;
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

async function listPart(part: LivePart, options: ListPartsOptions, notify: () => void): Promise<void> {
  const onAnswer = (answer: ListAnswer): void => {
    const endKey = part.endKey;
    const keys = endKey === null ? answer.objects : answer.objects.filter((object) => compareKeys(object.key, endKey) <= 0);
    // More pages to come within the part: a full answer that did not reach past its end.
    part.more = answer.truncated && keys.length === answer.objects.length;
    if (keys.length === 0) return;
    const last = keys[keys.length - 1]!.key;
    if (part.lastKey === undefined || compareKeys(last, part.lastKey) > 0) part.lastKey = last;
    // The characters of the keys' varying tails: what a split guesses the key alphabet to be.
    const from = commonPrefixLength(keys[0]!.key, last);
    part.varyFrom = from;
    // Only splits read it, and one lister never splits (a loop over every key's tail, 0.17 us a key).
    if (options.concurrency > 1 && part.alphabet.size < 256) {
      for (const object of keys) for (let i = from; i < object.key.length; i++) part.alphabet.add(object.key.charCodeAt(i));
    }
  };
  // The next page is requested while this one is stored: the listing never waits for the state.
  for await (const page of prefetchOne(partPages(part, options.lister, options.prefix, onAnswer))) {
    // Clipped to the part's end as it is now (a split may have moved it), under the lock splits take.
    const done = await withLock(part, async () => {
      let { objects, done, resumeAfter } = page;
      if (part.endKey !== null) {
        const endKey = part.endKey;
        const clipped = clipToEnd(objects, endKey);
        objects = clipped.objects;
        done ||= clipped.reachedEnd;
        if (compareKeys(resumeAfter, endKey) > 0) resumeAfter = objects.length > 0 ? objects[objects.length - 1]!.key : part.resumeAfter;
      }
      const { record, seen } = split(objects, options.filter);
      await options.store.ingestPage(options.pass, record, { part: part.part, resumeAfter, done }, seen);
      part.resumeAfter = resumeAfter;
      part.done = done;
      part.pages += 1;
      options.onPage(objects.length);
      return done;
    });
    notify();
    if (done || options.stop.stopped) return;
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

/** The objects of a page up to a part's end key (byte order), and whether the page went past it. */
function clipToEnd<T extends { key: string }>(objects: T[], endKey: string): { objects: T[]; reachedEnd: boolean } {
  const beyond = objects.findIndex((object) => compareKeys(object.key, endKey) > 0);
  return beyond === -1 ? { objects, reachedEnd: false } : { objects: objects.slice(0, beyond), reachedEnd: true };
}
