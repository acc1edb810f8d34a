import type { EndpointLocation } from '../state/types.js';
import { formatCount } from './format.js';
import { endpointHost, JsonLines, runStartFields, s3Url, TextLines, type RunOutcome } from './log-lines.js';
import type { LogTarget } from './log-sink.js';

export interface VerifyLogInfo {
  source: EndpointLocation;
  destination: EndpointLocation;
  deep: boolean;
}

export interface VerifyRunEnd {
  outcome: RunOutcome;
  exitCode: number;
  passed?: boolean;
  listed?: number;
  /** Rows per verify result (ok, missing, size-mismatch, ...). */
  results?: Record<string, number>;
  extraKeys?: number;
  error?: string;
}

/** A verify run's log: run-start and run-end (see docs/logs.md). */
export interface VerifyLog {
  /** Writes run-start. */
  begin(info: VerifyLogInfo): void;
  /** Writes run-end (and run-start first, if the run ended before it began). Call once. */
  end(end: VerifyRunEnd): void;
}

const NO_LOG: VerifyLog = { begin: () => undefined, end: () => undefined };

export function verifyLog(target: LogTarget, options: { flags: Record<string, unknown> }): VerifyLog {
  if (!target.sink) return NO_LOG;
  if (target.format === 'text') {
    const lines = new TextLines(target.sink);
    return {
      begin(info) {
        lines.write(
          `Verifying ${s3Url(info.destination)} at ${endpointHost(info.destination)} against the catalog of ` +
            `${s3Url(info.source)} at ${endpointHost(info.source)}${info.deep ? ' (--deep)' : ''}`,
        );
      },
      end(end) {
        if (end.outcome === 'failed') {
          lines.write(`Failed: ${end.error ?? 'unknown error'} (exit ${end.exitCode})`);
          return;
        }
        const counts = Object.entries(end.results ?? {})
          .filter(([, count]) => count > 0)
          .map(([result, count]) => `${result} ${formatCount(count)}`)
          .join(', ');
        lines.write(
          `${end.outcome === 'interrupted' ? 'Stopped' : end.passed ? 'Passed' : 'Did not pass'}: ` +
            `${formatCount(end.listed ?? 0)} destination objects listed${counts ? `; ${counts}` : ''} (exit ${end.exitCode})`,
        );
      },
    };
  }
  const lines = new JsonLines(target.sink, 'verify');
  let begun = false;
  let ended = false;
  const begin = (info: VerifyLogInfo | undefined): void => {
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
        deep: info?.deep ?? null,
      },
      lines.startedAt,
    );
  };
  return {
    begin,
    end(end) {
      if (ended) return;
      ended = true;
      begin(undefined);
      lines.write('run-end', {
        outcome: end.outcome,
        exitCode: end.exitCode,
        elapsedMs: Date.now() - lines.startedAt,
        passed: end.passed ?? null,
        listed: end.listed ?? null,
        results: end.results ?? null,
        extraKeys: end.extraKeys ?? null,
        error: end.error ?? null,
      });
    },
  };
}
