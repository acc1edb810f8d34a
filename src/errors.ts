/**
 * Errors the core raises on purpose. Each carries the kind of failure so the CLI can map it to the
 * documented exit code without parsing messages; the message is written for the user and says what to do.
 */
export type FailureKind = 'usage' | 'fatal' | 'delete-limit';

export class S3MigrateError extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
  ) {
    super(message);
    this.name = 'S3MigrateError';
  }
}

/** Invalid usage: a flag, value or combination the user must change (exit 2). */
export class UsageError extends S3MigrateError {
  constructor(message: string) {
    super('usage', message);
    this.name = 'UsageError';
  }
}

/** Nothing useful can proceed: auth, missing bucket, unreadable state file (exit 1). */
export class FatalError extends S3MigrateError {
  constructor(message: string) {
    super('fatal', message);
    this.name = 'FatalError';
  }
}

/** `copy --delete-gone --max-delete N` would delete more than N objects: nothing was done (exit 5). */
export class DeleteLimitError extends S3MigrateError {
  constructor(message: string) {
    super('delete-limit', message);
    this.name = 'DeleteLimitError';
  }
}
