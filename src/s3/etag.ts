import { createHash } from 'node:crypto';

/** An ETag without its quotes (and weak prefix), lower-cased: the form every comparison uses. */
export function normalizeEtag(etag: string | undefined | null): string | undefined {
  if (etag === undefined || etag === null) return undefined;
  const value = etag.replace(/^W\//, '').replace(/^"+|"+$/g, '').toLowerCase();
  return value === '' ? undefined : value;
}

/** True when an ETag has the form of a plain MD5 (32 hex digits): a single PUT, or an encrypted object's opaque tag. */
export function isPlainMd5(etag: string | undefined | null): boolean {
  const value = normalizeEtag(etag);
  return value !== undefined && /^[0-9a-f]{32}$/.test(value);
}

/** True when an ETag has the multipart form `<32 hex>-<parts>`. */
export function isMultipartEtag(etag: string | undefined | null): boolean {
  const value = normalizeEtag(etag);
  return value !== undefined && /^[0-9a-f]{32}-\d+$/.test(value);
}

/** S3's multipart ETag: MD5 of the concatenated binary part MD5s, then "-<parts>". */
export function multipartEtag(partDigests: readonly Buffer[]): string {
  const hash = createHash('md5');
  for (const digest of partDigests) hash.update(digest);
  return `${hash.digest('hex')}-${partDigests.length}`;
}

/** Two ETags name the same object version (quotes and case aside). */
export function sameEtag(a: string | undefined | null, b: string | undefined | null): boolean {
  const left = normalizeEtag(a);
  return left !== undefined && left === normalizeEtag(b);
}
