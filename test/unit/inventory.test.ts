// S3 Inventory reports, pure parts: the manifest's validation and the CSV rows' decoding (gzip built in memory).
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodeInventoryKey, emptyStats, inventoryCsvRows, quoteEtag } from '../../src/catalog/inventory/csv-rows.js';
import { parseManifest, type InventorySchema } from '../../src/catalog/inventory/manifest.js';
import { FatalError } from '../../src/errors.js';
import type { ListedObject } from '../../src/state/types.js';
import { encodeInventoryKey } from '../support/inventory-writer.js';

const WHERE = 's3://inv/reports/src/all/2024-01-31T01-00Z/manifest.json';
const MD5 = 'f11166069f1990abeb9c97ace9cdfabc';

/** A manifest as AWS writes one for a CSV report, with `changes` applied (undefined deletes a field). */
function manifestText(changes: Record<string, unknown> = {}): string {
  const manifest: Record<string, unknown> = {
    sourceBucket: 'example-source-bucket',
    destinationBucket: 'arn:aws:s3:::example-inventory-destination-bucket',
    version: '2016-11-30',
    creationTimestamp: '1514944800000',
    fileFormat: 'CSV',
    fileSchema: 'Bucket, Key, Size, LastModifiedDate, ETag, StorageClass',
    files: [{ key: 'Inventory/example-source-bucket/data/939c6d46.csv.gz', size: 2147483647, MD5checksum: MD5 }],
  };
  for (const [name, value] of Object.entries(changes)) {
    if (value === undefined) delete manifest[name];
    else manifest[name] = value;
  }
  return JSON.stringify(manifest, null, 4);
}

function refusal(text: string): FatalError {
  try {
    parseManifest(text, WHERE);
  } catch (error) {
    expect(error).toBeInstanceOf(FatalError);
    expect((error as Error).message).toContain(WHERE);
    return error as FatalError;
  }
  throw new Error('the manifest was accepted');
}

describe('parseManifest', () => {
  it('reads the CSV manifest of the AWS documentation', () => {
    const manifest = parseManifest(manifestText(), WHERE);
    expect(manifest).toEqual({
      sourceBucket: 'example-source-bucket',
      destinationBucket: 'arn:aws:s3:::example-inventory-destination-bucket',
      version: '2016-11-30',
      creationTimestamp: '2018-01-03T02:00:00.000Z',
      fileFormat: 'CSV',
      schema: {
        fields: ['Bucket', 'Key', 'Size', 'LastModifiedDate', 'ETag', 'StorageClass'],
        key: 1,
        size: 2,
        lastModified: 3,
        etag: 4,
        storageClass: 5,
        versionId: undefined,
        isLatest: undefined,
        isDeleteMarker: undefined,
      },
      files: [{ key: 'Inventory/example-source-bucket/data/939c6d46.csv.gz', size: 2147483647, md5: MD5 }],
    });
  });

  it('finds the columns of a versioned report with every optional field', () => {
    const fileSchema =
      'Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, StorageClass, ' +
      'IsMultipartUploaded, ReplicationStatus, EncryptionStatus, ObjectLockRetainUntilDate, ObjectLockMode, ' +
      'ObjectLockLegalHoldStatus';
    const { schema } = parseManifest(manifestText({ fileSchema }), WHERE);
    expect(schema).toMatchObject({ key: 1, versionId: 2, isLatest: 3, isDeleteMarker: 4, size: 5, lastModified: 6, etag: 7, storageClass: 8 });
    expect(schema.fields).toHaveLength(15);
  });

  it('accepts a report without StorageClass, a numeric timestamp, an uppercase MD5 and no file size', () => {
    const manifest = parseManifest(
      manifestText({
        fileSchema: 'Key,Size,ETag,LastModifiedDate',
        creationTimestamp: 1514944800000,
        files: [{ key: 'a.csv.gz', MD5checksum: MD5.toUpperCase() }],
      }),
      WHERE,
    );
    expect(manifest.schema).toMatchObject({ key: 0, size: 1, etag: 2, lastModified: 3, storageClass: undefined });
    expect(manifest.creationTimestamp).toBe('2018-01-03T02:00:00.000Z');
    expect(manifest.files).toEqual([{ key: 'a.csv.gz', size: undefined, md5: MD5 }]);
  });

  it('accepts an empty files list (an empty bucket)', () => {
    expect(parseManifest(manifestText({ files: [] }), WHERE).files).toEqual([]);
  });

  it('refuses text that is not JSON, or JSON that is not an object', () => {
    expect(refusal('<Error><Code>AccessDenied</Code></Error>').message).toMatch(/is not JSON .*manifest\.json of an S3 Inventory report/);
    expect(refusal('{"sourceBucket": "b",').message).toMatch(/is not JSON/);
    expect(refusal('[1, 2]').message).toMatch(/is JSON but not an object/);
  });

  it('refuses a manifest without its files list, or with a broken entry', () => {
    expect(refusal(manifestText({ files: undefined })).message).toMatch(/has no "files" list/);
    expect(refusal(manifestText({ files: 'a.csv.gz' })).message).toMatch(/"files" entry that is not a list/);
    expect(refusal(manifestText({ files: [{ size: 1, MD5checksum: MD5 }] })).message).toMatch(/file 1 .* without a "key"/);
    expect(refusal(manifestText({ files: [{ key: 'a.csv.gz', size: 1 }] })).message).toMatch(
      /file 1 .*\(a\.csv\.gz\) without a valid "MD5checksum"/,
    );
    expect(refusal(manifestText({ files: [{ key: 'a.csv.gz', MD5checksum: 'abc' }] })).message).toMatch(/MD5checksum/);
    expect(refusal(manifestText({ files: [{ key: 'a.csv.gz', MD5checksum: MD5, size: -1 }] })).message).toMatch(/invalid "size"/);
  });

  it.each(['ORC', 'Parquet'])('refuses a %s report: not supported yet, configure a CSV inventory', (fileFormat) => {
    const message = refusal(manifestText({ fileFormat, fileSchema: 'struct<bucket:string,key:string>' })).message;
    expect(message).toContain(`describes a ${fileFormat} inventory, which is not supported yet`);
    expect(message).toContain('Configure a CSV inventory');
  });

  it('refuses an unknown or missing fileFormat', () => {
    expect(refusal(manifestText({ fileFormat: 'TSV' })).message).toMatch(/unknown fileFormat "TSV"/);
    expect(refusal(manifestText({ fileFormat: undefined })).message).toMatch(/has no "fileFormat"/);
  });

  it.each([
    ['Bucket, Key, Size, LastModifiedDate, StorageClass', /has no ETag field /],
    ['Bucket, Key, ETag', /has no Size, LastModifiedDate fields/],
    ['Bucket, Size, LastModifiedDate, ETag', /has no Key field/],
  ])('refuses a fileSchema lacking a required field: %s', (fileSchema, expected) => {
    const message = refusal(manifestText({ fileSchema })).message;
    expect(message).toMatch(expected);
    expect(message).toContain(`"${fileSchema}"`);
    expect(message).toMatch(/needs Key, Size, LastModifiedDate and ETag/);
  });

  it('refuses a missing, empty or malformed fileSchema', () => {
    expect(refusal(manifestText({ fileSchema: undefined })).message).toMatch(/has no "fileSchema"/);
    expect(refusal(manifestText({ fileSchema: ' ' })).message).toMatch(/has no "fileSchema"/);
    expect(refusal(manifestText({ fileSchema: 'Key,,Size,ETag,LastModifiedDate' })).message).toMatch(/empty field name/);
    expect(refusal(manifestText({ fileSchema: 'Key,Size,ETag,LastModifiedDate,Key' })).message).toMatch(/lists the field Key twice/);
  });

  it('refuses a manifest without sourceBucket or a valid creationTimestamp', () => {
    expect(refusal(manifestText({ sourceBucket: undefined })).message).toMatch(/has no "sourceBucket"/);
    expect(refusal(manifestText({ creationTimestamp: undefined })).message).toMatch(/no valid creationTimestamp/);
    expect(refusal(manifestText({ creationTimestamp: '2018-01-03' })).message).toMatch(/no valid creationTimestamp/);
  });
});

// -------------------------------------------------------------------------------------------------

describe('decodeInventoryKey', () => {
  it.each([
    // AWS writes a space as '+' (form encoding); a percent-encoder would write %20: both are a space.
    ['photos/my+holiday+2024.jpg', 'photos/my holiday 2024.jpg'],
    ['photos/my%20holiday%202024.jpg', 'photos/my holiday 2024.jpg'],
    ['two++spaces%20%20and+%20mixed', 'two  spaces  and  mixed'],
    // A literal '+' is always %2B: it never decodes to a space.
    ['c%2B%2B/a%2Bb.txt', 'c++/a+b.txt'],
    ['a%2b+b', 'a+ b'],
    // '%' itself is %25, and what follows it is not decoded again.
    ['100%25+done', '100% done'],
    ['literal%2520', 'literal%20'],
    ['%252B', '%2B'],
    // '/' encoded or not.
    ['a%2Fb%2Fc', 'a/b/c'],
    ['a/b//c/', 'a/b//c/'],
    // UTF-8: NFC and NFD spellings stay distinct, 4-byte emoji survive.
    ['%C3%BCn%C3%AFc%C3%B8d%C3%A9', 'ünïcødé'],
    ['u%CC%88', 'u\u0308'],
    ['%F0%9F%98%80+key', '😀 key'],
    ['%E6%97%A5%E6%9C%AC%E8%AA%9E', '日本語'],
    // Characters Java's URLEncoder leaves alone, and the ones it escapes.
    ['a-b_c.d*e', 'a-b_c.d*e'],
    ['%21%27%28%29%7E%22%23%3F%26%3D%2C', `!'()~"#?&=,`],
  ])('%s -> %s', (encoded, key) => {
    expect(decodeInventoryKey(encoded)).toBe(key);
  });

  it.each(['50%', '%G1', '%E6%97', '%FF'])('refuses the malformed escape %s', (encoded) => {
    expect(() => decodeInventoryKey(encoded)).toThrow(URIError);
  });
});

describe('encodeInventoryKey (the test writer) against decodeInventoryKey', () => {
  it('encodes as AWS does: form encoding, a space as +, + as %2B, / as %2F', () => {
    expect(encodeInventoryKey('a b+c/d%e')).toBe('a+b%2Bc%2Fd%25e');
    expect(encodeInventoryKey('a b', '%20')).toBe('a%20b');
    expect(encodeInventoryKey("!'()~*-_.")).toBe('%21%27%28%29%7E*-_.');
  });

  it.each(['with space', ' + ', '%2B%25%', 'c++', 'ünïcødé/файл', 'cafe\u0301', '😀', 'a//b/', `"',;?#&=`])(
    'round-trips %j with either space spelling',
    (key) => {
      expect(decodeInventoryKey(encodeInventoryKey(key))).toBe(key);
      expect(decodeInventoryKey(encodeInventoryKey(key, '%20'))).toBe(key);
    },
  );
});

describe('quoteEtag', () => {
  it('adds the quotes a listing keeps, once', () => {
    expect(quoteEtag('d41d8cd98f00b204e9800998ecf8427e')).toBe('"d41d8cd98f00b204e9800998ecf8427e"');
    expect(quoteEtag('"abc-2"')).toBe('"abc-2"');
    expect(quoteEtag('')).toBeUndefined();
  });
});

// -------------------------------------------------------------------------------------------------

const FLAT: InventorySchema = parseManifest(manifestText(), WHERE).schema; // Bucket, Key, Size, LastModifiedDate, ETag, StorageClass
const VERSIONED: InventorySchema = parseManifest(
  manifestText({ fileSchema: 'Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, StorageClass' }),
  WHERE,
).schema;

/** A gzip CSV as S3 Inventory writes it: no header, every field quoted, '"' doubled. */
function csvGz(rows: readonly (readonly string[])[]): Buffer {
  const line = (row: readonly string[]) => row.map((field) => `"${field.replace(/"/g, '""')}"`).join(',');
  return gzipSync(rows.map((row) => `${line(row)}\n`).join(''));
}

async function readAll(gz: Buffer, schema: InventorySchema, stats = emptyStats()): Promise<ListedObject[]> {
  const objects: ListedObject[] = [];
  // Small chunks: rows and UTF-8 sequences split across chunk boundaries.
  const chunks = Array.from({ length: Math.ceil(gz.length / 7) }, (_, i) => gz.subarray(i * 7, i * 7 + 7));
  for await (const object of inventoryCsvRows(Readable.from(chunks), schema, { file: 's3://inv/data/1.csv.gz', stats })) {
    objects.push(object);
  }
  return objects;
}

async function rejection(gz: Buffer, schema: InventorySchema): Promise<FatalError> {
  const error = await readAll(gz, schema).then(
    () => undefined,
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(FatalError);
  expect((error as Error).message).toContain('s3://inv/data/1.csv.gz');
  return error as FatalError;
}

const ETAG = 'd41d8cd98f00b204e9800998ecf8427e';
const DATE = '2024-01-30T12:34:56.000Z';

describe('inventoryCsvRows', () => {
  it('decodes tricky keys, unquotes nothing it should not, and quotes the ETag as a listing does', async () => {
    const keys: Array<[string, string]> = [
      ['with+space+and++two', 'with space and  two'],
      ['percent%20space', 'percent space'],
      ['plus%2Bsign%2B', 'plus+sign+'],
      ['100%25.txt', '100%.txt'],
      ['dir%2Fsub%2Ffile.txt', 'dir/sub/file.txt'],
      ['raw/slash//double/', 'raw/slash//double/'],
      ['%C3%BCn%C3%AFc%C3%B8d%C3%A9%2F%D1%84%D0%B0%D0%B9%D0%BB-%E6%97%A5%E6%9C%AC%E8%AA%9E.txt', 'ünïcødé/файл-日本語.txt'],
      ['emoji+%F0%9F%98%80', 'emoji 😀'],
      ['quote%22inside', 'quote"inside'],
      // A producer that leaves '"' and ',' unencoded: the CSV quoting carries them.
      ['raw"quote,comma', 'raw"quote,comma'],
    ];
    const rows = keys.map(([encoded], i) => ['src', encoded, String(i), DATE, ETAG, 'STANDARD']);
    const stats = emptyStats();
    const objects = await readAll(csvGz(rows), FLAT, stats);
    expect(objects.map((object) => object.key)).toEqual(keys.map(([, key]) => key));
    expect(objects[0]).toEqual({ key: 'with space and  two', size: 0, etag: `"${ETAG}"`, lastModified: DATE, storageClass: 'STANDARD' });
    expect(stats).toEqual({ records: keys.length, kept: keys.length, noncurrent: 0, deleteMarkers: 0 });
  });

  it('normalises LastModifiedDate to ISO-8601 UTC with milliseconds, like a listing', async () => {
    const objects = await readAll(
      csvGz([
        ['src', 'a', '1', '2024-01-30T12:34:56Z', ETAG, 'STANDARD'],
        ['src', 'b', '1', '2024-01-30T14:34:56.5+02:00', ETAG, 'GLACIER'],
      ]),
      FLAT,
    );
    expect(objects.map((object) => [object.lastModified, object.storageClass])).toEqual([
      ['2024-01-30T12:34:56.000Z', 'STANDARD'],
      ['2024-01-30T12:34:56.500Z', 'GLACIER'],
    ]);
  });

  it('keeps multipart ETags, and no ETag or StorageClass when the fields are empty', async () => {
    const [object] = await readAll(csvGz([['src', 'big', '104857600', DATE, `${ETAG}-13`, '']]), FLAT);
    expect(object).toEqual({ key: 'big', size: 104857600, etag: `"${ETAG}-13"`, lastModified: DATE, storageClass: undefined });
    const [bare] = await readAll(csvGz([['src', 'bare', '1', DATE, '', '']]), FLAT);
    expect(bare!.etag).toBeUndefined();
  });

  it('keeps only the latest version of each key of a versioned report, and drops delete markers', async () => {
    const v = (key: string, version: string, latest: string, marker: string, size: string) =>
      ['src', key, version, latest, marker, size, DATE, marker === 'true' ? '' : ETAG, marker === 'true' ? '' : 'STANDARD'];
    const stats = emptyStats();
    const objects = await readAll(
      csvGz([
        v('kept', 'v2', 'true', 'false', '20'),
        v('kept', 'v1', 'false', 'false', '10'),
        v('deleted', 'v3', 'true', 'true', ''), // the latest version is a delete marker: the key is gone
        v('deleted', 'v2', 'false', 'false', '5'),
        v('old+marker', 'v2', 'true', 'false', '7'), // an older delete marker does not matter
        v('old+marker', 'v1', 'false', 'true', ''),
        v('suspended', 'null', 'TRUE', 'FALSE', '3'), // versioning suspended: version id "null"; case-insensitive flags
      ]),
      VERSIONED,
      stats,
    );
    expect(objects.map((object) => [object.key, object.size])).toEqual([
      ['kept', 20],
      ['old marker', 7],
      ['suspended', 3],
    ]);
    expect(stats).toEqual({ records: 7, kept: 3, noncurrent: 3, deleteMarkers: 1 });
  });

  it('drops delete markers of a report with IsDeleteMarker but no IsLatest', async () => {
    const schema = parseManifest(manifestText({ fileSchema: 'Key, IsDeleteMarker, Size, LastModifiedDate, ETag' }), WHERE).schema;
    const objects = await readAll(
      csvGz([
        ['a', 'false', '1', DATE, ETAG],
        ['b', 'true', '', DATE, ''],
      ]),
      schema,
    );
    expect(objects.map((object) => object.key)).toEqual(['a']);
  });

  it('reads an empty data file as no rows', async () => {
    expect(await readAll(gzipSync(''), FLAT)).toEqual([]);
  });

  it('refuses a row whose field count differs from the schema, naming the row', async () => {
    const message = (await rejection(csvGz([['src', 'a', '1', DATE, ETAG, 'STANDARD'], ['src', 'b', '1', DATE, ETAG]]), FLAT)).message;
    expect(message).toMatch(/^Row 2 of inventory data file .* has 5 fields, but the manifest's fileSchema lists 6/);
  });

  it.each([
    ['a malformed key escape', ['src', 'bad%E6%97', '1', DATE, ETAG, 'STANDARD'], /Row 1 .*Key that is not valid URL encoding: "bad%E6%97"/],
    ['an empty key', ['src', '', '1', DATE, ETAG, 'STANDARD'], /empty Key/],
    ['an empty Size on a current object', ['src', 'a', '', DATE, ETAG, 'STANDARD'], /\(key "a"\) has no valid Size/],
    ['a negative Size', ['src', 'a', '-1', DATE, ETAG, 'STANDARD'], /no valid Size \("-1"\)/],
    ['a date without a zone', ['src', 'a', '1', '2024-01-30 12:34:56', ETAG, 'STANDARD'], /no valid LastModifiedDate/],
    ['a date that is no date', ['src', 'a', '1', '2024-13-45T99:00:00Z', ETAG, 'STANDARD'], /no valid LastModifiedDate/],
  ])('refuses %s', async (_what, row, expected) => {
    expect((await rejection(csvGz([row]), FLAT)).message).toMatch(expected);
  });

  it('refuses a file that is not gzip, or is cut short', async () => {
    expect((await rejection(Buffer.from('"src","a","1"\n'), FLAT)).message).toMatch(/is not a valid gzip file/);
    const whole = csvGz(Array.from({ length: 200 }, (_, i) => ['src', `key-${i}`, '1', DATE, ETAG, 'STANDARD']));
    expect((await rejection(whole.subarray(0, whole.length - 20), FLAT)).message).toMatch(/is not a valid gzip file/);
  });

  it('refuses a file that is not CSV, without buffering it whole', async () => {
    expect((await rejection(gzipSync('"src","a'), FLAT)).message).toMatch(/is not valid CSV/);
    // An unclosed quote followed by megabytes: the record size limit stops the parser.
    const runaway = gzipSync(Buffer.concat([Buffer.from('"src","'), Buffer.alloc(3 * 1024 * 1024, 'a')]));
    expect((await rejection(runaway, FLAT)).message).toMatch(/is not valid CSV/);
  });
});
