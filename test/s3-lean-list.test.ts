// ListObjectsV2 on the lean path (src/s3/lean-list.ts) against the SDK's, on s3rver: the same answers for
// tricky keys (XML entities, spaces, unicode), with and without delimiter, StartAfter, continuation tokens
// and page sizes; the same errors. RGW, which URL-encodes keys, is compared in test/compat/rgw-listing.test.ts.
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3rver, type S3rverHandle } from '../scripts/servers/s3rver.js';
import type { EndpointConfig } from '../src/config/endpoint-config.js';
import { createS3Client } from '../src/s3/client.js';
import { classifyError } from '../src/s3/errors.js';
import { parseListAnswer } from '../src/s3/lean-list.js';
import { leanPathOf } from '../src/s3/lean-path.js';
import { listObjectsPage, type ListRequest } from '../src/s3/list-pages.js';
import { putObjects } from './support/catalog-fixtures.js';
import { startRequestProxy, type RequestProxy } from './support/request-proxy.js';

let s3: S3rverHandle;
let proxy: RequestProxy;
let lean: S3Client;
let sdk: S3Client;

const KEYS = [
  'amp&ersand <lt> "quote" \'apos\'.txt',
  'with space/two  spaces',
  ' leading',
  'plus+sign%2B%25%',
  'ünïcødé/日本語',
  'emoji 😀.bin',
  'dir/a',
  'dir/b/c',
  'dir/d/',
  ...Array.from({ length: 30 }, (_, i) => `bulk/${String(i).padStart(3, '0')}`),
];

const config = (extra: Partial<EndpointConfig> = {}): EndpointConfig => ({
  side: 'source',
  endpoint: proxy.endpoint,
  region: 'us-east-1',
  forcePathStyle: true,
  checksumMode: 'when-required',
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  credentialSource: 'test',
  ...extra,
});

beforeAll(async () => {
  s3 = await startS3rver({ buckets: ['list'] });
  proxy = await startRequestProxy(s3.endpoint);
  lean = createS3Client(config(), { maxSockets: 4 });
  sdk = createS3Client(config({ leanPath: false }), { maxSockets: 4 });
  expect(leanPathOf(lean)).toBeDefined();
  expect(leanPathOf(sdk)).toBeUndefined();
  const sdkOnly = createS3Client({ ...config({ leanPath: false }), endpoint: s3.endpoint }, { maxSockets: 8 });
  await putObjects(sdkOnly, 'list', KEYS.map((key) => ({ key, body: Buffer.from(key) })));
  sdkOnly.destroy();
});
afterAll(async () => {
  lean?.destroy();
  sdk?.destroy();
  await proxy?.stop();
  await s3?.stop();
});

describe('ListObjectsV2 on the lean path', () => {
  const requests: Array<Omit<ListRequest, 'bucket'>> = [
    { prefix: '' },
    { prefix: '', maxKeys: 7 },
    { prefix: '', delimiter: '/' },
    { prefix: 'dir/', delimiter: '/' },
    { prefix: 'bulk/', startAfter: 'bulk/012', maxKeys: 5 },
    { prefix: '', startAfter: 'amp&ersand <lt> "quote" \'apos\'.txt', maxKeys: 3 },
  ];
  it.each(requests)('answers as the SDK does: %j', async (request) => {
    const viaSdk = await listObjectsPage(sdk, { bucket: 'list', ...request });
    proxy.reset();
    const viaLean = await listObjectsPage(lean, { bucket: 'list', ...request });
    // s3rver's continuation tokens are encrypted with a random IV: equal in kind, not in bytes.
    const tokenless = (answer: typeof viaSdk) => ({ ...answer, nextToken: answer.nextToken === undefined ? undefined : 'token' });
    expect(tokenless(viaLean)).toEqual(tokenless(viaSdk));
    // The same request line the SDK sends: path, and the query with EncodingType=url.
    const [sent] = proxy.log();
    expect(sent).toMatchObject({ op: 'ListObjectsV2', path: '/list/' });
    expect(new URLSearchParams(sent!.query).get('encoding-type')).toBe('url');
    if (viaSdk.truncated) {
      const [a, b] = await Promise.all([
        listObjectsPage(lean, { bucket: 'list', ...request, continuationToken: viaLean.nextToken }),
        listObjectsPage(sdk, { bucket: 'list', ...request, continuationToken: viaSdk.nextToken }),
      ]);
      expect(tokenless(a)).toEqual(tokenless(b));
    }
  });

  it('a missing bucket is the same error', async () => {
    const [a, b] = await Promise.all(
      [lean, sdk].map((client) => listObjectsPage(client, { bucket: 'no-such-bucket', prefix: '' }).catch((error: unknown) => error)),
    );
    expect(classifyError(a)).toEqual(classifyError(b));
    expect((a as Error).name).toBe('NoSuchBucket');
  });
});

describe('the answer scanner', () => {
  it('decodes XML entities, keeps spaces, reads prefixes and top-level elements wherever they are', () => {
    const xml =
      '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>' +
      '<Prefix>p&amp;</Prefix><MaxKeys>2</MaxKeys><Contents><Key> a &amp;&lt;&gt;&quot;&apos;&#x1F600;&#65; </Key>' +
      '<LastModified>2024-01-02T03:04:05.678Z</LastModified><ETag>&quot;abc&quot;</ETag><Size>12</Size><StorageClass>GLACIER</StorageClass></Contents>' +
      '<Contents><Key>k2</Key><LastModified>2024-01-02T03:04:05Z</LastModified><Size>0</Size></Contents>' +
      '<CommonPrefixes><Prefix>dir&amp;/</Prefix></CommonPrefixes><IsTruncated>true</IsTruncated>' +
      '<NextContinuationToken>tok&amp;en</NextContinuationToken><EncodingType>url</EncodingType></ListBucketResult>';
    expect(parseListAnswer(xml)).toEqual({
      objects: [
        { key: ' a &<>"\'😀A ', size: 12, etag: '"abc"', lastModified: '2024-01-02T03:04:05.678Z', storageClass: 'GLACIER' },
        { key: 'k2', size: 0, etag: undefined, lastModified: '2024-01-02T03:04:05.000Z', storageClass: undefined },
      ],
      prefixes: ['dir&/'],
      truncated: true,
      nextToken: 'tok&en',
      encodingType: 'url',
    });
  });
});
