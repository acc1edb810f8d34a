// copy stopped the hard way and the polite ways: kill -9 mid-run then a rerun that sends only what is
// missing; one Ctrl+C (in-flight objects finish, nothing new starts); two Ctrl+C (in-flight objects are
// aborted with their multipart uploads and stay pending).
import type { ChildProcess } from 'node:child_process';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3rverClient, startS3rver, type S3rverHandle } from '../scripts/servers/s3rver.js';
import { runCli, s3rverEnv, startCli } from './support/cli.js';
import {
  bucketHashes,
  bytes,
  isObjectWrite,
  keyOfPath,
  listKeys,
  MiB,
  readRows,
  seed,
  sha256,
  sha256Of,
  sleep,
  tempDir,
  uploadIdOf,
  waitFor,
  writtenKeys,
  type SeedObject,
  teardown,
} from './support/copy-fixtures.js';
import { startRequestProxy, type LogEntry, type RequestProxy } from './support/request-proxy.js';

let source: S3rverHandle;
let dest: S3rverHandle;
let sourceClient: S3Client;
let destClient: S3Client;
let work: Awaited<ReturnType<typeof tempDir>>;
let proxy: RequestProxy;

/**
 * Set by a test: once the destination has seen `killAfterWrites` writes, the proxy picks the next
 * PutObject, lets the destination store it, and SIGKILLs this child before passing the answer on: the
 * object is at the destination while its row is still in flight.
 */
let victim: ChildProcess | undefined;
let killAfterWrites = Infinity;
let writesSeen = 0;
let killedAtWrites = 0;
let killPath: string | undefined;
let killStatus = 0;
/** Latency the proxy adds to every UploadPart, to keep multipart copies in flight long enough. */
let uploadPartDelayMs = 0;

beforeAll(async () => {
  [source, dest] = await Promise.all([
    startS3rver({ buckets: ['small', 'big'] }),
    startS3rver({ buckets: ['dst-kill', 'dst-drain', 'dst-abort'] }),
  ]);
  sourceClient = s3rverClient(source.endpoint);
  destClient = s3rverClient(dest.endpoint);
  proxy = await startRequestProxy(dest.endpoint, {
    onRequest: async (info) => {
      if (info.op === 'PutObject' || info.op === 'CreateMultipartUpload') {
        writesSeen += 1;
        if (victim && !killPath && writesSeen >= killAfterWrites && info.op === 'PutObject') {
          killPath = info.path;
          killedAtWrites = writesSeen;
        }
      }
      if (info.op === 'UploadPart' && uploadPartDelayMs > 0) await sleep(uploadPartDelayMs);
      return undefined;
    },
    onResponse: async (info, status) => {
      const child = victim;
      if (!child || info.op !== 'PutObject' || info.path !== killPath) return;
      victim = undefined;
      killStatus = status;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
  });
  work = await tempDir('resume');
});

afterAll(() => teardown({ proxies: [proxy], clients: [sourceClient, destClient], servers: [source, dest], work }));

/** Waits until every request the proxy forwarded has been answered (or given up), at most `ms`. */
async function settle(ms = 5_000): Promise<void> {
  await waitFor(() => proxy.log().every((e) => e.status !== 0), ms, 'the proxy to settle').catch(() => undefined);
}

describe('kill -9 at ~40 % and a rerun', () => {
  const objects: SeedObject[] = [
    ...Array.from({ length: 400 }, (_, i) => ({ key: `obj/${String(i).padStart(4, '0')}`, body: bytes(512 + i * 7) })),
    // Multipart at --part-size 5MiB, placed in key order around where the kill lands.
    ...['0150', '0160', '0170'].map((n) => ({ key: `obj/${n}-big`, body: bytes(12 * MiB + 7) })),
  ];
  const hashes = new Map(objects.map((o) => [o.key, sha256(o.body)]));

  it('loses nothing, never marks done what is not there, and re-sends nothing that already arrived', async () => {
    await seed(sourceClient, 'small', objects, 16);
    const state = work.file('kill.db');
    const env = s3rverEnv(source.endpoint, proxy.endpoint);
    const catalog = await runCli(['catalog', '--from', 's3://small', '--state', state, '--quiet'], { env });
    expect(catalog.code, catalog.stderr).toBe(0);

    const args = ['copy', '--to', 's3://dst-kill', '--state', state, '--concurrency', '4', '--part-size', '5MiB', '--multipart-threshold', '5MiB', '--quiet'];
    proxy.reset();
    writesSeen = 0;
    killPath = undefined;
    const killAt = Math.round(objects.length * 0.4);
    killAfterWrites = killAt;
    const run = startCli(args, { env });
    victim = run.child;
    const killed = await run.result;
    victim = undefined;
    killAfterWrites = Infinity;
    expect(killed.signal, `the copy ended by itself: ${killed.stderr}`).toBe('SIGKILL');
    expect(killedAtWrites).toBeGreaterThanOrEqual(killAt);
    expect(killedAtWrites).toBeLessThan(killAt + 10);
    expect(killStatus).toBe(200); // the destination stored that object before the kill
    const killedKey = keyOfPath(killPath!, 'dst-kill');
    await settle();

    // What the destination holds at the kill, byte-exact or not.
    const atKill = await bucketHashes(destClient, 'dst-kill');
    const correctAtKill = new Set(objects.filter((o) => atKill.get(o.key) === hashes.get(o.key)).map((o) => o.key));
    const missingAtKill = objects.filter((o) => !correctAtKill.has(o.key)).map((o) => o.key);
    expect(correctAtKill.size).toBeGreaterThan(objects.length * 0.3);
    expect(missingAtKill.length).toBeGreaterThan(objects.length * 0.5);

    // Durability: every row marked done is at the destination, byte-exact.
    const rowsAtKill = readRows(state);
    const doneAtKill = rowsAtKill.filter((r) => r.status === 'done').map((r) => r.key);
    expect(doneAtKill.length).toBeGreaterThan(0);
    expect(doneAtKill.filter((key) => !correctAtKill.has(key))).toEqual([]);
    // The object whose answer the child never got: stored, but its row still in flight.
    expect(correctAtKill.has(killedKey)).toBe(true);
    expect(rowsAtKill.find((r) => r.key === killedKey)!.status).toBe('in_flight');

    // The rerun, counted from zero (same proxy: the state file remembers the destination endpoint).
    proxy.reset();
    const rerun = await runCli(args, { env });
    expect(rerun.code, rerun.stderr).toBe(0);
    const resent = writtenKeys(proxy.log(), 'dst-kill');
    expect(resent).not.toContain(killedKey);
    expect(resent.filter((key) => correctAtKill.has(key))).toEqual([]); // nothing that had arrived is sent again
    expect(resent.length).toBeLessThanOrEqual(missingAtKill.length);
    expect([...resent].sort()).toEqual([...missingAtKill].sort()); // and everything missing was sent once

    const final = await bucketHashes(destClient, 'dst-kill');
    expect(final.size).toBe(objects.length);
    for (const object of objects) expect(final.get(object.key), object.key).toBe(hashes.get(object.key));
    const rows = readRows(state);
    expect(rows.filter((r) => r.status !== 'done')).toEqual([]);
    expect(rows.every((r) => r.evidence !== null)).toBe(true);
  });
});

describe('Ctrl+C during multipart copies', () => {
  const objects: SeedObject[] = ['big/1', 'big/2', 'big/3'].map((key) => ({ key, body: bytes(40 * MiB) }));
  const hashes = new Map(objects.map((o) => [o.key, sha256(o.body)]));
  const env = (): Record<string, string> => s3rverEnv(source.endpoint, proxy.endpoint);

  beforeAll(async () => {
    await seed(sourceClient, 'big', objects, 3);
  });

  async function catalog(name: string): Promise<string> {
    const state = work.file(name);
    const result = await runCli(['catalog', '--from', 's3://big', '--state', state, '--quiet'], { env: env() });
    expect(result.code, result.stderr).toBe(0);
    return state;
  }

  /** Keys that have at least one UploadPart seen by the proxy. */
  const keysWithParts = (bucket: string): Set<string> =>
    new Set(
      proxy
        .log()
        .filter((e) => e.op === 'UploadPart')
        .map((e) => keyOfPath(e.path, bucket)),
    );

  it('one SIGINT: exit 130 once the objects in flight have finished; they are done, nothing new started', async () => {
    const state = await catalog('drain.db');
    proxy.reset();
    uploadPartDelayMs = 150;
    let result;
    try {
      const run = startCli(
        ['copy', '--to', 's3://dst-drain', '--state', state, '--concurrency', '2', '--part-size', '5MiB', '--multipart-threshold', '5MiB', '--part-concurrency', '1', '--quiet'],
        { env: env() },
      );
      await waitFor(() => keysWithParts('dst-drain').size === 2, 30_000, 'two objects uploading parts');
      run.child.kill('SIGINT');
      result = await run.result;
    } finally {
      uploadPartDelayMs = 0;
    }
    expect(result.code, result.stderr).toBe(130);

    const inFlightAtSignal = [...keysWithParts('dst-drain')].sort();
    expect(inFlightAtSignal).toEqual(['big/1', 'big/2']);
    const rows = new Map(readRows(state).map((r) => [r.key, r]));
    for (const key of inFlightAtSignal) {
      expect(rows.get(key)!.status, key).toBe('done');
      expect(await sha256Of(destClient, 'dst-drain', key), key).toBe(hashes.get(key));
    }
    // Nothing started after the signal: big/3 was never written and is still pending.
    expect(rows.get('big/3')!.status).toBe('pending');
    expect(writtenKeys(proxy.log(), 'dst-drain').sort()).toEqual(['big/1', 'big/2']);
    expect(await listKeys(destClient, 'dst-drain')).toEqual(['big/1', 'big/2']);
    expect(proxy.log().filter((e) => e.op === 'AbortMultipartUpload')).toEqual([]);
  });

  it('two SIGINTs 0.5 s apart: exit 130, rows back to pending, every multipart upload aborted; a rerun finishes', async () => {
    const state = await catalog('abort.db');
    proxy.reset();
    uploadPartDelayMs = 150;
    let result;
    const started = Date.now();
    let secondSignalAt = 0;
    try {
      const run = startCli(
        ['copy', '--to', 's3://dst-abort', '--state', state, '--concurrency', '3', '--part-size', '5MiB', '--multipart-threshold', '5MiB', '--part-concurrency', '1', '--quiet'],
        { env: env() },
      );
      await waitFor(() => keysWithParts('dst-abort').size === 3, 30_000, 'three objects uploading parts');
      run.child.kill('SIGINT');
      await sleep(500);
      run.child.kill('SIGINT');
      secondSignalAt = Date.now();
      result = await run.result;
    } finally {
      uploadPartDelayMs = 0;
    }
    expect(result.code, result.stderr).toBe(130);
    expect(Date.now() - secondSignalAt, 'the abort was not prompt').toBeLessThan(10_000);
    expect(Date.now() - started).toBeLessThan(60_000);

    // No row left in flight; a done row is really there; the abort left at least one object pending.
    const rows = readRows(state);
    expect(rows.filter((r) => r.status !== 'pending' && r.status !== 'done')).toEqual([]);
    for (const row of rows.filter((r) => r.status === 'done')) {
      expect(await sha256Of(destClient, 'dst-abort', row.key), row.key).toBe(hashes.get(row.key));
    }
    const pending = rows.filter((r) => r.status === 'pending').map((r) => r.key);
    expect(pending.length).toBeGreaterThan(0);
    for (const key of pending) expect(await sha256Of(destClient, 'dst-abort', key), key).toBeUndefined();

    // No multipart upload of ours left open. s3rver cannot list uploads (501) nor abort them (405), so
    // the proof is in the requests: for every key whose upload did not complete, each upload it used
    // (the uploadId of each of its UploadPart requests) got an AbortMultipartUpload, and there were
    // at least as many distinct aborted uploads as CreateMultipartUpload requests for that key.
    const log = proxy.log();
    const forKey = (key: string, op: string): LogEntry[] =>
      log.filter((e) => e.op === op && keyOfPath(e.path, 'dst-abort') === key);
    const created = new Set(log.filter((e) => e.op === 'CreateMultipartUpload').map((e) => keyOfPath(e.path, 'dst-abort')));
    expect([...created].sort()).toEqual(['big/1', 'big/2', 'big/3']);
    for (const key of created) {
      if (forKey(key, 'CompleteMultipartUpload').some((e) => e.status === 200)) {
        expect(rows.find((r) => r.key === key)!.status, key).toBe('done');
        continue;
      }
      const partUploads = new Set(forKey(key, 'UploadPart').map(uploadIdOf));
      const aborted = new Set(forKey(key, 'AbortMultipartUpload').map(uploadIdOf));
      expect(partUploads.size, key).toBeGreaterThan(0);
      for (const uploadId of partUploads) expect(aborted, `${key}: upload ${uploadId} not aborted`).toContain(uploadId);
      expect(aborted.size, key).toBeGreaterThanOrEqual(forKey(key, 'CreateMultipartUpload').length);
      expect(rows.find((r) => r.key === key)!.status, key).toBe('pending');
    }

    // Carrying on: a rerun copies exactly the pending objects and ends with all three byte-exact.
    proxy.reset();
    const rerun = await runCli(
      ['copy', '--to', 's3://dst-abort', '--state', state, '--concurrency', '3', '--part-size', '5MiB', '--multipart-threshold', '5MiB', '--quiet'],
      { env: env() },
    );
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(writtenKeys(proxy.log(), 'dst-abort').sort()).toEqual([...pending].sort());
    expect(proxy.log().filter(isObjectWrite)).toHaveLength(pending.length);
    for (const object of objects) {
      expect(await sha256Of(destClient, 'dst-abort', object.key), object.key).toBe(hashes.get(object.key));
    }
    expect(readRows(state).map((r) => r.status)).toEqual(['done', 'done', 'done']);
  });
});
