// The reference of what the SDK itself costs: list the source, then a bare GetObject -> PutObject per object
// (the body streamed straight through, ContentLength known) with p-limit at the given concurrency.
// Usage: node bench/sdk-loop.js SRC_ENDPOINT SRC_BUCKET DST_ENDPOINT DST_BUCKET CONCURRENCY
import http from 'node:http';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import pLimit from 'p-limit';

const [srcEndpoint, srcBucket, dstEndpoint, dstBucket, concurrencyText] = process.argv.slice(2);
const concurrency = Number(concurrencyText);
const client = (endpoint) =>
  new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { httpAgent: new http.Agent({ keepAlive: true, maxSockets: concurrency + 4 }) },
  });
const source = client(srcEndpoint);
const dest = client(dstEndpoint);

const keys = [];
let token;
do {
  const page = await source.send(new ListObjectsV2Command({ Bucket: srcBucket, ContinuationToken: token }));
  for (const item of page.Contents ?? []) keys.push(item.Key);
  token = page.IsTruncated ? page.NextContinuationToken : undefined;
} while (token);

const limit = pLimit(concurrency);
await Promise.all(
  keys.map((key) =>
    limit(async () => {
      const object = await source.send(new GetObjectCommand({ Bucket: srcBucket, Key: key }));
      await dest.send(
        new PutObjectCommand({ Bucket: dstBucket, Key: key, Body: object.Body, ContentLength: object.ContentLength }),
      );
    }),
  ),
);
