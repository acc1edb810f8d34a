// copy, end to end on real S3 endpoints (two s3rver instances): byte-exact copies with their headers
// around the multipart boundaries and with tricky keys, the state file's record of them, prefix
// mapping, and a second run that has nothing to do.
import { createHash } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3rverClient, startS3rver, type S3rverHandle } from '../scripts/servers/s3rver.js';
import { runCli, s3rverEnv } from './support/cli.js';
import {
  bytes,
  head,
  keyOfPath,
  listKeys,
  MiB,
  readRows,
  seed,
  sha256,
  sha256Of,
  tempDir,
  type SeedObject,
  teardown,
} from './support/copy-fixtures.js';
import { startRequestProxy, type RequestProxy } from './support/request-proxy.js';

const PART_SIZE = 8 * MiB; // the default --part-size, also passed as --multipart-threshold

let source: S3rverHandle;
let dest: S3rverHandle;
let sourceClient: S3Client;
let destClient: S3Client;
let work: Awaited<ReturnType<typeof tempDir>>;
const proxies: RequestProxy[] = [];

beforeAll(async () => {
  [source, dest] = await Promise.all([
    startS3rver({ buckets: ['src', 'media'] }),
    startS3rver({ buckets: ['dst', 'media-dst'] }),
  ]);
  sourceClient = s3rverClient(source.endpoint);
  destClient = s3rverClient(dest.endpoint);
  work = await tempDir('copy');
});

afterAll(() => teardown({ proxies, clients: [sourceClient, destClient], servers: [source, dest], work }));

async function destProxy(): Promise<RequestProxy> {
  const proxy = await startRequestProxy(dest.endpoint);
  proxies.push(proxy);
  return proxy;
}

function headersFor(name: string, n: number): SeedObject['headers'] {
  return {
    ContentType: n % 2 ? `application/x-${name}` : 'text/plain; charset=utf-8',
    ContentEncoding: n % 2 ? 'gzip' : 'identity',
    ContentDisposition: `attachment; filename="${name}.bin"`,
    ContentLanguage: n % 2 ? 'de-CH' : 'en-GB',
    CacheControl: `max-age=${1000 + n}, public`,
    Expires: new Date(Date.UTC(2031, n % 12, 1 + n, 12, 30, 0)),
    Metadata: { origin: `seed-${name}`, index: String(n), 'two-words': 'hello world' },
  };
}

const SIZES: Array<[string, number]> = [
  ['0B', 0],
  ['1B', 1],
  ['5MiB-1', 5 * MiB - 1],
  ['5MiB', 5 * MiB],
  ['5MiB+1', 5 * MiB + 1],
  ['8MiB-1', 8 * MiB - 1],
  ['8MiB', 8 * MiB],
  ['8MiB+1', 8 * MiB + 1],
  ['40MiB', 40 * MiB],
];

const TRICKY_KEYS = [
  'unicode/日本語-ñandú-é.txt',
  'unicode/emoji 🎉 ü.bin',
  'with space/file name with  two spaces.txt',
  'plus+sign+key.txt',
  'percent%20literal%25and%.txt',
  "punctuation/&$@=;:,~!'()[]*.txt",
  'folder/',
  'folder/inside.txt',
];

describe('copy of a corpus around the multipart boundaries', () => {
  const corpus: SeedObject[] = [
    ...SIZES.map(([name, size], n) => ({ key: `sizes/${name}`, body: bytes(size), headers: headersFor(name, n) })),
    ...TRICKY_KEYS.map((key, n) => ({
      key,
      body: key.endsWith('/') ? Buffer.alloc(0) : bytes(100 + n),
      // Half of them carry headers, half only the server's defaults.
      headers: n % 2 ? headersFor(`tricky${n}`, n) : undefined,
    })),
  ];
  const state = (): string => work.file('corpus.db');
  let proxy: RequestProxy;

  beforeAll(async () => {
    await seed(sourceClient, 'src', corpus, 4);
  });

  it('copies every object byte for byte, with its headers and user metadata, and records each as done', async () => {
    const env = s3rverEnv(source.endpoint, dest.endpoint);
    // One lister: s3rver does not list in byte order ("sizes/5MiB-1" before "sizes/5MiB"), which listing
    // in parts refuses (see test/catalog-parts.test.ts); the copy is what this test is about.
    const catalog = await runCli(['catalog', '--from', 's3://src', '--state', state(), '--quiet', '--list-concurrency', '1'], { env });
    expect(catalog.code, catalog.stderr).toBe(0);

    proxy = await destProxy();
    const copy = await runCli(['copy', '--to', 's3://dst', '--state', state(), '--concurrency', '4', '--multipart-threshold', '8MiB', '--quiet'], {
      env: s3rverEnv(source.endpoint, proxy.endpoint),
    });
    expect(copy.code, copy.stderr).toBe(0);

    // Exactly the source's keys arrived, each byte-exact (sha256 of what each side serves).
    const expectedKeys = corpus.map((o) => o.key).sort();
    expect((await listKeys(destClient, 'dst')).sort()).toEqual(expectedKeys);
    for (const object of corpus) {
      const [fromSource, fromDest] = await Promise.all([
        sha256Of(sourceClient, 'src', object.key),
        sha256Of(destClient, 'dst', object.key),
      ]);
      expect(fromSource, object.key).toBe(sha256(object.body));
      expect(fromDest, object.key).toBe(fromSource);
    }

    // Headers and user metadata are the source's.
    for (const object of corpus) {
      const [s, d] = await Promise.all([head(sourceClient, 'src', object.key), head(destClient, 'dst', object.key)]);
      const pick = (h: typeof s) => ({
        ContentLength: h.ContentLength,
        ContentType: h.ContentType,
        ContentEncoding: h.ContentEncoding,
        ContentDisposition: h.ContentDisposition,
        ContentLanguage: h.ContentLanguage,
        CacheControl: h.CacheControl,
        Expires: h.Expires?.toISOString(),
        Metadata: h.Metadata,
      });
      expect(pick(d), object.key).toEqual(pick(s));
      if (object.headers) {
        // The seed really set them (so equality above is not two empty sets).
        expect(s.ContentDisposition, object.key).toBe(object.headers.ContentDisposition);
        expect(s.CacheControl, object.key).toBe(object.headers.CacheControl);
        expect(s.Expires?.toISOString(), object.key).toBe((object.headers.Expires as Date).toISOString());
        expect(d.Metadata, object.key).toEqual(object.headers.Metadata);
      }
    }

    // Up to one part: one PutObject; above: a multipart upload, completed, none aborted.
    const log = proxy.log();
    const keysOf = (op: string): string[] =>
      log.filter((e) => e.op === op).map((e) => keyOfPath(e.path, 'dst')).sort();
    expect(keysOf('PutObject')).toEqual(corpus.filter((o) => o.body.length <= PART_SIZE).map((o) => o.key).sort());
    const multipart = corpus.filter((o) => o.body.length > PART_SIZE).map((o) => o.key).sort();
    expect(multipart).toEqual(['sizes/40MiB', 'sizes/8MiB+1']);
    expect(keysOf('CreateMultipartUpload')).toEqual(multipart);
    expect(keysOf('CompleteMultipartUpload')).toEqual(multipart);
    expect(keysOf('UploadPart').filter((k) => k === 'sizes/40MiB')).toHaveLength(5);
    expect(keysOf('UploadPart').filter((k) => k === 'sizes/8MiB+1')).toHaveLength(2);
    expect(keysOf('AbortMultipartUpload')).toEqual([]);

    // The state file: every row done, with where it went and how it was verified.
    const rows = readRows(state());
    expect(rows.map((r) => r.key).sort()).toEqual(expectedKeys);
    for (const row of rows) {
      const object = corpus.find((o) => o.key === row.key)!;
      const d = await head(destClient, 'dst', row.key);
      expect(
        { status: row.status, dest_key: row.dest_key, size: row.size, error: row.error, attempts: row.attempts },
        row.key,
      ).toEqual({ status: 'done', dest_key: row.key, size: object.body.length, error: null, attempts: 1 });
      // s3rver gives a multipart upload the whole object's MD5 as ETag (AWS would give md5-of-parts-N),
      // so every row here is verified by MD5: the ETag the destination holds is the MD5 of the source bytes.
      expect(row.evidence, row.key).toBe('md5');
      expect(row.dest_etag, row.key).toBe(createHash('md5').update(object.body).digest('hex'));
      expect(d.ETag, row.key).toBe(`"${row.dest_etag}"`);
      expect(row.copied_at, row.key).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    }

    const status = await runCli(['status', '--state', state(), '--json'], { env });
    expect(status.code, status.stderr).toBe(0);
    const summary = JSON.parse(status.stdout) as { objectsTotal: number; objectsDone: number; percentDone: number };
    expect(summary).toMatchObject({ objectsTotal: corpus.length, objectsDone: corpus.length, percentDone: 100 });
  });

  it('a second copy with nothing left to do exits 0 quickly and sends nothing', async () => {
    const before = readRows(state());
    expect(before.every((r) => r.status === 'done')).toBe(true);
    // The same proxy (the state file remembers the destination endpoint), with its counts cleared.
    proxy.reset();
    const started = Date.now();
    const copy = await runCli(['copy', '--to', 's3://dst', '--state', state(), '--quiet'], {
      env: s3rverEnv(source.endpoint, proxy.endpoint),
    });
    const elapsed = Date.now() - started;
    expect(copy.code, copy.stderr).toBe(0);
    expect(elapsed).toBeLessThan(10_000);
    const counts = proxy.counts();
    for (const op of ['PutObject', 'CreateMultipartUpload', 'UploadPart', 'CompleteMultipartUpload', 'CopyObject']) {
      expect(counts[op] ?? 0, op).toBe(0);
    }
    // Nothing in the state file was redone.
    expect(readRows(state())).toEqual(before);
  });
});

describe('prefix mapping', () => {
  const objects: SeedObject[] = [
    { key: 'photos/', body: Buffer.alloc(0) },
    { key: 'photos/a.jpg', body: bytes(300) },
    { key: 'photos/2020/b c.jpg', body: bytes(301) },
    { key: 'photos/2020/deep/ü+%.jpg', body: bytes(302) },
    // Same leading characters, outside the prefix "photos/": never copied.
    { key: 'photos', body: bytes(10) },
    { key: 'photosynthesis.txt', body: bytes(11) },
    { key: 'photos-old/x.jpg', body: bytes(12) },
    { key: 'other/photos/y.jpg', body: bytes(13) },
  ];

  it('catalog --from s3://media/photos/ + copy --to s3://media-dst/archive/ writes exactly archive/<rest>', async () => {
    await seed(sourceClient, 'media', objects);
    const state = work.file('prefix.db');
    const env = s3rverEnv(source.endpoint, dest.endpoint);
    const catalog = await runCli(['catalog', '--from', 's3://media/photos/', '--state', state, '--quiet'], { env });
    expect(catalog.code, catalog.stderr).toBe(0);
    const copy = await runCli(['copy', '--to', 's3://media-dst/archive/', '--state', state, '--quiet'], { env });
    expect(copy.code, copy.stderr).toBe(0);

    const inPrefix = objects.filter((o) => o.key.startsWith('photos/'));
    const expected = new Map(inPrefix.map((o) => [`archive/${o.key.slice('photos/'.length)}`, o]));
    expect([...expected.keys()]).toContain('archive/');
    expect((await listKeys(destClient, 'media-dst')).sort()).toEqual([...expected.keys()].sort());
    for (const [destKey, object] of expected) {
      expect(await sha256Of(destClient, 'media-dst', destKey), destKey).toBe(sha256(object.body));
    }

    const rows = readRows(state);
    expect(rows.map((r) => r.key).sort()).toEqual(inPrefix.map((o) => o.key).sort());
    for (const row of rows) {
      expect(row.status, row.key).toBe('done');
      expect(row.dest_key, row.key).toBe(`archive/${row.key.slice('photos/'.length)}`);
    }
  });
});
