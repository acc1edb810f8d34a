// Smoke test of the built CLI on the other Node.js versions users run (22 and 24; the rest of the suite
// runs on the development Node): catalog, a copy killed with kill -9 mid-run, the rerun that completes
// it, and verify, each under that Node, against two s3rver endpoints. Every object byte-exact at the
// destination, the documented exit codes, and proof that each process ran that Node binary.
//
// Needs scripts/prepare-node-versions.sh (each Node from the npm registry, and an app copy of this
// checkout with better-sqlite3 compiled for it). Without it the test is skipped with one line (printed
// by vitest.config.ts); with S3MIGRATE_NODE_VERSIONS_REQUIRED=1 (CI) a missing preparation fails it.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { cpSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3rverClient, startS3rver, type S3rverHandle } from '../scripts/servers/s3rver.js';
import { s3rverEnv, startCli, type CliResult } from './support/cli.js';
import {
  bucketHashes,
  bytes,
  keyOfPath,
  MiB,
  readRows,
  seed,
  sha256,
  tempDir,
  teardown,
  waitFor,
  type SeedObject,
} from './support/copy-fixtures.js';
import { nodeVersionsSkipReason, readPreparedNodes, type PreparedNode } from './support/node-versions.js';
import { startRequestProxy, type RequestProxy } from './support/request-proxy.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TITLE = 'the CLI on other Node versions: catalog, copy, kill -9 and rerun, verify';
const skip = nodeVersionsSkipReason();
const prepared = readPreparedNodes();

// Small objects, keys that must travel byte for byte, an empty object and two multipart objects (at
// --multipart-threshold 5MiB): enough to exercise SQLite (the native addon), hashing, streaming and
// multipart uploads under each Node, small enough to take seconds.
const OBJECTS: SeedObject[] = [
  ...Array.from({ length: 150 }, (_, i) => ({ key: `obj/${String(i).padStart(3, '0')}`, body: bytes(1 + ((i * 997) % 6000)) })),
  ...['sp ace.txt', 'plus+sign', 'percent%41', 'unicode/日本語 ü.bin', 'deep/a/b/c/d.txt'].map((key, i) => ({ key, body: bytes(100 + i) })),
  { key: 'empty', body: Buffer.alloc(0) },
  ...['obj/050-big', 'obj/120-big'].map((key) => ({ key, body: bytes(11 * MiB + 3) })),
];
const HASHES = new Map(OBJECTS.map((o) => [o.key, sha256(o.body)]));
const COPY_FLAGS = ['--concurrency', '4', '--part-size', '5MiB', '--multipart-threshold', '5MiB', '--quiet'];

if (skip) {
  describe.skip(`${TITLE} (skipped: ${skip})`, () => {
    it('runs under each prepared Node', () => undefined);
  });
} else if (prepared.problem !== undefined) {
  describe(TITLE, () => {
    it('is prepared (S3MIGRATE_NODE_VERSIONS_REQUIRED=1)', () => {
      throw new Error(`the Node versions are not prepared: ${prepared.problem}`);
    });
  });
} else {
  const nodes = prepared.nodes;
  let source: S3rverHandle;
  let dest: S3rverHandle;
  let sourceClient: S3Client;
  let destClient: S3Client;
  let proxy: RequestProxy;
  let work: Awaited<ReturnType<typeof tempDir>>;

  // The kill: once the destination has answered `killAfterWrites` PutObjects, the next PutObject is
  // stored and the child SIGKILLed before it gets the answer (as in copy-resume.test.ts).
  let victim: ChildProcess | undefined;
  let killAfterWrites = Infinity;
  let writesSeen = 0;
  let killPath: string | undefined;

  const bucketOf = (node: PreparedNode): string => `dst-${node.version.replace(/\./g, '-')}`;

  beforeAll(async () => {
    // The app copies run this checkout's current build (npm test builds dist/ first), not the one
    // they were prepared with; their node_modules stay theirs.
    for (const node of nodes) {
      for (const dir of ['dist', 'bin']) {
        rmSync(path.join(node.app, dir), { recursive: true, force: true });
        cpSync(path.join(ROOT, dir), path.join(node.app, dir), { recursive: true });
      }
    }
    [source, dest, work] = await Promise.all([startS3rver({ buckets: ['src'] }), startS3rver(), tempDir('node-versions')]);
    sourceClient = s3rverClient(source.endpoint);
    destClient = s3rverClient(dest.endpoint);
    for (const node of nodes) await destClient.send(new CreateBucketCommand({ Bucket: bucketOf(node) }));
    proxy = await startRequestProxy(dest.endpoint, {
      onRequest: (info) => {
        if (info.op !== 'PutObject') return undefined;
        writesSeen += 1;
        if (victim && !killPath && writesSeen >= killAfterWrites) killPath = info.path;
        return undefined;
      },
      onResponse: async (info) => {
        const child = victim;
        if (!child || info.op !== 'PutObject' || info.path !== killPath) return;
        victim = undefined;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      },
    });
    await seed(sourceClient, 'src', OBJECTS, 8);
  }, 120_000);

  afterAll(() => teardown({ proxies: [proxy], clients: [sourceClient, destClient], servers: [source, dest], work }));

  describe.each(nodes.map((node) => [node.version, node] as const))('Node %s', (_version, node) => {
    const bin = (): string => path.join(node.app, 'bin', 's3migrate.js');
    const env = (): Record<string, string> => s3rverEnv(source.endpoint, proxy.endpoint);

    /** Starts the app copy's CLI under this Node, checking that the process really is that binary. */
    function start(args: string[]): { child: ChildProcess; result: Promise<CliResult> } {
      const run = startCli(args, { node: node.node, bin: bin(), env: env(), cwd: work.dir });
      // spawn() returns once the child has exec'd: /proc/PID/exe is the binary it runs.
      expect(readlinkSync(`/proc/${run.child.pid}/exe`)).toBe(realpathSync(node.node));
      return run;
    }
    const run = (args: string[]): Promise<CliResult> => start(args).result;

    it('is that Node, with its own ABI: the addon had to be built for it', () => {
      expect(execFileSync(node.node, ['--version'], { encoding: 'utf8' }).trim()).toBe(`v${node.version}`);
      const abi = execFileSync(node.node, ['-p', 'process.versions.modules'], { encoding: 'utf8' }).trim();
      expect(abi).not.toBe(process.versions.modules);
      // The app copy's better-sqlite3 loads under it (this checkout's, built for the development Node, would not).
      const loaded = execFileSync(node.node, ['-p', 'new (require("better-sqlite3"))(":memory:").prepare("select sqlite_version() v").get().v'], {
        cwd: node.app,
        encoding: 'utf8',
      });
      expect(loaded.trim()).toMatch(/^3\.\d+\.\d+$/);
    });

    it('catalog, copy killed with kill -9 mid-run, a rerun that completes it, verify', async () => {
      const state = work.file(`state-${node.version}.db`);
      const bucket = bucketOf(node);

      const catalog = await run(['catalog', '--from', 's3://src', '--state', state, '--quiet']);
      expect(catalog.code, catalog.stderr).toBe(0);
      expect(readRows(state).map((r) => r.key).sort()).toEqual([...HASHES.keys()].sort());

      // kill -9 once about 40 % of the objects were written.
      writesSeen = 0;
      killPath = undefined;
      killAfterWrites = Math.round(OBJECTS.length * 0.4);
      const copying = start(['copy', '--to', `s3://${bucket}`, '--state', state, ...COPY_FLAGS]);
      victim = copying.child;
      const killed = await copying.result;
      victim = undefined;
      killAfterWrites = Infinity;
      expect(killed.signal, `the copy ended by itself (exit ${killed.code}): ${killed.stderr}`).toBe('SIGKILL');
      const killedKey = keyOfPath(killPath!, bucket);
      // Answers the proxy still owes a dead client must not race the reads below.
      await waitFor(() => proxy.log().every((e) => e.status !== 0), 5_000, 'the proxy to settle').catch(() => undefined);

      // A done row is at the destination, byte-exact; the object stored at the kill is there.
      const atKill = await bucketHashes(destClient, bucket);
      expect(atKill.get(killedKey)).toBe(HASHES.get(killedKey));
      const rowsAtKill = readRows(state);
      const doneAtKill = rowsAtKill.filter((r) => r.status === 'done');
      expect(doneAtKill.length).toBeGreaterThan(0);
      expect(doneAtKill.length).toBeLessThan(OBJECTS.length);
      for (const row of doneAtKill) expect(atKill.get(row.key), row.key).toBe(HASHES.get(row.key));
      expect(atKill.size).toBeLessThan(OBJECTS.length);

      const rerun = await run(['copy', '--to', `s3://${bucket}`, '--state', state, ...COPY_FLAGS]);
      expect(rerun.code, rerun.stderr).toBe(0);
      const copied = await bucketHashes(destClient, bucket);
      expect(new Map([...copied].sort())).toEqual(new Map([...HASHES].sort()));
      expect(readRows(state).filter((r) => r.status !== 'done')).toEqual([]);

      const verified = await run(['verify', '--state', state]);
      expect(verified.code, verified.stderr).toBe(0);

      // verify is not a rubber stamp: a deleted object makes it exit 3, copy restores it, then exit 0.
      await destClient.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'unicode/日本語 ü.bin' }));
      const damaged = await run(['verify', '--state', state]);
      expect(damaged.code, damaged.stderr).toBe(3);
      const repaired = await run(['copy', '--to', `s3://${bucket}`, '--state', state, ...COPY_FLAGS]);
      expect(repaired.code, repaired.stderr).toBe(0);
      expect((await bucketHashes(destClient, bucket)).get('unicode/日本語 ü.bin')).toBe(HASHES.get('unicode/日本語 ü.bin'));
      const again = await run(['verify', '--state', state]);
      expect(again.code, again.stderr).toBe(0);
    });
  });
}
