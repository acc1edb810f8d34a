// Shared helpers of the copy integration tests: seeding s3rver buckets, reading objects back,
// reading the state file with plain SQL, and decoding the request proxy's log.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type HeadObjectCommandOutput,
  type PutObjectCommandInput,
  type S3Client,
} from '@aws-sdk/client-s3';
import Database from 'better-sqlite3';
import { expect } from 'vitest';
import type { ObjectRowRaw } from './catalog-fixtures.js';
import type { LogEntry } from './request-proxy.js';

// The SDK's notice about Node 20 would clutter every test run's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

export const MiB = 1024 * 1024;

export interface SeedObject {
  key: string;
  body: Buffer;
  /** Headers and user metadata to store with the object. */
  headers?: Omit<PutObjectCommandInput, 'Bucket' | 'Key' | 'Body'>;
}

/** The multipart ETag S3 gives these bytes uploaded in parts of `partSize`. */
export function multipartEtagOf(body: Buffer, partSize: number): string {
  const digests: Buffer[] = [];
  for (let offset = 0; offset < body.length; offset += partSize) {
    digests.push(createHash('md5').update(body.subarray(offset, offset + partSize)).digest());
  }
  return `${createHash('md5').update(Buffer.concat(digests)).digest('hex')}-${digests.length}`;
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Random bytes: every object's content is different, so a mixed-up copy cannot pass. */
export function bytes(size: number): Buffer {
  return randomBytes(size);
}

/** Runs `fn` over `items` with at most `limit` at once. */
export async function eachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export async function seed(client: S3Client, bucket: string, objects: readonly SeedObject[], limit = 8): Promise<void> {
  await eachLimit(objects, limit, async (object) => {
    await client.send(
      new PutObjectCommand({ Bucket: bucket, Key: object.key, Body: object.body, ...object.headers }),
    );
  });
}

export async function readObject(client: S3Client, bucket: string, key: string): Promise<Buffer> {
  const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

/** The sha256 of an object, or undefined when it is not there. */
export async function sha256Of(client: S3Client, bucket: string, key: string): Promise<string | undefined> {
  try {
    return sha256(await readObject(client, bucket, key));
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 404) return undefined;
    throw error;
  }
}

export async function head(client: S3Client, bucket: string, key: string): Promise<HeadObjectCommandOutput> {
  return client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
}

/** Every key in a bucket (under `prefix`), in listing order. */
export async function listKeys(client: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, ContinuationToken: token }),
    );
    for (const object of page.Contents ?? []) keys.push(object.Key!);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

/** Sha256 of every object in a bucket, by key. */
export async function bucketHashes(client: S3Client, bucket: string): Promise<Map<string, string>> {
  const hashes = new Map<string, string>();
  const keys = await listKeys(client, bucket);
  await eachLimit(keys, 8, async (key) => {
    hashes.set(key, sha256(await readObject(client, bucket, key)));
  });
  return hashes;
}

/** An objects row as plain SQL returns it (the columns the tests read). */
export interface StateRow extends ObjectRowRaw {
  id: number;
  dest_key: string | null;
  dest_etag: string | null;
  evidence: string | null;
  copied_at: string | null;
}

/** The objects table, read with plain SQL (no s3migrate code), ordered by key. */
export function readRows(statePath: string): StateRow[] {
  const db = new Database(statePath, { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT * FROM objects_view ORDER BY key').all() as StateRow[];
  } finally {
    db.close();
  }
}

export function rowsByKey(statePath: string): Map<string, StateRow> {
  return new Map(readRows(statePath).map((row) => [row.key, row]));
}

export async function tempDir(label: string): Promise<{ dir: string; file: (name: string) => string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), `s3migrate-${label}-`));
  return { dir, file: (name) => path.join(dir, name), remove: () => rm(dir, { recursive: true, force: true }) };
}

/** The object key of a path-style request path (`/bucket/some%20key` -> `some key`). */
export function keyOfPath(requestPath: string, bucket: string): string {
  const prefix = `/${bucket}/`;
  if (!requestPath.startsWith(prefix)) throw new Error(`request ${requestPath} is not for bucket ${bucket}`);
  return decodeURIComponent(requestPath.slice(prefix.length));
}

/** Requests that start writing an object: a PutObject or the CreateMultipartUpload of a multipart one. */
export function isObjectWrite(entry: LogEntry): boolean {
  return entry.op === 'PutObject' || entry.op === 'CreateMultipartUpload';
}

/** The bucket holds exactly the corpus: its keys, each with the corpus object's bytes. */
export async function expectBucketHolds(client: S3Client, bucket: string, corpus: readonly SeedObject[]): Promise<void> {
  const hashes = await bucketHashes(client, bucket);
  expect([...hashes.keys()].sort()).toEqual(corpus.map((object) => object.key).sort());
  for (const object of corpus) expect(hashes.get(object.key), object.key).toBe(sha256(object.body));
}

/** How many requests of one operation `log` holds per key of `bucket`. */
export function requestsPerKey(log: readonly LogEntry[], bucket: string, op: LogEntry['op']): Map<string, number> {
  const counts = new Map<string, number>();
  for (const entry of log) {
    if (entry.op !== op || !entry.path.startsWith(`/${bucket}/`)) continue;
    const key = keyOfPath(entry.path, bucket);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** The keys written, in the order their first write request arrived. */
export function writtenKeys(log: readonly LogEntry[], bucket: string): string[] {
  return log.filter(isObjectWrite).map((entry) => keyOfPath(entry.path, bucket));
}

export function uploadIdOf(entry: LogEntry): string | undefined {
  return new URLSearchParams(entry.query).get('uploadId') ?? undefined;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves when `predicate` holds (checked every 20 ms), rejects after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** Copies a cataloged state file (and its WAL) to `target`, so each test starts from the same catalog. */
export function cloneState(template: string, target: string): string {
  for (const suffix of ['', '-wal']) {
    if (fs.existsSync(template + suffix)) fs.copyFileSync(template + suffix, target + suffix);
  }
  return target;
}

interface Stoppable {
  stop(): Promise<void>;
}

/**
 * Ends a test file's fixtures in the one order that leaves nothing hanging: proxies (they hold
 * connections to the servers), then clients, then servers, then the work directory.
 */
export async function teardown(parts: {
  proxies?: Array<Stoppable | undefined>;
  clients?: Array<S3Client | undefined>;
  servers?: Array<Stoppable | undefined>;
  work?: { remove(): Promise<void> };
}): Promise<void> {
  await Promise.all((parts.proxies ?? []).map((proxy) => proxy?.stop()));
  for (const client of parts.clients ?? []) client?.destroy();
  await Promise.all((parts.servers ?? []).map((server) => server?.stop()));
  await parts.work?.remove();
}
