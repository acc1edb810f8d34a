// `catalog --from-inventory` against a real s3rver, as users run it: a report written the way AWS writes one
// (test/support/inventory-writer.ts: URL-encoded keys, gzip CSV data files, manifest with MD5s) must give the
// rows a listing of the same bucket gives; a damaged report changes nothing in the state; a pass from a report
// reconciles like a listing, but never marks gone what the report could not have seen.
import fs from 'node:fs';
import path from 'node:path';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3rverClient, startS3rver, type S3rverHandle } from '../scripts/servers/s3rver.js';
import { listPages } from '../src/s3/list-pages.js';
import type { ListedObject } from '../src/state/types.js';
import { filesIn, putObjects, readMeta, sha256File, tempDir, withRaw, type Seed } from './support/catalog-fixtures.js';
import { runCli, s3rverEnv, startCli, type CliResult } from './support/cli.js';
import { writeInventory, type WriteInventoryOptions } from './support/inventory-writer.js';
import { startRequestProxy, type ProxyDecision, type RequestInfo, type RequestProxy } from './support/request-proxy.js';

let s3: S3rverHandle;
let client: S3Client;
let work: string;
let proxy: RequestProxy;
let onGet: (info: RequestInfo) => ProxyDecision = () => 'pass';

// Keys whose URL encoding trips up naive decoding: spaces, '+', '%' and things that look like escapes, unicode.
const TRICKY = [
  'with space.txt',
  'two  spaces  here',
  'plus+sign+key.txt',
  'c++/a+b = c.txt',
  'space + plus',
  '100%.txt',
  'percent%20not%2Fdecoded.txt',
  '%2B%25%',
  'ünïcødé/файл-日本語.txt',
  'emoji 😀 key.bin',
  "amp&ersand=eq;semi,comma@at$dollar!*'()~.txt",
  'a/b/c/deep.txt',
  'folder/',
];
const SEEDS: Seed[] = [
  ...TRICKY.map((key) => ({ key, body: key.endsWith('/') ? Buffer.alloc(0) : Buffer.from(`content of ${key}`) })),
  ...Array.from({ length: 2_400 }, (_, i) => ({ key: `bulk/${String(i).padStart(5, '0')}`, body: Buffer.from(`${i}`) })),
];

beforeAll(async () => {
  s3 = await startS3rver({ buckets: ['src', 'inv', 'recon', 'other'] });
  client = s3rverClient(s3.endpoint);
  work = await tempDir('catalog-inventory');
  await putObjects(client, 'src', SEEDS);
  proxy = await startRequestProxy(s3.endpoint, { onRequest: (info) => (info.op === 'GetObject' ? onGet(info) : 'pass') });
}, 120_000);

afterAll(async () => {
  await proxy?.stop();
  client?.destroy();
  await s3?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

const env = (): Record<string, string> => s3rverEnv(proxy.endpoint, proxy.endpoint);
function expectExit(result: CliResult, code: number): void {
  expect({ code: result.code, signal: result.signal, stderr: result.stderr }).toMatchObject({ code, signal: null });
}

async function listing(bucket: string): Promise<ListedObject[]> {
  const objects: ListedObject[] = [];
  for await (const page of listPages(client, { bucket, prefix: '', startAfter: '' })) objects.push(...page.objects);
  return objects;
}

let reports = 0;
async function report(bucket: string, rows: ListedObject[], options: Partial<WriteInventoryOptions> = {}) {
  reports += 1;
  return writeInventory(client, 'inv', rows, { sourceBucket: bucket, files: 3, prefix: `reports-${reports}/`, ...options });
}

type Row = { key: string; size: number; etag: string | null; last_modified: string; storage_class: string | null; status: string };
function rowsOf(state: string): Map<string, Row> {
  return withRaw(state, (db) => {
    const all = db.prepare('SELECT key, size, etag, last_modified, storage_class, status FROM objects_view').all() as Row[];
    return new Map(all.map((row) => [row.key, row]));
  });
}
/** Everything a run could change: rows, meta and runs, as plain SQL reads them. */
const contentOf = (state: string) =>
  withRaw(state, (db) => ({
    objects: db.prepare('SELECT * FROM objects_view ORDER BY id').all(),
    meta: db.prepare('SELECT * FROM meta ORDER BY key').all(),
    runs: db.prepare('SELECT * FROM runs ORDER BY id').all(),
    parts: db.prepare('SELECT * FROM catalog_parts ORDER BY pass, part').all(),
  }));

describe('catalog --from-inventory', () => {
  let source: ListedObject[];
  let url: string;

  beforeAll(async () => {
    source = await listing('src');
    expect(source.map((o) => o.key).sort()).toEqual(SEEDS.map((s) => s.key).sort());
    url = (await report('src', source, { creationTimestamp: new Date('2024-03-01T01:00:00.000Z') })).manifestUrl;
  });

  it('stores exactly the rows a listing of the bucket gives, keys decoded byte for byte, and says where they came from', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'equal-'));
    const fromInventory = path.join(dir, 'inventory.db');
    const fromListing = path.join(dir, 'listing.db');
    const result = await runCli(['catalog', '--from', 's3://src', '--from-inventory', url, '--state', fromInventory], { env: env() });
    expectExit(result, 0);
    expect(result.stderr).toMatch(/Reading the inventory s3:\/\/inv\/.*manifest\.json \(taken 2024-03-01T01:00:00\.000Z, 3 data files\)/);
    expectExit(await runCli(['catalog', '--from', 's3://src', '--state', fromListing, '--list-concurrency', '1'], { env: env() }), 0);
    const a = rowsOf(fromInventory);
    const b = rowsOf(fromListing);
    expect(a.size).toBe(SEEDS.length);
    expect([...a.values()].sort((x, y) => (x.key < y.key ? -1 : 1))).toEqual([...b.values()].sort((x, y) => (x.key < y.key ? -1 : 1)));
    withRaw(fromInventory, (db) => {
      const hex = db.prepare('SELECT hex(key) AS hex FROM objects WHERE key = ?');
      for (const key of TRICKY) expect((hex.get(key) as { hex: string }).hex).toBe(Buffer.from(key).toString('hex').toUpperCase());
    });
    expect(readMeta(fromInventory)).toMatchObject({
      catalog_state: 'complete',
      catalog_source: 'inventory',
      inventory_manifest: url,
      inventory_created_at: '2024-03-01T01:00:00.000Z',
      inventory_files: '3',
      inventory_next_file: '3',
    });

    const text = await runCli(['status', '--state', fromInventory], { env: env() });
    expectExit(text, 0);
    expect(text.stdout).toContain(`from the inventory ${url}, taken 2024-03-01T01:00:00.000Z`);
    const json = await runCli(['status', '--state', fromInventory, '--json'], { env: env() });
    expect(JSON.parse(json.stdout).catalogSource).toEqual({
      kind: 'inventory',
      manifestUrl: url,
      createdAt: '2024-03-01T01:00:00.000Z',
      files: 3,
      filesDone: 3,
    });
    expect(JSON.parse((await runCli(['status', '--state', fromListing, '--json'], { env: env() })).stdout).catalogSource).toEqual({
      kind: 'listing',
      parts: 1,
      partsDone: 1,
    });
  });

  it('keeps the --from prefix only', async () => {
    const state = path.join(fs.mkdtempSync(path.join(work, 'prefix-')), 'state.db');
    expectExit(await runCli(['catalog', '--from', 's3://src/c++', '--from-inventory', url, '--state', state], { env: env() }), 0);
    expect([...rowsOf(state).keys()]).toEqual(['c++/a+b = c.txt']);
  });

  it('resumes at the data file it stopped in after kill -9, never reading a stored file again', async () => {
    const state = path.join(fs.mkdtempSync(path.join(work, 'resume-')), 'state.db');
    const written = await report('src', source);
    const dataKeys = written.files.map((file) => `/inv/${file.key}`);
    const args = ['catalog', '--from', 's3://src', '--from-inventory', written.manifestUrl, '--state', state, '--list-concurrency', '1'];
    // The catalog first proves all three files (3 reads), then reads them to store their rows: killed at
    // the second file's second read, the first file is stored.
    let reads = 0;
    let cli: ReturnType<typeof startCli> | undefined;
    onGet = (info) => {
      if (!dataKeys.includes(info.path)) return 'pass';
      reads += 1;
      if (reads < 5) return 'pass';
      cli!.child.kill('SIGKILL');
      return 'reset';
    };
    cli = startCli(args, { env: env() });
    const first = await cli.result;
    onGet = () => 'pass';
    expect(first.signal, first.stderr).toBe('SIGKILL');
    expect(readMeta(state)).toMatchObject({ catalog_state: 'listing', inventory_next_file: '1' });
    expect(rowsOf(state).size).toBe(written.files[0]!.rows.length);

    proxy.reset();
    const second = await runCli(args, { env: env() });
    expectExit(second, 0);
    expect(second.stderr).toMatch(/Resuming the inventory .* at data file 2 of 3/);
    const gets = proxy.log().filter((entry) => entry.op === 'GetObject').map((entry) => entry.path);
    expect(gets.filter((p) => p === dataKeys[0])).toEqual([]);
    expect(gets.filter((p) => p === dataKeys[1])).toHaveLength(2); // proved, then read
    expect(rowsOf(state).size).toBe(SEEDS.length);
    expect(readMeta(state)).toMatchObject({ catalog_state: 'complete', catalog_pass: '1' });
  });

  it.each([
    { name: 'a corrupt data file', options: { corruptFile: 1 }, message: /data file 2 of 3, s3:\/\/inv\/.* does not match its manifest/ },
    { name: 'a missing data file', options: { omitFile: 2 }, message: /data file 3 of 3, s3:\/\/inv\/.*, listed in the manifest, does not exist/ },
  ])('$name: one clear line, exit 1, the state as it was (and no new state left behind)', async ({ options, message }) => {
    const damaged = await report('src', source, options);
    const dir = fs.mkdtempSync(path.join(work, 'damaged-'));
    const state = path.join(dir, 'state.db');
    expectExit(await runCli(['catalog', '--from', 's3://src', '--state', state, '--list-concurrency', '1'], { env: env() }), 0);
    const before = contentOf(state);
    const result = await runCli(['catalog', '--from', 's3://src', '--from-inventory', damaged.manifestUrl, '--state', state], { env: env() });
    expectExit(result, 1);
    const errors = result.stderr.split('\n').filter((line) => line.startsWith('s3migrate: '));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(message);
    expect(result.stderr).not.toMatch(/^\s+at /m);
    expect(contentOf(state)).toEqual(before);

    const fresh = fs.mkdtempSync(path.join(work, 'fresh-'));
    expectExit(await runCli(['catalog', '--from', 's3://src', '--from-inventory', damaged.manifestUrl, '--state', path.join(fresh, 'state.db')], { env: env() }), 1);
    expect(filesIn(fresh)).toEqual([]);
  });

  it('a report of another bucket is invalid usage: exit 2, the state byte for byte as it was', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'bucket-'));
    const state = path.join(dir, 'state.db');
    expectExit(await runCli(['catalog', '--from', 's3://src', '--state', state, '--list-concurrency', '1'], { env: env() }), 0);
    const hash = sha256File(state);
    const files = filesIn(dir);
    const other = await report('other', []);
    const result = await runCli(['catalog', '--from', 's3://src', '--from-inventory', other.manifestUrl, '--state', state], { env: env() });
    expectExit(result, 2);
    expect(result.stderr).toMatch(/lists the bucket "other", not "src"/);
    expect(sha256File(state)).toBe(hash);
    expect(filesIn(dir)).toEqual(files);
    const missing = await runCli(['catalog', '--from', 's3://src', '--from-inventory', 's3://inv/no/such/manifest.json', '--state', state], { env: env() });
    expectExit(missing, 1);
    expect(missing.stderr).toMatch(/manifest s3:\/\/inv\/no\/such\/manifest\.json does not exist/);
    expect(sha256File(state)).toBe(hash);
    expectExit(await runCli(['catalog', '--from', 's3://src', '--from-inventory', 's3://inv/reports/', '--state', state], { env: env() }), 2);
  });
});

describe('a pass from an inventory reconciles like a listing, within what the report could see', () => {
  const DAY = 24 * 60 * 60 * 1000;
  /** Sets an s3rver object's LastModified (the stored file's mtime). */
  const age = (bucket: string, key: string, ms: number): void => {
    const file = path.join(s3.dir, bucket, `${key}._S3rver_object`);
    const when = new Date(Date.now() - ms);
    fs.utimesSync(file, when, when);
  };

  it('new and changed keys pending, a deleted old key gone, a deleted recent key left to the next listing', async () => {
    const keys = ['old-kept', 'old-deleted', 'old-changed', 'recent-deleted', 'done-kept'];
    await putObjects(client, 'recon', keys.map((key) => ({ key, body: Buffer.from(key) })));
    for (const key of keys.filter((k) => !k.startsWith('recent'))) age('recon', key, 3 * DAY);
    age('recon', 'recent-deleted', DAY / 4);
    const state = path.join(fs.mkdtempSync(path.join(work, 'recon-')), 'state.db');
    expectExit(await runCli(['catalog', '--from', 's3://recon', '--state', state], { env: env() }), 0);
    withRaw(state, (db) => db.prepare("UPDATE objects SET status = 'done' WHERE key = 'done-kept'").run(), 'write');

    await client.send(new DeleteObjectCommand({ Bucket: 'recon', Key: 'old-deleted' }));
    await client.send(new DeleteObjectCommand({ Bucket: 'recon', Key: 'recent-deleted' }));
    await client.send(new PutObjectCommand({ Bucket: 'recon', Key: 'old-changed', Body: Buffer.from('other bytes') }));
    await client.send(new PutObjectCommand({ Bucket: 'recon', Key: 'new-key', Body: Buffer.from('new') }));
    const taken = new Date();
    const written = await report('recon', await listing('recon'), { creationTimestamp: taken, files: 2 });

    const result = await runCli(['catalog', '--from', 's3://recon', '--from-inventory', written.manifestUrl, '--state', state], { env: env() });
    expectExit(result, 0);
    expect(result.stderr).toMatch(/1 gone from the source/);
    const statuses = Object.fromEntries([...rowsOf(state)].map(([key, row]) => [key, row.status]));
    expect(statuses).toEqual({
      'old-kept': 'pending',
      'old-deleted': 'gone',
      'old-changed': 'pending',
      'recent-deleted': 'pending', // modified within a day of the report: the report may have missed it
      'done-kept': 'done',
      'new-key': 'pending',
    });
    expect(rowsOf(state).get('old-changed')!.size).toBe('other bytes'.length);

    // The delta pass after it is a listing: it sees what the report could not.
    const delta = await runCli(['catalog', '--from', 's3://recon', '--state', state], { env: env() });
    expectExit(delta, 0);
    expect(rowsOf(state).get('recent-deleted')!.status).toBe('gone');
    expect(readMeta(state)).toMatchObject({ catalog_source: 'listing', catalog_pass: '3' });
    expect(readMeta(state).inventory_manifest).toBeUndefined();
  });
});
