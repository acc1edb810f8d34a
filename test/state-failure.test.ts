// A state store that fails mid-run: the state file lives on a small tmpfs that fills up while copy marks
// rows. The run must stop with a clear state-file error (exit 1), never blame S3, and never have marked a
// row done whose object is not at the destination. Needs root (mount); skipped with a line otherwise.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3rverClient, startS3rver, type S3rverHandle } from '../scripts/servers/s3rver.js';
import { runCli, s3rverEnv } from './support/cli.js';
import { bytes, readRows, seed, sha256, sha256Of, tempDir, teardown, type SeedObject } from './support/copy-fixtures.js';

/** Mounts a tmpfs of `bytes` at `dir`; false when this process may not mount (not root, no CAP_SYS_ADMIN). */
function mountTmpfs(dir: string, bytes: number): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const canMount = ((): boolean => {
  if (process.getuid?.() !== 0) return false;
  const probe = fs.mkdtempSync('/tmp/s3migrate-mount-probe-');
  const ok = mountTmpfs(probe, 64 * 1024);
  if (ok) execFileSync('umount', [probe]);
  fs.rmSync(probe, { recursive: true, force: true });
  return ok;
})();
if (!canMount) {
  process.stderr.write('State-store failure suite skipped: it needs root to mount a small tmpfs (run npm test as root).\n');
}

let source: S3rverHandle;
let dest: S3rverHandle;
let sourceClient: S3Client;
let destClient: S3Client;
let work: Awaited<ReturnType<typeof tempDir>>;
let mountPoint: string | undefined;

const OBJECTS: SeedObject[] = Array.from({ length: 400 }, (_, i) => ({ key: `o/${String(i).padStart(4, '0')}`, body: bytes(2000 + i) }));

describe.skipIf(!canMount)('a state file on a disk that fills up mid-run', () => {
  beforeAll(async () => {
    [source, dest] = await Promise.all([startS3rver({ buckets: ['src'] }), startS3rver({ buckets: ['dst'] })]);
    sourceClient = s3rverClient(source.endpoint);
    destClient = s3rverClient(dest.endpoint);
    work = await tempDir('state-full');
    await seed(sourceClient, 'src', OBJECTS, 16);
  });

  afterAll(async () => {
    if (mountPoint) execFileSync('umount', ['-l', mountPoint]);
    await teardown({ clients: [sourceClient, destClient], servers: [source, dest], work });
  });

  it('stops with a clear state-file error, exit 1, and every row marked done is at the destination byte-exact', async () => {
    const env = s3rverEnv(source.endpoint, dest.endpoint);
    const built = work.file('catalog.db');
    const catalog = await runCli(['catalog', '--from', 's3://src', '--state', built, '--quiet'], { env });
    expect(catalog.code, catalog.stderr).toBe(0);
    // One file without its WAL, so its size is what the tmpfs must hold to start with.
    const db = new Database(built);
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.pragma('journal_mode = DELETE');
    db.close();

    // Room for the file, its shared-memory index, the sort index copy builds and a few dozen marks:
    // the WAL then fills the rest while rows are marked.
    mountPoint = path.join(work.dir, 'small-disk');
    fs.mkdirSync(mountPoint);
    const room = fs.statSync(built).size + 32 * 1024 + 160 * 1024;
    expect(mountTmpfs(mountPoint, Math.ceil(room / 4096) * 4096)).toBe(true);
    const state = path.join(mountPoint, 'state.db');
    fs.copyFileSync(built, state);

    const result = await runCli(['copy', '--to', 's3://dst', '--state', state, '--concurrency', '4', '--quiet'], { env });
    expect(result.code, result.stderr).toBe(1);
    console.log(`[state full] ${result.stderr.trim()}`);
    // One message that names the state file and SQLite's reason, and says nothing was marked by it.
    expect(result.stderr).toMatch(new RegExp(`The state file ${state.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} could not be written`));
    expect(result.stderr).toMatch(/SQLITE_FULL|disk is full/);
    expect(result.stderr).not.toMatch(/destination:|The destination|source:/);
    expect(result.stderr.trim().split('\n').filter((line) => line.startsWith('s3migrate:'))).toHaveLength(1);

    // The state as the failed run left it (on the full disk, read-only): nothing done that is not there.
    const rows = readRows(state);
    const done = rows.filter((row) => row.status === 'done');
    expect(done.length, 'the disk filled before any row was done: make the room larger').toBeGreaterThan(0);
    expect(done.length, 'the disk never filled: make the room smaller').toBeLessThan(OBJECTS.length);
    const body = new Map(OBJECTS.map((o) => [o.key, o.body]));
    for (const row of done) expect(await sha256Of(destClient, 'dst', row.key), row.key).toBe(sha256(body.get(row.key)!));
  });
});
