/**
 * Reads an S3 Inventory report (CSV) as a catalog source: the manifest.json, then each data file in manifest
 * order, each one proven against the manifest's MD5checksum before any of its rows is used.
 *
 * Why a temporary file per data file: a data file can be hundreds of MiB compressed (AWS's own example lists
 * one of 2 GiB), so it cannot be held in memory until its MD5 is known, and parsing while downloading would
 * hand out rows of a file that may turn out corrupt. Downloading it once to disk while hashing, then parsing
 * from disk, keeps memory flat (a few stream buffers), reads the network once, and needs disk space for one
 * compressed data file at a time (deleted as soon as it is parsed). The alternative, reading each file twice
 * (hash, then parse), doubles the transfer and its cost and would still need If-Match to be sure both reads saw
 * the same bytes.
 *
 * Inventory keys are not in byte order across files (nor promised to be within one): the resume point is a
 * data file index, never a key.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, type S3Client } from '../../s3/sdk.js';
import { FatalError, UsageError } from '../../errors.js';
import { classifyError } from '../../s3/errors.js';
import type { ListedObject } from '../../state/types.js';
import type { ListingPage } from '../../s3/list-pages.js';
import { emptyStats, inventoryCsvRows } from './csv-rows.js';
import { parseManifest, type InventoryManifest } from './manifest.js';

/** What identifies one inventory report: record it with the catalog, and refuse to resume from another. */
export interface InventoryIdentity {
  /** s3://BUCKET/KEY of the manifest.json. */
  manifestUrl: string;
  /** The bucket the report lists (the manifest's sourceBucket). */
  sourceBucket: string;
  /** The manifest's destinationBucket, as written (usually an ARN). */
  destinationBucket?: string;
  /** When the report generation began scanning the bucket, ISO-8601 UTC. */
  creationTimestamp: string;
  fileCount: number;
  /** Hex MD5 of the manifest.json bytes: two reports with the same URL (a re-delivery) differ here. */
  manifestMd5: string;
}

/** A page of objects from one data file; never spans two files. */
export interface InventoryPage extends ListingPage {
  /** 0-based index of the data file in the manifest's files list. */
  fileIndex: number;
  /** Key of that data file. */
  fileKey: string;
  /**
   * CSV records of this file read up to and including this page's last row (rows skipped as noncurrent
   * versions or delete markers count too), i.e. how far into the file this page reaches.
   */
  rowsInFileSoFar: number;
  /**
   * True on the file's last page: once this page is stored, resume with startAtFile = fileIndex + 1. A file
   * with no current object still yields one page, empty, with this flag set.
   */
  fileComplete: boolean;
}

export type InventoryEvent =
  | { type: 'file-verified'; fileIndex: number; fileKey: string; bytes: number }
  | { type: 'file-done'; fileIndex: number; fileKey: string; records: number; objects: number; noncurrent: number; deleteMarkers: number };

export interface InventoryPagesOptions {
  /** Skip the data files before this index (already ingested). Default 0; fileCount yields nothing. */
  startAtFile?: number;
  /** Objects per page (default 1,000). */
  pageSize?: number;
  signal?: AbortSignal;
  /** Where the data file being verified is kept (default: the OS temporary directory). Needs room for the largest compressed data file. */
  tempDir?: string;
  onEvent?: (event: InventoryEvent) => void;
}

export interface InventoryReader {
  identity: InventoryIdentity;
  manifest: InventoryManifest;
  /** The report's objects, page by page, file by file in manifest order. */
  pages(options?: InventoryPagesOptions): AsyncGenerator<InventoryPage>;
  /**
   * Proves the data files from `startAtFile` on against the manifest (present, MD5 and size) without
   * keeping them: each is read once, hashed on the way, and dropped. Throws the FatalError pages() would
   * for the first missing or damaged one. A catalog runs it before storing anything, so that a damaged
   * report leaves the state as it was.
   */
  verifyFiles(options?: { startAtFile?: number; signal?: AbortSignal; onEvent?: (event: InventoryEvent) => void }): Promise<void>;
}

export interface ManifestLocation {
  bucket: string;
  key: string;
}

/** Parses `s3://BUCKET/KEY` of a manifest.json; `flag` names the option in messages. */
export function parseManifestUrl(text: string, flag = '--from-inventory'): ManifestLocation {
  const example = `e.g. ${flag} s3://inventory-bucket/PREFIX/SOURCE-BUCKET/CONFIG-ID/2024-01-31T01-00Z/manifest.json`;
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(text);
  if (!match) throw new UsageError(`${flag} must be the s3:// URL of an inventory's manifest.json, got "${text}" (${example})`);
  const [, bucket, key] = match as unknown as [string, string, string];
  if (key.endsWith('/')) {
    throw new UsageError(`${flag} names a folder, "${text}": give the manifest.json inside it (${example})`);
  }
  return { bucket, key };
}

const urlOf = (bucket: string, key: string): string => `s3://${bucket}/${key}`;

/** GetObject, with a missing object or bucket turned into a FatalError that says `what` is missing. */
async function getObject(
  client: S3Client,
  bucket: string,
  key: string,
  signal: AbortSignal | undefined,
  missing: () => string,
) {
  try {
    return await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
  } catch (error) {
    const classified = classifyError(error);
    if (classified.kind === 'not-found' || classified.kind === 'no-such-bucket') {
      throw new FatalError(`${missing()} (${classified.description}).`);
    }
    throw error; // auth, network, throttling: the caller's S3 error handling says what to do
  }
}

async function readText(
  client: S3Client,
  location: ManifestLocation,
  signal: AbortSignal | undefined,
  missing: () => string,
): Promise<Buffer> {
  const response = await getObject(client, location.bucket, location.key, signal, missing);
  return Buffer.from(await response.Body!.transformToByteArray());
}

/** The manifest.checksum beside a manifest.json, when there is one: AWS writes the MD5 of manifest.json there. */
async function checkManifestChecksum(
  client: S3Client,
  location: ManifestLocation,
  manifestMd5: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  if (!location.key.endsWith('manifest.json')) return;
  const checksumKey = `${location.key.slice(0, -'manifest.json'.length)}manifest.checksum`;
  let text: string;
  try {
    const response = await client.send(new GetObjectCommand({ Bucket: location.bucket, Key: checksumKey }), {
      abortSignal: signal,
    });
    text = (await response.Body!.transformToString()).trim();
  } catch (error) {
    if (classifyError(error).kind === 'not-found') return; // optional: a copied report may lack it
    throw error;
  }
  if (!/^[0-9a-fA-F]{32}$/.test(text)) return; // not the format we know: the data files' MD5s still protect us
  if (text.toLowerCase() !== manifestMd5) {
    throw new FatalError(
      `The inventory manifest ${urlOf(location.bucket, location.key)} does not match its manifest.checksum ` +
        `(MD5 ${manifestMd5}, expected ${text.toLowerCase()}): it is damaged or being rewritten. Wait for the ` +
        `report to be complete, or use another report's manifest.json.`,
    );
  }
}

/**
 * Fetches and validates the manifest.json at `manifestUrl` (s3://BUCKET/KEY) with `client`, and checks it
 * against its manifest.checksum when there is one. Data files are read from the manifest's bucket.
 * Throws UsageError for a malformed URL, FatalError for a missing or unusable manifest.
 */
export async function openInventory(
  client: S3Client,
  manifestUrl: string,
  options: { signal?: AbortSignal } = {},
): Promise<InventoryReader> {
  const location = parseManifestUrl(manifestUrl);
  const url = urlOf(location.bucket, location.key);
  const bytes = await readText(
    client,
    location,
    options.signal,
    () => `The inventory manifest ${url} does not exist. Check the URL: it is the manifest.json in a dated folder of the report`,
  );
  const manifestMd5 = createHash('md5').update(bytes).digest('hex');
  const manifest = parseManifest(bytes.toString('utf8'), url);
  await checkManifestChecksum(client, location, manifestMd5, options.signal);

  const identity: InventoryIdentity = {
    manifestUrl: url,
    sourceBucket: manifest.sourceBucket,
    destinationBucket: manifest.destinationBucket,
    creationTimestamp: manifest.creationTimestamp,
    fileCount: manifest.files.length,
    manifestMd5,
  };
  return {
    identity,
    manifest,
    pages: (pageOptions = {}) => readPages(client, location.bucket, manifest, pageOptions),
    verifyFiles: async (verifyOptions = {}) => {
      const fileCount = manifest.files.length;
      for (let fileIndex = verifyOptions.startAtFile ?? 0; fileIndex < fileCount; fileIndex++) {
        const file = manifest.files[fileIndex]!;
        const which = `data file ${fileIndex + 1} of ${fileCount}, ${urlOf(location.bucket, file.key)}`;
        const response = await getObject(client, location.bucket, file.key, verifyOptions.signal, () => missingFile(which));
        const hash = createHash('md5');
        const counter = { bytes: 0 };
        await pipeline(response.Body as Readable, hashing(hash, counter), new Writable({ write: (_chunk, _encoding, done) => done() }), {
          signal: verifyOptions.signal,
        });
        checkFile(which, file, hash.digest('hex'), counter.bytes);
        verifyOptions.onEvent?.({ type: 'file-verified', fileIndex, fileKey: file.key, bytes: counter.bytes });
      }
    },
  };
}

const missingFile = (which: string): string =>
  `Inventory ${which}, listed in the manifest, does not exist. The report is incomplete or partly ` +
  `deleted (lifecycle rules often expire old reports); use a newer report's manifest.json`;

/** A data file whose bytes are not the manifest's is refused whole. */
function checkFile(which: string, file: InventoryManifest['files'][number], md5: string, bytes: number): void {
  if (md5 !== file.md5 || (file.size !== undefined && bytes !== file.size)) {
    throw new FatalError(
      `Inventory ${which} does not match its manifest: MD5 ${md5} and ${bytes} bytes, the manifest ` +
        `says MD5 ${file.md5}${file.size !== undefined ? ` and ${file.size} bytes` : ''}. The file is damaged ` +
        `or was replaced; none of its rows were used. Use a complete inventory report, or catalog by listing ` +
        `the bucket (--from).`,
    );
  }
}

/** Counts bytes and hashes them on their way through. */
function hashing(hash: ReturnType<typeof createHash>, counter: { bytes: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      counter.bytes += chunk.length;
      callback(null, chunk);
    },
  });
}

async function* readPages(
  client: S3Client,
  bucket: string,
  manifest: InventoryManifest,
  options: InventoryPagesOptions,
): AsyncGenerator<InventoryPage> {
  const pageSize = options.pageSize ?? 1000;
  if (!Number.isInteger(pageSize) || pageSize < 1) throw new RangeError(`pageSize must be a positive integer, got ${pageSize}`);
  const fileCount = manifest.files.length;
  const startAtFile = options.startAtFile ?? 0;
  if (!Number.isInteger(startAtFile) || startAtFile < 0 || startAtFile > fileCount) {
    throw new FatalError(
      `Cannot resume the inventory at data file ${startAtFile + 1}: its manifest lists ${fileCount} file(s). ` +
        `The state file was cataloged from another report; use the same --from-inventory as before, or another --state file.`,
    );
  }
  if (startAtFile === fileCount) return;

  const signal = options.signal;
  const work = await mkdtemp(path.join(options.tempDir ?? tmpdir(), 's3migrate-inventory-'));
  try {
    for (let fileIndex = startAtFile; fileIndex < fileCount; fileIndex++) {
      const file = manifest.files[fileIndex]!;
      const url = urlOf(bucket, file.key);
      const which = `data file ${fileIndex + 1} of ${fileCount}, ${url}`;
      const local = path.join(work, `data-${fileIndex}.csv.gz`);

      // 1. Download to disk, hashing on the way; nothing of this file is used before its MD5 checks out.
      const response = await getObject(client, bucket, file.key, signal, () => missingFile(which));
      const hash = createHash('md5');
      const counter = { bytes: 0 };
      await pipeline(response.Body as Readable, hashing(hash, counter), createWriteStream(local), { signal });
      checkFile(which, file, hash.digest('hex'), counter.bytes);
      options.onEvent?.({ type: 'file-verified', fileIndex, fileKey: file.key, bytes: counter.bytes });

      // 2. Parse the verified copy, one page at a time. A full page is held until the next row arrives, so the
      //    file's last page is the one flagged fileComplete.
      const stats = emptyStats();
      let objects: ListedObject[] = [];
      let reach = 0;
      const page = (complete: boolean): InventoryPage => ({
        objects,
        lastKey: objects.length > 0 ? objects[objects.length - 1]!.key : '',
        fileIndex,
        fileKey: file.key,
        rowsInFileSoFar: complete ? stats.records : reach,
        fileComplete: complete,
      });
      try {
        for await (const object of inventoryCsvRows(createReadStream(local), manifest.schema, { file: url, stats })) {
          if (objects.length === pageSize) {
            yield page(false);
            objects = [];
          }
          objects.push(object);
          reach = stats.records;
          if (signal?.aborted) throw signal.reason;
        }
        yield page(true);
      } finally {
        await rm(local, { force: true });
      }
      options.onEvent?.({
        type: 'file-done',
        fileIndex,
        fileKey: file.key,
        records: stats.records,
        objects: stats.kept,
        noncurrent: stats.noncurrent,
        deleteMarkers: stats.deleteMarkers,
      });
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
