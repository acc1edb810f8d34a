// Part-level resume and kept uploads on Ceph RGW, which lists parts and uploads and really aborts them
// (s3rver does neither): a kill -9 mid-upload resumed from the parts RGW lists; an upload aborted behind
// our back started over; `abort-uploads` aborting kept uploads and strays at our keys, leaving others.
import type { ChildProcess } from 'node:child_process';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutBucketPolicyCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRgw, type RgwHandle, type RgwUser } from '../servers/rgw.js';
import { withRaw } from '../support/catalog-fixtures.js';
import { runCli, startCli } from '../support/cli.js';
import { bytes, MiB, multipartEtagOf as multipartEtag, readObject, readRows, rowsByKey, sha256, tempDir, waitFor } from '../support/copy-fixtures.js';
import { startRequestProxy, type RequestInfo, type RequestProxy } from '../support/request-proxy.js';

const USER = { uid: 'large-user', access: 'LARGEUSERACCESSKEY01', secret: 'large-user-secret-key-000000000000000000' };
const OTHER = { uid: 'other-user', access: 'OTHERUSERACCESSKEY01', secret: 'other-user-secret-key-000000000000000000' };
const FLAGS = ['--multipart-threshold', '5MiB', '--part-size', '5MiB', '--part-concurrency', '2', '--quiet'];
const PARTS = 12;

let rgw: RgwHandle;
let user: RgwUser;
let other: RgwUser;
let client: S3Client;
let otherClient: S3Client;
let destProxy: RequestProxy;
let work: Awaited<ReturnType<typeof tempDir>>;
let onDest: ((info: RequestInfo) => Promise<void> | void) | undefined;
let tellPartSizes = false;
const body = bytes(PARTS * 5 * MiB);

beforeAll(async () => {
  [rgw, work] = await Promise.all([startRgw(), tempDir('rgw-large')]);
  user = await rgw.createUser(USER.uid, USER.access, USER.secret);
  other = await rgw.createUser(OTHER.uid, OTHER.access, OTHER.secret);
  const clientOf = (who: RgwUser): S3Client =>
    new S3Client({
      endpoint: rgw.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: who.accessKeyId, secretAccessKey: who.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  client = clientOf(user);
  otherClient = clientOf(other);
  for (const bucket of ['src', 'dst-kill', 'dst-gone', 'dst-abort', 'ss-src', 'ss-shared', 'ss-dst', 'ss-parts-dst', 'ss-changing', 'ss-changed-dst']) {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  }
  for (const bucket of ['ss-other-dst', 'ss-denied-dst', 'ss-always-dst']) await otherClient.send(new CreateBucketCommand({ Bucket: bucket }));
  await seedServerSide();
  await client.send(new PutObjectCommand({ Bucket: 'src', Key: 'big.bin', Body: body }));
  await client.send(new PutObjectCommand({ Bucket: 'src', Key: 'small.txt', Body: Buffer.from('small') }));
  destProxy = await startRequestProxy(rgw.endpoint, {
    onRequest: async (info) => void (await onDest?.(info)),
    // As AWS answers a partNumber HEAD (RGW 16 gives the whole object's length and no part count).
    rewriteResponse: (info, status) => {
      const part = Number(new URLSearchParams(info.query).get('partNumber'));
      if (!tellPartSizes || info.op !== 'HeadObject' || status !== 200 || !part || !info.path.endsWith('/parts.bin')) return undefined;
      const size = part < 3 ? 5 * MiB : 1 * MiB;
      return { headers: { 'content-length': String(size), 'x-amz-mp-parts-count': '3' } };
    },
  });
}, 180_000);

afterAll(async () => {
  await destProxy?.stop();
  client?.destroy();
  otherClient?.destroy();
  await rgw?.stop();
  await work?.remove();
});

function env(): Record<string, string> {
  const side = (prefix: string, endpoint: string): Record<string, string> => ({
    [`${prefix}_ENDPOINT`]: endpoint,
    [`${prefix}_AWS_ACCESS_KEY_ID`]: user.accessKeyId,
    [`${prefix}_AWS_SECRET_ACCESS_KEY`]: user.secretAccessKey,
    [`${prefix}_AWS_REGION`]: 'us-east-1',
  });
  return { ...side('SOURCE', rgw.endpoint), ...side('DEST', destProxy.endpoint) };
}

async function catalog(name: string): Promise<string> {
  const state = work.file(name);
  const result = await runCli(['catalog', '--from', 's3://src', '--state', state, '--quiet'], { env: env() });
  expect(result.code, result.stderr).toBe(0);
  return state;
}

const confirmedParts = (): number[] =>
  destProxy
    .log()
    .filter((e) => e.op === 'UploadPart' && e.status === 200)
    .map((e) => Number(new URLSearchParams(e.query).get('partNumber')));
const recordedParts = (state: string): number[] =>
  withRaw(state, (db) => db.prepare('SELECT part_number FROM parts ORDER BY 1').pluck().all() as number[]);
const openUploads = async (bucket: string): Promise<string[]> =>
  ((await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).map((u) => `${u.Key}`);

/** Starts a copy whose parts go slowly, and stops it (kill -9 or SIGINT) after `parts` confirmed parts. */
async function interruptedCopy(bucket: string, state: string, parts: number, signal: NodeJS.Signals): Promise<void> {
  onDest = async (info) => {
    if (info.op === 'UploadPart') await new Promise((resolve) => setTimeout(resolve, 200));
  };
  destProxy.reset();
  const run = startCli(['copy', '--to', `s3://${bucket}`, '--state', state, ...FLAGS], { env: env() });
  try {
    await waitFor(() => confirmedParts().length >= parts, 60_000, `${parts} parts confirmed`);
    run.child.kill(signal);
    await run.result;
  } finally {
    onDest = undefined;
    await kill(run.child);
  }
}

describe('a 60 MiB object in 12 parts on RGW', () => {
  it('kill -9 mid-upload: the rerun lists the upload\'s parts and sends only the missing ones', async () => {
    const state = await catalog('kill.db');
    await interruptedCopy('dst-kill', state, 7, 'SIGKILL');
    const recorded = recordedParts(state);
    expect(recorded.length).toBeGreaterThanOrEqual(5);
    expect(await openUploads('dst-kill')).toEqual(['big.bin']);

    destProxy.reset();
    const rerun = await runCli(['copy', '--to', 's3://dst-kill', '--state', state, ...FLAGS], { env: env() });
    expect(rerun.code, rerun.stderr).toBe(0);
    const ops = destProxy.log().map((e) => e.op);
    expect(ops).toContain('Other'); // ListParts
    expect(ops).not.toContain('CreateMultipartUpload');
    const sent = confirmedParts().sort((a, b) => a - b);
    expect(sent).toEqual(Array.from({ length: PARTS }, (_, i) => i + 1).filter((n) => !recorded.includes(n)));
    expect(sha256(await readObject(client, 'dst-kill', 'big.bin'))).toBe(sha256(body));
    const row = rowsByKey(state).get('big.bin')!;
    expect({ status: row.status, evidence: row.evidence, etag: row.dest_etag }).toEqual({
      status: 'done',
      evidence: 'multipart-etag',
      etag: multipartEtag(body, 5 * MiB),
    });
    expect(await openUploads('dst-kill')).toEqual([]);
  });

  it('an upload aborted behind our back: the rerun starts over and finishes', async () => {
    const state = await catalog('gone.db');
    await interruptedCopy('dst-gone', state, 4, 'SIGINT');
    const kept = withRaw(state, (db) => db.prepare('SELECT upload_id FROM uploads').pluck().get() as string);
    await client.send(new AbortMultipartUploadCommand({ Bucket: 'dst-gone', Key: 'big.bin', UploadId: kept }));

    destProxy.reset();
    const rerun = await runCli(['copy', '--to', 's3://dst-gone', '--state', state, ...FLAGS.filter((f) => f !== '--quiet')], { env: env() });
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stderr).toMatch(/big\.bin: starting its multipart upload over/);
    expect(destProxy.log().filter((e) => e.op === 'CreateMultipartUpload')).toHaveLength(1);
    expect(confirmedParts()).toHaveLength(PARTS);
    expect(sha256(await readObject(client, 'dst-gone', 'big.bin'))).toBe(sha256(body));
  });

  it('abort-uploads aborts the kept upload and a stray one at our key, and leaves an upload at a foreign key alone', async () => {
    const state = await catalog('abort.db');
    await interruptedCopy('dst-abort', state, 3, 'SIGINT');
    const status = await runCli(['status', '--state', state], { env: env() });
    expect(status.stdout).toMatch(/Uploads: +1 multipart uploads kept for resumption/);
    // A stray upload at one of our keys (a run whose record was lost) and one at a key that is not ours.
    await client.send(new CreateMultipartUploadCommand({ Bucket: 'dst-abort', Key: 'small.txt' }));
    await client.send(new CreateMultipartUploadCommand({ Bucket: 'dst-abort', Key: 'not-ours.bin' }));
    expect((await openUploads('dst-abort')).sort()).toEqual(['big.bin', 'not-ours.bin', 'small.txt']);

    const result = await runCli(['abort-uploads', '--state', state], { env: env() });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/Aborted 1 recorded multipart uploads .* and 1 other open uploads at our destination keys/);
    expect(await openUploads('dst-abort')).toEqual(['not-ours.bin']);
    expect(withRaw(state, (db) => db.prepare('SELECT COUNT(*) FROM uploads').pluck().get())).toBe(0);
    expect(rowsByKey(state).get('big.bin')!.status).toBe('pending');

    // The next copy starts the object over and finishes.
    const copy = await runCli(['copy', '--to', 's3://dst-abort', '--state', state, ...FLAGS], { env: env() });
    expect(copy.code, copy.stderr).toBe(0);
    expect(sha256(await readObject(client, 'dst-abort', 'big.bin'))).toBe(sha256(body));
  });
});

// --- server-side copy ------------------------------------------------------------------------------

const SS_OBJECTS: Array<{ key: string; body: Buffer; headers: Record<string, unknown>; partSize?: number }> = [
  { key: 'one.txt', body: bytes(4000), headers: { ContentType: 'text/plain', Metadata: { origin: 'seed' } } },
  { key: 'dir/a+b c%d.bin', body: bytes(70_000), headers: { CacheControl: 'max-age=60' } },
  // Uploaded in parts (ETag md5-N): copied part by part, mirroring the source's layout.
  { key: 'parts.bin', body: bytes(11 * MiB), headers: { ContentType: 'application/x-parts' }, partSize: 5 * MiB },
];

async function seedServerSide(): Promise<void> {
  for (const bucket of ['ss-src', 'ss-shared']) {
    for (const object of SS_OBJECTS) {
      if (object.partSize === undefined) {
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: object.key, Body: object.body, ...object.headers }));
        continue;
      }
      const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: object.key, ...object.headers }));
      const parts = [];
      const partSize = object.partSize;
      for (let offset = 0, n = 1; offset < object.body.length; offset += partSize, n += 1) {
        const answer = await client.send(
          new UploadPartCommand({ Bucket: bucket, Key: object.key, UploadId, PartNumber: n, Body: object.body.subarray(offset, offset + partSize) }),
        );
        parts.push({ PartNumber: n, ETag: answer.ETag });
      }
      await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: object.key, UploadId, MultipartUpload: { Parts: parts } }));
    }
  }
  // The other user may read ss-shared (a bucket policy), not ss-src.
  await client.send(
    new PutBucketPolicyCommand({
      Bucket: 'ss-shared',
      Policy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Principal: { AWS: [`arn:aws:iam:::user/${OTHER.uid}`] },
            Action: ['s3:GetObject', 's3:ListBucket'],
            Resource: ['arn:aws:s3:::ss-shared', 'arn:aws:s3:::ss-shared/*'],
          },
        ],
      }),
    }),
  );
}

/** Both sides on the proxy in front of RGW (one endpoint), with each side's own keys. */
function oneEndpointEnv(sourceUser: RgwUser, destUser: RgwUser): Record<string, string> {
  const side = (prefix: string, who: RgwUser): Record<string, string> => ({
    [`${prefix}_ENDPOINT`]: destProxy.endpoint,
    [`${prefix}_AWS_ACCESS_KEY_ID`]: who.accessKeyId,
    [`${prefix}_AWS_SECRET_ACCESS_KEY`]: who.secretAccessKey,
    [`${prefix}_AWS_REGION`]: 'us-east-1',
  });
  return { ...side('SOURCE', sourceUser), ...side('DEST', destUser) };
}

async function serverSideCopy(from: string, to: string, sourceUser: RgwUser, destUser: RgwUser, extra: string[] = []) {
  const state = work.file(`${to}.db`);
  const environment = oneEndpointEnv(sourceUser, destUser);
  const catalog = await runCli(['catalog', '--from', `s3://${from}`, '--state', state, '--quiet'], { env: environment });
  expect(catalog.code, catalog.stderr).toBe(0);
  destProxy.reset();
  const result = await runCli(['copy', '--to', `s3://${to}`, '--state', state, ...extra], { env: environment });
  return { state, result, log: destProxy.log() };
}

async function expectServerSideCopies(destClient: S3Client, from: string, to: string, state: string, log: ReturnType<RequestProxy['log']>): Promise<void> {
  expect(log.filter((e) => ['GetObject', 'PutObject', 'UploadPart'].includes(e.op))).toEqual([]);
  expect(log.reduce((sum, e) => sum + e.requestBytes + e.responseBytes, 0)).toBeLessThan(16 * 1024);
  for (const object of SS_OBJECTS) {
    expect(sha256(await readObject(destClient, to, object.key)), object.key).toBe(sha256(object.body));
    const [a, b] = await Promise.all([
      client.send(new HeadObjectCommand({ Bucket: from, Key: object.key })),
      destClient.send(new HeadObjectCommand({ Bucket: to, Key: object.key })),
    ]);
    expect({ etag: b.ETag, type: b.ContentType, cache: b.CacheControl, meta: b.Metadata }, object.key).toEqual({
      etag: a.ETag,
      type: a.ContentType,
      cache: a.CacheControl,
      meta: a.Metadata,
    });
    const row = rowsByKey(state).get(object.key)! as ReturnType<typeof rowsByKey> extends Map<string, infer R> ? R & { copy_method: string } : never;
    expect({ status: row.status, evidence: row.evidence, method: row.copy_method }, object.key).toEqual({
      status: 'done',
      evidence: object.partSize !== undefined ? 'multipart-etag' : 'md5',
      method: 'server-side',
    });
  }
}

describe('server-side copy on RGW', () => {
  it('one user, two buckets: every object copied by RGW itself, each copy carrying the ETag of its source, no bytes through us', async () => {
    const { state, result, log } = await serverSideCopy('ss-src', 'ss-dst', user, user, ['--quiet']);
    expect(result.code, result.stderr).toBe(0);
    // RGW 16 answers a partNumber HEAD with the whole object: the part layout is unknown, so the object
    // uploaded in parts is copied by CopyObject, whose copy carries the source's multipart ETag.
    expect(log.filter((e) => e.op === 'CopyObject')).toHaveLength(SS_OBJECTS.length);
    await expectServerSideCopies(client, 'ss-src', 'ss-dst', state, log);
  });

  it('a source whose server tells part sizes (as AWS does, answered here by the proxy): copied part by part in its own layout', async () => {
    tellPartSizes = true;
    try {
      const { state, result, log } = await serverSideCopy('ss-src', 'ss-parts-dst', user, user, ['--quiet']);
      expect(result.code, result.stderr).toBe(0);
      const parts = log.filter((e) => e.op === 'UploadPartCopy').map((e) => new URLSearchParams(e.query).get('partNumber'));
      expect(parts.sort()).toEqual(['1', '2', '3']);
      expect(log.filter((e) => e.op === 'CopyObject')).toHaveLength(SS_OBJECTS.length - 1);
      await expectServerSideCopies(client, 'ss-src', 'ss-parts-dst', state, log);
    } finally {
      tellPartSizes = false;
    }
  });

  it('a source overwritten after the catalog is never marked done, though RGW ignores the copy-source If-Match', async () => {
    const before = bytes(5000);
    const after = Buffer.from(before.map((b) => b ^ 0xff));
    await client.send(new PutObjectCommand({ Bucket: 'ss-changing', Key: 'moving.bin', Body: before }));
    await client.send(new PutObjectCommand({ Bucket: 'ss-changing', Key: 'still.bin', Body: before }));
    const state = work.file('ss-changed-dst.db');
    const environment = oneEndpointEnv(user, user);
    expect((await runCli(['catalog', '--from', 's3://ss-changing', '--state', state, '--quiet'], { env: environment })).code).toBe(0);
    await client.send(new PutObjectCommand({ Bucket: 'ss-changing', Key: 'moving.bin', Body: after }));
    const result = await runCli(['copy', '--to', 's3://ss-changed-dst', '--state', state, '--quiet', '--max-attempts', '1'], { env: environment });
    const rows = rowsByKey(state);
    expect(rows.get('still.bin')!.status).toBe('done');
    // RGW 16 copies despite x-amz-copy-source-if-match (both paths; test/compat/rgw.test.ts): the copy's
    // ETag, the new object's, is not the catalog's, so the row is not done: changed, exit 3, said so.
    expect(rows.get('moving.bin')!.status, result.stderr).toBe('changed');
    expect(result.code, result.stderr).toBe(3);
    expect(result.stderr).toMatch(/1 objects changed at the source since the catalog/);
  });

  it('two users, the source bucket shared with the destination user by a bucket policy', async () => {
    const { state, result, log } = await serverSideCopy('ss-shared', 'ss-other-dst', user, other, ['--quiet']);
    expect(result.code, result.stderr).toBe(0);
    await expectServerSideCopies(otherClient, 'ss-shared', 'ss-other-dst', state, log);
  });

  it('two users, no grant: auto falls back to streaming at the first refusal and says so; always fails the objects', async () => {
    const auto = await serverSideCopy('ss-src', 'ss-denied-dst', user, other);
    expect(auto.result.code, auto.result.stderr).toBe(0);
    expect(auto.result.stderr).toMatch(/refused server-side copies \(AccessDenied \(HTTP 403\)\); streaming every object/);
    expect(auto.log.filter((e) => e.op === 'CopyObject' || e.op === 'UploadPartCopy').length).toBeLessThanOrEqual(3);
    for (const object of SS_OBJECTS) {
      expect(sha256(await readObject(otherClient, 'ss-denied-dst', object.key)), object.key).toBe(sha256(object.body));
    }
    const always = await serverSideCopy('ss-src', 'ss-always-dst', user, other, ['--quiet', '--server-side', 'always', '--max-attempts', '1']);
    expect(always.result.code, always.result.stderr).toBe(3);
    expect(readRows(always.state).every((row) => row.status === 'failed' && /AccessDenied/.test(row.error ?? ''))).toBe(true);
  });
});

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}
