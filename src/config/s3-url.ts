import { UsageError } from '../errors.js';
import type { EndpointLocation } from '../state/types.js';

export interface BucketLocation {
  bucket: string;
  /** '' for the whole bucket; otherwise always ends with '/' (directory semantics, like `aws s3 sync`). */
  prefix: string;
}

// Lenient on purpose: S3-compatible services accept names AWS would refuse (uppercase, underscores).
const BUCKET_NAME = /^[A-Za-z0-9._-]{1,255}$/;

/** Parses `s3://BUCKET[/PREFIX]`; `flag` names the option in error messages. */
export function parseS3Url(text: string, flag: string): BucketLocation {
  const example = `e.g. ${flag} s3://my-bucket or ${flag} s3://my-bucket/photos/`;
  if (!text.startsWith('s3://')) {
    throw new UsageError(`${flag} must be an s3:// URL, got "${text}" (${example})`);
  }
  const rest = text.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  let prefix = slash === -1 ? '' : rest.slice(slash + 1);
  if (bucket === '') {
    throw new UsageError(`${flag} has an empty bucket name in "${text}" (${example})`);
  }
  if (!BUCKET_NAME.test(bucket)) {
    throw new UsageError(
      `${flag} has an invalid bucket name "${bucket}": use letters, digits, '.', '-' or '_' (${example})`,
    );
  }
  if (prefix !== '' && !prefix.endsWith('/')) prefix += '/';
  return { bucket, prefix };
}

export function formatS3Url(location: BucketLocation): string {
  return `s3://${location.bucket}/${location.prefix}`;
}

export function sameLocation(a: EndpointLocation, b: EndpointLocation): boolean {
  return a.endpoint === b.endpoint && a.bucket === b.bucket && a.prefix === b.prefix;
}

/** `s3://bucket/prefix/ at http://endpoint`, for messages. */
export function describeLocation(location: EndpointLocation): string {
  return `s3://${location.bucket}/${location.prefix} at ${location.endpoint}`;
}
