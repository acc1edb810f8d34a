import type { CatalogEvent } from '../catalog/catalog.js';
import { formatCount, formatDuration } from './format.js';
import type { ProgressOutput } from './output.js';

/** Renders catalog events: a self-rewriting line on a terminal, a plain line every few seconds elsewhere. */
export function catalogProgress(output: ProgressOutput): (event: CatalogEvent) => void {
  let lastLine = 0;
  const write = (text: string): void => {
    if (output.mode !== 'quiet') output.stream.write(text);
  };
  return (event) => {
    switch (event.type) {
      case 'start':
        write(
          event.resumed
            ? `Resuming the listing (${formatCount(event.keysAlready)} keys already in the state file)\n`
            : `Listing the source (catalog pass ${event.pass})\n`,
        );
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
