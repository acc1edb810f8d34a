// `copy --workers N` as one run on real S3 endpoints (two s3rver instances behind counting proxies):
// one log with one run-start and one run-end for all workers, each object PUT once; a fatal error of
// the workers reported once, with its exit code; one Ctrl+C stops every worker and the rerun finishes;
// without --workers, a small run starts no extra process.
import fs from 'node:fs';
import type { S3Client } from '@aws-sdk/client-s3';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { s3rverClient, startS3rver, type S3rverHandle } from '../scripts/servers/s3rver.js';
import { runCli, s3rverEnv, startCli } from './support/cli.js';
import {
  bucketHashes,
  bytes,
  keyOfPath,
  readRows,
  seed,
  sleep,
  tempDir,
  teardown,
  waitFor,
  type SeedObject,
} from './support/copy-fixtures.js';
import { startRequestProxy, type ProxyDecision, type RequestInfo, type RequestProxy } from './support/request-proxy.js';

let source: S3rverHandle;
let dest: S3rverHandle;
let sourceClient: S3Client;
let destClient: S3Client;
let sourceProxy: RequestProxy;
let destProxy: RequestProxy;
let work: Awaited<ReturnType<typeof tempDir>>;
let onDestRequest: ((info: RequestInfo) => ProxyDecision | Promise<ProxyDecision>) | undefined;
const objects: SeedObject[] = Array.from({ length: 60 }, (_, i) => ({ key: `w/${String(i).padStart(3, '0')}.bin`, body: bytes(700 + i * 13) }));

beforeAll(async () => {
  [source, dest] = await Promise.all([startS3rver({ buckets: ['src'] }), startS3rver({ buckets: ['logged', 'stopped', 'small'] })]);
  sourceClient = s3rverClient(source.endpoint);
  destClient = s3rverClient(dest.endpoint);
  sourceProxy = await startRequestProxy(source.endpoint);
  destProxy = await startRequestProxy(dest.endpoint, { onRequest: (info) => onDestRequest?.(info) });
  work = await tempDir('workers-cli');
  await seed(sourceClient, 'src', objects);
});

beforeEach(() => {
  onDestRequest = undefined;
  sourceProxy.reset();
  destProxy.reset();
});

afterAll(() => teardown({ proxies: [sourceProxy, destProxy], clients: [sourceClient, destClient], servers: [source, dest], work }));

const env = (): Record<string, string> => s3rverEnv(sourceProxy.endpoint, destProxy.endpoint);

async function catalogInto(name: string): Promise<string> {
  const state = work.file(`${name}.db`);
  const result = await runCli(['catalog', '--from', 's3://src', '--state', state, '--quiet'], { env: env() });
  expect(result.code, result.stderr).toBe(0);
  return state;
}

/** PUTs per destination key seen by the proxy. */
function putsPerKey(bucket: string): Map<string, number> {
  const puts = new Map<string, number>();
  for (const entry of destProxy.log()) {
    if (entry.op !== 'PutObject') continue;
    const key = keyOfPath(entry.path, bucket);
    puts.set(key, (puts.get(key) ?? 0) + 1);
  }
  return puts;
}

const expected = new Map(objects.map((object) => [object.key, object.body]));

async function expectDestinationIdentical(bucket: string): Promise<void> {
  const [src, dst] = await Promise.all([bucketHashes(sourceClient, 'src'), bucketHashes(destClient, bucket)]);
  expect(dst.size).toBe(expected.size);
  expect(dst).toEqual(src);
}

describe('copy --workers 2', () => {
  it('one log for the run: one run-start, one run-end with the totals, one object-done per object, each PUT once', async () => {
    const state = await catalogInto('logged');
    const logFile = work.file('logged.jsonl');
    const result = await runCli(
      ['copy', '--to', 's3://logged', '--state', state, '--workers', '2', '--concurrency', '4', '--log-format', 'json', '--log-file', logFile],
      { env: env() },
    );
    expect(result.code, result.stderr).toBe(0);
    await expectDestinationIdentical('logged');
    const puts = putsPerKey('logged');
    expect(puts.size).toBe(objects.length);
    expect([...puts.values()].every((count) => count === 1)).toBe(true);
    const lines = fs.readFileSync(logFile, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.filter((line) => line.event === 'run-start')).toHaveLength(1);
    const ends = lines.filter((line) => line.event === 'run-end');
    expect(ends).toHaveLength(1);
    expect(ends[0]).toMatchObject({ outcome: 'completed', exitCode: 0, objectsCopied: objects.length });
    const done = lines.filter((line) => line.event === 'object-done').map((line) => line.key as string);
    expect(done.sort()).toEqual(objects.map((object) => object.key).sort());
    // Two worker processes ran: each records its own run in the state.
    const db = new Database(state, { readonly: true });
    try {
      expect(db.prepare("SELECT COUNT(*) AS n FROM runs WHERE command = 'copy'").get()).toEqual({ n: 2 });
    } finally {
      db.close();
    }
  });

  it('a missing destination bucket: one message naming it, exit 1, no row changes', async () => {
    const state = await catalogInto('fatal');
    const before = readRows(state);
    const result = await runCli(['copy', '--to', 's3://no-such-bucket', '--state', state, '--workers', '2'], { env: env() });
    expect(result.code, result.stderr).toBe(1);
    const messages = result.stderr.split('\n').filter((line) => line.startsWith('s3migrate:'));
    expect(messages, result.stderr).toHaveLength(1);
    expect(messages[0]).toMatch(/no-such-bucket/);
    expect(readRows(state).map((row) => row.status)).toEqual(before.map((row) => row.status));
  });

  it('one Ctrl+C stops every worker (exit 130); the same command again finishes, each object in place once', async () => {
    const state = await catalogInto('stopped');
    // PUTs wait a while: the run is still copying when Ctrl+C comes.
    onDestRequest = async (info): Promise<ProxyDecision> => {
      if (info.op === 'PutObject') await sleep(150);
      return 'pass';
    };
    const run = startCli(['copy', '--to', 's3://stopped', '--state', state, '--workers', '2', '--concurrency', '2'], { env: env() });
    await waitFor(() => (destProxy.counts().PutObject ?? 0) >= 6, 20_000, 'a few PUTs');
    run.child.kill('SIGINT');
    const stopped = await run.result;
    expect(stopped.code, stopped.stderr).toBe(130);
    const afterStop = readRows(state);
    expect(afterStop.filter((row) => row.status === 'in_flight')).toHaveLength(0);
    expect(afterStop.filter((row) => row.status === 'pending').length).toBeGreaterThan(0);
    onDestRequest = undefined;
    const again = await runCli(['copy', '--to', 's3://stopped', '--state', state, '--workers', '2'], { env: env() });
    expect(again.code, again.stderr).toBe(0);
    await expectDestinationIdentical('stopped');
    expect(readRows(state).every((row) => row.status === 'done')).toBe(true);
  });
});

describe('copy without --workers', () => {
  it('a run of fewer objects than a worker is worth starts no second process: one copy run in the state', async () => {
    const state = await catalogInto('small');
    const result = await runCli(['copy', '--to', 's3://small', '--state', state, '--log-format', 'json'], { env: env() });
    expect(result.code, result.stderr).toBe(0);
    const start = result.stderr
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((line) => line.event === 'run-start');
    expect(start?.pid).toBeTypeOf('number');
    await expectDestinationIdentical('small');
    const db = new Database(state, { readonly: true });
    try {
      expect(db.prepare("SELECT COUNT(*) AS n FROM runs WHERE command = 'copy'").get()).toEqual({ n: 1 });
    } finally {
      db.close();
    }
  });
});
