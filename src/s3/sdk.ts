import { createRequire } from 'node:module';
import type * as ClientS3 from '@aws-sdk/client-s3';

/**
 * The AWS SDK's S3 client, loaded with require(). Imported from ESM, node first scans a CommonJS module's
 * source for its export names (cjs-module-lexer): for this 270 KB bundle that is ~50 ms of CPU at every
 * start of the CLI (W1: two starts, catalog and copy), for nothing. Types still come from the package.
 */
const sdk = createRequire(import.meta.url)('@aws-sdk/client-s3') as typeof ClientS3;

export const {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectTaggingCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} = sdk;
export type S3Client = ClientS3.S3Client;
