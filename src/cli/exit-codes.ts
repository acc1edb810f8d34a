import { S3MigrateError } from '../errors.js';

/** The documented exit codes (DESIGN §1). */
export const EXIT = {
  ok: 0,
  fatal: 1,
  usage: 2,
  incomplete: 3,
  interrupted: 130,
} as const;

export function exitCodeFor(error: unknown): number {
  if (error instanceof S3MigrateError) return error.kind === 'usage' ? EXIT.usage : EXIT.fatal;
  return EXIT.fatal;
}
