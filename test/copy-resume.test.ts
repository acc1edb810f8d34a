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
  writtenKeys,
  type SeedObject,
  teardown,
} from './support/copy-fixtures.js';
import { withRaw } from './support/catalog-fixtures.js';
import { startRequestProxy, type RequestProxy } from './support/request-proxy.js';

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
    // One lister: s3rver does not list in byte order ("obj/0150-big" before "obj/0150"), which listing in
    // parts refuses (see test/catalog-parts.test.ts); the copy is what this test is about.
    const catalog = await runCli(['catalog', '--from', 's3://small', '--state', state, '--quiet', '--list-concurrency', '1'], { env });
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
    // What the rerun wrote: a PutObject, or the completion of a multipart upload (a kept one resumed).
    const resent = proxy
      .log()
      .filter((e) => e.op === 'PutObject' || (e.op === 'CompleteMultipartUpload' && e.status === 200))
      .map((e) => keyOfPath(e.path, 'dst-kill'));
    expect(resent).not.toContain(killedKey);
    expect(resent.filter((key) => correctAtKill.has(key))).toEqual([]); // nothing that had arrived is sent again
    expect(resent.length).toBeLessThanOrEqual(missingAtKill.length);
    expect([...resent].sort()).toEqual([...missingAtKill].sort()); // and everything missing was written once

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

  /** UploadPart requests per key, by part number. */
  const partsSent = (bucket: string, key: string): number[] =>
    proxy
      .log()
      .filter((e) => e.op === 'UploadPart' && e.status === 200 && keyOfPath(e.path, bucket) === key)
      .map((e) => Number(new URLSearchParams(e.query).get('partNumber')));

  /** The parts the state file records for a key's kept upload. */
  function recordedParts(state: string, key: string): number[] {
    return withRaw(state, (db) =>
      db
        .prepare('SELECT p.part_number FROM parts p JOIN objects o ON o.id = p.object_id WHERE o.key = ? ORDER BY 1')
        .pluck()
        .all(key) as number[],
    );
  }

  it('one SIGINT: the parts in flight finish, no new part or object starts, exit 130; the rerun sends only the missing parts', async () => {
    const state = await catalog('drain.db');
    proxy.reset();
    uploadPartDelayMs = 150;
    let result;
    const flags = ['--concurrency', '2', '--part-size', '5MiB', '--multipart-threshold', '5MiB', '--part-concurrency', '1', '--quiet'];
    try {
      const run = startCli(['copy', '--to', 's3://dst-drain', '--state', state, ...flags], { env: env() });
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
    // 40 MiB in 8 parts each: the signal came after a part or two; they stop between parts, pending,
    // their uploads kept (never aborted, never completed), every part the destination confirmed recorded.
    const before = new Map<string, number[]>();
    for (const key of inFlightAtSignal) {
      expect(rows.get(key)!.status, key).toBe('pending');
      const sent = partsSent('dst-drain', key).sort((a, b) => a - b);
      expect(sent.length, key).toBeGreaterThan(0);
      expect(sent.length, key).toBeLessThan(8);
      expect(recordedParts(state, key), key).toEqual(sent);
      before.set(key, sent);
    }
    // Nothing started after the signal: big/3 was never written and is still pending.
    expect(rows.get('big/3')!.status).toBe('pending');
    expect(writtenKeys(proxy.log(), 'dst-drain').sort()).toEqual(['big/1', 'big/2']);
    expect(proxy.log().filter((e) => e.op === 'AbortMultipartUpload' || e.op === 'CompleteMultipartUpload')).toEqual([]);
    const status = await runCli(['status', '--state', state], { env: env() });
    expect(status.stdout).toMatch(/Uploads: +2 multipart uploads kept for resumption/);

    // The rerun resumes both uploads (no new one for them) and sends each missing part once.
    proxy.reset();
    const rerun = await runCli(['copy', '--to', 's3://dst-drain', '--state', state, ...flags], { env: env() });
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(writtenKeys(proxy.log(), 'dst-drain')).toEqual(['big/3']);
    for (const key of inFlightAtSignal) {
      const missing = [1, 2, 3, 4, 5, 6, 7, 8].filter((n) => !before.get(key)!.includes(n));
      expect(partsSent('dst-drain', key).sort((a, b) => a - b), key).toEqual(missing);
    }
    for (const object of objects) expect(await sha256Of(destClient, 'dst-drain', object.key), object.key).toBe(hashes.get(object.key));
    expect(readRows(state).map((r) => r.status)).toEqual(['done', 'done', 'done']);
    for (const key of inFlightAtSignal) expect(recordedParts(state, key), key).toEqual([]); // forgotten once completed
  });

  it('two SIGINTs 0.5 s apart: exit 130 at once, rows back to pending, uploads kept; a rerun resumes them', async () => {
    const state = await catalog('abort.db');
    proxy.reset();
    uploadPartDelayMs = 150;
    let result;
    const started = Date.now();
    let secondSignalAt = 0;
    const flags = ['--concurrency', '3', '--part-size', '5MiB', '--multipart-threshold', '5MiB', '--part-concurrency', '1', '--quiet'];
    try {
      const run = startCli(['copy', '--to', 's3://dst-abort', '--state', state, ...flags], { env: env() });
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
    expect(Date.now() - secondSignalAt, 'the stop was not prompt').toBeLessThan(10_000);
    expect(Date.now() - started).toBeLessThan(60_000);

    // No row left in flight; a done row is really there; pending ones have nothing at the destination.
    const rows = readRows(state);
    expect(rows.filter((r) => r.status !== 'pending' && r.status !== 'done')).toEqual([]);
    for (const row of rows.filter((r) => r.status === 'done')) {
      expect(await sha256Of(destClient, 'dst-abort', row.key), row.key).toBe(hashes.get(row.key));
    }
    const pending = rows.filter((r) => r.status === 'pending').map((r) => r.key);
    expect(pending.length).toBeGreaterThan(0);
    for (const key of pending) expect(await sha256Of(destClient, 'dst-abort', key), key).toBeUndefined();
    // Uploads kept, not aborted; what each recorded is exactly what the destination confirmed.
    expect(proxy.log().filter((e) => e.op === 'AbortMultipartUpload')).toEqual([]);
    const confirmed = new Map(pending.map((key) => [key, partsSent('dst-abort', key).sort((a, b) => a - b)]));
    for (const key of pending) expect(recordedParts(state, key), key).toEqual(confirmed.get(key));

    // Carrying on: the rerun resumes each kept upload (no new one), sends only the parts not confirmed,
    // and completes every upload it used.
    proxy.reset();
    const rerun = await runCli(['copy', '--to', 's3://dst-abort', '--state', state, ...flags], { env: env() });
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(proxy.log().filter((e) => e.op === 'CreateMultipartUpload')).toEqual([]);
    for (const key of pending) {
      const again = partsSent('dst-abort', key);
      for (const n of confirmed.get(key)!) expect(again, `${key}: part ${n} sent again`).not.toContain(n);
    }
    const used = new Set(proxy.log().filter((e) => e.op === 'UploadPart').map(uploadIdOf));
    const completed = new Set(proxy.log().filter((e) => e.op === 'CompleteMultipartUpload' && e.status === 200).map(uploadIdOf));
    expect([...used].every((id) => completed.has(id))).toBe(true);
    for (const object of objects) {
      expect(await sha256Of(destClient, 'dst-abort', object.key), object.key).toBe(hashes.get(object.key));
    }
    expect(readRows(state).map((r) => r.status)).toEqual(['done', 'done', 'done']);
  });
});
