import { S3MigrateError } from '../errors.js';

/** The documented exit codes (DESIGN §1). */
export const EXIT = {
  ok: 0,
  fatal: 1,
  usage: 2,
  incomplete: 3,
  /**
   * The run finished; everything it could copy is done, but archived objects (GLACIER...) were skipped:
   * not everything asked for is done, as with failed objects (DESIGN's 3), with its own message.
   */
  archived: 3,
  /**
   * --delete-gone would delete more than --max-delete allows: the run stopped before doing anything, a
   * fatal stop (DESIGN's 1) with its own message.
   */
  deleteLimit: 1,
  interrupted: 130,
} as const;

export function exitCodeFor(error: unknown): number {
  if (error instanceof S3MigrateError) {
    return error.kind === 'usage' ? EXIT.usage : error.kind === 'delete-limit' ? EXIT.deleteLimit : EXIT.fatal;
  }
  return EXIT.fatal;
}
