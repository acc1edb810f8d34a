// Compatibility with Ceph RADOS Gateway (RGW), end to end with the built CLI: one single-node Ceph
// cluster for the whole file (test/servers/rgw.sh) with two S3 users that cannot see each other's
// buckets, plus one s3rver.
//
// - credentials: a migration between the two users works only because each side uses its own keys;
//   swapped (or the same on both sides) it stops with exit 1 naming the side and its variables.
// - the matrix s3rver -> RGW, RGW -> s3rver, RGW user A -> RGW user B: a corpus around the multipart
//   boundaries with tricky keys and headers, copied with a kill -9 mid-run and a rerun; every object
//   byte-exact with its headers, every row done, `verify` exit 0, no multipart upload left behind.
//
// Runs in `npm test` when Ceph is installed (test/servers/rgw.sh install), else `npm run test:compat`
// says why it cannot. RGW differences this covers: an empty ETag from CompleteMultipartUpload (we
// confirm with HeadObject: md5-N), error bodies with an empty Message (we report code and HTTP status),
// 411 MissingContentLength for streamed bodies (we send buffers of known length), keys `a//b`, `/x` and
// 1,024 bytes long (s3rver cannot store those, so only RGW -> RGW has them).
import { createHash } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import {
  CreateBucketCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3rverClient, startS3rver, type S3rverHandle } from '../../scripts/servers/s3rver.js';
import { startRgw, type RgwHandle, type RgwUser } from '../servers/rgw.js';
import { runCli, startCli } from '../support/cli.js';
import {
  bytes,
  eachLimit,
  head,
  listKeys,
  MiB,
  readObject,
  readRows,
  sha256,
  tempDir,
  type SeedObject,
} from '../support/copy-fixtures.js';
import { multipartEtagOf as multipartEtag } from '../support/copy-fixtures.js';
import { startRequestProxy, type RequestProxy } from '../support/request-proxy.js';
import { S3Bucket, type SourceObject } from '../../src/s3/bucket.js';
import { createS3Client } from '../../src/s3/client.js';
import { classifyError } from '../../src/s3/errors.js';
import { leanPathOf } from '../../src/s3/lean-path.js';

// Fixed test keys (radosgw-admin user create --access-key --secret-key).
const USER_A = { uid: 'migrate-source', access: 'SOURCEUSERACCESSKEY1', secret: 'source-user-secret-key-0000000000000000' };
const USER_B = { uid: 'migrate-dest', access: 'DESTUSERACCESSKEY000', secret: 'dest-user-secret-key-00000000000000000000' };

let rgw: RgwHandle;
let s3rver: S3rverHandle;
let userA: RgwUser;
let userB: RgwUser;
let clientA: S3Client;
let clientB: S3Client;
let s3rverS3: S3Client;
let work: Awaited<ReturnType<typeof tempDir>>;
const proxies: RequestProxy[] = [];

function rgwClient(user: RgwUser): S3Client {
  return new S3Client({
    endpoint: rgw.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: user.accessKeyId, secretAccessKey: user.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

beforeAll(async () => {
  const started = Date.now();
  [rgw, s3rver, work] = await Promise.all([
    startRgw(),
    startS3rver({ buckets: ['s3rver-src', 'from-rgw'] }),
    tempDir('rgw'),
  ]);
  userA = await rgw.createUser(USER_A.uid, USER_A.access, USER_A.secret);
  userB = await rgw.createUser(USER_B.uid, USER_B.access, USER_B.secret);
  clientA = rgwClient(userA);
  clientB = rgwClient(userB);
  s3rverS3 = s3rverClient(s3rver.endpoint);
  // Every bucket belongs to one user; the other one has no grant on it.
  for (const bucket of ['a-creds', 'a-common', 'a-full']) await clientA.send(new CreateBucketCommand({ Bucket: bucket }));
  for (const bucket of ['b-creds', 'b-from-s3rver', 'b-from-rgw']) await clientB.send(new CreateBucketCommand({ Bucket: bucket }));
  console.info(`rgw: cluster started in ${(rgw.startMs / 1000).toFixed(1)} s, ready with users and buckets in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}, 180_000);

afterAll(async () => {
  await Promise.all(proxies.map((proxy) => proxy.stop()));
  for (const client of [clientA, clientB, s3rverS3]) client?.destroy();
  await Promise.all([rgw?.stop(), s3rver?.stop()]);
  await work?.remove();
});

/** Environment variables of one side of a migration. */
function sideEnv(prefix: 'SOURCE' | 'DEST', endpoint: string, keys: { accessKeyId: string; secretAccessKey: string }): Record<string, string> {
  return {
    [`${prefix}_ENDPOINT`]: endpoint,
    [`${prefix}_AWS_ACCESS_KEY_ID`]: keys.accessKeyId,
    [`${prefix}_AWS_SECRET_ACCESS_KEY`]: keys.secretAccessKey,
    [`${prefix}_AWS_REGION`]: 'us-east-1',
  };
}

const S3RVER_KEYS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

async function seedObjects(client: S3Client, bucket: string, objects: readonly SeedObject[], multipartOver = Infinity): Promise<void> {
  await eachLimit(objects, 4, async (object) => {
    if (object.body.length > multipartOver) {
      // Uploaded in 5 MiB parts: its ETag is md5-of-parts-N, not the MD5 of its bytes.
      const upload = new Upload({
        client,
        params: { Bucket: bucket, Key: object.key, Body: object.body, ...object.headers },
        partSize: 5 * MiB,
        queueSize: 2,
      });
      await upload.done();
    } else {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: object.key, Body: object.body, ...object.headers }));
    }
  });
}

describe('two RGW users, each with their own bucket', () => {
  // More than the copy engine's streak of refusals (10) that stops a run whose credentials fail everything.
  const objects: SeedObject[] = Array.from({ length: 14 }, (_, i) => ({ key: `doc-${i}.txt`, body: bytes(100 + i) }));
  const good = (): Record<string, string> => ({
    ...sideEnv('SOURCE', rgw.endpoint, userA),
    ...sideEnv('DEST', rgw.endpoint, userB),
  });
  let state: string;

  beforeAll(async () => {
    await seedObjects(clientA, 'a-creds', objects);
    state = work.file('creds.db');
  });

  it("neither user can read or write the other's bucket", async () => {
    const denied = async (promise: Promise<unknown>): Promise<string> => {
      const error = (await promise.then(
        () => undefined,
        (e: unknown) => e,
      )) as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
      expect(error, 'the request succeeded').toBeDefined();
      return `${error!.name} ${error!.$metadata?.httpStatusCode}`;
    };
    expect(await denied(clientB.send(new ListObjectsV2Command({ Bucket: 'a-creds' })))).toBe('AccessDenied 403');
    expect(await denied(readObject(clientB, 'a-creds', 'doc-0.txt'))).toBe('AccessDenied 403');
    expect(
      await denied(clientA.send(new PutObjectCommand({ Bucket: 'b-creds', Key: 'x', Body: Buffer.from('x') }))),
    ).toBe('AccessDenied 403');
    expect(await denied(clientA.send(new ListObjectsV2Command({ Bucket: 'b-creds' })))).toBe('AccessDenied 403');
  });

  it('catalog with the destination user as source stops with exit 1, naming the source and its variables', async () => {
    const result = await runCli(['catalog', '--from', 's3://a-creds', '--state', state, '--quiet'], {
      env: { ...sideEnv('SOURCE', rgw.endpoint, userB), ...sideEnv('DEST', rgw.endpoint, userA) },
    });
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toMatch(/source refused our credentials for bucket "a-creds"/);
    // RGW's error body has an empty Message: the code and the status say what happened.
    expect(result.stderr).toMatch(/AccessDenied \(HTTP 403\)/);
    expect(result.stderr).not.toMatch(/UnknownError/);
    expect(result.stderr).toMatch(/SOURCE_AWS_ACCESS_KEY_ID/);
    expect(result.stderr).not.toContain(userB.secretAccessKey);
    expect(existsSync(state)).toBe(false); // a catalog that listed nothing leaves no state file
  });

  it('copy with swapped or shared credentials stops with exit 1 naming the refusing side; nothing is done', async () => {
    const catalog = await runCli(['catalog', '--from', 's3://a-creds', '--state', state, '--quiet'], { env: good() });
    expect(catalog.code, catalog.stderr).toBe(0);

    const cases = [
      // [source keys, destination keys, the side that refuses]
      [userB, userA, 'source'],
      [userB, userB, 'source'],
      [userA, userA, 'destination'],
    ] as const;
    for (const [sourceUser, destUser, side] of cases) {
      const result = await runCli(['copy', '--to', 's3://b-creds', '--state', state, '--quiet', '--concurrency', '4'], {
        env: { ...sideEnv('SOURCE', rgw.endpoint, sourceUser), ...sideEnv('DEST', rgw.endpoint, destUser) },
      });
      const label = `${sourceUser.uid} -> ${destUser.uid}`;
      expect(result.code, `${label}: ${result.stderr}`).toBe(1);
      const vars = side === 'source' ? 'SOURCE' : 'DEST';
      const bucket = side === 'source' ? 'a-creds' : 'b-creds';
      expect(result.stderr, label).toContain(`The ${side} refused our credentials for bucket "${bucket}"`);
      expect(result.stderr, label).toMatch(/AccessDenied \(HTTP 403\)/);
      expect(result.stderr, label).toContain(`${vars}_AWS_ACCESS_KEY_ID`);
      expect(result.stderr, label).not.toMatch(/UnknownError/);
      for (const user of [userA, userB]) expect(result.stderr, label).not.toContain(user.secretAccessKey);
      expect(readRows(state).filter((row) => row.status === 'done'), label).toEqual([]);
      expect(await listKeys(clientB, 'b-creds'), label).toEqual([]);
    }
  });

  it('copy with each side on its own credentials copies everything', async () => {
    const copy = await runCli(['copy', '--to', 's3://b-creds', '--state', state, '--quiet', '--concurrency', '4'], {
      env: good(),
    });
    expect(copy.code, copy.stderr).toBe(0);
    expect((await listKeys(clientB, 'b-creds')).sort()).toEqual(objects.map((o) => o.key).sort());
    for (const object of objects) {
      expect(sha256(await readObject(clientB, 'b-creds', object.key)), object.key).toBe(sha256(object.body));
    }
    expect(readRows(state).every((row) => row.status === 'done')).toBe(true);
  });
});

// --- the matrix -----------------------------------------------------------------------------------

function headersFor(name: string, n: number): SeedObject['headers'] {
  return {
    ContentType: n % 2 ? `application/x-${name}` : 'text/plain; charset=utf-8',
    CacheControl: `max-age=${1000 + n}, public`,
    ContentDisposition: `attachment; filename="${name}.bin"`,
    ContentLanguage: n % 2 ? 'de-CH' : 'en-GB',
    Metadata: { origin: `seed-${name}`, index: String(n), 'two-words': 'hello world' },
  };
}

const SIZES: Array<[string, number]> = [
  ['0B', 0],
  ['1B', 1],
  ['5MiB-1', 5 * MiB - 1],
  ['5MiB+1', 5 * MiB + 1],
  ['8MiB-1', 8 * MiB - 1],
  ['8MiB+1', 8 * MiB + 1],
  ['20MiB', 20 * MiB],
];

const TRICKY_KEYS = [
  'unicode/日本語-ñandú-é.txt',
  'unicode/emoji 🎉 ü.bin',
  'with space/two  spaces.txt',
  'plus+sign+key.txt',
  'percent%20literal%25and%.txt',
  "punctuation/&$@=;:,~!'()[]*.txt",
  'folder/',
];

/** Keys s3rver cannot store (it maps keys to file paths). */
const RGW_ONLY_KEYS = ['a//b', '/leading-slash.txt', `long/${'k'.repeat(1024 - 'long/'.length - 4)}.txt`];

const COMMON: SeedObject[] = [
  ...SIZES.map(([name, size], n) => ({ key: `sizes/${name}`, body: bytes(size), headers: headersFor(name, n) })),
  ...TRICKY_KEYS.map((key, n) => ({
    key,
    body: key.endsWith('/') ? Buffer.alloc(0) : bytes(100 + n),
    headers: n % 2 ? headersFor(`tricky${n}`, n) : undefined,
  })),
];
const FULL: SeedObject[] = [
  ...COMMON,
  ...RGW_ONLY_KEYS.map((key, n) => ({ key, body: bytes(200 + n), headers: headersFor(`rgw${n}`, n) })),
];

interface Side {
  label: string;
  endpoint: () => string;
  keys: () => { accessKeyId: string; secretAccessKey: string };
  client: () => S3Client;
  bucket: string;
}

const S3RVER_SRC: Side = { label: 's3rver', endpoint: () => s3rver.endpoint, keys: () => S3RVER_KEYS, client: () => s3rverS3, bucket: 's3rver-src' };
const S3RVER_DST: Side = { ...S3RVER_SRC, bucket: 'from-rgw' };
const RGW_A_COMMON: Side = { label: 'RGW user A', endpoint: () => rgw.endpoint, keys: () => userA, client: () => clientA, bucket: 'a-common' };
const RGW_A_FULL: Side = { ...RGW_A_COMMON, bucket: 'a-full' };
const RGW_B_FROM_S3RVER: Side = { label: 'RGW user B', endpoint: () => rgw.endpoint, keys: () => userB, client: () => clientB, bucket: 'b-from-s3rver' };
const RGW_B_FROM_RGW: Side = { ...RGW_B_FROM_S3RVER, bucket: 'b-from-rgw' };

interface MatrixCase {
  name: string;
  source: Side;
  dest: Side;
  corpus: SeedObject[];
  partSize: number;
  /** Seed objects above this size as multipart uploads (an RGW source then has md5-N ETags). */
  seedMultipartOver?: number;
}

const MATRIX: MatrixCase[] = [
  // 5 MiB parts: 5MiB+1 goes as a 5 MiB part and a 1-byte last part (RGW's minimum part size is 5 MiB).
  { name: 's3rver -> RGW', source: S3RVER_SRC, dest: RGW_B_FROM_S3RVER, corpus: COMMON, partSize: 5 * MiB },
  { name: 'RGW -> s3rver', source: RGW_A_COMMON, dest: S3RVER_DST, corpus: COMMON, partSize: 8 * MiB, seedMultipartOver: 8 * MiB },
  { name: 'RGW user A -> RGW user B', source: RGW_A_FULL, dest: RGW_B_FROM_RGW, corpus: FULL, partSize: 8 * MiB, seedMultipartOver: 8 * MiB },
];

/** The multipart ETag (md5 of the parts' MD5s, -N) of `body` cut in `partSize` parts. */
let hasThresholdFlag = false;
beforeAll(async () => {
  hasThresholdFlag = (await runCli(['copy', '--help'])).stdout.includes('--multipart-threshold');
});

/** Objects the destination has stored before the kill. */
const KILL_AFTER_OBJECTS = 2;

describe.each(MATRIX)('$name', ({ name, source, dest, corpus, partSize, seedMultipartOver }) => {
  const state = (): string => work.file(`${name.replace(/\W+/g, '-')}.db`);
  let proxy: RequestProxy;
  let victim: ChildProcess | undefined;
  let objectsStored = 0;
  let killedOn: string | undefined;
  const env = (): Record<string, string> => ({
    ...sideEnv('SOURCE', source.endpoint(), source.keys()),
    ...sideEnv('DEST', proxy.endpoint, dest.keys()),
  });
  // Objects larger than one part go as multipart uploads (`--multipart-threshold` where the CLI has it).
  const args = (): string[] => [
    ...['copy', '--to', `s3://${dest.bucket}`, '--state', state(), '--concurrency', '2', '--sort', 'largest', '--quiet'],
    ...['--part-size', `${partSize / MiB}MiB`, ...(hasThresholdFlag ? ['--multipart-threshold', `${partSize / MiB}MiB`] : [])],
  ];

  beforeAll(async () => {
    await seedObjects(source.client(), source.bucket, corpus, seedMultipartOver);
    // In front of the destination: once it has stored two objects, the next write it answers (a part
    // of an open multipart upload, or a whole object) SIGKILLs the copy before the answer is passed on.
    // With 5 MiB parts that leaves a multipart upload open; with 8 MiB parts an object stored whose
    // row is still in flight.
    proxy = await startRequestProxy(dest.endpoint(), {
      onResponse: async (info, status) => {
        if (status !== 200 || !['PutObject', 'CompleteMultipartUpload', 'UploadPart'].includes(info.op)) return;
        const storedBefore = objectsStored;
        if (info.op !== 'UploadPart') objectsStored += 1;
        const child = victim;
        if (!child || storedBefore < KILL_AFTER_OBJECTS) return;
        victim = undefined;
        killedOn = info.op;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      },
    });
    proxies.push(proxy);
  }, 120_000);

  it('copies everything byte-exact with its headers, across a kill -9 mid-run and a rerun', async () => {
    const catalog = await runCli(['catalog', '--from', `s3://${source.bucket}`, '--state', state(), '--quiet'], { env: env() });
    expect(catalog.code, catalog.stderr).toBe(0);
    expect(readRows(state())).toHaveLength(corpus.length);

    // Largest first, two at a time.
    const run = startCli(args(), { env: env() });
    victim = run.child;
    const killed = await run.result;
    victim = undefined;
    expect(killed.signal, `the copy was not killed: ${killed.stderr}`).toBe('SIGKILL');
    const atKill = readRows(state());
    const doneAtKill = atKill.filter((row) => row.status === 'done').length;
    expect(doneAtKill).toBeGreaterThan(0);
    expect(doneAtKill).toBeLessThan(corpus.length);

    if (killedOn === 'UploadPart' && dest.label !== 's3rver') {
      const open = await dest.client().send(new ListMultipartUploadsCommand({ Bucket: dest.bucket }));
      expect(open.Uploads ?? [], 'no multipart upload was open at the kill').not.toEqual([]);
    }

    const rerun = await runCli(args(), { env: env() });
    expect(rerun.code, rerun.stderr).toBe(0);

    // Exactly the corpus, byte for byte.
    const client = dest.client();
    expect((await listKeys(client, dest.bucket)).sort()).toEqual(corpus.map((o) => o.key).sort());
    await eachLimit(corpus, 4, async (object) => {
      expect(sha256(await readObject(client, dest.bucket, object.key)), object.key).toBe(sha256(object.body));
    });

    // Headers and user metadata as seeded (or the server's defaults on both sides).
    const pick = (h: Awaited<ReturnType<typeof head>>) => ({
      ContentLength: h.ContentLength,
      ContentType: h.ContentType,
      CacheControl: h.CacheControl,
      ContentDisposition: h.ContentDisposition,
      ContentLanguage: h.ContentLanguage,
      Metadata: h.Metadata,
    });
    await eachLimit(corpus, 4, async (object) => {
      const [s, d] = await Promise.all([head(source.client(), source.bucket, object.key), head(client, dest.bucket, object.key)]);
      expect(pick(d), object.key).toEqual(pick(s));
      if (object.headers) {
        expect(d.ContentType, object.key).toBe(object.headers.ContentType);
        expect(d.CacheControl, object.key).toBe(object.headers.CacheControl);
        expect(d.ContentDisposition, object.key).toBe(object.headers.ContentDisposition);
        expect(d.Metadata, object.key).toEqual(object.headers.Metadata);
      }
    });

    // Every row done on evidence, confirmed the way the destination allows: RGW gives
    // CompleteMultipartUpload an empty ETag, so multipart objects are confirmed by HeadObject's md5-N
    // against the one computed from the parts sent. A row the kill left in flight counts as done only
    // when the destination carries the source's own ETag (a single PUT's MD5); never on size alone.
    for (const row of readRows(state())) {
      const object = corpus.find((o) => o.key === row.key)!;
      expect({ status: row.status, dest_key: row.dest_key, error: row.error }, row.key).toEqual({
        status: 'done',
        dest_key: row.key,
        error: null,
      });
      const multipart = object.body.length > partSize;
      // s3rver gives a multipart upload the whole object's MD5: it must equal the source's own MD5 ETag
      // where the source has one; a source seeded in parts has none, so each part's ETag is the proof.
      const wholeMd5 = createHash('md5').update(object.body).digest('hex');
      const seededInParts = object.body.length > (seedMultipartOver ?? Infinity);
      const expected =
        multipart && dest.label !== 's3rver'
          ? { method: 'multipart-etag', etag: multipartEtag(object.body, partSize) }
          : multipart && seededInParts
            ? { method: 'part-etags', etag: wholeMd5 }
            : { method: 'md5', etag: wholeMd5 };
      expect({ method: row.evidence, etag: row.dest_etag }, row.key).toEqual(expected);
    }

    // The killed run's multipart upload was aborted by the rerun, not left to cost money.
    if (dest.label !== 's3rver') {
      const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: dest.bucket }));
      expect((uploads.Uploads ?? []).map((u) => u.Key)).toEqual([]);
    }
  });

  it('verify exits 0', async () => {
    const verify = await runCli(['verify', '--state', state()], { env: env() });
    expect(verify.code, `${verify.stdout}\n${verify.stderr}`).toBe(0);
    expect(verify.stdout).toMatch(/Everything matches/);
  });
});

// The lean path (src/s3/lean-path.ts) against the SDK path on a server that checks signatures: RGW accepts
// what the lean path signs (UNSIGNED-PAYLOAD with Content-MD5, a signed payload without), for keys s3rver
// cannot store too, and both paths read back the same answers and fail with the same classified errors.
describe('lean path on RGW: signatures accepted, same answers and errors as the SDK path', () => {
  const KEYS = ['plain', 'a//b', '/leading', 'trailing/', 'sp ace+plus%25pct', 'ünï/😀', "tilde~star*quote'(x)", 'x'.repeat(1000)];
  const md5 = (body: Buffer): string => createHash('md5').update(body).digest('base64');
  const shape = ({ body: _body, ...rest }: SourceObject): Omit<SourceObject, 'body'> => rest;
  async function bytesOf(got: SourceObject): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of got.body) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }
  function buckets(secret = USER_A.secret): { lean: S3Bucket; sdk: S3Bucket } {
    const config = {
      side: 'dest' as const,
      endpoint: rgw.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      checksumMode: 'when-required' as const,
      credentials: { accessKeyId: USER_A.access, secretAccessKey: secret },
      credentialSource: 'test',
    };
    const leanClient = createS3Client(config, { maxSockets: 4 });
    expect(leanPathOf(leanClient)).toBeDefined();
    return {
      lean: new S3Bucket(leanClient, 'a-common', 'dest'),
      sdk: new S3Bucket(createS3Client({ ...config, leanPath: false }, { maxSockets: 4 }), 'a-common', 'dest'),
    };
  }
  const headers = {
    ContentType: 'text/x-lean',
    ContentDisposition: 'inline; filename="l.txt"',
    CacheControl: 'no-cache',
    Expires: new Date('2030-01-02T03:04:05Z'),
    Metadata: { origin: 'lean', 'two-words': 'x y' },
  };

  it('writes and reads tricky keys with headers and metadata; both paths read the same', async () => {
    const { lean, sdk } = buckets();
    for (const [i, key] of KEYS.entries()) {
      const body = Buffer.from(`lean ${i} `.repeat(300));
      const put = await lean.put(`lean/${key}`, body, { contentLength: body.length, contentMd5: md5(body), headers });
      expect(put.etag, key).toBe(`"${createHash('md5').update(body).digest('hex')}"`);
      // Without Content-MD5 the payload is signed with its SHA-256, as by the SDK.
      await lean.put(`lean-nomd5/${key}`, body, { contentLength: body.length, headers });
      await sdk.put(`sdk/${key}`, body, { contentLength: body.length, contentMd5: md5(body), headers });
      const viaLean = await lean.get(`sdk/${key}`);
      const viaSdk = await sdk.get(`lean/${key}`);
      expect(shape(viaLean), key).toEqual(shape(viaSdk));
      expect(viaLean.headers).toEqual(headers);
      expect(await bytesOf(viaLean)).toEqual(body);
      expect(await bytesOf(viaSdk)).toEqual(body);
      expect(await bytesOf(await lean.get(`lean-nomd5/${key}`))).toEqual(body);
      const ranged = await lean.get(`lean/${key}`, { ifMatch: put.etag!, range: { start: 10, end: 99 } });
      expect({ length: ranged.contentLength, size: ranged.objectSize }).toEqual({ length: 90, size: body.length });
      expect(await bytesOf(ranged)).toEqual(body.subarray(10, 100));
    }
  });

  it('copies server-side (CopyObject) every tricky key s3rver cannot, as the SDK path does, a stale If-Match alike', async () => {
    const { lean, sdk } = buckets();
    for (const [i, key] of [...KEYS, 'amp&semi;eq=at@colon:', 'hash#question?', 'plus+only'].entries()) {
      const body = Buffer.from(`copied ${i} `.repeat(200));
      const put = await sdk.put(`copy-src/${key}`, body, { contentLength: body.length, contentMd5: md5(body), headers });
      const source = { bucket: 'a-common', key: `copy-src/${key}`, ifMatch: put.etag!.replace(/"/g, '') };
      const viaLean = await lean.copyFrom(source, `copy-lean/${key}`, { copyTags: true });
      const viaSdk = await sdk.copyFrom(source, `copy-sdk/${key}`, { copyTags: true });
      expect(viaLean, key).toEqual(viaSdk);
      // RGW writes the CopyObjectResult ETag without its quotes; both paths hand it on as it came.
      expect(viaLean.etag?.replace(/"/g, ''), key).toBe(put.etag!.replace(/"/g, ''));
      const got = await lean.get(`copy-lean/${key}`);
      expect(got.headers, key).toEqual(headers);
      expect(await bytesOf(got), key).toEqual(body);
    }
    // RGW 16 ignores x-amz-copy-source-if-match: both paths copy a source whose ETag is not the one asked.
    // What keeps such a copy from being marked done is the copy's ETag (test/compat/rgw-large.test.ts).
    const stale = { bucket: 'a-common', key: 'copy-src/plain', ifMatch: '0123456789abcdef0123456789abcdef' };
    const copied = [
      await lean.copyFrom(stale, 'copy-lean/stale', { copyTags: true }),
      await sdk.copyFrom(stale, 'copy-sdk/stale', { copyTags: true }),
    ];
    expect(copied[0]).toEqual(copied[1]);
    expect(copied[0]!.etag).not.toBe(stale.ifMatch);
  });

  it('classifies errors the same: 404, 412 (If-Match), BadDigest, SignatureDoesNotMatch', async () => {
    const { lean, sdk } = buckets();
    const body = Buffer.from('error cases');
    await sdk.put('errors/x', body, { contentLength: body.length, contentMd5: md5(body) });
    const pairs: Array<[unknown, unknown]> = [
      [await lean.get('errors/missing').catch((e) => e), await sdk.get('errors/missing').catch((e) => e)],
      [
        await lean.get('errors/x', { ifMatch: '0123456789abcdef0123456789abcdef' }).catch((e) => e),
        await sdk.get('errors/x', { ifMatch: '0123456789abcdef0123456789abcdef' }).catch((e) => e),
      ],
      [
        await lean.put('errors/y', body, { contentLength: body.length, contentMd5: md5(Buffer.from('other')) }).catch((e) => e),
        await sdk.put('errors/y', body, { contentLength: body.length, contentMd5: md5(Buffer.from('other')) }).catch((e) => e),
      ],
    ];
    const wrong = buckets('not-the-secret-key-0000000000000000000000');
    pairs.push([
      await wrong.lean.put('errors/z', body, { contentLength: body.length, contentMd5: md5(body) }).catch((e) => e),
      await wrong.sdk.put('errors/z', body, { contentLength: body.length, contentMd5: md5(body) }).catch((e) => e),
    ]);
    const classes = pairs.map(([a, b]) => [classifyError(a), classifyError(b)]);
    for (const [a, b] of classes) expect(a).toEqual(b);
    expect(classes.map(([a]) => `${a!.kind} ${a!.code} ${a!.status}`)).toEqual([
      'not-found NoSuchKey 404',
      'fatal PreconditionFailed 412',
      'retryable BadDigest 400',
      'auth SignatureDoesNotMatch 403',
    ]);
  });
});
