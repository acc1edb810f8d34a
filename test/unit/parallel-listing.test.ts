// The catalog's listing in parts, against an in-memory ListObjectsV2 with S3's exact semantics (keys in
// UTF-8 byte order, StartAfter, continuation tokens, MaxKeys, delimiter listings): whatever the keys, the
// concurrency and where a run is killed, the state ends with exactly the bucket's keys, and a resumed run
// lists no finished part again. Real servers are in test/catalog-parts.test.ts and test/compat/.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCatalog } from '../../src/catalog/catalog.js';
import { compareKeys } from '../../src/catalog/key-order.js';
import { planParts, rangesBetween, type Lister } from '../../src/catalog/plan-parts.js';
import { decodeListedKey } from '../../src/s3/list-pages.js';
import { SqliteStore } from '../../src/state/sqlite/sqlite-store.js';
import type { ListedObject } from '../../src/state/types.js';
import { tempDir } from '../support/catalog-fixtures.js';

let work: string;
beforeAll(async () => {
  work = await tempDir('parts-unit');
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

interface FakeBucket {
  lister: Lister;
  requests: Array<{ prefix: string; startAfter?: string; token?: string; delimiter?: string }>;
}

/**
 * ListObjectsV2 over `keys` as S3 answers it. `omitDeepOnly` mimics s3rver: a delimiter listing leaves out a
 * common prefix that holds no key of its own at the next level (`a/` when only `a/b/c` exists).
 */
function fakeBucket(keys: readonly string[], options: { omitDeepOnly?: boolean; pageSize?: number } = {}): FakeBucket {
  const sorted = [...new Set(keys)].sort(byteOrder);
  const requests: FakeBucket['requests'] = [];
  const directDirs = new Set(sorted.map((key) => key.slice(0, key.lastIndexOf('/') + 1)));
  const lister: Lister = async (request) => {
    requests.push({ prefix: request.prefix, startAfter: request.startAfter, token: request.continuationToken, delimiter: request.delimiter });
    await new Promise((resolve) => setImmediate(resolve));
    const after = request.continuationToken ?? request.startAfter ?? '';
    const max = Math.min(request.maxKeys ?? 1000, options.pageSize ?? 1000);
    const objects: ListedObject[] = [];
    const prefixes: string[] = [];
    let last = '';
    let truncated = false;
    // The first key above `after` and at or above the prefix (binary search), then on until the prefix ends.
    const firstAbove = (bound: string, strict: boolean): number => {
      let lo = 0;
      let hi = sorted.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        const c = byteOrder(sorted[mid]!, bound);
        if (c < 0 || (strict && c === 0)) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };
    for (let i = Math.max(firstAbove(after, true), firstAbove(request.prefix, false)); i < sorted.length; i++) {
      const key = sorted[i]!;
      if (!key.startsWith(request.prefix)) break;
      const at = request.delimiter ? key.indexOf(request.delimiter, request.prefix.length) : -1;
      if (at === -1) {
        if (objects.length + prefixes.length === max) {
          truncated = true;
          break;
        }
        objects.push({ key, size: key.length, etag: `"${key.length}"`, lastModified: '2024-01-01T00:00:00.000Z' });
        last = key;
        continue;
      }
      const entry = key.slice(0, at + 1);
      if (objects.length + prefixes.length === max) {
        truncated = true;
        break;
      }
      while (i + 1 < sorted.length && sorted[i + 1]!.startsWith(entry)) i++;
      last = sorted[i]!;
      if (!(options.omitDeepOnly && !directDirs.has(entry))) prefixes.push(entry);
    }
    return { objects, prefixes, truncated, nextToken: truncated ? last : undefined, encoded: false };
  };
  return { lister, requests };
}

/** Keys of every awkward kind: around '/', below and above ASCII, surrogate pairs, folder markers, deep-only prefixes. */
function awkwardKeys(): string[] {
  const keys: string[] = [];
  // Besides: keys right after a prefix's range ('p000' after 'p00/'), and keys of a prefix above U+10FFFF's
  // first byte sequence ('p01-x/\u{10FFFF}z'), which the gap after a prefix must not list twice.
  const names = ['a', 'a!', 'a-b', 'a.txt', 'a/', 'a/x', 'a0', 'é', '\uFF01', '😀', '\u00FF', 'Z', '~', ' lead', 'trail ', 'a//b', '%', '+',
    'p000', 'p01-x0', 'p01-x/\u{10FFFF}z', 'p02.y/\u{10FFFF}', 'p03é/\u{10FFFF}\u{10FFFF}'];
  for (const name of names) keys.push(name);
  for (let p = 0; p < 40; p++) {
    const dir = `p${String(p).padStart(2, '0')}${['', '-x', '.y', 'é', '😀'][p % 5]}/`;
    const size = [1, 3, 40, 250, 900, 2_500][p % 6]!;
    if (p % 7 === 0) keys.push(dir); // a folder marker equal to a part boundary
    for (let i = 0; i < size; i++) keys.push(`${dir}${p % 3 === 0 ? `deep/${i % 4}/` : ''}k${String(i).padStart(5, '0')}${i % 11 === 0 ? '!' : ''}`);
  }
  return keys;
}

let counter = 0;
const openStore = (file = path.join(work, `state-${++counter}.db`)) => ({ file, store: SqliteStore.open(file, { create: true, readonly: false }) });
const storedKeys = (store: SqliteStore): string[] =>
  (store as unknown as { db: { prepare(sql: string): { pluck(): { all(): string[] } } } }).db.prepare('SELECT key FROM objects').pluck().all().sort(byteOrder);

const source = { endpoint: 'fake', bucket: 'b', prefix: '' };
const catalog = (store: SqliteStore, lister: Lister, listConcurrency: number, signal?: AbortSignal) =>
  runCatalog({ store, client: undefined as never, source, credentialSource: 'none', lister, listConcurrency, signal });

describe('the key space in parts', () => {
  it('compareKeys is UTF-8 byte order', () => {
    const keys = [...awkwardKeys(), '\uD7FF', '\uE000', '\uFFFF', '𐀀', '\u0080', ''];
    expect([...keys].sort(compareKeys)).toEqual([...keys].sort(byteOrder));
  });

  it('parts cover the key space once: each boundary ends one part and starts the next', () => {
    expect(rangesBetween([])).toEqual([{ startAfter: '', endKey: null }]);
    expect(rangesBetween(['a/', 'b/'])).toEqual([
      { startAfter: '', endKey: 'a/' },
      { startAfter: 'a/', endKey: 'b/' },
      { startAfter: 'b/', endKey: null },
    ]);
  });

  it('one lister needs no plan; more are planned from the prefixes found, recursively when few', async () => {
    const bucket = fakeBucket(['x', 'a/1', 'b/1', 'b/c/1', 'b/d/1']);
    expect(await planParts(bucket.lister, '', 1)).toEqual([{ startAfter: '', endKey: null }]);
    expect(bucket.requests).toEqual([]);
    const ranges = await planParts(bucket.lister, '', 2);
    expect(ranges.map((r) => r.endKey)).toEqual(['a/', 'b/', 'b/c/', 'b/d/', null]);
    expect(bucket.requests.every((r) => r.delimiter === '/')).toBe(true);
  });

  it.each([1, 2, 3, 8, 32])('%i listers store exactly the bucket\'s keys, awkward ones included', async (concurrency) => {
    const keys = awkwardKeys();
    for (const omitDeepOnly of [false, true]) {
      const bucket = fakeBucket(keys, { omitDeepOnly, pageSize: 97 });
      const { store } = openStore();
      const result = await catalog(store, bucket.lister, concurrency);
      expect(result.completed).toBe(true);
      expect(storedKeys(store)).toEqual([...new Set(keys)].sort(byteOrder));
      await store.close();
    }
  });

  it('killed at any request, the next runs resume each part: exact keys, finished parts never listed again', async () => {
    const keys = awkwardKeys();
    const total = new Set(keys).size;
    for (const stopAt of [1, 2, 5, 17, 40, 77]) {
      const { file, store } = openStore();
      let sent = 0;
      const controller = new AbortController();
      const bucket = fakeBucket(keys, { omitDeepOnly: true, pageSize: 97 });
      const killing: Lister = (request) => {
        sent += 1;
        if (sent === stopAt) controller.abort();
        return bucket.lister(request);
      };
      const first = await catalog(store, killing, 8, controller.signal);
      expect(first.completed).toBe(false);
      const done = (store as unknown as { partsOf(pass: number): Array<{ done: boolean; startAfter: string; endKey: string | null }> }).partsOf(1);
      await store.close();

      const again = openStore(file).store;
      const resumed = fakeBucket(keys, { omitDeepOnly: true, pageSize: 97 });
      const second = await catalog(again, resumed.lister, 8);
      expect(second.completed).toBe(true);
      expect(storedKeys(again)).toHaveLength(total);
      expect(storedKeys(again)).toEqual([...new Set(keys)].sort(byteOrder));
      // No request of the second run starts inside a part the first run finished.
      const finished = done.filter((part) => part.done);
      for (const request of resumed.requests.filter((r) => r.token === undefined && r.delimiter === undefined)) {
        const inside = finished.find(
          (part) => byteOrder(request.startAfter ?? '', part.startAfter) >= 0 && (part.endKey === null || byteOrder(request.startAfter ?? '', part.endKey) < 0),
        );
        expect(inside, `request after ${request.startAfter}`).toBeUndefined();
      }
      // A plan made once: the second run sent no delimiter listing.
      if (done.length > 0) expect(resumed.requests.filter((r) => r.delimiter)).toEqual([]);
      await again.close();
    }
  });

  it('one large flat directory is split as it is listed: more parts than planned, exact keys, and a kill after splits resumes each piece', async () => {
    // 12,000 keys directly under one prefix (one planned part of them), hex-like and awkward names mixed in.
    const keys = Array.from({ length: 12_000 }, (_, i) => `big/${(i * 2654435761 >>> 0).toString(16).padStart(8, '0')}${i % 13 === 0 ? ' é' : ''}`);
    keys.push('big0', 'a', 'big/', '😀');
    const total = new Set(keys).size;
    const parts = (store: SqliteStore) =>
      (store as unknown as { partsOf(pass: number): Array<{ done: boolean; startAfter: string; endKey: string | null }> }).partsOf(1);
    let requests = 0;
    {
      const { store } = openStore();
      const bucket = fakeBucket(keys, { pageSize: 500 });
      expect((await catalog(store, bucket.lister, 8)).completed).toBe(true);
      expect(storedKeys(store)).toEqual([...new Set(keys)].sort(byteOrder));
      const planned = (await planParts(fakeBucket(keys).lister, '', 8)).length;
      expect(parts(store).length).toBeGreaterThan(planned + 4);
      // Probes ask for one key each.
      expect(bucket.requests.length).toBeLessThan(200);
      requests = bucket.requests.length;
      await store.close();
    }
    // Killed early, halfway and near the end of what a whole run sends (splits and their probes included).
    for (const stopAt of [12, Math.floor(requests / 2), requests - 5]) {
      const { file, store } = openStore();
      let sent = 0;
      const controller = new AbortController();
      const bucket = fakeBucket(keys, { pageSize: 500 });
      const killing: Lister = (request) => {
        sent += 1;
        if (sent === stopAt) controller.abort();
        return bucket.lister(request);
      };
      expect((await catalog(store, killing, 8, controller.signal)).completed).toBe(false);
      const before = parts(store);
      await store.close();
      const again = openStore(file).store;
      const resumed = fakeBucket(keys, { pageSize: 500 });
      expect((await catalog(again, resumed.lister, 8)).completed).toBe(true);
      expect(storedKeys(again)).toHaveLength(total);
      expect(storedKeys(again)).toEqual([...new Set(keys)].sort(byteOrder));
      // The parts still tile the key space: sorted by start, each starts where the one before ends.
      const tiles = parts(again).sort((x, y) => byteOrder(x.startAfter, y.startAfter));
      expect(tiles[0]!.startAfter).toBe('');
      for (let i = 1; i < tiles.length; i++) expect(tiles[i]!.startAfter).toBe(tiles[i - 1]!.endKey);
      expect(tiles.at(-1)!.endKey).toBeNull();
      for (const request of resumed.requests.filter((r) => r.token === undefined && r.delimiter === undefined)) {
        const inside = before.filter((part) => part.done).find(
          (part) => byteOrder(request.startAfter ?? '', part.startAfter) >= 0 && (part.endKey === null || byteOrder(request.startAfter ?? '', part.endKey) < 0),
        );
        expect(inside, `request after ${request.startAfter}`).toBeUndefined();
      }
      await again.close();
    }
  });

  it('a server listing out of byte order (s3rver: `a/b.jpg` before `a b.jpg`) stops the catalog, no key dropped silently', async () => {
    // s3rver walks its directories: a plain listing gives the keys under a/ before `a b.jpg`, `a-.jpg`, `a.jpg`.
    const walkOrder = ['B.jpg', 'a/b.jpg', 'a b.jpg', 'a-.jpg', 'a.jpg', 'dir/', 'z.jpg'];
    const lister: Lister = async (request) => {
      if (request.delimiter) return { objects: [], prefixes: ['a/', 'dir/'], truncated: false, encoded: false };
      const after = request.startAfter ?? '';
      const keys = walkOrder.filter((key) => key.startsWith(request.prefix) && (after === '' || byteOrder(key, after) > 0));
      return { objects: keys.map((key) => ({ key, size: 1, etag: '"e"', lastModified: '2024-01-01T00:00:00.000Z' })), prefixes: [], truncated: false, encoded: false };
    };
    const { store } = openStore();
    await expect(catalog(store, lister, 8)).rejects.toThrow(/"a b\.jpg" after "a\/b\.jpg", not in byte order.*--list-concurrency 1/);
    await store.close();
    const single = openStore().store;
    expect((await catalog(single, lister, 1)).completed).toBe(true);
    expect(storedKeys(single)).toEqual([...walkOrder].sort(byteOrder));
    await single.close();
  });

  it('a prefix: only its keys, its own parts', async () => {
    const keys = awkwardKeys();
    const bucket = fakeBucket(keys, { pageSize: 50 });
    const { store } = openStore();
    await runCatalog({ store, client: undefined as never, source: { ...source, prefix: 'p03-x/' }, credentialSource: 'none', lister: bucket.lister, listConcurrency: 4 });
    expect(storedKeys(store)).toEqual(keys.filter((k) => k.startsWith('p03-x/')).sort(byteOrder));
    expect(bucket.requests.every((r) => r.prefix.startsWith('p03-x/'))).toBe(true);
    await store.close();
  });
});

describe('keys of an EncodingType=url listing', () => {
  it.each([
    ['plus+sign', 'plus%2Bsign'],
    ['two words', 'two+words'],
    ['two words', 'two%20words'],
    ['100%', '100%25'],
    ['a%2Bb', 'a%252Bb'],
    ['ünïcødé/日本', '%C3%BCn%C3%AFc%C3%B8d%C3%A9%2F%E6%97%A5%E6%9C%AC'],
    ['ctl\u0001char\u001f.txt', 'ctl%01char%1F.txt'],
    ['cr\rlf\n', 'cr%0Dlf%0A'],
    ['emoji 😀', 'emoji+%F0%9F%98%80'],
    ['dots/./../end  ', 'dots%2F.%2F..%2Fend%20%20'],
  ])('%j is decoded from %j', (key, encoded) => {
    expect(decodeListedKey(encoded)).toBe(key);
  });

  it('a malformed escape is refused, never stored as another key', () => {
    expect(() => decodeListedKey('bad%ZZ')).toThrow(/not valid URL encoding/);
    expect(() => decodeListedKey('%C3')).toThrow(/not valid URL encoding/);
  });
});
