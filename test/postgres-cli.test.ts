// Every command end to end on a PostgreSQL state (a throwaway server, describePostgres) and two s3rver
// endpoints, run as users run the CLI: catalog, copy, status --json and verify on one migration; two
// migrations in one database that never see each other; S3MIGRATE_STATE_URL; and bad input (database
// unreachable, wrong or URL password, another source under the same migration name) answered with one
// clear line, the documented exit code, and the database as it was. PGPASSWORD never shows anywhere.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { s3rverClient, startS3rver, type S3rverHandle } from '../scripts/servers/s3rver.js';
import { runCli, s3rverEnv, startCli, type CliResult } from './support/cli.js';
import { bytes, listKeys, MiB, seed, sha256, sha256Of, sleep, tempDir, teardown, waitFor, type SeedObject } from './support/copy-fixtures.js';
import { startRequestProxy, type RequestProxy } from './support/request-proxy.js';
import { writeS3rverObjects } from './support/catalog-fixtures.js';
import { describePostgres } from './support/postgres.js';

// s3rver lists these keys in its directories' order (`a/b.jpg` before `a b.jpg`), not S3's byte order:
// listing them in parts would stop the catalog, so their catalogs use one lister.
const ONE_LISTER = ['--list-concurrency', '1'];
const PHOTOS: SeedObject[] = [
  'a.jpg', 'B.jpg', 'é.jpg', 'emoji 😀.jpg', '\uFF01bang.jpg', 'a/b.jpg', 'a b.jpg', 'a-.jpg', 'plus+sign.jpg', 'dir/',
].map((key, i) => ({ key, body: key.endsWith('/') ? Buffer.alloc(0) : bytes(200 + i * 100) }));
const BIG_PARTS = 12;
const VIDEOS: SeedObject[] = ['a.jpg', 'v/1.mp4', 'v/2.mp4'].map((key, i) => ({ key, body: bytes(5_000 + i) }));

let source: S3rverHandle;
let dest: S3rverHandle;
let sourceClient: S3Client;
let destClient: S3Client;
let work: Awaited<ReturnType<typeof tempDir>>;
const proxies: RequestProxy[] = [];

beforeAll(async () => {
  [source, dest] = await Promise.all([
    startS3rver({ buckets: ['photos', 'videos', 'big-src', 'parts-src'] }),
    startS3rver({ buckets: ['photos-dst', 'videos-dst', 'env-dst', 'two-a', 'two-b', 'big-dst', 'wave-dst'] }),
  ]);
  sourceClient = s3rverClient(source.endpoint);
  destClient = s3rverClient(dest.endpoint);
  await Promise.all([seed(sourceClient, 'photos', PHOTOS), seed(sourceClient, 'videos', VIDEOS)]);
  work = await tempDir('pg-cli');
});

afterAll(() => teardown({ proxies, clients: [sourceClient, destClient], servers: [source, dest], work }));

function expectExit(result: CliResult, code: number): void {
  expect(result.code, `exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`).toBe(code);
}

/** A TCP port on 127.0.0.1 that nothing listens on. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

describePostgres('the CLI on a PostgreSQL state', (pg) => {
  /**
   * The environment of a run: both S3 sides, the password in PGPASSWORD, and nothing of the machine's own
   * PostgreSQL settings (no PG* variables, a HOME without ~/.pgpass).
   */
  const env = (extra: Record<string, string | undefined> = {}): Record<string, string | undefined> => ({
    ...s3rverEnv(source.endpoint, dest.endpoint),
    PGHOST: undefined,
    PGPORT: undefined,
    PGUSER: undefined,
    PGDATABASE: undefined,
    PGPASSFILE: undefined,
    PGSSLMODE: undefined,
    S3MIGRATE_STATE_URL: undefined,
    HOME: work.dir,
    PGPASSWORD: pg().password,
    ...extra,
  });

  const run = (args: string[], extra: Record<string, string | undefined> = {}): Promise<CliResult> =>
    runCli(args, { env: env(extra), cwd: work.dir });

  /** Everything the state holds in a database, as text: to compare before/after, and to search for secrets. */
  async function snapshot(database: string): Promise<string> {
    const tables = (
      await pg().query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = 's3migrate' ORDER BY tablename", [], database)
    ).rows;
    const parts: string[] = [];
    for (const { tablename } of tables) {
      const rows = await pg().query<{ row: string }>(`SELECT row_to_json(t)::text AS row FROM s3migrate."${tablename}" t ORDER BY 1`, [], database);
      parts.push(`${tablename}: ${rows.rows.map((r) => r.row).join('\n')}`);
    }
    return parts.join('\n');
  }

  const objectsOf = async (database: string, migration: string): Promise<Array<{ key: string; status: string; evidence: string | null }>> =>
    (
      await pg().query<{ key: string; status: string; evidence: string | null }>(
        'SELECT key, status, evidence FROM s3migrate.objects WHERE migration = $1 ORDER BY key',
        [migration],
        database,
      )
    ).rows;

  it('catalog, copy, status --json and verify of one migration, byte for byte, keys in byte order', async () => {
    const database = await pg().createDatabase();
    const state = ['--state', pg().urlOf(database), '--migration', 'photos'];

    const catalog = await run(['catalog', '--from', 's3://photos', ...state, ...ONE_LISTER, '--quiet']);
    expectExit(catalog, 0);
    const copy = await run(['copy', '--to', 's3://photos-dst', ...state, '--concurrency', '4', '--quiet']);
    expectExit(copy, 0);
    expect((await listKeys(destClient, 'photos-dst')).sort()).toEqual(PHOTOS.map((o) => o.key).sort());
    for (const object of PHOTOS) expect(await sha256Of(destClient, 'photos-dst', object.key), object.key).toBe(sha256(object.body));

    // The keys sort as S3 lists them (UTF-8 bytes), every row done on evidence.
    const rows = await objectsOf(database, 'photos');
    expect(rows.map((r) => r.key)).toEqual(PHOTOS.map((o) => o.key).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
    expect(rows.every((r) => r.status === 'done' && r.evidence !== null)).toBe(true);

    const status = await run(['status', ...state, '--json']);
    expectExit(status, 0);
    expect(status.stderr).toBe(''); // no warning of any library either
    const json = JSON.parse(status.stdout) as Record<string, unknown>;
    expect(json).toMatchObject({
      stateFile: `${pg().urlOf(database)} (migration "photos")`,
      source: { bucket: 'photos', prefix: '', endpoint: source.endpoint },
      catalogState: 'complete',
      counts: [{ status: 'done', objects: PHOTOS.length, bytes: PHOTOS.reduce((sum, o) => sum + o.body.length, 0) }],
      objectsTotal: PHOTOS.length,
      objectsDone: PHOTOS.length,
      percentDone: 100,
      lastRun: { command: 'copy', outcome: 'completed' },
    });
    const text = await run(['status', ...state]);
    expectExit(text, 0);
    expect(text.stdout).toMatch(/^State file: postgres:\/\/s3migrate@127\.0\.0\.1:\d+\/test_\d+_\d+ \(migration "photos"\)$/m);

    const verify = await run(['verify', ...state, '--json']);
    expectExit(verify, 0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ passed: true, problems: [], results: { ok: PHOTOS.length } });

    // Again: a second catalog pass reconciles nothing, a second copy has nothing to do.
    expectExit(await run(['catalog', '--from', 's3://photos', ...state, ...ONE_LISTER, '--quiet']), 0);
    expectExit(await run(['copy', '--to', 's3://photos-dst', ...state, '--quiet']), 0);
    expect((await objectsOf(database, 'photos')).every((r) => r.status === 'done')).toBe(true);

    // PGPASSWORD is nowhere in the state, nor in anything printed.
    const all = await snapshot(database);
    expect(all).toContain('photos');
    expect(all).not.toContain(pg().password);
    for (const result of [catalog, copy, status, text, verify]) {
      expect(result.stdout + result.stderr).not.toContain(pg().password);
      expect(result.stderr).not.toMatch(/warning|deprecat/i);
    }
  });

  it('plan and a filtered wave in SQL (key ~ pattern), the rest pending; a second wave finishes', async () => {
    const database = await pg().createDatabase();
    const state = ['--state', pg().urlOf(database), '--migration', 'waves'];
    // One lister: s3rver lists "a/b.jpg" before "a b.jpg" (not byte order), which listing in parts refuses.
    expectExit(await run(['catalog', '--from', 's3://photos', ...state, '--quiet', '--list-concurrency', '1']), 0);
    const wave = ['--include', '*.jpg', '--exclude', 'a*'];
    const selected = ['B.jpg', 'é.jpg', 'emoji 😀.jpg', '\uFF01bang.jpg', 'plus+sign.jpg'];
    const planned = await run(['plan', ...state, '--json', ...wave]);
    expectExit(planned, 0);
    const plan = JSON.parse(planned.stdout) as { objects: { toCopy: { objects: number } }; requests: { source: { get: number }; dest: { put: number } } };
    expect(plan.objects.toCopy.objects).toBe(selected.length);
    expect(plan.requests.source.get).toBe(selected.length);
    expect(plan.requests.dest.put).toBe(selected.length);

    expectExit(await run(['copy', '--to', 's3://wave-dst', ...state, '--quiet', ...wave]), 0);
    expect((await listKeys(destClient, 'wave-dst')).sort()).toEqual([...selected].sort());
    const rows = await objectsOf(database, 'waves');
    for (const row of rows) expect(row.status, row.key).toBe(selected.includes(row.key) ? 'done' : 'pending');
    const status = JSON.parse((await run(['status', ...state, '--json', ...wave])).stdout) as { selection: { counts: unknown } };
    expect(status.selection.counts).toEqual([{ status: 'done', objects: selected.length, bytes: expect.any(Number) }]);

    expectExit(await run(['copy', '--to', 's3://wave-dst', ...state, '--quiet']), 0);
    expect((await listKeys(destClient, 'wave-dst')).sort()).toEqual(PHOTOS.map((o) => o.key).sort());
  });

  it('two migrations in one database never see each other; S3MIGRATE_STATE_URL stands in for --state', async () => {
    const database = await pg().createDatabase();
    const url = pg().urlOf(database);
    expectExit(await run(['catalog', '--from', 's3://photos', '--state', url, '--migration', 'a', ...ONE_LISTER, '--quiet']), 0);
    // The same database through the variable, under another name: the default migration.
    expectExit(await run(['catalog', '--from', 's3://videos', '--quiet'], { S3MIGRATE_STATE_URL: url }), 0);
    expectExit(await run(['copy', '--to', 's3://two-b', '--quiet'], { S3MIGRATE_STATE_URL: url }), 0);

    // Only the videos arrived in two-b; migration a is untouched by b's copy.
    expect((await listKeys(destClient, 'two-b')).sort()).toEqual(VIDEOS.map((o) => o.key).sort());
    expect((await objectsOf(database, 'a')).every((r) => r.status === 'pending')).toBe(true);
    expect((await objectsOf(database, 'default')).map((r) => r.status)).toEqual(['done', 'done', 'done']);

    const statusA = JSON.parse((await run(['status', '--state', url, '--migration', 'a', '--json'])).stdout) as { objectsTotal: number; objectsDone: number };
    const statusB = JSON.parse((await run(['status', '--json'], { S3MIGRATE_STATE_URL: url })).stdout) as { objectsTotal: number; objectsDone: number };
    expect([statusA.objectsTotal, statusA.objectsDone]).toEqual([PHOTOS.length, 0]);
    expect([statusB.objectsTotal, statusB.objectsDone]).toEqual([VIDEOS.length, VIDEOS.length]);

    // 'a' copies to its own bucket; verify of each sees only its own rows.
    expectExit(await run(['copy', '--to', 's3://two-a', '--state', url, '--migration', 'a', '--quiet']), 0);
    const verifyA = await run(['verify', '--state', url, '--migration', 'a', '--json']);
    expectExit(verifyA, 0);
    expect(JSON.parse(verifyA.stdout)).toMatchObject({ passed: true, results: { ok: PHOTOS.length } });
    const verifyB = await run(['verify', '--json'], { S3MIGRATE_STATE_URL: url });
    expectExit(verifyB, 0);
    expect(JSON.parse(verifyB.stdout)).toMatchObject({ passed: true, results: { ok: VIDEOS.length } });

    // One query over the whole database: every migration's progress.
    const progress = await pg().query<{ migration: string; objects_done: string }>('SELECT migration, objects_done FROM s3migrate.progress', [], database);
    expect(progress.rows).toEqual([
      { migration: 'a', objects_done: String(PHOTOS.length) },
      { migration: 'default', objects_done: String(VIDEOS.length) },
    ]);

    // --state wins over the variable; a variable that is not a postgres:// URL is refused.
    const sqlite = await run(['status', '--state', path.join(work.dir, 'none.db')], { S3MIGRATE_STATE_URL: url });
    expectExit(sqlite, 1);
    expect(sqlite.stderr).toMatch(/No state file at/);
    const notUrl = await run(['status'], { S3MIGRATE_STATE_URL: 'state.db' });
    expectExit(notUrl, 2);
    expect(notUrl.stderr).toMatch(/S3MIGRATE_STATE_URL must be a postgres:\/\/ URL/);
  });

  it('catalog --list-concurrency 8 on PostgreSQL: killed mid-listing, the rerun resumes every part and is exact', async () => {
    // 3,000 keys under 30 prefixes of 10 to 190 keys, 2 more under deep-only prefixes, and root keys.
    const keys = [
      ...Array.from({ length: 30 }, (_, p) => Array.from({ length: 10 + p * 6 }, (_, i) => `p${String(p).padStart(2, '0')}/k${String(i).padStart(4, '0')}`)).flat(),
      'deep/x/1', 'deep/y/2', 'root-a', 'root-b',
    ];
    writeS3rverObjects(source.dir, 'parts-src', keys.map((key) => ({ key, body: Buffer.from(key) })));
    const database = await pg().createDatabase();
    const state = ['--state', pg().urlOf(database), '--migration', 'parts'];
    const proxy = await startRequestProxy(source.endpoint, {
      onRequest: (info) => {
        if (info.op !== 'ListObjectsV2' || !kill) return 'pass';
        listed += 1;
        if (listed < 12) return 'pass';
        kill();
        return 'reset';
      },
    });
    proxies.push(proxy);
    let listed = 0;
    let kill: (() => void) | undefined;
    const cli = startCli(['catalog', '--from', 's3://parts-src', ...state, '--list-concurrency', '8'], {
      env: env({ SOURCE_ENDPOINT: proxy.endpoint }),
      cwd: work.dir,
    });
    kill = () => cli.child.kill('SIGKILL');
    expect((await cli.result).signal).toBe('SIGKILL');
    kill = undefined;
    const resumed = await run(['catalog', '--from', 's3://parts-src', ...state, '--list-concurrency', '8'], { SOURCE_ENDPOINT: proxy.endpoint });
    expectExit(resumed, 0);
    expect(resumed.stderr).toMatch(/Resuming the listing/);
    const status = JSON.parse((await run(['status', ...state, '--json'])).stdout) as { objectsTotal: number; catalogState: string; catalogSource: unknown };
    expect(status).toMatchObject({ objectsTotal: keys.length, catalogState: 'complete', catalogSource: { kind: 'listing', partsDone: expect.any(Number) } });
    const single = ['--state', pg().urlOf(database), '--migration', 'single'];
    expectExit(await run(['catalog', '--from', 's3://parts-src', ...single, '--list-concurrency', '1', '--quiet']), 0);
    expect(JSON.parse((await run(['status', ...single, '--json'])).stdout).objectsTotal).toBe(keys.length);
  });

  it('takes the password from ~/.pgpass when PGPASSWORD is not set', async () => {
    const database = await pg().createDatabase();
    const home = path.join(work.dir, 'home-with-pgpass');
    fs.mkdirSync(home);
    fs.writeFileSync(path.join(home, '.pgpass'), `127.0.0.1:${pg().port}:${database}:${pg().user}:${pg().password}\n`, { mode: 0o600 });
    const state = ['--state', pg().urlOf(database), '--migration', 'pgpass'];
    const catalog = await run(['catalog', '--from', 's3://videos', ...state, '--quiet'], { PGPASSWORD: undefined, HOME: home });
    expectExit(catalog, 0);
    const status = await run(['status', ...state, '--json'], { PGPASSWORD: undefined, HOME: home });
    expectExit(status, 0);
    expect(status.stderr).toBe('');
    expect(JSON.parse(status.stdout)).toMatchObject({ objectsTotal: VIDEOS.length });
    // Without it, the message says where a password may come from.
    const none = await run(['status', ...state], { PGPASSWORD: undefined });
    expectExit(none, 1);
    expect(none.stderr).toMatch(/^s3migrate: PostgreSQL at 127\.0\.0\.1:\d+ asks user "s3migrate" for a password and none was given .* Set PGPASSWORD, or add a line/);
  });

  it('part-level resume on PostgreSQL: kill -9 mid-upload, the rerun sends only the missing parts', async () => {
    const database = await pg().createDatabase();
    const state = ['--state', pg().urlOf(database), '--migration', 'big'];
    const flags = ['--multipart-threshold', '5MiB', '--part-size', '5MiB', '--part-concurrency', '2', '--concurrency', '1', '--quiet'];
    const body = bytes(BIG_PARTS * 5 * MiB);
    await seed(sourceClient, 'big-src', [{ key: 'dump.bin', body }]);
    expectExit(await run(['catalog', '--from', 's3://big-src', ...state, '--quiet']), 0);
    // Every part answer waits a little, so that the kill lands mid-upload.
    const proxy = await startRequestProxy(dest.endpoint, { onResponse: (info) => (info.op === 'UploadPart' ? sleep(150) : undefined) });
    proxies.push(proxy);
    const confirmed = (): number[] =>
      proxy.log().filter((e) => e.op === 'UploadPart' && e.status === 200).map((e) => Number(new URLSearchParams(e.query).get('partNumber')));
    const first = startCli(['copy', '--to', 's3://big-dst', ...state, ...flags], { env: env({ DEST_ENDPOINT: proxy.endpoint }), cwd: work.dir });
    await waitFor(() => confirmed().length >= BIG_PARTS / 2, 60_000, 'half the parts confirmed');
    first.child.kill('SIGKILL');
    expect((await first.result).signal).toBe('SIGKILL');

    const recorded = (
      await pg().query<{ part_number: number }>("SELECT part_number FROM s3migrate.parts WHERE migration = 'big' ORDER BY 1", [], database)
    ).rows.map((r) => r.part_number);
    expect(recorded.length).toBeGreaterThanOrEqual(BIG_PARTS / 2 - 2);
    for (const n of recorded) expect(confirmed()).toContain(n);
    const status = await run(['status', ...state]);
    expect(status.stdout).toMatch(new RegExp(`dump\\.bin: ${recorded.length}/${BIG_PARTS} parts`));

    proxy.reset();
    const rerun = await run(['copy', '--to', 's3://big-dst', ...state, ...flags], { DEST_ENDPOINT: proxy.endpoint });
    expectExit(rerun, 0);
    expect(proxy.log().filter((e) => e.op === 'CreateMultipartUpload')).toHaveLength(0); // the kept upload was resumed
    const sent = proxy.log().filter((e) => e.op === 'UploadPart').map((e) => Number(new URLSearchParams(e.query).get('partNumber')));
    expect(sent.sort((a, b) => a - b)).toEqual(Array.from({ length: BIG_PARTS }, (_, i) => i + 1).filter((n) => !recorded.includes(n)));
    expect(await sha256Of(destClient, 'big-dst', 'dump.bin')).toBe(sha256(body));
    expect(await objectsOf(database, 'big')).toEqual([{ key: 'dump.bin', status: 'done', evidence: expect.any(String) }]);
    // The upload's record went with the done mark; abort-uploads finds nothing left to abort.
    expect((await pg().query('SELECT * FROM s3migrate.uploads', [], database)).rows).toEqual([]);
    const abort = await run(['abort-uploads', ...state]);
    expectExit(abort, 0);
    expect(abort.stdout).toMatch(/^Aborted 0 recorded multipart uploads/);
  });

  it('bad input: one clear line, the documented exit code, nothing changed, no secret shown', async () => {
    const database = await pg().createDatabase();
    const url = pg().urlOf(database);
    const state = ['--state', url, '--migration', 'photos'];
    expectExit(await run(['catalog', '--from', 's3://photos', ...state, ...ONE_LISTER, '--quiet']), 0);
    const before = await snapshot(database);
    const port = await closedPort();
    const wrongPassword = 'wrong-Pa55word';

    const cases: Array<{ what: string; args: string[]; extra?: Record<string, string | undefined>; code: number; message: RegExp }> = [];
    for (const command of [
      ['catalog', '--from', 's3://photos'],
      ['copy', '--to', 's3://photos-dst'],
      ['status'],
      ['verify'],
    ]) {
      cases.push(
        {
          what: `${command[0]}: database unreachable`,
          args: [...command, '--state', `postgres://s3migrate@127.0.0.1:${port}/${database}`, '--migration', 'photos'],
          code: 1,
          message: new RegExp(`^s3migrate: Cannot connect to the PostgreSQL state at 127\\.0\\.0\\.1:${port} \\(connection refused\\)`),
        },
        {
          what: `${command[0]}: wrong password`,
          args: [...command, ...state],
          extra: { PGPASSWORD: wrongPassword },
          code: 1,
          message: /^s3migrate: PostgreSQL at 127\.0\.0\.1:\d+ refused the password in PGPASSWORD for user "s3migrate" \(28P01 invalid_password\)/,
        },
        {
          what: `${command[0]}: password in the URL`,
          args: [...command, '--state', url.replace('s3migrate@', `s3migrate:${wrongPassword}@`), '--migration', 'photos'],
          code: 2,
          message: /^s3migrate: --state: the URL carries a password; it was not used\. .*PGPASSWORD, or in ~\/\.pgpass/,
        },
      );
    }
    cases.push(
      {
        what: 'catalog: another source under the same migration name',
        args: ['catalog', '--from', 's3://videos', ...state],
        code: 2,
        message: /^s3migrate: postgres:\/\/\S+ \(migration "photos"\) holds the catalog of s3:\/\/photos\/ at .*, not of s3:\/\/videos\/ at /,
      },
      {
        what: 'copy: a migration that does not exist',
        args: ['copy', '--to', 's3://photos-dst', '--state', url, '--migration', 'nope'],
        code: 1,
        message: /^s3migrate: No migration "nope" in the PostgreSQL state postgres:\S+ \(it holds: photos\)\. Run `s3migrate catalog/,
      },
      {
        what: 'catalog: a source bucket that does not exist, into a new migration',
        args: ['catalog', '--from', 's3://no-such-bucket', '--state', url, '--migration', 'new', '--quiet'],
        code: 1,
        message: /no-such-bucket/,
      },
      {
        what: 'status: a migration name that is not a plain word',
        args: ['status', '--state', url, '--migration', 'two words'],
        code: 2,
        message: /^s3migrate: --migration must be 1 to 63 letters/,
      },
      {
        what: 'status: --migration with a state file',
        args: ['status', '--state', path.join(work.dir, 'x.db'), '--migration', 'photos'],
        code: 2,
        message: /^s3migrate: --migration photos names a migration inside a PostgreSQL state/,
      },
    );

    for (const { what, args, extra, code, message } of cases) {
      const result = await run(args, extra);
      expect(result.code, `${what}\n${result.stderr}`).toBe(code);
      expect(result.stdout, what).toBe('');
      expect(result.stderr.trimEnd().split('\n'), `${what}\n${result.stderr}`).toHaveLength(1);
      expect(result.stderr, what).toMatch(message);
      expect(result.stderr, what).not.toContain(wrongPassword);
      expect(result.stderr, what).not.toContain(pg().password);
      expect(await snapshot(database), what).toBe(before);
    }
  });
});
