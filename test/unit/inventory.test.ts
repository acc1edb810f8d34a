// S3 Inventory reports, pure parts: the manifest's validation.
import { describe, expect, it } from 'vitest';
import { parseManifest } from '../../src/catalog/inventory/manifest.js';
import { FatalError } from '../../src/errors.js';

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
