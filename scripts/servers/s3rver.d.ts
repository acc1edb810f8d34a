import type { S3Client } from '@aws-sdk/client-s3';

export interface S3rverHandle {
  /** e.g. `http://127.0.0.1:54321` */
  endpoint: string;
  port: number;
  /** The server process, e.g. to read its CPU time from /proc. */
  pid: number | undefined;
  /** Directory holding the stored objects. */
  dir: string;
  /** Kills the server (SIGTERM, then SIGKILL after 3 s); removes `dir` if it was created by startS3rver. */
  stop(): Promise<void>;
}

export interface StartS3rverOptions {
  /** Buckets to create at start. */
  buckets?: string[];
  /** Storage directory; a temporary one (removed on stop) when omitted. */
  dir?: string;
}

export function startS3rver(options?: StartS3rverOptions): Promise<S3rverHandle>;

/** S3Client for an s3rver endpoint: us-east-1, path style, S3RVER keys, checksums only when required. */
export function s3rverClient(endpoint: string): S3Client;

export const S3RVER_CREDENTIALS: { accessKeyId: string; secretAccessKey: string };
