import type { DeleteEvent } from '../copy/delete-gone.js';
import type { CopyEvent, CopyStats } from '../copy/events.js';
import type { OutcomeCounts } from '../state/store.js';
import type { EndpointLocation } from '../state/types.js';
import { statsLine } from './copy-progress.js';
import { formatBytes, formatCount } from './format.js';
import {
  endpointHost,
  JsonLines,
  runStartFields,
  s3Url,
  showKey,
  TextLines,
  type RunOutcome,
} from './log-lines.js';
import type { LogTarget } from './log-sink.js';

/** What the command knows once the migration is resolved (written in run-start). */
export interface CopyLogInfo {
  source: EndpointLocation;
  destination: EndpointLocation;
  /** False when the catalog's listing was interrupted: the run copies what is listed so far. */
  catalogComplete: boolean;
  /** The engine's live numbers (periodic lines of a text log). */
  snapshot: () => CopyStats;
}

export interface CopyRunEnd {
  outcome: RunOutcome;
  exitCode: number;
  /** The engine's numbers, when it was created. */
  stats?: CopyStats;
  /** Rows of the whole state that decide the exit code, when the run got that far. */
  outcomes?: OutcomeCounts;
  /** Why the run failed (outcome `failed`). */
  error?: string;
}

/** A copy run's log: JSON lines or timestamped plain lines (see docs/logs.md). */
export interface CopyLog {
  describe(info: CopyLogInfo): void;
  onEvent(event: CopyEvent): void;
  /** One outcome of --delete-gone: a destination object deleted, or left alone (with why). */
  deletion(event: DeleteEvent): void;
  /** Writes run-end (and run-start first, if the run ended before it began copying). Call once. */
  end(end: CopyRunEnd): void;
  /** Stops timers; the caller closes the sink. */
  close(): void;
}

export interface CopyLogOptions {
  /** The flags as parsed; URL-like values are redacted. */
  flags: Record<string, unknown>;
  /** Seconds between progress lines in a text log. */
  intervalSeconds: number;
}

const NO_LOG: CopyLog = {
  describe: () => undefined,
  onEvent: () => undefined,
  deletion: () => undefined,
  end: () => undefined,
  close: () => undefined,
};

export function copyLog(target: LogTarget, options: CopyLogOptions): CopyLog {
  if (!target.sink) return NO_LOG;
  return target.format === 'json'
    ? jsonCopyLog(new JsonLines(target.sink, 'copy'), options)
    : textCopyLog(new TextLines(target.sink), options);
}

type StartEvent = Extract<CopyEvent, { type: 'start' }>;

function jsonCopyLog(lines: JsonLines, options: CopyLogOptions): CopyLog {
  const started = lines.startedAt;
  let info: CopyLogInfo | undefined;
  let begun = false;
  /** The engine counted the state (its start event): the totals of run-end mean something. */
  let counted = false;
  let ended = false;
  // Lines from before run-start (crash recovery, a stop during the bucket checks), written after it:
  // run-start's ts is the run's start, so the file stays in time order.
  const held: Array<[string, Record<string, unknown>, number]> = [];
  const write = (event: string, fields: Record<string, unknown>): void => {
    if (begun) lines.write(event, fields);
    else held.push([event, fields, Date.now()]);
  };
  const runStart = (start: StartEvent | undefined): void => {
    if (begun) return;
    begun = true;
    lines.write(
      'run-start',
      {
        ...runStartFields(options.flags),
        source: s3Url(info?.source),
        destination: s3Url(info?.destination),
        sourceEndpoint: endpointHost(info?.source),
        destEndpoint: endpointHost(info?.destination),
        catalogComplete: info?.catalogComplete ?? null,
        stateRunId: start?.runId ?? null,
        objectsTotal: start?.objectsTotal ?? null,
        bytesTotal: start?.bytesTotal ?? null,
        objectsAlreadyDone: start?.objectsAlreadyDone ?? null,
        bytesAlreadyDone: start?.bytesAlreadyDone ?? null,
      },
      started,
    );
    for (const [event, fields, at] of held.splice(0)) lines.write(event, fields, at);
  };
  return {
    describe(described) {
      info = described;
    },
    onEvent(event) {
      switch (event.type) {
        case 'start':
          counted = true;
          runStart(event);
          break;
        case 'recovered':
          write('recovered', { done: event.done, pending: event.pending });
          break;
        case 'object-done':
          write('object-done', {
            key: event.key,
            size: event.size,
            destKey: event.destKey,
            evidence: event.evidence,
            attempts: event.attempts,
            durationMs: event.durationMs,
          });
          break;
        case 'object-failed':
          write('object-failed', {
            key: event.key,
            size: event.size,
            attempts: event.attempts,
            durationMs: event.durationMs,
            error: event.error,
            errorCode: event.errorCode,
            side: event.side,
          });
          break;
        case 'object-retry':
          write('object-retry', {
            key: event.key,
            attempt: event.attempt,
            error: event.error,
            errorCode: event.errorCode,
            side: event.side,
            delayMs: event.delayMs,
          });
          break;
        case 'object-changed':
          write('object-changed', { key: event.key, size: event.size, reason: event.reason });
          break;
        case 'object-gone':
          write('object-gone', { key: event.key, size: event.size });
          break;
        case 'object-skipped':
          write('object-skipped', { key: event.key, size: event.size, reason: event.reason });
          break;
        case 'upload-restarted':
          // The engine names the destination key here.
          write('upload-restarted', { destKey: event.key, reason: event.reason });
          break;
        case 'server-side-refused':
          write('server-side-refused', { reason: event.reason });
          break;
        case 'lease-lost':
          write('lease-lost', { key: event.key });
          break;
        case 'throttled':
          write('throttled', { concurrency: event.concurrency });
          break;
        case 'stopping':
          write('stopping', { mode: event.mode });
          break;
        case 'recovering':
        case 'finish':
          break;
        default:
          unhandled(event);
      }
    },
    deletion(event) {
      if (event.type === 'deleted') write('object-deleted', { key: event.key, destKey: event.destKey, size: event.size });
      else write('object-left-alone', { key: event.key, destKey: event.destKey, reason: event.reason });
    },
    end(end) {
      if (ended) return;
      ended = true;
      runStart(undefined);
      const stats = end.stats;
      lines.write('run-end', {
        outcome: end.outcome,
        exitCode: end.exitCode,
        elapsedMs: Date.now() - started,
        objectsCopied: stats?.objectsCopied ?? 0,
        bytesCopied: stats?.bytesCopied ?? 0,
        objectsFailed: stats?.objectsFailed ?? 0,
        objectsChanged: stats?.objectsChanged ?? 0,
        objectsGone: stats?.objectsGone ?? 0,
        objectsTotal: counted && stats ? stats.objectsTotal : null,
        bytesTotal: counted && stats ? stats.bytesTotal : null,
        objectsDone: counted && stats ? stats.objectsDone : null,
        bytesDone: counted && stats ? stats.bytesDone : null,
        stateFailed: end.outcomes?.failed ?? null,
        stateChanged: end.outcomes?.changed ?? null,
        stateGone: end.outcomes?.gone ?? null,
        stateUnproven: end.outcomes?.unproven ?? null,
        error: end.error ?? null,
      });
    },
    close: () => undefined,
  };
}

/** A new kind of engine event fails the build here until the logs say what to write for it. */
function unhandled(event: never): void {
  void event;
}

function attemptsText(attempts: number): string {
  return `${attempts} attempt${attempts === 1 ? '' : 's'}`;
}

function durationText(ms: number): string {
  return ms < 10_000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** The plain lines of a non-terminal run, every object's outcome and retry too, each with its time. */
function textCopyLog(lines: TextLines, options: CopyLogOptions): CopyLog {
  let info: CopyLogInfo | undefined;
  let timer: NodeJS.Timeout | undefined;
  let ended = false;
  const stopTimer = (): void => {
    if (timer) clearInterval(timer);
    timer = undefined;
  };
  return {
    describe(described) {
      info = described;
    },
    onEvent(event) {
      switch (event.type) {
        case 'recovering':
          lines.write(`Checking ${event.rows} objects a previous run left in flight...`);
          break;
        case 'recovered':
          lines.write(`  ${event.done} already at the destination, ${event.pending} to copy again`);
          break;
        case 'start':
          lines.write(
            `Copying ${info ? `${s3Url(info.source)} at ${endpointHost(info.source)} to ${s3Url(info.destination)} at ${endpointHost(info.destination)}: ` : ''}` +
              `${formatCount(event.objectsTotal - event.objectsAlreadyDone)} objects ` +
              `(${formatBytes(event.bytesTotal - event.bytesAlreadyDone)}); ` +
              `${formatCount(event.objectsAlreadyDone)} already done (run ${event.runId} in the state)` +
              `${info && !info.catalogComplete ? '; the catalog is incomplete (its listing was interrupted)' : ''}`,
          );
          if (info && !timer) {
            const snapshot = info.snapshot;
            timer = setInterval(() => lines.write(`[copy] ${statsLine(snapshot())}`), options.intervalSeconds * 1000);
            timer.unref();
          }
          break;
        case 'object-done':
          lines.write(
            `done: ${showKey(event.key)}${event.destKey !== event.key ? ` -> ${showKey(event.destKey)}` : ''} ` +
              `(${formatBytes(event.size)} in ${durationText(event.durationMs)}, ${attemptsText(event.attempts)}, evidence ${event.evidence})`,
          );
          break;
        case 'object-retry':
          lines.write(
            `retry: ${showKey(event.key)}: attempt ${event.attempt} failed: ${event.error}; next in ${durationText(event.delayMs)}`,
          );
          break;
        case 'object-failed':
          lines.write(`failed: ${showKey(event.key)}: ${event.error} (${attemptsText(event.attempts)})`);
          break;
        case 'object-changed':
          lines.write(`changed: ${showKey(event.key)}: ${event.reason}`);
          break;
        case 'object-gone':
          lines.write(`gone: ${showKey(event.key)}: deleted from the source since the catalog`);
          break;
        case 'object-skipped':
          lines.write(`skipped: ${showKey(event.key)}: ${event.reason}`);
          break;
        case 'upload-restarted':
          lines.write(`${showKey(event.key)}: starting its multipart upload over: ${event.reason}`);
          break;
        case 'server-side-refused':
          lines.write(`The destination refused server-side copies (${event.reason}); streaming every object instead`);
          break;
        case 'lease-lost':
          lines.write(`${showKey(event.key)}: its lease ran out and another worker took it over`);
          break;
        case 'throttled':
          lines.write(`The service asks to slow down: ${event.concurrency} objects in flight now`);
          break;
        case 'stopping':
          lines.write(
            event.mode === 'drain'
              ? 'Stopping: letting in-flight objects (and the parts in flight of large ones) finish'
              : 'Stopping at once: in-flight objects stay pending, multipart uploads are kept for the next run',
          );
          break;
        case 'finish':
          stopTimer();
          break;
        default:
          unhandled(event);
      }
    },
    deletion(event) {
      if (event.type === 'deleted') lines.write(`deleted: ${showKey(event.destKey)} (gone from the source as ${showKey(event.key)})`);
      else lines.write(`left alone: ${showKey(event.destKey)}: ${event.reason}`);
    },
    end(end) {
      if (ended) return;
      ended = true;
      stopTimer();
      const stats = end.stats ? statsLine(end.stats) : '';
      if (end.outcome === 'failed') lines.write(`Failed: ${end.error ?? 'unknown error'} (exit ${end.exitCode})`);
      else lines.write(`${end.outcome === 'interrupted' ? 'Stopped' : 'Finished'}: ${stats} (exit ${end.exitCode})`);
      const left = end.outcomes;
      if (left && (left.failed > 0 || left.changed > 0 || left.gone > 0)) {
        lines.write(`In the state: ${left.failed} failed, ${left.changed} changed at the source, ${left.gone} gone from the source`);
      }
    },
    close() {
      stopTimer();
    },
  };
}
