// The state store on PostgreSQL, on a real throwaway server (describePostgres): the StateStore contract
// shared with the SQLite file (test/support/store-contract.ts), then what only PostgreSQL has: several
// migrations in one database, claims by concurrent workers (FOR UPDATE SKIP LOCKED), the claim's query
// plan, the schema's identity and version, connections that fail, and the views psql users read.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pgClient from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FatalError, UsageError } from '../src/errors.js';
import { claimSql, PgStore, type PgOpenOptions } from '../src/state/postgres/pg-store.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../src/state/postgres/schema.js';
import { StateStoreError } from '../src/state/store.js';
import { SORT_ORDERS, type ObjectRow } from '../src/state/types.js';
import { describePostgres, startPostgres, type PostgresHandle } from './support/postgres.js';
import { atPart, beginListing, obj, storeContract, type OpenedStore } from './support/store-contract.js';

let migrations = 0;
const nextMigration = (): string => `m${++migrations}`;

describePostgres('the PostgreSQL state store', (pg) => {
  /** The database of this file's contract stores (one migration each). */
  let database: string;
  const opened: PgStore[] = [];
  const env = (): Record<string, string> => ({ PGPASSWORD: pg().password });

  beforeAll(async () => {
    database = await pg().createDatabase();
  });
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
  });

  async function openStore(options: Partial<PgOpenOptions> & { database?: string } = {}): Promise<PgStore> {
    const store = await PgStore.open(pg().urlOf(options.database ?? database), {
      create: true,
      readonly: false,
      migration: 'default',
      env: env(),
      ...options,
    });
    opened.push(store);
    return store;
  }

  /** Plain SQL as a psql user runs it, through the test's own connection (not our store). */
  const sql = async <R extends Record<string, unknown>>(text: string, params: unknown[] = [], db = database): Promise<R[]> =>
    (await pg().query<R>(text, params, db)).rows;

  function pgStore(db: string, migration: string, store: PgStore): OpenedStore {
    const COLUMN = /^[a-z_]+$/;
    return {
      store,
      reopen: () => PgStore.open(pg().urlOf(db), { create: true, readonly: false, migration, env: env() }),
      statusOf: async () =>
        Object.fromEntries(
          (await sql<{ key: string; status: string }>('SELECT key, status FROM s3migrate.objects WHERE migration = $1', [migration], db)).map(
            (r) => [r.key, r.status],
          ),
        ),
      // to_jsonb: bigint columns as JSON numbers, as better-sqlite3 gives them.
      row: async (key) =>
        (
          await sql<{ row: Record<string, unknown> }>(
            "SELECT to_jsonb(o) - 'migration' AS row FROM s3migrate.objects o WHERE migration = $1 AND key = $2",
            [migration, key],
            db,
          )
        )[0]?.row,
      meta: async (key) =>
        (await sql<{ value: string }>('SELECT value FROM s3migrate.meta WHERE migration = $1 AND key = $2', [migration, key], db))[0]?.value,
      setMeta: async (key, value) => {
        await sql(
          'INSERT INTO s3migrate.meta (migration, key, value) VALUES ($1, $2, $3) ON CONFLICT (migration, key) DO UPDATE SET value = EXCLUDED.value',
          [migration, key, value],
          db,
        );
      },
      setColumn: async (key, column, value) => {
        if (!COLUMN.test(column)) throw new Error(`not a column: ${column}`);
        await sql(`UPDATE s3migrate.objects SET ${column} = $3 WHERE migration = $1 AND key = $2`, [migration, key, value], db);
      },
      runs: async () => sql<{ command: string; outcome: string }>('SELECT command, outcome FROM s3migrate.runs WHERE migration = $1 ORDER BY id', [migration], db),
    };
  }

  describe('the StateStore contract, each state a migration of one shared database', () => {
    storeContract(() => ({
      open: async () => {
        const migration = nextMigration();
        const store = await PgStore.open(pg().urlOf(database), { create: true, readonly: false, migration, env: env() });
        return pgStore(database, migration, store);
      },
    }));
  });

  describe('several migrations in one database', () => {
    it('never see each other: the same keys, passes, claims, verify and summaries stay apart', async () => {
      const db = await pg().createDatabase();
      const photos = await openStore({ database: db, migration: 'photos' });
      const videos = await openStore({ database: db, migration: 'videos' });
      await photos.setSource({ endpoint: 'http://a', bucket: 'photos', prefix: '' });
      await videos.setSource({ endpoint: 'http://b', bucket: 'videos', prefix: 'v/' });
      for (const [store, keys] of [[photos, ['a', 'b', 'c']], [videos, ['a', 'b', 'x', 'y']]] as const) {
        const { pass } = await beginListing(store);
        await store.ingestPage(pass, keys.map((k) => obj(k, store === photos ? 1 : 100)), atPart(keys[keys.length - 1]!));
        await store.finishCatalogPass(pass);
      }
      expect(await photos.getSource()).toEqual({ endpoint: 'http://a', bucket: 'photos', prefix: '' });
      expect(await videos.getSource()).toEqual({ endpoint: 'http://b', bucket: 'videos', prefix: 'v/' });

      // A second pass of photos that no longer lists 'b' marks only photos' b gone.
      const { pass } = await beginListing(photos);
      expect(pass).toBe(2);
      expect(await videos.catalogComplete()).toBe(true);
      await photos.ingestPage(pass, [obj('a'), obj('c')], atPart('c'));
      expect(await photos.finishCatalogPass(pass)).toEqual({ gone: 1 });

      // Claims, marks, locks and verify passes of one leave the other alone.
      await photos.acquireLock('copy');
      await videos.acquireLock('copy');
      const claimed = await photos.claimPending('key', 100);
      expect(claimed.map((r) => r.key)).toEqual(['a', 'c']);
      for (const row of claimed) await photos.markFailed(row.id, 'boom');
      await photos.prepareCopy('key');
      const verifyPass = await photos.beginVerifyPass();
      await photos.finishVerifyPass(verifyPass);
      expect((await videos.claimPending('key', 100)).map((r) => r.key)).toEqual(['a', 'b', 'x', 'y']);
      expect(await videos.inFlightRows()).toHaveLength(4);
      expect(await photos.inFlightRows()).toEqual([]);
      expect(await videos.beginVerifyPass()).toBe(1);
      expect(await videos.rowByKey('x')).toMatchObject({ key: 'x', size: 100, status: 'in_flight' });
      expect(await photos.rowByKey('x')).toBeUndefined();
      expect((await photos.rowByKey('a'))!.size).toBe(1);
      const photoProblems = [];
      for await (const problem of photos.verifyProblems()) photoProblems.push(problem.key);
      expect(photoProblems).toEqual(['a', 'c']);
      const videoProblems = [];
      for await (const problem of videos.verifyProblems()) videoProblems.push(problem.key);
      expect(videoProblems).toEqual([]);

      const [p, v] = [await photos.summary(), await videos.summary()];
      expect(p.counts).toEqual([
        { status: 'gone', objects: 1, bytes: 1 },
        { status: 'pending', objects: 2, bytes: 2 },
      ]);
      expect(v.counts).toEqual([{ status: 'in_flight', objects: 4, bytes: 400 }]);
      expect(p.lastRun).toBeUndefined();
      expect(await photos.outcomeCounts()).toEqual({ failed: 0, changed: 0, gone: 1, unproven: 0, archived: 0 });
      expect(await videos.outcomeCounts()).toEqual({ failed: 0, changed: 0, gone: 0, unproven: 0, archived: 0 });

      // psql users see every migration in the views, one row group each.
      expect(await sql('SELECT * FROM s3migrate.status_summary', [], db)).toEqual([
        { migration: 'photos', status: 'gone', objects: '1', bytes: '1' },
        { migration: 'photos', status: 'pending', objects: '2', bytes: '2' },
        { migration: 'videos', status: 'in_flight', objects: '4', bytes: '400' },
      ]);
      expect(await sql('SELECT migration, objects_total, percent_done FROM s3migrate.progress', [], db)).toEqual([
        { migration: 'photos', objects_total: '2', percent_done: '0.00' },
        { migration: 'videos', objects_total: '4', percent_done: '0.00' },
      ]);
      expect(await sql("SELECT migration, key, verify_result FROM s3migrate.verify_problems", [], db)).toEqual([
        { migration: 'photos', key: 'a', verify_result: 'not-copied' },
        { migration: 'photos', key: 'c', verify_result: 'not-copied' },
      ]);
    });

    it('migration names are plain words', async () => {
      await expect(openStore({ migration: 'no spaces' })).rejects.toBeInstanceOf(UsageError);
      await expect(openStore({ migration: "o'brien" })).rejects.toThrow(/--migration must be 1 to 63 letters/);
      await expect(openStore({ migration: '' })).rejects.toBeInstanceOf(UsageError);
      expect((await openStore({ migration: 'Photos-2024.v2_final' })).migration).toBe('Photos-2024.v2_final');
    });
  });

  describe('claims by several workers at once', () => {
    it('FOR UPDATE SKIP LOCKED: concurrent claims never return the same row, and together return every row', async () => {
      const migration = nextMigration();
      const first = await openStore({ migration });
      const { pass } = await beginListing(first);
      const keys = Array.from({ length: 3_000 }, (_, i) => `w/${i}`);
      for (let i = 0; i < keys.length; i += 1_000) {
        await first.ingestPage(pass, keys.slice(i, i + 1_000).map((k) => obj(k, k.length)), atPart(keys[i + 999]!));
      }
      await first.finishCatalogPass(pass);
      const workers = [first, ...(await Promise.all([1, 2, 3].map(() => openStore({ migration }))))];
      await first.prepareCopy('smallest');
      const marks: Array<Promise<void>> = [];
      const claimedBy = await Promise.all(
        workers.map(async (worker) => {
          const mine: ObjectRow[] = [];
          for (;;) {
            const rows = await worker.claimPending('smallest', 37);
            if (rows.length === 0) return mine;
            mine.push(...rows);
            // Marks of a batch run beside the next claim, as in the engine.
            marks.push(...rows.map((row) => worker.markDone(row.id, { destKey: row.key, evidence: 'md5' })));
          }
        }),
      );
      await Promise.all(marks);
      const all = claimedBy.flat().map((row) => row.key);
      expect(new Set(all).size).toBe(all.length);
      expect([...all].sort()).toEqual([...keys].sort());
      expect(claimedBy.filter((rows) => rows.length > 0).length).toBeGreaterThan(1);
      expect((await first.summary()).objectsDone).toBe(3_000);
    });
  });

  describe("a worker's claim floor", () => {
    it('claims after its last claimed row, and concludes that nothing is pending only from the head of the order', async () => {
      const migration = nextMigration();
      const store = await openStore({ migration });
      const { pass } = await beginListing(store);
      const objects = ['f/1', 'f/2', 'f/3', 'f/4', 'f/5'].map((key) => obj(key, 10));
      await store.ingestPage(pass, objects, atPart('f/5'));
      await store.finishCatalogPass(pass);
      await store.prepareCopy('key');
      expect((await store.claimPending('key', 2)).map((row) => row.key)).toEqual(['f/1', 'f/2']);
      // Another process puts f/1 back (as a dead worker's recovered row): it lies behind this worker's floor.
      await sql("UPDATE s3migrate.objects SET status = 'pending' WHERE migration = $1 AND key = 'f/1'", [migration]);
      expect((await store.claimPending('key', 10)).map((row) => row.key)).toEqual(['f/3', 'f/4', 'f/5']);
      // Nothing after the floor: the claim starts at the head again and finds it.
      expect((await store.claimPending('key', 10)).map((row) => row.key)).toEqual(['f/1']);
      expect(await store.claimPending('key', 10)).toEqual([]);
      // Rows this worker releases are its next claim's, at once.
      await sql("UPDATE s3migrate.objects SET status = 'pending' WHERE migration = $1 AND key IN ('f/2', 'f/4')", [migration]);
      const again = await store.claimPending('key', 1);
      expect(again.map((r) => r.key)).toEqual(['f/2']);
      await store.releaseClaims(again.map((r) => r.id));
      expect((await store.claimPending('key', 2)).map((r) => r.key)).toEqual(['f/2', 'f/4']);
    });
  });

  describe('lease renewal', () => {
    it("waits for no row: rows another transaction holds (this worker's own marks) are left to the next renewal", async () => {
      const migration = nextMigration();
      const store = await openStore({ migration });
      const { pass } = await beginListing(store);
      await store.ingestPage(pass, ['r/1', 'r/2', 'r/3'].map((key) => obj(key, 10)), atPart('r/3'));
      await store.finishCatalogPass(pass);
      await store.prepareCopy('key');
      await store.joinAsWorker(60_000);
      const rows = await store.claimPending('key', 3);
      expect(rows).toHaveLength(3);
      // A transaction holds one of the rows, as a batch of marks does while it commits. A renewal that
      // waited for it could deadlock with it (each locking the other's next row); this one would hang here.
      const holder = new pgClient.Client({ host: pg().host, port: pg().port, user: pg().user, password: pg().password, database });
      await holder.connect();
      try {
        await holder.query('BEGIN');
        await holder.query('SELECT 1 FROM s3migrate.objects WHERE id = $1 FOR UPDATE', [rows[0]!.id]);
        expect(await store.renewLeases()).toBe(2);
        await holder.query('ROLLBACK');
      } finally {
        await holder.end();
      }
      expect(await store.renewLeases()).toBe(3);
    }, 30_000);
  });

  describe('the claim query plan', () => {
    it('each --sort order walks its partial index from the migration on: no sort of the pending rows', async () => {
      const db = await pg().createDatabase();
      // Realistic statistics: 20,000 rows over two migrations, most of them already done.
      const stores = [await openStore({ database: db, migration: 'big' }), await openStore({ database: db, migration: 'other' })];
      for (const store of stores) {
        const { pass } = await beginListing(store);
        for (let page = 0; page < 10; page += 1) {
          const objects = Array.from({ length: 1_000 }, (_, i) =>
            obj(`p${page}/${i}`, i % 97, `"${i}"`, `2024-01-${String((i % 28) + 1).padStart(2, '0')}T00:00:00.000Z`),
          );
          await store.ingestPage(pass, objects, atPart(objects[objects.length - 1]!.key));
        }
        await store.finishCatalogPass(pass);
      }
      const big = stores[0]!;
      await sql("UPDATE s3migrate.objects SET status = 'done' WHERE migration = 'big' AND key NOT LIKE 'p9/%'", [], db);
      for (const order of SORT_ORDERS) {
        await big.prepareCopy(order); // builds the order's index and analyzes, as copy does before it starts
        const [first, second] = await big.claimPending(order, 2);
        await big.releaseClaims([first!.id, second!.id]);
        expect((await big.claimPending(order, 1))[0]!.key).toBe(first!.key);
      }
      interface PlanNode {
        'Node Type': string;
        'Index Name'?: string;
        'CTE Name'?: string;
        'Subplan Name'?: string;
        'Parent Relationship'?: string;
        Plans?: PlanNode[];
      }
      const nodes = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(nodes)];
      for (const [order, fromFloor] of SORT_ORDERS.flatMap((order) => [[order, false], [order, true]] as const)) {
        // The claim as the store sends it: planned with its values (as the server plans its first runs), and
        // its generic plan (a prepared statement's, which the server reuses from then on); from the head of
        // the order, and from a floor (after a row: its sort values, $5 on).
        const text = claimSql(order, 64, '1 = 1', fromFloor ? 5 : undefined);
        const bySize = order === 'smallest' || order === 'largest';
        const floorValues = !fromFloor ? [] : order === 'key' ? ["'photos/0500'"] : [bySize ? '4096' : "'2024-01-01T00:00:00.000Z'", "'photos/0500'"];
        const floorTypes = !fromFloor ? [] : order === 'key' ? ['text'] : [bySize ? 'bigint' : 'text', 'text'];
        let literal = text.replace(/\$1\b/g, "'big'").replace(/\$2\b/g, "'2024-01-01T00:00:00.000Z'").replace(/\$3\b/g, "'worker'").replace(/\$4\b/g, '60000');
        floorValues.forEach((value, i) => (literal = literal.replace(new RegExp(`\\$${5 + i}\\b`, 'g'), value)));
        const [{ 'QUERY PLAN': [custom] }] = await sql<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`EXPLAIN (FORMAT JSON) ${literal}`, [], db);
        const results = (await pg().query(
          `BEGIN; SET LOCAL plan_cache_mode = force_generic_plan; PREPARE claim_plan (${['text', 'text', 'text', 'bigint', ...floorTypes].join(', ')}) AS ${text};
           EXPLAIN (FORMAT JSON) EXECUTE claim_plan (${["'big'", "'2024-01-01T00:00:00.000Z'", "'worker'", '60000', ...floorValues].join(', ')}); DEALLOCATE claim_plan; ROLLBACK`,
          [],
          db,
        )) as unknown as Array<{ command: string; rows: Array<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }> }>;
        const generic = results.find((result) => result.command === 'EXPLAIN')!.rows[0]!['QUERY PLAN'][0];
        for (const plan of [custom, generic]) {
          const all = nodes(plan!.Plan);
          const picked = all.find((node) => node['CTE Name'] === 'picked' || node['Subplan Name'] === 'CTE picked');
          const indexScans = all.filter((node) => node['Node Type'].startsWith('Index') && node['Index Name']?.startsWith('objects_pending_by_'));
          expect(indexScans.map((node) => node['Index Name']), `${order}: ${JSON.stringify(plan)}`).toHaveLength(1);
          // The only sort is of the claimed batch (the CTE's few rows), never of the pending rows.
          for (const sort of all.filter((node) => node['Node Type'] === 'Sort')) {
            const input = sort.Plans!.filter((child) => child['Parent Relationship'] === 'Outer');
            expect(input.map((child) => child['Node Type']), order).toEqual(['CTE Scan']);
          }
          expect(all.some((node) => node['Node Type'] === 'Seq Scan'), `${order}: ${JSON.stringify(plan)}`).toBe(false);
          expect(picked ?? all.find((node) => node['Node Type'] === 'LockRows')).toBeDefined();
        }
      }
    });
  });

  describe('opening the state', () => {
    it('creates the schema once when workers start together, each migration once', async () => {
      const db = await pg().createDatabase();
      const stores = await Promise.all(Array.from({ length: 6 }, (_, i) => openStore({ database: db, migration: i % 2 ? 'a' : 'b' })));
      expect(stores.filter((store) => store.created).map((store) => store.migration).sort()).toEqual(['a', 'b']);
      expect(await sql('SELECT application, version FROM s3migrate.schema_version', [], db)).toEqual([{ application: 's3migrate', version: SCHEMA_VERSION }]);
      expect((await sql('SELECT name FROM s3migrate.migrations ORDER BY name', [], db)).map((r) => r.name)).toEqual(['a', 'b']);
      // Keys and every text column compare in byte order, whatever the database's default collation.
      const collations = await sql<{ column_name: string; collation_name: string | null; data_type: string }>(
        `SELECT column_name, collation_name, data_type FROM information_schema.columns
         WHERE table_schema = 's3migrate' AND table_name IN ('objects', 'meta', 'runs', 'migrations') AND data_type = 'text'`,
        [],
        db,
      );
      expect(collations.length).toBeGreaterThan(20);
      expect(collations.filter((c) => c.collation_name !== 'C' && !['application'].includes(c.column_name))).toEqual([]);
    });

    it('copy and status refuse a missing migration (and a database without the state) and create nothing', async () => {
      const db = await pg().createDatabase();
      for (const options of [{ create: false, readonly: false }, { create: false, readonly: true }]) {
        await expect(openStore({ database: db, migration: 'nope', ...options })).rejects.toThrow(
          /^No migration "nope" in the PostgreSQL state postgres:\/\/s3migrate@127\.0\.0\.1:\d+\/test_\d+_\d+\. Run `s3migrate catalog --from s3:\/\/BUCKET --state postgres:.* --migration nope` first\.$/,
        );
      }
      expect(await sql("SELECT nspname FROM pg_namespace WHERE nspname = 's3migrate'", [], db)).toEqual([]);
      await openStore({ database: db, migration: 'there' });
      await expect(openStore({ database: db, migration: 'nope', create: false, readonly: true })).rejects.toThrow(/\(it holds: there\)/);
      expect((await sql('SELECT name FROM s3migrate.migrations', [], db)).map((r) => r.name)).toEqual(['there']);
    });

    it('refuses a schema of a newer s3migrate, and a schema named s3migrate that is not ours, changing nothing', async () => {
      const newer = await pg().createDatabase();
      const store = await openStore({ database: newer, migration: 'x' });
      await store.close();
      await sql('UPDATE s3migrate.schema_version SET version = 99', [], newer);
      const before = await sql('SELECT * FROM s3migrate.schema_version', [], newer);
      for (const options of [{ create: true, readonly: false }, { create: false, readonly: true }]) {
        const error = await openStore({ database: newer, migration: 'x', ...options }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(FatalError);
        expect((error as Error).message).toContain(`newer s3migrate (schema version 99, this one reads up to ${SCHEMA_VERSION}); it was left untouched`);
      }
      expect(await sql('SELECT * FROM s3migrate.schema_version', [], newer)).toEqual(before);

      const foreign = await pg().createDatabase();
      await sql('CREATE SCHEMA s3migrate; CREATE TABLE s3migrate.objects (k text)', [], foreign);
      await expect(openStore({ database: foreign })).rejects.toThrow(/has a schema "s3migrate" that s3migrate did not make; it was left untouched/);
      expect((await sql("SELECT tablename FROM pg_tables WHERE schemaname = 's3migrate'", [], foreign)).map((r) => r.tablename)).toEqual(['objects']);

      // An empty schema made for us (by a DBA, say) is used.
      const prepared = await pg().createDatabase();
      await sql('CREATE SCHEMA s3migrate', [], prepared);
      expect((await openStore({ database: prepared })).created).toBe(true);
    });

    it('upgrades a database of an older schema in place, its rows kept (status included)', async () => {
      const db = await pg().createDatabase();
      // A database as the first version of the PostgreSQL state left it.
      await sql(
        `CREATE SCHEMA s3migrate;
         CREATE TABLE s3migrate.schema_version (application TEXT NOT NULL, version INTEGER NOT NULL, upgraded_at TEXT NOT NULL);
         INSERT INTO s3migrate.schema_version VALUES ('s3migrate', 1, '2024-01-01T00:00:00.000Z');
         ${MIGRATIONS[0]}
         INSERT INTO s3migrate.migrations VALUES ('old', '2024-01-01T00:00:00.000Z');
         INSERT INTO s3migrate.objects (migration, key, size, last_modified, status, catalog_pass, listed_at, updated_at)
           VALUES ('old', 'k', 5, '2024-01-01T00:00:00.000Z', 'done', 1, '2024-01-01T00:00:00.000Z', '2024-01-01T00:00:00.000Z');`,
        [],
        db,
      );
      const reader = await openStore({ database: db, migration: 'old', create: false, readonly: true });
      expect(await sql('SELECT version FROM s3migrate.schema_version', [], db)).toEqual([{ version: SCHEMA_VERSION }]);
      expect(await reader.summary()).toMatchObject({ objectsDone: 1, bytesDone: 5, openUploads: { count: 0, bytesDone: 0, sample: [] } });
    });

    it('status reads in a read-only session', async () => {
      const migration = nextMigration();
      await openStore({ migration });
      const reader = await openStore({ migration, create: false, readonly: true });
      expect((await reader.summary()).objectsTotal).toBe(0);
      const error = await reader.setSource({ endpoint: 'x', bucket: 'y', prefix: '' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StateStoreError);
      expect(error).toMatchObject({ code: '25006' }); // read_only_sql_transaction
    });

    it('a catalog that created its migration and failed before listing leaves nothing behind', async () => {
      const migration = nextMigration();
      const store = await openStore({ migration });
      expect(store.created).toBe(true);
      await store.setSource({ endpoint: 'x', bucket: 'y', prefix: '' });
      await store.acquireLock('catalog');
      await store.startRun('catalog', '{}');
      await store.discardIfCreated();
      await store.close();
      expect(await sql('SELECT * FROM s3migrate.migrations WHERE name = $1', [migration])).toEqual([]);
      expect(await sql('SELECT * FROM s3migrate.meta WHERE migration = $1', [migration])).toEqual([]);
      expect(await sql('SELECT * FROM s3migrate.runs WHERE migration = $1', [migration])).toEqual([]);
      // One that existed before, or holds rows, is kept.
      const again = await openStore({ migration });
      const { pass } = await beginListing(again);
      await again.ingestPage(pass, [obj('a')], atPart('a'));
      await again.discardIfCreated();
      const existing = await openStore({ migration });
      expect(existing.created).toBe(false);
      await existing.discardIfCreated();
      expect(await sql('SELECT name FROM s3migrate.migrations WHERE name = $1', [migration])).toHaveLength(1);
    });
  });

  describe('connections', () => {
    it('a password in the URL is refused before anything connects, and never repeated', async () => {
      const secret = 'hunter2-in-url';
      for (const url of [
        `postgres://s3migrate:${secret}@127.0.0.1:${pg().port}/${database}`,
        `postgresql://s3migrate:${secret}@127.0.0.1/${database}`,
        `postgres://s3migrate@127.0.0.1:${pg().port}/${database}?password=${secret}`,
        `postgres://s3migrate:${secret}/x@127.0.0.1/${database}`,
      ]) {
        const error = await PgStore.open(url, { create: true, readonly: false, migration: 'default', env: {} }).catch((e: unknown) => e);
        expect(error, url).toBeInstanceOf(UsageError);
        expect((error as Error).message).toMatch(/PGPASSWORD.*~\/\.pgpass/);
        expect((error as Error).message).not.toContain(secret);
      }
    });

    it('says what is wrong: refused connection, wrong or missing password, missing database', async () => {
      const closed = await freePort();
      const refused = await PgStore.open(`postgres://s3migrate@127.0.0.1:${closed}/x`, { create: true, readonly: false, migration: 'default', env: env() }).catch(
        (e: unknown) => e,
      );
      expect(refused).toBeInstanceOf(FatalError);
      expect((refused as Error).message).toMatch(new RegExp(`^Cannot connect to the PostgreSQL state at 127\\.0\\.0\\.1:${closed} \\(connection refused\\)`));

      const wrong = await PgStore.open(pg().urlOf(database), { create: true, readonly: false, migration: 'default', env: { PGPASSWORD: 'not-it-12345' } }).catch(
        (e: unknown) => e,
      );
      expect(wrong).toBeInstanceOf(FatalError);
      expect((wrong as Error).message).toMatch(/refused the password in PGPASSWORD for user "s3migrate" \(28P01 invalid_password\)/);
      expect((wrong as Error).message).not.toContain('not-it-12345');

      const home = fs.mkdtempSync(path.join(os.tmpdir(), 's3migrate-nopass-'));
      const none = await PgStore.open(pg().urlOf(database), { create: true, readonly: false, migration: 'default', env: { HOME: home } }).catch(
        (e: unknown) => e,
      );
      expect((none as Error).message).toMatch(/asks user "s3migrate" for a password and none was given \(none in .*\.pgpass\)\. Set PGPASSWORD/);

      const missing = await PgStore.open(pg().urlOf('no_such_db'), { create: true, readonly: false, migration: 'default', env: env() }).catch(
        (e: unknown) => e,
      );
      expect((missing as Error).message).toMatch(/^The database "no_such_db" does not exist on 127\.0\.0\.1:\d+ \(3D000\)/);
      fs.rmSync(home, { recursive: true, force: true });
    });

    it('reads the password from ~/.pgpass (or PGPASSFILE), and ignores a file others may read', async () => {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), 's3migrate-pgpass-'));
      const file = path.join(home, '.pgpass');
      fs.writeFileSync(file, `# comment\nother:*:*:*:nope\n127.0.0.1:${pg().port}:*:s3migrate:${pg().password.replace(/:/g, '\\:')}\n`, { mode: 0o600 });
      const viaHome = await openStore({ env: { HOME: home } });
      expect(await viaHome.countListed()).toBe(0);
      const viaPassFile = await openStore({ env: { HOME: '/nonexistent', PGPASSFILE: file } });
      expect(await viaPassFile.countListed()).toBe(0);
      fs.chmodSync(file, 0o644);
      const ignored = await openStore({ env: { HOME: home } }).catch((e: unknown) => e);
      expect((ignored as Error).message).toMatch(/was ignored: group or others may read it/);
      fs.rmSync(home, { recursive: true, force: true });
    });

    it('a server that goes away mid-run is a StateStoreError with the code, for every kind of call', async () => {
      let own: PostgresHandle | undefined;
      try {
        own = await startPostgres();
        const store = await PgStore.open(own.url, { create: true, readonly: false, migration: 'default', env: { PGPASSWORD: own.password } });
        opened.push(store);
        const { pass } = await beginListing(store);
        await store.ingestPage(pass, [obj('a'), obj('b')], atPart('b'));
        const [row] = await store.claimPending('key', 1);
        await own.stop();
        for (const call of [
          () => store.countListed(),
          () => store.claimPending('key', 1),
          () => store.markDone(row!.id, { destKey: 'a', evidence: 'md5' }),
          () => store.summary(),
          () => store.ingestPage(pass, [obj('c')], atPart('c')),
        ]) {
          const error = await call().catch((e: unknown) => e);
          expect(error).toBeInstanceOf(StateStoreError);
        expect((error as StateStoreError).code, String((error as Error).message)).toMatch(/^(ECONNREFUSED|57P01|ECONNRESET)$/);
          expect((error as Error).message).toMatch(/^The PostgreSQL state postgres:\/\/s3migrate@127\.0\.0\.1:\d+\/s3migrate \(migration "default"\) could not be written or read/);
        }
        await store.close(); // never throws
      } finally {
        await own?.stop();
      }
    });
  });

  describe('the views, as psql users read them', () => {
    it('every SQLite view exists, with the migration as first column', async () => {
      const migration = nextMigration();
      const store = await openStore({ migration });
      const { pass } = await beginListing(store);
      await store.ingestPage(pass, [obj('a', 10), obj('b', 20), obj('c', 30)], atPart('c'));
      await store.finishCatalogPass(pass);
      const rows = await store.claimPending('key', 3);
      await store.markDone(rows[0]!.id, { destKey: 'a', evidence: 'md5' });
      await store.markFailed(rows[1]!.id, 'AccessDenied');
      await store.markChanged(rows[2]!.id, 'ETag');
      const one = async (view: string): Promise<Array<Record<string, unknown>>> =>
        (await sql(`SELECT * FROM s3migrate.${view} WHERE migration = $1`, [migration])).map((row) => {
          const { updated_at: _u, verified_at: _v, ...rest } = row as Record<string, unknown>;
          return rest;
        });
      expect(await one('status_summary')).toEqual([
        { migration, status: 'changed', objects: '1', bytes: '30' },
        { migration, status: 'done', objects: '1', bytes: '10' },
        { migration, status: 'failed', objects: '1', bytes: '20' },
      ]);
      expect(await one('progress')).toEqual([
        { migration, objects_total: '3', objects_done: '1', bytes_total: '60', bytes_done: '10', percent_done: '33.33' },
      ]);
      expect(await one('failed_objects')).toEqual([{ migration, key: 'b', size: '20', attempts: 1, error: 'AccessDenied' }]);
      expect(await one('changed_objects')).toEqual([{ migration, key: 'c', size: '30', etag: '"e-c"', error: 'ETag' }]);
      expect(await one('evidence_summary')).toEqual([{ migration, evidence: 'md5', objects: '1', bytes: '10' }]);
      expect(await one('verify_problems')).toEqual([]);
    });
  });

  afterAll(async () => {
    for (const store of opened.splice(0)) await store.close();
  });
});

/** A TCP port on 127.0.0.1 that nothing listens on. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}


