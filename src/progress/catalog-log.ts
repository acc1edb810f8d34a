import type { CatalogEvent } from '../catalog/catalog.js';
import type { EndpointLocation } from '../state/types.js';
import { describeCatalogStart } from './catalog-progress.js';
import { formatCount, formatDuration } from './format.js';
import { endpointHost, JsonLines, runStartFields, s3Url, TextLines, type RunOutcome } from './log-lines.js';
import type { LogTarget } from './log-sink.js';

export interface CatalogLogInfo {
  source: EndpointLocation;
  /** This run's row in the state's runs table. */
  stateRunId: number;
}

export interface CatalogRunEnd {
  outcome: RunOutcome;
  exitCode: number;
  keysListed?: number;
  totalKeys?: number;
  gone?: number;
  error?: string;
}

/** A catalog run's log: JSON lines or timestamped plain lines (see docs/logs.md). */
export interface CatalogLog {
  describe(info: CatalogLogInfo): void;
  onEvent(event: CatalogEvent): void;
  /** The first Ctrl+C: the listing stops after the page in hand. */
  stopping(): void;
  /** Writes run-end (and run-start first, if the run ended before the listing began). Call once. */
  end(end: CatalogRunEnd): void;
}

export interface CatalogLogOptions {
  flags: Record<string, unknown>;
  /** At most one `page` line per this many seconds (the first page is always logged). */
  intervalSeconds: number;
}

const NO_LOG: CatalogLog = { describe: () => undefined, onEvent: () => undefined, stopping: () => undefined, end: () => undefined };

export function catalogLog(target: LogTarget, options: CatalogLogOptions): CatalogLog {
  if (!target.sink) return NO_LOG;
  return target.format === 'json'
    ? jsonCatalogLog(new JsonLines(target.sink, 'catalog'), options)
    : textCatalogLog(new TextLines(target.sink), options);
}

type StartEvent = Extract<CatalogEvent, { type: 'start' }>;

function jsonCatalogLog(lines: JsonLines, options: CatalogLogOptions): CatalogLog {
  let info: CatalogLogInfo | undefined;
  let begun = false;
  let ended = false;
  let lastPage = 0;
  const held: Array<[string, Record<string, unknown>, number]> = [];
  const runStart = (start: StartEvent | undefined): void => {
    if (begun) return;
    begun = true;
    lines.write(
      'run-start',
      {
        ...runStartFields(options.flags),
        source: s3Url(info?.source),
        sourceEndpoint: endpointHost(info?.source),
        stateRunId: info?.stateRunId ?? null,
        resumed: start?.resumed ?? null,
        pass: start?.pass ?? null,
        keysAlready: start?.keysAlready ?? null,
        catalogSource: start ? start.source.kind : null,
        listConcurrency: start?.parts?.concurrency ?? null,
        parts: start?.parts?.total ?? null,
        partsDone: start?.parts?.done ?? null,
        inventory: start?.source.kind === 'inventory' ? start.source.manifestUrl : null,
        inventoryCreatedAt: start?.source.kind === 'inventory' ? start.source.createdAt : null,
        nextFile: start?.source.kind === 'inventory' ? (start.nextFile ?? 0) : null,
      },
      lines.startedAt,
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
          runStart(event);
          break;
        case 'page':
          if (lastPage === 0 || Date.now() - lastPage >= options.intervalSeconds * 1000) {
            lastPage = Date.now();
            lines.write('page', { keysListed: event.keysListed, pages: event.pages, elapsedMs: event.elapsedMs });
          }
          break;
        case 'finish':
          break;
      }
    },
    stopping() {
      if (begun) lines.write('stopping', { mode: 'drain' });
      else held.push(['stopping', { mode: 'drain' }, Date.now()]);
    },
    end(end) {
      if (ended) return;
      ended = true;
      runStart(undefined);
      lines.write('run-end', {
        outcome: end.outcome,
        exitCode: end.exitCode,
        elapsedMs: Date.now() - lines.startedAt,
        keysListed: end.keysListed ?? 0,
        totalKeys: end.totalKeys ?? null,
        gone: end.gone ?? 0,
        error: end.error ?? null,
      });
    },
  };
}

function textCatalogLog(lines: TextLines, options: CatalogLogOptions): CatalogLog {
  let info: CatalogLogInfo | undefined;
  let lastPage = 0;
  let ended = false;
  return {
    describe(described) {
      info = described;
    },
    onEvent(event) {
      const where = info ? ` ${s3Url(info.source)} at ${endpointHost(info.source)}` : '';
      switch (event.type) {
        case 'start':
          lines.write(describeCatalogStart(event, where));
          break;
        case 'page':
          if (lastPage === 0 || Date.now() - lastPage >= options.intervalSeconds * 1000) {
            lastPage = Date.now();
            const rate = Math.round(event.keysListed / Math.max(event.elapsedMs / 1000, 0.001));
            lines.write(`listed ${formatCount(event.keysListed)} keys (${formatCount(rate)} keys/s)`);
          }
          break;
        case 'finish':
          lines.write(
            `Catalog complete: ${formatCount(event.keysListed)} keys listed in ${formatDuration(event.elapsedMs)}, ` +
              `${formatCount(event.totalKeys)} in the state file` +
              `${event.gone > 0 ? `, ${formatCount(event.gone)} gone from the source` : ''}`,
          );
          break;
      }
    },
    stopping() {
      lines.write('Stopping the listing; run the same command again to continue.');
    },
    end(end) {
      if (ended) return;
      ended = true;
      if (end.outcome === 'failed') lines.write(`Failed: ${end.error ?? 'unknown error'} (exit ${end.exitCode})`);
      else {
        lines.write(
          `${end.outcome === 'interrupted' ? 'Stopped' : 'Finished'}: ${formatCount(end.keysListed ?? 0)} keys listed (exit ${end.exitCode})`,
        );
      }
    },
  };
}
