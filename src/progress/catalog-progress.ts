import type { CatalogEvent } from '../catalog/catalog.js';
import { formatCount, formatDuration } from './format.js';
import type { ProgressOutput } from './output.js';

type StartEvent = Extract<CatalogEvent, { type: 'start' }>;

/** What a catalog run starts to do, in one line (progress and the text log); `where` names the source. */
export function describeCatalogStart(event: StartEvent, where = ''): string {
  const left = event.abandoned
    ? ` The interrupted catalog from ${event.abandoned.kind === 'inventory' ? `the inventory ${event.abandoned.manifestUrl}` : 'a listing'} is left behind: this pass starts over.`
    : '';
  if (event.source.kind === 'inventory') {
    const taken = `taken ${event.source.createdAt}`;
    return event.resumed
      ? `Resuming the inventory ${event.source.manifestUrl} (${taken}) at data file ${event.nextFile! + 1} of ${event.source.fileCount} ` +
          `(${formatCount(event.keysAlready)} keys already in the state file)`
      : `Reading the inventory ${event.source.manifestUrl} (${taken}, ${event.source.fileCount} data files) for${where || ' the source'} ` +
          `(catalog pass ${event.pass}).${left}`;
  }
  const parts = event.parts;
  const split = parts && parts.total > 1 ? `, ${parts.total} parts, ${Math.min(parts.concurrency, parts.total)} at once` : '';
  return event.resumed
    ? `Resuming the listing of${where || ' the source'} (${formatCount(event.keysAlready)} keys already in the state file` +
        `${parts && parts.total > 1 ? `; ${parts.done} of ${parts.total} parts done` : ''})`
    : `Listing${where ? ` the source${where}` : ' the source'} (catalog pass ${event.pass}${split}).${left}`;
}

/** Renders catalog events: a self-rewriting line on a terminal, a plain line every few seconds elsewhere. */
export function catalogProgress(output: ProgressOutput): (event: CatalogEvent) => void {
  let lastLine = 0;
  const write = (text: string): void => {
    if (output.mode !== 'quiet') output.stream.write(text);
  };
  return (event) => {
    switch (event.type) {
      case 'start':
        write(`${describeCatalogStart(event)}\n`);
        break;
      case 'page': {
        const rate = Math.round(event.keysListed / Math.max(event.elapsedMs / 1000, 0.001));
        const line = `listed ${formatCount(event.keysListed)} keys (${formatCount(rate)} keys/s)`;
        if (output.mode === 'bars') write(`\r${line}`);
        else if (output.mode === 'lines' && Date.now() - lastLine >= output.intervalSeconds * 1000) {
          lastLine = Date.now();
          write(`${line}\n`);
        }
        break;
      }
      case 'finish':
        if (output.mode === 'bars') write('\n');
        write(
          `Catalog complete: ${formatCount(event.keysListed)} keys listed in ${formatDuration(event.elapsedMs)}, ` +
            `${formatCount(event.totalKeys)} in the state file` +
            `${event.gone > 0 ? `, ${formatCount(event.gone)} gone from the source` : ''}\n`,
        );
        break;
    }
  };
}
