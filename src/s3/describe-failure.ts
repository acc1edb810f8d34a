import { FatalError } from '../errors.js';
import { classifyError } from './errors.js';

export interface FailureContext {
  side: 'source' | 'dest';
  bucket: string;
  credentialSource: string;
}

const SIDE_NAME = { source: 'source', dest: 'destination' } as const;
const SIDE_VARS = { source: 'SOURCE_', dest: 'DEST_' } as const;

/** Turns an S3 error that stops a whole command into one readable sentence that says what to do. */
export function describeS3Failure(error: unknown, context: FailureContext): Error {
  if (error instanceof FatalError) return error;
  const classified = classifyError(error);
  const side = SIDE_NAME[context.side];
  const vars = SIDE_VARS[context.side];
  if (classified.code === 'InvalidStorageClass') {
    // A class the destination does not offer (--storage-class): one sentence naming it.
    const message = error instanceof Error && 'storageClass' in error ? error.message : `refused the storage class (${classified.description})`;
    return new FatalError(`The ${side} bucket "${context.bucket}" ${message}.`);
  }
  switch (classified.kind) {
    case 'no-such-bucket':
    case 'not-found':
      return new FatalError(
        `The ${side} bucket "${context.bucket}" does not exist (${classified.description}). ` +
          `Check the bucket name and ${vars}ENDPOINT / ${vars}AWS_REGION.`,
      );
    case 'auth':
      return new FatalError(
        `The ${side} refused our credentials for bucket "${context.bucket}" (${classified.description}); ` +
          `they came from ${context.credentialSource}. Check ${vars}AWS_ACCESS_KEY_ID and ` +
          `${vars}AWS_SECRET_ACCESS_KEY (or ${vars}AWS_PROFILE) and the bucket's permissions.`,
      );
    case 'retryable':
    case 'throttled':
      return new FatalError(
        `Cannot reach the ${side} endpoint for bucket "${context.bucket}" (${classified.description}). ` +
          `Check ${vars}ENDPOINT and the network, then run the same command again: it resumes.`,
      );
    default:
      return new FatalError(`The ${side} failed for bucket "${context.bucket}": ${classified.description}.`);
  }
}
