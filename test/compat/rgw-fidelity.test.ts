// Object fidelity on Ceph RGW 16, end to end with the built CLI (test/servers/rgw.sh gives the cluster a
// STANDARD_IA storage class, SSE-C and SSE-KMS over plain HTTP): tags and what they cost in requests,
// storage classes (asked, kept, refused), SSE-C on both sides with a key each, SSE-KMS and SSE-S3
// destinations, and the evidence each case gets. s3rver has none of these (it ignores x-amz-tagging and
// every encryption header).
//
// What RGW 16 does, as these tests found it:
// - SSE-C and SSE-KMS objects get ETags that are the MD5 of the plaintext (AWS's are not MD5s). The
//   answers say they are encrypted, so s3migrate never takes those ETags as evidence: every write
//   carries Content-MD5, which RGW is proven to check (content-md5 evidence).
// - x-amz-server-side-encryption: AES256 is accepted and ignored (no rgw_crypt_default_encryption_key):
//   the object is stored unencrypted, nothing says otherwise, and its ETag is its MD5 (md5 evidence).
// - x-amz-tagging on CreateMultipartUpload is ignored: multipart copies set the tags once complete.
// - GetObject reports x-amz-tagging-count only for tagged objects, and x-amz-storage-class only for a
//   class given explicitly; an unknown class is refused with InvalidArgument and no message.
// - CopyObject keeps the source's storage class (AWS does not), copies tags whatever TaggingDirective
//   says (--tags none then deletes them), and refuses an SSE-C source (501 NotImplemented).
import { createHash, randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  S3Client,
  UploadPartCommand,
  type HeadObjectCommandOutput,
  type PutObjectCommandInput,
  type Tag,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRgw, type RgwHandle, type RgwUser } from '../servers/rgw.js';
import { runCli, startCli, type CliResult } from '../support/cli.js';
import { bytes, keyOfPath, listKeys, MiB, readRows, rowsByKey, sha256, tempDir, waitFor } from '../support/copy-fixtures.js';
import { startRequestProxy, type LogEntry, type RequestProxy } from '../support/request-proxy.js';

const USER = { uid: 'fidelity-user', access: 'FIDELITYUSERACCESS01', secret: 'fidelity-user-secret-key-00000000000000' };
/** The key id of the test cluster's SSE-KMS testing backend (test/servers/rgw.sh). */
const KMS_KEY_ID = 's3migrate-test-kms-key';
/** Each side's SSE-C key, distinctive so that a leak into any output or file is found. */
const KEY_A = randomBytes(32);
const KEY_B = randomBytes(32);
const KEY_A64 = KEY_A.toString('base64');
const KEY_B64 = KEY_B.toString('base64');
const md5Base64 = (bytes: Buffer): string => createHash('md5').update(bytes).digest('base64');

let rgw: RgwHandle;
let user: RgwUser;
let client: S3Client;
let sourceProxy: RequestProxy;
let destProxy: RequestProxy;
let work: Awaited<ReturnType<typeof tempDir>>;

const SOURCE_BUCKETS = ['fid-src', 'fid-ssec'];
const DEST_BUCKETS = [
  'tags-copy',
  'tags-none',
  'tags-always',
  'class-keep',
  'class-ia',
  'class-refused',
  'side-copy',
  'side-none',
  'ssec-lean',
  'ssec-sdk',
  'ssec-to-plain',
  'ssec-resume',
  'kms',
  'sse-s3',
];

beforeAll(async () => {
  [rgw, work] = await Promise.all([startRgw(), tempDir('rgw-fidelity')]);
  user = await rgw.createUser(USER.uid, USER.access, USER.secret);
  client = new S3Client({
    endpoint: rgw.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: user.accessKeyId, secretAccessKey: user.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  for (const bucket of [...SOURCE_BUCKETS, ...DEST_BUCKETS]) await client.send(new CreateBucketCommand({ Bucket: bucket }));
  sourceProxy = await startRequestProxy(rgw.endpoint);
  destProxy = await startRequestProxy(rgw.endpoint);
}, 180_000);

afterAll(async () => {
  await Promise.all([sourceProxy?.stop(), destProxy?.stop()]);
  client?.destroy();
  await rgw?.stop();
  await work?.remove();
});

/** Both sides through their proxies (counted), or both straight at RGW (one endpoint: server-side copy). */
function env(extra: Record<string, string> = {}, direct = false): Record<string, string> {
  const side = (prefix: string, endpoint: string): Record<string, string> => ({
    [`${prefix}_ENDPOINT`]: endpoint,
    [`${prefix}_AWS_ACCESS_KEY_ID`]: user.accessKeyId,
    [`${prefix}_AWS_SECRET_ACCESS_KEY`]: user.secretAccessKey,
    [`${prefix}_AWS_REGION`]: 'us-east-1',
  });
  return {
    ...side('SOURCE', direct ? rgw.endpoint : sourceProxy.endpoint),
    ...side('DEST', direct ? rgw.endpoint : destProxy.endpoint),
    ...extra,
  };
}

// Copies go multipart above 5 MiB, in 5 MiB parts: 12 MiB objects are 3 parts.
const COPY_ARGS = ['--quiet', '--multipart-threshold', '5MiB', '--part-size', '5MiB'];

interface Seeded {
  key: string;
  body: Buffer;
  tags?: Tag[];
  storageClass?: 'STANDARD_IA';
  redirect?: string;
  multipart?: boolean;
}

/** Writes an object as a client would: one PUT, or a multipart upload (tags then set with PutObjectTagging). */
async function seedObject(bucket: string, object: Seeded, sseKey?: Buffer): Promise<void> {
  const sse = sseKey ? { SSECustomerAlgorithm: 'AES256', SSECustomerKey: sseKey.toString('base64') } : {};
  const input: Omit<PutObjectCommandInput, 'Body'> = {
    Bucket: bucket,
    Key: object.key,
    ...(object.storageClass ? { StorageClass: object.storageClass } : {}),
    ...(object.redirect ? { WebsiteRedirectLocation: object.redirect } : {}),
    ...sse,
  };
  if (!object.multipart) {
    const Tagging = object.tags ? object.tags.map((t) => `${encodeURIComponent(t.Key!)}=${encodeURIComponent(t.Value!)}`).join('&') : undefined;
    await client.send(new PutObjectCommand({ ...input, Body: object.body, ...(Tagging ? { Tagging } : {}) }));
    return;
  }
  const { UploadId } = await client.send(new CreateMultipartUploadCommand(input));
  const parts = [];
  for (let n = 1, offset = 0; offset < object.body.length; n += 1, offset += 5 * MiB) {
    const { ETag } = await client.send(
      new UploadPartCommand({ Bucket: bucket, Key: object.key, UploadId, PartNumber: n, Body: object.body.subarray(offset, offset + 5 * MiB), ...sse }),
    );
    parts.push({ PartNumber: n, ETag });
  }
  await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: object.key, UploadId, MultipartUpload: { Parts: parts } }));
  if (object.tags) await client.send(new PutObjectTaggingCommand({ Bucket: bucket, Key: object.key, Tagging: { TagSet: object.tags } }));
}

const CORPUS: Seeded[] = [
  {
    key: 'tagged/small.txt',
    body: bytes(1000),
    tags: [{ Key: 'team', Value: 'data' }, { Key: 'two words', Value: 'a=b&c ü' }],
    storageClass: 'STANDARD_IA',
    redirect: '/elsewhere.html',
  },
  // Over 1 MiB and under the threshold: a streamed single PUT.
  { key: 'tagged/streamed.bin', body: bytes(3 * MiB), tags: [{ Key: 'size', Value: 'streamed' }] },
  { key: 'tagged/multi.bin', body: bytes(12 * MiB), tags: [{ Key: 'parts', Value: '3' }], multipart: true },
  { key: 'plain/a.txt', body: bytes(500) },
  { key: 'plain/b.bin', body: bytes(2 * MiB) },
  { key: 'plain/multi.bin', body: bytes(11 * MiB), multipart: true },
];
const TAGGED = CORPUS.filter((object) => object.tags).map((object) => object.key);
const UNTAGGED = CORPUS.filter((object) => !object.tags).map((object) => object.key);

async function tagsOf(bucket: string, key: string): Promise<Tag[]> {
  const { TagSet } = await client.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }));
  return (TagSet ?? []).map((tag) => ({ Key: tag.Key, Value: tag.Value })).sort((a, b) => a.Key!.localeCompare(b.Key!));
}
const sorted = (tags: Tag[] | undefined): Tag[] => [...(tags ?? [])].sort((a, b) => a.Key!.localeCompare(b.Key!));

async function headOf(bucket: string, key: string, sseKey?: Buffer): Promise<HeadObjectCommandOutput> {
  const sse = sseKey ? { SSECustomerAlgorithm: 'AES256', SSECustomerKey: sseKey.toString('base64') } : {};
  return client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ...sse }));
}

async function bodyOf(bucket: string, key: string, sseKey?: Buffer): Promise<Buffer> {
  const sse = sseKey ? { SSECustomerAlgorithm: 'AES256', SSECustomerKey: sseKey.toString('base64') } : {};
  const answer = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, ...sse }));
  return Buffer.from(await answer.Body!.transformToByteArray());
}

/** A fresh state file with the catalog of `bucket` (listed through the source proxy, or `direct`). */
async function catalog(bucket: string, name: string, direct = false): Promise<string> {
  const state = work.file(`${name}.db`);
  const result = await runCli(['catalog', '--from', `s3://${bucket}`, '--state', state, '--quiet'], { env: env({}, direct) });
  expect(result.code, result.stderr).toBe(0);
  return state;
}

async function copy(state: string, dest: string, args: string[] = [], extraEnv: Record<string, string> = {}, direct = false): Promise<CliResult> {
  sourceProxy.reset();
  destProxy.reset();
  return runCli(['copy', '--to', `s3://${dest}`, '--state', state, ...COPY_ARGS, ...args], { env: env(extraEnv, direct) });
}

/** Requests per key of one bucket, as `op` lists (order kept). */
function opsByKey(log: LogEntry[], bucket: string): Map<string, string[]> {
  const ops = new Map<string, string[]>();
  for (const entry of log) {
    if (!entry.path.startsWith(`/${bucket}/`)) continue;
    const key = keyOfPath(entry.path, bucket);
    ops.set(key, [...(ops.get(key) ?? []), entry.op]);
  }
  return ops;
}

const count = (ops: string[] | undefined, op: string): number => (ops ?? []).filter((o) => o === op).length;

describe('tags and storage classes', () => {
  /** The catalog every test of this block copies from (each into a clone of its own). */
  let state: string;

  beforeAll(async () => {
    for (const object of CORPUS) await seedObject('fid-src', object);
    state = await catalog('fid-src', 'fidelity');
  }, 120_000);

  it('tags travel by default, and untagged objects cost no request more than with --tags none', async () => {
    const copied = await copy(await cloneFrom(state, 'tags-copy'), 'tags-copy');
    expect(copied.code, copied.stderr).toBe(0);
    const copyOps = { source: opsByKey(sourceProxy.log(), 'fid-src'), dest: opsByKey(destProxy.log(), 'tags-copy') };

    const none = await copy(await cloneFrom(state, 'tags-none'), 'tags-none', ['--tags', 'none']);
    expect(none.code, none.stderr).toBe(0);
    const noneOps = { source: opsByKey(sourceProxy.log(), 'fid-src'), dest: opsByKey(destProxy.log(), 'tags-none') };

    for (const object of CORPUS) {
      expect(await tagsOf('tags-copy', object.key), object.key).toEqual(sorted(object.tags));
      expect(await tagsOf('tags-none', object.key), object.key).toEqual([]);
      // Bytes and headers as ever; the redirect travels with the headers.
      expect(sha256(await bodyOf('tags-copy', object.key)), object.key).toBe(sha256(object.body));
      expect((await headOf('tags-copy', object.key)).WebsiteRedirectLocation, object.key).toBe(object.redirect);
      // No --storage-class: the destination's default (RGW names no class then).
      expect((await headOf('tags-copy', object.key)).StorageClass, object.key).toBeUndefined();
    }
    // GetObjectTagging only for the objects whose GET reported tags; PutObjectTagging only for a
    // multipart one (RGW ignores tags on CreateMultipartUpload); otherwise the very same requests.
    for (const key of TAGGED) {
      expect(count(copyOps.source.get(key), 'GetObjectTagging'), key).toBe(1);
      expect(count(noneOps.source.get(key), 'GetObjectTagging'), key).toBe(0);
      expect(count(copyOps.dest.get(key), 'PutObjectTagging'), key).toBe(key === 'tagged/multi.bin' ? 1 : 0);
    }
    for (const key of UNTAGGED) {
      expect(copyOps.source.get(key), key).toEqual(noneOps.source.get(key));
      expect(copyOps.dest.get(key)?.sort(), key).toEqual(noneOps.dest.get(key)?.sort());
      expect([...(copyOps.source.get(key) ?? []), ...(copyOps.dest.get(key) ?? [])], key).not.toContain('GetObjectTagging');
    }
  });

  it('--tags always asks every object (for servers that do not report a tag count)', async () => {
    const result = await copy(await cloneFrom(state, 'tags-always'), 'tags-always', ['--tags', 'always']);
    expect(result.code, result.stderr).toBe(0);
    const source = opsByKey(sourceProxy.log(), 'fid-src');
    for (const object of CORPUS) {
      expect(count(source.get(object.key), 'GetObjectTagging'), object.key).toBe(1);
      expect(await tagsOf('tags-always', object.key), object.key).toEqual(sorted(object.tags));
    }
  });

  it('--storage-class keep writes the source object’s class; --storage-class STANDARD_IA every object’s, multipart too', async () => {
    const keep = await copy(await cloneFrom(state, 'class-keep'), 'class-keep', ['--storage-class', 'keep']);
    expect(keep.code, keep.stderr).toBe(0);
    const ia = await copy(await cloneFrom(state, 'class-ia'), 'class-ia', ['--storage-class', 'STANDARD_IA']);
    expect(ia.code, ia.stderr).toBe(0);
    for (const object of CORPUS) {
      expect((await headOf('class-keep', object.key)).StorageClass, object.key).toBe(object.storageClass);
      expect((await headOf('class-ia', object.key)).StorageClass, object.key).toBe('STANDARD_IA');
      expect(sha256(await bodyOf('class-ia', object.key)), object.key).toBe(sha256(object.body));
    }
  });

  it('a storage class the destination refuses stops the run at the first write: exit 1, one message naming it', async () => {
    const refusedState = await cloneFrom(state, 'class-refused');
    const result = await copy(refusedState, 'class-refused', ['--storage-class', 'GLACIER', '--concurrency', '1']);
    expect(result.code, result.stderr).toBe(1);
    const lines = result.stderr.trim().split('\n').filter((line) => line.startsWith('s3migrate:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/The destination bucket "class-refused" refused the storage class "GLACIER" \(--storage-class; InvalidArgument \(HTTP 400\)\)/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    // The first object's PUT, refused, and the probe that tells RGW's InvalidArgument apart: nothing else.
    const writes = destProxy.log().filter((e) => ['PutObject', 'CreateMultipartUpload', 'UploadPart'].includes(e.op));
    expect(writes.map((e) => [e.op, e.status, e.headers['x-amz-storage-class']])).toEqual([
      ['PutObject', 400, 'GLACIER'],
      ['PutObject', 400, 'GLACIER'],
    ]);
    expect(writes[1]!.path).toMatch(/s3migrate-storage-class-probe/);
    expect(await listKeys(client, 'class-refused')).toEqual([]);
    expect(readRows(refusedState).map((row) => row.status)).toEqual(CORPUS.map(() => 'pending'));
  });

  it('server-side copy: tags copied (TaggingDirective), or dropped with --tags none; the class asked is sent', async () => {
    // Both sides on RGW's own endpoint: one endpoint, so the destination copies from the source itself.
    const direct = await catalog('fid-src', 'side-template', true);
    const side = await copy(await cloneFrom(direct, 'side-copy'), 'side-copy', ['--storage-class', 'STANDARD'], {}, true);
    expect(side.code, side.stderr).toBe(0);
    const dropped = await copy(await cloneFrom(direct, 'side-none'), 'side-none', ['--tags', 'none'], {}, true);
    expect(dropped.code, dropped.stderr).toBe(0);
    for (const row of readRows(work.file('side-copy.db'))) {
      expect((row as unknown as { copy_method: string }).copy_method, row.key).toBe('server-side');
    }
    for (const object of CORPUS) {
      expect(await tagsOf('side-copy', object.key), object.key).toEqual(sorted(object.tags));
      expect(await tagsOf('side-none', object.key), object.key).toEqual([]);
      // RGW's CopyObject keeps the source's class unless one is asked (AWS's does not).
      expect((await headOf('side-copy', object.key)).StorageClass ?? 'STANDARD', object.key).toBe('STANDARD');
      expect((await headOf('side-none', object.key)).StorageClass, object.key).toBe(object.storageClass);
    }
  });
});

/** A copy of the catalog `state` under a new name (for another destination). */
async function cloneFrom(state: string, name: string): Promise<string> {
  const target = work.file(`${name}.db`);
  fs.copyFileSync(state, target);
  return target;
}

describe('encryption', () => {
  const SSEC_CORPUS: Seeded[] = [
    { key: 'small.txt', body: bytes(1500), tags: [{ Key: 'secret', Value: 'no' }] },
    { key: 'streamed.bin', body: bytes(3 * MiB) },
    { key: 'multi.bin', body: bytes(12 * MiB), multipart: true },
  ];
  let ssecState: string;
  const keys = { SOURCE_SSE_C_KEY: KEY_A64, DEST_SSE_C_KEY: KEY_B64 };
  const outputs: string[] = [];

  beforeAll(async () => {
    for (const object of SSEC_CORPUS) await seedObject('fid-ssec', object, KEY_A);
    ssecState = await catalog('fid-ssec', 'ssec');
  }, 120_000);

  /** Every request of `log` to `bucket` that reads or writes an object carried this key (its MD5). */
  function expectKeyOn(log: LogEntry[], bucket: string, key: Buffer, ops: string[]): void {
    const entries = log.filter((e) => e.path.startsWith(`/${bucket}/`) && ops.includes(e.op));
    expect(entries.length).toBeGreaterThan(0);
    for (const entry of entries) {
      expect(entry.headers['x-amz-server-side-encryption-customer-algorithm'], `${entry.op} ${entry.path}`).toBe('AES256');
      expect(entry.headers['x-amz-server-side-encryption-customer-key-md5'], `${entry.op} ${entry.path}`).toBe(md5Base64(key));
    }
  }

  async function expectSsecCopy(bucket: string, result: CliResult, state: string): Promise<void> {
    outputs.push(result.stdout, result.stderr);
    expect(result.code, result.stderr).toBe(0);
    for (const object of SSEC_CORPUS) {
      expect(sha256(await bodyOf(bucket, object.key, KEY_B)), object.key).toBe(sha256(object.body));
      expect((await headOf(bucket, object.key, KEY_B)).SSECustomerAlgorithm, object.key).toBe('AES256');
      // Readable with the destination's key only.
      await expect(headOf(bucket, object.key), object.key).rejects.toMatchObject({ $metadata: { httpStatusCode: 400 } });
      await expect(headOf(bucket, object.key, KEY_A), object.key).rejects.toMatchObject({ $metadata: { httpStatusCode: 400 } });
      expect(await tagsOf(bucket, object.key), object.key).toEqual(sorted(object.tags));
    }
    // RGW's ETags of SSE-C objects are MD5s of the plaintext, but nothing proves that on another server:
    // the evidence is RGW's own check of the Content-MD5 every PUT and part carried.
    for (const row of readRows(state)) expect({ key: row.key, status: row.status, evidence: row.evidence }).toEqual({ key: row.key, status: 'done', evidence: 'content-md5' });
    const log = destProxy.log();
    expectKeyOn(log, bucket, KEY_B, ['PutObject', 'CreateMultipartUpload', 'UploadPart']);
    for (const entry of log.filter((e) => e.path.startsWith(`/${bucket}/`) && ['PutObject', 'UploadPart'].includes(e.op))) {
      expect(entry.headers['content-md5'], `${entry.op} ${entry.path}`).toBeDefined();
    }
    expectKeyOn(sourceProxy.log(), 'fid-ssec', KEY_A, ['GetObject']);
  }

  it('SSE-C on both sides, each its own key, on the lean path: byte-exact, content-md5 evidence, verify exit 0', async () => {
    const state = await cloneFrom(ssecState, 'ssec-lean');
    await expectSsecCopy('ssec-lean', await copy(state, 'ssec-lean', [], keys), state);
    // The Content-MD5 check was proven once, for PutObject and UploadPart, with the destination's key.
    const probes = destProxy.log().filter((e) => e.path.includes('s3migrate-content-md5-probe'));
    expect(probes.map((e) => [e.op, e.status])).toEqual([
      ['PutObject', 400],
      ['CreateMultipartUpload', 200],
      ['UploadPart', 400],
      ['AbortMultipartUpload', 204],
    ]);
    const verify = await runCli(['verify', '--state', state], { env: env(keys) });
    outputs.push(verify.stdout, verify.stderr);
    expect(verify.code, `${verify.stdout}\n${verify.stderr}`).toBe(0);
  });

  it('the same on the SDK path (S3MIGRATE_LEAN_PATH=0)', async () => {
    const state = await cloneFrom(ssecState, 'ssec-sdk');
    await expectSsecCopy('ssec-sdk', await copy(state, 'ssec-sdk', [], { ...keys, S3MIGRATE_LEAN_PATH: '0' }), state);
  });

  it('an SSE-C source to a plain destination: the bytes are hashed as read, md5 and multipart-etag evidence', async () => {
    const state = await cloneFrom(ssecState, 'ssec-to-plain');
    const result = await copy(state, 'ssec-to-plain', [], { SOURCE_SSE_C_KEY: KEY_A64 });
    outputs.push(result.stdout, result.stderr);
    expect(result.code, result.stderr).toBe(0);
    for (const object of SSEC_CORPUS) expect(sha256(await bodyOf('ssec-to-plain', object.key)), object.key).toBe(sha256(object.body));
    expect(Object.fromEntries(readRows(state).map((row) => [row.key, row.evidence]))).toEqual({
      'multi.bin': 'multipart-etag',
      'small.txt': 'md5',
      'streamed.bin': 'md5',
    });
  });

  it('an SSE-C multipart copy killed mid-upload resumes its parts and still ends content-md5', async () => {
    const state = await cloneFrom(ssecState, 'ssec-resume');
    sourceProxy.reset();
    destProxy.reset();
    const run = startCli(['copy', '--to', 's3://ssec-resume', '--state', state, ...COPY_ARGS, '--part-concurrency', '1', '--concurrency', '1', '--sort', 'largest'], {
      env: env(keys),
    });
    await waitFor(() => destProxy.log().filter((e) => e.op === 'UploadPart' && e.status === 200 && e.path.endsWith('/multi.bin')).length >= 2, 60_000, 'two parts stored');
    await kill(run.child);
    outputs.push((await run.result).stderr);
    destProxy.reset();
    const rerun = await runCli(['copy', '--to', 's3://ssec-resume', '--state', state, ...COPY_ARGS], { env: env(keys) });
    outputs.push(rerun.stdout, rerun.stderr);
    expect(rerun.code, rerun.stderr).toBe(0);
    // Only the part(s) the killed run did not record went again.
    const parts = destProxy.log().filter((e) => e.op === 'UploadPart' && e.path.endsWith('/multi.bin'));
    expect(parts.length).toBeLessThan(3);
    expect(rowsByKey(state).get('multi.bin')!.evidence).toBe('content-md5');
    expect(sha256(await bodyOf('ssec-resume', 'multi.bin', KEY_B))).toBe(sha256(SSEC_CORPUS[2]!.body));
  });

  it('SSE-KMS destination: encrypted with the key asked, content-md5 evidence', async () => {
    const state = await catalog('fid-src', 'kms');
    const result = await copy(state, 'kms', ['--dest-sse', 'aws:kms', '--dest-sse-kms-key-id', KMS_KEY_ID]);
    expect(result.code, result.stderr).toBe(0);
    for (const object of CORPUS) {
      const head = await headOf('kms', object.key);
      expect([head.ServerSideEncryption, head.SSEKMSKeyId], object.key).toEqual(['aws:kms', KMS_KEY_ID]);
      expect(sha256(await bodyOf('kms', object.key)), object.key).toBe(sha256(object.body));
    }
    expect(new Set(readRows(state).map((row) => row.evidence))).toEqual(new Set(['content-md5']));
    const verify = await runCli(['verify', '--state', state], { env: env() });
    expect(verify.code, `${verify.stdout}\n${verify.stderr}`).toBe(0);
  });

  it('SSE-S3 (AES256) destination: RGW 16 accepts it and reports nothing; its ETags are MD5s (md5, multipart-etag)', async () => {
    const state = await catalog('fid-src', 'sse-s3');
    const result = await copy(state, 'sse-s3', ['--dest-sse', 'AES256']);
    expect(result.code, result.stderr).toBe(0);
    expect(destProxy.log().filter((e) => e.op === 'PutObject' || e.op === 'CreateMultipartUpload').map((e) => e.headers['x-amz-server-side-encryption'])).toEqual(
      CORPUS.map(() => 'AES256'),
    );
    for (const object of CORPUS) expect((await headOf('sse-s3', object.key)).ServerSideEncryption, object.key).toBeUndefined();
    expect(new Set(readRows(state).map((row) => row.evidence))).toEqual(new Set(['md5', 'multipart-etag']));
  });

  it('the SSE-C keys never appear in any output, state file or log', async () => {
    const logFile = work.file('ssec.ndjson');
    const state = await cloneFrom(ssecState, 'ssec-log');
    await client.send(new CreateBucketCommand({ Bucket: 'ssec-log' }));
    const result = await copy(state, 'ssec-log', ['--log-format', 'json', '--log-file', logFile], keys);
    expect(result.code, result.stderr).toBe(0);
    outputs.push(result.stdout, result.stderr);
    const files = fs.readdirSync(work.dir).map((name) => work.file(name));
    const blobs: Array<[string, Buffer]> = [
      ...outputs.map((text, i): [string, Buffer] => [`output ${i}`, Buffer.from(text)]),
      ...files.map((file): [string, Buffer] => [file, fs.readFileSync(file)]),
    ];
    for (const [where, blob] of blobs) {
      for (const [name, secret] of Object.entries({ KEY_A64, KEY_B64, KEY_A, KEY_B, hexA: KEY_A.toString('hex'), hexB: KEY_B.toString('hex') })) {
        expect(blob.includes(secret), `${name} found in ${where}`).toBe(false);
      }
    }
  });
});

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}
