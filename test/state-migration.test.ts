// A state file of the first release's schema, mid-migration, opened by this version: migrated in place,
// its rows done on size alone reclassified as unproven (never `ok`), and the job finished with evidence.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3rverClient, startS3rver, type S3rverHandle } from '../scripts/servers/s3rver.js';
import { APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION } from '../src/state/sqlite/schema.js';
import { runCli, s3rverEnv } from './support/cli.js';
import { bytes, keyOfPath, rowsByKey, seed, sha256, sha256Of, tempDir, teardown, writtenKeys } from './support/copy-fixtures.js';
import { startRequestProxy, type RequestProxy } from './support/request-proxy.js';
import { checkSqliteCounters } from './support/state-counters.js';

let source: S3rverHandle;
let dest: S3rverHandle;
let sourceClient: S3Client;
let destClient: S3Client;
let destProxy: RequestProxy;
let work: Awaited<ReturnType<typeof tempDir>>;

const md5 = (body: Buffer): string => createHash('md5').update(body).digest('hex');

interface V1Row {
  key: string;
  body: Buffer;
  status: 'pending' | 'in_flight' | 'done' | 'failed';
  /** verify_method as the first release recorded it. */
  method?: 'md5' | 'multipart-etag' | 'size-only';
  /** What the destination holds at the key: the source's bytes, other bytes of the same size, nothing. */
  atDest: 'right' | 'wrong-same-size' | 'nothing';
}

const ROWS: V1Row[] = [
  { key: 'a-done-md5.bin', body: bytes(1500), status: 'done', method: 'md5', atDest: 'right' },
  { key: 'b-size-only-right.bin', body: bytes(2500), status: 'done', method: 'size-only', atDest: 'right' },
  // The failure the first release allowed: a stale object of the same size taken as done.
  { key: 'c-size-only-wrong.bin', body: bytes(3500), status: 'done', method: 'size-only', atDest: 'wrong-same-size' },
  { key: 'd-pending.bin', body: bytes(4500), status: 'pending', atDest: 'nothing' },
  { key: 'e-in-flight.bin', body: bytes(5500), status: 'in_flight', atDest: 'nothing' },
  { key: 'f-failed.bin', body: bytes(6500), status: 'failed', atDest: 'nothing' },
];

/** Writes a state file exactly as the first release left it: schema 1, a finished catalog, a copy under way. */
function writeFirstReleaseState(file: string, sourceEndpoint: string, destEndpoint: string): void {
  const db = new Database(file);
  db.exec(MIGRATIONS[0]!);
  db.pragma(`application_id = ${APPLICATION_ID}`);
  db.pragma('user_version = 1');
  db.pragma('journal_mode = WAL');
  const meta = db.prepare('INSERT INTO meta(key, value) VALUES (?, ?)');
  const now = '2026-06-01T10:00:00.000Z';
  for (const [key, value] of Object.entries({
    source_endpoint: sourceEndpoint,
    source_bucket: 'src',
    source_prefix: '',
    dest_endpoint: destEndpoint,
    dest_bucket: 'dst',
    dest_prefix: '',
    created_at: now,
    catalog_pass: '1',
    catalog_state: 'complete',
    catalog_started_at: now,
    catalog_finished_at: now,
  })) {
    meta.run(key, value);
  }
  const insert = db.prepare(
    `INSERT INTO objects (key, size, etag, last_modified, storage_class, status, attempts, error, catalog_pass, listed_at,
       copied_at, dest_key, dest_etag, verify_method, verified_at, verify_result, updated_at)
     VALUES (@key, @size, @etag, @lastModified, 'STANDARD', @status, @attempts, @error, 1, @now,
       @copiedAt, @destKey, @destEtag, @method, @copiedAt, @verifyResult, @now)`,
  );
  for (const row of ROWS) {
    const done = row.status === 'done';
    insert.run({
      key: row.key,
      size: row.body.length,
      etag: `"${md5(row.body)}"`,
      lastModified: now,
      status: row.status,
      attempts: row.status === 'pending' ? 0 : 1,
      error: row.status === 'failed' ? 'destination: InternalError (HTTP 500)' : null,
      now,
      copiedAt: done ? now : null,
      destKey: done ? row.key : null,
      // A size-only row of the first release recorded whatever ETag the destination showed.
      destEtag: done ? (row.method === 'size-only' ? null : md5(row.body)) : null,
      method: row.method ?? null,
      // ...and its verify said ok, on size.
      verifyResult: done ? 'ok' : null,
    });
  }
  db.prepare("INSERT INTO runs(command, arguments, started_at, outcome) VALUES ('copy', '{}', ?, 'running')").run(now);
  db.close();
}

beforeAll(async () => {
  [source, dest] = await Promise.all([startS3rver({ buckets: ['src'] }), startS3rver({ buckets: ['dst'] })]);
  sourceClient = s3rverClient(source.endpoint);
  destClient = s3rverClient(dest.endpoint);
  destProxy = await startRequestProxy(dest.endpoint);
  work = await tempDir('migration');
  await seed(sourceClient, 'src', ROWS.map((row) => ({ key: row.key, body: row.body })));
  for (const row of ROWS) {
    if (row.atDest === 'nothing') continue;
    const body = row.atDest === 'right' ? row.body : bytes(row.body.length);
    await destClient.send(new PutObjectCommand({ Bucket: 'dst', Key: row.key, Body: body }));
  }
});

afterAll(() => teardown({ proxies: [destProxy], clients: [sourceClient, destClient], servers: [source, dest], work }));

describe('a first-release state file, mid-migration', () => {
  it('is migrated, its size-only rows are reclassified (never ok), and copy finishes the job with evidence', async () => {
    const state = work.file('v1.db');
    writeFirstReleaseState(state, source.endpoint, destProxy.endpoint);
    const env = s3rverEnv(source.endpoint, destProxy.endpoint);

    // status opens it, migrates it, and says what the unproven rows need.
    const status = await runCli(['status', '--state', state], { env });
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/Unproven: +2 objects an earlier version marked done on size alone/);
    const db = new Database(state, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    db.close();
    const migrated = rowsByKey(state);
    expect(migrated.get('a-done-md5.bin')!.status).toBe('done');
    expect(migrated.get('b-size-only-right.bin')!.status).toBe('unproven');
    expect(migrated.get('c-size-only-wrong.bin')!.status).toBe('unproven');

    // verify: size alone is its own category, not ok, and it says what to do.
    const verify = await runCli(['verify', '--state', state], { env });
    expect(verify.code, verify.stderr).toBe(3);
    expect(verify.stdout).toMatch(/unproven +2/);
    expect(verify.stdout).toMatch(/verify --deep/);
    expect(verify.stdout).not.toMatch(/Everything matches/);

    // copy finishes the job: the unproven, pending, in-flight and failed rows are copied; the row done
    // on evidence is not sent again.
    destProxy.reset();
    const copy = await runCli(['copy', '--state', state, '--to', 's3://dst', '--quiet'], { env });
    expect(copy.code, copy.stderr).toBe(0);
    expect(writtenKeys(destProxy.log(), 'dst').sort()).toEqual(ROWS.filter((r) => r.key !== 'a-done-md5.bin').map((r) => r.key).sort());
    expect(destProxy.log().some((e) => e.op === 'PutObject' && keyOfPath(e.path, 'dst') === 'a-done-md5.bin')).toBe(false);
    for (const row of ROWS) {
      expect(await sha256Of(destClient, 'dst', row.key), row.key).toBe(sha256(row.body));
      const after = rowsByKey(state).get(row.key)!;
      expect({ status: after.status, evidence: after.evidence }, row.key).toEqual({ status: 'done', evidence: 'md5' });
    }
    const final = await runCli(['verify', '--state', state], { env });
    expect(final.code, final.stderr).toBe(0);
    expect(final.stdout).toMatch(/Everything matches/);
  });
});

// Schema 3 (the compact row): files of the first release and of schema 2, with rows in every state and
// every odd value, migrate with each row's values and every view's rows exactly as they were.
const VIEWS = [
  'status_summary', 'failed_objects', 'verify_problems', 'evidence_summary', 'changed_objects', 'open_uploads',
  'archived_objects', 'deleted_objects', 'gone_objects', 'progress', 'verify_summary',
] as const;
// The objects table's columns before schema 3 (listed_at aside: objects_view derives it from the pass).
const OLD_COLUMNS =
  'id, key, size, etag, last_modified, storage_class, status, attempts, error, catalog_pass, started_at, copied_at, dest_key, ' +
  'dest_etag, evidence, verified_at, verify_result, verify_pass, updated_at, copy_method, lease_owner, lease_expires_at, ' +
  'deleted_at, change_kind, change_pass';

const PLAIN = '"0123456789abcdef0123456789abcdef"';
const MULTI = '"fedcba9876543210fedcba9876543210-17"';

/** Rows of a schema-2 file in every state, with the odd values the encodings must keep exactly. */
function writeSchema2Rows(db: Database.Database): void {
  const insert = db.prepare(
    `INSERT INTO objects (key, size, etag, last_modified, storage_class, status, attempts, error, catalog_pass, listed_at,
       started_at, copied_at, dest_key, dest_etag, evidence, verified_at, verify_result, verify_pass, updated_at,
       copy_method, lease_owner, lease_expires_at, deleted_at, change_kind, change_pass)
     VALUES (@key, @size, @etag, @lastModified, @storageClass, @status, @attempts, @error, @pass, @t0,
       @startedAt, @copiedAt, @destKey, @destEtag, @evidence, @verifiedAt, @verifyResult, @verifyPass, @updatedAt,
       @copyMethod, @leaseOwner, @leaseExpires, @deletedAt, @changeKind, @changePass)`,
  );
  const base = {
    size: 1000, etag: PLAIN, lastModified: '2024-01-01T00:00:00.000Z', storageClass: 'STANDARD', status: 'pending', attempts: 0,
    error: null, pass: 2, t0: '2026-06-01T10:00:00.000Z', startedAt: null, copiedAt: null, destKey: null, destEtag: null,
    evidence: null, verifiedAt: null, verifyResult: null, verifyPass: null, updatedAt: '2026-06-01T10:00:00.123Z',
    copyMethod: null, leaseOwner: null, leaseExpires: null, deletedAt: null, changeKind: 'new', changePass: 1,
  };
  const done = {
    status: 'done', attempts: 1, startedAt: '2026-06-01T10:01:00.001Z', copiedAt: '2026-06-01T10:01:02.999Z',
    verifiedAt: '2026-06-01T10:01:02.999Z', updatedAt: '2026-06-01T10:01:02.999Z', evidence: 'md5', copyMethod: 'stream',
  };
  const rows: Array<Record<string, unknown> & { key: string }> = [
    { key: 'a/pending' },
    { key: 'a/pending-no-etag-no-class', etag: null, storageClass: null, size: 0, lastModified: '1970-01-01T00:00:00.000Z' },
    { key: 'a/pending-odd-etags-1', etag: '0123456789abcdef0123456789abcdef', storageClass: 'STANDARD_IA' },
    { key: 'a/pending-odd-etags-2', etag: '"0123456789ABCDEF0123456789ABCDEF"', lastModified: '2009-02-13T23:31:30.999Z' },
    { key: 'a/pending-odd-etags-3', etag: 'W/"abc"', lastModified: '2099-12-31T23:59:59.000Z' },
    { key: 'b/done-same', ...done, destKey: 'b/done-same', destEtag: PLAIN.slice(1, -1), verifyResult: 'ok', verifyPass: 1 },
    { key: 'b/done-multipart', ...done, etag: MULTI, destKey: 'elsewhere/b/done-multipart', destEtag: MULTI.slice(1, -1), evidence: 'multipart-etag', copyMethod: 'server-side', size: 9_000_000_000 },
    { key: 'b/done-other-etag', ...done, destKey: 'b/done-other-etag', destEtag: '11111111111111111111111111111111-3', evidence: 'part-etags' },
    { key: 'b/unproven', ...done, status: 'unproven', evidence: 'size-only', destKey: 'b/unproven', destEtag: null },
    { key: 'c/failed', status: 'failed', attempts: 5, error: 'destination: InternalError (HTTP 500)', updatedAt: '2026-06-01T11:00:00.000Z' },
    { key: 'c/failed-older', status: 'failed', attempts: 2, error: 'timeout', updatedAt: '2026-06-01T10:30:00.000Z' },
    { key: 'c/changed', status: 'changed', error: 'the source object changed', etag: MULTI, updatedAt: '2026-06-01T10:40:00.000Z' },
    { key: 'd/in-flight', status: 'in_flight', attempts: 1, startedAt: '2026-06-01T10:50:00.000Z', leaseOwner: 'host:1:abc', leaseExpires: 1780308600000 },
    { key: 'd/archived', status: 'archived', storageClass: 'GLACIER' },
    { key: 'e/gone', ...done, status: 'gone', destKey: 'e/gone', destEtag: PLAIN.slice(1, -1), error: 'not deleted: changed', changeKind: 'gone', changePass: 2 },
    { key: 'e/deleted', ...done, status: 'deleted', destKey: 'e/deleted', destEtag: PLAIN.slice(1, -1), deletedAt: '2026-06-02T00:00:00.000Z', updatedAt: '2026-06-02T00:00:00.000Z' },
    { key: 'f/verify-missing', status: 'pending', verifyResult: 'missing', verifyPass: 1, verifiedAt: '2026-06-03T00:00:00.000Z', attempts: 1 },
    { key: 'f/verify-not-copied', verifyResult: 'not-copied', verifyPass: 1, verifiedAt: '2026-06-03T00:00:00.000Z' },
    { key: 'g/ünïcødé key/with "quotes"/' },
  ];
  for (const row of rows) insert.run({ ...base, ...row });
  const id = (key: string) => (db.prepare('SELECT id FROM objects WHERE key = ?').get(key) as { id: number }).id;
  db.prepare(
    `INSERT INTO uploads (object_id, dest_key, upload_id, source_etag, size, part_size, part_count, started_at)
     VALUES (?, 'd/in-flight', 'upload-1', ?, 1000, 400, 3, '2026-06-01T10:50:01.000Z')`,
  ).run(id('d/in-flight'), PLAIN);
  db.prepare("INSERT INTO parts VALUES (?, 1, 400, 'e1', 'm1'), (?, 2, 400, 'e2', 'm2')").run(id('d/in-flight'), id('d/in-flight'));
  db.prepare(
    `INSERT INTO catalog_passes VALUES (1, '2026-05-01T00:00:00.000Z', '2026-05-01T01:00:00.000Z', NULL, 10, 10000, 0, 0, 0, 0)`,
  ).run();
}

/** Every view's rows and every row's values (the old columns, through objects_view once it exists). */
function snapshot(file: string): Record<string, unknown> {
  const db = new Database(file, { readonly: true });
  try {
    const version = db.pragma('user_version', { simple: true }) as number;
    const objects = db.prepare(`SELECT ${OLD_COLUMNS} FROM ${version >= 3 ? 'objects_view' : 'objects'} ORDER BY id`).all();
    return { objects, ...Object.fromEntries(VIEWS.map((view) => [view, db.prepare(`SELECT * FROM ${view}`).all()])) };
  } finally {
    db.close();
  }
}

function newFile(file: string, version: 1 | 2): Database.Database {
  const db = new Database(file);
  for (let v = 0; v < version; v += 1) db.exec(MIGRATIONS[v]!);
  db.pragma(`application_id = ${APPLICATION_ID}`);
  db.pragma(`user_version = ${version}`);
  db.pragma('journal_mode = WAL');
  const meta = db.prepare('INSERT INTO meta(key, value) VALUES (?, ?)');
  for (const [key, value] of Object.entries({ source_bucket: 'src', catalog_pass: '2', catalog_state: 'listing', catalog_started_at: '2026-06-01T09:00:00.000Z' })) {
    meta.run(key, value);
  }
  return db;
}

describe('schema 3: the compact row', () => {
  it('migrates a schema-2 file mid-migration with every value and every view as it was, and smaller', async () => {
    const file = work.file('schema2.db');
    const db = newFile(file, 2);
    writeSchema2Rows(db);
    // Enough ordinary rows to see the bytes go.
    const insert = db.prepare(
      `INSERT INTO objects (key, size, etag, last_modified, storage_class, status, catalog_pass, listed_at, updated_at, change_kind, change_pass)
       VALUES (?, ?, ?, '2024-01-01T00:00:00.000Z', 'STANDARD', 'pending', 2, '2026-06-01T10:00:00.000Z', '2026-06-01T10:00:00.000Z', 'new', 2)`,
    );
    db.transaction(() => {
      for (let i = 0; i < 5000; i += 1) insert.run(`bulk/${String(i).padStart(6, '0')}.jpg`, i, `"${md5(Buffer.from(String(i)))}"`);
    })();
    db.close();
    const before = snapshot(file);
    const bytesBefore = vacuumedSize(file);

    const { SqliteStore } = await import('../src/state/sqlite/sqlite-store.js');
    const store = SqliteStore.open(file, { create: false, readonly: false });
    // The store reads the rows back as the engine knows them: quoted ETags, ISO-8601 times.
    const row = await store.rowByKey('b/done-multipart');
    expect(row).toMatchObject({ etag: MULTI, destEtag: MULTI.slice(1, -1), status: 'done', evidence: 'multipart-etag' });
    expect((await store.summary()).recentErrors[0]).toMatchObject({ key: 'c/failed', updatedAt: '2026-06-01T11:00:00.000Z' });
    await store.close();

    const probe = new Database(file, { readonly: true });
    expect(probe.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(probe.prepare("SELECT listed_at FROM objects_view WHERE key = 'a/pending'").pluck().get()).toBe('2026-06-01T09:00:00.000Z');
    probe.close();
    expect(snapshot(file)).toEqual(before);
    checkSqliteCounters(file);
    expect(vacuumedSize(file)).toBeLessThan(bytesBefore * 0.7);
  });

  it('migrates a first-release file through schema 2 to 3 with every value and every view as schema 2 shows them', async () => {
    const file = work.file('schema1.db');
    writeFirstReleaseState(file, 'http://127.0.0.1:1', 'http://127.0.0.1:2');
    // What schema 2 alone makes of it: the reference.
    const reference = work.file('schema1-as-2.db');
    fs.copyFileSync(file, reference);
    const db = new Database(reference);
    db.transaction(() => {
      db.exec(MIGRATIONS[1]!);
      db.pragma('user_version = 2');
    })();
    db.close();
    const expected = snapshot(reference);

    const { SqliteStore } = await import('../src/state/sqlite/sqlite-store.js');
    const store = SqliteStore.open(file, { create: false, readonly: false });
    await store.close();
    expect(snapshot(file)).toEqual(expected);
    checkSqliteCounters(file);
  });

  it('is all or nothing: a migration that fails leaves the file at its old version, untouched', async () => {
    const file = work.file('schema2-broken.db');
    const db = newFile(file, 2);
    writeSchema2Rows(db);
    // A trigger of the user's over the objects table: the migration fails midway (at the table's
    // rename, after the new table was filled and the old one dropped).
    db.exec('CREATE TRIGGER users_own AFTER INSERT ON meta BEGIN SELECT listed_at FROM objects; END');
    db.close();
    const bytes = fs.readFileSync(file);
    const { SqliteStore } = await import('../src/state/sqlite/sqlite-store.js');
    let failure: unknown;
    try {
      SqliteStore.open(file, { create: false, readonly: false });
    } catch (error) {
      failure = error;
    }
    expect(String(failure)).toMatch(/Cannot read the state file .*error in trigger users_own/);
    const after = new Database(file, { readonly: true });
    expect(after.pragma('user_version', { simple: true })).toBe(2);
    expect(after.prepare('SELECT COUNT(*) FROM objects WHERE listed_at IS NOT NULL').pluck().get()).toBe(19);
    after.close();
    // The WAL holds nothing of it either: checkpointed, the file is what it was.
    const checkpoint = new Database(file);
    checkpoint.pragma('wal_checkpoint(TRUNCATE)');
    checkpoint.close();
    expect(fs.readFileSync(file).equals(bytes)).toBe(true);
  });
});

/** The file's size once its free pages are gone (a copy, vacuumed). */
function vacuumedSize(file: string): number {
  const copy = `${file}.vacuumed`;
  fs.rmSync(copy, { force: true });
  const db = new Database(file, { readonly: true });
  db.exec(`VACUUM INTO '${copy}'`);
  db.close();
  return fs.statSync(copy).size;
}

describe('schema 4: new rows counted per catalog page', () => {
  it('a schema-3 file, its rows counted by the insert trigger, migrates; a re-catalog keeps the counters equal to a scan', async () => {
    const file = work.file('schema3.db');
    const db = new Database(file);
    for (let v = 0; v < 3; v += 1) db.exec(MIGRATIONS[v]!);
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.pragma('user_version = 3');
    db.pragma('journal_mode = WAL');
    for (const [key, value] of Object.entries({ source_bucket: 'src', catalog_pass: '1', catalog_state: 'complete', catalog_started_at: '2026-06-01T09:00:00.000Z' })) {
      db.prepare('INSERT INTO meta(key, value) VALUES (?, ?)').run(key, value);
    }
    const insert = db.prepare(
      `INSERT INTO objects (key, size, etag, last_modified, status, catalog_pass, change_pass, change_kind, updated_at, evidence)
       VALUES (?, ?, ?, 1704067200000, ?, 1, 1, 'new', 1704067200000, ?)`,
    );
    const etag = (key: string): Buffer => Buffer.from(md5(Buffer.from(key)), 'hex');
    for (let i = 0; i < 40; i += 1) {
      const key = `k/${String(i).padStart(3, '0')}`;
      insert.run(key, i, etag(key), i % 3 === 0 ? 'done' : 'pending', i % 3 === 0 ? 'md5' : null);
    }
    db.close();
    checkSqliteCounters(file);

    const { SqliteStore } = await import('../src/state/sqlite/sqlite-store.js');
    const store = SqliteStore.open(file, { create: false, readonly: false });
    const probe = new Database(file, { readonly: true });
    expect(probe.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(probe.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name").pluck().all()).toEqual([
      'objects_counted_delete',
      'objects_counted_update',
    ]);
    probe.close();
    checkSqliteCounters(file);
    // Pass 2: every third key changed, new keys between and after the stored ones, the last ten gone.
    const { pass } = await store.beginCatalogPass({ kind: 'listing' });
    await store.planCatalogParts(pass, [{ startAfter: '', endKey: null }]);
    const listed = [];
    for (let i = 0; i < 45; i += 1) {
      const key = `k/${String(i).padStart(3, '0')}`;
      if (i < 30) listed.push({ key, size: i % 3 === 1 ? i + 1000 : i, etag: `"${md5(Buffer.from(key))}"`, lastModified: '2024-01-01T00:00:00.000Z' });
      if (i >= 40 || i % 7 === 0) listed.push({ key: `${key}-new`, size: 7, etag: '"new"', lastModified: '2024-02-01T00:00:00.000Z' });
    }
    await store.ingestPage(pass, listed.slice(0, 20), { part: 1, resumeAfter: listed[19]!.key, done: false });
    await store.ingestPage(pass, listed.slice(20), { part: 1, resumeAfter: listed[listed.length - 1]!.key, done: true });
    expect(await store.finishCatalogPass(pass)).toEqual({ gone: 10 });
    expect(await store.lastCatalogPass()).toMatchObject({ new: { objects: 11, bytes: 77 }, modified: { objects: 10 }, gone: { objects: 10 } });
    await store.close();
    checkSqliteCounters(file);
  });
});
