// Part-level resume of one large object (200 MiB in 5 MiB parts) on real s3rver endpoints, counted
// through proxies: kill -9 after ~60 % of its parts, then a rerun that sends only the missing parts; the
// same with a first Ctrl+C; an upload aborted behind our back (the rerun starts over cleanly); a part
// that fails twice is retried alone.
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { s3rverClient, startS3rver, type S3rverHandle } from '../scripts/servers/s3rver.js';
import { withRaw } from './support/catalog-fixtures.js';
import { runCli, s3rverEnv, startCli } from './support/cli.js';
import { bytes, cloneState, keyOfPath, MiB, rowsByKey, seed, sha256, sha256Of, tempDir, teardown, uploadIdOf, waitFor } from './support/copy-fixtures.js';
import { startRequestProxy, type InjectedError, type RequestInfo, type RequestProxy } from './support/request-proxy.js';

const KEY = 'backup/dump.bin';
const SIZE = 200 * MiB;
const PARTS = 40;
const FLAGS = ['--multipart-threshold', '5MiB', '--part-size', '5MiB', '--part-concurrency', '4', '--quiet'];

let source: S3rverHandle;
let dest: S3rverHandle;
let sourceClient: S3Client;
let destClient: S3Client;
let sourceProxy: RequestProxy;
let destProxy: RequestProxy;
let work: Awaited<ReturnType<typeof tempDir>>;
let body: Buffer;
let catalogTemplate: string;
let onDest: ((info: RequestInfo) => Promise<InjectedError | void> | InjectedError | void) | undefined;
let onDestAnswer: ((info: RequestInfo, status: number) => Promise<void> | void) | undefined;

beforeAll(async () => {
  [source, dest] = await Promise.all([
    startS3rver({ buckets: ['src'] }),
    startS3rver({ buckets: ['dst-kill', 'dst-int', 'dst-gone', 'dst-part', 'dst-done'] }),
  ]);
  sourceClient = s3rverClient(source.endpoint);
  destClient = s3rverClient(dest.endpoint);
  sourceProxy = await startRequestProxy(source.endpoint);
  destProxy = await startRequestProxy(dest.endpoint, {
    onRequest: async (info) => (await onDest?.(info)) ?? undefined,
    onResponse: async (info, status) => onDestAnswer?.(info, status),
  });
  work = await tempDir('mp-resume');
  body = bytes(SIZE);
  await seed(sourceClient, 'src', [{ key: KEY, body }]);
  catalogTemplate = work.file('template.db');
  const catalog = await runCli(['catalog', '--from', 's3://src', '--state', catalogTemplate, '--quiet'], { env: env() });
  expect(catalog.code, catalog.stderr).toBe(0);
}, 120_000);

beforeEach(() => {
  onDest = undefined;
  onDestAnswer = undefined;
  sourceProxy.reset();
  destProxy.reset();
});

afterAll(() => teardown({ proxies: [sourceProxy, destProxy], clients: [sourceClient, destClient], servers: [source, dest], work }));

function env(): Record<string, string> {
  return s3rverEnv(sourceProxy?.endpoint ?? source.endpoint, destProxy?.endpoint ?? dest.endpoint);
}

function freshState(name: string): string {
  return cloneState(catalogTemplate, work.file(name));
}

/** Part numbers of the UploadPart requests the destination confirmed (status 200), in arrival order. */
function partsConfirmed(): number[] {
  return destProxy
    .log()
    .filter((e) => e.op === 'UploadPart' && e.status === 200)
    .map((e) => Number(new URLSearchParams(e.query).get('partNumber')));
}

/** Part numbers of every UploadPart request sent (whatever its answer). */
function partsSent(): number[] {
  return destProxy
    .log()
    .filter((e) => e.op === 'UploadPart')
    .map((e) => Number(new URLSearchParams(e.query).get('partNumber')));
}

function recordedParts(state: string): number[] {
  return withRaw(state, (db) => db.prepare('SELECT part_number FROM parts ORDER BY 1').pluck().all() as number[]);
}

const ops = (op: string): number => destProxy.log().filter((e) => e.op === op).length;
const all = Array.from({ length: PARTS }, (_, i) => i + 1);

async function expectCopied(bucket: string, state: string): Promise<void> {
  expect(await sha256Of(destClient, bucket, KEY)).toBe(sha256(body));
  const row = rowsByKey(state).get(KEY)!;
  // s3rver's completed multipart object carries the whole object's MD5: the source's own ETag.
  expect({ status: row.status, evidence: row.evidence }).toEqual({ status: 'done', evidence: 'md5' });
  expect(recordedParts(state)).toEqual([]); // the upload's record goes with the done mark
}

describe('one 200 MiB object in 40 parts', () => {
  it('kill -9 after ~60 % of its parts: the state shows them, the rerun sends only the missing parts', async () => {
    const state = freshState('kill.db');
    const run = startCli(['copy', '--to', 's3://dst-kill', '--state', state, ...FLAGS], { env: env() });
    await waitFor(() => partsConfirmed().length >= 24, 60_000, '24 parts confirmed');
    run.child.kill('SIGKILL');
    expect((await run.result).signal).toBe('SIGKILL');
    await waitFor(() => destProxy.log().every((e) => e.status !== 0), 5_000, 'the proxy to settle').catch(() => undefined);

    const recorded = recordedParts(state);
    const confirmed = new Set(partsConfirmed());
    // Recorded parts are parts the destination confirmed; only the last few confirmed ones can be
    // missing from the record (their commit was under way at the kill).
    expect(recorded.length).toBeGreaterThanOrEqual(20);
    for (const n of recorded) expect(confirmed.has(n), `part ${n} recorded but not confirmed`).toBe(true);
    expect(confirmed.size - recorded.length).toBeLessThanOrEqual(8);
    const status = await runCli(['status', '--state', state], { env: env() });
    expect(status.stdout).toMatch(new RegExp(`${KEY}: ${recorded.length}/${PARTS} parts`));

    destProxy.reset();
    const rerun = await runCli(['copy', '--to', 's3://dst-kill', '--state', state, ...FLAGS], { env: env() });
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(ops('CreateMultipartUpload')).toBe(0); // the kept upload was resumed
    const sent = partsSent().sort((a, b) => a - b);
    expect(sent).toEqual(all.filter((n) => !recorded.includes(n))); // each missing part once, nothing else
    expect(ops('CompleteMultipartUpload')).toBe(1);
    await expectCopied('dst-kill', state);
  });

  it('a first Ctrl+C: the parts in flight finish and are recorded; the rerun sends exactly the rest', async () => {
    const state = freshState('interrupt.db');
    const run = startCli(['copy', '--to', 's3://dst-int', '--state', state, ...FLAGS], { env: env() });
    await waitFor(() => partsConfirmed().length >= 24, 60_000, '24 parts confirmed');
    run.child.kill('SIGINT');
    const result = await run.result;
    expect(result.code, result.stderr).toBe(130);
    const confirmed = partsConfirmed().sort((a, b) => a - b);
    expect(confirmed.length).toBeLessThan(PARTS);
    expect(recordedParts(state)).toEqual(confirmed); // every confirmed part recorded: nothing lost by the stop
    expect(rowsByKey(state).get(KEY)!.status).toBe('pending');
    expect(ops('AbortMultipartUpload') + ops('CompleteMultipartUpload')).toBe(0);

    destProxy.reset();
    const rerun = await runCli(['copy', '--to', 's3://dst-int', '--state', state, ...FLAGS], { env: env() });
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(ops('CreateMultipartUpload')).toBe(0);
    expect(partsSent().sort((a, b) => a - b)).toEqual(all.filter((n) => !confirmed.includes(n)));
    await expectCopied('dst-int', state);
  });

  it('an upload aborted behind our back: the rerun says so and starts over cleanly', async () => {
    const state = freshState('gone.db');
    const run = startCli(['copy', '--to', 's3://dst-gone', '--state', state, ...FLAGS], { env: env() });
    await waitFor(() => partsConfirmed().length >= 10, 60_000, '10 parts confirmed');
    run.child.kill('SIGINT');
    expect((await run.result).code).toBe(130);
    const abandoned = uploadIdOf(destProxy.log().find((e) => e.op === 'UploadPart')!);
    // The upload is aborted elsewhere: from now on the destination answers it with NoSuchUpload (as S3
    // does; s3rver itself cannot abort uploads).
    onDest = (info) =>
      new URLSearchParams(info.query).get('uploadId') === abandoned
        ? { status: 404, code: 'NoSuchUpload', message: 'The specified upload does not exist.' }
        : undefined;
    destProxy.reset();
    const loud = FLAGS.filter((flag) => flag !== '--quiet');
    const rerun = await runCli(['copy', '--to', 's3://dst-gone', '--state', state, ...loud], { env: env() });
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stderr).toMatch(new RegExp(`${KEY}: starting its multipart upload over: the destination no longer has the upload`));
    expect(ops('CreateMultipartUpload')).toBe(1); // a new upload...
    const fresh = destProxy.log().filter((e) => e.op === 'UploadPart' && e.status === 200);
    expect(new Set(fresh.map(uploadIdOf)).size).toBe(1);
    expect(fresh.map(uploadIdOf)[0]).not.toBe(abandoned);
    expect(fresh.map((e) => Number(new URLSearchParams(e.query).get('partNumber'))).sort((a, b) => a - b)).toEqual(all); // ...with every part
    await expectCopied('dst-gone', state);
  });

  it('kill -9 after the destination completed the upload, before the row was marked: the rerun proves it done and sends nothing', async () => {
    const state = freshState('completed.db');
    const run = startCli(['copy', '--to', 's3://dst-done', '--state', state, ...FLAGS], { env: env() });
    onDestAnswer = async (info, status) => {
      if (info.op !== 'CompleteMultipartUpload' || status !== 200) return;
      const exited = new Promise((resolve) => run.child.once('exit', resolve));
      run.child.kill('SIGKILL');
      await exited;
    };
    expect((await run.result).signal).toBe('SIGKILL');
    expect(rowsByKey(state).get(KEY)!.status).toBe('in_flight');
    expect(await sha256Of(destClient, 'dst-done', KEY)).toBe(sha256(body));

    onDestAnswer = undefined;
    destProxy.reset();
    const rerun = await runCli(['copy', '--to', 's3://dst-done', '--state', state, ...FLAGS], { env: env() });
    expect(rerun.code, rerun.stderr).toBe(0);
    // Recovery: the destination's ETag is the source's own MD5: done, nothing sent again.
    expect(destProxy.log().map((e) => e.op).filter((op) => op !== 'HeadBucket' && op !== 'HeadObject' && op !== 'ListMultipartUploads')).toEqual([]);
    await expectCopied('dst-done', state);
  });

  it('a part that fails twice is retried alone: the other parts are sent once', async () => {
    const state = freshState('part.db');
    let failures = 0;
    onDest = (info) => {
      if (info.op === 'UploadPart' && new URLSearchParams(info.query).get('partNumber') === '7' && failures < 2) {
        failures += 1;
        return { status: 500, code: 'InternalError', message: 'injected' };
      }
      return undefined;
    };
    const result = await runCli(['copy', '--to', 's3://dst-part', '--state', state, ...FLAGS], { env: env() });
    expect(result.code, result.stderr).toBe(0);
    expect(failures).toBe(2);
    const sent = partsSent();
    expect(sent.filter((n) => n === 7)).toHaveLength(3);
    expect(sent.filter((n) => n !== 7).sort((a, b) => a - b)).toEqual(all.filter((n) => n !== 7));
    expect(ops('CreateMultipartUpload')).toBe(1);
    // Each try of part 7 read its range afresh from the source: 40 parts + 2 retries.
    expect(sourceProxy.log().filter((e) => e.op === 'GetObject' && keyOfPath(e.path, 'src') === KEY)).toHaveLength(PARTS + 2);
    expect(rowsByKey(state).get(KEY)!.attempts).toBe(1);
    await expectCopied('dst-part', state);
  });
});
