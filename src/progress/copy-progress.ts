import { createRequire } from 'node:module';
import type cliProgress from 'cli-progress';
import type { CopyEvent, CopyStats } from '../copy/events.js';
import { formatBytes, formatCount, formatDuration, percent } from './format.js';
import type { ProgressOutput } from './output.js';

/** cli-progress, loaded only when bars are drawn: runs that are quiet, piped or logged skip its ~9 ms of start-up. */
const loadCliProgress = (): typeof cliProgress => createRequire(import.meta.url)('cli-progress') as typeof cliProgress;

export interface CopyProgress {
  onEvent: (event: CopyEvent) => void;
  /** Stops timers and bars; call once the run is over. */
  close: () => void;
}

function describe(stats: CopyStats): { mibPerSecond: number; objectsPerSecond: number; eta: string } {
  const seconds = Math.max(stats.elapsedMs / 1000, 0.001);
  const bytesPerSecond = stats.bytesTransferred / seconds;
  const remaining = stats.bytesTotal - stats.bytesDone;
  return {
    mibPerSecond: bytesPerSecond / 1024 / 1024,
    objectsPerSecond: stats.objectsCopied / seconds,
    eta: bytesPerSecond > 0 ? formatDuration((remaining / bytesPerSecond) * 1000) : '--',
  };
}

export function statsLine(stats: CopyStats): string {
  const rate = describe(stats);
  return (
    `${formatCount(stats.objectsDone)}/${formatCount(stats.objectsTotal)} objects ` +
    `(${percent(stats.bytesDone, stats.bytesTotal)} of bytes), ` +
    `${formatBytes(stats.bytesDone)}/${formatBytes(stats.bytesTotal)}, ` +
    `${rate.mibPerSecond.toFixed(1)} MiB/s, ${rate.objectsPerSecond.toFixed(1)} obj/s, ` +
    `failed ${formatCount(stats.objectsFailed)}, in flight ${stats.inFlight}, ETA ${rate.eta}`
  );
}

/**
 * Renders a copy run from the engine's events and periodic snapshots. On a terminal: a cli-progress bar;
 * elsewhere: one plain line every `intervalSeconds`; quiet: only failures and the final summary.
 */
export function copyProgress(output: ProgressOutput, snapshot: () => CopyStats): CopyProgress {
  const { stream, mode } = output;
  let bars: cliProgress.MultiBar | undefined;
  let bar: cliProgress.SingleBar | undefined;
  let timer: NodeJS.Timeout | undefined;
  const log = (line: string): void => {
    if (bars) bars.log(`${line}\n`);
    else stream.write(`${line}\n`);
  };

  const refresh = (): void => {
    const stats = snapshot();
    if (bar) {
      const rate = describe(stats);
      bar.setTotal(Math.max(stats.objectsTotal, 1));
      bar.update(stats.objectsDone, {
        bytes: `${formatBytes(stats.bytesDone)}/${formatBytes(stats.bytesTotal)}`,
        mibs: rate.mibPerSecond.toFixed(1),
        ops: rate.objectsPerSecond.toFixed(0),
        etaText: rate.eta,
        failed: stats.objectsFailed,
      });
    } else if (mode === 'lines') {
      stream.write(`[copy] ${statsLine(stats)}\n`);
    }
  };

  const start = (): void => {
    if (mode === 'bars') {
      const { MultiBar, Presets } = loadCliProgress();
      bars = new MultiBar(
        {
          stream,
          format:
            '{bar} {percentage}% | {value}/{total} objects | {bytes} | {mibs} MiB/s | {ops} obj/s | ETA {etaText} | failed {failed}',
          hideCursor: true,
          clearOnComplete: false,
          fps: 5,
        },
        Presets.shades_classic,
      );
      const first = snapshot();
      bar = bars.create(Math.max(first.objectsTotal, 1), first.objectsDone, {
        bytes: `${formatBytes(first.bytesDone)}/${formatBytes(first.bytesTotal)}`,
        mibs: '0.0',
        ops: '0',
        etaText: '--',
        failed: 0,
      });
      timer = setInterval(refresh, 200);
    } else if (mode === 'lines') {
      timer = setInterval(refresh, output.intervalSeconds * 1000);
    }
    timer?.unref();
  };

  return {
    onEvent(event) {
      switch (event.type) {
        case 'recovering':
          if (mode !== 'quiet') log(`Checking ${event.rows} objects a previous run left in flight...`);
          break;
        case 'recovered':
          if (mode !== 'quiet') log(`  ${event.done} already at the destination, ${event.pending} to copy again`);
          break;
        case 'start':
          if (mode !== 'quiet') {
            log(
              `Copying ${formatCount(event.objectsTotal - event.objectsAlreadyDone)} objects ` +
                `(${formatBytes(event.bytesTotal - event.bytesAlreadyDone)}); ` +
                `${formatCount(event.objectsAlreadyDone)} already done`,
            );
          }
          start();
          break;
        case 'object-failed':
          log(`failed: ${event.key}: ${event.error}`);
          break;
        case 'server-side-refused':
          if (mode !== 'quiet') log(`The destination refused server-side copies (${event.reason}); streaming every object through s3migrate instead`);
          break;
        case 'upload-restarted':
          if (mode !== 'quiet') log(`${event.key}: starting its multipart upload over: ${event.reason}`);
          break;
        case 'throttled':
          if (mode !== 'quiet') log(`The service asks to slow down: ${event.concurrency} objects in flight now`);
          break;
        case 'stopping':
          log(
            event.mode === 'drain'
              ? 'Stopping: letting in-flight objects (and the parts in flight of large ones) finish; Ctrl+C again to stop at once'
              : 'Stopping at once: in-flight objects stay pending, multipart uploads are kept for the next run (Ctrl+C again to exit now)',
          );
          break;
        case 'finish':
          refresh();
          break;
        default:
          break;
      }
    },
    close() {
      if (timer) clearInterval(timer);
      bars?.stop();
    },
  };
}
