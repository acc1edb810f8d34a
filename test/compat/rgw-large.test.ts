// Part-level resume and kept uploads on Ceph RGW, which lists parts and uploads and really aborts them
// (s3rver does neither): a kill -9 mid-upload resumed from the parts RGW lists; an upload aborted behind
// our back started over; `abort-uploads` aborting kept uploads and strays at our keys, leaving others.
import type { ChildProcess } from 'node:child_process';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRgw, type RgwHandle, type RgwUser } from '../servers/rgw.js';
import { withRaw } from '../support/catalog-fixtures.js';
import { runCli, startCli } from '../support/cli.js';
import { bytes, MiB, multipartEtagOf as multipartEtag, readObject, rowsByKey, sha256, tempDir, waitFor } from '../support/copy-fixtures.js';
import { startRequestProxy, type RequestInfo, type RequestProxy } from '../support/request-proxy.js';

const USER = { uid: 'large-user', access: 'LARGEUSERACCESSKEY01', secret: 'large-user-secret-key-000000000000000000' };
const FLAGS = ['--multipart-threshold', '5MiB', '--part-size', '5MiB', '--part-concurrency', '2', '--quiet'];
const PARTS = 12;

let rgw: RgwHandle;
let user: RgwUser;
let client: S3Client;
let destProxy: RequestProxy;
let work: Awaited<ReturnType<typeof tempDir>>;
let onDest: ((info: RequestInfo) => Promise<void> | void) | undefined;
const body = bytes(PARTS * 5 * MiB);

beforeAll(async () => {
  [rgw, work] = await Promise.all([startRgw(), tempDir('rgw-large')]);
  user = await rgw.createUser(USER.uid, USER.access, USER.secret);
  client = new S3Client({
    endpoint: rgw.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: user.accessKeyId, secretAccessKey: user.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  for (const bucket of ['src', 'dst-kill', 'dst-gone', 'dst-abort']) await client.send(new CreateBucketCommand({ Bucket: bucket }));
  await client.send(new PutObjectCommand({ Bucket: 'src', Key: 'big.bin', Body: body }));
  await client.send(new PutObjectCommand({ Bucket: 'src', Key: 'small.txt', Body: Buffer.from('small') }));
  destProxy = await startRequestProxy(rgw.endpoint, { onRequest: async (info) => void (await onDest?.(info)) });
}, 180_000);

afterAll(async () => {
  await destProxy?.stop();
  client?.destroy();
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

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}
