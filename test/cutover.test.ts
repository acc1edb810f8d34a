// Cutting over, end to end on two s3rver instances: `plan` and `copy --dry-run` (the plan's request counts
// are what the copy then sends; a dry run sends no write), filtered waves (the rest stays pending),
// archived objects skipped, the delta a catalog pass finds, and `copy --delete-gone` / `--max-delete`.
import fs from 'node:fs';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3rverClient, startS3rver, type S3rverHandle } from '../scripts/servers/s3rver.js';
import { runCli, s3rverEnv } from './support/cli.js';
import { bucketHashes, bytes, MiB, readRows, rowsByKey, seed, tempDir, teardown } from './support/copy-fixtures.js';
import { startRequestProxy, type ProxyDecision, type RequestProxy } from './support/request-proxy.js';

let source: S3rverHandle;
let dest: S3rverHandle;
let sourceClient: S3Client;
let destClient: S3Client;
let work: Awaited<ReturnType<typeof tempDir>>;
const proxies: RequestProxy[] = [];

beforeAll(async () => {
  [source, dest] = await Promise.all([
    startS3rver({ buckets: ['src', 'live', 'scoped', 'many'] }),
    startS3rver({ buckets: ['dst', 'live-dst', 'many-dst'] }),
  ]);
  sourceClient = s3rverClient(source.endpoint);
  destClient = s3rverClient(dest.endpoint);
  work = await tempDir('cutover');
});

afterAll(() => teardown({ proxies, clients: [sourceClient, destClient], servers: [source, dest], work }));

async function proxy(endpoint: string, options: Parameters<typeof startRequestProxy>[1] = {}): Promise<RequestProxy> {
  const started = await startRequestProxy(endpoint, options);
  proxies.push(started);
  return started;
}

/** s3rver lists every object as STANDARD, modified when it was stored: the listing says otherwise for these. */
const LISTED_AS: Record<string, { storageClass?: string; lastModified?: string }> = {
  'photos/cold.jpg': { storageClass: 'GLACIER' },
  'photos/old/c.jpg': { lastModified: '2023-05-01T10:00:00.000Z' },
};

function rewriteListing(body: Buffer): Buffer {
  const xml = body.toString('utf8').replace(/<Contents>([\s\S]*?)<\/Contents>/g, (block: string) => {
    const key = /<Key>([^<]*)<\/Key>/.exec(block)?.[1];
    const as = key === undefined ? undefined : LISTED_AS[key];
    if (!as) return block;
    let out = block;
    if (as.storageClass) out = out.replace(/<StorageClass>[^<]*<\/StorageClass>/, `<StorageClass>${as.storageClass}</StorageClass>`);
    if (as.lastModified) out = out.replace(/<LastModified>[^<]*<\/LastModified>/, `<LastModified>${as.lastModified}</LastModified>`);
    return out;
  });
  return Buffer.from(xml, 'utf8');
}

const WRITES = new Set(['PUT', 'POST', 'DELETE']);

describe('plan, dry run, filtered waves and archived objects', () => {
  const objects = [
    { key: 'photos/2024/a.jpg', body: bytes(1000) },
    { key: 'photos/2024/b.jpg', body: bytes(9 * MiB) }, // multipart at --multipart-threshold 8MiB: 2 parts
    { key: 'photos/2024/skip.tmp', body: bytes(50) },
    { key: 'photos/old/c.jpg', body: bytes(2000) },
    { key: 'photos/cold.jpg', body: bytes(3000) },
    { key: 'docs/readme.txt', body: bytes(4000) },
    { key: 'top.txt', body: bytes(10) },
  ];
  const state = (): string => work.file('waves.db');
  const wave = ['--include', 'photos/**', '--exclude', '**/*.tmp', '--modified-after', '2024-01-01'];
  const shape = ['--multipart-threshold', '8MiB', '--part-size', '8MiB'];
  // The source as the state records it: this proxy, which also counts the copy's requests.
  let listing: RequestProxy;

  beforeAll(async () => {
    await seed(sourceClient, 'src', objects);
    listing = await proxy(source.endpoint, {
      rewriteResponse: (info) => (info.op === 'ListObjectsV2' ? { body: rewriteListing } : undefined),
    });
    const catalog = await runCli(['catalog', '--from', 's3://src', '--state', state(), '--quiet'], {
      env: s3rverEnv(listing.endpoint, dest.endpoint),
    });
    expect(catalog.code, catalog.stderr).toBe(0);
  });

  it('refuses a malformed glob, an unparsable date and a price file that is not JSON (exit 2), the state untouched', async () => {
    const env = s3rverEnv(source.endpoint, dest.endpoint);
    const before = fs.readFileSync(state());
    const rows = readRows(state());
    const badGlob = await runCli(['copy', '--to', 's3://dst', '--state', state(), '--include', 'photos/[a'], { env });
    expect(badGlob.code).toBe(2);
    expect(badGlob.stderr).toMatch(/--include "photos\/\[a": unmatched \[/);
    const badDate = await runCli(['copy', '--to', 's3://dst', '--state', state(), '--modified-after', '2024-13-01'], { env });
    expect(badDate.code).toBe(2);
    expect(badDate.stderr).toMatch(/--modified-after expects a date/);
    const badCatalog = await runCli(['catalog', '--from', 's3://src', '--state', state(), '--modified-before', '2024-01-01T10:00:00'], { env });
    expect(badCatalog.code).toBe(2);
    expect(badCatalog.stderr).toMatch(/no time zone/);
    const prices = work.file('prices.json');
    fs.writeFileSync(prices, '{ not json');
    const badPrices = await runCli(['plan', '--state', state(), '--prices', prices], { env });
    expect(badPrices.code).toBe(2);
    expect(badPrices.stderr).toContain(prices);
    expect(fs.readFileSync(state()).equals(before)).toBe(true);
    expect(readRows(state())).toEqual(rows);
  });

  it('plan counts the requests the copy then sends; --dry-run sends no write; the wave leaves the rest pending', async () => {
    const env = s3rverEnv(source.endpoint, dest.endpoint);
    const planned = await runCli(['plan', '--state', state(), '--json', ...wave, ...shape], { env });
    expect(planned.code, planned.stderr).toBe(0);
    const plan = JSON.parse(planned.stdout) as {
      objects: { toCopy: { objects: number; bytes: number }; archived: { objects: number; bytes: number } };
      requests: { source: Record<string, number>; dest: Record<string, number> };
      cost: { source: { provider: string; pricesAsOf: string } };
      duration: { basis: string };
      selection: string;
    };
    expect(plan.objects.toCopy).toEqual({ objects: 2, bytes: 1000 + 9 * MiB });
    expect(plan.objects.archived).toEqual({ objects: 1, bytes: 3000 });
    expect(plan.requests.source).toEqual({ get: 3, head: 0, list: 0 });
    expect(plan.requests.dest).toEqual({ put: 1, createMultipartUpload: 1, uploadPart: 2, completeMultipartUpload: 1, head: 0 });
    expect(plan.cost.source).toMatchObject({ provider: 'self-hosted', pricesAsOf: '2026-12-01' });
    expect(plan.duration.basis).toMatch(/assumed/);
    expect(JSON.parse(plan.selection)).toEqual({ include: ['photos/**'], exclude: ['**/*.tmp'], modifiedAfter: '2024-01-01' });

    const text = await runCli(['plan', '--state', state(), ...wave, ...shape], { env });
    expect(text.stdout).toMatch(/To copy: 2 objects/);
    expect(text.stdout).toMatch(/archived +1 objects .*GLACIER: restore them first/);
    expect(text.stdout).toMatch(/Estimated cost: \$0\.00/);

    const sourceProxy = listing;
    const destProxy = await proxy(dest.endpoint);
    const proxied = s3rverEnv(sourceProxy.endpoint, destProxy.endpoint);
    const rows = readRows(state());
    const dry = await runCli(['copy', '--to', 's3://dst', '--state', state(), '--dry-run', ...wave, ...shape], { env: proxied });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toBe(text.stdout);
    expect([...sourceProxy.log(), ...destProxy.log()].filter((entry) => WRITES.has(entry.method))).toEqual([]);
    expect(readRows(state())).toEqual(rows);

    sourceProxy.reset();
    destProxy.reset();
    const copy = await runCli(['copy', '--to', 's3://dst', '--state', state(), '--workers', '1', ...wave, ...shape], { env: proxied });
    // Only the archived object is left of the wave: exit 3, with what to do.
    expect(copy.code, copy.stderr).toBe(3);
    expect(copy.stderr).toMatch(/1 objects are in an archive storage class .* restore them/);
    const sent = { ...sourceProxy.counts(), ...destProxy.counts() };
    const { source: s, dest: d } = plan.requests;
    expect(sourceProxy.counts().GetObject ?? 0).toBe(s.get);
    expect(sourceProxy.counts().HeadObject ?? 0).toBe(s.head);
    expect(destProxy.counts().HeadObject ?? 0).toBe(d.head);
    expect([sent.PutObject, sent.CreateMultipartUpload, sent.UploadPart, sent.CompleteMultipartUpload]).toEqual([
      d.put,
      d.createMultipartUpload,
      d.uploadPart,
      d.completeMultipartUpload,
    ]);

    const status = Object.fromEntries(readRows(state()).map((row) => [row.key, row.status]));
    expect(status).toEqual({
      'photos/2024/a.jpg': 'done',
      'photos/2024/b.jpg': 'done',
      'photos/2024/skip.tmp': 'pending',
      'photos/old/c.jpg': 'pending',
      'photos/cold.jpg': 'archived',
      'docs/readme.txt': 'pending',
      'top.txt': 'pending',
    });

    const selected = await runCli(['status', '--state', state(), '--json', '--include', 'photos/**'], { env });
    expect(selected.code, selected.stderr).toBe(0);
    const summary = JSON.parse(selected.stdout) as { selection: { counts: Array<{ status: string; objects: number }> } };
    expect(summary.selection.counts.map((c) => [c.status, c.objects])).toEqual([
      ['archived', 1],
      ['done', 2],
      ['pending', 2],
    ]);
    const shown = await runCli(['status', '--state', state()], { env });
    expect(shown.stdout).toMatch(/Archived: +1 objects in an archive storage class/);

    // The second wave: everything else but the archived object.
    const rest = await runCli(['copy', '--to', 's3://dst', '--state', state(), '--quiet', ...shape], { env: proxied });
    expect(rest.code, rest.stderr).toBe(3);
    const copied = await bucketHashes(destClient, 'dst');
    const expected = await bucketHashes(sourceClient, 'src');
    expected.delete('photos/cold.jpg');
    expect(copied).toEqual(expected);
  });
});

describe('catalog delta and --delete-gone', () => {
  const state = (): string => work.file('delta.db');
  const put = (client: S3Client, bucket: string, key: string, body: Buffer) =>
    client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  const remove = (key: string) => sourceClient.send(new DeleteObjectCommand({ Bucket: 'live', Key: key }));

  it('status shows what the pass found; --max-delete stops first; --delete-gone deletes only what s3migrate wrote', async () => {
    const destProxy = await proxy(dest.endpoint);
    const env = s3rverEnv(source.endpoint, destProxy.endpoint);
    await seed(sourceClient, 'live', [
      { key: 'keep.txt', body: bytes(100) },
      { key: 'change.txt', body: bytes(200) },
      { key: 'remove.txt', body: bytes(300) },
      { key: 'sub/remove 2.txt', body: bytes(400) },
      { key: 'remove-changed.txt', body: bytes(500) },
      { key: 'foreign.txt', body: bytes(600) },
    ]);
    expect((await runCli(['catalog', '--from', 's3://live', '--state', state(), '--quiet'], { env })).code).toBe(0);
    // foreign.txt is not copied by s3migrate: someone else writes that key at the destination.
    const first = await runCli(['copy', '--to', 's3://live-dst', '--state', state(), '--quiet', '--exclude', 'foreign.txt'], { env });
    expect(first.code, first.stderr).toBe(0);
    await put(destClient, 'live-dst', 'foreign.txt', Buffer.from('written by someone else'));

    // The source moves on: one new, one overwritten, four deleted; one of our copies is changed at the destination.
    await put(sourceClient, 'live', 'new.txt', bytes(700));
    await put(sourceClient, 'live', 'change.txt', Buffer.alloc(250, 7));
    for (const key of ['remove.txt', 'sub/remove 2.txt', 'remove-changed.txt', 'foreign.txt']) await remove(key);
    await put(destClient, 'live-dst', 'remove-changed.txt', Buffer.from('changed at the destination since'));

    expect((await runCli(['catalog', '--from', 's3://live', '--state', state(), '--quiet'], { env })).code).toBe(0);
    const status = await runCli(['status', '--state', state(), '--json'], { env });
    const summary = JSON.parse(status.stdout) as { lastCatalogPass: unknown };
    expect(summary.lastCatalogPass).toMatchObject({
      pass: 2,
      new: { objects: 1, bytes: 700 },
      modified: { objects: 1, bytes: 250 },
      gone: { objects: 4, bytes: 300 + 400 + 500 + 600 },
    });
    const text = await runCli(['status', '--state', state()], { env });
    expect(text.stdout).toMatch(/Last catalog pass \(#2.*\): new 1 \(700 B\), modified 1 \(250 B\), gone 4/);

    const planned = await runCli(['plan', '--state', state(), '--delete-gone', '--json'], { env });
    const deletions = (JSON.parse(planned.stdout) as { deletions: { objects: number; keys: string[] } }).deletions;
    expect(deletions.keys).toEqual(['remove-changed.txt', 'remove.txt', 'sub/remove 2.txt']);
    const dry = await runCli(['copy', '--to', 's3://live-dst', '--state', state(), '--dry-run', '--delete-gone'], { env });
    expect(dry.stdout).toMatch(/Deletions \(--delete-gone\): 3 objects/);
    expect(dry.stdout).toMatch(/would delete sub\/remove 2\.txt/);

    const proxied = env;
    destProxy.reset();
    const rows = readRows(state());
    const capped = await runCli(['copy', '--to', 's3://live-dst', '--state', state(), '--delete-gone', '--max-delete', '2'], { env: proxied });
    expect(capped.code, capped.stderr).toBe(1);
    expect(capped.stderr).toMatch(/would delete 3 objects .* more than --max-delete 2: nothing was copied or deleted/);
    expect(destProxy.log().filter((entry) => WRITES.has(entry.method))).toEqual([]);
    expect(readRows(state())).toEqual(rows);

    // Two worker processes: the deletions run once, in the parent, after the copies.
    const logFile = work.file('cut.ndjson');
    const cut = await runCli(
      ['copy', '--to', 's3://live-dst', '--state', state(), '--workers', '2', '--delete-gone', '--max-delete', '3', '--log-format', 'json', '--log-file', logFile],
      { env: proxied },
    );
    expect(cut.code, cut.stderr).toBe(0);
    expect(cut.stderr).toMatch(/left alone: remove-changed\.txt: not deleted: the destination object has ETag/);
    expect(destProxy.counts().DeleteObject).toBe(2);
    // The log names every deletion and every object left alone, before run-end.
    const logged = fs.readFileSync(logFile, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(logged.filter((line) => line.event === 'object-deleted').map((line) => line.destKey).sort()).toEqual(['remove.txt', 'sub/remove 2.txt']);
    expect(logged.filter((line) => line.event === 'object-left-alone').map((line) => line.destKey)).toEqual(['remove-changed.txt']);
    expect(logged.at(-1)).toMatchObject({ event: 'run-end', exitCode: 0 });

    // The destination is the source, but for the two objects s3migrate did not write (left alone).
    const destination = await bucketHashes(destClient, 'live-dst');
    const others = ['foreign.txt', 'remove-changed.txt'];
    for (const key of others) expect(destination.has(key), key).toBe(true);
    for (const key of others) destination.delete(key);
    expect(destination).toEqual(await bucketHashes(sourceClient, 'live'));

    const after = rowsByKey(state());
    expect(after.get('remove.txt')).toMatchObject({ status: 'deleted' });
    expect(after.get('sub/remove 2.txt')).toMatchObject({ status: 'deleted' });
    expect(after.get('remove-changed.txt')).toMatchObject({ status: 'gone' });
    expect(after.get('remove-changed.txt')!.error).toMatch(/written or changed by someone else/);
    expect(after.get('foreign.txt')).toMatchObject({ status: 'gone' });
    expect(after.get('new.txt')).toMatchObject({ status: 'done' });
    expect(after.get('change.txt')).toMatchObject({ status: 'done', size: 250 });

    // Nothing more to delete: a second cut-over sends no DELETE.
    destProxy.reset();
    const again = await runCli(['copy', '--to', 's3://live-dst', '--state', state(), '--delete-gone', '--quiet'], { env: proxied });
    expect(again.code, again.stderr).toBe(0);
    expect(destProxy.counts().DeleteObject ?? 0).toBe(0);
    expect((await runCli(['status', '--state', state()], { env })).stdout).toMatch(/Deleted: +2 objects/);
  });
});

describe('--delete-gone at scale', () => {
  it('checks and deletes several objects at once (--concurrency), each right after its own HeadObject', async () => {
    const state = work.file('many.db');
    const keys = Array.from({ length: 8 }, (_, i) => `gone/${i} file.txt`);
    await seed(sourceClient, 'many', [...keys, 'stays.txt'].map((key, i) => ({ key, body: bytes(100 + i) })));
    // Deletions are held at the proxy until a second one arrives (or 0.5 s pass, for a client that sends one
    // at a time): how many are in flight together is counted, not timed.
    let held = 0;
    let most = 0;
    const waiting: Array<() => void> = [];
    const destProxy = await proxy(dest.endpoint, {
      onRequest: async (info): Promise<ProxyDecision> => {
        if (info.op !== 'DeleteObject') return 'pass';
        held += 1;
        most = Math.max(most, held);
        await new Promise<void>((resolve) => {
          waiting.push(resolve);
          if (held >= 2) for (const release of waiting.splice(0)) release();
          else setTimeout(resolve, 500);
        });
        held -= 1;
        return 'pass';
      },
    });
    const env = s3rverEnv(source.endpoint, destProxy.endpoint);
    expect((await runCli(['catalog', '--from', 's3://many', '--state', state, '--quiet'], { env })).code).toBe(0);
    expect((await runCli(['copy', '--to', 's3://many-dst', '--state', state, '--quiet'], { env })).code).toBe(0);
    await Promise.all(keys.map((key) => sourceClient.send(new DeleteObjectCommand({ Bucket: 'many', Key: key }))));
    expect((await runCli(['catalog', '--from', 's3://many', '--state', state, '--quiet'], { env })).code).toBe(0);

    destProxy.reset();
    const cut = await runCli(['copy', '--to', 's3://many-dst', '--state', state, '--delete-gone', '--concurrency', '4', '--quiet'], { env });
    expect(cut.code, cut.stderr).toBe(0);
    expect(most).toBeGreaterThanOrEqual(2);
    expect(most).toBeLessThanOrEqual(4);
    const log = destProxy.log();
    // (The copy's bucket check also deletes the probe object it wrote.)
    const isGone = (entry: { op: string; path: string }): boolean => entry.op === 'DeleteObject' && entry.path.startsWith('/many-dst/gone/');
    // Every gone key deleted. Distinct keys are counted: s3rver sometimes answers 500 to one of two
    // deletions in the same directory at once, and the client retries it (seen: 500, then 204).
    expect(new Set(log.filter(isGone).map((entry) => entry.path)).size).toBe(keys.length);
    // Each deletion comes after a HeadObject of its own key.
    for (const [i, entry] of log.entries()) {
      if (!isGone(entry)) continue;
      expect(log.slice(0, i).some((before) => before.op === 'HeadObject' && before.path === entry.path), entry.path).toBe(true);
    }
    expect([...(await bucketHashes(destClient, 'many-dst')).keys()]).toEqual(['stays.txt']);
    const rows = rowsByKey(state);
    for (const key of keys) expect(rows.get(key)).toMatchObject({ status: 'deleted' });
  });
});

describe('a filtered catalog pass', () => {
  it('records only matching objects and marks gone only within its --include/--exclude scope', async () => {
    const env = s3rverEnv(source.endpoint, dest.endpoint);
    const state = work.file('scoped.db');
    await seed(sourceClient, 'scoped', [
      { key: 'photos/a.jpg', body: bytes(100) },
      { key: 'photos/b.jpg', body: bytes(5000) },
      { key: 'photos/c.jpg', body: bytes(6000) },
      { key: 'docs/d.txt', body: bytes(7000) },
    ]);
    expect((await runCli(['catalog', '--from', 's3://scoped', '--state', state, '--quiet'], { env })).code).toBe(0);
    await sourceClient.send(new DeleteObjectCommand({ Bucket: 'scoped', Key: 'photos/c.jpg' }));
    await sourceClient.send(new DeleteObjectCommand({ Bucket: 'scoped', Key: 'docs/d.txt' }));
    await seed(sourceClient, 'scoped', [
      { key: 'photos/e.jpg', body: bytes(8000) },
      { key: 'docs/f.txt', body: bytes(9000) },
    ]);

    // photos/a.jpg is listed but below --min-size: seen, not gone; docs/ is outside the scope.
    const pass = await runCli(['catalog', '--from', 's3://scoped', '--state', state, '--quiet', '--include', 'photos/**', '--min-size', '1KiB'], { env });
    expect(pass.code, pass.stderr).toBe(0);
    const status = Object.fromEntries(readRows(state).map((row) => [row.key, row.status]));
    expect(status).toEqual({
      'photos/a.jpg': 'pending',
      'photos/b.jpg': 'pending',
      'photos/c.jpg': 'gone',
      'photos/e.jpg': 'pending',
      'docs/d.txt': 'pending',
    });
    const summary = JSON.parse((await runCli(['status', '--state', state, '--json'], { env })).stdout) as { lastCatalogPass: { scope: string } };
    expect(summary.lastCatalogPass).toMatchObject({ pass: 2, new: { objects: 1, bytes: 8000 }, modified: { objects: 0 }, gone: { objects: 1, bytes: 6000 } });
    expect(JSON.parse(summary.lastCatalogPass.scope)).toEqual({ include: ['photos/**'], minSize: '1KiB' });
  });
});
