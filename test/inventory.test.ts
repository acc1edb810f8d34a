// Reading S3 Inventory reports against a real S3 endpoint (s3rver): the ground truth is a ListObjectsV2 listing
// of the source bucket, the report is written from it as AWS writes one, and what the reader returns must equal
// the listing row for row, tricky keys included. Damaged reports must stop the read, naming the file, before any
// row of the damaged file is handed out.
import fs from 'node:fs';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3rverClient, startS3rver, type S3rverHandle } from '../scripts/servers/s3rver.js';
import { openInventory, type InventoryPage, type InventoryPagesOptions } from '../src/catalog/inventory/read-inventory.js';
import { listPages } from '../src/s3/list-pages.js';
import { FatalError, UsageError } from '../src/errors.js';
import type { ListedObject } from '../src/state/types.js';
import { putObjects, tempDir, type Seed } from './support/catalog-fixtures.js';
import { teardown } from './support/copy-fixtures.js';
import { VERSIONED_FIELDS, versionedRows, writeInventory, type WriteInventoryOptions } from './support/inventory-writer.js';

let s3: S3rverHandle;
let client: S3Client;
let work: string;
let scratch: string; // the reader's temporary directory: must be left empty
let listing: ListedObject[];

// Keys that trip up naive decoding: spaces (one, two, leading, trailing), '+', '%' and things that look like
// escapes, unicode (NFC and NFD are two keys), 4-byte emoji, reserved URL characters, '/' and a folder marker.
// ('//' is left to the unit tests: s3rver answers a listing holding such a key with XML the SDK cannot parse.)
const TRICKY = [
  'with space.txt',
  'two  spaces  here',
  ' leading and trailing ',
  'plus+sign+key.txt',
  'c++/a+b = c.txt',
  'space + plus',
  '100%.txt',
  'percent%20not%2Fdecoded.txt',
  '%2B%25%',
  'ünïcødé/файл-日本語.txt',
  'caf\u00e9',
  'cafe\u0301',
  'emoji 😀 key.bin',
  "amp&ersand=eq;semi,comma@at$dollar!*'()~.txt",
  'question?mark#hash.txt',
  'quote"double.txt',
  'a/b/c/deep.txt',
  'folder/',
];
const SEEDS: Seed[] = [
  ...TRICKY.map((key) => ({ key, body: key.endsWith('/') ? Buffer.alloc(0) : Buffer.from(`content of ${key}`) })),
  ...Array.from({ length: 60 }, (_, i) => ({ key: `bulk/${String(i).padStart(3, '0')}`, body: Buffer.from('x'.repeat(i)) })),
];

beforeAll(async () => {
  s3 = await startS3rver({ buckets: ['src', 'inv'] });
  client = s3rverClient(s3.endpoint);
  work = await tempDir('inventory');
  scratch = path.join(work, 'scratch');
  fs.mkdirSync(scratch);
  await putObjects(client, 'src', SEEDS, 8);
  listing = [];
  for await (const page of listPages(client, { bucket: 'src', prefix: '', startAfter: '' })) listing.push(...page.objects);
});

afterAll(async () => {
  await teardown({ clients: [client], servers: [s3], work: work ? { remove: async () => fs.rmSync(work, { recursive: true, force: true }) } : undefined });
});

const byKey = (a: ListedObject, b: ListedObject): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

let reports = 0;
/** Each report under its own prefix: two written in the same minute would share a dated folder. */
async function writeReport(options: Partial<WriteInventoryOptions> = {}, rows = listing) {
  reports += 1;
  return writeInventory(client, 'inv', rows, { sourceBucket: 'src', files: 3, prefix: `reports-${reports}/`, ...options });
}

async function readPages(manifestUrl: string, options: InventoryPagesOptions = {}): Promise<InventoryPage[]> {
  const reader = await openInventory(client, manifestUrl);
  const pages: InventoryPage[] = [];
  for await (const page of reader.pages({ tempDir: scratch, ...options })) pages.push(page);
  return pages;
}

const objectsOf = (pages: readonly InventoryPage[]): ListedObject[] => pages.flatMap((page) => page.objects);

/** Reads until the reader throws; returns the pages handed out before, and the error. */
async function readUntilFailure(manifestUrl: string): Promise<{ pages: InventoryPage[]; error: unknown }> {
  const pages: InventoryPage[] = [];
  try {
    const reader = await openInventory(client, manifestUrl);
    for await (const page of reader.pages({ tempDir: scratch, pageSize: 10 })) pages.push(page);
  } catch (error) {
    return { pages, error };
  }
  throw new Error('the inventory was read without error');
}

function expectScratchEmpty(): void {
  expect(fs.readdirSync(scratch)).toEqual([]);
}

// -------------------------------------------------------------------------------------------------

describe('an inventory report of the source bucket', () => {
  it('has the listing as ground truth: every seeded key, ETags in quotes', () => {
    expect(listing.map((object) => object.key).sort()).toEqual(SEEDS.map((seed) => seed.key).sort());
    expect(listing.every((object) => /^"[0-9a-f]{32}"$/.test(object.etag ?? ''))).toBe(true);
  });

  it('reads back exactly the listing: key, size, ETag, LastModified, storage class', async () => {
    const created = new Date('2024-01-31T01:00:00.000Z');
    const report = await writeReport({ creationTimestamp: created });
    const reader = await openInventory(client, report.manifestUrl);
    expect(reader.identity).toEqual({
      manifestUrl: report.manifestUrl,
      sourceBucket: 'src',
      destinationBucket: 'arn:aws:s3:::inv',
      creationTimestamp: '2024-01-31T01:00:00.000Z',
      fileCount: 3,
      manifestMd5: expect.stringMatching(/^[0-9a-f]{32}$/),
    });
    const pages: InventoryPage[] = [];
    for await (const page of reader.pages({ tempDir: scratch })) pages.push(page);
    expect([...objectsOf(pages)].sort(byKey)).toEqual([...listing].sort(byKey));
    // Round-robin over three files: the keys are not in listing order, and the reader does not need them to be.
    expect(objectsOf(pages).map((object) => object.key)).not.toEqual(listing.map((object) => object.key));
    expectScratchEmpty();
  });

  it('decodes keys written with %20 for spaces just the same', async () => {
    const report = await writeReport({ space: '%20' });
    expect([...objectsOf(await readPages(report.manifestUrl))].sort(byKey)).toEqual([...listing].sort(byKey));
  });

  it('keeps only current versions of a versioned report, without its delete markers', async () => {
    const rows = versionedRows(listing, ['deleted key.txt', 'bulk/000', 'zz+gone%']);
    const report = await writeReport({ fields: VERSIONED_FIELDS, files: 4 }, rows);
    const objects = objectsOf(await readPages(report.manifestUrl));
    // 'bulk/000' is current in the listing and also has a delete-marker history: only its current row counts.
    expect(objects.filter((object) => object.key === 'bulk/000')).toHaveLength(1);
    expect([...objects].sort(byKey)).toEqual([...listing].sort(byKey));
  });

  it('pages never span two files, flag each file’s last page, and count how far into the file they reach', async () => {
    const report = await writeReport({ files: 3 });
    const pages = await readPages(report.manifestUrl, { pageSize: 7 });
    for (const [fileIndex, file] of report.files.entries()) {
      const own = pages.filter((page) => page.fileIndex === fileIndex);
      expect(own.every((page) => page.fileKey === file.key && page.objects.length <= 7)).toBe(true);
      expect(own.map((page) => page.fileComplete)).toEqual([...own.map(() => false).slice(1), true]);
      expect(own.map((page) => page.rowsInFileSoFar)).toEqual(own.map((_, i) => Math.min((i + 1) * 7, file.rows.length)));
      expect(own.at(-1)!.rowsInFileSoFar).toBe(file.rows.length);
      expect(own.flatMap((page) => page.objects.map((object) => object.key))).toEqual(
        file.rows.map((row) => row.key),
      );
    }
    expect(pages.map((page) => page.fileIndex)).toEqual([...pages.map((page) => page.fileIndex)].sort());
    expect(pages.every((page) => page.lastKey === page.objects.at(-1)?.key)).toBe(true);
  });

  it('resumes at a data file: startAtFile skips the files already ingested', async () => {
    const report = await writeReport({ files: 3 });
    const rest = await readPages(report.manifestUrl, { startAtFile: 1 });
    expect(new Set(rest.map((page) => page.fileIndex))).toEqual(new Set([1, 2]));
    expect(objectsOf(rest).map((object) => object.key)).toEqual(report.files.slice(1).flatMap((file) => file.rows.map((row) => row.key)));
    expect(await readPages(report.manifestUrl, { startAtFile: 3 })).toEqual([]);
    await expect(readPages(report.manifestUrl, { startAtFile: 4 })).rejects.toThrow(/Cannot resume the inventory at data file 5: its manifest lists 3 file/);
  });

  it('yields one empty, complete page for a data file with no current object', async () => {
    const rows = versionedRows([], ['only deleted']);
    const report = await writeReport({ fields: VERSIONED_FIELDS, files: 1 }, rows);
    const pages = await readPages(report.manifestUrl);
    expect(pages).toEqual([{ objects: [], lastKey: '', fileIndex: 0, fileKey: report.files[0]!.key, rowsInFileSoFar: 2, fileComplete: true }]);
  });

  it('cleans its temporary files when the reader stops early', async () => {
    const report = await writeReport({ files: 2 });
    const reader = await openInventory(client, report.manifestUrl);
    for await (const page of reader.pages({ tempDir: scratch, pageSize: 5 })) {
      expect(page.fileIndex).toBe(0);
      expect(fs.readdirSync(scratch)).toHaveLength(1); // the verified copy of the file being read
      break;
    }
    expectScratchEmpty();
  });
});

describe('a damaged inventory report', () => {
  it('a corrupt data file stops the read, naming it, before any of its rows is handed out', async () => {
    const report = await writeReport({ files: 3, corruptFile: 1 });
    const { pages, error } = await readUntilFailure(report.manifestUrl);
    expect(error).toBeInstanceOf(FatalError);
    const message = (error as Error).message;
    expect(message).toContain(`data file 2 of 3, s3://inv/${report.files[1]!.key}`);
    expect(message).toContain(`the manifest says MD5 ${report.files[1]!.md5}`);
    expect(message).toMatch(/none of its rows were used/);
    expect(pages.length).toBeGreaterThan(0);
    expect(pages.every((page) => page.fileIndex === 0)).toBe(true);
    expect(pages.at(-1)!.fileComplete).toBe(true);
    expectScratchEmpty();
  });

  it('a missing data file stops the read, naming it', async () => {
    const report = await writeReport({ files: 3, omitFile: 2 });
    const { pages, error } = await readUntilFailure(report.manifestUrl);
    expect(error).toBeInstanceOf(FatalError);
    expect((error as Error).message).toMatch(
      new RegExp(`^Inventory data file 3 of 3, s3://inv/${report.files[2]!.key}, listed in the manifest, does not exist\\.`),
    );
    expect((error as Error).message).toMatch(/NoSuchKey/);
    expect(new Set(pages.map((page) => page.fileIndex))).toEqual(new Set([0, 1]));
    expectScratchEmpty();
  });

  it('a manifest that does not match its manifest.checksum is refused', async () => {
    const report = await writeReport({ checksum: 'wrong' });
    await expect(openInventory(client, report.manifestUrl)).rejects.toThrow(/does not match its manifest\.checksum/);
  });

  it('a manifest without manifest.checksum is read (a copied report may lack it)', async () => {
    const report = await writeReport({ checksum: false });
    expect(objectsOf(await readPages(report.manifestUrl))).toHaveLength(listing.length);
  });

  it('a missing manifest, or a bucket that does not exist, is a FatalError naming it', async () => {
    await expect(openInventory(client, 's3://inv/nothing/here/manifest.json')).rejects.toThrow(
      /^The inventory manifest s3:\/\/inv\/nothing\/here\/manifest\.json does not exist\. .*\(NoSuchKey/,
    );
    const error = await openInventory(client, 's3://no-such-bucket/x/manifest.json').catch((failure: unknown) => failure);
    expect(error).toBeInstanceOf(FatalError);
    expect((error as Error).message).toMatch(/s3:\/\/no-such-bucket\/x\/manifest\.json does not exist.*NoSuchBucket/);
  });

  it('an ORC report is refused up front', async () => {
    await putObjects(client, 'inv', [
      {
        key: 'orc/manifest.json',
        body: Buffer.from(JSON.stringify({ sourceBucket: 'src', creationTimestamp: '1', fileFormat: 'ORC', fileSchema: 'struct<key:string>', files: [] })),
      },
    ]);
    await expect(openInventory(client, 's3://inv/orc/manifest.json')).rejects.toThrow(/ORC inventory, which is not supported yet.*Configure a CSV inventory/);
  });

  it('a malformed --from-inventory URL is a UsageError', async () => {
    await expect(openInventory(client, 'inv/manifest.json')).rejects.toBeInstanceOf(UsageError);
    await expect(openInventory(client, 's3://inv/reports/')).rejects.toThrow(/names a folder/);
    await expect(openInventory(client, 's3://inv')).rejects.toBeInstanceOf(UsageError);
  });
});
