// The state store on a SQLite file: the StateStore contract (test/support/store-contract.ts, shared with
// the PostgreSQL store), then what only the file has: SQLite's query plans, the file's identity and bytes.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FatalError } from '../../src/errors.js';
import { SqliteStore } from '../../src/state/sqlite/sqlite-store.js';
import { SORT_ORDERS } from '../../src/state/types.js';
import { sha256File, tempDir } from '../support/catalog-fixtures.js';
import { checkSqliteCounters } from '../support/state-counters.js';
import { atPart, beginListing, obj, storeContract, type OpenedStore } from '../support/store-contract.js';

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

function raw<T>(file: string, fn: (db: Database.Database) => T, readonly = true): T {
  const db = new Database(file, { readonly });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/** A SQLite state as the contract sees it: the store, and the file read with plain SQL. */
function sqliteStore(): OpenedStore {
  const file = path.join(work, `contract-${++counter}.db`);
  const store = SqliteStore.open(file, { create: true, readonly: false });
  const COLUMN = /^[a-z_]+$/;
  return {
    store,
    reopen: async () => SqliteStore.open(file, { create: true, readonly: false }),
    statusOf: async () =>
      raw(file, (db) =>
        Object.fromEntries(
          (db.prepare('SELECT key, status FROM objects').all() as Array<{ key: string; status: string }>).map((r) => [r.key, r.status]),
        ),
      ),
    row: async (key) => raw(file, (db) => db.prepare('SELECT * FROM objects_view WHERE key = ?').get(key) as Record<string, unknown> | undefined),
    meta: async (key) =>
      raw(file, (db) => (db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value),
    setMeta: async (key, value) => {
      raw(file, (db) => db.prepare('INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value), false);
    },
    setColumn: async (key, column, value) => {
      if (!COLUMN.test(column)) throw new Error(`not a column: ${column}`);
      raw(file, (db) => db.prepare(`UPDATE objects SET ${column} = ? WHERE key = ?`).run(value, key), false);
    },
    runs: async () => raw(file, (db) => db.prepare('SELECT command, outcome FROM runs ORDER BY id').all() as Array<{ command: string; outcome: string }>),
  };
}

describe('the StateStore contract on a SQLite file', () => {
  // Every contract test's files: what status reads (the counters) equals a scan of the rows.
  afterEach(() => {
    for (const file of fs.readdirSync(work).filter((name) => name.startsWith('contract-') && name.endsWith('.db'))) {
      checkSqliteCounters(path.join(work, file));
    }
  });
  storeContract(() => ({ open: async () => sqliteStore() }));
});

describe('catalog rows stored in bulk', () => {
  it('a key the byte-order check misjudges (a lone surrogate has no UTF-8) is stored by the upsert; counters equal a scan', async () => {
    const { store, file } = newStore();
    await beginListing(store);
    const stored = ['x\ud800', 'x\ue000'];
    await store.ingestPage(1, stored.map((key) => obj(key)), atPart('x\ue000'));
    const pages = Array.from({ length: 3 }, (_, p) => Array.from({ length: 250 }, (_, i) => obj(`k/${String(p * 250 + i).padStart(4, '0')}`, i)));
    for (const page of pages) await store.ingestPage(1, page, atPart(page[page.length - 1]!.key));
    await store.finishCatalogPass(1);
    // SQLite stores a lone surrogate as its 3 bytes (ED A0 80), below U+E000; compareKeys puts it above, so
    // 'x\ue000' looks new below the first stored key after 'x\ud7ff': its bulk insert fails, the upsert updates it.
    await beginListing(store);
    await store.ingestPage(2, [obj('x\ud7ff'), obj('x\ue000', 5)], atPart('x\ue000'));
    expect(raw(file, (db) => db.prepare("SELECT hex(key) AS key, size, change_kind, change_pass FROM objects WHERE key > 'x' ORDER BY key").all())).toEqual([
      { key: '78ED9FBF', size: 1, change_kind: 'new', change_pass: 2 }, // x\ud7ff
      { key: '78EDA080', size: 1, change_kind: 'new', change_pass: 1 }, // x\ud800
      { key: '78EE8080', size: 5, change_kind: 'modified', change_pass: 2 }, // x\ue000
    ]);
    checkSqliteCounters(file);
    expect(await store.countListed()).toBe(753);
  });
});

describe('SQLite query plans', () => {
  it('each order is served by its partial index: no sort of the pending rows per page', async () => {
    // Realistic statistics: 5,000 rows, most of them already done.
    const { store: big } = newStore();
    // The SQL nextPending prepares, captured to ask SQLite how it runs it.
    const db = (big as unknown as { db: Database.Database }).db;
    const prepare = db.prepare.bind(db);
    const seen = new Set<string>();
    db.prepare = ((sql: string) => (seen.add(sql), prepare(sql))) as typeof db.prepare;
    const { pass } = await beginListing(big);
    for (let page = 0; page < 5; page += 1) {
      const objects = Array.from({ length: 1_000 }, (_, i) =>
        obj(`p${page}/${i}`, i % 97, `"${i}"`, `2024-01-${String((i % 28) + 1).padStart(2, '0')}T00:00:00.000Z`),
      );
      await big.ingestPage(pass, objects, atPart(objects[objects.length - 1]!.key));
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
});

describe('opening state files', () => {
  it('refuses a state file from a newer schema and leaves its bytes unchanged', async () => {
    const { store, file } = newStore();
    await store.setSource({ endpoint: 'http://x', bucket: 'b', prefix: '' });
    await beginListing(store);
    await store.ingestPage(1, [obj('a')], atPart('a'));
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
