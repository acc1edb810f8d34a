// The trust rules on Ceph RGW, which honours If-Match, checks Content-MD5 and lists multipart uploads
// (s3rver does none of these): a source changed after the catalog is refused by the server itself (412)
// and ends `changed`; an object overwritten between two ranged part reads is never stitched; uploads a
// killed run left behind are aborted even when the rerun's multipart threshold is higher; the
// destination's Content-MD5 check is proven on this server (and disproven on s3rver).
import type { ChildProcess } from 'node:child_process';
import { CreateBucketCommand, ListMultipartUploadsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3rverClient, startS3rver, type S3rverHandle } from '../../scripts/servers/s3rver.js';
import { S3Bucket } from '../../src/s3/bucket.js';
import { startRgw, type RgwHandle, type RgwUser } from '../servers/rgw.js';
import { runCli, startCli } from '../support/cli.js';
import { bytes, keyOfPath, listKeys, MiB, readObject, rowsByKey, sha256, tempDir, waitFor } from '../support/copy-fixtures.js';
import { startRequestProxy, type RequestInfo, type RequestProxy } from '../support/request-proxy.js';

const USER = { uid: 'trust-user', access: 'TRUSTUSERACCESSKEY01', secret: 'trust-user-secret-key-000000000000000000' };

let rgw: RgwHandle;
let s3rver: S3rverHandle;
let user: RgwUser;
let client: S3Client;
let sourceProxy: RequestProxy;
let destProxy: RequestProxy;
let work: Awaited<ReturnType<typeof tempDir>>;
let onSource: ((info: RequestInfo) => Promise<void> | void) | undefined;
let onDest: ((info: RequestInfo) => Promise<void> | void) | undefined;

beforeAll(async () => {
  [rgw, s3rver, work] = await Promise.all([startRgw(), startS3rver({ buckets: ['probe'] }), tempDir('rgw-trust')]);
  user = await rgw.createUser(USER.uid, USER.access, USER.secret);
  client = new S3Client({
    endpoint: rgw.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: user.accessKeyId, secretAccessKey: user.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  for (const bucket of ['chg', 'chg-dst', 'orphan', 'orphan-dst', 'probe']) await client.send(new CreateBucketCommand({ Bucket: bucket }));
  // One proxy for each side of the same RGW, so requests can be counted, held or delayed per side.
  sourceProxy = await startRequestProxy(rgw.endpoint, { onRequest: async (info) => void (await onSource?.(info)) });
  destProxy = await startRequestProxy(rgw.endpoint, { onRequest: async (info) => void (await onDest?.(info)) });
}, 180_000);

afterAll(async () => {
  await Promise.all([sourceProxy?.stop(), destProxy?.stop()]);
  client?.destroy();
  await Promise.all([rgw?.stop(), s3rver?.stop()]);
  await work?.remove();
});

function env(): Record<string, string> {
  const side = (prefix: string, endpoint: string): Record<string, string> => ({
    [`${prefix}_ENDPOINT`]: endpoint,
    [`${prefix}_AWS_ACCESS_KEY_ID`]: user.accessKeyId,
    [`${prefix}_AWS_SECRET_ACCESS_KEY`]: user.secretAccessKey,
    [`${prefix}_AWS_REGION`]: 'us-east-1',
  });
  return { ...side('SOURCE', sourceProxy.endpoint), ...side('DEST', destProxy.endpoint) };
}

const put = (bucket: string, key: string, body: Buffer): Promise<unknown> =>
  client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));

describe('a source changed after the catalog, on RGW', () => {
  it('is refused by the server (If-Match -> 412), ends changed, nothing stale copied; catalog + copy again: byte-exact', async () => {
    const keep = bytes(3000);
    await put('chg', 'keep.bin', keep);
    await put('chg', 'same-size.bin', bytes(4000));
    await put('chg', 'other-size.bin', bytes(5000));
    await put('chg', 'stitch.bin', bytes(12 * MiB));
    const state = work.file('changed.db');
    const catalog = await runCli(['catalog', '--from', 's3://chg', '--state', state, '--quiet'], { env: env() });
    expect(catalog.code, catalog.stderr).toBe(0);
    const now = new Map([
      ['keep.bin', keep],
      ['same-size.bin', bytes(4000)],
      ['other-size.bin', bytes(6000)],
      ['stitch.bin', bytes(12 * MiB)],
    ]);
    await put('chg', 'same-size.bin', now.get('same-size.bin')!);
    await put('chg', 'other-size.bin', now.get('other-size.bin')!);
    // stitch.bin is overwritten while its second part is being read: part 1 of the old version has
    // gone out, part 2's ranged read carries If-Match on the old ETag.
    let stitchGets = 0;
    onSource = async (info) => {
      if (info.op !== 'GetObject' || keyOfPath(info.path, 'chg') !== 'stitch.bin') return;
      stitchGets += 1;
      if (stitchGets === 2) await put('chg', 'stitch.bin', now.get('stitch.bin')!);
    };
    sourceProxy.reset();
    destProxy.reset();
    const args = ['copy', '--to', 's3://chg-dst', '--state', state, '--quiet', '--multipart-threshold', '5MiB', '--part-size', '5MiB', '--part-concurrency', '1'];
    const first = await runCli(args, { env: env() });
    expect(first.code, first.stderr).toBe(3);
    expect(first.stderr).toMatch(/3 objects changed at the source since the catalog/);
    const statuses = Object.fromEntries([...rowsByKey(state)].map(([key, row]) => [key, row.status]));
    expect(statuses).toEqual({ 'keep.bin': 'done', 'other-size.bin': 'changed', 'same-size.bin': 'changed', 'stitch.bin': 'changed' });
    // RGW itself refused the reads of the old versions.
    const refused = sourceProxy.log().filter((e) => e.op === 'GetObject' && e.status === 412).map((e) => keyOfPath(e.path, 'chg'));
    expect(refused.sort()).toEqual(['other-size.bin', 'same-size.bin', 'stitch.bin']);
    expect(await listKeys(client, 'chg-dst')).toEqual(['keep.bin']);
    const stitchOps = destProxy.log().filter((e) => keyOfPath(e.path, 'chg-dst') === 'stitch.bin').map((e) => e.op);
    expect(stitchOps).toContain('UploadPart');
    expect(stitchOps).not.toContain('CompleteMultipartUpload');
    expect((await client.send(new ListMultipartUploadsCommand({ Bucket: 'chg-dst' }))).Uploads ?? []).toEqual([]);

    onSource = undefined;
    const again = await runCli(['catalog', '--from', 's3://chg', '--state', state, '--quiet'], { env: env() });
    expect(again.code, again.stderr).toBe(0);
    const second = await runCli(args, { env: env() });
    expect(second.code, second.stderr).toBe(0);
    for (const [key, body] of now) expect(sha256(await readObject(client, 'chg-dst', key)), key).toBe(sha256(body));
    expect(rowsByKey(state).get('stitch.bin')!.evidence).toBe('multipart-etag');
  });
});

describe('uploads a killed run left behind', () => {
  it('are aborted by the rerun even when its multipart threshold is higher than the killed run’s', async () => {
    const body = bytes(12 * MiB);
    await put('orphan', 'big.bin', body);
    const state = work.file('orphan.db');
    const catalog = await runCli(['catalog', '--from', 's3://orphan', '--state', state, '--quiet'], { env: env() });
    expect(catalog.code, catalog.stderr).toBe(0);

    // A first run with a 5 MiB threshold starts a multipart upload; its parts go slowly; kill -9.
    onDest = async (info) => {
      if (info.op === 'UploadPart') await new Promise((resolve) => setTimeout(resolve, 1000));
    };
    destProxy.reset();
    const run = startCli(
      ['copy', '--to', 's3://orphan-dst', '--state', state, '--quiet', '--multipart-threshold', '5MiB', '--part-size', '5MiB', '--part-concurrency', '1'],
      { env: env() },
    );
    await waitFor(() => destProxy.log().some((e) => e.op === 'UploadPart' && e.status === 200), 30_000, 'a part stored');
    await kill(run.child);
    await run.result;
    onDest = undefined;
    const open = (await client.send(new ListMultipartUploadsCommand({ Bucket: 'orphan-dst' }))).Uploads ?? [];
    expect(open.map((upload) => upload.Key)).toEqual(['big.bin']);

    // The rerun, at the default 64 MiB threshold, copies the object as one PUT and aborts the old upload.
    destProxy.reset();
    const rerun = await runCli(['copy', '--to', 's3://orphan-dst', '--state', state, '--quiet'], { env: env() });
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(destProxy.log().map((e) => e.op)).toContain('AbortMultipartUpload');
    expect((await client.send(new ListMultipartUploadsCommand({ Bucket: 'orphan-dst' }))).Uploads ?? []).toEqual([]);
    expect(sha256(await readObject(client, 'orphan-dst', 'big.bin'))).toBe(sha256(body));
  });
});

describe("the destination's own Content-MD5 check", () => {
  it('is proven on RGW (BadDigest) and disproven on s3rver 3.7.1, which stores a body whatever its digest', async () => {
    expect(await new S3Bucket(client, 'probe', 'dest').refusesBadContentMd5('probe-object')).toBe(true);
    expect(await listKeys(client, 'probe')).toEqual([]);
    const s3rverS3 = s3rverClient(s3rver.endpoint);
    try {
      expect(await new S3Bucket(s3rverS3, 'probe', 'dest').refusesBadContentMd5('probe-object')).toBe(false);
      expect(await listKeys(s3rverS3, 'probe')).toEqual([]); // the probe object was deleted again
    } finally {
      s3rverS3.destroy();
    }
  });
});

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}
