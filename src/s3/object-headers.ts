import type { GetObjectCommandOutput, HeadObjectCommandOutput, PutObjectCommandInput } from '@aws-sdk/client-s3';

export type CopiedHeaders = Pick<
  PutObjectCommandInput,
  | 'ContentType'
  | 'ContentEncoding'
  | 'ContentDisposition'
  | 'ContentLanguage'
  | 'CacheControl'
  | 'Expires'
  | 'WebsiteRedirectLocation'
  | 'Metadata'
>;

/** The headers and user metadata that travel with an object by default. */
export function copiedHeaders(source: GetObjectCommandOutput | HeadObjectCommandOutput): CopiedHeaders {
  const headers: CopiedHeaders = {};
  if (source.ContentType) headers.ContentType = source.ContentType;
  if (source.ContentEncoding) headers.ContentEncoding = source.ContentEncoding;
  if (source.ContentDisposition) headers.ContentDisposition = source.ContentDisposition;
  if (source.ContentLanguage) headers.ContentLanguage = source.ContentLanguage;
  if (source.CacheControl) headers.CacheControl = source.CacheControl;
  if (source.Expires instanceof Date && !Number.isNaN(source.Expires.getTime())) headers.Expires = source.Expires;
  if (source.WebsiteRedirectLocation) headers.WebsiteRedirectLocation = source.WebsiteRedirectLocation;
  if (source.Metadata && Object.keys(source.Metadata).length > 0) headers.Metadata = source.Metadata;
  return headers;
}
