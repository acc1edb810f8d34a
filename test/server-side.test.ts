// Server-side copy on s3rver (which implements CopyObject): both sides on one endpoint, every object
// copied by the server itself, byte-exact with its headers and metadata, zero object bytes through the
// client (counted by a proxy); --server-side never streams; --server-side always across two endpoints is
// refused as invalid usage.
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3rverClient, startS3rver, type S3rverHandle } from '../scripts/servers/s3rver.js';
import { runCli, s3rverEnv } from './support/cli.js';
import { bytes, head, keyOfPath, MiB, readRows, seed, sha256, sha256Of, tempDir, teardown, type SeedObject } from './support/copy-fixtures.js';
import { startRequestProxy, type RequestProxy } from './support/request-proxy.js';

let server: S3rverHandle;
let other: S3rverHandle;
let client: S3Client;
let proxy: RequestProxy;
let work: Awaited<ReturnType<typeof tempDir>>;

const PLUS_KEY = 'dir/b c+d%e.bin';
const OBJECTS: SeedObject[] = [
  { key: 'a.txt', body: bytes(1000), headers: { ContentType: 'text/plain', Metadata: { origin: 'seed', 'two-words': 'hello world' } } },
  { key: PLUS_KEY, body: bytes(300_000), headers: { CacheControl: 'max-age=60', ContentDisposition: 'attachment' } },
  { key: 'dir/spaced name é.txt', body: bytes(5000), headers: { ContentLanguage: 'fr' } },
  { key: 'big/c.bin', body: bytes(12 * MiB), headers: { ContentType: 'application/x-big' } },
  { key: 'zero', body: Buffer.alloc(0) },
];

beforeAll(async () => {
  [server, other] = await Promise.all([
    startS3rver({ buckets: ['src', 'dst', 'dst-never'] }),
    startS3rver({ buckets: ['elsewhere'] }),
  ]);
  client = s3rverClient(server.endpoint);
  // Both sides go through one proxy to one server: the same endpoint, every byte counted.
  proxy = await startRequestProxy(server.endpoint);
  work = await tempDir('server-side');
  await seed(client, 'src', OBJECTS);
});

afterAll(() => teardown({ proxies: [proxy], clients: [client], servers: [server, other], work }));

async function catalogInto(name: string): Promise<string> {
  const state = work.file(name);
  const result = await runCli(['catalog', '--from', 's3://src', '--state', state, '--quiet'], {
    env: s3rverEnv(proxy.endpoint, proxy.endpoint),
  });
  expect(result.code, result.stderr).toBe(0);
  return state;
}

describe('server-side copy on one endpoint', () => {
  it('copies every object inside the server: byte-exact, headers and metadata kept, no object bytes through the client', async () => {
    const state = await catalogInto('same.db');
    proxy.reset();
    const result = await runCli(['copy', '--to', 's3://dst', '--state', state, '--quiet'], { env: s3rverEnv(proxy.endpoint, proxy.endpoint) });
    expect(result.code, result.stderr).toBe(0);
    const log = proxy.log();
    expect(log.filter((e) => e.op === 'CopyObject')).toHaveLength(OBJECTS.length);
    // s3rver decodes the copy source with decodeURI, which leaves %2B (+) undecoded: it answers NoSuchKey
    // for that key, the source confirms the key is there, and that one object is streamed instead.
    const streamed = log.filter((e) => ['GetObject', 'PutObject', 'UploadPart'].includes(e.op)).map((e) => keyOfPath(e.path, e.op === 'GetObject' ? 'src' : 'dst'));
    expect([...new Set(streamed)]).toEqual([PLUS_KEY]);
    // What else crossed the client: requests without bodies, small XML answers; never the 12 MiB.
    const others = log.filter((e) => !e.path.endsWith(encodeURIComponent(PLUS_KEY).replace(/%2F/g, '/')) || e.op === 'CopyObject');
    const bytesThrough = others.reduce((sum, e) => sum + e.requestBytes + e.responseBytes, 0);
    expect(bytesThrough).toBeLessThan(8 * 1024);
    for (const object of OBJECTS) {
      expect(await sha256Of(client, 'dst', object.key), object.key).toBe(sha256(object.body));
      const [from, to] = await Promise.all([head(client, 'src', object.key), head(client, 'dst', object.key)]);
      expect(
        { type: to.ContentType, cache: to.CacheControl, disposition: to.ContentDisposition, meta: to.Metadata, etag: to.ETag },
        object.key,
      ).toEqual({ type: from.ContentType, cache: from.CacheControl, disposition: from.ContentDisposition, meta: from.Metadata, etag: from.ETag });
    }
    for (const row of readRows(state)) {
      const record = row as typeof row & { copy_method: string };
      expect({ status: row.status, evidence: row.evidence, method: record.copy_method }, row.key).toEqual({
        status: 'done',
        evidence: 'md5',
        method: row.key === PLUS_KEY ? 'stream' : 'server-side',
      });
    }
    const verify = await runCli(['verify', '--state', state], { env: s3rverEnv(proxy.endpoint, proxy.endpoint) });
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });

  it('--server-side never streams on the same endpoint', async () => {
    const state = await catalogInto('never.db');
    proxy.reset();
    const result = await runCli(['copy', '--to', 's3://dst-never', '--state', state, '--quiet', '--server-side', 'never'], {
      env: s3rverEnv(proxy.endpoint, proxy.endpoint),
    });
    expect(result.code, result.stderr).toBe(0);
    expect(proxy.log().filter((e) => e.op === 'CopyObject')).toEqual([]);
    expect(proxy.log().filter((e) => e.op === 'GetObject').length).toBeGreaterThanOrEqual(OBJECTS.length);
    for (const row of readRows(state)) expect((row as typeof row & { copy_method: string }).copy_method, row.key).toBe('stream');
  });

  it('--server-side always across two endpoints is invalid usage (exit 2), the state untouched', async () => {
    const state = await catalogInto('always.db');
    const result = await runCli(['copy', '--to', 's3://elsewhere', '--state', state, '--server-side', 'always'], {
      env: s3rverEnv(proxy.endpoint, other.endpoint),
    });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toMatch(/--server-side always needs both sides on one endpoint/);
    expect(readRows(state).every((row) => row.status === 'pending')).toBe(true);
  });
});
