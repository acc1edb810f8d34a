// Integrity end to end on real S3 endpoints (two s3rver instances, a counting proxy in front of each):
// verify after a clean copy, verify finding damage that copy then repairs, verify --deep where ETags
// cannot be compared, the destination checksum modes, and source reads cut short.
import { createHash } from 'node:crypto';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3rverClient, startS3rver, type S3rverHandle } from '../scripts/servers/s3rver.js';
import { runCli, s3rverEnv } from './support/cli.js';
import {
  bytes,
  keyOfPath,
  listKeys,
  MiB,
  readRows,
  rowsByKey,
  seed,
  sha256,
  sha256Of,
  tempDir,
  writtenKeys,
  type SeedObject,
  type StateRow,
  cloneState,
  teardown,
} from './support/copy-fixtures.js';
import { startRequestProxy, type RequestProxy, type ResponseCut } from './support/request-proxy.js';

const SMALL_CUT = 'cut/small.bin';
const STREAM_CUT = 'cut/streamed.bin';
const BIG = 'big/multi.bin';
const CORPUS: SeedObject[] = [
  { key: 'a.txt', body: bytes(1000) },
  { key: 'docs/b.txt', body: bytes(3000) },
  { key: 'docs/c.bin', body: bytes(20_000) },
  { key: 'e f.bin', body: bytes(500) },
  { key: 'zero.bin', body: Buffer.alloc(0) },
  { key: SMALL_CUT, body: bytes(300_000) }, // read whole before its PUT
  { key: STREAM_CUT, body: bytes(3 * MiB) }, // streamed into its PUT (above 1 MiB, below the threshold)
  { key: BIG, body: bytes(6 * MiB) }, // two parts with --part-size 5MiB
];
const BODY = new Map(CORPUS.map((o) => [o.key, o.body]));
const KEYS = CORPUS.map((o) => o.key).sort();
const COPY_FLAGS = ['--part-size', '5MiB', '--multipart-threshold', '5MiB', '--concurrency', '4', '--part-concurrency', '2', '--quiet'];

let source: S3rverHandle;
let dest: S3rverHandle;
let sourceClient: S3Client;
let destClient: S3Client;
let sourceProxy: RequestProxy;
let destProxy: RequestProxy;
let work: Awaited<ReturnType<typeof tempDir>>;
let template: string;

/** Source GetObject answers to cut short, per key: how, and how many more times (Infinity: always). */
const cuts = new Map<string, { cut: ResponseCut; times: number }>();

const env = (extra: Record<string, string> = {}): Record<string, string> => ({
  ...s3rverEnv(sourceProxy.endpoint, destProxy.endpoint),
  ...extra,
});

/** A fresh state file holding the catalog of the source. */
function freshState(name: string): string {
  return cloneState(template, work.file(name));
}

function sql(state: string, statement: string, ...params: unknown[]): void {
  const db = new Database(state, { fileMustExist: true });
  try {
    db.prepare(statement).run(...params);
  } finally {
    db.close();
  }
}

async function copy(state: string, bucket: string, extraEnv: Record<string, string> = {}, flags: string[] = []) {
  return runCli(['copy', '--to', `s3://${bucket}`, '--state', state, ...COPY_FLAGS, ...flags], { env: env(extraEnv) });
}

interface VerifyJson {
  passed: boolean;
  listed: number;
  results: Record<string, number>;
  problems: Array<{ key: string; size: number; reason: string }>;
  extraKeys: { count: number; sample: string[] };
}

async function verify(state: string, ...flags: string[]): Promise<{ code: number | null; report: VerifyJson; stderr: string }> {
  const result = await runCli(['verify', '--state', state, '--json', ...flags], { env: env() });
  let report: VerifyJson;
  try {
    report = JSON.parse(result.stdout) as VerifyJson;
  } catch {
    throw new Error(`verify printed no JSON (exit ${result.code}): ${result.stdout}\n${result.stderr}`);
  }
  return { code: result.code, report, stderr: result.stderr };
}

/** Sha256 at the destination of every key, by key (undefined when absent). */
async function destHashes(bucket: string, keys: readonly string[] = KEYS): Promise<Map<string, string | undefined>> {
  const out = new Map<string, string | undefined>();
  for (const key of keys) out.set(key, await sha256Of(destClient, bucket, key));
  return out;
}

function getsOf(key: string): number {
  return sourceProxy.log().filter((e) => e.op === 'GetObject' && keyOfPath(e.path, 'src') === key).length;
}

beforeAll(async () => {
  [source, dest] = await Promise.all([
    startS3rver({ buckets: ['src'] }),
    startS3rver({ buckets: ['dst', 'dst-cks', 'dst-cks-default', 'dst-cut', 'dst-cut-fail'] }),
  ]);
  sourceClient = s3rverClient(source.endpoint);
  destClient = s3rverClient(dest.endpoint);
  sourceProxy = await startRequestProxy(source.endpoint, {
    cutResponse: ({ op, path }, status) => {
      if (op !== 'GetObject' || (status !== 200 && status !== 206)) return undefined;
      const fault = cuts.get(keyOfPath(path, 'src'));
      if (!fault || fault.times <= 0) return undefined;
      fault.times -= 1;
      return fault.cut;
    },
  });
  destProxy = await startRequestProxy(dest.endpoint);
  work = await tempDir('verify');
  await seed(sourceClient, 'src', CORPUS, 4);
  template = work.file('template.db');
  const catalog = await runCli(['catalog', '--from', 's3://src', '--state', template, '--quiet'], { env: env() });
  expect(catalog.code, catalog.stderr).toBe(0);
  expect(readRows(template).map((r) => r.key)).toEqual(KEYS);
});

afterAll(() => teardown({ proxies: [sourceProxy, destProxy], clients: [sourceClient, destClient], servers: [source, dest], work }));

describe('verify', () => {
  // One state file and destination bucket, carried through the tests of this block in order.
  let state: string;

  it('after a clean copy: exit 0, status --json reports every object checked as copied and verified ok', async () => {
    state = freshState('verify.db');
    const copied = await copy(state, 'dst');
    expect(copied.code, copied.stderr).toBe(0);
    for (const [key, hash] of await destHashes('dst')) expect(hash, key).toBe(sha256(BODY.get(key)!));

    const { code, report, stderr } = await verify(state);
    expect(code, stderr).toBe(0);
    expect(report.passed).toBe(true);
    expect(report.listed).toBe(KEYS.length);
    expect(report.problems).toEqual([]);
    expect(report.extraKeys).toEqual({ count: 0, sample: [] });
    expect(report.results).toMatchObject({ ok: KEYS.length, missing: 0, 'etag-mismatch': 0, 'not-copied': 0 });

    const status = await runCli(['status', '--state', state, '--json'], { env: env() });
    expect(status.code, status.stderr).toBe(0);
    const summary = JSON.parse(status.stdout) as {
      evidenceCounts: Array<{ evidence: string; objects: number }>;
      verifyResults: Array<{ result: string; objects: number }>;
    };
    // s3rver answers a plain MD5 ETag for every write, even a multipart upload's (the MD5 of the whole
    // object, not S3's MD5-of-part-MD5s): every object is checked by MD5, none only by size.
    expect(summary.evidenceCounts).toEqual([{ evidence: 'md5', objects: KEYS.length }]);
    expect(summary.verifyResults).toEqual([{ result: 'ok', objects: KEYS.length }]);
    const rows = readRows(state);
    expect(rows.every((r) => r.status === 'done' && r.dest_etag !== null)).toBe(true);
    expect(rowsByKey(state).get(BIG)!.dest_etag).toBe(createHash('md5').update(BODY.get(BIG)!).digest('hex'));
  });

  it('finds an overwritten and a deleted object (an extra key is only informational); copy repairs exactly those', async () => {
    const overwritten = 'docs/b.txt';
    const deleted = 'e f.bin';
    const extra = 'not-in-catalog.txt';
    await destClient.send(new PutObjectCommand({ Bucket: 'dst', Key: overwritten, Body: bytes(BODY.get(overwritten)!.length) }));
    await destClient.send(new DeleteObjectCommand({ Bucket: 'dst', Key: deleted }));
    await destClient.send(new PutObjectCommand({ Bucket: 'dst', Key: extra, Body: Buffer.from('extra') }));

    const { code, report, stderr } = await verify(state);
    expect(code, stderr).toBe(3);
    expect(report.passed).toBe(false);
    expect(report.problems).toEqual([
      { key: overwritten, size: 3000, reason: 'etag-mismatch' },
      { key: deleted, size: 500, reason: 'missing' },
    ]);
    expect(report.extraKeys).toEqual({ count: 1, sample: [extra] });
    expect(report.results).toMatchObject({ ok: KEYS.length - 2, 'etag-mismatch': 1, missing: 1, 'not-copied': 0 });

    const rows = rowsByKey(state);
    for (const key of KEYS) {
      const row = rows.get(key)! as StateRow & { verify_result: string | null };
      const broken = key === overwritten || key === deleted;
      expect(row.status, key).toBe(broken ? 'pending' : 'done');
      expect(row.verify_result, key).toBe(key === overwritten ? 'etag-mismatch' : key === deleted ? 'missing' : 'ok');
    }
    expect(rows.has(extra)).toBe(false); // informational: no row is made for it

    destProxy.reset();
    const repaired = await copy(state, 'dst');
    expect(repaired.code, repaired.stderr).toBe(0);
    expect(writtenKeys(destProxy.log(), 'dst').sort()).toEqual([overwritten, deleted].sort());
    expect(readRows(state).every((r) => r.status === 'done')).toBe(true);
    for (const [key, hash] of await destHashes('dst')) expect(hash, key).toBe(sha256(BODY.get(key)!));

    const again = await verify(state);
    expect(again.code, again.stderr).toBe(0);
    expect(again.report.passed).toBe(true);
    expect(again.report.problems).toEqual([]);
    expect(again.report.extraKeys).toEqual({ count: 1, sample: [extra] });
    expect(await sha256Of(destClient, 'dst', extra)).toBe(sha256(Buffer.from('extra'))); // verify never deletes
  });

  it('a row proven by nothing but its size is never ok: plain verify reports it unproven, --deep settles it either way', async () => {
    const wrong = 'docs/c.bin';
    const right = 'docs/b.txt';
    // As in a migrated first-release state file: two rows that release marked done on size alone.
    sql(state, "UPDATE objects SET status = 'unproven', evidence = 'size-only', dest_etag = NULL WHERE key IN (?, ?)", wrong, right);
    // At `wrong` the destination holds other bytes of the same size; at `right` the source's bytes.
    await destClient.send(new PutObjectCommand({ Bucket: 'dst', Key: wrong, Body: bytes(BODY.get(wrong)!.length) }));

    const plain = await verify(state);
    expect(plain.code, plain.stderr).toBe(3);
    expect(plain.report.passed).toBe(false);
    expect(plain.report.problems).toEqual([
      { key: right, size: BODY.get(right)!.length, reason: 'unproven' },
      { key: wrong, size: BODY.get(wrong)!.length, reason: 'unproven' },
    ]);
    expect(plain.report.results).toMatchObject({ ok: KEYS.length - 2, unproven: 2 });
    expect(rowsByKey(state).get(wrong)!.status).toBe('unproven');
    const text = await runCli(['verify', '--state', state], { env: env() });
    expect(text.stdout).toMatch(/verify --deep/);

    destProxy.reset();
    sourceProxy.reset();
    const deep = await verify(state, '--deep');
    expect(deep.code, deep.stderr).toBe(3);
    expect(deep.report.problems).toEqual([{ key: wrong, size: 20_000, reason: 'content-mismatch' }]);
    expect(deep.report.results).toMatchObject({ ok: KEYS.length - 1, 'content-mismatch': 1, unproven: 0 });
    // Only the two unproven objects were re-read, on both sides.
    const reads = (proxy: RequestProxy, bucket: string): string[] =>
      proxy.log().filter((e) => e.op === 'GetObject').map((e) => keyOfPath(e.path, bucket)).sort();
    expect(reads(destProxy, 'dst')).toEqual([right, wrong]);
    expect(reads(sourceProxy, 'src')).toEqual([right, wrong]);
    const rows = rowsByKey(state);
    expect(rows.get(wrong)!.status).toBe('pending');
    expect((rows.get(wrong) as StateRow & { verify_result: string | null }).verify_result).toBe('content-mismatch');
    expect({ status: rows.get(right)!.status, evidence: rows.get(right)!.evidence }).toEqual({ status: 'done', evidence: 'deep-md5' });

    destProxy.reset();
    const repaired = await copy(state, 'dst');
    expect(repaired.code, repaired.stderr).toBe(0);
    expect(writtenKeys(destProxy.log(), 'dst')).toEqual([wrong]);
    expect(await sha256Of(destClient, 'dst', wrong)).toBe(sha256(BODY.get(wrong)!));
    const after = await verify(state);
    expect(after.code, after.stderr).toBe(0);
    expect(after.report.problems).toEqual([]);
  });
});

describe('destination checksum modes', () => {
  it('DEST_CHECKSUM_MODE=when-supported never corrupts silently: each object fails naming the setting or arrives byte-exact', async () => {
    const state = freshState('checksum.db');
    destProxy.reset();
    const result = await copy(state, 'dst-cks', { DEST_CHECKSUM_MODE: 'when-supported' });
    const rows = readRows(state);
    const done = rows.filter((r) => r.status === 'done');
    const failed = rows.filter((r) => r.status === 'failed');
    expect(done.length + failed.length, JSON.stringify(rows.map((r) => [r.key, r.status]))).toBe(KEYS.length);
    expect(result.code, result.stderr).toBe(failed.length === 0 ? 0 : 3);
    for (const row of done) {
      expect(await sha256Of(destClient, 'dst-cks', row.key), row.key).toBe(sha256(BODY.get(row.key)!));
    }
    for (const row of failed) expect(row.error, row.key).toMatch(/DEST_CHECKSUM_MODE|--dest-checksum/);
    console.log(
      `[checksum when-supported on s3rver] done byte-exact: ${done.map((r) => `${r.key} (${r.evidence})`).join(', ') || 'none'}; ` +
        `failed naming the setting: ${failed.map((r) => r.key).join(', ') || 'none'}`,
    );
    if (failed.length === 0) {
      const checked = await verify(state);
      expect(checked.code, checked.stderr).toBe(0);
    }
  });

  it('the default mode (when-required for a custom endpoint) copies everything, done and verified', async () => {
    const state = freshState('checksum-default.db');
    const result = await copy(state, 'dst-cks-default');
    expect(result.code, result.stderr).toBe(0);
    expect(readRows(state).every((r) => r.status === 'done' && r.evidence !== 'size-only')).toBe(true);
    for (const [key, hash] of await destHashes('dst-cks-default')) expect(hash, key).toBe(sha256(BODY.get(key)!));
    const checked = await verify(state);
    expect(checked.code, checked.stderr).toBe(0);
    expect(checked.report.results.ok).toBe(KEYS.length);
  });
});

describe('a source read cut short', () => {
  it('is retried and never marked done from the short read: cut twice / once, the objects end done and byte-exact', async () => {
    const state = freshState('cut.db');
    cuts.set(SMALL_CUT, { cut: { afterBytes: 100_000, how: 'destroy' }, times: 2 });
    cuts.set(STREAM_CUT, { cut: { afterBytes: 2 * MiB, how: 'destroy' }, times: 1 });
    // The first ranged read of the big object (its part 1) dropped after 4 MiB, held long enough for
    // the part's upload to be under way.
    cuts.set(BIG, { cut: { afterBytes: 4 * MiB, how: 'destroy', holdMs: 1500 }, times: 1 });
    // An empty body that ends cleanly without Content-Length: nothing at the HTTP level notices; the
    // source ETag's MD5 does.
    cuts.set('docs/c.bin', { cut: { afterBytes: 0, how: 'end' }, times: 1 });
    sourceProxy.reset();
    destProxy.reset();
    let result;
    try {
      result = await copy(state, 'dst-cut');
    } finally {
      const left = [...cuts.values()].map((c) => c.times);
      cuts.clear();
      expect(left).toEqual([0, 0, 0, 0]); // every planned cut was really served
    }
    expect(result.code, result.stderr).toBe(0);
    expect(getsOf(SMALL_CUT)).toBe(3);
    expect(getsOf(STREAM_CUT)).toBe(2);
    expect(getsOf(BIG)).toBe(3); // part 1 twice (the cut read, then its retry alone), part 2 once
    expect(getsOf('docs/c.bin')).toBe(2);

    const rows = rowsByKey(state);
    expect(rows.get(SMALL_CUT)!.attempts).toBe(3);
    expect(rows.get(BIG)!.attempts).toBe(1); // the part was retried, not the object
    expect(rows.get('docs/c.bin')!.attempts).toBe(2);
    for (const key of KEYS) {
      expect(rows.get(key)!.status, key).toBe('done');
      expect(rows.get(key)!.error, key).toBeNull();
    }
    for (const [key, hash] of await destHashes('dst-cut')) expect(hash, key).toBe(sha256(BODY.get(key)!));

    // The cut small reads wrote nothing (one PutObject each); the streamed one's cut PUT was cancelled
    // and sent again whole. The big object's one upload went on: only its cut part was sent again,
    // part 2 once, and nothing was aborted.
    const log = destProxy.log();
    expect(writtenKeys(log, 'dst-cut').sort()).toEqual([...KEYS, STREAM_CUT].sort());
    const completes = log.filter((e) => e.op === 'CompleteMultipartUpload').map((e) => keyOfPath(e.path, 'dst-cut'));
    expect(completes).toEqual([BIG]);
    const bigOps = log.filter((e) => keyOfPath(e.path, 'dst-cut') === BIG);
    expect(bigOps.filter((e) => e.op === 'CreateMultipartUpload')).toHaveLength(1);
    expect(bigOps.filter((e) => e.op === 'AbortMultipartUpload')).toHaveLength(0);
    const partsSent = (n: number): number =>
      bigOps.filter((e) => e.op === 'UploadPart' && new URLSearchParams(e.query).get('partNumber') === String(n)).length;
    expect(partsSent(2)).toBe(1);
    expect(partsSent(1)).toBeLessThanOrEqual(2);
    const checked = await verify(state);
    expect(checked.code, checked.stderr).toBe(0);
  });

  it('cut on every attempt (--max-attempts 2): failed with the source error, exit 3, nothing at the destination', async () => {
    const state = freshState('cut-fail.db');
    cuts.set(SMALL_CUT, { cut: { afterBytes: 100_000, how: 'destroy' }, times: Infinity });
    cuts.set(STREAM_CUT, { cut: { afterBytes: 2 * MiB, how: 'destroy' }, times: Infinity });
    cuts.set(BIG, { cut: { afterBytes: 4 * MiB, how: 'destroy', holdMs: 300 }, times: Infinity });
    sourceProxy.reset();
    destProxy.reset();
    let result;
    try {
      result = await copy(state, 'dst-cut-fail', {}, ['--max-attempts', '2']);
    } finally {
      cuts.clear();
    }
    expect(result.code, result.stderr).toBe(3);
    expect(getsOf(SMALL_CUT)).toBe(2);
    expect(getsOf(STREAM_CUT)).toBe(2);
    // The first attempt: part 1 read three times (retried alone, cut each time), part 2 once. The
    // second attempt resumes the same upload: part 2 is kept, only part 1 is read (three times) again.
    expect(getsOf(BIG)).toBe(3 + 1 + 3);

    const rows = rowsByKey(state);
    for (const key of [SMALL_CUT, STREAM_CUT, BIG]) {
      const row = rows.get(key)!;
      expect(row.status, key).toBe('failed');
      expect(row.attempts, key).toBe(2);
      expect(row.error, key).toMatch(/^source: /);
    }
    // Nothing was ever stored for the object read whole or the multipart one. The streamed PUT was
    // cancelled mid-body: a server that checks Content-Length stores nothing; s3rver may keep what it
    // received. Either way the row is not done, and what is there is not the source's object.
    for (const key of [SMALL_CUT, BIG]) expect(await sha256Of(destClient, 'dst-cut-fail', key), key).toBeUndefined();
    expect(await sha256Of(destClient, 'dst-cut-fail', STREAM_CUT)).not.toBe(sha256(BODY.get(STREAM_CUT)!));
    expect(rows.get(BIG)!.error).toMatch(/ECONNRESET|aborted|premature/i);
    const failed = [SMALL_CUT, STREAM_CUT, BIG];
    for (const key of KEYS.filter((k) => !failed.includes(k))) {
      expect(rows.get(key)!.status, key).toBe('done');
      expect(await sha256Of(destClient, 'dst-cut-fail', key), key).toBe(sha256(BODY.get(key)!));
    }
    const log = destProxy.log();
    const bigOps = log.filter((e) => keyOfPath(e.path, 'dst-cut-fail') === BIG).map((e) => e.op);
    // One upload for both attempts, kept (with its confirmed part 2) for the next run to resume.
    expect(bigOps.filter((op) => op === 'CreateMultipartUpload')).toHaveLength(1);
    expect(bigOps.filter((op) => op === 'AbortMultipartUpload')).toHaveLength(0);
    const status = await runCli(['status', '--state', state], { env: env() });
    expect(status.stdout).toMatch(/big\/multi\.bin: 1\/2 parts/);
    expect(log.filter((e) => e.op === 'PutObject' && keyOfPath(e.path, 'dst-cut-fail') === SMALL_CUT)).toEqual([]);
    expect(log.filter((e) => e.op === 'PutObject' && keyOfPath(e.path, 'dst-cut-fail') === BIG)).toEqual([]);
    expect(log.filter((e) => e.op === 'CompleteMultipartUpload')).toEqual([]);
    const listed = await listKeys(destClient, 'dst-cut-fail');
    expect(listed.filter((k) => k !== STREAM_CUT).sort()).toEqual(KEYS.filter((k) => !failed.includes(k)));

    // verify agrees: the three are not copied, exit 3.
    const checked = await verify(state);
    expect(checked.code, checked.stderr).toBe(3);
    expect(checked.report.problems.map((p) => [p.key, p.reason])).toEqual([
      [BIG, 'not-copied'],
      [SMALL_CUT, 'not-copied'],
      [STREAM_CUT, 'not-copied'],
    ]);
  });
});
