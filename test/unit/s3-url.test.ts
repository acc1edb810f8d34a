import { describe, expect, it } from 'vitest';
import { formatS3Url, parseS3Url } from '../../src/config/s3-url.js';
import { UsageError } from '../../src/errors.js';

describe('parseS3Url', () => {
  it.each([
    ['s3://bucket', { bucket: 'bucket', prefix: '' }],
    ['s3://bucket/', { bucket: 'bucket', prefix: '' }],
    ['s3://bucket/photos', { bucket: 'bucket', prefix: 'photos/' }],
    ['s3://bucket/photos/', { bucket: 'bucket', prefix: 'photos/' }],
    ['s3://bucket/a/b c/ü+%', { bucket: 'bucket', prefix: 'a/b c/ü+%/' }],
    // S3-compatible services accept names AWS would refuse.
    ['s3://My_Bucket.v2-x', { bucket: 'My_Bucket.v2-x', prefix: '' }],
  ])('%s', (text, expected) => {
    expect(parseS3Url(text, '--from')).toEqual(expected);
  });

  it('round-trips through formatS3Url', () => {
    expect(formatS3Url(parseS3Url('s3://b/x/y', '--to'))).toBe('s3://b/x/y/');
    expect(formatS3Url(parseS3Url('s3://b', '--to'))).toBe('s3://b/');
  });

  it.each([
    ['bucket', /--from must be an s3:\/\/ URL, got "bucket"/],
    ['https://bucket/x', /must be an s3:\/\/ URL/],
    ['S3://bucket', /must be an s3:\/\/ URL/],
    ['', /must be an s3:\/\/ URL/],
    ['s3://', /--from has an empty bucket name/],
    ['s3:///prefix', /empty bucket name/],
    ['s3://bad bucket', /invalid bucket name "bad bucket"/],
    ['s3://bucket?x=1', /invalid bucket name/],
    [`s3://${'b'.repeat(256)}`, /invalid bucket name/],
  ])('refuses %j as invalid usage', (text, message) => {
    let error: unknown;
    try {
      parseS3Url(text, '--from');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).toContain('e.g. --from s3://my-bucket');
  });
});
