// Never accept a wrong object, on real S3 endpoints (two s3rver instances, a proxy in front of each that
// can rewrite answers, hold requests, or kill the CLI at a chosen moment): crash recovery where ETags
// cannot be compared, sources that change or vanish after the catalog (before and during a copy), the
// part-size edge, and a third Ctrl+C while a request hangs.
import type { ChildProcess } from 'node:child_process';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { s3rverClient, startS3rver, type S3rverHandle } from '../scripts/servers/s3rver.js';
import { runCli, s3rverEnv, startCli } from './support/cli.js';
import {
  bytes,
  keyOfPath,
  listKeys,
  MiB,
  readObject,
  rowsByKey,
  seed,
  sha256,
  sha256Of,
  tempDir,
  teardown,
  waitFor,
  type SeedObject,
} from './support/copy-fixtures.js';
import { startRequestProxy, type RequestInfo, type RequestProxy } from './support/request-proxy.js';

let source: S3rverHandle;
let dest: S3rverHandle;
let sourceClient: S3Client;
let destClient: S3Client;
let sourceProxy: RequestProxy;
let destProxy: RequestProxy;
let work: Awaited<ReturnType<typeof tempDir>>;

/** Per-test hooks the proxies consult (reset before each test). */
let rewriteSourceEtags = false;
let onSourceRequest: ((info: RequestInfo) => Promise<void> | void) | undefined;
let onDestRequest: ((info: RequestInfo) => Promise<'reset' | void> | 'reset' | void) | undefined;

/** `"<md5>"` -> `"<md5>-1"`: the form a multipart upload's ETag has, which no MD5 can be compared with. */
const multipartStyle = (etag: string): string => etag.replace(/^("?)([0-9a-f]{32})("?)$/, '$1$2-1$3');

beforeAll(async () => {
  [source, dest] = await Promise.all([
    startS3rver({ buckets: ['rec', 'chg', 'mid', 'gone', 'edge', 'stop'] }),
    startS3rver({ buckets: ['rec-dst', 'chg-dst', 'mid-dst', 'gone-dst', 'edge-dst', 'stop-dst'] }),
  ]);
  sourceClient = s3rverClient(source.endpoint);
  destClient = s3rverClient(dest.endpoint);
  sourceProxy = await startRequestProxy(source.endpoint, {
    onRequest: async (info) => {
      await onSourceRequest?.(info);
    },
    rewriteResponse: (info, status, headers) => {
      if (!rewriteSourceEtags || status >= 300) return undefined;
      if (info.op === 'ListObjectsV2') {
        return {
          body: (xml) =>
            Buffer.from(
              xml.toString('utf8').replace(/<ETag>(&quot;|")([0-9a-f]{32})(&quot;|")<\/ETag>/g, '<ETag>$1$2-1$3</ETag>'),
            ),
        };
      }
      if ((info.op === 'GetObject' || info.op === 'HeadObject') && typeof headers.etag === 'string') {
        return { headers: { etag: multipartStyle(headers.etag) } };
      }
      return undefined;
    },
  });
  destProxy = await startRequestProxy(dest.endpoint, {
    onRequest: async (info) => (await onDestRequest?.(info)) ?? undefined,
  });
  work = await tempDir('trust');
});

beforeEach(() => {
  rewriteSourceEtags = false;
  onSourceRequest = undefined;
  onDestRequest = undefined;
  sourceProxy.reset();
  destProxy.reset();
});

afterAll(() => teardown({ proxies: [sourceProxy, destProxy], clients: [sourceClient, destClient], servers: [source, dest], work }));

const env = (): Record<string, string> => s3rverEnv(sourceProxy.endpoint, destProxy.endpoint);

async function catalog(bucket: string, state: string): Promise<void> {
  const result = await runCli(['catalog', '--from', `s3://${bucket}`, '--state', state, '--quiet'], { env: env() });
  expect(result.code, result.stderr).toBe(0);
}

function copyArgs(bucket: string, state: string, ...flags: string[]): string[] {
  return ['copy', '--to', `s3://${bucket}`, '--state', state, '--quiet', ...flags];
}

/** Operations the destination proxy saw for one key. */
function destOps(bucket: string, key: string): string[] {
  return destProxy
    .log()
    .filter((e) => e.path.startsWith(`/${bucket}/`) && keyOfPath(e.path, bucket) === key)
    .map((e) => e.op);
}

async function killOnce(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

describe('crash recovery when ETags cannot be compared', () => {
  it('a different object of the same size at a key in flight at kill -9 is copied again, never marked done; verify then trusts only evidence', async () => {
    // Sources whose ETags look like multipart ETags (as after multipart uploads): no MD5 to compare.
    rewriteSourceEtags = true;
    const objects: SeedObject[] = Array.from({ length: 12 }, (_, i) => ({ key: `k/${String(i).padStart(2, '0')}`, body: bytes(4000 + i) }));
    const victim = objects[6]!;
    await seed(sourceClient, 'rec', objects, 4);
    // A stale object from an earlier migration, the same size as the source's, already at the key.
    const stale = bytes(victim.body.length);
    await destClient.send(new PutObjectCommand({ Bucket: 'rec-dst', Key: victim.key, Body: stale }));
    const state = work.file('recovery.db');
    await catalog('rec', state);
    expect(rowsByKey(state).get(victim.key)!.etag).toMatch(/-1"$/);

    // kill -9 the moment the victim's PutObject reaches the destination, before it is stored.
    const args = copyArgs('rec-dst', state, '--concurrency', '1');
    const run = startCli(args, { env: env() });
    let killed = false;
    onDestRequest = async (info) => {
      if (info.op === 'PutObject' && keyOfPath(info.path, 'rec-dst') === victim.key && !killed) {
        killed = true;
        await killOnce(run.child);
        return 'reset';
      }
      return undefined;
    };
    const first = await run.result;
    expect(first.signal, first.stderr).toBe('SIGKILL');
    expect(rowsByKey(state).get(victim.key)!.status).toBe('in_flight');
    expect(sha256(await readObject(destClient, 'rec-dst', victim.key))).toBe(sha256(stale));

    // The rerun cannot prove the stale object is the source's (same size, ETags not comparable): it
    // copies it again instead of marking it done.
    onDestRequest = undefined;
    destProxy.reset();
    const rerun = await runCli(args, { env: env() });
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(destOps('rec-dst', victim.key)).toContain('PutObject');
    for (const object of objects) {
      expect(await sha256Of(destClient, 'rec-dst', object.key), object.key).toBe(sha256(object.body));
      const row = rowsByKey(state).get(object.key)!;
      // Evidence: the destination's ETag for our write is the MD5 of the bytes we read and sent.
      expect({ status: row.status, evidence: row.evidence }, object.key).toEqual({ status: 'done', evidence: 'md5' });
    }

    // verify compares with the recorded evidence: all ok; a same-size overwrite is never ok.
    const verified = await runCli(['verify', '--state', state, '--json'], { env: env() });
    expect(verified.code, verified.stderr).toBe(0);
    await destClient.send(new PutObjectCommand({ Bucket: 'rec-dst', Key: victim.key, Body: bytes(victim.body.length) }));
    const again = await runCli(['verify', '--state', state, '--json'], { env: env() });
    expect(again.code).toBe(3);
    const report = JSON.parse(again.stdout) as { problems: Array<{ key: string; reason: string }>; results: Record<string, number> };
    expect(report.problems).toEqual([{ key: victim.key, size: victim.body.length, reason: 'etag-mismatch' }]);
    expect(report.results.ok).toBe(objects.length - 1);
  });
});

describe('sources that change after the catalog', () => {
  it('same size other bytes, other size, a multipart object: rows end changed, nothing stale is copied, exit 3; catalog + copy again: byte-exact, exit 0', async () => {
    const objects: SeedObject[] = [
      { key: 'keep.bin', body: bytes(3000) },
      { key: 'same-size.bin', body: bytes(5000) },
      { key: 'other-size.bin', body: bytes(6000) },
      { key: 'big.bin', body: bytes(11 * MiB) },
    ];
    await seed(sourceClient, 'chg', objects, 4);
    const state = work.file('changed.db');
    await catalog('chg', state);
    const now = new Map<string, Buffer>([
      ['keep.bin', objects[0]!.body],
      ['same-size.bin', bytes(5000)],
      ['other-size.bin', bytes(7000)],
      ['big.bin', bytes(11 * MiB)],
    ]);
    for (const key of ['same-size.bin', 'other-size.bin', 'big.bin']) {
      await sourceClient.send(new PutObjectCommand({ Bucket: 'chg', Key: key, Body: now.get(key)! }));
    }

    const args = copyArgs('chg-dst', state, '--multipart-threshold', '5MiB', '--part-size', '5MiB');
    const first = await runCli(args, { env: env() });
    expect(first.code, first.stderr).toBe(3);
    expect(first.stderr).toMatch(/3 objects changed at the source since the catalog/);
    expect(first.stderr).toMatch(/s3migrate catalog/);
    const rows = rowsByKey(state);
    expect(Object.fromEntries([...rows].map(([key, row]) => [key, row.status]))).toEqual({
      'big.bin': 'changed',
      'keep.bin': 'done',
      'other-size.bin': 'changed',
      'same-size.bin': 'changed',
    });
    expect(rows.get('other-size.bin')!.error).toMatch(/7000 bytes, the catalog says 6000/);
    expect(rows.get('same-size.bin')!.error).toMatch(/ETag is now/);
    // Nothing of the changed objects was written: no old row copied under new bytes.
    expect(await listKeys(destClient, 'chg-dst')).toEqual(['keep.bin']);
    for (const key of ['same-size.bin', 'other-size.bin', 'big.bin']) {
      expect(destOps('chg-dst', key).filter((op) => op === 'PutObject' || op === 'CreateMultipartUpload'), key).toEqual([]);
    }
    // status says what to do.
    const status = await runCli(['status', '--state', state], { env: env() });
    expect(status.stdout).toMatch(/Changed: +3 objects changed at the source since the catalog/);

    // A second copy without a new catalog does not pretend: still exit 3.
    const repeat = await runCli(args, { env: env() });
    expect(repeat.code, repeat.stderr).toBe(3);

    await catalog('chg', state);
    expect(rowsByKey(state).get('big.bin')!.status).toBe('pending');
    const second = await runCli(args, { env: env() });
    expect(second.code, second.stderr).toBe(0);
    for (const [key, body] of now) expect(await sha256Of(destClient, 'chg-dst', key), key).toBe(sha256(body));
    expect([...rowsByKey(state).values()].every((row) => row.status === 'done')).toBe(true);
  });

  it('an object overwritten between two ranged reads of its parts is never stitched from two versions', async () => {
    const original = bytes(12 * MiB);
    const replacement = bytes(12 * MiB);
    await seed(sourceClient, 'mid', [{ key: 'stitch.bin', body: original }]);
    const state = work.file('mid.db');
    await catalog('mid', state);
    // The second ranged read (part 2) waits until the object has been overwritten.
    let gets = 0;
    onSourceRequest = async (info) => {
      if (info.op !== 'GetObject' || keyOfPath(info.path, 'mid') !== 'stitch.bin') return;
      gets += 1;
      if (gets === 2) await sourceClient.send(new PutObjectCommand({ Bucket: 'mid', Key: 'stitch.bin', Body: replacement }));
    };
    const args = copyArgs('mid-dst', state, '--multipart-threshold', '5MiB', '--part-size', '5MiB', '--part-concurrency', '1');
    const result = await runCli(args, { env: env() });
    expect(result.code, result.stderr).toBe(3);
    expect(rowsByKey(state).get('stitch.bin')!.status).toBe('changed');
    const ops = destOps('mid-dst', 'stitch.bin');
    expect(ops).toContain('UploadPart'); // part 1 of the old version had been sent...
    expect(ops).not.toContain('CompleteMultipartUpload'); // ...but the upload was never completed
    expect(ops).toContain('AbortMultipartUpload');
    expect(await listKeys(destClient, 'mid-dst')).toEqual([]);

    onSourceRequest = undefined;
    await catalog('mid', state);
    const again = await runCli(args, { env: env() });
    expect(again.code, again.stderr).toBe(0);
    expect(await sha256Of(destClient, 'mid-dst', 'stitch.bin')).toBe(sha256(replacement));
  });

  it('a source key deleted after the catalog ends gone, and alone it does not fail the run (exit 0)', async () => {
    const objects: SeedObject[] = Array.from({ length: 5 }, (_, i) => ({ key: `g/${i}`, body: bytes(1000 + i) }));
    await seed(sourceClient, 'gone', objects);
    const state = work.file('gone.db');
    await catalog('gone', state);
    await sourceClient.send(new DeleteObjectCommand({ Bucket: 'gone', Key: 'g/1' }));
    await sourceClient.send(new DeleteObjectCommand({ Bucket: 'gone', Key: 'g/3' }));
    const result = await runCli(copyArgs('gone-dst', state), { env: env() });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/2 cataloged objects are gone from the source/);
    const statuses = Object.fromEntries([...rowsByKey(state)].map(([key, row]) => [key, row.status]));
    expect(statuses).toEqual({ 'g/0': 'done', 'g/1': 'gone', 'g/2': 'done', 'g/3': 'gone', 'g/4': 'done' });
    expect(await listKeys(destClient, 'gone-dst')).toEqual(['g/0', 'g/2', 'g/4']);
    // A rerun has nothing to do and stays at exit 0.
    const rerun = await runCli(copyArgs('gone-dst', state), { env: env() });
    expect(rerun.code, rerun.stderr).toBe(0);
  });
});

describe('the part-size edge', () => {
  it('--part-size above --multipart-threshold: an object between them goes as a one-part upload whose part is checked', async () => {
    const body = bytes(8 * MiB);
    await seed(sourceClient, 'edge', [{ key: 'between.bin', body }]);
    const state = work.file('edge.db');
    await catalog('edge', state);
    const result = await runCli(copyArgs('edge-dst', state, '--multipart-threshold', '5MiB', '--part-size', '16MiB'), { env: env() });
    expect(result.code, result.stderr).toBe(0);
    expect(destOps('edge-dst', 'between.bin')).toEqual(['CreateMultipartUpload', 'UploadPart', 'CompleteMultipartUpload']);
    expect(await sha256Of(destClient, 'edge-dst', 'between.bin')).toBe(sha256(body));
    expect(rowsByKey(state).get('between.bin')!.evidence).toBe('md5');
  });
});

describe('stops', () => {
  it('a third Ctrl+C exits at once (130) while the destination still holds a request unanswered', async () => {
    await seed(sourceClient, 'stop', [{ key: 'slow.bin', body: bytes(12 * MiB) }]);
    const state = work.file('stop.db');
    await catalog('stop', state);
    // A first run uploads the object in parts and is killed mid-upload: its upload is kept in the state.
    onDestRequest = async (info) => {
      if (info.op === 'UploadPart') await new Promise((resolve) => setTimeout(resolve, 300));
      return undefined;
    };
    const first = startCli(copyArgs('stop-dst', state, '--multipart-threshold', '5MiB', '--part-size', '5MiB', '--part-concurrency', '1'), {
      env: env(),
    });
    await waitFor(() => destProxy.log().some((e) => e.op === 'UploadPart' && e.status === 200), 20_000, 'a part stored');
    await killOnce(first.child);
    await first.result;

    // The rerun's threshold sends the object as one PUT, so it aborts the kept upload first: the server
    // holds that abort unanswered. Neither the first Ctrl+C nor the second ends the wait (an abort of our
    // upload is not cancelled by a stop); the third exits at once.
    let releaseHeld: (() => void) | undefined;
    const held = new Promise<void>((resolve) => (releaseHeld = resolve));
    onDestRequest = async (info) => {
      if (info.op === 'AbortMultipartUpload') await held;
      return undefined;
    };
    destProxy.reset();
    const run = startCli(copyArgs('stop-dst', state), { env: env() });
    try {
      await waitFor(() => destProxy.log().some((e) => e.op === 'AbortMultipartUpload'), 20_000, 'the held abort');
      run.child.kill('SIGINT');
      await new Promise((resolve) => setTimeout(resolve, 200));
      run.child.kill('SIGINT');
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(run.child.exitCode, 'exited before the third Ctrl+C').toBeNull();
      run.child.kill('SIGINT');
      const result = await run.result;
      expect(result.code, result.stderr).toBe(130);
      // Exited while the request was still held: its answer was never sent.
      expect(destProxy.log().find((e) => e.op === 'AbortMultipartUpload')!.status).toBe(0);
      expect(result.stderr).toMatch(/Stopped at once/);
    } finally {
      releaseHeld!();
      await killOnce(run.child);
    }
  });
});
