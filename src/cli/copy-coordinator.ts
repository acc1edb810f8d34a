import type { CopyEvent, CopyStats } from '../copy/events.js';
import type { CopyLog } from '../progress/copy-log.js';
import type { ProgressOutput } from '../progress/output.js';
import { startWorkers } from './copy-workers.js';
import { EXIT } from './exit-codes.js';

export interface CoordinatorOptions {
  /** False when the JSON log goes to stderr: then the log's lines are the only output there. */
  terminal: boolean;
  output: ProgressOutput;
  /** The run's log, written here from the workers' events (workers write none). */
  log: CopyLog;
  /** Whether `log` writes anywhere: workers then forward every event, not only notable ones. */
  logging: boolean;
  /** Called once the workers are started, with the run's combined live numbers. */
  started: (snapshot: () => CopyStats) => void;
}

export interface CoordinatedRun {
  /** The workers' exit codes merged; a worker's fatal error decides it. */
  code: number;
  stats: CopyStats;
  /** The first fatal error a worker reported (the others were stopped then). */
  fatal?: { message: string; exitCode: number };
}

/**
 * Runs `count` worker processes of this copy and shows them as one run: one progress display of their
 * combined stats, one log, each Ctrl+C forwarded to all of them (the first drains, the second stops at
 * once, the third also ends this process at once), one exit code. A fatal error in one worker (a missing
 * bucket, refused credentials, an unusable state) stops the others at once: it would stop them too.
 */
export async function coordinateWorkers(count: number, options: CoordinatorOptions): Promise<CoordinatedRun> {
  const { copyProgress } = await import('../progress/copy-progress.js');
  let started = false;
  let fatal: CoordinatedRun['fatal'];
  let progress: { onEvent: (event: CopyEvent) => void; close: () => void } | undefined;
  const pool = startWorkers(count, {
    allEvents: options.logging,
    onEvent: (event) => {
      // Stops and the end are this side's to announce, once.
      if (event.type === 'stopping' || event.type === 'finish') return;
      // Each worker announces its start: the display and the log start once.
      if (event.type === 'start') {
        if (started) return;
        started = true;
      }
      progress?.onEvent(event);
      options.log.onEvent(event);
    },
    onFatal: (message, exitCode) => {
      if (fatal) return;
      fatal = { message, exitCode };
      pool.signal('SIGINT');
      pool.signal('SIGINT');
    },
  });
  options.started(() => pool.snapshot());
  progress = options.terminal ? copyProgress(options.output, () => pool.snapshot()) : undefined;
  let signals = 0;
  const forward = (): void => {
    signals += 1;
    pool.signal('SIGINT');
    if (signals <= 2) {
      const stopping: CopyEvent = { type: 'stopping', mode: signals === 1 ? 'drain' : 'abort' };
      progress?.onEvent(stopping);
      options.log.onEvent(stopping);
    }
    if (signals >= 3) {
      if (options.terminal) process.stderr.write('\nStopped at once; run the same command again to carry on.\n');
      process.exit(EXIT.interrupted);
    }
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  try {
    const merged = await pool.done;
    progress?.onEvent({ type: 'finish', stats: pool.snapshot() });
    progress?.close();
    return { code: fatal ? fatal.exitCode : merged, stats: pool.snapshot(), fatal };
  } finally {
    progress?.close();
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
  }
}
