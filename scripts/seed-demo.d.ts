import type { S3Client } from '@aws-sdk/client-s3';

export interface SeedOptions {
  /** Total number of objects (default 2000). */
  count?: number;
  /** PRNG seed: same seed, same corpus (default 1). */
  seed?: number;
  /** How many 12-20 MiB objects among them (default 3). */
  large?: number;
  /** Parallel PutObject calls (default 16). */
  concurrency?: number;
}

export interface PlannedObject {
  key: string;
  size: number;
  contentType?: string;
  cacheControl?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  metadata?: Record<string, string>;
  text?: boolean;
  contentSeed: number;
}

/** The corpus seedDemoBucket would upload, without uploading it. */
export function planDemoObjects(options?: Omit<SeedOptions, 'concurrency'>): PlannedObject[];

/** Puts a deterministic sample corpus into an existing bucket. */
export function seedDemoBucket(client: S3Client, bucket: string, options?: SeedOptions): Promise<{ objects: number; bytes: number }>;
