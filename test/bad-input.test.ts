// Bad input, in one table: each case with its exact exit code, the message fragment expected, and the
// state file's sha256 unchanged where it must be. Then: secrets never leave the process.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3rverClient, startS3rver, type S3rverHandle } from '../scripts/servers/s3rver.js';
import { runCli, s3rverEnv, startCli } from './support/cli.js';
import { bytes, readRows, seed, teardown, tempDir, waitFor } from './support/copy-fixtures.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';

let source: S3rverHandle;
let dest: S3rverHandle;
let sourceClient: S3Client;
let destProxy: FaultProxy;
let work: Awaited<ReturnType<typeof tempDir>>;
let template: string;

const env = (extra: Record<string, string | undefined> = {}): Record<string, string | undefined> => ({
  ...s3rverEnv(source.endpoint, destProxy.endpoint),
  ...extra,
});
const sha256File = (file: string): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
let counter = 0;

/** A copy of the catalogued state file (no -wal: the catalog closed it cleanly). */
function freshState(): string {
  const file = work.file(`state-${(counter += 1)}.db`);
  fs.copyFileSync(template, file);
  return file;
}

/** chattr +i: the only way to make a file unwritable for root (tests run as root). */
function immutable(file: string, on: boolean): boolean {
  try {
    execFileSync('chattr', [on ? '+i' : '-i', file], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  [source, dest] = await Promise.all([startS3rver({ buckets: ['src', 'other'] }), startS3rver({ buckets: ['dst'] })]);
  sourceClient = s3rverClient(source.endpoint);
  destProxy = await startFaultProxy(dest.endpoint, { seed: 3 });
  work = await tempDir('bad-input');
  await seed(sourceClient, 'src', Array.from({ length: 5 }, (_, i) => ({ key: `k${i}`, body: bytes(1000 + i) })));
  await seed(sourceClient, 'other', [{ key: 'x', body: bytes(10) }]);
  template = work.file('template.db');
  const catalog = await runCli(['catalog', '--from', 's3://src', '--state', template, '--quiet'], { env: env() });
  expect(catalog.code, catalog.stderr).toBe(0);
  expect(fs.existsSync(`${template}-wal`)).toBe(false);
});

afterAll(() => teardown({ proxies: [destProxy], clients: [sourceClient], servers: [source, dest], work }));

interface Case {
  name: string;
  /** Arguments; STATE is replaced by the case's state file. */
  args: string[];
  env?: () => Record<string, string | undefined>;
  /** Makes the case's state file (default: a copy of the catalogued one). */
  state?: () => string;
  code: number;
  message: RegExp;
  /** The state file's sha256 (and the absence of a -wal) must not change; when false, no row's status may. */
  untouched: boolean;
  /** A value that must not appear in the output (a secret the message is about). */
  hidden?: string;
}

/** Not SSE-C keys: not base64, and the base64 of 16 bytes. */
const NOT_BASE64_KEY = 'sse-c key: not base64!';
const SHORT_KEY = Buffer.from('0123456789abcdef').toString('base64');
const GOOD_KEY = Buffer.alloc(32, 7).toString('base64');

const COPY = ['copy', '--to', 's3://dst', '--state', 'STATE', '--quiet'];

const cases: Case[] = [
  { name: 'unknown flag', args: [...COPY, '--bogus'], code: 2, message: /unknown option '--bogus'/, untouched: true },
  { name: 'unknown --sort value', args: [...COPY, '--sort', 'random'], code: 2, message: /random/, untouched: true },
  { name: '--to that is not an s3:// URL', args: ['copy', '--to', 'https://dst/', '--state', 'STATE'], code: 2, message: /--to must be an s3:\/\/ URL/, untouched: true },
  { name: '--from with no scheme (catalog)', args: ['catalog', '--from', 'src', '--state', 'STATE'], code: 2, message: /--from must be an s3:\/\/ URL/, untouched: true },
  { name: 'empty bucket name', args: ['copy', '--to', 's3:///prefix', '--state', 'STATE'], code: 2, message: /empty bucket name/, untouched: true },
  {
    name: 'DEST_AWS_ACCESS_KEY_ID without its secret',
    args: COPY,
    env: () => env({ DEST_AWS_SECRET_ACCESS_KEY: undefined }),
    code: 2,
    message: /DEST_AWS_ACCESS_KEY_ID is set but DEST_AWS_SECRET_ACCESS_KEY is not/,
    untouched: true,
  },
  {
    name: 'SOURCE_AWS_SECRET_ACCESS_KEY without its key id (catalog)',
    args: ['catalog', '--from', 's3://src', '--state', 'STATE'],
    env: () => env({ SOURCE_AWS_ACCESS_KEY_ID: undefined }),
    code: 2,
    message: /SOURCE_AWS_SECRET_ACCESS_KEY is set but SOURCE_AWS_ACCESS_KEY_ID is not/,
    untouched: true,
  },
  { name: 'wrong destination credentials', args: COPY, env: () => env({ DEST_AWS_ACCESS_KEY_ID: 'WRONG' }), code: 1, message: /credentials.*DEST_AWS_ACCESS_KEY_ID|DEST_AWS_ACCESS_KEY_ID.*credentials/s, untouched: false },
  {
    name: 'wrong source credentials (catalog)',
    args: ['catalog', '--from', 's3://src', '--state', 'STATE'],
    env: () => env({ SOURCE_AWS_ACCESS_KEY_ID: 'WRONG' }),
    code: 1,
    message: /SOURCE_AWS_ACCESS_KEY_ID/,
    // s3rver answers a HEAD with a body-less 403 (could be write-only credentials): the run starts and
    // records itself in the runs table before the first refusal; the rows themselves stay as they were.
    untouched: false,
  },
  { name: 'missing destination bucket', args: ['copy', '--to', 's3://no-such-dst', '--state', 'STATE'], code: 1, message: /"no-such-dst" does not exist/, untouched: true },
  {
    name: 'missing source bucket (catalog, new state file)',
    args: ['catalog', '--from', 's3://no-such-src', '--state', 'STATE'],
    state: () => work.file(`new-${(counter += 1)}.db`),
    code: 1,
    message: /"no-such-src" does not exist/,
    untouched: true, // i.e. not created
  },
  {
    name: 'state file that is not SQLite',
    args: COPY,
    state: () => {
      const file = work.file(`text-${(counter += 1)}.db`);
      fs.writeFileSync(file, 'not a database\n'.repeat(100));
      return file;
    },
    code: 1,
    message: /not an s3migrate state file/,
    untouched: true,
  },
  {
    name: 'state file from a future schema version',
    args: COPY,
    state: () => {
      const file = freshState();
      const db = new Database(file);
      db.pragma('user_version = 99');
      db.pragma('journal_mode = DELETE');
      db.close();
      return file;
    },
    code: 1,
    message: /newer s3migrate \(schema version 99/,
    untouched: true,
  },
  { name: 'state file of another source (catalog)', args: ['catalog', '--from', 's3://other', '--state', 'STATE'], code: 2, message: /holds the catalog of s3:\/\/src/, untouched: true },
  { name: 'copy --from another source', args: [...COPY, '--from', 's3://other'], code: 2, message: /does not match the catalog/, untouched: true },
  { name: 'no state file', args: COPY, state: () => work.file('absent.db'), code: 1, message: /No state file at .*Run `s3migrate catalog/, untouched: true },
  {
    name: 'destination is the source bucket and prefix itself',
    args: ['copy', '--to', 's3://src', '--state', 'STATE'],
    env: () => env({ DEST_ENDPOINT: source.endpoint }),
    code: 2,
    message: /overlaps the source/,
    untouched: true,
  },
  { name: '--part-size 1KiB', args: [...COPY, '--part-size', '1KiB'], code: 2, message: /--part-size must be between 5 MiB/, untouched: true },
  { name: '--concurrency 0', args: [...COPY, '--concurrency', '0'], code: 2, message: /--concurrency expects a whole number from 1/, untouched: true },
  { name: '--max-bandwidth 10 (bytes)', args: [...COPY, '--max-bandwidth', '10'], code: 2, message: /--max-bandwidth must be at least 1KiB/, untouched: true },
  { name: '--max-bandwidth fast', args: [...COPY, '--max-bandwidth', 'fast'], code: 2, message: /--max-bandwidth expects a size/, untouched: true },
  { name: '--max-requests-per-second 0', args: [...COPY, '--max-requests-per-second', '0'], code: 2, message: /--max-requests-per-second expects a whole number/, untouched: true },
  { name: 'SOURCE_ENDPOINT that is not a URL', args: COPY, env: () => env({ SOURCE_ENDPOINT: 'localhost-9000' }), code: 2, message: /SOURCE_ENDPOINT must be a URL/, untouched: true },
  {
    name: 'DEST_SSE_C_KEY that is not base64',
    args: COPY,
    env: () => env({ DEST_SSE_C_KEY: NOT_BASE64_KEY }),
    code: 2,
    message: /DEST_SSE_C_KEY must be a base64-encoded 32-byte key .*not base64/,
    untouched: true,
    hidden: NOT_BASE64_KEY,
  },
  {
    name: 'SOURCE_SSE_C_KEY of 16 bytes',
    args: COPY,
    env: () => env({ SOURCE_SSE_C_KEY: SHORT_KEY }),
    code: 2,
    message: /SOURCE_SSE_C_KEY must be a base64-encoded 32-byte key .*decodes to 16 bytes/,
    untouched: true,
    hidden: SHORT_KEY,
  },
  {
    name: 'DEST_SSE_C_KEY with --dest-sse',
    args: [...COPY, '--dest-sse', 'AES256'],
    env: () => env({ DEST_SSE_C_KEY: GOOD_KEY }),
    code: 2,
    message: /DEST_SSE_C_KEY and --dest-sse are both set/,
    untouched: true,
    hidden: GOOD_KEY,
  },
  { name: '--dest-sse des', args: [...COPY, '--dest-sse', 'des'], code: 2, message: /argument 'des' is invalid/, untouched: true },
  { name: '--dest-sse-kms-key-id without aws:kms', args: [...COPY, '--dest-sse-kms-key-id', 'alias/x'], code: 2, message: /--dest-sse-kms-key-id needs --dest-sse aws:kms/, untouched: true },
  { name: '--tags sometimes', args: [...COPY, '--tags', 'sometimes'], code: 2, message: /argument 'sometimes' is invalid/, untouched: true },
  { name: '--storage-class with a space', args: [...COPY, '--storage-class', 'COLD STORE'], code: 2, message: /--storage-class expects a class name/, untouched: true },
  {
    // s3rver answers InvalidStorageClass: the run stops at the first PUT; it recorded itself, no row changed.
    name: 'a storage class the destination refuses',
    args: [...COPY, '--storage-class', 'COLD'],
    code: 1,
    message: /The destination bucket "dst" refused the storage class "COLD" \(--storage-class; InvalidStorageClass \(HTTP 400\)/,
    untouched: false,
  },
];

describe('bad input: exit code, message, state file untouched', () => {
  it.each(cases)('$name -> exit $code', async (c) => {
    const state = c.state ? c.state() : freshState();
    const existed = fs.existsSync(state);
    const before = existed ? sha256File(state) : undefined;
    const rowsBefore = existed && !c.untouched ? readRows(state) : undefined;
    const args = c.args.map((a) => (a === 'STATE' ? state : a));
    const result = await runCli(args, { env: (c.env ?? env)() });
    expect(result.code, result.stderr).toBe(c.code);
    expect(result.stderr).toMatch(c.message);
    expect(result.stderr).not.toMatch(/unexpected error|\n\s+at /); // one readable line, no stack
    if (c.hidden !== undefined) expect(result.stdout + result.stderr).not.toContain(c.hidden);
    if (c.untouched) {
      expect(fs.existsSync(state)).toBe(existed);
      if (existed) expect(sha256File(state), 'state file changed').toBe(before);
      expect(fs.existsSync(`${state}-wal`), 'a -wal was left behind').toBe(false);
    } else if (rowsBefore) {
      const statuses = (rows: ReturnType<typeof readRows>) => rows.map((r) => [r.key, r.status, r.copied_at]);
      expect(statuses(readRows(state))).toEqual(statuses(rowsBefore));
    }
  });

  it('a read-only state file (chattr +i, since root ignores chmod 444) -> exit 1, unchanged', async (ctx) => {
    const state = freshState();
    const before = sha256File(state);
    if (!immutable(state, true)) return ctx.skip(); // a filesystem without immutable files: nothing to test
    try {
      const result = await runCli(COPY.map((a) => (a === 'STATE' ? state : a)), { env: env() });
      expect(result.code, result.stderr).toBe(1);
      expect(result.stderr).toMatch(/read-only/);
      expect(sha256File(state)).toBe(before);
    } finally {
      immutable(state, false);
    }
  });

  it('a state file in use by a running copy -> catalog and verify exit 1 "in use" (copy workers hold it); the copy finishes', async () => {
    const state = freshState();
    destProxy.reset();
    destProxy.setRule('PutObject', { latencyMs: 1500 });
    try {
      const first = startCli(['copy', '--to', 's3://dst', '--state', state, '--concurrency', '1', '--quiet'], { env: env() });
      await waitFor(() => destProxy.log().some((e) => e.op === 'PutObject'), 30_000, 'the first PutObject');
      for (const args of [
        ['catalog', '--from', 's3://src', '--state', state, '--quiet'],
        ['verify', '--state', state],
      ]) {
        const other = await runCli(args, { env: env() });
        expect(other.code, `${args[0]}: ${other.stderr}`).toBe(1);
        expect(other.stderr).toMatch(/in use by 1 running copy worker/);
      }
      expect(first.child.exitCode).toBeNull();
      destProxy.clearRules();
      const firstResult = await first.result;
      expect(firstResult.code, firstResult.stderr).toBe(0);
    } finally {
      destProxy.clearRules();
    }
    expect(readRows(state).every((r) => r.status === 'done')).toBe(true);
  });

  it('the table covers at least 15 cases', () => {
    expect(cases.length + 2).toBeGreaterThanOrEqual(15);
  });
});

describe('secrets never leave', () => {
  const SECRETS = {
    SOURCE_AWS_SECRET_ACCESS_KEY: 'srcSecret-Zq81vK2wLx',
    SOURCE_AWS_SESSION_TOKEN: 'srcToken-Hn52pQ7yTb',
    DEST_AWS_SECRET_ACCESS_KEY: 'dstSecret-Ru39mB6cJd',
    DEST_AWS_SESSION_TOKEN: 'dstToken-Wf74sG1kNe',
    SOURCE_SSE_C_KEY: Buffer.from('srcSseC-Kq93tW5mLp-32-bytes-key!').toString('base64'),
    DEST_SSE_C_KEY: Buffer.from('dstSseC-Yv28nE4hRs-32-bytes-key!').toString('base64'),
  };
  // The SSE-C keys' bytes too (as hex and raw), in case anything decoded them.
  const KEY_FORMS: Record<string, string | Buffer> = Object.fromEntries(
    (['SOURCE_SSE_C_KEY', 'DEST_SSE_C_KEY'] as const).flatMap((name): Array<[string, string | Buffer]> => {
      const raw = Buffer.from(SECRETS[name], 'base64');
      return [
        [`${name} (raw)`, raw],
        [`${name} (hex)`, raw.toString('hex')],
      ];
    }),
  );

  it('not in stdout, stderr, any file of the working directory, the state file or its -wal: catalog, copy, status, verify, an error', async () => {
    const dir = work.file('secrets');
    fs.mkdirSync(dir);
    const state = path.join(dir, 'state.db');
    const secretEnv = env(SECRETS);
    const outputs: string[] = [];
    const run = async (args: string[], code: number, extra: Record<string, string> = {}): Promise<void> => {
      const result = await runCli(args, { env: { ...secretEnv, ...extra }, cwd: dir });
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(code);
      outputs.push(result.stdout, result.stderr);
    };
    await run(['catalog', '--from', 's3://src', '--state', state], 0);
    // A copy killed mid-run leaves its -wal behind: check it too.
    destProxy.reset();
    destProxy.setRule('PutObject', { latencyMs: 2000 });
    const killed = startCli(['copy', '--to', 's3://dst', '--state', state, '--concurrency', '1'], { env: secretEnv, cwd: dir });
    try {
      await waitFor(() => fs.existsSync(`${state}-wal`) && destProxy.log().some((e) => e.op === 'PutObject'), 30_000, 'a copy under way');
      killed.child.kill('SIGKILL');
      await killed.result;
    } finally {
      destProxy.clearRules();
    }
    const walBytes = fs.readFileSync(`${state}-wal`);
    expect(walBytes.length).toBeGreaterThan(0);
    await run(['copy', '--to', 's3://dst', '--state', state], 0);
    await run(['status', '--state', state], 0);
    await run(['status', '--state', state, '--json'], 0);
    await run(['verify', '--state', state, '--json'], 0);
    await run(['verify', '--state', state, '--deep'], 0);
    await run(['copy', '--to', 's3://dst', '--state', state, '--concurrency', '0'], 2);
    await run(['catalog', '--from', 's3://no-such-bucket', '--state', path.join(dir, 'other.db')], 1);

    const files = fs.readdirSync(dir).map((name) => path.join(dir, name));
    expect(files).toContain(state);
    const blobs: Array<[string, Buffer]> = [
      ...outputs.map((text, i): [string, Buffer] => [`output ${i}`, Buffer.from(text)]),
      ['-wal of the killed copy', walBytes],
      ...files.map((file): [string, Buffer] => [file, fs.readFileSync(file)]),
    ];
    for (const [where, blob] of blobs) {
      for (const [name, secret] of Object.entries({ ...SECRETS, ...KEY_FORMS })) {
        expect(blob.includes(secret), `${name} found in ${where}`).toBe(false);
      }
    }
    // The state file was really written by these runs.
    expect(readRows(state).every((r) => r.status === 'done')).toBe(true);
  });
});
