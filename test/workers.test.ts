// Copy workers on one SQLite state, end to end (issue 13): `copy --workers 4` copies a corpus of small
// and multipart objects byte for byte, each written once; `--sort newest` keeps the global order within
// what 4 workers at --concurrency 1 can reorder; a worker paused (SIGSTOP) past its lease marks nothing
// and completes no upload it lost once it runs again; a first-release (schema 1) state file
// mid-migration carries on under `--workers 2`. Requests are counted through a proxy, never timed.
import { createHash } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3rverClient, startS3rver, type S3rverHandle } from '../scripts/servers/s3rver.js';
import { APPLICATION_ID, MIGRATIONS } from '../src/state/sqlite/schema.js';
import { expectExit, runCli, s3rverEnv } from './support/cli.js';
import {
  bytes,
  cloneState,
  expectBucketHolds,
  keyOfPath,
  MiB,
  readRows,
  requestsPerKey,
  seed,
  sleep,
  tempDir,
  teardown,
  type SeedObject,
} from './support/copy-fixtures.js';
import { pausedWorkerScenario } from './support/paused-worker.js';
import { startRequestProxy, type RequestProxy } from './support/request-proxy.js';

const PART = 5 * MiB;
/** 200 objects: 194 small ones of various sizes, 6 multipart ones (2 or 3 parts of 5 MiB). */
const CORPUS: SeedObject[] = [
  ...Array.from({ length: 194 }, (_, i) => ({ key: `small/${String(i).padStart(3, '0')}.bin`, body: bytes(100 + ((i * 7919) % 30_000)) })),
  ...Array.from({ length: 6 }, (_, i) => ({ key: `big/${i}.bin`, body: bytes(PART + 1 + i * 1_000_000 + (i % 2) * PART) })),
];
const SMALL_KEYS = CORPUS.filter((object) => object.key.startsWith('small/')).map((object) => object.key);
const BIG_KEYS = CORPUS.filter((object) => object.key.startsWith('big/')).map((object) => object.key);
const MULTIPART = ['--multipart-threshold', '5MiB', '--part-size', '5MiB'];

let source: S3rverHandle;
let dest: S3rverHandle;
let sourceClient: S3Client;
let destClient: S3Client;
let work: Awaited<ReturnType<typeof tempDir>>;
const proxies: RequestProxy[] = [];
let corpusState: string;

async function proxy(options: Parameters<typeof startRequestProxy>[1] = {}): Promise<RequestProxy> {
  const started = await startRequestProxy(dest.endpoint, options);
  proxies.push(started);
  return started;
}

async function expectCorpusAt(bucket: string, corpus: readonly SeedObject[] = CORPUS): Promise<void> {
  await expectBucketHolds(destClient, bucket, corpus);
}

/** Every row done, on evidence, and no lease left behind. */
function expectAllDone(state: string): void {
  const rows = readRows(state) as Array<ReturnType<typeof readRows>[number] & { lease_owner: string | null }>;
  expect(rows.filter((row) => row.status !== 'done').map((row) => `${row.key}: ${row.status} ${row.error ?? ''}`)).toEqual([]);
  expect(rows.filter((row) => row.evidence === null).map((row) => row.key)).toEqual([]);
  expect(rows.filter((row) => row.lease_owner !== null).map((row) => row.key)).toEqual([]);
}

beforeAll(async () => {
  [source, dest] = await Promise.all([
    startS3rver({ buckets: ['corpus', 'dated'] }),
    startS3rver({ buckets: ['four', 'newest', 'fenced', 'v1-dst'] }),
  ]);
  sourceClient = s3rverClient(source.endpoint);
  destClient = s3rverClient(dest.endpoint);
  work = await tempDir('workers');
  await seed(sourceClient, 'corpus', CORPUS);
  corpusState = work.file('corpus.db');
  const catalog = await runCli(['catalog', '--from', 's3://corpus', '--state', corpusState, '--quiet'], {
    env: s3rverEnv(source.endpoint, dest.endpoint),
  });
  expectExit(catalog, 0);
}, 60_000);

afterAll(() => teardown({ proxies, clients: [sourceClient, destClient], servers: [source, dest], work }));

describe('copy --workers on one SQLite state', () => {
  it('4 workers copy 200 objects (6 multipart) byte for byte, each written exactly once', async () => {
    const state = cloneState(corpusState, work.file('four.db'));
    const counted = await proxy();
    const result = await runCli(['copy', '--to', 's3://four', '--state', state, '--workers', '4', '--concurrency', '8', ...MULTIPART, '--quiet'], {
      env: s3rverEnv(source.endpoint, counted.endpoint),
    });
    expectExit(result, 0);
    await expectCorpusAt('four');
    expectAllDone(state);

    const log = counted.log();
    const puts = requestsPerKey(log, 'four', 'PutObject');
    expect(SMALL_KEYS.filter((key) => puts.get(key) !== 1)).toEqual([]);
    expect([...puts.keys()].filter((key) => !SMALL_KEYS.includes(key))).toEqual([]);
    const creates = requestsPerKey(log, 'four', 'CreateMultipartUpload');
    const completes = requestsPerKey(log, 'four', 'CompleteMultipartUpload');
    for (const key of BIG_KEYS) {
      expect(creates.get(key), key).toBe(1);
      expect(completes.get(key), key).toBe(1);
    }
    expect(log.filter((entry) => entry.op === 'AbortMultipartUpload')).toEqual([]);
    // Every part was sent once: as many UploadParts as the objects have parts.
    const parts = BIG_KEYS.reduce((total, key) => total + Math.ceil(CORPUS.find((o) => o.key === key)!.body.length / PART), 0);
    expect(log.filter((entry) => entry.op === 'UploadPart').length).toBe(parts);
  }, 60_000);

  it('--sort newest with 4 workers at --concurrency 1: no object more than 2 x 4 x 1 places from its global rank', async () => {
    const objects = Array.from({ length: 48 }, (_, i) => ({ key: `d/${String(i).padStart(2, '0')}`, body: bytes(500 + i) }));
    await seed(sourceClient, 'dated', objects);
    const state = work.file('dated.db');
    const env = s3rverEnv(source.endpoint, dest.endpoint);
    expectExit(await runCli(['catalog', '--from', 's3://dated', '--state', state, '--quiet'], { env }), 0);
    // s3rver's LastModified has whole seconds: the catalog's times are spread by plain SQL instead, in an
    // order unrelated to the keys (the copy checks the source's ETag and size, not its time).
    const db = new Database(state);
    const setTime = db.prepare('UPDATE objects SET last_modified = ? WHERE key = ?');
    // (the file keeps times in milliseconds since 1970)
    objects.forEach((object, i) => setTime.run(Date.UTC(2026, 0, 1) + ((i * 37) % 48) * 60_000, object.key));
    db.close();
    // The global newest-first order, from the catalog (last_modified DESC, key DESC).
    const ranked = readRows(state)
      .slice()
      .sort((a, b) => (a.last_modified === b.last_modified ? (a.key < b.key ? 1 : -1) : a.last_modified < b.last_modified ? 1 : -1))
      .map((row) => row.key);
    expect(new Set(readRows(state).map((row) => row.last_modified)).size).toBe(objects.length);

    // A small delay per PUT keeps the four workers busy side by side, as over a real network.
    const ordered = await proxy({ onRequest: async (info) => (info.op === 'PutObject' ? sleep(15) : undefined) });
    const result = await runCli(['copy', '--to', 's3://newest', '--state', state, '--sort', 'newest', '--workers', '4', '--concurrency', '1', '--quiet'], {
      env: s3rverEnv(source.endpoint, ordered.endpoint),
    });
    expectExit(result, 0);
    const arrived = ordered
      .log()
      .filter((entry) => entry.op === 'PutObject')
      .map((entry) => keyOfPath(entry.path, 'newest'));
    expect(arrived.slice().sort()).toEqual(ranked.slice().sort());
    const bound = 2 * 4 * 1;
    const displaced = arrived
      .map((key, position) => ({ key, position, rank: ranked.indexOf(key) }))
      .filter(({ position, rank }) => Math.abs(position - rank) > bound);
    expect(displaced).toEqual([]);
  }, 60_000);
});

/** The keys a worker's JSON log says it marked done, and those it says it lost. */
describe('fencing: a worker paused past its lease', () => {
  it('after SIGCONT marks nothing it lost and completes no multipart upload it lost; the others finished its rows', async () => {
    const corpus = CORPUS.filter((object) => object.key.startsWith('big/') || object.key < 'small/020');
    const state = cloneState(corpusState, work.file('fenced.db'));
    // Only the part of the corpus this test copies stays pending.
    const db = new Database(state);
    db.prepare("DELETE FROM objects WHERE key >= 'small/020'").run();
    db.close();
    await pausedWorkerScenario({
      proxy,
      env: (endpoint) => s3rverEnv(source.endpoint, endpoint),
      args: (log) => [
        'copy', '--to', 's3://fenced', '--state', state, '--workers', '1', '--lease-seconds', '2', '--concurrency', '4',
        '--part-concurrency', '1', ...MULTIPART, '--log-format', 'json', '--log-file', log,
      ],
      logs: { a: work.file('a.ndjson'), b: work.file('b.ndjson') },
      bucket: 'fenced',
      multipartKeys: BIG_KEYS,
      inFlight: async () => readRows(state).filter((row) => row.status === 'in_flight').map((row) => row.key),
      expectFinished: async () => {
        expectAllDone(state);
        await expectCorpusAt('fenced', corpus);
      },
    });
  }, 60_000);
});

/** Writes a state file as the first release (schema 1) left it mid-migration: some rows done, the rest not. */
function writeFirstReleaseState(file: string, objects: readonly SeedObject[], sourceEndpoint: string, destEndpoint: string): void {
  const db = new Database(file);
  db.exec(MIGRATIONS[0]!);
  db.pragma(`application_id = ${APPLICATION_ID}`);
  db.pragma('user_version = 1');
  db.pragma('journal_mode = WAL');
  const meta = db.prepare('INSERT INTO meta(key, value) VALUES (?, ?)');
  const now = '2026-06-01T10:00:00.000Z';
  for (const [key, value] of Object.entries({
    source_endpoint: sourceEndpoint, source_bucket: 'corpus', source_prefix: '',
    dest_endpoint: destEndpoint, dest_bucket: 'v1-dst', dest_prefix: '',
    created_at: now, catalog_pass: '1', catalog_state: 'complete', catalog_started_at: now, catalog_finished_at: now,
  })) {
    meta.run(key, value);
  }
  const insert = db.prepare(
    `INSERT INTO objects (key, size, etag, last_modified, storage_class, status, attempts, error, catalog_pass, listed_at,
       copied_at, dest_key, dest_etag, verify_method, verified_at, verify_result, updated_at)
     VALUES (@key, @size, @etag, @now, 'STANDARD', @status, @attempts, NULL, 1, @now, @copiedAt, @destKey, @destEtag, @method, @copiedAt, @result, @now)`,
  );
  objects.forEach((object, i) => {
    const status = i < 20 ? 'done' : i < 24 ? 'in_flight' : i < 26 ? 'failed' : 'pending';
    const done = status === 'done';
    const md5 = createHash('md5').update(object.body).digest('hex');
    insert.run({
      key: object.key, size: object.body.length, etag: `"${md5}"`, now, status, attempts: status === 'pending' ? 0 : 1,
      copiedAt: done ? now : null, destKey: done ? object.key : null, destEtag: done ? md5 : null,
      method: done ? 'md5' : null, result: done ? 'ok' : null,
    });
  });
  db.prepare("INSERT INTO runs(command, arguments, started_at, outcome) VALUES ('copy', '{}', ?, 'running')").run(now);
  db.close();
}

describe('a first-release (schema 1) state file mid-migration', () => {
  it('is migrated and finished by `copy --workers 2`: the rest copied once each, the done rows not again', async () => {
    const corpus = CORPUS.filter((object) => object.key.startsWith('small/')).slice(0, 80);
    const counted = await proxy();
    const state = work.file('v1.db');
    writeFirstReleaseState(state, corpus, source.endpoint, counted.endpoint);
    // What the first release had copied is at the destination.
    await seed(destClient, 'v1-dst', corpus.slice(0, 20));
    const result = await runCli(['copy', '--to', 's3://v1-dst', '--state', state, '--workers', '2', '--concurrency', '4', '--quiet'], {
      env: s3rverEnv(source.endpoint, counted.endpoint),
    });
    expectExit(result, 0);
    const check = new Database(state, { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBeGreaterThan(1);
    check.close();
    expectAllDone(state);
    await expectCorpusAt('v1-dst', corpus);
    const puts = requestsPerKey(counted.log(), 'v1-dst', 'PutObject');
    expect(corpus.slice(0, 20).filter((object) => puts.has(object.key)).map((object) => object.key)).toEqual([]);
    expect(corpus.slice(20).filter((object) => puts.get(object.key) !== 1).map((object) => object.key)).toEqual([]);
  }, 60_000);
});
