// `catalog --list-concurrency N` against a real s3rver, as users run it (the built CLI as a child process):
// 20,000 keys under 40 prefixes of very different sizes, keys directly under the root, and prefixes that
// hold only deeper prefixes (which s3rver's delimiter listing leaves out). The state must hold exactly the
// keys of a single listing; a catalog killed with SIGKILL resumes every part, and lists no finished part again.
import fs from 'node:fs';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3rverClient, startS3rver, type S3rverHandle } from '../scripts/servers/s3rver.js';
import { listPages } from '../src/s3/list-pages.js';
import { readMeta, tempDir, withRaw, writeS3rverObjects, type Seed } from './support/catalog-fixtures.js';
import { runCli, s3rverEnv, startCli, type CliResult } from './support/cli.js';
import { startRequestProxy, type LogEntry, type ProxyDecision, type RequestInfo, type RequestProxy } from './support/request-proxy.js';

let s3: S3rverHandle;
let client: S3Client;
let work: string;
let proxy: RequestProxy;
let onList: (info: RequestInfo) => ProxyDecision | Promise<ProxyDecision> = () => 'pass';

// 40 prefixes whose sizes grow by 15 % each (11 to about 2,600 keys); every fifth holds its keys only in
// deeper prefixes (d04/sub-0/..., never d04/x); 15 keys directly under the root.
const PREFIXES = 40;
const ROOT_KEYS = 15;
const TOTAL = 20_000;
function seeds(): Seed[] {
  const weights = Array.from({ length: PREFIXES }, (_, i) => 1.15 ** i);
  const sum = weights.reduce((a, b) => a + b, 0);
  const sizes = weights.map((w) => Math.max(1, Math.floor(((TOTAL - ROOT_KEYS) * w) / sum)));
  sizes[PREFIXES - 1]! += TOTAL - ROOT_KEYS - sizes.reduce((a, b) => a + b, 0);
  const out: Seed[] = [];
  sizes.forEach((size, p) => {
    const dir = `d${String(p).padStart(2, '0')}/`;
    for (let i = 0; i < size; i++) {
      const deep = p % 5 === 4 ? `sub-${Math.floor(i / 500)}/` : '';
      out.push({ key: `${dir}${deep}obj-${String(i).padStart(5, '0')}`, body: Buffer.from(`${p}:${i}`) });
    }
  });
  for (let i = 0; i < ROOT_KEYS; i++) out.push({ key: `root-${String(i).padStart(2, '0')}.txt`, body: Buffer.from(`root ${i}`) });
  return out;
}
const SEEDS = seeds();

beforeAll(async () => {
  s3 = await startS3rver({ buckets: ['parts'] });
  client = s3rverClient(s3.endpoint);
  work = await tempDir('catalog-parts');
  writeS3rverObjects(s3.dir, 'parts', SEEDS);
  proxy = await startRequestProxy(s3.endpoint, { onRequest: (info) => (info.op === 'ListObjectsV2' ? onList(info) : 'pass') });
}, 120_000);

afterAll(async () => {
  await proxy?.stop();
  client?.destroy();
  await s3?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

const env = (): Record<string, string> => s3rverEnv(proxy.endpoint, proxy.endpoint);

function expectExit(result: CliResult, code: number): void {
  expect({ code: result.code, signal: result.signal, stderr: result.stderr }).toMatchObject({ code, signal: null });
}

/** key -> "size etag last_modified status" of every row. */
function rows(state: string): Map<string, string> {
  return withRaw(state, (db) => {
    const all = db.prepare('SELECT key, size, etag, last_modified, status FROM objects_view').all() as Array<Record<string, string | number>>;
    return new Map(all.map((r) => [r.key as string, `${r.size} ${r.etag} ${r.last_modified} ${r.status}`]));
  });
}

function parts(state: string): Array<{ part: number; start_after: string; end_key: string | null; done: number }> {
  return withRaw(state, (db) => db.prepare('SELECT part, start_after, end_key, done FROM catalog_parts ORDER BY part').all() as never);
}

const query = (entry: LogEntry): URLSearchParams => new URLSearchParams(entry.query);
const listings = (): LogEntry[] => proxy.log().filter((entry) => entry.op === 'ListObjectsV2');

describe('catalog --list-concurrency 8 of 20,000 keys under 40 prefixes of very different sizes', () => {
  let single: Map<string, string>;

  it('a single listing is the reference: every seeded key', async () => {
    const keys: string[] = [];
    for await (const page of listPages(client, { bucket: 'parts', prefix: '', startAfter: '' })) keys.push(...page.objects.map((o) => o.key));
    expect(keys.sort()).toEqual(SEEDS.map((s) => s.key).sort());
    const state = path.join(work, 'single.db');
    proxy.reset();
    expectExit(await runCli(['catalog', '--from', 's3://parts', '--state', state, '--list-concurrency', '1'], { env: env() }), 0);
    expect(listings()).toHaveLength(TOTAL / 1_000);
    single = rows(state);
    expect(single.size).toBe(TOTAL);
  });

  it('records exactly the keys of the single listing, in parts listed side by side', async () => {
    expect(single, 'needs the single listing').toBeDefined();
    const state = path.join(work, 'parallel.db');
    proxy.reset();
    const result = await runCli(['catalog', '--from', 's3://parts', '--state', state, '--list-concurrency', '8'], { env: env() });
    expectExit(result, 0);
    expect(result.stderr).toMatch(/parts, 8 at once/);
    const parallel = rows(state);
    expect(parallel.size).toBe(TOTAL);
    expect([...parallel].filter(([key, row]) => single.get(key) !== row)).toEqual([]);
    // Planned from one delimiter listing of the root, which names 32 of the 40 prefixes (s3rver leaves out
    // the 8 that hold only deeper prefixes): their keys are in the neighbouring parts.
    const planned = parts(state);
    expect(planned.length).toBeGreaterThan(16);
    expect(planned.every((part) => part.done === 1)).toBe(true);
    const delimited = listings().filter((entry) => query(entry).has('delimiter'));
    expect(delimited.length).toBeGreaterThanOrEqual(1);
    // Every listing asks for URL-encoded keys (s3rver ignores it and answers them as they are).
    expect(listings().every((entry) => query(entry).get('encoding-type') === 'url')).toBe(true);
    expect(readMeta(state)).toMatchObject({ catalog_state: 'complete', catalog_source: 'listing' });
  });

  it('killed with SIGKILL mid-catalog, the rerun resumes every part, lists no finished part again, and is exact', { timeout: 240_000 }, async () => {
    expect(single, 'needs the single listing').toBeDefined();
    const state = path.join(work, 'killed.db');
    const args = ['catalog', '--from', 's3://parts', '--state', state, '--list-concurrency', '8'];
    let listed = 0;
    let cli: ReturnType<typeof startCli> | undefined;
    onList = () => {
      listed += 1;
      if (listed < 45) return 'pass';
      cli!.child.kill('SIGKILL');
      return 'reset';
    };
    proxy.reset();
    cli = startCli(args, { env: env() });
    const first = await cli.result;
    onList = () => 'pass';
    expect(first.signal, first.stderr).toBe('SIGKILL');
    const kept = rows(state);
    expect(kept.size).toBeGreaterThan(0);
    expect(kept.size).toBeLessThan(TOTAL);
    const afterKill = parts(state);
    const finished = afterKill.filter((part) => part.done === 1);
    expect(finished.length).toBeGreaterThan(0);
    expect(finished.length).toBeLessThan(afterKill.length);

    proxy.reset();
    const second = await runCli(args, { env: env(), timeoutMs: 200_000 });
    expectExit(second, 0);
    expect(second.stderr).toMatch(/Resuming the listing/);
    const rerun = listings();
    // The plan is the stored one (no delimiter listing), and no request starts inside a finished part.
    expect(rerun.filter((entry) => query(entry).has('delimiter'))).toEqual([]);
    for (const entry of rerun.filter((e) => !query(e).has('continuation-token'))) {
      const after = query(entry).get('start-after') ?? '';
      const inside = finished.find((part) => after >= part.start_after && (part.end_key === null || after < part.end_key));
      expect(inside, `a request after "${after}"`).toBeUndefined();
    }
    const resumed = rows(state);
    expect(resumed.size).toBe(TOTAL);
    expect([...resumed].filter(([key, row]) => single.get(key) !== row)).toEqual([]);
    expect(parts(state).every((part) => part.done === 1)).toBe(true);
    expect(readMeta(state)).toMatchObject({ catalog_state: 'complete', catalog_pass: '1' });
  });
});
