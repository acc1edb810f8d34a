// Integration tests of `s3migrate status` (text and --json) on a state file cataloged from a real
// s3rver endpoint, with copy progress simulated through plain SQL.
import fs from 'node:fs';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3rverClient, startS3rver, type S3rverHandle } from '../scripts/servers/s3rver.js';
import { filesIn, putObjects, readMeta, sha256File, tempDir, withRaw, type Seed } from './support/catalog-fixtures.js';
import { runCli as runCliIn, s3rverEnv, type CliOptions, type CliResult } from './support/cli.js';

let s3: S3rverHandle;
let client: S3Client;
let work: string;

// The CLI runs in a scratch directory: a .env in the repository must not leak into these tests.
const runCli = (args: string[], options: CliOptions = {}) => runCliIn(args, { cwd: work, ...options });
let dir: string;
let state: string;
let catalogFrom: number;
let catalogTo: number;

// 30 objects under 2024/ of 1..30 bytes (465 B in all), and 3 outside the prefix that must not be cataloged.
const IN_PREFIX: Seed[] = Array.from({ length: 30 }, (_, i) => ({
  key: `2024/img-${String(i + 1).padStart(2, '0')}.jpg`,
  body: Buffer.alloc(i + 1, 'p'),
}));
const OUTSIDE: Seed[] = ['2023/old.jpg', '2024.txt', 'readme'].map((key) => ({ key, body: Buffer.from('outside') }));
const size = (key: string): number => IN_PREFIX.find((s) => s.key === key)!.body.length;
const sum = (keys: string[]): number => keys.reduce((total, key) => total + size(key), 0);
// Simulated copy progress: 10 done, 2 failed, 18 pending.
const DONE = IN_PREFIX.filter((_, i) => i % 3 === 0).map((s) => s.key);
const FAILED = ['2024/img-02.jpg', '2024/img-03.jpg'];
const PENDING = IN_PREFIX.map((s) => s.key).filter((key) => !DONE.includes(key) && !FAILED.includes(key));

beforeAll(async () => {
  s3 = await startS3rver({ buckets: ['photos'] });
  client = s3rverClient(s3.endpoint);
  work = await tempDir('status');
  dir = await fs.promises.mkdtemp(path.join(work, 'state-'));
  state = path.join(dir, 'state.db');
  await putObjects(client, 'photos', [...IN_PREFIX, ...OUTSIDE]);
  catalogFrom = Date.now();
  const result = await runCli(['catalog', '--from', 's3://photos/2024', '--state', state], {
    env: s3rverEnv(s3.endpoint, s3.endpoint),
  });
  catalogTo = Date.now();
  expect(result.code, result.stderr).toBe(0);
  withRaw(
    state,
    (db) => {
      const done = db.prepare("UPDATE objects SET status = 'done', evidence = 'md5' WHERE key = ?");
      const failed = db.prepare("UPDATE objects SET status = 'failed', attempts = 5, error = ? WHERE key = ?");
      for (const key of DONE) expect(done.run(key).changes).toBe(1);
      for (const key of FAILED) expect(failed.run(`SlowDown (HTTP 503) on ${key}`, key).changes).toBe(1);
    },
    'write',
  );
});

afterAll(async () => {
  client?.destroy();
  await s3?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function expectExit(result: CliResult, code: number): void {
  expect({ code: result.code, stderr: result.stderr }).toMatchObject({ code });
}

describe('status', () => {
  it('--json: counts and bytes per status, percent done, the source and when the catalog finished', async () => {
    const hash = sha256File(state);
    const result = await runCli(['status', '--state', state, '--json']);
    expectExit(result, 0);
    expect(result.stderr).toBe('');
    const report = JSON.parse(result.stdout) as Record<string, unknown>;

    expect(report.counts).toEqual([
      { status: 'done', objects: 10, bytes: sum(DONE) },
      { status: 'failed', objects: 2, bytes: sum(FAILED) },
      { status: 'pending', objects: 18, bytes: sum(PENDING) },
    ]);
    expect(report).toMatchObject({
      objectsTotal: 30,
      objectsDone: 10,
      bytesTotal: 465,
      bytesDone: sum(DONE),
      percentDone: Number(((100 * DONE.length) / IN_PREFIX.length).toFixed(2)),
      source: { bucket: 'photos', prefix: '2024/', endpoint: s3.endpoint },
      catalogState: 'complete',
    });
    const finished = report.catalogFinishedAt as string;
    expect(finished).toBe(readMeta(state).catalog_finished_at);
    expect(finished).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Date.parse(finished)).toBeGreaterThanOrEqual(catalogFrom);
    expect(Date.parse(finished)).toBeLessThanOrEqual(catalogTo);
    expect((report.recentErrors as Array<{ key: string }>).map((e) => e.key).sort()).toEqual(FAILED);

    // status only reads: the state file is byte for byte the same and nothing went into a WAL. (A
    // read-only SQLite connection cannot remove the empty -wal/-shm it opens next to a WAL-mode file.)
    expect(sha256File(state)).toBe(hash);
    const wal = path.join(dir, 'state.db-wal');
    if (fs.existsSync(wal)) expect(fs.statSync(wal).size).toBe(0);
  });

  it('text: the same numbers for a human', async () => {
    const result = await runCli(['status', '--state', state]);
    expectExit(result, 0);
    const out = result.stdout;
    expect(out).toContain(`Source:     s3://photos/2024/ at ${s3.endpoint}`);
    expect(out).toContain(`Catalog:    complete, finished ${readMeta(state).catalog_finished_at}`);
    const percent = ((100 * DONE.length) / IN_PREFIX.length).toFixed(1);
    expect(out).toContain(`Progress:   10 of 30 objects done (${percent}%), ${sum(DONE)} B of 465 B`);
    expect(out).toMatch(new RegExp(`^\\s+done\\s+10\\s+${sum(DONE)} B$`, 'm'));
    expect(out).toMatch(new RegExp(`^\\s+failed\\s+2\\s+${sum(FAILED)} B$`, 'm'));
    expect(out).toMatch(new RegExp(`^\\s+pending\\s+18\\s+${sum(PENDING)} B$`, 'm'));
    for (const key of FAILED) expect(out).toContain(`${key} (attempts 5): SlowDown (HTTP 503) on ${key}`);
  });

  it('an interrupted catalog shows as incomplete', async () => {
    const copyDir = await fs.promises.mkdtemp(path.join(work, 'listing-'));
    const copy = path.join(copyDir, 'state.db');
    fs.copyFileSync(state, copy);
    withRaw(copy, (db) => db.prepare("UPDATE meta SET value = 'listing' WHERE key = 'catalog_state'").run(), 'write');
    const text = await runCli(['status', '--state', copy]);
    expectExit(text, 0);
    expect(text.stdout).toMatch(/^Catalog:\s+incomplete/m);
    const json = await runCli(['status', '--state', copy, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ catalogState: 'listing' });
  });

  it('a missing state file -> exit 1, says to run catalog, creates nothing', async () => {
    const empty = await fs.promises.mkdtemp(path.join(work, 'missing-'));
    for (const args of [['--state', path.join(empty, 'state.db')], ['--state', path.join(empty, 'state.db'), '--json']]) {
      const result = await runCli(['status', ...args]);
      expectExit(result, 1);
      expect(result.stdout).toBe('');
      expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(/^s3migrate: No state file at .*Run `s3migrate catalog/);
      expect(filesIn(empty)).toEqual([]);
    }
    // The default ./state.db, in a working directory without one.
    const result = await runCli(['status'], { cwd: empty });
    expectExit(result, 1);
    expect(result.stderr).toMatch(/s3migrate catalog/);
    expect(filesIn(empty)).toEqual([]);
  });

  it('an unknown flag -> exit 2', async () => {
    const result = await runCli(['status', '--state', state, '--frobnicate']);
    expectExit(result, 2);
    expect(result.stderr).toMatch(/unknown option '--frobnicate'/);
  });
});
