// copy --sort: with one object in flight, the destination sees the objects' writes (PutObject, or
// CreateMultipartUpload for a multipart one) in exactly the chosen order.
import { copyFileSync, existsSync } from 'node:fs';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3rverClient, startS3rver, type S3rverHandle } from '../scripts/servers/s3rver.js';
import { runCli, s3rverEnv } from './support/cli.js';
import {
  bytes,
  listKeys,
  MiB,
  readRows,
  seed,
  sha256,
  sha256Of,
  sleep,
  tempDir,
  writtenKeys,
  type SeedObject,
  teardown,
} from './support/copy-fixtures.js';
import { startRequestProxy, type RequestProxy } from './support/request-proxy.js';

const ORDERS = ['key', 'oldest', 'newest', 'smallest', 'largest'] as const;

// Seeded in this order, 1.1 s apart (s3rver's LastModified has 1-second resolution). The sizes are
// chosen so that the five orders are five different permutations; "a" is multipart at --part-size 5MiB.
const OBJECTS: SeedObject[] = [
  { key: 'c', body: bytes(300) },
  { key: 'a', body: bytes(6 * MiB) },
  { key: 'd', body: bytes(200) },
  { key: 'b', body: bytes(100) },
];

const EXPECTED: Record<(typeof ORDERS)[number], string[]> = {
  key: ['a', 'b', 'c', 'd'],
  oldest: ['c', 'a', 'd', 'b'],
  newest: ['b', 'd', 'a', 'c'],
  smallest: ['b', 'd', 'c', 'a'],
  largest: ['a', 'c', 'd', 'b'],
};

let source: S3rverHandle;
let dest: S3rverHandle;
let sourceClient: S3Client;
let destClient: S3Client;
let work: Awaited<ReturnType<typeof tempDir>>;
let proxy: RequestProxy;
let template: string;

beforeAll(async () => {
  [source, dest] = await Promise.all([
    startS3rver({ buckets: ['src'] }),
    startS3rver({ buckets: ORDERS.map((order) => `dst-${order}`) }),
  ]);
  sourceClient = s3rverClient(source.endpoint);
  destClient = s3rverClient(dest.endpoint);
  proxy = await startRequestProxy(dest.endpoint);
  work = await tempDir('order');

  for (const [i, object] of OBJECTS.entries()) {
    if (i > 0) await sleep(1100);
    await seed(sourceClient, 'src', [object]);
  }
  // One catalog; each order then copies from its own copy of the state file.
  template = work.file('template.db');
  const catalog = await runCli(['catalog', '--from', 's3://src', '--state', template, '--quiet'], {
    env: s3rverEnv(source.endpoint, dest.endpoint),
  });
  expect(catalog.code, catalog.stderr).toBe(0);
});

afterAll(() => teardown({ proxies: [proxy], clients: [sourceClient, destClient], servers: [source, dest], work }));

describe('copy --sort', () => {
  it('the catalog holds four distinct modification times and sizes (so every order is well defined)', () => {
    const rows = readRows(template);
    expect(rows.map((r) => r.key)).toEqual(['a', 'b', 'c', 'd']);
    expect(new Set(rows.map((r) => r.last_modified)).size).toBe(4);
    expect(new Set(rows.map((r) => r.size)).size).toBe(4);
    // The catalog's times follow the seeding order.
    const byTime = [...rows].sort((x, y) => x.last_modified.localeCompare(y.last_modified)).map((r) => r.key);
    expect(byTime).toEqual(OBJECTS.map((o) => o.key));
  });

  it.each(ORDERS)('--sort %s --concurrency 1 writes the objects in that order', async (order) => {
    const state = work.file(`${order}.db`);
    for (const suffix of ['', '-wal']) {
      if (existsSync(template + suffix)) copyFileSync(template + suffix, state + suffix);
    }
    proxy.reset();
    const bucket = `dst-${order}`;
    const copy = await runCli(
      ['copy', '--to', `s3://${bucket}`, '--state', state, '--sort', order, '--concurrency', '1', '--part-size', '5MiB', '--multipart-threshold', '5MiB', '--quiet'],
      { env: s3rverEnv(source.endpoint, proxy.endpoint) },
    );
    expect(copy.code, copy.stderr).toBe(0);

    expect(writtenKeys(proxy.log(), bucket)).toEqual(EXPECTED[order]);
    expect(proxy.log().filter((e) => e.op === 'CreateMultipartUpload')).toHaveLength(1);

    expect((await listKeys(destClient, bucket)).sort()).toEqual(['a', 'b', 'c', 'd']);
    for (const object of OBJECTS) {
      expect(await sha256Of(destClient, bucket, object.key), object.key).toBe(sha256(object.body));
    }
    expect(readRows(state).map((r) => r.status)).toEqual(['done', 'done', 'done', 'done']);
  });
});
