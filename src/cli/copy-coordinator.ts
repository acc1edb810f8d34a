import type { CopyEvent, CopyStats } from '../copy/events.js';
import type { ProgressOutput } from '../progress/output.js';
import { startWorkers } from './copy-workers.js';
import { EXIT } from './exit-codes.js';

export interface CoordinatorOptions {
  /** False when the JSON log goes to stderr: then the workers' lines are the only output there. */
  terminal: boolean;
  output: ProgressOutput;
  /** Ends the run once every worker ended: prints the summary, returns the exit code. */
  finish: (code: number, stats: CopyStats) => Promise<number>;
}

/**
 * Runs `count` worker processes of this copy and shows them as one run: one progress display of their
 * combined stats, each Ctrl+C forwarded to all of them (the first drains, the second stops at once, the
 * third also ends this process at once), one exit code.
 */
export async function coordinateWorkers(count: number, options: CoordinatorOptions): Promise<number> {
  const { copyProgress } = await import('../progress/copy-progress.js');
  let started = false;
  let progress: { onEvent: (event: CopyEvent) => void; close: () => void } | undefined;
  const pool = startWorkers(count, (event) => {
    // Each worker announces its start: the display starts once.
    if (event.type === 'start') {
      if (started) return;
      started = true;
    }
    progress?.onEvent(event);
  });
  progress = options.terminal ? copyProgress(options.output, () => pool.snapshot()) : undefined;
  let signals = 0;
  const forward = (): void => {
    signals += 1;
    pool.signal('SIGINT');
    if (signals <= 2) progress?.onEvent({ type: 'stopping', mode: signals === 1 ? 'drain' : 'abort' });
    if (signals >= 3) {
      process.stderr.write('\nStopped at once; run the same command again to carry on.\n');
      process.exit(EXIT.interrupted);
    }
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  try {
    const code = await pool.done;
    progress?.onEvent({ type: 'finish', stats: pool.snapshot() });
    progress?.close();
    return await options.finish(code, pool.snapshot());
  } finally {
    progress?.close();
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
  }
}
