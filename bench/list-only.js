// The reference for catalog's wall time: bare ListObjectsV2 paging of the same bucket, nothing stored.
// Usage: node bench/list-only.js ENDPOINT BUCKET
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';

const [endpoint, bucket] = process.argv.slice(2);
const client = new S3Client({
  endpoint,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
});
let keys = 0;
let token;
do {
  const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 1000, ContinuationToken: token }));
  keys += page.Contents?.length ?? 0;
  token = page.IsTruncated ? page.NextContinuationToken : undefined;
} while (token);
console.log(keys);
