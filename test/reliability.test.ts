// Reliability under faults, through test/support/fault-proxy.ts in front of real s3rver endpoints:
// a throttling storm with cut bodies on both sides, a source outage of throttling, 20 rounds of kill -9,
// a double Ctrl+C while retried multipart uploads are in flight, and the explicit rate limits.
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3rverClient, startS3rver, type S3rverHandle } from '../scripts/servers/s3rver.js';
import { runCli, s3rverEnv, startCli } from './support/cli.js';
import {
  bucketHashes,
  head,
  keyOfPath,
  MiB,
  readRows,
  seed,
  sha256,
  sha256Of,
  sleep,
  tempDir,
  uploadIdOf,
  waitFor,
  type SeedObject,
  teardown,
} from './support/copy-fixtures.js';
import { seededRandom, startFaultProxy, type FaultProxy } from './support/fault-proxy.js';

let source: S3rverHandle;
let dest: S3rverHandle;
let sourceClient: S3Client;
let destClient: S3Client;
let sourceProxy: FaultProxy;
let destProxy: FaultProxy;
let work: Awaited<ReturnType<typeof tempDir>>;

/** Deterministic object contents from a seeded PRNG: every object differs, every run sees the same bytes. */
function seededBytes(size: number, seedValue: number): Buffer {
  const random = seededRandom(seedValue);
  const out = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i += 1) out[i] = Math.floor(random() * 256);
  return out;
}

/** `small` objects of 100 B to 20 KiB and `big` multipart ones (12 MiB + a bit: 3 parts at 5 MiB). */
function mixedCorpus(prefix: string, small: number, big: number, seedValue: number): SeedObject[] {
  const random = seededRandom(seedValue);
  return [
    ...Array.from({ length: small }, (_, i) => ({
      key: `${prefix}/s/${String(i).padStart(4, '0')}`,
      body: seededBytes(100 + Math.floor(random() * 20_000), seedValue * 7919 + i),
    })),
    ...Array.from({ length: big }, (_, i) => ({
      key: `${prefix}/m/${i}`,
      body: seededBytes(12 * MiB + 1000 + i, seedValue * 104_729 + i),
    })),
  ];
}

const env = (): Record<string, string> => s3rverEnv(sourceProxy.endpoint, destProxy.endpoint);

async function catalog(bucket: string, name: string): Promise<string> {
  const state = work.file(name);
  const result = await runCli(['catalog', '--from', `s3://${bucket}`, '--state', state, '--quiet'], { env: env() });
  expect(result.code, result.stderr).toBe(0);
  return state;
}

/** Every object of `objects` at the destination byte-exact, every row done, nothing extra. */
async function expectAllCopied(state: string, bucket: string, objects: readonly SeedObject[]): Promise<void> {
  const rows = readRows(state);
  expect(rows.filter((r) => r.status !== 'done').map((r) => `${r.key}: ${r.status} ${r.error}`)).toEqual([]);
  expect(rows).toHaveLength(objects.length);
  const hashes = await bucketHashes(destClient, bucket);
  expect(hashes.size).toBe(objects.length);
  const wrong = objects.filter((o) => hashes.get(o.key) !== sha256(o.body)).map((o) => o.key);
  expect(wrong).toEqual([]);
}

beforeAll(async () => {
  [source, dest] = await Promise.all([
    startS3rver({ buckets: ['storm', 'outage', 'kill', 'big', 'rate'] }),
    startS3rver({ buckets: ['dst-storm', 'dst-outage', 'dst-outage2', 'dst-kill', 'dst-abort', 'dst-rate-bw', 'dst-rate-rq'] }),
  ]);
  sourceClient = s3rverClient(source.endpoint);
  destClient = s3rverClient(dest.endpoint);
  [sourceProxy, destProxy] = await Promise.all([
    startFaultProxy(source.endpoint, { seed: 1 }),
    startFaultProxy(dest.endpoint, { seed: 2 }),
  ]);
  work = await tempDir('reliability');
});

afterAll(() => teardown({ proxies: [sourceProxy, destProxy], clients: [sourceClient, destClient], servers: [source, dest], work }));

describe('a storm: 10 % of requests throttled and 5 % of GET bodies cut, on both sides', () => {
  const objects = mixedCorpus('storm', 300, 2, 11);

  it('one run exits 0 with every object byte-exact', async () => {
    await seed(sourceClient, 'storm', objects, 16);
    for (const proxy of [sourceProxy, destProxy]) {
      proxy.reset();
      proxy.setRule('*', { slowDown: 0.1 });
      proxy.setRule('GET', { slowDown: 0.1, cutBody: 0.05 });
    }
    let result;
    let state = '';
    try {
      state = await catalog('storm', 'storm.db');
      result = await runCli(
        ['copy', '--to', 's3://dst-storm', '--state', state, '--concurrency', '8', '--part-size', '5MiB', '--multipart-threshold', '5MiB', '--quiet'],
        { env: env(), timeoutMs: 110_000 },
      );
    } finally {
      sourceProxy.clearRules();
      destProxy.clearRules();
    }
    expect(result.code, result.stderr).toBe(0);
    // The faults were really there, on both sides and for multipart calls too.
    expect(sourceProxy.injectedCount('slowDown', 'GetObject')).toBeGreaterThan(10);
    expect(sourceProxy.injectedCount('cutBody', 'GetObject')).toBeGreaterThan(5);
    expect(destProxy.injectedCount('slowDown', 'PutObject')).toBeGreaterThan(10);
    // Multipart calls went through the same 10 % (2 objects x 3 parts: too few to insist on a hit).
    expect(destProxy.counts().UploadPart).toBeGreaterThanOrEqual(6);
    await expectAllCopied(state, 'dst-storm', objects);
  });
});

describe('a source that throttles every request for a few seconds, then recovers', () => {
  const objects = mixedCorpus('outage', 60, 0, 12);

  beforeAll(async () => {
    await seed(sourceClient, 'outage', objects, 16);
  });

  it('mid-run (8 s of 100 % SlowDown, --max-attempts 2): the run completes, no object failed', async () => {
    const state = await catalog('outage', 'outage.db');
    sourceProxy.reset();
    destProxy.setRule('PUT', { latencyMs: 100 }); // keeps the run going through the outage
    let result;
    try {
      const run = startCli(['copy', '--to', 's3://dst-outage', '--state', state, '--concurrency', '4', '--max-attempts', '2', '--quiet'], {
        env: env(),
      });
      await waitFor(() => sourceProxy.log().filter((e) => e.op === 'GetObject').length >= 5, 30_000, 'five GETs');
      sourceProxy.setRule('*', { slowDown: 1 });
      // Longer than the SDK's own retries of one request (3 attempts, a few seconds of backoff), so the
      // objects in flight must go through several engine attempts: more than --max-attempts allows.
      await sleep(8_000);
      sourceProxy.clearRules();
      result = await run.result;
    } finally {
      sourceProxy.clearRules();
      destProxy.clearRules();
    }
    expect(result.code, result.stderr).toBe(0);
    // Objects really met the outage, more often than --max-attempts x the SDK's 3 attempts would allow.
    expect(sourceProxy.injectedCount('slowDown', 'GetObject')).toBeGreaterThan(12);
    const retried = readRows(state).filter((r) => r.attempts > 2);
    expect(retried.length, 'no object was throttled beyond --max-attempts').toBeGreaterThan(0);
    await expectAllCopied(state, 'dst-outage', objects);
  });

  it('from the start (2 s, HeadBucket included): the run waits it out and completes', async () => {
    const state = await catalog('outage', 'outage2.db');
    sourceProxy.reset();
    sourceProxy.setRule('*', { slowDown: 1 });
    const timer = setTimeout(() => sourceProxy.clearRules(), 2_000);
    let result;
    try {
      result = await runCli(['copy', '--to', 's3://dst-outage2', '--state', state, '--concurrency', '4', '--max-attempts', '2', '--quiet'], {
        env: env(),
      });
    } finally {
      clearTimeout(timer);
      sourceProxy.clearRules();
    }
    expect(result.code, result.stderr).toBe(0);
    expect(sourceProxy.injectedCount('slowDown', 'HeadBucket')).toBeGreaterThanOrEqual(3); // one whole SDK retry cycle failed
    await expectAllCopied(state, 'dst-outage2', objects);
  });
});

describe('20 rounds of kill -9 at seeded moments, then a final run', () => {
  const objects = mixedCorpus('kill', 400, 4, 13);
  const expected = new Map(objects.map((o) => [o.key, sha256(o.body)]));

  it('never marks done what is not byte-exact; the final run leaves nothing missing or corrupted', { timeout: 240_000 }, async () => {
    await seed(sourceClient, 'kill', objects, 16);
    const state = await catalog('kill', 'kill.db');
    // Latency keeps each round's work small enough that 20 rounds do not finish the corpus by accident.
    destProxy.setRule('PutObject', { latencyMs: 150 });
    destProxy.setRule('UploadPart', { latencyMs: 300 });
    const random = seededRandom(20240601);
    const args = ['copy', '--to', 's3://dst-kill', '--state', state, '--concurrency', '4', '--part-size', '5MiB', '--multipart-threshold', '5MiB', '--part-concurrency', '2', '--quiet'];
    /** ETags of done rows already proven byte-exact: later rounds re-check them with HeadObject. */
    const proven = new Map<string, string>();
    let killed = 0;
    try {
      for (let round = 1; round <= 20; round += 1) {
        const delay = 300 + Math.floor(random() * 1700);
        const run = startCli(args, { env: env() });
        await sleep(delay);
        if (run.child.exitCode === null) run.child.kill('SIGKILL');
        const result = await run.result;
        if (result.signal === 'SIGKILL') killed += 1;
        else expect(result.code, `round ${round}: ${result.stderr}`).toBe(0);

        for (const row of readRows(state).filter((r) => r.status === 'done')) {
          const known = proven.get(row.key);
          if (known !== undefined) {
            expect((await head(destClient, 'dst-kill', row.key)).ETag, `round ${round}: ${row.key}`).toBe(known);
            continue;
          }
          expect(await sha256Of(destClient, 'dst-kill', row.key), `round ${round}: ${row.key} done but not byte-exact`).toBe(
            expected.get(row.key),
          );
          proven.set(row.key, (await head(destClient, 'dst-kill', row.key)).ETag!);
        }
      }
    } finally {
      destProxy.clearRules();
    }
    expect(killed, 'most rounds were really killed mid-run').toBeGreaterThanOrEqual(15);
    const final = await runCli(args, { env: env() });
    expect(final.code, final.stderr).toBe(0);
    await expectAllCopied(state, 'dst-kill', objects);
  });
});

describe('double Ctrl+C while multipart uploads are being restarted under throttling', () => {
  const objects: SeedObject[] = ['big/1', 'big/2', 'big/3'].map((key, i) => ({ key, body: seededBytes(20 * MiB, 31 + i) }));

  it('exit 130; every upload of ours that did not complete got an AbortMultipartUpload; a rerun finishes', async () => {
    await seed(sourceClient, 'big', objects, 3);
    const state = await catalog('big', 'abort.db');
    destProxy.reset();
    // Every UploadPart throttled at first: once the SDK's own retries give up, the engine restarts the object
    // with a new multipart upload; then parts go through (slowly) and the double Ctrl+C lands mid-upload.
    destProxy.setRule('UploadPart', { slowDown: 1, latencyMs: 50 });
    const uploadsOf = (key: string): Set<string | undefined> =>
      new Set(
        destProxy
          .log()
          .filter((e) => e.op === 'UploadPart' && keyOfPath(e.path, 'dst-abort') === key)
          .map(uploadIdOf),
      );
    let result;
    try {
      const run = startCli(
        ['copy', '--to', 's3://dst-abort', '--state', state, '--concurrency', '3', '--part-size', '5MiB', '--multipart-threshold', '5MiB', '--part-concurrency', '1', '--quiet'],
        { env: env() },
      );
      // Wait for a retried object: one key with parts in two different uploads.
      await waitFor(() => objects.some((o) => uploadsOf(o.key).size >= 2), 30_000, 'an upload restarted after throttling');
      destProxy.setRule('UploadPart', { slowDown: 0.1, latencyMs: 150 });
      await waitFor(() => destProxy.log().some((e) => e.op === 'UploadPart' && e.status === 200), 30_000, 'a part stored');
      run.child.kill('SIGINT');
      await sleep(500);
      run.child.kill('SIGINT');
      result = await run.result;
    } finally {
      destProxy.clearRules();
    }
    expect(result.code, result.stderr).toBe(130);
    await waitFor(() => destProxy.log().every((e) => e.status !== 0), 5_000, 'the proxy to settle').catch(() => undefined);

    // s3rver answers AbortMultipartUpload with 405 and cannot list uploads (501): the proof is the log.
    const log = destProxy.log();
    const ofKey = (key: string, op: string) => log.filter((e) => e.op === op && keyOfPath(e.path, 'dst-abort') === key);
    const rows = new Map(readRows(state).map((r) => [r.key, r]));
    let restarted = 0;
    for (const { key } of objects) {
      const uploads = uploadsOf(key);
      const completed = new Set(ofKey(key, 'CompleteMultipartUpload').filter((e) => e.status === 200).map(uploadIdOf));
      const aborted = new Set(ofKey(key, 'AbortMultipartUpload').map(uploadIdOf));
      if (uploads.size >= 2) restarted += 1;
      for (const uploadId of uploads) {
        if (completed.has(uploadId)) continue;
        expect(aborted, `${key}: upload ${uploadId} left open`).toContain(uploadId);
      }
      const created = ofKey(key, 'CreateMultipartUpload').filter((e) => e.status === 200).length;
      expect(aborted.size + completed.size, `${key}: uploads created but neither completed nor aborted`).toBeGreaterThanOrEqual(created);
      expect(['pending', 'done'], key).toContain(rows.get(key)!.status);
    }
    expect(restarted).toBeGreaterThan(0);

    const rerun = await runCli(['copy', '--to', 's3://dst-abort', '--state', state, '--part-size', '5MiB', '--multipart-threshold', '5MiB', '--quiet'], { env: env() });
    expect(rerun.code, rerun.stderr).toBe(0);
    await expectAllCopied(state, 'dst-abort', objects);
  });
});

describe('explicit limits', () => {
  const objects: SeedObject[] = Array.from({ length: 24 }, (_, i) => ({ key: `rate/${i}`, body: seededBytes(128 * 1024, 500 + i) }));

  beforeAll(async () => {
    await seed(sourceClient, 'rate', objects, 8);
  });

  it('--max-bandwidth 1MiB: 3 MiB take at least 2 s (one second of burst), all byte-exact', async () => {
    const state = await catalog('rate', 'rate-bw.db');
    const started = Date.now();
    const result = await runCli(['copy', '--to', 's3://dst-rate-bw', '--state', state, '--max-bandwidth', '1MiB', '--quiet'], { env: env() });
    const elapsed = Date.now() - started;
    expect(result.code, result.stderr).toBe(0);
    expect(elapsed).toBeGreaterThanOrEqual(2_000);
    expect(elapsed).toBeLessThan(20_000);
    await expectAllCopied(state, 'dst-rate-bw', objects);
  });

  it('--max-requests-per-second 10: ~50 requests (2 HeadBucket, 24 GET, 24 PUT) take at least 3.5 s', async () => {
    const state = await catalog('rate', 'rate-rq.db');
    sourceProxy.reset();
    destProxy.reset();
    const started = Date.now();
    const result = await runCli(['copy', '--to', 's3://dst-rate-rq', '--state', state, '--max-requests-per-second', '10', '--quiet'], {
      env: env(),
    });
    const elapsed = Date.now() - started;
    expect(result.code, result.stderr).toBe(0);
    const requests = sourceProxy.log().length + destProxy.log().length;
    expect(requests).toBeGreaterThanOrEqual(50);
    // 10 of burst, then 10 a second for the rest.
    expect(elapsed).toBeGreaterThanOrEqual(((requests - 10) / 10) * 1000 - 300);
    await expectAllCopied(state, 'dst-rate-rq', objects);
  });
});
