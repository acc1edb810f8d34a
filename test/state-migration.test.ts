// A state file of the first release's schema, mid-migration, opened by this version: migrated in place,
// its rows done on size alone reclassified as unproven (never `ok`), and the job finished with evidence.
import { createHash } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3rverClient, startS3rver, type S3rverHandle } from '../scripts/servers/s3rver.js';
import { APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION } from '../src/state/sqlite/schema.js';
import { runCli, s3rverEnv } from './support/cli.js';
import { bytes, keyOfPath, rowsByKey, seed, sha256, sha256Of, tempDir, teardown, writtenKeys } from './support/copy-fixtures.js';
import { startRequestProxy, type RequestProxy } from './support/request-proxy.js';

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
