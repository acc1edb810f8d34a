import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FatalError } from '../../src/errors.js';
import { SqliteStore } from '../../src/state/sqlite/sqlite-store.js';
import { SORT_ORDERS, type ListedObject, type ObjectRow, type SortOrder } from '../../src/state/types.js';
import { sha256File, tempDir } from '../support/catalog-fixtures.js';

let work: string;
const open: SqliteStore[] = [];

beforeAll(async () => {
  work = await tempDir('state-unit');
});
afterEach(async () => {
  for (const store of open.splice(0)) await store.close();
});
afterAll(async () => {
  fs.rmSync(work, { recursive: true, force: true });
});

let counter = 0;
function newStore(): { store: SqliteStore; file: string } {
  const file = path.join(work, `state-${++counter}.db`);
  const store = SqliteStore.open(file, { create: true, readonly: false });
  open.push(store);
  return { store, file };
}

function raw<T>(file: string, fn: (db: Database.Database) => T): T {
  const db = new Database(file, { readonly: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

const statusOf = (file: string): Record<string, string> =>
  raw(file, (db) =>
    Object.fromEntries(
      (db.prepare('SELECT key, status FROM objects').all() as Array<{ key: string; status: string }>).map((r) => [r.key, r.status]),
    ),
  );

const obj = (key: string, size = 1, etag = `"e-${key}"`, lastModified = '2024-01-01T00:00:00.000Z'): ListedObject => ({
  key,
  size,
  etag,
  lastModified,
});

// S3 and SQLite both order keys by their UTF-8 bytes (not by JS UTF-16 code units).
const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

describe('claimPending: the next rows in each --sort order, claimed in batches', () => {
  // Ties on size and on last_modified, so the key tie-breaker matters; keys whose UTF-8 and UTF-16
  // orders differ (an emoji vs U+FF01) so the byte order is checked.
  const keys = ['a', 'b', 'B', 'a/b', 'a b', 'é', 'z', '😀', '\uFF01', 'm+n', 'm%20', 'x/', 'y', 'k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6'];
  const listed: ListedObject[] = keys.map((key, i) =>
    obj(key, [5, 0, 7, 5, 5, 1000, 0, 7, 5, 3][i % 10]!, `"${i}"`, `2024-01-0${(i % 4) + 1}T12:00:0${i % 2}.000Z`),
  );
  const notPending = new Set(['b', 'k3', '😀']);
  let store: SqliteStore;

  beforeAll(async () => {
    store = SqliteStore.open(path.join(work, 'order.db'), { create: true, readonly: false });
    const { pass } = await store.beginCatalogPass();
    await store.ingestPage(pass, listed.slice(0, 9), listed[8]!.key);
    await store.ingestPage(pass, listed.slice(9), listed[listed.length - 1]!.key);
    await store.finishCatalogPass(pass);
    const ids = new Map((await store.claimPending('key', 100)).map((row) => [row.key, row.id]));
    await store.markDone(ids.get('b')!, { destKey: 'b', evidence: 'md5' });
    await store.markFailed(ids.get('k3')!, 'boom');
    // The rest back to pending but one, left in flight.
    await store.releaseClaims([...ids].filter(([key]) => !['b', 'k3', '😀'].includes(key)).map(([, id]) => id));
  });
  afterAll(async () => await store.close());

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
      expect(Object.values(statusOf(path.join(work, 'order.db'))).filter((s) => s === 'in_flight')).toHaveLength(expected.length + 1);
      await store.releaseClaims(claimed.map((r) => r.id));
      expect(claimed.every((r) => r.attempts === 1)).toBe(true);
    },
  );

  it('each order is served by its partial index: no sort of the pending rows per page', async () => {
    // Realistic statistics: 5,000 rows, most of them already done.
    const { store: big } = newStore();
    // The SQL nextPending prepares, captured to ask SQLite how it runs it.
    const db = (big as unknown as { db: Database.Database }).db;
    const prepare = db.prepare.bind(db);
    const seen = new Set<string>();
    db.prepare = ((sql: string) => (seen.add(sql), prepare(sql))) as typeof db.prepare;
    const { pass } = await big.beginCatalogPass();
    for (let page = 0; page < 5; page += 1) {
      const objects = Array.from({ length: 1_000 }, (_, i) =>
        obj(`p${page}/${i}`, i % 97, `"${i}"`, `2024-01-${String((i % 28) + 1).padStart(2, '0')}T00:00:00.000Z`),
      );
      await big.ingestPage(pass, objects, objects[objects.length - 1]!.key);
    }
    await big.finishCatalogPass(pass);
    for (const row of await big.claimPending('key', 4_000)) await big.markDone(row.id, { destKey: row.key, evidence: 'md5' });
    for (const order of SORT_ORDERS) {
      await big.prepareCopy(order); // what copy does before it starts
      const [first, second] = await big.claimPending(order, 2);
      await big.releaseClaims([first!.id, second!.id]);
      expect((await big.claimPending(order, 1))[0]!.key).toBe(first!.key);
    }
    db.prepare = prepare;
    const plans = [...seen]
      .filter((sql) => sql.includes("status = 'pending'") && sql.includes('ORDER BY'))
      .map((sql) => {
        const steps = prepare(`EXPLAIN QUERY PLAN ${sql}`).all(1);
        return { sql, plan: (steps as Array<{ detail: string }>).map((s) => s.detail).join(' | ') };
      });
    expect(plans).toHaveLength(SORT_ORDERS.length);
    for (const { sql, plan } of plans) {
      expect(plan, sql).toMatch(/USING (COVERING )?INDEX objects_pending_by_/);
      expect(plan, sql).not.toMatch(/TEMP B-TREE/);
    }
  });

  it('returns rows with the fields the engine needs, their attempt counted', async () => {
    const [row] = await store.claimPending('largest', 1);
    await store.releaseClaims([row!.id]);
    expect(row).toEqual({ id: expect.any(Number), key: 'é', size: 1000, etag: '"5"', lastModified: listed[5]!.lastModified, attempts: 1 });
  });
});

describe('catalog passes: ingestPage and finishCatalogPass', () => {
  it('reconciles a new pass: changed and reappearing keys pending, unseen keys gone, others keep status', async () => {
    const { store, file } = newStore();
    const p1 = await store.beginCatalogPass();
    expect(p1).toEqual({ pass: 1, startAfter: '', resumed: false });
    await store.ingestPage(1, [obj('a'), obj('b'), obj('c')], 'c');
    await store.ingestPage(1, [obj('d'), obj('e'), obj('f')], 'f');
    expect(await store.finishCatalogPass(1)).toEqual({ gone: 0 });
    expect(await store.catalogComplete()).toBe(true);

    const ids = new Map((await store.claimPending('key', 10)).map((r) => [r.key, r.id]));
    for (const key of ['a', 'b', 'c', 'd']) await store.markDone(ids.get(key)!, { destKey: key, evidence: 'md5' });
    await store.markFailed(ids.get('e')!, 'boom');

    const p2 = await store.beginCatalogPass();
    expect(p2).toEqual({ pass: 2, startAfter: '', resumed: false });
    expect(await store.catalogComplete()).toBe(false);
    await store.ingestPage(2, [
      obj('a'), // unchanged: stays done
      obj('b', 2), // size changed
      obj('c', 1, '"other"'), // etag changed
      obj('d', 1, '"e-d"', '2024-06-01T00:00:00.000Z'), // re-uploaded, same bytes
      obj('e'), // unchanged failed: stays failed
      obj('g'), // new
    ], 'g');
    expect(await store.finishCatalogPass(2)).toEqual({ gone: 1 }); // f
    expect(statusOf(file)).toEqual({ a: 'done', b: 'pending', c: 'pending', d: 'pending', e: 'failed', f: 'gone', g: 'pending' });
    raw(file, (db) => {
      const b = db.prepare("SELECT size, attempts, error, evidence FROM objects WHERE key = 'b'").get();
      expect(b).toEqual({ size: 2, attempts: 0, error: null, evidence: null });
      expect(db.prepare("SELECT error FROM objects WHERE key = 'e'").pluck().get()).toBe('boom');
    });

    // A third pass: f is back, so it is pending again; a is gone now, and stays a single row.
    await store.beginCatalogPass();
    await store.ingestPage(3, ['b', 'c', 'd', 'e', 'f', 'g'].map((k) => (k === 'b' ? obj('b', 2) : k === 'c' ? obj('c', 1, '"other"') : k === 'd' ? obj('d', 1, '"e-d"', '2024-06-01T00:00:00.000Z') : obj(k))), 'g');
    expect(await store.finishCatalogPass(3)).toEqual({ gone: 1 });
    expect(statusOf(file)).toEqual({ a: 'gone', b: 'pending', c: 'pending', d: 'pending', e: 'failed', f: 'pending', g: 'pending' });
    expect(await store.countListed()).toBe(6);
  });

  it('an interrupted pass resumes after its last page, and its first part is not marked gone', async () => {
    const { store, file } = newStore();
    await store.beginCatalogPass();
    await store.ingestPage(1, [obj('a'), obj('b')], 'b');
    await store.ingestPage(1, [obj('c'), obj('old')], 'old');
    await store.finishCatalogPass(1);

    await store.beginCatalogPass(); // pass 2
    await store.ingestPage(2, [obj('a'), obj('b')], 'b');
    await store.close(); // the process dies here

    const reopened = SqliteStore.open(file, { create: true, readonly: false });
    open.push(reopened);
    expect(await reopened.catalogComplete()).toBe(false);
    expect(await reopened.beginCatalogPass()).toEqual({ pass: 2, startAfter: 'b', resumed: true });
    await reopened.ingestPage(2, [obj('c')], 'c');
    expect(await reopened.finishCatalogPass(2)).toEqual({ gone: 1 });
    expect(statusOf(file)).toEqual({ a: 'pending', b: 'pending', c: 'pending', old: 'gone' });
    raw(file, (db) => expect(db.prepare("SELECT value FROM meta WHERE key = 'catalog_start_after'").get()).toBeUndefined());
  });

  it('a page and its resume point commit together or not at all', async () => {
    const { store, file } = newStore();
    const { pass } = await store.beginCatalogPass();
    await store.ingestPage(pass, [obj('a')], 'a');
    // The second row breaks a NOT NULL constraint: the first row must not be stored either.
    await expect(store.ingestPage(pass, [obj('b'), { ...obj('c'), size: null as unknown as number }], 'c')).rejects.toThrow();
    expect(Object.keys(statusOf(file))).toEqual(['a']);
    raw(file, (db) => expect(db.prepare("SELECT value FROM meta WHERE key = 'catalog_start_after'").pluck().get()).toBe('a'));
  });
});

describe('opening state files', () => {
  it('refuses a state file from a newer schema and leaves its bytes unchanged', async () => {
    const { store, file } = newStore();
    await store.setSource({ endpoint: 'http://x', bucket: 'b', prefix: '' });
    await store.beginCatalogPass();
    await store.ingestPage(1, [obj('a')], 'a');
    await store.close();
    const db = new Database(file);
    db.pragma('user_version = 99');
    db.close();
    const hash = sha256File(file);

    for (const options of [{ create: true, readonly: false }, { create: false, readonly: false }, { create: false, readonly: true }]) {
      let error: unknown;
      try {
        SqliteStore.open(file, options).close();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(FatalError);
      expect((error as Error).message).toMatch(/newer s3migrate \(schema version 99/);
      expect(sha256File(file)).toBe(hash);
    }
    // Nothing went into a WAL either (a read-only connection leaves SQLite's empty -wal/-shm behind).
    if (fs.existsSync(`${file}-wal`)) expect(fs.statSync(`${file}-wal`).size).toBe(0);
    expect(raw(file, (d) => d.pragma('user_version', { simple: true }))).toBe(99);
  });

  it('refuses a foreign SQLite file and a text file without changing them', async () => {
    const foreign = path.join(work, 'foreign.db');
    const db = new Database(foreign);
    db.exec('CREATE TABLE meta (key TEXT, value TEXT)');
    db.close();
    const text = path.join(work, 'notes.txt');
    fs.writeFileSync(text, 'hello\n'.repeat(1000));
    for (const file of [foreign, text]) {
      const hash = sha256File(file);
      expect(() => SqliteStore.open(file, { create: true, readonly: false })).toThrow(/not an s3migrate state file/);
      expect(sha256File(file)).toBe(hash);
    }
  });

  it('refuses to create a state file unless asked to', async () => {
    const file = path.join(work, 'absent.db');
    expect(() => SqliteStore.open(file, { create: false, readonly: true })).toThrow(/Run `s3migrate catalog/);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('a new state file is WAL, carries our application id, and plain SQL reads it', async () => {
    const { store, file } = newStore();
    await store.close();
    raw(file, (db) => {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('application_id', { simple: true })).toBe(0x73336d67);
      expect(db.prepare('SELECT * FROM progress').get()).toEqual({
        objects_total: 0,
        objects_done: 0,
        bytes_total: 0,
        bytes_done: 0,
        percent_done: 0,
      });
    });
  });
});
