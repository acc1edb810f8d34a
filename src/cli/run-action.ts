import { EXIT, exitCodeFor } from './exit-codes.js';

/**
 * Runs a command's action and turns its outcome into an exit code: a known error becomes one readable
 * line on stderr; anything unexpected also shows its stack when S3MIGRATE_DEBUG is set.
 */
export async function runAction(action: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await action();
  } catch (error) {
    const known = error instanceof Error && error.name !== 'Error' && 'kind' in error;
    process.stderr.write(`s3migrate: ${errorLine(error)}\n`);
    if (!known && process.env.S3MIGRATE_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    process.exitCode = exitCodeFor(error);
  }
}

/** An error as its one line on stderr (after `s3migrate: `): its message, or flagged as unexpected. */
export function errorLine(error: unknown): string {
  const known = error instanceof Error && error.name !== 'Error' && 'kind' in error;
  const message = error instanceof Error ? error.message : String(error);
  return known ? message : `unexpected error: ${message}`;
}

/**
 * Calls `first` on the first SIGINT/SIGTERM and `second` on the next; a third exits at once with 130,
 * whatever is still waiting (a request that hangs, a slow disk). Returns a function that unhooks them.
 */
export function onInterrupt(first: () => void, second: () => void): () => void {
  let count = 0;
  const handler = (): void => {
    count += 1;
    if (count === 1) first();
    else if (count === 2) second();
    else {
      process.stderr.write('\nStopped at once; run the same command again to carry on.\n');
      process.exit(EXIT.interrupted);
    }
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}
