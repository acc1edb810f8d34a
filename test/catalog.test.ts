// Integration tests of `s3migrate catalog` against real s3rver endpoints, run as users run it (the built
// CLI as a child process). Every assertion reads the state file with plain SQL (better-sqlite3 alone).
import fs from 'node:fs';
import path from 'node:path';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3rverClient, startS3rver, type S3rverHandle } from '../scripts/servers/s3rver.js';
import {
  countRows,
  filesIn,
  md5,
  putObjects,
  readMeta,
  readObjects,
  sha256File,
  tempDir,
  withRaw,
  writeS3rverObjects,
  type ObjectRowRaw,
  type Seed,
} from './support/catalog-fixtures.js';
import { runCli as runCliIn, s3rverEnv, startCli as startCliIn, type CliOptions, type CliResult } from './support/cli.js';
import { startRequestProxy, type ProxyDecision, type RequestInfo, type RequestProxy } from './support/request-proxy.js';

let s3: S3rverHandle;
let client: S3Client;
let work: string;

// The CLI runs in a scratch directory: a .env in the repository must not leak into these tests.
const runCli = (args: string[], options: CliOptions = {}) => runCliIn(args, { cwd: work, ...options });
const startCli = (args: string[], options: CliOptions = {}) => startCliIn(args, { cwd: work, ...options });

beforeAll(async () => {
  s3 = await startS3rver({ buckets: ['src', 'big', 'small', 'other'] });
  client = s3rverClient(s3.endpoint);
  work = await tempDir('catalog');
});

afterAll(async () => {
  client?.destroy();
  await s3?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

const env = (endpoint = s3.endpoint): Record<string, string> => s3rverEnv(endpoint, endpoint);

/** The parts of the state's current listing pass, as plain SQL reads them. */
function partsOf(state: string): Array<Record<string, unknown>> {
  return withRaw(state, (db) =>
    db.prepare("SELECT part, start_after, end_key, resume_after, done, keys_listed FROM catalog_parts ORDER BY part").all() as Array<Record<string, unknown>>,
  );
}

/** A fresh directory per test, so no test sees another's state file. */
async function freshDir(label: string): Promise<string> {
  return fs.promises.mkdtemp(path.join(work, `${label}-`));
}

function expectExit(result: CliResult, code: number): void {
  // On failure, show what the CLI said: the exit code alone explains nothing.
  expect({ code: result.code, signal: result.signal, stderr: result.stderr }).toMatchObject({ code, signal: null });
}

/** The user-facing error: one `s3migrate: ...` line naming the problem, no stack trace. */
function expectOneErrorLine(result: CliResult, fragment: RegExp): void {
  const lines = result.stderr.trimEnd().split('\n');
  const errors = lines.filter((line) => line.startsWith('s3migrate: '));
  expect(errors, result.stderr).toHaveLength(1);
  expect(errors[0]).toMatch(fragment);
  expect(lines.filter((line) => /^\s+at /.test(line)), result.stderr).toEqual([]);
  // Anything else on stderr is the progress line a catalog prints before it starts listing.
  expect(lines.length, result.stderr).toBeLessThanOrEqual(2);
}

// -------------------------------------------------------------------------------------------------

describe('catalog of 2,500 keys (3 listing pages)', () => {
  // Keys S3 allows that trip up naive code: unicode (NFC and NFD of the same word are two keys), emoji
  // (4-byte UTF-8), spaces, '+', '%', '&', '?', '#', a folder marker with a trailing '/', 0-byte objects.
  // All under zz/, so they share the last page: s3rver walks its storage directories (where 'a-b' comes
  // before 'a') but resumes each page with `key > previous page's last key`, so a key out of byte order at
  // a page boundary would be skipped by the server. Real S3 lists in UTF-8 byte order.
  const SPECIAL: Seed[] = [
    'zz/ünïcødé/файл-日本語.txt',
    'zz/emoji 😀 key.bin',
    'zz/with space and  two  spaces.txt',
    'zz/plus+sign+key.txt',
    'zz/percent%20not%2Fdecoded.txt',
    'zz/amp&ersand=eq;semi,comma@at$dollar.txt',
    'zz/question?mark#hash.txt',
    "zz/quote's (paren) [bracket] {brace} !*~.txt",
    'zz/caf\u00e9',
    'zz/cafe\u0301',
    'zz/UPPER lower.TXT',
    'zz/folder/',
    'zz/empty-object',
  ].map((key) => ({
    key,
    body: key.endsWith('/') || key.endsWith('empty-object') ? Buffer.alloc(0) : Buffer.from(`content of ${key}`),
  }));
  const BULK: Seed[] = Array.from({ length: 2_500 - SPECIAL.length }, (_, i) => ({
    key: `bulk/${String(i).padStart(5, '0')}`,
    body: Buffer.from(`object ${i}\n`.repeat(i % 5)), // 0-byte for every 5th
  }));
  const expected = new Map<string, Buffer>([...BULK, ...SPECIAL].map((s) => [s.key, s.body]));

  let dir: string;
  let state: string;
  let proxy: RequestProxy; // counts the listing requests
  let seededFrom: number;
  let seededTo: number;
  let afterFirstRun: Map<string, ObjectRowRaw>;
  let beforeSecondRun: Map<string, ObjectRowRaw>;
  let doneKeys: Set<string>;
  const FAILED_KEY = 'bulk/00003';

  beforeAll(async () => {
    dir = await freshDir('c2500');
    state = path.join(dir, 'state.db');
    seededFrom = Date.now();
    await putObjects(client, 'src', [...BULK, ...SPECIAL]);
    seededTo = Date.now();
    proxy = await startRequestProxy(s3.endpoint);
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  it('records every key byte for byte, with its size and ETag', async () => {
    const result = await runCli(['catalog', '--from', 's3://src', '--state', state, '--list-concurrency', '1'], { env: env(proxy.endpoint) });
    expectExit(result, 0);
    expect(proxy.counts().ListObjectsV2).toBe(3);

    const rows = readObjects(state);
    expect(rows.size).toBe(2_500);
    expect(countRows(state)).toBe(2_500);
    expect([...rows.keys()].sort()).toEqual([...expected.keys()].sort());

    for (const [key, body] of expected) {
      const row = rows.get(key)!;
      expect({ key, size: row.size, etag: row.etag?.replace(/"/g, ''), status: row.status }).toEqual({
        key,
        size: body.length,
        etag: md5(body),
        status: 'pending',
      });
      // ISO-8601 UTC, and the time the object was put (s3rver has 1-second resolution).
      expect(row.last_modified).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      const modified = Date.parse(row.last_modified);
      expect(modified).toBeGreaterThanOrEqual(Math.floor(seededFrom / 1000) * 1000 - 1000);
      expect(modified).toBeLessThanOrEqual(seededTo + 1000);
    }

    // The stored bytes are the UTF-8 of the key as put: no normalisation, decoding or trimming.
    withRaw(state, (db) => {
      const hex = db.prepare('SELECT hex(key) AS hex FROM objects WHERE key = ?');
      for (const { key } of SPECIAL) {
        expect((hex.get(key) as { hex: string }).hex).toBe(Buffer.from(key, 'utf8').toString('hex').toUpperCase());
      }
    });
    const meta = readMeta(state);
    expect(meta).toMatchObject({ source_bucket: 'src', source_prefix: '', catalog_state: 'complete' });
    expect(meta.source_endpoint).toBe(proxy.endpoint);
    afterFirstRun = rows;
  });

  it('a second catalog keeps the 2,500 rows and every status as it was', async () => {
    expect(afterFirstRun, 'needs the first catalog').toBeDefined();
    // Simulate copy progress the way a user with sqlite3 could: some rows done, one failed.
    doneKeys = new Set([
      ...BULK.filter((_, i) => i % 7 === 0).map((s) => s.key),
      'zz/ünïcødé/файл-日本語.txt',
      'zz/folder/',
      'zz/caf\u00e9',
    ]);
    withRaw(
      state,
      (db) => {
        const done = db.prepare(
          // times as the file keeps them: milliseconds since 1970 (2020-01-01T00:00:00.000Z)
          `UPDATE objects SET status = 'done', attempts = 1, copied_at = 1577836800000,
             updated_at = 1577836800000 WHERE key = ?`,
        );
        db.transaction(() => {
          for (const key of doneKeys) expect(done.run(key).changes).toBe(1);
        })();
        const failed = db
          .prepare(
            `UPDATE objects SET status = 'failed', attempts = 5, error = 'simulated',
               updated_at = 1577923200000 WHERE key = ?`,
          )
          .run(FAILED_KEY);
        expect(failed.changes).toBe(1);
      },
      'write',
    );
    beforeSecondRun = readObjects(state);

    const result = await runCli(['catalog', '--from', 's3://src', '--state', state, '--list-concurrency', '1'], { env: env(proxy.endpoint) });
    expectExit(result, 0);

    const after = readObjects(state);
    expect(after.size).toBe(2_500);
    // Nothing changed at the source, so no row changed: not status, attempts, error nor updated_at.
    const pick = (r: ObjectRowRaw) => [r.status, r.attempts, r.error, r.updated_at, r.size, r.etag, r.last_modified];
    const changed = [...beforeSecondRun].filter(([key, row]) => JSON.stringify(pick(row)) !== JSON.stringify(pick(after.get(key)!)));
    expect(changed).toEqual([]);
    // ...and it was a real second pass over the bucket, not a no-op.
    expect(readMeta(state)).toMatchObject({ catalog_pass: '2', catalog_state: 'complete' });
    const runs = withRaw(state, (db) => db.prepare("SELECT outcome, keys_listed FROM runs WHERE command = 'catalog' ORDER BY id").all());
    expect(runs).toEqual([
      { outcome: 'completed', keys_listed: 2_500 },
      { outcome: 'completed', keys_listed: 2_500 },
    ]);
  });

  it('after source changes: the changed and the new key are pending, the deleted one gone, the rest untouched', async () => {
    expect(beforeSecondRun, 'needs the second catalog').toBeDefined();
    const changedKey = 'bulk/00007'; // done; overwritten with other content of the same size
    const deletedKey = 'bulk/00014'; // done
    const newKey = 'zz/new key added later';
    expect(doneKeys.has(changedKey) && doneKeys.has(deletedKey)).toBe(true);
    const newBody = Buffer.alloc(expected.get(changedKey)!.length, 'X');
    // s3rver's LastModified is the stored file's mtime: put it back after the overwrite, as if both writes
    // had happened within the same second. Same size, same LastModified: only the ETag tells.
    const storedFile = path.join(s3.dir, 'src', `${changedKey}._S3rver_object`);
    const { atime, mtime } = fs.statSync(storedFile);
    await client.send(new PutObjectCommand({ Bucket: 'src', Key: changedKey, Body: newBody }));
    fs.utimesSync(storedFile, atime, mtime);
    await client.send(new PutObjectCommand({ Bucket: 'src', Key: newKey, Body: Buffer.from('new') }));
    await client.send(new DeleteObjectCommand({ Bucket: 'src', Key: deletedKey }));
    const before = readObjects(state);

    const result = await runCli(['catalog', '--from', 's3://src', '--state', state, '--list-concurrency', '1'], { env: env(proxy.endpoint) });
    expectExit(result, 0);
    expect(result.stderr).toMatch(/1 gone/);

    const after = readObjects(state);
    expect(after.size).toBe(2_501); // the deleted key's row is kept
    expect(after.get(changedKey)!.last_modified).toBe(before.get(changedKey)!.last_modified);
    expect(after.get(changedKey)).toMatchObject({
      status: 'pending',
      attempts: 0,
      size: newBody.length,
      etag: `"${md5(newBody)}"`,
    });
    expect(after.get(newKey)).toMatchObject({ status: 'pending', size: 3, etag: `"${md5(Buffer.from('new'))}"` });
    expect(after.get(deletedKey)?.status).toBe('gone');
    const others = [...before.keys()].filter((key) => key !== changedKey && key !== deletedKey);
    expect(others).toHaveLength(2_498);
    const statusChanges = others.filter((key) => after.get(key)!.status !== before.get(key)!.status);
    expect(statusChanges).toEqual([]);
    expect(after.get(FAILED_KEY)).toMatchObject({ status: 'failed', error: 'simulated', attempts: 5 });

    // Bookkeeping for the plain-SQL test below.
    expected.set(changedKey, newBody);
    expected.set(newKey, Buffer.from('new'));
    doneKeys.delete(changedKey);
    doneKeys.delete(deletedKey);
  });

  it('the state file answers plain SQL with no knowledge of s3migrate', () => {
    expect(doneKeys.has('bulk/00014'), 'needs the reconciling catalog').toBe(false);
    const deletedKey = 'bulk/00014';
    const size = (key: string) => expected.get(key)!.length;
    const live = [...expected.keys()].filter((key) => key !== deletedKey);
    const pending = live.filter((key) => !doneKeys.has(key) && key !== FAILED_KEY);
    const sum = (keys: string[]) => keys.reduce((total, key) => total + size(key), 0);
    const done = [...doneKeys];

    withRaw(state, (db) => {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.prepare('SELECT status, count(*) AS n FROM objects GROUP BY status ORDER BY status').all()).toEqual([
        { status: 'done', n: done.length },
        { status: 'failed', n: 1 },
        { status: 'gone', n: 1 },
        { status: 'pending', n: pending.length },
      ]);
      expect(db.prepare('SELECT * FROM status_summary').all()).toEqual([
        { status: 'done', objects: done.length, bytes: sum(done) },
        { status: 'failed', objects: 1, bytes: size(FAILED_KEY) },
        { status: 'gone', objects: 1, bytes: size(deletedKey) },
        { status: 'pending', objects: pending.length, bytes: sum(pending) },
      ]);
      const progress = db.prepare('SELECT * FROM progress').get() as Record<string, number>;
      expect(progress).toMatchObject({
        objects_total: 2_500,
        objects_done: done.length,
        bytes_total: sum(live),
        bytes_done: sum(done),
      });
      expect(progress.percent_done).toBeCloseTo((100 * done.length) / 2_500, 2);
      expect(db.prepare('SELECT key, error FROM failed_objects').all()).toEqual([{ key: FAILED_KEY, error: 'simulated' }]);
      expect(db.prepare("SELECT value FROM meta WHERE key = 'source_bucket'").pluck().get()).toBe('src');
    });
  });
});

// -------------------------------------------------------------------------------------------------

describe('catalog of 20,000 keys interrupted mid-listing', () => {
  const TOTAL = 20_000;
  const PAGES = TOTAL / 1_000;
  const KILL_AT_REQUEST = 6;
  const seeds: Seed[] = Array.from({ length: TOTAL }, (_, i) => ({
    // 500 keys per directory keeps s3rver's per-page directory walk short.
    key: `d${String(Math.floor(i / 500)).padStart(2, '0')}/obj-${String(i).padStart(5, '0')}`,
    body: Buffer.from(String(i)),
  }));
  let proxy: RequestProxy;
  let onList: (info: RequestInfo) => ProxyDecision | Promise<ProxyDecision> = () => 'pass';

  beforeAll(async () => {
    writeS3rverObjects(s3.dir, 'big', seeds);
    proxy = await startRequestProxy(s3.endpoint, { onRequest: (info) => (info.op === 'ListObjectsV2' ? onList(info) : 'pass') });
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  it('killed with SIGKILL, it resumes after the last committed page and ends with exactly 20,000 rows', { timeout: 240_000 }, async () => {
    const dir = await freshDir('kill');
    const state = path.join(dir, 'state.db');
    const args = ['catalog', '--from', 's3://big', '--state', state, '--list-concurrency', '1'];

    // Run 1: SIGKILL the CLI the moment it asks for page 6 (asked while page 5 is stored: pages 1-4 or 1-5 are stored by then).
    let listed = 0;
    let cli: ReturnType<typeof startCli> | undefined;
    onList = () => {
      listed += 1;
      if (listed < KILL_AT_REQUEST) return 'pass';
      cli!.child.kill('SIGKILL');
      return 'reset';
    };
    cli = startCli(args, { env: env(proxy.endpoint) });
    const first = await cli.result;
    expect(first.signal, first.stderr).toBe('SIGKILL');
    const firstRunLists = proxy.counts().ListObjectsV2 ?? 0;
    expect(firstRunLists).toBe(KILL_AT_REQUEST);

    // What the killed run left: whole pages only, and the resume point is the last key stored.
    const committed = countRows(state);
    expect(committed).toBeGreaterThan(0);
    expect(committed).toBeLessThan(TOTAL);
    expect(committed % 1_000).toBe(0);
    const meta = readMeta(state);
    expect(meta.catalog_state).toBe('listing');
    const lastStored = withRaw(state, (db) => db.prepare('SELECT max(key) FROM objects').pluck().get());
    expect(partsOf(state)).toEqual([{ part: 1, start_after: '', end_key: null, resume_after: lastStored, done: 0, keys_listed: committed }]);

    // Run 2: the same command continues (taking over the dead process's lock) and finishes.
    onList = () => 'pass';
    proxy.reset();
    const second = await runCli(args, { env: env(proxy.endpoint), timeoutMs: 200_000 });
    expectExit(second, 0);
    expect(second.stderr).toMatch(/Resuming the listing/);
    const secondRunLists = proxy.counts().ListObjectsV2 ?? 0;
    // It asked for the keys after the last one stored, not for the bucket from the start.
    const firstAsk = new URLSearchParams(proxy.log().find((e) => e.op === 'ListObjectsV2')!.query);
    expect(firstAsk.get('start-after')).toBe(lastStored);
    expect(firstAsk.has('continuation-token')).toBe(false);
    // Only pages the first run had not stored are listed again: at most two pages of overlap, the page it
    // was storing and the one it had asked for ahead of it.
    expect(secondRunLists).toBeLessThanOrEqual(PAGES - committed / 1_000 + 1);
    expect(firstRunLists + secondRunLists).toBeLessThanOrEqual(PAGES + 2);

    const rows = readObjects(state);
    expect(rows.size).toBe(TOTAL);
    const wrong = seeds.filter((s) => {
      const row = rows.get(s.key);
      return !row || row.status !== 'pending' || row.size !== s.body.length || row.etag !== `"${md5(s.body)}"`;
    });
    expect(wrong).toEqual([]);
    expect(readMeta(state)).toMatchObject({ catalog_state: 'complete', catalog_pass: '1' });
    expect(readMeta(state).lock).toBeUndefined();
  });

  it('SIGTERM mid-listing stops cleanly: exit 130, whole pages kept, lock released', async () => {
    const dir = await freshDir('term');
    const state = path.join(dir, 'state.db');
    let listed = 0;
    let cli: ReturnType<typeof startCli> | undefined;
    onList = () => {
      listed += 1;
      if (listed === 3) {
        cli!.child.kill('SIGTERM');
        return new Promise<ProxyDecision>((resolve) => setTimeout(() => resolve('pass'), 1_000)); // in flight when the signal lands
      }
      return 'pass';
    };
    cli = startCli(['catalog', '--from', 's3://big', '--state', state, '--list-concurrency', '1'], { env: env(proxy.endpoint) });
    const result = await cli.result;
    onList = () => 'pass';
    expectExit(result, 130);
    expect(result.stderr).toMatch(/run the same command again to continue/);
    expect(countRows(state)).toBe(2_000);
    const meta = readMeta(state);
    expect(meta).toMatchObject({ catalog_state: 'listing' });
    expect(partsOf(state)).toMatchObject([{ resume_after: seeds[1_999]!.key, done: 0 }]);
    expect(meta.lock).toBeUndefined();
    const runs = withRaw(state, (db) => db.prepare('SELECT outcome, keys_listed FROM runs').all());
    expect(runs).toEqual([{ outcome: 'interrupted', keys_listed: 2_000 }]);
  });
});

// -------------------------------------------------------------------------------------------------

describe('bad input: one clear line, the documented exit code, the state file untouched', () => {
  let valid: string; // a good state file of s3://small, copied for tests that need an existing one

  beforeAll(async () => {
    await putObjects(client, 'small', [
      { key: 'a.txt', body: Buffer.from('a') },
      { key: 'b/c.txt', body: Buffer.from('bc') },
    ]);
    await putObjects(client, 'other', [{ key: 'x', body: Buffer.from('x') }]);
    const dir = await freshDir('valid');
    valid = path.join(dir, 'state.db');
    expectExit(await runCli(['catalog', '--from', 's3://small', '--state', valid], { env: env() }), 0);
    expect(countRows(valid)).toBe(2);
  });

  /** A copy of the valid state file in its own directory, with its hash. */
  async function existingState(): Promise<{ dir: string; state: string; hash: string }> {
    const dir = await freshDir('existing');
    const state = path.join(dir, 'state.db');
    fs.copyFileSync(valid, state);
    return { dir, state, hash: sha256File(state) };
  }

  function expectUntouched(existing: { dir: string; state: string; hash: string }): void {
    expect(sha256File(existing.state)).toBe(existing.hash);
    expect(filesIn(existing.dir)).toEqual(['state.db']); // no -wal/-shm/journal left behind either
  }

  it.each([
    { name: '--from not an s3:// URL', args: ['--from', 'small'], fragment: /--from must be an s3:\/\/ URL/ },
    { name: '--from with an http URL', args: ['--from', 'https://small/'], fragment: /--from must be an s3:\/\/ URL/ },
    { name: 'an empty bucket name', args: ['--from', 's3://'], fragment: /empty bucket name/ },
  ])('$name -> exit 2, existing state untouched, none created', async ({ args, fragment }) => {
    const existing = await existingState();
    const withExisting = await runCli(['catalog', ...args, '--state', existing.state], { env: env() });
    expectExit(withExisting, 2);
    expectOneErrorLine(withExisting, fragment);
    expectUntouched(existing);

    const dir = await freshDir('none');
    const withNone = await runCli(['catalog', ...args, '--state', path.join(dir, 'state.db')], { env: env() });
    expectExit(withNone, 2);
    expect(filesIn(dir)).toEqual([]);
  });

  it('an unknown flag -> exit 2, state untouched', async () => {
    const existing = await existingState();
    const result = await runCli(['catalog', '--from', 's3://small', '--state', existing.state, '--bogus-flag'], {
      env: env(),
    });
    expectExit(result, 2);
    // Commander's message, then its hint to run --help.
    expect(result.stderr.split('\n')[0]).toMatch(/unknown option '--bogus-flag'/);
    expect(result.stderr.trimEnd().split('\n').length).toBeLessThanOrEqual(2);
    expectUntouched(existing);
  });

  it('SOURCE_AWS_ACCESS_KEY_ID without its secret -> exit 2 naming the missing variable', async () => {
    const existing = await existingState();
    const result = await runCli(['catalog', '--from', 's3://small', '--state', existing.state], {
      env: { ...env(), SOURCE_AWS_SECRET_ACCESS_KEY: undefined },
    });
    expectExit(result, 2);
    expectOneErrorLine(result, /SOURCE_AWS_SECRET_ACCESS_KEY/);
    expectUntouched(existing);
  });

  it('a missing source bucket -> exit 1 naming the bucket, no state file created', async () => {
    const dir = await freshDir('nobucket');
    const result = await runCli(['catalog', '--from', 's3://no-such-bucket-here', '--state', path.join(dir, 'state.db')], {
      env: env(),
    });
    expectExit(result, 1);
    expectOneErrorLine(result, /"no-such-bucket-here" does not exist/);
    expect(filesIn(dir)).toEqual([]);
  });

  it('wrong credentials -> exit 1 mentioning credentials, no state file left, the secret never shown', async () => {
    const dir = await freshDir('badcreds');
    const result = await runCli(['catalog', '--from', 's3://small', '--state', path.join(dir, 'state.db')], {
      env: { ...env(), SOURCE_AWS_ACCESS_KEY_ID: 'WRONG', SOURCE_AWS_SECRET_ACCESS_KEY: 'SuperSecret-xyz123' },
    });
    expectExit(result, 1);
    expectOneErrorLine(result, /credentials/);
    expect(result.stderr).toMatch(/SOURCE_AWS_ACCESS_KEY_ID/);
    expect(result.stderr + result.stdout).not.toContain('SuperSecret-xyz123');
    expect(filesIn(dir)).toEqual([]);
  });

  it('a state file that is not ours (a text file, a foreign SQLite DB) -> exit 1, file unchanged', async () => {
    const dir = await freshDir('foreign');
    const text = path.join(dir, 'notes.txt');
    fs.writeFileSync(text, 'just some text the user wrote\n'.repeat(50));
    const foreign = path.join(dir, 'app.db');
    withRaw(
      foreign,
      (db) => db.exec("CREATE TABLE objects (key TEXT, status TEXT); INSERT INTO objects VALUES ('k', 'mine')"),
      'create',
    );
    for (const file of [text, foreign]) {
      const before = filesIn(dir);
      const hash = sha256File(file);
      for (const command of [['catalog', '--from', 's3://small'], ['status']]) {
        const result = await runCli([...command, '--state', file], { env: env() });
        expectExit(result, 1);
        expectOneErrorLine(result, /not an s3migrate state file/);
        expect(sha256File(file)).toBe(hash);
        expect(filesIn(dir)).toEqual(before);
      }
    }
  });

  it('a state file of another source -> exit 2, file unchanged', async () => {
    const existing = await existingState();
    const result = await runCli(['catalog', '--from', 's3://other', '--state', existing.state], { env: env() });
    expectExit(result, 2);
    expectOneErrorLine(result, /holds the catalog of s3:\/\/small\//);
    expectUntouched(existing);
    expect(countRows(existing.state)).toBe(2);
  });

  it('credentials never reach the output nor the state file', async () => {
    const dir = await freshDir('secret');
    const state = path.join(dir, 'state.db');
    const secret = 'SuperSecret-xyz123';
    const token = 'SessionToken-qrs456';
    const result = await runCli(['catalog', '--from', 's3://small', '--state', state], {
      env: { ...env(), SOURCE_AWS_SECRET_ACCESS_KEY: secret, SOURCE_AWS_SESSION_TOKEN: token },
    });
    expectExit(result, 0);
    expect(countRows(state)).toBe(2); // the run really used these credentials
    const status = await runCli(['status', '--state', state, '--json'], { env: env() });
    expectExit(status, 0);
    for (const text of [result.stdout, result.stderr, status.stdout, status.stderr]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(token);
    }
    for (const file of filesIn(dir)) {
      const bytes = fs.readFileSync(path.join(dir, file));
      expect(bytes.includes(secret), file).toBe(false);
      expect(bytes.includes(token), file).toBe(false);
    }
  });
});
