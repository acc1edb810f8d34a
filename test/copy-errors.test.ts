// copy when things go wrong: invalid usage (exit 2), a missing destination bucket and refused
// credentials (exit 1, fast, nothing marked done), a state file already in use (exit 1), and an object
// whose every read fails (recorded as failed, exit 3; a later run without the fault finishes it).
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3rverClient, startS3rver, type S3rverHandle } from '../scripts/servers/s3rver.js';
import { runCli, s3rverEnv, startCli } from './support/cli.js';
import {
  bytes,
  keyOfPath,
  listKeys,
  readRows,
  seed,
  sha256,
  sha256Of,
  tempDir,
  waitFor,
  writtenKeys,
  type SeedObject,
  cloneState,
  teardown,
} from './support/copy-fixtures.js';
import { startRequestProxy, type RequestProxy } from './support/request-proxy.js';

const BAD_KEY = 'bad/object.bin';
const OBJECTS: SeedObject[] = [
  { key: 'a.txt', body: bytes(1000) },
  { key: BAD_KEY, body: bytes(2000) },
  { key: 'c/d.txt', body: bytes(3000) },
  { key: 'e.bin', body: bytes(4000) },
  { key: 'f g.bin', body: bytes(5000) },
];

let source: S3rverHandle;
let dest: S3rverHandle;
let sourceClient: S3Client;
let destClient: S3Client;
let work: Awaited<ReturnType<typeof tempDir>>;
/** In front of the source (the catalog and every copy go through it): injects GetObject failures. */
let sourceProxy: RequestProxy;
/** In front of the destination: counts writes; can slow PutObject down. */
let destProxy: RequestProxy;
let failBadKey = false;
/** While set, the destination proxy holds every PutObject until it resolves. */
let putGate: Promise<void> | undefined;
/** While set, the source proxy holds HeadBucket until it resolves. */
let sourceHeadGate: Promise<void> | undefined;
/** Called when the destination proxy receives a HeadBucket. */
let onDestHeadBucket: (() => void) | undefined;
let template: string;

const env = (extra: Record<string, string> = {}): Record<string, string> => ({
  ...s3rverEnv(sourceProxy.endpoint, destProxy.endpoint),
  ...extra,
});

/** A fresh state file holding the catalog of the source (copied from one catalog run). */
function freshState(name: string): string {
  return cloneState(template, work.file(name));
}

beforeAll(async () => {
  [source, dest] = await Promise.all([
    startS3rver({ buckets: ['src'] }),
    startS3rver({ buckets: ['dst-fail', 'dst-lock', 'dst-creds', 'dst-usage', 'dst-checks'] }),
  ]);
  sourceClient = s3rverClient(source.endpoint);
  destClient = s3rverClient(dest.endpoint);
  sourceProxy = await startRequestProxy(source.endpoint, {
    onRequest: async ({ op, path }) => {
      if (op === 'HeadBucket' && sourceHeadGate) await sourceHeadGate;
      return failBadKey && op === 'GetObject' && keyOfPath(path, 'src') === BAD_KEY
        ? { status: 500, code: 'InternalError', message: 'injected: we encountered an internal error' }
        : undefined;
    },
  });
  destProxy = await startRequestProxy(dest.endpoint, {
    onRequest: async ({ op }) => {
      if (op === 'HeadBucket') onDestHeadBucket?.();
      if (op === 'PutObject' && putGate) await putGate;
      return undefined;
    },
  });
  work = await tempDir('errors');
  await seed(sourceClient, 'src', OBJECTS);
  template = work.file('template.db');
  const catalog = await runCli(['catalog', '--from', 's3://src', '--state', template, '--quiet'], { env: env() });
  expect(catalog.code, catalog.stderr).toBe(0);
  expect(readRows(template)).toHaveLength(OBJECTS.length);
});

afterAll(() => teardown({ proxies: [sourceProxy, destProxy], clients: [sourceClient, destClient], servers: [source, dest], work }));

describe('invalid usage exits 2 and touches nothing', () => {
  const cases: Array<[string, string[], () => Record<string, string>, RegExp]> = [
    ['--from that is not the catalog’s source', ['--to', 's3://dst-usage', '--from', 's3://other-bucket'], () => env(), /--from.*does not match the catalog/s],
    ['--from with another prefix of the same bucket', ['--to', 's3://dst-usage', '--from', 's3://src/c/'], () => env(), /does not match the catalog/],
    [
      '--to the source bucket on the same endpoint',
      ['--to', 's3://src'],
      () => env({ DEST_ENDPOINT: sourceProxy.endpoint }),
      /overlaps the source/,
    ],
    ['--part-size below 5 MiB', ['--to', 's3://dst-usage', '--part-size', '1KiB'], () => env(), /--part-size/],
    ['--concurrency 0', ['--to', 's3://dst-usage', '--concurrency', '0'], () => env(), /--concurrency/],
    ['--sort with an unknown order', ['--to', 's3://dst-usage', '--sort', 'random'], () => env(), /--sort|random/],
  ];

  it.each(cases)('%s', async (_name, args, makeEnv, message) => {
    const state = freshState(`usage-${Math.random().toString(36).slice(2)}.db`);
    const before = readRows(state);
    sourceProxy.reset();
    destProxy.reset();
    const result = await runCli(['copy', '--state', state, '--quiet', ...args], { env: makeEnv() });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toMatch(message);
    // Refused before any request to either side; the state file's rows are as they were.
    expect(sourceProxy.log()).toEqual([]);
    expect(destProxy.log()).toEqual([]);
    expect(readRows(state)).toEqual(before);
    expect(await listKeys(destClient, 'dst-usage')).toEqual([]);
  });
});

describe('the bucket checks before a run', () => {
  it('ask both sides at once: the destination is asked while the source has not answered yet', async () => {
    const state = freshState('checks-at-once.db');
    let destAsked!: () => void;
    const destHead = new Promise<'the destination was asked'>((resolve) => (destAsked = () => resolve('the destination was asked')));
    // The source's HeadBucket is held until the destination's arrives. Checks made one after the other
    // would send that one only after the source answered: after this gate gives up, 5 s later.
    const givesUp = new Promise<'gave up'>((resolve) => setTimeout(() => resolve('gave up'), 5_000).unref());
    let released: string | undefined;
    onDestHeadBucket = destAsked;
    sourceHeadGate = Promise.race([destHead, givesUp]).then((why) => {
      released = why;
    });
    try {
      const result = await runCli(['copy', '--to', 's3://dst-checks', '--state', state, '--quiet'], { env: env() });
      expect(result.code, result.stderr).toBe(0);
      expect(released).toBe('the destination was asked');
      expect(readRows(state).every((row) => row.status === 'done')).toBe(true);
    } finally {
      sourceHeadGate = undefined;
      onDestHeadBucket = undefined;
    }
  });
});

describe('fatal destination problems stop the run at once', () => {
  it('a missing destination bucket: exit 1 within seconds, the message names it, no row changes', async () => {
    const state = freshState('missing-bucket.db');
    const before = readRows(state);
    sourceProxy.reset();
    destProxy.reset();
    const started = Date.now();
    const result = await runCli(['copy', '--to', 's3://no-such-bucket', '--state', state, '--quiet'], { env: env() });
    const elapsed = Date.now() - started;
    expect(result.code, result.stderr).toBe(1);
    expect(elapsed).toBeLessThan(15_000);
    expect(result.stderr).toMatch(/no-such-bucket/);
    expect(result.stderr).toMatch(/does not exist/);
    expect(readRows(state)).toEqual(before);
    expect(destProxy.log().filter((e) => e.op === 'PutObject' || e.op === 'CreateMultipartUpload')).toEqual([]);
  });

  it('wrong destination credentials: exit 1 fast, the message blames the destination credentials, nothing done', async () => {
    const state = freshState('wrong-credentials.db');
    destProxy.reset();
    const started = Date.now();
    const result = await runCli(['copy', '--to', 's3://dst-creds', '--state', state, '--quiet', '--concurrency', '2'], {
      env: env({ DEST_AWS_ACCESS_KEY_ID: 'WRONG' }),
    });
    const elapsed = Date.now() - started;
    expect(result.code, result.stderr).toBe(1);
    expect(elapsed).toBeLessThan(15_000);
    expect(result.stderr).toMatch(/destination/i);
    expect(result.stderr).toMatch(/credentials/i);
    expect(result.stderr).toMatch(/DEST_AWS_ACCESS_KEY_ID/);
    expect(result.stderr).not.toMatch(/S3RVER/); // the secret is never printed
    const rows = readRows(state);
    expect(rows.filter((r) => r.status === 'done')).toEqual([]);
    expect(rows.filter((r) => r.status === 'in_flight')).toEqual([]);
    // Stopped at the first refusal, not after trying every object.
    expect(destProxy.log().filter((e) => e.op === 'PutObject').length).toBeLessThanOrEqual(2);
    expect(await listKeys(destClient, 'dst-creds')).toEqual([]);
  });

  it('a second copy on a state file in use joins as a worker: both end 0 when all is done, every object written once', async () => {
    const state = freshState('locked.db');
    destProxy.reset();
    let openGate = (): void => undefined;
    putGate = new Promise<void>((resolve) => (openGate = resolve));
    try {
      const first = startCli(['copy', '--to', 's3://dst-lock', '--state', state, '--concurrency', '1', '--quiet'], {
        env: env(),
      });
      // Its first PUT is held at the proxy: the first copy is running and holds that row.
      await waitFor(() => destProxy.log().some((e) => e.op === 'PutObject'), 30_000, 'the first PutObject');
      const second = startCli(['copy', '--to', 's3://dst-lock', '--state', state, '--quiet'], { env: env() });
      // The second worker copies the other rows, then waits for the first one's live lease.
      await waitFor(() => destProxy.log().filter((e) => e.op === 'PutObject').length >= OBJECTS.length, 30_000, 'every PutObject');
      expect(second.child.exitCode).toBeNull();
      openGate();
      const [firstResult, secondResult] = await Promise.all([first.result, second.result]);
      expect(firstResult.code, firstResult.stderr).toBe(0);
      expect(secondResult.code, secondResult.stderr).toBe(0);
    } finally {
      putGate = undefined;
      openGate();
    }
    // Every object written exactly once, all done and byte-exact.
    expect(writtenKeys(destProxy.log(), 'dst-lock').sort()).toEqual(OBJECTS.map((o) => o.key).sort());
    expect(readRows(state).map((r) => r.status)).toEqual(OBJECTS.map(() => 'done'));
    for (const object of OBJECTS) {
      expect(await sha256Of(destClient, 'dst-lock', object.key), object.key).toBe(sha256(object.body));
    }
  });
});

describe('an object that keeps failing', () => {
  it('ends failed with its error and attempts = --max-attempts, exit 3; the others are done; a later run finishes it', async () => {
    const state = freshState('failing.db');
    sourceProxy.reset();
    destProxy.reset();
    failBadKey = true;
    let result;
    try {
      result = await runCli(
        ['copy', '--to', 's3://dst-fail', '--state', state, '--max-attempts', '3', '--concurrency', '2', '--quiet'],
        { env: env() },
      );
    } finally {
      failBadKey = false;
    }
    expect(result.code, result.stderr).toBe(3);
    expect(result.stderr).toContain(BAD_KEY);

    // The fault was really hit, once per attempt at least.
    const badGets = sourceProxy.log().filter((e) => e.op === 'GetObject' && keyOfPath(e.path, 'src') === BAD_KEY);
    expect(badGets.length).toBeGreaterThanOrEqual(3);
    expect(badGets.every((e) => e.status === 500)).toBe(true);

    const rows = new Map(readRows(state).map((r) => [r.key, r]));
    const bad = rows.get(BAD_KEY)!;
    expect(bad.status).toBe('failed');
    expect(bad.attempts).toBe(3);
    expect(bad.error).toMatch(/InternalError/);
    expect(bad.error).toMatch(/source/);
    for (const object of OBJECTS.filter((o) => o.key !== BAD_KEY)) {
      expect(rows.get(object.key)!.status, object.key).toBe('done');
      expect(await sha256Of(destClient, 'dst-fail', object.key), object.key).toBe(sha256(object.body));
    }
    expect(await sha256Of(destClient, 'dst-fail', BAD_KEY)).toBeUndefined();

    const status = await runCli(['status', '--state', state, '--json'], { env: env() });
    expect(status.code, status.stderr).toBe(0);
    const summary = JSON.parse(status.stdout) as { counts: Array<{ status: string; objects: number }> };
    expect(summary.counts).toContainEqual(expect.objectContaining({ status: 'failed', objects: 1 }));

    // Without the fault, the next run copies just that object and exits 0.
    destProxy.reset();
    const again = await runCli(['copy', '--to', 's3://dst-fail', '--state', state, '--quiet'], { env: env() });
    expect(again.code, again.stderr).toBe(0);
    expect(writtenKeys(destProxy.log(), 'dst-fail')).toEqual([BAD_KEY]);
    const after = new Map(readRows(state).map((r) => [r.key, r]));
    expect(after.get(BAD_KEY)!.status).toBe('done');
    expect(after.get(BAD_KEY)!.error).toBeNull();
    expect([...after.values()].every((r) => r.status === 'done')).toBe(true);
    expect(await sha256Of(destClient, 'dst-fail', BAD_KEY)).toBe(sha256(OBJECTS[1]!.body));
  });
});
