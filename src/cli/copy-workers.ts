import { spawn, type ChildProcess } from 'node:child_process';
import type { CopyEvent, CopyStats } from '../copy/events.js';
import { EXIT } from './exit-codes.js';

/**
 * `copy --workers N` on one machine: N worker processes of this same command share the state (SQLite
 * file in WAL mode, or PostgreSQL), claiming rows with leases. This side starts them, forwards each
 * Ctrl+C to them (they run in a process group of their own, so a terminal's Ctrl+C reaches them once,
 * through us), combines their progress into one display and their exit codes into one.
 */

/** What a worker child sends over its IPC channel. */
export type WorkerMessage =
  | { type: 'stats'; stats: CopyStats }
  | { type: 'event'; event: CopyEvent }
  /** The error that ends this worker's run (missing bucket, refused credentials, state unusable). */
  | { type: 'fatal'; message: string; exitCode: number };

/** Set in a worker child's environment: how many workers share the run's totals (bandwidth, memory). */
export const WORKER_SHARE_VARIABLE = 'S3MIGRATE_WORKER_SHARE';

/** Set to `all` when the parent writes a log: workers then forward every event, not only notable ones. */
export const WORKER_EVENTS_VARIABLE = 'S3MIGRATE_WORKER_EVENTS';

/** In a worker child: how many workers share the run (undefined when this is not one). */
export function workerShare(env: NodeJS.ProcessEnv): number | undefined {
  const share = Number(env[WORKER_SHARE_VARIABLE]);
  return Number.isInteger(share) && share > 1 && typeof process.send === 'function' ? share : undefined;
}

export interface ParentReport {
  stats(stats: CopyStats): void;
  event(event: CopyEvent): void;
  /** Resolves once the message is handed to the channel (before the worker exits). */
  fatal(message: string, exitCode: number): Promise<void>;
}

/** In a worker child: reports stats and events to the parent; exits at once if the parent is gone. */
export function reportToParent(): ParentReport {
  // The parent died (kill -9 of the whole run): stop as abruptly, leases left for the next run to take over.
  process.on('disconnect', () => process.exit(EXIT.interrupted));
  // The channel must not keep a finished worker alive.
  process.channel?.unref();
  const send = (message: WorkerMessage): void => {
    if (process.connected) process.send!(message);
  };
  return {
    stats: (stats) => send({ type: 'stats', stats }),
    event: (event) => send({ type: 'event', event }),
    fatal: (message, exitCode) =>
      new Promise<void>((resolve) => {
        if (!process.connected) return resolve();
        process.send!({ type: 'fatal', message, exitCode } satisfies WorkerMessage, undefined, {}, () => resolve());
      }),
  };
}

export interface WorkerPool {
  /** Combined stats of all workers (their own copies summed; totals from the state). */
  snapshot(): CopyStats;
  /** Forwards a signal to every worker still running. */
  signal(signal: NodeJS.Signals): void;
  /** Resolves with the run's exit code once every worker ended. */
  done: Promise<number>;
}

export interface WorkerCallbacks {
  onEvent(event: CopyEvent): void;
  onFatal(message: string, exitCode: number): void;
  /** Forward every event (the parent writes a log), not only those the display shows. */
  allEvents: boolean;
}

/** Starts `count` workers running this process's own command line, in worker mode. */
export function startWorkers(count: number, callbacks: WorkerCallbacks): WorkerPool {
  const latest: Array<CopyStats | undefined> = new Array(count).fill(undefined);
  const children: ChildProcess[] = [];
  const exits: Array<Promise<number>> = [];
  for (let index = 0; index < count; index += 1) {
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...process.argv.slice(2)], {
      env: {
        ...process.env,
        [WORKER_SHARE_VARIABLE]: String(count),
        [WORKER_EVENTS_VARIABLE]: callbacks.allEvents ? 'all' : 'notable',
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      detached: true,
    });
    child.on('message', (message: WorkerMessage) => {
      if (message.type === 'stats') latest[index] = message.stats;
      else if (message.type === 'event') callbacks.onEvent(message.event);
      else callbacks.onFatal(message.message, message.exitCode);
    });
    children.push(child);
    exits.push(
      new Promise<number>((resolve) => {
        child.on('error', () => resolve(EXIT.fatal));
        child.on('exit', (code, signal) => resolve(code ?? (signal ? EXIT.interrupted : EXIT.fatal)));
      }),
    );
  }
  const started = Date.now();
  return {
    snapshot: () => combine(latest.filter((stats): stats is CopyStats => stats !== undefined), started),
    signal: (signal) => {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    done: Promise.all(exits).then(mergeExitCodes),
  };
}

/** One exit code for the run: interrupted wins, then a fatal error, then failed objects, then archived ones, else 0. */
export function mergeExitCodes(codes: readonly number[]): number {
  const finished: readonly number[] = [EXIT.ok, EXIT.incomplete, EXIT.usage, EXIT.archived];
  if (codes.includes(EXIT.interrupted)) return EXIT.interrupted;
  if (codes.some((code) => !finished.includes(code))) return EXIT.fatal;
  if (codes.includes(EXIT.usage)) return EXIT.usage;
  if (codes.includes(EXIT.incomplete)) return EXIT.incomplete;
  if (codes.includes(EXIT.archived)) return EXIT.archived;
  return EXIT.ok;
}

/**
 * Sums what the workers copied. Each worker's done counts start from the state as it found it; the
 * earliest such start, plus everything copied since, never counts an object twice.
 */
export function combine(all: readonly CopyStats[], started: number): CopyStats {
  const sum = (pick: (stats: CopyStats) => number): number => all.reduce((total, stats) => total + pick(stats), 0);
  const startDone = all.length === 0 ? 0 : Math.min(...all.map((stats) => stats.objectsDone - stats.objectsCopied));
  const startBytes = all.length === 0 ? 0 : Math.min(...all.map((stats) => stats.bytesDone - stats.bytesCopied));
  return {
    objectsTotal: Math.max(0, ...all.map((stats) => stats.objectsTotal)),
    bytesTotal: Math.max(0, ...all.map((stats) => stats.bytesTotal)),
    objectsDone: startDone + sum((stats) => stats.objectsCopied),
    bytesDone: startBytes + sum((stats) => stats.bytesCopied),
    objectsFailed: sum((stats) => stats.objectsFailed),
    objectsChanged: sum((stats) => stats.objectsChanged),
    objectsGone: sum((stats) => stats.objectsGone),
    objectsCopied: sum((stats) => stats.objectsCopied),
    bytesCopied: sum((stats) => stats.bytesCopied),
    inFlight: sum((stats) => stats.inFlight),
    bytesTransferred: sum((stats) => stats.bytesTransferred),
    concurrency: sum((stats) => stats.concurrency),
    elapsedMs: Date.now() - started,
  };
}
