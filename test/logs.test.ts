// Machine-readable logs (--log-format json, --log-file) on real S3 endpoints (two s3rver instances, a
// proxy in front of each that injects failures or holds requests): one JSON object per line with the
// documented fields, every object in exactly one terminal event, run-end totals equal to the state
// file, no secret anywhere; JSON on stderr alone without --log-file; text stays the default; a bad
// --log-format or an unopenable --log-file is invalid usage that touches nothing.
import fs from 'node:fs';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { s3rverClient, startS3rver, type S3rverHandle } from '../scripts/servers/s3rver.js';
import { runCli, s3rverEnv, startCli } from './support/cli.js';
import {
  bytes,
  cloneState,
  keyOfPath,
  MiB,
  readRows,
  rowsByKey,
  seed,
  sha256,
  sha256Of,
  tempDir,
  teardown,
  waitFor,
  type SeedObject,
} from './support/copy-fixtures.js';
import { startRequestProxy, type ProxyDecision, type RequestInfo, type RequestProxy } from './support/request-proxy.js';

// Distinctive secrets: none of them may appear in a log line, stderr or stdout.
const SECRETS = {
  SOURCE_AWS_SECRET_ACCESS_KEY: 'src-secret-Qx7Lw3vPz9',
  DEST_AWS_SECRET_ACCESS_KEY: 'dst-secret-Hm4Rt8kNc2',
  SOURCE_AWS_SESSION_TOKEN: 'src-token-Bv5Jd1sYe6',
  DEST_AWS_SESSION_TOKEN: 'dst-token-Wn2Gf7uKa4',
  AWS_SECRET_ACCESS_KEY: 'fallback-secret-Zp3Mq8xTr1',
  PGPASSWORD: 'pg-secret-Lc9Vh2oDs5',
};

let source: S3rverHandle;
let dest: S3rverHandle;
let sourceClient: S3Client;
let destClient: S3Client;
let sourceProxy: RequestProxy;
let destProxy: RequestProxy;
let work: Awaited<ReturnType<typeof tempDir>>;
/** Per-test hooks the proxies consult (cleared before each test). */
let onSourceRequest: ((info: RequestInfo) => ProxyDecision | Promise<ProxyDecision>) | undefined;
let onDestRequest: ((info: RequestInfo) => ProxyDecision | Promise<ProxyDecision>) | undefined;

beforeAll(async () => {
  [source, dest] = await Promise.all([
    startS3rver({ buckets: ['main', 'plain', 'stop'] }),
    startS3rver({ buckets: ['main-dst', 'plain-dst', 'plain-dst2', 'plain-dst3', 'stop-dst', 'usage-dst'] }),
  ]);
  sourceClient = s3rverClient(source.endpoint);
  destClient = s3rverClient(dest.endpoint);
  sourceProxy = await startRequestProxy(source.endpoint, { onRequest: (info) => onSourceRequest?.(info) });
  destProxy = await startRequestProxy(dest.endpoint, { onRequest: (info) => onDestRequest?.(info) });
  work = await tempDir('logs');
  const plain: SeedObject[] = Array.from({ length: 6 }, (_, i) => ({ key: `p/${i}.bin`, body: bytes(500 + i) }));
  await seed(sourceClient, 'plain', plain);
});

beforeEach(() => {
  onSourceRequest = undefined;
  onDestRequest = undefined;
  sourceProxy.reset();
  destProxy.reset();
});

afterAll(() => teardown({ proxies: [sourceProxy, destProxy], clients: [sourceClient, destClient], servers: [source, dest], work }));

const env = (extra: Record<string, string> = {}): Record<string, string> => ({
  ...s3rverEnv(sourceProxy.endpoint, destProxy.endpoint),
  ...SECRETS,
  ...extra,
});

const hostOf = (endpoint: string): string => new URL(endpoint).host;

type Line = Record<string, unknown> & { ts: string; event: string; run: string; command: string };

/** Every line of an NDJSON text, parsed; fails on any line that is not one JSON object. */
function parseLines(text: string): Line[] {
  expect(text.endsWith('\n'), 'the log ends with a newline').toBe(true);
  return text
    .slice(0, -1)
    .split('\n')
    .map((line, index) => {
      let parsed: unknown;
      expect(() => (parsed = JSON.parse(line)), `line ${index + 1} is JSON: ${line}`).not.toThrow();
      expect(typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed), `line ${index + 1} is an object`).toBe(true);
      return parsed as Line;
    });
}

// The documented fields of each event (docs/logs.md), after ts, event, run and command; types checked below.
type FieldType = 'string' | 'number' | 'boolean' | 'object' | 'string?' | 'number?' | 'boolean?' | 'object?';
const COMMON: Record<string, FieldType> = { ts: 'string', event: 'string', run: 'string', command: 'string' };
const SCHEMA: Record<string, Record<string, Record<string, FieldType>>> = {
  copy: {
    'run-start': {
      version: 'string',
      pid: 'number',
      arguments: 'object',
      source: 'string?',
      destination: 'string?',
      sourceEndpoint: 'string?',
      destEndpoint: 'string?',
      catalogComplete: 'boolean?',
      stateRunId: 'number?',
      objectsTotal: 'number?',
      bytesTotal: 'number?',
      objectsAlreadyDone: 'number?',
      bytesAlreadyDone: 'number?',
    },
    recovered: { done: 'number', pending: 'number' },
    'object-done': { key: 'string', size: 'number', destKey: 'string', evidence: 'string', attempts: 'number', durationMs: 'number' },
    'object-failed': {
      key: 'string',
      size: 'number',
      attempts: 'number',
      durationMs: 'number',
      error: 'string',
      errorCode: 'string',
      side: 'string',
    },
    'object-retry': { key: 'string', attempt: 'number', error: 'string', errorCode: 'string', side: 'string', delayMs: 'number' },
    'object-changed': { key: 'string', size: 'number', reason: 'string' },
    'object-gone': { key: 'string', size: 'number' },
    'object-skipped': { key: 'string', size: 'number', reason: 'string' },
    'upload-restarted': { destKey: 'string', reason: 'string' },
    throttled: { concurrency: 'number' },
    stopping: { mode: 'string' },
    'run-end': {
      outcome: 'string',
      exitCode: 'number',
      elapsedMs: 'number',
      objectsCopied: 'number',
      bytesCopied: 'number',
      objectsFailed: 'number',
      objectsChanged: 'number',
      objectsGone: 'number',
      objectsTotal: 'number?',
      bytesTotal: 'number?',
      objectsDone: 'number?',
      bytesDone: 'number?',
      stateFailed: 'number?',
      stateChanged: 'number?',
      stateGone: 'number?',
      stateUnproven: 'number?',
      error: 'string?',
    },
  },
  catalog: {
    'run-start': {
      version: 'string',
      pid: 'number',
      arguments: 'object',
      source: 'string?',
      sourceEndpoint: 'string?',
      stateRunId: 'number?',
      resumed: 'boolean?',
      pass: 'number?',
      keysAlready: 'number?',
      catalogSource: 'string?',
      listConcurrency: 'number?',
      parts: 'number?',
      partsDone: 'number?',
      inventory: 'string?',
      inventoryCreatedAt: 'string?',
      nextFile: 'number?',
    },
    page: { keysListed: 'number', pages: 'number', elapsedMs: 'number' },
    stopping: { mode: 'string' },
    'run-end': {
      outcome: 'string',
      exitCode: 'number',
      elapsedMs: 'number',
      keysListed: 'number',
      totalKeys: 'number?',
      gone: 'number',
      error: 'string?',
    },
  },
  verify: {
    'run-start': {
      version: 'string',
      pid: 'number',
      arguments: 'object',
      source: 'string?',
      destination: 'string?',
      sourceEndpoint: 'string?',
      destEndpoint: 'string?',
      deep: 'boolean?',
    },
    'run-end': {
      outcome: 'string',
      exitCode: 'number',
      elapsedMs: 'number',
      passed: 'boolean?',
      listed: 'number?',
      results: 'object?',
      extraKeys: 'number?',
      error: 'string?',
    },
  },
};

/**
 * Checks one run's lines: each line has exactly its event's documented fields with their types, a
 * parseable UTC ts, this command and one run id; run-start first, run-end last, ts never going back.
 */
function checkRun(lines: Line[], command: 'catalog' | 'copy' | 'verify'): { start: Line; end: Line } {
  expect(lines.length).toBeGreaterThanOrEqual(2);
  const run = lines[0]!.run;
  expect(run).toMatch(/^\d{8}T\d{6}Z-\d+-[0-9a-f]{6}$/);
  let previous = '';
  for (const line of lines) {
    const fields = SCHEMA[command]![line.event];
    expect(fields, `${command} has an event "${line.event}"`).toBeDefined();
    const expected = { ...COMMON, ...fields };
    expect(Object.keys(line), line.event).toEqual(Object.keys(expected));
    for (const [name, type] of Object.entries(expected)) {
      const value = line[name];
      const base = type.replace('?', '');
      if (type.endsWith('?') && value === null) continue;
      expect(typeof value, `${line.event}.${name}`).toBe(base);
      expect(value, `${line.event}.${name}`).not.toBeNull();
      if (base === 'number') expect(Number.isFinite(value) && (value as number) >= 0, `${line.event}.${name} = ${value}`).toBe(true);
    }
    expect(line.ts).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(new Date(line.ts).toISOString()).toBe(line.ts);
    expect(line.ts >= previous, `ts in order: ${line.ts} after ${previous}`).toBe(true);
    previous = line.ts;
    expect(line.run).toBe(run);
    expect(line.command).toBe(command);
  }
  expect(lines[0]!.event).toBe('run-start');
  expect(lines.at(-1)!.event).toBe('run-end');
  expect(lines.filter((l) => l.event === 'run-start')).toHaveLength(1);
  expect(lines.filter((l) => l.event === 'run-end')).toHaveLength(1);
  return { start: lines[0]!, end: lines.at(-1)! };
}

/** The lines of an appended log, grouped by run id in order of appearance. */
function runsOf(lines: Line[]): Line[][] {
  const runs = new Map<string, Line[]>();
  for (const line of lines) runs.set(line.run, [...(runs.get(line.run) ?? []), line]);
  return [...runs.values()];
}

function expectNoSecrets(...texts: string[]): void {
  for (const text of texts) {
    for (const [name, secret] of Object.entries(SECRETS)) expect(text.includes(secret), `${name} leaked`).toBe(false);
  }
}

function lastRun(state: string): { id: number; outcome: string; objects_done: number; bytes_done: number; objects_failed: number; keys_listed: number } {
  const db = new Database(state, { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT * FROM runs ORDER BY id DESC LIMIT 1').get() as ReturnType<typeof lastRun>;
  } finally {
    db.close();
  }
}

const byEvent = (lines: Line[], event: string): Line[] => lines.filter((line) => line.event === event);

describe('copy --log-format json --log-file', () => {
  it('logs failures, retries, throttling, changed and gone objects with every field; totals match the state; no secret', async () => {
    const objects: SeedObject[] = [
      { key: 'a.txt', body: bytes(1000) },
      { key: 'dir/with space+plus.bin', body: bytes(2000) },
      { key: 'big.bin', body: bytes(6 * MiB) },
      { key: 'retry.bin', body: bytes(3000) },
      { key: 'throttle.bin', body: bytes(3500) },
      { key: 'bad.bin', body: bytes(4000) },
      { key: 'changed.bin', body: bytes(5000) },
      { key: 'gone.bin', body: bytes(6000) },
    ];
    await seed(sourceClient, 'main', objects);
    const state = work.file('main.db');
    const catalogLog = work.file('catalog.ndjson');
    const catalog = await runCli(['catalog', '--from', 's3://main', '--state', state, '--list-concurrency', '8', '--log-format', 'json', '--log-file', catalogLog], {
      env: env(),
    });
    expect(catalog.code, catalog.stderr).toBe(0);

    // The catalog's log.
    const catalogLines = parseLines(fs.readFileSync(catalogLog, 'utf8'));
    const cat = checkRun(catalogLines, 'catalog');
    expect(cat.start).toMatchObject({
      source: 's3://main/',
      sourceEndpoint: hostOf(sourceProxy.endpoint),
      stateRunId: lastRun(state).id,
      resumed: false,
      pass: 1,
      keysAlready: 0,
      catalogSource: 'listing',
      listConcurrency: 8,
      partsDone: 0,
      inventory: null,
      nextFile: null,
    });
    expect(cat.start.arguments).toMatchObject({ from: 's3://main', state, logFormat: 'json', logFile: catalogLog, listConcurrency: '8' });
    // The first page is always logged; with the key space in parts it holds one part's keys.
    expect(byEvent(catalogLines, 'page')[0]).toMatchObject({ keysListed: expect.any(Number), pages: 1 });
    expect(cat.end).toMatchObject({ outcome: 'completed', exitCode: 0, keysListed: objects.length, totalKeys: objects.length, gone: 0, error: null });
    expect(lastRun(state).keys_listed).toBe(objects.length);

    // After the catalog: one object overwritten (another size), one deleted.
    await sourceClient.send(new PutObjectCommand({ Bucket: 'main', Key: 'changed.bin', Body: bytes(5100) }));
    await sourceClient.send(new DeleteObjectCommand({ Bucket: 'main', Key: 'gone.bin' }));

    // Faults at the source: bad.bin fails every read; retry.bin's first three reads (one attempt: the SDK
    // tries three times) fail; throttle.bin's first three answer SlowDown.
    const gets = new Map<string, number>();
    onSourceRequest = ({ op, path }) => {
      if (op !== 'GetObject') return undefined;
      const key = keyOfPath(path, 'main');
      const seen = (gets.get(key) ?? 0) + 1;
      gets.set(key, seen);
      if (key === 'bad.bin' || (key === 'retry.bin' && seen <= 3)) {
        return { status: 500, code: 'InternalError', message: 'injected: we encountered an internal error' };
      }
      if (key === 'throttle.bin' && seen <= 3) return { status: 503, code: 'SlowDown', message: 'injected: please reduce your request rate' };
      return undefined;
    };

    const log = work.file('copy.ndjson');
    const args = ['copy', '--to', 's3://main-dst', '--state', state, '--log-format', 'json', '--log-file', log];
    const result = await runCli(
      [...args, '--max-attempts', '3', '--concurrency', '4', '--multipart-threshold', '5MiB', '--part-size', '5MiB'],
      { env: env() },
    );
    expect(result.code, result.stderr).toBe(3);
    // The terminal keeps its plain output: a log file does not take it away.
    expect(result.stderr).toMatch(/^Finished: /m);
    expect(result.stderr).toMatch(/failed: bad\.bin/);

    const text = fs.readFileSync(log, 'utf8');
    if (process.env.S3MIGRATE_SHOW_LOG) process.stdout.write(text);
    expectNoSecrets(text, result.stderr, result.stdout, catalog.stderr, fs.readFileSync(catalogLog, 'utf8'));
    const lines = parseLines(text);
    const { start, end } = checkRun(lines, 'copy');
    const rows = rowsByKey(state);
    const run = lastRun(state);

    const catalogSizes = new Map(objects.map((o) => [o.key, o.body.length]));
    const totalBytes = objects.reduce((sum, o) => sum + o.body.length, 0);
    expect(start).toMatchObject({
      source: 's3://main/',
      destination: 's3://main-dst/',
      sourceEndpoint: hostOf(sourceProxy.endpoint),
      destEndpoint: hostOf(destProxy.endpoint),
      catalogComplete: true,
      stateRunId: run.id,
      objectsTotal: objects.length,
      bytesTotal: totalBytes,
      objectsAlreadyDone: 0,
      bytesAlreadyDone: 0,
      pid: expect.any(Number),
    });
    expect(start.arguments).toMatchObject({
      to: 's3://main-dst',
      state,
      logFormat: 'json',
      logFile: log,
      maxAttempts: '3',
      concurrency: '4',
    });

    // Every cataloged object in exactly one terminal event, which agrees with its row.
    const terminal = lines.filter((l) => ['object-done', 'object-failed', 'object-changed', 'object-gone'].includes(l.event));
    expect(terminal.map((l) => l.key).sort()).toEqual(objects.map((o) => o.key).sort());
    const statusOf: Record<string, string> = {
      'object-done': 'done',
      'object-failed': 'failed',
      'object-changed': 'changed',
      'object-gone': 'gone',
    };
    for (const line of terminal) {
      const row = rows.get(line.key as string)!;
      expect(row.status, line.key as string).toBe(statusOf[line.event]);
      expect(line.size, line.key as string).toBe(catalogSizes.get(line.key as string));
    }
    expect(Object.fromEntries(terminal.map((l) => [l.key, l.event]))).toEqual({
      'a.txt': 'object-done',
      'dir/with space+plus.bin': 'object-done',
      'big.bin': 'object-done',
      'retry.bin': 'object-done',
      'throttle.bin': 'object-done',
      'bad.bin': 'object-failed',
      'changed.bin': 'object-changed',
      'gone.bin': 'object-gone',
    });

    const retries = byEvent(lines, 'object-retry');
    const retriesOf = (key: string): Line[] => retries.filter((l) => l.key === key);
    for (const done of byEvent(lines, 'object-done')) {
      const row = rows.get(done.key as string)!;
      expect(done.destKey).toBe(row.dest_key);
      expect(done.evidence).toBe(row.evidence);
      expect(['md5', 'multipart-etag', 'part-etags', 'content-md5']).toContain(done.evidence);
      expect(Number.isInteger(done.durationMs)).toBe(true);
      // The attempts of this run: one, plus one per retry line; the state counts the same.
      expect(done.attempts, done.key as string).toBe(1 + retriesOf(done.key as string).length);
      expect(done.attempts, done.key as string).toBe(row.attempts);
    }
    expect(byEvent(lines, 'object-done').find((l) => l.key === 'retry.bin')!.attempts).toBeGreaterThanOrEqual(2);
    expect(byEvent(lines, 'object-done').find((l) => l.key === 'throttle.bin')!.attempts).toBeGreaterThanOrEqual(2);
    expect(byEvent(lines, 'object-done').find((l) => l.key === 'a.txt')!.attempts).toBe(1);

    const [failed] = byEvent(lines, 'object-failed');
    const badRow = rows.get('bad.bin')!;
    expect(failed).toMatchObject({ key: 'bad.bin', size: 4000, attempts: 3, errorCode: 'InternalError', side: 'source', error: badRow.error });
    expect(badRow.attempts).toBe(3);
    expect(failed!.error).toMatch(/^source: InternalError \(HTTP 500\)/);
    expect(retriesOf('bad.bin').map((l) => l.attempt)).toEqual([1, 2]);

    for (const retry of retries) {
      expect(retry.side).toBe('source');
      expect(Number.isInteger(retry.delayMs)).toBe(true); // full jitter: 0 is possible
      expect(retry.error).toMatch(new RegExp(`^source: ${retry.errorCode as string} \\(HTTP 50[03]\\)`));
    }
    expect(retriesOf('retry.bin')[0]).toMatchObject({ attempt: 1, errorCode: 'InternalError' });
    expect(retriesOf('throttle.bin')[0]).toMatchObject({ attempt: 1, errorCode: 'SlowDown' });
    // The first SlowDown halves the window.
    expect(byEvent(lines, 'throttled')[0]).toMatchObject({ concurrency: 2 });

    expect(byEvent(lines, 'object-changed')[0]).toMatchObject({ key: 'changed.bin', size: 5000, reason: rows.get('changed.bin')!.error });
    expect(byEvent(lines, 'object-changed')[0]!.reason).toMatch(/5100 bytes, the catalog says 5000/);
    expect(byEvent(lines, 'object-gone')[0]).toMatchObject({ key: 'gone.bin', size: 6000 });

    // run-end: this run's numbers equal the state's rows and its runs record.
    const doneRows = [...rows.values()].filter((r) => r.status === 'done');
    expect(end).toMatchObject({
      outcome: 'completed',
      exitCode: 3,
      objectsCopied: doneRows.length,
      bytesCopied: doneRows.reduce((sum, r) => sum + r.size, 0),
      objectsFailed: 1,
      objectsChanged: 1,
      objectsGone: 1,
      objectsTotal: objects.length,
      bytesTotal: totalBytes,
      objectsDone: doneRows.length,
      bytesDone: doneRows.reduce((sum, r) => sum + r.size, 0),
      stateFailed: 1,
      stateChanged: 1,
      stateGone: 1,
      stateUnproven: 0,
      error: null,
    });
    expect(run).toMatchObject({
      outcome: 'completed',
      objects_done: end.objectsCopied,
      bytes_done: end.bytesCopied,
      objects_failed: end.objectsFailed,
    });
    expect(Date.parse(end.ts) - Date.parse(start.ts)).toBeGreaterThanOrEqual((end.elapsedMs as number) - 1);
    for (const key of ['a.txt', 'big.bin', 'retry.bin', 'throttle.bin']) {
      expect(await sha256Of(destClient, 'main-dst', key), key).toBe(sha256(objects.find((o) => o.key === key)!.body));
    }

    // A second run appends to the same file under a new run id: only bad.bin is left to copy.
    onSourceRequest = undefined;
    const again = await runCli(args, { env: env() });
    expect(again.code, again.stderr).toBe(3); // changed.bin stays changed until a new catalog
    const runs = runsOf(parseLines(fs.readFileSync(log, 'utf8')));
    expect(runs).toHaveLength(2);
    expect(runs[1]![0]!.run).not.toBe(runs[0]![0]!.run);
    const second = checkRun(runs[1]!, 'copy');
    // The state's totals leave out the row now known gone.
    expect(second.start).toMatchObject({ objectsTotal: objects.length - 1, bytesTotal: totalBytes - 6000, objectsAlreadyDone: 5 });
    expect(byEvent(runs[1]!, 'object-done').map((l) => l.key)).toEqual(['bad.bin']);
    expect(second.end).toMatchObject({ outcome: 'completed', exitCode: 3, objectsCopied: 1, objectsFailed: 0, stateChanged: 1, stateGone: 1 });
  });

  it('a run stopped by Ctrl+C logs stopping and run-end interrupted (130); after a kill -9 the next run logs what recovery found', async () => {
    const objects: SeedObject[] = Array.from({ length: 4 }, (_, i) => ({ key: `s/${i}.bin`, body: bytes(2000 + i) }));
    await seed(sourceClient, 'stop', objects);
    const state = work.file('stop.db');
    expect((await runCli(['catalog', '--from', 's3://stop', '--state', state, '--quiet'], { env: env() })).code).toBe(0);
    const log = work.file('stop.ndjson');
    const args = ['copy', '--to', 's3://stop-dst', '--state', state, '--concurrency', '1', '--log-format', 'json', '--log-file', log];

    // Ctrl+C while the first PUT is held: it finishes, nothing else starts.
    let open = (_decision: ProxyDecision): void => undefined;
    let gate = new Promise<ProxyDecision>((resolve) => (open = resolve));
    onDestRequest = async ({ op }) => (op === 'PutObject' ? await gate : undefined);
    const first = startCli(args, { env: env() });
    await waitFor(() => destProxy.log().some((e) => e.op === 'PutObject'), 30_000, 'the first PutObject');
    first.child.kill('SIGINT');
    await waitFor(() => fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes('"stopping"'), 10_000, 'the stopping line');
    open(undefined);
    const stopped = await first.result;
    expect(stopped.code, stopped.stderr).toBe(130);
    let runs = runsOf(parseLines(fs.readFileSync(log, 'utf8')));
    const one = checkRun(runs[0]!, 'copy');
    expect(byEvent(runs[0]!, 'stopping')).toEqual([expect.objectContaining({ mode: 'drain' })]);
    expect(byEvent(runs[0]!, 'object-done').map((l) => l.key)).toEqual(['s/0.bin']);
    expect(one.end).toMatchObject({ outcome: 'interrupted', exitCode: 130, objectsCopied: 1, error: null });

    // kill -9 while the next PUT is held (then dropped, never stored): its row stays in flight.
    destProxy.reset();
    gate = new Promise<ProxyDecision>((resolve) => (open = resolve));
    const killed = startCli(args, { env: env() });
    await waitFor(() => destProxy.log().some((e) => e.op === 'PutObject'), 30_000, 'a PutObject');
    const exited = new Promise((resolve) => killed.child.once('exit', resolve));
    killed.child.kill('SIGKILL');
    await exited;
    open('reset');
    onDestRequest = undefined;
    expect(readRows(state).some((r) => r.status === 'in_flight')).toBe(true);

    const rerun = await runCli(args, { env: env() });
    expect(rerun.code, rerun.stderr).toBe(0);
    runs = runsOf(parseLines(fs.readFileSync(log, 'utf8')));
    // The killed run left run-start alone (its first line is written once it counted the state).
    expect(runs).toHaveLength(3);
    expect(runs[1]!.map((l) => l.event)).toEqual(['run-start']);
    const three = checkRun(runs[2]!, 'copy');
    // recovered comes right after run-start (whose ts is the run's start), in time order.
    expect(runs[2]![1]).toMatchObject({ event: 'recovered', done: 0, pending: expect.any(Number) });
    expect(runs[2]![1]!.ts >= runs[2]![0]!.ts).toBe(true);
    expect(runs[2]![1]!.pending as number).toBeGreaterThanOrEqual(1);
    expect(three.end).toMatchObject({ outcome: 'completed', exitCode: 0, objectsDone: 4, stateFailed: 0 });
    expect(readRows(state).every((r) => r.status === 'done')).toBe(true);
  });
});

describe('--log-format json without --log-file', () => {
  it('stderr carries JSON lines only (no progress, no notes), stdout nothing', async () => {
    const state = work.file('plain-json.db');
    const catalog = await runCli(['catalog', '--from', 's3://plain', '--state', state, '--log-format', 'json'], { env: env() });
    expect(catalog.code, catalog.stderr).toBe(0);
    checkRun(parseLines(catalog.stderr), 'catalog');
    expect(catalog.stdout).toBe('');

    const result = await runCli(['copy', '--to', 's3://plain-dst', '--state', state, '--log-format', 'json'], { env: env() });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('');
    const lines = parseLines(result.stderr);
    const { end } = checkRun(lines, 'copy');
    expect(byEvent(lines, 'object-done')).toHaveLength(6);
    expect(end).toMatchObject({ outcome: 'completed', exitCode: 0, objectsCopied: 6 });
    expectNoSecrets(result.stderr);

    const verify = await runCli(['verify', '--state', state, '--log-format', 'json'], { env: env() });
    expect(verify.code, verify.stderr).toBe(0);
    const verified = checkRun(parseLines(verify.stderr), 'verify');
    expect(verified.start).toMatchObject({ source: 's3://plain/', destination: 's3://plain-dst/', deep: false });
    expect(verified.end).toMatchObject({ outcome: 'completed', exitCode: 0, passed: true, listed: 6, extraKeys: 0, error: null });
    expect((verified.end.results as Record<string, number>).ok).toBe(6);
    expect(verify.stdout).toMatch(/Everything matches/); // the report itself still goes to stdout
  });

  it('a fatal error is reported in run-end alone: refused destination credentials, exit 1, no secret', async () => {
    const state = work.file('plain-creds.db');
    expect((await runCli(['catalog', '--from', 's3://plain', '--state', state, '--quiet'], { env: env() })).code).toBe(0);
    const before = readRows(state);
    const result = await runCli(['copy', '--to', 's3://plain-dst', '--state', state, '--log-format', 'json'], {
      env: env({ DEST_AWS_ACCESS_KEY_ID: 'WRONG' }),
    });
    expect(result.code, result.stderr).toBe(1);
    const { end } = checkRun(parseLines(result.stderr), 'copy');
    expect(end).toMatchObject({ outcome: 'failed', exitCode: 1, objectsCopied: 0 });
    expect(end.error).toMatch(/DEST_AWS_ACCESS_KEY_ID/);
    expectNoSecrets(result.stderr, result.stdout);
    expect(readRows(state).map((r) => r.status)).toEqual(before.map(() => 'pending'));
  });

  it('invalid usage found after the log is open (another destination than the state copied to): run-end with exit 2', async () => {
    const state = cloneState(work.file('plain-json.db'), work.file('plain-usage.db'));
    const result = await runCli(['copy', '--to', 's3://usage-dst', '--state', state, '--log-format', 'json'], { env: env() });
    expect(result.code, result.stderr).toBe(2);
    const { start, end } = checkRun(parseLines(result.stderr), 'copy');
    expect(start).toMatchObject({ objectsTotal: null, stateRunId: null });
    expect(end).toMatchObject({ outcome: 'failed', exitCode: 2, objectsTotal: null, stateFailed: null });
    expect(end.error).toMatch(/has been copying to/);
  });
});

describe('text stays the default', () => {
  it('without log flags: plain progress lines on stderr, no JSON', async () => {
    const state = work.file('plain-text.db');
    expect((await runCli(['catalog', '--from', 's3://plain', '--state', state, '--quiet'], { env: env() })).code).toBe(0);
    const result = await runCli(['copy', '--to', 's3://plain-dst2', '--state', state], { env: env() });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/^Copying 6 objects/m);
    expect(result.stderr).toMatch(/^Finished: 6\/6 objects/m);
    for (const line of result.stderr.split('\n')) expect(line.startsWith('{'), line).toBe(false);
  });

  it('--log-file in text mode: timestamped plain lines with every object, the terminal keeps its output', async () => {
    const state = work.file('plain-textlog.db');
    expect((await runCli(['catalog', '--from', 's3://plain', '--state', state, '--quiet'], { env: env() })).code).toBe(0);
    const log = work.file('text.log');
    const result = await runCli(['copy', '--to', 's3://plain-dst3', '--state', state, '--log-file', log], { env: env() });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/^Finished: 6\/6 objects/m);
    const lines = fs.readFileSync(log, 'utf8').trimEnd().split('\n');
    for (const line of lines) expect(line).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z \S/);
    const text = lines.map((line) => line.slice(25));
    expect(text[0]).toMatch(/^Copying s3:\/\/plain\/ at 127\.0\.0\.1:\d+ to s3:\/\/plain-dst3\/ at 127\.0\.0\.1:\d+: 6 objects/);
    for (let i = 0; i < 6; i++) {
      expect(text.filter((t) => t.startsWith(`done: p/${i}.bin (`)), `p/${i}.bin`).toHaveLength(1);
    }
    expect(text.at(-1)).toMatch(/^Finished: 6\/6 objects.*\(exit 0\)$/);
    expectNoSecrets(fs.readFileSync(log, 'utf8'));
  });
});

describe('bad log flags are invalid usage (exit 2) and touch nothing', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['--log-format xml', ['--log-format', 'xml'], /--log-format/],
    ['--log-file in a missing directory', ['--log-file', '/nonexistent/dir/x.log'], /--log-file \/nonexistent\/dir\/x\.log cannot be opened/],
    ['--log-file that is a directory', ['--log-file', '/tmp'], /--log-file \/tmp cannot be opened/],
  ];

  it.each(cases)('copy %s', async (_name, flags, message) => {
    const state = cloneState(work.file('plain-json.db'), work.file(`bad-${Math.random().toString(36).slice(2)}.db`));
    const before = fs.readFileSync(state);
    const rowsBefore = readRows(state);
    const result = await runCli(['copy', '--to', 's3://plain-dst', '--state', state, ...flags], { env: env() });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(sourceProxy.log()).toEqual([]);
    expect(destProxy.log()).toEqual([]);
    expect(fs.readFileSync(state).equals(before)).toBe(true);
    expect(readRows(state)).toEqual(rowsBefore);
    expect(fs.existsSync('/nonexistent/dir')).toBe(false);
  });

  it.each(cases)('catalog %s: no state file is created', async (_name, flags, message) => {
    const state = work.file(`bad-catalog-${Math.random().toString(36).slice(2)}.db`);
    const result = await runCli(['catalog', '--from', 's3://plain', '--state', state, ...flags], { env: env() });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(fs.existsSync(state)).toBe(false);
    expect(sourceProxy.log()).toEqual([]);
  });
});
