// The StateStore contract: what every implementation (SQLite file, PostgreSQL) must do, the same way.
// storeContract() registers the describe blocks; a backend supplies a harness that opens fresh stores and
// reads their rows with plain SQL (none of our code). test/unit/state-store.test.ts runs it on SQLite,
// test/postgres-store.test.ts on PostgreSQL.
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseFilter } from '../../src/filter/object-filter.js';
import type { StateStore } from '../../src/state/store.js';
import { SORT_ORDERS, type CatalogProgress, type ListedObject, type ObjectRow, type PageResume, type SortOrder } from '../../src/state/types.js';

/** One store under test, and plain-SQL views of its state. */
export interface OpenedStore {
  store: StateStore;
  /** The same state opened again, as the next process would (catalog: create allowed). */
  reopen(): Promise<StateStore>;
  /** key -> status of every row of this state. */
  statusOf(): Promise<Record<string, string>>;
  /** Every column of one row (snake_case, as SQL names them; sizes and counts as numbers). */
  row(key: string): Promise<Record<string, unknown> | undefined>;
  meta(key: string): Promise<string | undefined>;
  setMeta(key: string, value: string): Promise<void>;
  /** Sets one column of one row, for states the API cannot reach (rows of an older release). */
  setColumn(key: string, column: string, value: string | number | null): Promise<void>;
  /** The run records, oldest first. */
  runs(): Promise<Array<{ command: string; outcome: string }>>;
}

export interface StoreHarness {
  /** A new, empty state, as `catalog` opens it. */
  open(): Promise<OpenedStore>;
}

export const obj = (key: string, size = 1, etag: string | undefined = `"e-${key}"`, lastModified = '2024-01-01T00:00:00.000Z'): ListedObject => ({
  key,
  size,
  etag,
  lastModified,
});

/** Begins (or resumes) a listing pass of one part, as a catalog with --list-concurrency 1 does. */
export async function beginListing(store: StateStore): Promise<CatalogProgress> {
  const progress = await store.beginCatalogPass({ kind: 'listing' });
  if (progress.parts.length === 0) progress.parts = await store.planCatalogParts(progress.pass, [{ startAfter: '', endKey: null }]);
  return progress;
}

/** Where a page of that one part leaves it. */
export const atPart = (resumeAfter: string, done = false): PageResume => ({ part: 1, resumeAfter, done });

// S3 and SQLite both order keys by their UTF-8 bytes (not by JS UTF-16 code units).
export const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/**
 * Registers the contract's tests. `harness` is called inside hooks and tests only, so a backend may
 * build it from a server that starts in an outer beforeAll.
 */
export function storeContract(harness: () => StoreHarness): void {
  const opened: StateStore[] = [];
  const open = async (): Promise<OpenedStore> => {
    const h = await harness().open();
    opened.push(h.store);
    return {
      ...h,
      reopen: async () => {
        const store = await h.reopen();
        opened.push(store);
        return store;
      },
    };
  };
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
  });

  /** A finished one-pass catalog of `objects`, in pages of `pageSize`. */
  const cataloged = async (objects: readonly ListedObject[], pageSize = 1_000): Promise<OpenedStore> => {
    const h = await open();
    const { pass } = await beginListing(h.store);
    for (let i = 0; i < objects.length; i += pageSize) {
      const page = objects.slice(i, i + pageSize);
      await h.store.ingestPage(pass, page, atPart(page[page.length - 1]!.key));
    }
    await h.store.finishCatalogPass(pass);
    return h;
  };

  describe('claimPending: the next rows in each --sort order, claimed in batches', () => {
    // Ties on size and on last_modified, so the key tie-breaker matters; keys whose UTF-8 and UTF-16
    // orders differ (an emoji vs U+FF01) so the byte order is checked.
    const keys = ['a', 'b', 'B', 'a/b', 'a b', 'é', 'z', '😀', '\uFF01', 'm+n', 'm%20', 'x/', 'y', 'k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'a-'];
    const listed: ListedObject[] = keys.map((key, i) =>
      obj(key, [5, 0, 7, 5, 5, 1000, 0, 7, 5, 3][i % 10]!, `"${i}"`, `2024-01-0${(i % 4) + 1}T12:00:0${i % 2}.000Z`),
    );
    const notPending = new Set(['b', 'k3', '😀']);
    let h: OpenedStore;
    let store: StateStore;

    beforeAll(async () => {
      h = await harness().open();
      store = h.store;
      const { pass } = await beginListing(store);
      await store.ingestPage(pass, listed.slice(0, 9), atPart(listed[8]!.key));
      await store.ingestPage(pass, listed.slice(9), atPart(listed[listed.length - 1]!.key));
      await store.finishCatalogPass(pass);
      const ids = new Map((await store.claimPending('key', 100)).map((row) => [row.key, row.id]));
      await store.markDone(ids.get('b')!, { destKey: 'b', evidence: 'md5' });
      await store.markFailed(ids.get('k3')!, 'boom');
      // The rest back to pending but one, left in flight.
      await store.releaseClaims([...ids].filter(([key]) => !['b', 'k3', '😀'].includes(key)).map(([, id]) => id));
    });
    afterAll(async () => await store?.close());

    const compare: Record<SortOrder, (a: ListedObject, b: ListedObject) => number> = {
      key: (a, b) => byteOrder(a.key, b.key),
      oldest: (a, b) => a.lastModified.localeCompare(b.lastModified) || byteOrder(a.key, b.key),
      newest: (a, b) => b.lastModified.localeCompare(a.lastModified) || byteOrder(b.key, a.key),
      smallest: (a, b) => a.size - b.size || byteOrder(a.key, b.key),
      largest: (a, b) => b.size - a.size || byteOrder(b.key, a.key),
    };

    it.each(SORT_ORDERS.flatMap((order) => [1, 3, 7, 100].map((limit) => ({ order, limit }))))(
      '$order, batches of $limit',
      async ({ order, limit }) => {
        const expected = listed.filter((o) => !notPending.has(o.key)).sort(compare[order]).map((o) => o.key);
        const claimed: ObjectRow[] = [];
        for (let batch = 0; batch < 100; batch += 1) {
          const rows = await store.claimPending(order, limit);
          expect(rows.length).toBeLessThanOrEqual(limit);
          claimed.push(...rows);
          if (rows.length < limit) break;
        }
        expect(claimed.map((r) => r.key)).toEqual(expected);
        // Claimed rows are in flight with their attempt counted; released, they are pending as before.
        expect(Object.values(await h.statusOf()).filter((s) => s === 'in_flight')).toHaveLength(expected.length + 1);
        await store.releaseClaims(claimed.map((r) => r.id));
        expect(claimed.every((r) => r.attempts === 1)).toBe(true);
      },
    );

    it('returns rows with the fields the engine needs, their attempt counted', async () => {
      const [row] = await store.claimPending('largest', 1);
      await store.releaseClaims([row!.id]);
      expect(row).toStrictEqual({ id: expect.any(Number), key: 'é', size: 1000, etag: '"5"', lastModified: listed[5]!.lastModified, attempts: 1 });
      expect(Object.keys(row!)).toEqual(['id', 'key', 'size', 'etag', 'lastModified', 'attempts']);
    });
  });

  describe('keys compare in byte order everywhere', () => {
    // Code points whose UTF-16 and UTF-8 orders differ, case, punctuation around '/', and a page boundary.
    const tricky = ['a', 'B', 'é', '😀', '\uFF01', 'a/b', 'a b', 'a-', 'A', 'ab', 'a%', 'a+', 'Z', '~', '\u00FF', '\u0100', '\uD7FF', '\uE000', 'a/', 'a//b'];
    const many = [...tricky, ...Array.from({ length: 600 }, (_, i) => `p/${i}-${['é', 'E', 'e', '😀', 'z'][i % 5]}`)];

    it('claims, verify problems (paged) and rowByKey see the keys as S3 lists them', async () => {
      const h = await cataloged(many.map((key) => obj(key)), 250);
      const expected = [...many].sort(byteOrder);
      await h.store.prepareCopy('key');
      const claimed: string[] = [];
      for (;;) {
        const rows = await h.store.claimPending('key', 97);
        claimed.push(...rows.map((row) => row.key));
        if (rows.length < 97) break;
      }
      expect(claimed).toEqual(expected);
      // inFlightRows: key order too.
      expect((await h.store.inFlightRows()).map((row) => row.key)).toEqual(expected);

      // Nothing copied: a verify pass finds every row not copied, listed in key order, over pages of 500.
      const pass = await h.store.beginVerifyPass();
      await h.store.finishVerifyPass(pass);
      const problems: string[] = [];
      for await (const problem of h.store.verifyProblems()) problems.push(problem.key);
      expect(problems).toEqual(expected);

      // Exact matches only: 'A' is not 'a', 'a/' is not 'a'.
      for (const key of tricky) expect((await h.store.rowByKey(key))?.key).toBe(key);
      expect(await h.store.rowByKey('b')).toBeUndefined();
      expect(await h.store.rowByKey('a/b/')).toBeUndefined();
      // The same matches for a listing page at once (more keys than one SQLite statement takes).
      const found = await h.store.rowsByKeys([...many, 'b', 'a/b/', 'A/']);
      expect([...found.keys()].sort(byteOrder)).toEqual(expected);
      for (const key of tricky) expect(found.get(key)).toEqual(await h.store.rowByKey(key));
      expect((await h.store.rowsByKeys([])).size).toBe(0);
    });

    it('--sort with equal sizes and dates breaks ties in byte order, both directions', async () => {
      const h = await cataloged(tricky.map((key) => obj(key, 7, undefined, '2024-05-05T05:05:05.000Z')));
      for (const order of SORT_ORDERS) {
        await h.store.prepareCopy(order);
        const rows = await h.store.claimPending(order, 1000);
        await h.store.releaseClaims(rows.map((row) => row.id));
        const ascending = [...tricky].sort(byteOrder);
        expect(rows.map((row) => row.key), order).toEqual(order === 'newest' || order === 'largest' ? ascending.reverse() : ascending);
      }
    });
  });

  describe('catalog passes: ingestPage and finishCatalogPass', () => {
    it('reconciles a new pass: changed and reappearing keys pending, unseen keys gone, others keep status', async () => {
      const h = await open();
      const { store } = h;
      const p1 = await beginListing(store);
      expect(p1).toMatchObject({ pass: 1, resumed: false, source: { kind: 'listing' } });
      await store.ingestPage(1, [obj('a'), obj('b'), obj('c')], atPart('c'));
      await store.ingestPage(1, [obj('d'), obj('e'), obj('f')], atPart('f'));
      expect(await store.finishCatalogPass(1)).toEqual({ gone: 0 });
      expect(await store.catalogComplete()).toBe(true);

      const ids = new Map((await store.claimPending('key', 10)).map((r) => [r.key, r.id]));
      for (const key of ['a', 'b', 'c', 'd']) await store.markDone(ids.get(key)!, { destKey: key, evidence: 'md5' });
      await store.markFailed(ids.get('e')!, 'boom');

      const p2 = await beginListing(store);
      expect(p2).toMatchObject({ pass: 2, resumed: false });
      expect(await store.catalogComplete()).toBe(false);
      await store.ingestPage(2, [
        obj('a'), // unchanged: stays done
        obj('b', 2), // size changed
        obj('c', 1, '"other"'), // etag changed
        obj('d', 1, '"e-d"', '2024-06-01T00:00:00.000Z'), // re-uploaded, same bytes
        obj('e'), // unchanged failed: stays failed
        obj('g'), // new
      ], atPart('g'));
      expect(await store.finishCatalogPass(2)).toEqual({ gone: 1 }); // f
      expect(await h.statusOf()).toEqual({ a: 'done', b: 'pending', c: 'pending', d: 'pending', e: 'failed', f: 'gone', g: 'pending' });
      expect(await h.row('b')).toMatchObject({ size: 2, attempts: 0, error: null, evidence: null });
      expect(await h.row('e')).toMatchObject({ error: 'boom' });

      // A third pass: f is back, so it is pending again; a is gone now, and stays a single row.
      await beginListing(store);
      await store.ingestPage(3, ['b', 'c', 'd', 'e', 'f', 'g'].map((k) => (k === 'b' ? obj('b', 2) : k === 'c' ? obj('c', 1, '"other"') : k === 'd' ? obj('d', 1, '"e-d"', '2024-06-01T00:00:00.000Z') : obj(k))), atPart('g'));
      expect(await store.finishCatalogPass(3)).toEqual({ gone: 1 });
      expect(await h.statusOf()).toEqual({ a: 'gone', b: 'pending', c: 'pending', d: 'pending', e: 'failed', f: 'pending', g: 'pending' });
      expect(await store.countListed()).toBe(6);
    });

    it('a page of new keys among stored ones, or out of order, stores each key as one row, as listed', async () => {
      const h = await open();
      const { store } = h;
      await beginListing(store);
      // Out of order (k after m) and a key twice, on a first pass: still one row per key, the last listing kept.
      await store.ingestPage(1, [obj('b'), obj('m'), obj('k'), obj('n', 1), obj('n', 2), obj('p')], atPart('p'));
      await store.ingestPage(1, [obj('d'), obj('q')], atPart('q'));
      expect(await store.finishCatalogPass(1)).toEqual({ gone: 0 });
      expect(await h.row('n')).toMatchObject({ size: 2 });
      for (const row of await store.claimPending('key', 10)) await store.markDone(row.id, { destKey: row.key, evidence: 'md5' });

      await beginListing(store); // pass 2: new keys before, between and after the stored ones
      await store.ingestPage(2, [obj('a'), obj('b'), obj('c'), obj('k', 3), obj('m'), obj('o'), obj('q'), obj('r'), obj('s')], atPart('s'));
      expect(await store.finishCatalogPass(2)).toEqual({ gone: 3 }); // d, n, p
      expect(await h.statusOf()).toEqual({
        a: 'pending', b: 'done', c: 'pending', d: 'gone', k: 'pending', m: 'done', n: 'gone', o: 'pending', p: 'gone', q: 'done', r: 'pending', s: 'pending',
      });
      expect(await h.row('k')).toMatchObject({ size: 3, change_kind: 'modified', change_pass: 2 });
      expect(await h.row('s')).toMatchObject({ change_kind: 'new', change_pass: 2, catalog_pass: 2, attempts: 0 });
      expect(await h.row('b')).toMatchObject({ change_kind: 'new', change_pass: 1, catalog_pass: 2 });
      expect(await store.lastCatalogPass()).toMatchObject({ new: { objects: 5 }, modified: { objects: 1, bytes: 3 }, gone: { objects: 3 } });
      expect(await store.countListed()).toBe(9);
    });

    it('an interrupted pass resumes after its last page, and its first part is not marked gone', async () => {
      const h = await open();
      const { store } = h;
      await beginListing(store);
      await store.ingestPage(1, [obj('a'), obj('b')], atPart('b'));
      await store.ingestPage(1, [obj('c'), obj('old')], atPart('old', true));
      await store.finishCatalogPass(1);

      await beginListing(store); // pass 2
      await store.ingestPage(2, [obj('a'), obj('b')], atPart('b'));
      await store.close(); // the process dies here

      const reopened = await h.reopen();
      expect(await reopened.catalogComplete()).toBe(false);
      expect(await reopened.catalogPass()).toEqual({ pass: 2, complete: false, source: { kind: 'listing' }, nextFile: 0 });
      expect(await reopened.beginCatalogPass({ kind: 'listing' })).toEqual({
        pass: 2,
        resumed: true,
        source: { kind: 'listing' },
        parts: [{ part: 1, startAfter: '', endKey: null, resumeAfter: 'b', done: false, keysListed: 2 }],
        nextFile: 0,
      });
      await reopened.ingestPage(2, [obj('c')], atPart('c', true));
      expect(await reopened.finishCatalogPass(2)).toEqual({ gone: 1 });
      expect(await h.statusOf()).toEqual({ a: 'pending', b: 'pending', c: 'pending', old: 'gone' });
    });

    it('a page and its resume point commit together or not at all', async () => {
      const h = await open();
      const { store } = h;
      const { pass } = await beginListing(store);
      await store.ingestPage(pass, [obj('a')], atPart('a'));
      // The second row breaks a NOT NULL constraint: the first row must not be stored either.
      await expect(store.ingestPage(pass, [obj('b'), { ...obj('c'), size: null as unknown as number }], atPart('c'))).rejects.toThrow();
      expect(Object.keys(await h.statusOf())).toEqual(['a']);
      expect((await beginListing(store)).parts[0]).toMatchObject({ resumeAfter: 'a', keysListed: 1, done: false });
      // A part the pass does not have is refused, its page not stored.
      await expect(store.ingestPage(pass, [obj('z')], { part: 7, resumeAfter: 'z', done: false })).rejects.toThrow(/no part 7/);
      expect(Object.keys(await h.statusOf())).toEqual(['a']);
    });

    it('keeps what the listing said: size, ETag (or none), date, storage class; a key listed twice in a page once', async () => {
      const h = await open();
      const { store } = h;
      const { pass } = await beginListing(store);
      await store.ingestPage(pass, [
        { key: 'x', size: 5 * 1024 ** 4, etag: '"abc-3"', lastModified: '2023-02-03T04:05:06.789Z', storageClass: 'GLACIER' },
        { key: 'no-etag', size: 0, lastModified: '2023-02-03T04:05:06.000Z' },
        { key: 'twice', size: 1, etag: '"1"', lastModified: '2023-02-03T04:05:06.000Z' },
        { key: 'twice', size: 2, etag: '"2"', lastModified: '2023-02-03T04:05:07.000Z' },
      ], atPart('x'));
      expect(await h.row('x')).toMatchObject({
        key: 'x', size: 5 * 1024 ** 4, etag: '"abc-3"', last_modified: '2023-02-03T04:05:06.789Z', storage_class: 'GLACIER',
        status: 'pending', attempts: 0, catalog_pass: 1, error: null,
      });
      expect(await h.row('no-etag')).toMatchObject({ size: 0, etag: null, storage_class: null });
      expect(await h.row('twice')).toMatchObject({ size: 2, etag: '"2"' });
      expect(await store.countListed()).toBe(3);
      // An empty page still moves the resume point.
      await store.ingestPage(pass, [], atPart('y'));
      expect((await beginListing(store)).parts[0]!.resumeAfter).toBe('y');
    });

    it('a pass in parts: each resumes on its own, planned once, and a kill leaves whole pages of each', async () => {
      const h = await open();
      const { store } = h;
      const first = await store.beginCatalogPass({ kind: 'listing' });
      expect(first).toEqual({ pass: 1, resumed: false, source: { kind: 'listing' }, parts: [], nextFile: 0 });
      const ranges = [
        { startAfter: '', endKey: 'b/' },
        { startAfter: 'b/', endKey: 'd/' },
        { startAfter: 'd/', endKey: null },
      ];
      const parts = await store.planCatalogParts(1, ranges);
      expect(parts).toEqual(ranges.map((range, i) => ({ part: i + 1, ...range, resumeAfter: range.startAfter, done: false, keysListed: 0 })));
      // Planned once: a second plan (a resumed run that planned too) gets the stored parts.
      expect(await store.planCatalogParts(1, [{ startAfter: '', endKey: null }])).toEqual(parts);
      await expect(store.planCatalogParts(2, ranges)).rejects.toThrow(/not the current one/);

      // Pages of the parts interleaved, as listers running side by side store them.
      await store.ingestPage(1, [obj('d/1'), obj('d/2')], { part: 3, resumeAfter: 'd/2', done: false });
      await store.ingestPage(1, [obj('a'), obj('b/')], { part: 1, resumeAfter: 'b/', done: true });
      await store.ingestPage(1, [obj('b/x')], { part: 2, resumeAfter: 'b/x', done: false });
      await store.close(); // killed

      const again = await h.reopen();
      const resumed = await again.beginCatalogPass({ kind: 'listing' });
      expect(resumed).toMatchObject({ pass: 1, resumed: true });
      expect(resumed.parts).toEqual([
        { part: 1, startAfter: '', endKey: 'b/', resumeAfter: 'b/', done: true, keysListed: 2 },
        { part: 2, startAfter: 'b/', endKey: 'd/', resumeAfter: 'b/x', done: false, keysListed: 1 },
        { part: 3, startAfter: 'd/', endKey: null, resumeAfter: 'd/2', done: false, keysListed: 2 },
      ]);
      expect((await again.summary()).catalogSource).toEqual({ kind: 'listing', parts: 3, partsDone: 1 });
      await again.ingestPage(1, [obj('c'), obj('d/')], { part: 2, resumeAfter: 'd/', done: true });
      await again.ingestPage(1, [], { part: 3, resumeAfter: 'd/2', done: true });
      expect(await again.finishCatalogPass(1)).toEqual({ gone: 0 });
      expect(Object.keys(await h.statusOf()).sort()).toEqual(['a', 'b/', 'b/x', 'c', 'd/', 'd/1', 'd/2']);
      expect((await again.summary()).catalogSource).toEqual({ kind: 'listing', parts: 3, partsDone: 3 });

      // The next pass plans anew: the old parts are gone with their pass.
      const next = await again.beginCatalogPass({ kind: 'listing' });
      expect(next).toMatchObject({ pass: 2, resumed: false, parts: [] });
      expect((await again.planCatalogParts(2, [{ startAfter: '', endKey: null }])).map((part) => part.part)).toEqual([1]);
    });

    it('a part splits at a key between its resume point and its end; the new part resumes on its own', async () => {
      const h = await open();
      const { store } = h;
      await store.beginCatalogPass({ kind: 'listing' });
      await store.planCatalogParts(1, [
        { startAfter: '', endKey: 'm' },
        { startAfter: 'm', endKey: null },
      ]);
      await store.ingestPage(1, [obj('b')], { part: 1, resumeAfter: 'b', done: false });
      // Not above the resume point, not below the end, or a done part: refused, nothing changed.
      expect(await store.splitCatalogPart(1, 1, 'b')).toBeUndefined();
      expect(await store.splitCatalogPart(1, 1, 'a')).toBeUndefined();
      expect(await store.splitCatalogPart(1, 1, 'm')).toBeUndefined();
      expect(await store.splitCatalogPart(1, 9, 'c')).toBeUndefined();
      expect(await store.splitCatalogPart(1, 1, 'f')).toEqual({ part: 3, startAfter: 'f', endKey: 'm', resumeAfter: 'f', done: false, keysListed: 0 });
      // The open-ended last part splits too; the new part keeps its open end.
      expect(await store.splitCatalogPart(1, 2, 'x')).toEqual({ part: 4, startAfter: 'x', endKey: null, resumeAfter: 'x', done: false, keysListed: 0 });
      await store.ingestPage(1, [obj('g')], { part: 3, resumeAfter: 'g', done: false });
      await store.close(); // killed

      const again = await h.reopen();
      const resumed = await again.beginCatalogPass({ kind: 'listing' });
      expect(resumed.parts).toEqual([
        { part: 1, startAfter: '', endKey: 'f', resumeAfter: 'b', done: false, keysListed: 1 },
        { part: 2, startAfter: 'm', endKey: 'x', resumeAfter: 'm', done: false, keysListed: 0 },
        { part: 3, startAfter: 'f', endKey: 'm', resumeAfter: 'g', done: false, keysListed: 1 },
        { part: 4, startAfter: 'x', endKey: null, resumeAfter: 'x', done: false, keysListed: 0 },
      ]);
      await again.ingestPage(1, [], { part: 1, resumeAfter: 'b', done: true });
      expect(await again.splitCatalogPart(1, 1, 'c')).toBeUndefined();
      await again.close();
    });
  });

  describe('catalog passes from an S3 Inventory report', () => {
    const day = 24 * 60 * 60 * 1000;
    const takenAt = '2024-06-10T00:00:00.000Z';
    const inventory = (md5 = 'a'.repeat(32)) =>
      ({ kind: 'inventory', manifestUrl: 's3://inv/src/all/2024-06-10T00-00Z/manifest.json', manifestMd5: md5, createdAt: takenAt, fileCount: 3 }) as const;
    const before = (ms: number): string => new Date(Date.parse(takenAt) - ms).toISOString();

    it('resumes at its next data file, records the report, and a listing after it starts a new pass', async () => {
      const h = await open();
      const { store } = h;
      const begun = await store.beginCatalogPass(inventory());
      expect(begun).toEqual({ pass: 1, resumed: false, source: inventory(), parts: [], nextFile: 0 });
      await store.ingestPage(1, [obj('a'), obj('c')], { file: 0, done: false });
      await store.ingestPage(1, [obj('e')], { file: 0, done: true });
      await store.ingestPage(1, [obj('b')], { file: 1, done: false });
      expect(await h.meta('inventory_manifest')).toBe(inventory().manifestUrl);
      expect(await h.meta('inventory_created_at')).toBe(takenAt);
      expect(await h.meta('catalog_source')).toBe('inventory');
      await store.close();

      const again = await h.reopen();
      expect(await again.catalogPass()).toEqual({ pass: 1, complete: false, source: inventory(), nextFile: 1 });
      expect((await again.summary()).catalogSource).toEqual({
        kind: 'inventory', manifestUrl: inventory().manifestUrl, createdAt: takenAt, files: 3, filesDone: 1,
      });
      expect(await again.beginCatalogPass(inventory())).toEqual({ pass: 1, resumed: true, source: inventory(), parts: [], nextFile: 1 });
      // The same URL with other bytes (a report re-delivered): another report, a new pass.
      const other = await again.beginCatalogPass(inventory('b'.repeat(32)));
      expect(other).toEqual({ pass: 2, resumed: false, source: inventory('b'.repeat(32)), parts: [], nextFile: 0, abandoned: inventory() });
      // A listing after an interrupted inventory pass: a new pass, the report's meta gone.
      const listing = await again.beginCatalogPass({ kind: 'listing' });
      expect(listing).toMatchObject({ pass: 3, resumed: false, abandoned: inventory('b'.repeat(32)) });
      expect(await h.meta('inventory_manifest')).toBeUndefined();
      expect(await h.meta('catalog_source')).toBe('listing');
    });

    it('never overwrites what is newer than the report, and marks gone only rows a day older than it', async () => {
      const h = await open();
      const { store } = h;
      const { pass } = await beginListing(store);
      const listed = [
        obj('old-same', 1, '"1"', before(3 * day)),
        obj('old-changed', 1, '"1"', before(3 * day)),
        obj('old-gone', 1, '"1"', before(3 * day)),
        obj('recent-gone', 1, '"1"', before(day / 2)), // within the margin: the report may have missed it
        obj('after-report', 1, '"new"', before(-day)), // listed after the report was taken
        obj('after-report-absent', 1, '"new"', before(-day)),
        obj('done-same', 1, '"1"', before(3 * day)),
      ];
      await store.ingestPage(pass, listed, atPart('recent-gone', true));
      await store.finishCatalogPass(pass);
      const ids = new Map((await store.claimPending('key', 100)).map((row) => [row.key, row.id]));
      await store.markDone(ids.get('done-same')!, { destKey: 'done-same', evidence: 'md5' });
      await store.markDone(ids.get('after-report')!, { destKey: 'after-report', evidence: 'md5' });
      await store.releaseClaims([...ids].filter(([key]) => !['done-same', 'after-report'].includes(key)).map(([, id]) => id));

      const p2 = (await store.beginCatalogPass(inventory())).pass;
      await store.ingestPage(p2, [
        obj('old-same', 1, '"1"', before(3 * day)),
        obj('old-changed', 2, '"2"', before(2 * day)),
        obj('after-report', 1, '"old"', before(2 * day)), // the report's older version
        obj('done-same', 1, '"1"', before(3 * day)),
        obj('new-key', 5, '"5"', before(day)),
      ], { file: 0, done: true });
      await store.ingestPage(p2, [], { file: 1, done: true });
      await store.ingestPage(p2, [], { file: 2, done: true });
      expect(await store.finishCatalogPass(p2)).toEqual({ gone: 1 });
      expect(await h.statusOf()).toEqual({
        'old-same': 'pending',
        'old-changed': 'pending',
        'old-gone': 'gone',
        'recent-gone': 'pending',
        'after-report': 'done',
        'after-report-absent': 'pending',
        'done-same': 'done',
        'new-key': 'pending',
      });
      expect(await h.row('after-report')).toMatchObject({ etag: '"new"', catalog_pass: p2 });
      expect(await h.row('old-changed')).toMatchObject({ size: 2, etag: '"2"', catalog_pass: p2 });
      expect(await store.catalogPass()).toEqual({ pass: p2, complete: true, source: inventory(), nextFile: 3 });

      // A gone verdict reached after the report was taken is not undone by the report's older row.
      const p3 = (await store.beginCatalogPass(inventory('c'.repeat(32)))).pass;
      await store.ingestPage(p3, [obj('old-gone', 1, '"1"', before(3 * day))], { file: 0, done: true });
      expect((await h.statusOf())['old-gone']).toBe('gone');
    });
  });

  describe('filters, catalog deltas, archived rows and deletions', () => {
    const listed = (key: string, size: number, lastModified: string, storageClass?: string): ListedObject => ({
      ...obj(key, size, `"e-${key}"`, lastModified),
      ...(storageClass ? { storageClass } : {}),
    });
    const objects = [
      listed('photos/2023/a.jpg', 100, '2023-06-01T00:00:00.000Z'),
      listed('photos/2024/b.jpg', 200, '2024-06-01T00:00:00.000Z'),
      listed('photos/2024/c.tmp', 300, '2024-07-01T00:00:00.000Z'),
      listed('photos/cold.jpg', 400, '2024-08-01T00:00:00.000Z', 'GLACIER'),
      listed('docs/d.txt', 500, '2024-09-01T00:00:00.000Z'),
      listed('photosynthesis', 600, '2024-10-01T00:00:00.000Z'),
    ];

    it('claims only the filter\'s wave, in the --sort order; the rest stays pending', async () => {
      const h = await cataloged(objects);
      const filter = parseFilter({ include: 'photos/**', exclude: '**/*.tmp', modifiedAfter: '2024-01-01' }, '')!;
      await h.store.prepareCopy('newest', filter);
      expect((await h.statusOf())['photos/cold.jpg']).toBe('archived');
      expect(await h.store.outcomeCounts(filter)).toMatchObject({ archived: 1 });
      const claimed = await h.store.claimPending('newest', 10, filter);
      expect(claimed.map((row) => row.key)).toEqual(['photos/2024/b.jpg']);
      expect(await h.store.claimPending('newest', 10, filter)).toEqual([]);
      const status = await h.statusOf();
      expect(Object.entries(status).filter(([, s]) => s === 'pending').map(([k]) => k).sort(byteOrder)).toEqual(
        ['docs/d.txt', 'photos/2023/a.jpg', 'photos/2024/c.tmp', 'photosynthesis'].sort(byteOrder),
      );
      const bySize = parseFilter({ minSize: '250', maxSize: '500' }, '')!;
      expect((await h.store.claimPending('smallest', 10, bySize)).map((row) => row.key)).toEqual(['photos/2024/c.tmp', 'docs/d.txt']);
      expect(await h.store.selectionCounts(bySize)).toEqual([
        { status: 'archived', objects: 1, bytes: 400 },
        { status: 'in_flight', objects: 2, bytes: 800 },
      ]);
    });

    it('plan groups: pending and archived rows by storage class, big ones by size', async () => {
      const h = await cataloged(objects);
      const groups = await h.store.planGroups(parseFilter({ include: 'photos/**' }, '')!, 250);
      expect(groups).toEqual([
        { storageClass: null, size: null, count: 2, bytes: 300 },
        { storageClass: null, size: 300, count: 1, bytes: 300 },
        { storageClass: 'GLACIER', size: 400, count: 1, bytes: 400 },
      ]);
    });

    it('records each pass\'s delta; a filtered pass marks gone only within its key scope', async () => {
      const h = await cataloged(objects);
      expect(await h.store.lastCatalogPass()).toMatchObject({ pass: 1, new: { objects: 6, bytes: 2100 }, gone: { objects: 0 } });
      // Pass 2, limited to photos/** and >= 150 bytes: a.jpg (100 bytes) is listed but out of bounds (seen);
      // b.jpg changed; c.tmp vanished; docs/ and photosynthesis are outside the scope.
      const scope = parseFilter({ include: 'photos/**', minSize: '150' }, '')!;
      const { pass } = await beginListing(h.store);
      await h.store.ingestPage(pass, [listed('photos/2024/b.jpg', 250, '2024-06-02T00:00:00.000Z'), listed('photos/2024/new.jpg', 50_000, '2024-12-01T00:00:00.000Z'), listed('photos/cold.jpg', 400, '2024-08-01T00:00:00.000Z', 'GLACIER')], atPart('photos/cold.jpg'), ['photos/2023/a.jpg']);
      expect(await h.store.finishCatalogPass(pass, { ...scope, minSize: undefined }, '{"include":["photos/**"]}')).toEqual({ gone: 1 });
      const status = await h.statusOf();
      expect(status).toMatchObject({ 'photos/2023/a.jpg': 'pending', 'photos/2024/c.tmp': 'gone', 'docs/d.txt': 'pending', photosynthesis: 'pending' });
      expect(await h.store.lastCatalogPass()).toMatchObject({
        pass: 2,
        scope: '{"include":["photos/**"]}',
        new: { objects: 1, bytes: 50_000 },
        modified: { objects: 1, bytes: 250 },
        gone: { objects: 1, bytes: 300 },
      });
      expect((await h.store.summary()).lastCatalogPass).toMatchObject({ pass: 2 });
    });

    it('deletion candidates are gone rows s3migrate wrote; deleted rows are recorded, reappearing keys are new', async () => {
      const h = await cataloged(objects.slice(0, 3));
      const rows = await h.store.claimPending('key', 10);
      await h.store.markDone(rows[0]!.id, { destKey: 'x/photos/2023/a.jpg', destEtag: 'abc', evidence: 'md5' });
      await h.store.markPending(rows[1]!.id, true);
      await h.store.markDone(rows[2]!.id, { destKey: 'x/photos/2024/c.tmp', destEtag: 'def', evidence: 'md5' });
      const { pass } = await beginListing(h.store);
      await h.store.ingestPage(pass, [objects[2]!], atPart(objects[2]!.key));
      await h.store.finishCatalogPass(pass);
      const candidates = await h.store.deletionCandidates();
      expect(candidates).toEqual([{ id: rows[0]!.id, key: 'photos/2023/a.jpg', size: 100, destKey: 'x/photos/2023/a.jpg', destEtag: 'abc' }]);
      expect(await h.store.deletionCandidates(parseFilter({ include: 'docs/**' }, ''))).toEqual([]);
      await h.store.noteNotDeleted(rows[0]!.id, 'left alone');
      expect(await h.row('photos/2023/a.jpg')).toMatchObject({ status: 'gone', error: 'left alone' });
      await h.store.markDeleted(rows[0]!.id);
      expect(await h.row('photos/2023/a.jpg')).toMatchObject({ status: 'deleted', error: null });
      expect((await h.row('photos/2023/a.jpg'))!.deleted_at).toMatch(/Z$/);
      expect(await h.store.deletionCandidates()).toEqual([]);
      expect(await h.store.countListed()).toBe(1);
      const next = await beginListing(h.store);
      await h.store.ingestPage(next.pass, [objects[0]!, objects[2]!], atPart(objects[2]!.key));
      await h.store.finishCatalogPass(next.pass);
      expect(await h.row('photos/2023/a.jpg')).toMatchObject({ status: 'pending', deleted_at: null });
      expect(await h.store.lastCatalogPass()).toMatchObject({ new: { objects: 1 }, modified: { objects: 0 }, gone: { objects: 0 } });
    });
  });

  describe('row marks', () => {
    it('each mark sets what SQLite sets: status, error, attempts, evidence, destination', async () => {
      const h = await cataloged(['done', 'failed', 'changed', 'gone', 'refunded', 'kept', 'retried', 'released'].map((k) => obj(k, 10)));
      const { store } = h;
      const ids = new Map((await store.claimPending('key', 100)).map((row) => [row.key, row.id]));
      await store.recordRetry(ids.get('retried')!, 'SlowDown (HTTP 503)');
      await store.recordRetry(ids.get('retried')!, 'InternalError (HTTP 500)');
      await store.markDone(ids.get('done')!, { destKey: 'to/done', destEtag: '"d"', evidence: 'multipart-etag' });
      await store.markFailed(ids.get('failed')!, 'AccessDenied');
      await store.markChanged(ids.get('changed')!, 'the source ETag is now "x"');
      await store.markGone(ids.get('gone')!);
      await store.markPending(ids.get('refunded')!, true);
      await store.markPending(ids.get('kept')!, false);
      await store.releaseClaims([ids.get('released')!, ids.get('done')!]); // a done row is not released

      expect(await h.statusOf()).toEqual({
        done: 'done', failed: 'failed', changed: 'changed', gone: 'gone', refunded: 'pending', kept: 'pending', retried: 'in_flight', released: 'pending',
      });
      const done = await h.row('done');
      expect(done).toMatchObject({ dest_key: 'to/done', dest_etag: '"d"', evidence: 'multipart-etag', error: null, verify_result: null, attempts: 1 });
      expect(done!.copied_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(done!.verified_at).toBe(done!.copied_at);
      expect(await h.row('failed')).toMatchObject({ error: 'AccessDenied', attempts: 1 });
      expect(await h.row('changed')).toMatchObject({ error: 'the source ETag is now "x"' });
      expect(await h.row('gone')).toMatchObject({ error: null });
      expect(await h.row('refunded')).toMatchObject({ attempts: 0 });
      expect(await h.row('kept')).toMatchObject({ attempts: 1 });
      expect(await h.row('retried')).toMatchObject({ attempts: 3, error: 'InternalError (HTTP 500)' });
      expect(await h.row('released')).toMatchObject({ attempts: 0 });
      expect(await store.outcomeCounts()).toEqual({ failed: 1, changed: 1, gone: 1, unproven: 0, archived: 0 });

      // prepareCopy: failed (and unproven) rows get another chance; the others keep their status.
      await h.setColumn('kept', 'status', 'unproven');
      expect(await store.outcomeCounts()).toEqual({ failed: 1, changed: 1, gone: 1, unproven: 1, archived: 0 });
      await store.prepareCopy('key');
      expect(await h.statusOf()).toMatchObject({ failed: 'pending', kept: 'pending', changed: 'changed', gone: 'gone', retried: 'in_flight' });
      expect((await store.inFlightRows()).map((row) => row.key)).toEqual(['retried']);
    });

    it('marks issued together commit together, each promise after its commit, in the order issued', async () => {
      const h = await cataloged(Array.from({ length: 700 }, (_, i) => obj(`k${String(i).padStart(4, '0')}`)));
      const { store } = h;
      const rows = await store.claimPending('key', 1000);
      expect(rows).toHaveLength(700);
      // More marks than one batch holds, of several kinds, and two marks of one row: the later one wins.
      const twice = rows[0]!;
      await Promise.all([
        ...rows.slice(1).map((row, i) =>
          i % 3 === 0 ? store.markDone(row.id, { destKey: row.key, evidence: 'md5' }) : i % 3 === 1 ? store.markFailed(row.id, `e${i}`) : store.markGone(row.id),
        ),
        store.markFailed(twice.id, 'first'),
        store.markPending(twice.id, true),
      ]);
      const statuses = await h.statusOf();
      expect(statuses[twice.key]).toBe('pending');
      expect(await h.row(twice.key)).toMatchObject({ attempts: 0, error: 'first' });
      const counts = Object.values(statuses).reduce<Record<string, number>>((acc, s) => ({ ...acc, [s]: (acc[s] ?? 0) + 1 }), {});
      expect(counts).toEqual({ done: 233, failed: 233, gone: 233, pending: 1 });
      expect((await store.summary()).objectsDone).toBe(233);
    });
  });

  describe('multipart uploads kept across runs', () => {
    it('records an upload and its parts, replaces, forgets, and drops the record with the done mark', async () => {
      const h = await cataloged(['big-a', 'big-b', 'big-c'].map((k) => obj(k, 30 * 1024 ** 2)));
      const { store } = h;
      const ids = new Map((await store.claimPending('key', 10)).map((row) => [row.key, row.id]));
      const upload = (key: string, uploadId: string) => ({
        objectId: ids.get(key)!, destKey: `to/${key}`, uploadId, sourceEtag: `"e-${key}"`, size: 30 * 1024 ** 2, partSize: 8 * 1024 ** 2, partCount: 4,
      });
      const part = (n: number, tag = '') => ({ partNumber: n, size: n === 4 ? 6 * 1024 ** 2 : 8 * 1024 ** 2, etag: `"p${n}${tag}"`, md5: `${n}`.repeat(32) });
      expect(await store.uploadOf(ids.get('big-a')!)).toBeUndefined();
      expect(await store.recordedUploads()).toEqual([]);

      // Parts complete in any order, and one is sent twice (a retried part): the later record wins.
      await store.recordUpload(upload('big-b', 'u-b'));
      await store.recordUpload(upload('big-a', 'u-a1'));
      await Promise.all([store.recordPart(ids.get('big-a')!, part(3)), store.recordPart(ids.get('big-a')!, part(1)), store.recordPart(ids.get('big-b')!, part(1))]);
      await Promise.all([store.recordPart(ids.get('big-a')!, part(1, 'again')), store.recordPart(ids.get('big-a')!, part(2))]);
      const a = await store.uploadOf(ids.get('big-a')!);
      expect(a).toStrictEqual({ ...upload('big-a', 'u-a1'), startedAt: expect.stringMatching(/Z$/), parts: [part(1, 'again'), part(2), part(3)] });
      expect(Object.keys(a!)).toEqual(['objectId', 'destKey', 'uploadId', 'sourceEtag', 'size', 'partSize', 'partCount', 'startedAt', 'parts']);
      expect(await store.recordedUploads()).toStrictEqual([
        { key: 'big-a', ...upload('big-a', 'u-a1'), startedAt: expect.any(String) },
        { key: 'big-b', ...upload('big-b', 'u-b'), startedAt: expect.any(String) },
      ]);
      expect((await store.summary()).openUploads).toStrictEqual({
        count: 2,
        bytesDone: 4 * 8 * 1024 ** 2,
        sample: [
          { key: 'big-a', destKey: 'to/big-a', uploadId: 'u-a1', size: 30 * 1024 ** 2, partsDone: 3, partCount: 4, bytesDone: 3 * 8 * 1024 ** 2, startedAt: expect.any(String) },
          { key: 'big-b', destKey: 'to/big-b', uploadId: 'u-b', size: 30 * 1024 ** 2, partsDone: 1, partCount: 4, bytesDone: 8 * 1024 ** 2, startedAt: expect.any(String) },
        ],
      });

      // A new upload for the row replaces the old record and its parts; queued right after a part, in order.
      await Promise.all([store.recordPart(ids.get('big-a')!, part(4)), store.recordUpload(upload('big-a', 'u-a2'))]);
      expect(await store.uploadOf(ids.get('big-a')!)).toMatchObject({ uploadId: 'u-a2', parts: [] });
      await store.recordPart(ids.get('big-a')!, part(1));

      // Forgotten: gone with its parts. Done with a completed upload: the record goes with the mark.
      await store.forgetUpload(ids.get('big-b')!);
      expect(await store.uploadOf(ids.get('big-b')!)).toBeUndefined();
      await store.markDone(ids.get('big-a')!, { destKey: 'to/big-a', destEtag: '"x-4"', evidence: 'multipart-etag', completedUpload: true });
      expect(await store.uploadOf(ids.get('big-a')!)).toBeUndefined();
      expect(await h.statusOf()).toMatchObject({ 'big-a': 'done' });
      // Done without one (a single PUT): a record of the row, if any, stays for abort-uploads to find.
      await store.recordUpload(upload('big-c', 'u-c'));
      await store.markDone(ids.get('big-c')!, { destKey: 'to/big-c', evidence: 'md5' });
      expect((await store.recordedUploads()).map((u) => u.uploadId)).toEqual(['u-c']);
      expect((await store.summary()).openUploads).toMatchObject({ count: 1, bytesDone: 0 });
    });
  });

  describe('verify passes', () => {
    it('records findings, sends what differs back to pending, and concludes rows the listing did not show', async () => {
      const h = await cataloged(['ok', 'etag', 'missing', 'never', 'proved', 'unproven', 'gone'].map((k) => obj(k, 3)));
      const { store } = h;
      const ids = new Map((await store.claimPending('key', 100)).map((row) => [row.key, row.id]));
      for (const key of ['ok', 'etag', 'missing', 'proved', 'unproven']) await store.markDone(ids.get(key)!, { destKey: key, destEtag: `"${key}"`, evidence: 'md5' });
      await store.markGone(ids.get('gone')!);
      await store.markPending(ids.get('never')!, true);
      for (const key of ['proved', 'unproven']) {
        await h.setColumn(key, 'status', 'unproven');
        await h.setColumn(key, 'evidence', null);
      }

      const pass = await store.beginVerifyPass();
      expect(pass).toBe(1);
      expect(await store.rowByKey('proved')).toStrictEqual({
        id: ids.get('proved'), key: 'proved', size: 3, etag: '"e-proved"', status: 'unproven', destEtag: '"proved"', evidence: null,
      });
      expect(await store.rowByKey('gone')).toBeUndefined();
      await store.recordVerifyResults(pass, [
        { id: ids.get('ok')!, result: 'ok' },
        { id: ids.get('etag')!, result: 'etag-mismatch' },
        { id: ids.get('proved')!, result: 'ok', evidence: 'deep-md5', destEtag: '"new"' },
        { id: ids.get('unproven')!, result: 'unproven' },
      ]);
      await store.recordVerifyResults(pass, []);
      await store.finishVerifyPass(pass);

      expect(await h.statusOf()).toEqual({
        ok: 'done', etag: 'pending', missing: 'pending', never: 'pending', proved: 'done', unproven: 'unproven', gone: 'gone',
      });
      expect(await h.row('proved')).toMatchObject({ evidence: 'deep-md5', dest_etag: '"new"', verify_result: 'ok', verify_pass: 1 });
      expect(await h.row('ok')).toMatchObject({ evidence: 'md5', dest_etag: '"ok"', verify_result: 'ok' });
      expect(await h.row('missing')).toMatchObject({ verify_result: 'missing', verify_pass: 1 });
      expect(await h.row('never')).toMatchObject({ verify_result: 'not-copied' });
      expect(await h.row('gone')).toMatchObject({ verify_result: null });
      expect(await store.verifyResultCounts()).toEqual([
        { result: 'etag-mismatch', objects: 1 },
        { result: 'missing', objects: 1 },
        { result: 'not-copied', objects: 1 },
        { result: 'ok', objects: 2 },
        { result: 'unproven', objects: 1 },
      ]);
      const problems = [];
      for await (const problem of store.verifyProblems()) problems.push(problem);
      expect(problems).toEqual([
        { key: 'etag', size: 3, result: 'etag-mismatch' },
        { key: 'missing', size: 3, result: 'missing' },
        { key: 'never', size: 3, result: 'not-copied' },
        { key: 'unproven', size: 3, result: 'unproven' },
      ]);
      expect(await store.beginVerifyPass()).toBe(2);
      // A copy marks the repaired row done again, its verify result cleared.
      const [etag] = await store.claimPending('key', 1);
      expect(etag!.key).toBe('etag');
      await store.markDone(etag!.id, { destKey: 'etag', destEtag: '"etag2"', evidence: 'md5' });
      expect(await h.row('etag')).toMatchObject({ status: 'done', verify_result: null });
    });
  });

  describe('identity, runs and the single-writer lock', () => {
    it('a new state is empty and says so', async () => {
      const { store } = await open();
      expect(await store.getSource()).toBeUndefined();
      expect(await store.getDestination()).toBeUndefined();
      expect(await store.catalogComplete()).toBe(false);
      expect(await store.countListed()).toBe(0);
      expect(await store.inFlightRows()).toEqual([]);
      expect(await store.claimPending('key', 10)).toEqual([]);
      expect(await store.outcomeCounts()).toEqual({ failed: 0, changed: 0, gone: 0, unproven: 0, archived: 0 });
      expect(await store.summary()).toStrictEqual({
        source: undefined,
        catalogState: undefined,
        catalogStartedAt: undefined,
        catalogFinishedAt: undefined,
        catalogSource: undefined,
        counts: [],
        objectsTotal: 0,
        objectsDone: 0,
        bytesTotal: 0,
        bytesDone: 0,
        evidenceCounts: [],
        verifyResults: [],
        recentErrors: [],
        openUploads: { count: 0, bytesDone: 0, sample: [] },
        lastRun: undefined,
        lastCatalogPass: undefined,
      });
    });

    it('keeps source and destination, and the runs with their outcome', async () => {
      const h = await open();
      const { store } = h;
      await store.setSource({ endpoint: 'https://s3.example.com', bucket: 'src', prefix: 'photos/' });
      await store.setDestination({ endpoint: 'http://127.0.0.1:9000', bucket: 'dst', prefix: '' });
      await store.setDestination({ endpoint: 'http://127.0.0.1:9000', bucket: 'dst', prefix: 'again/' });
      expect(await store.getSource()).toEqual({ endpoint: 'https://s3.example.com', bucket: 'src', prefix: 'photos/' });
      expect(await store.getDestination()).toEqual({ endpoint: 'http://127.0.0.1:9000', bucket: 'dst', prefix: 'again/' });

      const first = await store.startRun('catalog', '{"from":"s3://src/photos/"}');
      await store.finishRun(first, 'completed', { keysListed: 3 });
      const second = await store.startRun('copy', '{}');
      expect(second).toBeGreaterThan(first);
      expect((await store.summary()).lastRun).toStrictEqual({ command: 'copy', startedAt: expect.any(String), finishedAt: undefined, outcome: 'running' });
      await store.finishRun(second, 'failed', { objectsDone: 1, bytesDone: 10, error: 'boom' });
      const summary = await store.summary();
      expect(summary.lastRun).toMatchObject({ command: 'copy', outcome: 'failed', finishedAt: expect.stringMatching(/Z$/) });
      expect(summary.source).toEqual({ endpoint: 'https://s3.example.com', bucket: 'src', prefix: 'photos/' });
      expect(await h.runs()).toEqual([
        { command: 'catalog', outcome: 'completed' },
        { command: 'copy', outcome: 'failed' },
      ]);
    });

    it('summary: counts per status, evidence, recent errors newest first', async () => {
      const h = await cataloged(['a', 'b', 'c', 'd', 'e'].map((k, i) => obj(k, 10 ** i)));
      const { store } = h;
      const ids = new Map((await store.claimPending('key', 100)).map((row) => [row.key, row.id]));
      await store.markDone(ids.get('a')!, { destKey: 'a', evidence: 'md5' });
      await store.markDone(ids.get('b')!, { destKey: 'b', evidence: 'content-md5' });
      await store.markFailed(ids.get('c')!, 'first error');
      await new Promise((resolve) => setTimeout(resolve, 5));
      await store.markChanged(ids.get('d')!, 'second error');
      await store.markGone(ids.get('e')!);
      const summary = await store.summary();
      expect(summary).toMatchObject({
        catalogState: 'complete',
        counts: [
          { status: 'changed', objects: 1, bytes: 1000 },
          { status: 'done', objects: 2, bytes: 11 },
          { status: 'failed', objects: 1, bytes: 100 },
          { status: 'gone', objects: 1, bytes: 10000 },
        ],
        objectsTotal: 4,
        objectsDone: 2,
        bytesTotal: 1111,
        bytesDone: 11,
        evidenceCounts: [
          { evidence: 'content-md5', objects: 1 },
          { evidence: 'md5', objects: 1 },
        ],
        verifyResults: [{ result: 'not-verified', objects: 4 }],
      });
      expect(summary.recentErrors.map((e) => [e.key, e.error, e.attempts])).toEqual([
        ['d', 'second error', 1],
        ['c', 'first error', 1],
      ]);
      expect((await store.summary(1)).recentErrors).toHaveLength(1);
    });

    it('one writer at a time: a live holder is named, a dead one on this host taken over', async () => {
      const h = await open();
      const { store } = h;
      await store.acquireLock('catalog');
      const mine = JSON.parse((await h.meta('lock'))!) as { pid: number; host: string; command: string };
      expect(mine).toMatchObject({ pid: process.pid, host: os.hostname(), command: 'catalog' });
      await store.releaseLock();
      expect(await h.meta('lock')).toBeUndefined();

      // A live process on this host (our parent) holds it.
      const since = '2024-01-01T00:00:00.000Z';
      await h.setMeta('lock', JSON.stringify({ pid: process.ppid, host: os.hostname(), command: 'copy', since }));
      await expect(store.acquireLock('verify')).rejects.toMatchObject({ name: 'StateLockedError', kind: 'fatal' });
      await expect(store.acquireLock('verify')).rejects.toThrow(new RegExp(`in use by \`s3migrate copy\` \\(pid ${process.ppid} on `));
      // A process on another host: not ours to judge.
      await h.setMeta('lock', JSON.stringify({ pid: 1, host: `${os.hostname()}-elsewhere`, command: 'copy', since }));
      await expect(store.acquireLock('verify')).rejects.toMatchObject({ name: 'StateLockedError' });

      // A dead process on this host: its lock is taken over and its run recorded as abandoned.
      const run = await store.startRun('copy', '{}');
      const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
      await h.setMeta('lock', JSON.stringify({ pid: dead, host: os.hostname(), command: 'copy', since }));
      await store.acquireLock('copy');
      expect(JSON.parse((await h.meta('lock'))!)).toMatchObject({ pid: process.pid, command: 'copy' });
      expect(await h.runs()).toEqual([{ command: 'copy', outcome: 'abandoned' }]);
      expect(run).toBeGreaterThan(0);
      // close() releases it.
      await store.close();
      expect(await h.meta('lock')).toBeUndefined();
      // A lock of another process is never released by us.
      const other = await h.reopen();
      await h.setMeta('lock', JSON.stringify({ pid: process.ppid, host: os.hostname(), command: 'copy', since }));
      await other.releaseLock();
      expect(await h.meta('lock')).toBeDefined();
    });
  });
}
