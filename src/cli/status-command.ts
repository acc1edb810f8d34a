import { Command } from 'commander';
import { describeLocation } from '../config/s3-url.js';
import { formatBytes, formatCount, percent } from '../progress/format.js';
import type { StateSummary, StatusCount } from '../state/types.js';
import { loadEnvironment } from './environment.js';
import { EXIT } from './exit-codes.js';
import { addFilterOptions, addStateOptions, checkFilterFlags, filterFromFlags, filterText, stateFromFlags, type FilterOptionFlags } from './options.js';
import { runAction } from './run-action.js';

interface StatusFlags extends FilterOptionFlags {
  state?: string;
  migration?: string;
  json?: boolean;
}

const EXAMPLES = `
Examples:
  $ s3migrate status
  $ s3migrate status --state photos.db --json | jq .percentDone
  $ sqlite3 state.db 'select * from status_summary'
  $ s3migrate status --state postgres://s3migrate@db.example.com/s3migrate --migration photos --json
  $ s3migrate status --include 'photos/**' --modified-after 2024-01-01   # what this filter selects

Shows what the last catalog pass found (new, modified and gone objects) and, with filter flags,
the objects and bytes per status that the filter selects (the wave a copy with them would take).`;

export function statusCommand(): Command {
  const command = addStateOptions(
    new Command('status').description('Show how far the migration is: counts and bytes per status, verification, recent errors'),
    'state file',
  ).option('--json', 'print one JSON document instead of text');
  return addFilterOptions(command)
    .addHelpText('after', EXAMPLES)
    .action((flags: StatusFlags) => runAction(() => status(flags)));
}

async function status(flags: StatusFlags): Promise<number> {
  const env = loadEnvironment();
  const state = stateFromFlags(flags, env);
  checkFilterFlags(flags);
  const { openStateStore, isPostgresUrl } = await import('../state/open-store.js');
  const store = await openStateStore(state.location, { create: false, readonly: true, migration: state.migration, env });
  try {
    const summary = await store.summary();
    const filter = filterFromFlags(flags, summary.source?.prefix ?? '');
    const selection = filter ? { filter: filterText(flags)!, counts: await store.selectionCounts(filter) } : undefined;
    // A PostgreSQL state is named with its migration: the URL alone does not say which one.
    const shown = isPostgresUrl(state.location) ? store.location : state.location;
    process.stdout.write(flags.json ? `${JSON.stringify(toJson(shown, summary, selection), null, 2)}\n` : render(shown, summary, selection));
    return EXIT.ok;
  } finally {
    await store.close();
  }
}

interface Selection {
  filter: string;
  counts: StatusCount[];
}

function toJson(statePath: string, summary: StateSummary, selection: Selection | undefined): unknown {
  return {
    stateFile: statePath,
    ...summary,
    ...(selection ? { selection } : {}),
    percentDone: summary.objectsTotal === 0 ? 100 : Number(((100 * summary.objectsDone) / summary.objectsTotal).toFixed(2)),
  };
}

/** The catalog's state and where it came from: a listing (its parts) or an inventory report (when taken). */
function describeCatalog(s: StateSummary): string {
  const source = s.catalogSource;
  const complete = s.catalogState === 'complete';
  if (source?.kind === 'inventory') {
    const from = `from the inventory ${source.manifestUrl}, taken ${source.createdAt}`;
    return complete
      ? `complete, finished ${s.catalogFinishedAt}, ${from}`
      : `incomplete (${from}: ${source.filesDone} of ${source.files} data files read; run catalog again)`;
  }
  const parts = source && source.parts > 1 ? `${source.partsDone} of ${source.parts} parts done; ` : '';
  return complete
    ? `complete, finished ${s.catalogFinishedAt}, from a listing${source && source.parts > 1 ? ` in ${source.parts} parts` : ''}`
    : `incomplete (listing interrupted: ${parts}run catalog again)`;
}

function render(statePath: string, s: StateSummary, selection: Selection | undefined): string {
  const lines = [
    `State file: ${statePath}`,
    `Source:     ${s.source ? describeLocation(s.source) : '(no catalog yet)'}`,
    `Catalog:    ${describeCatalog(s)}`,
    `Progress:   ${formatCount(s.objectsDone)} of ${formatCount(s.objectsTotal)} objects done (${percent(s.objectsDone, s.objectsTotal)}), ` +
      `${formatBytes(s.bytesDone)} of ${formatBytes(s.bytesTotal)} (${percent(s.bytesDone, s.bytesTotal)})`,
    '',
    '  status        objects          bytes',
    ...s.counts.map(
      (c) => `  ${c.status.padEnd(10)} ${formatCount(c.objects).padStart(10)} ${formatBytes(c.bytes).padStart(14)}`,
    ),
  ];
  const delta = s.lastCatalogPass;
  if (delta) {
    const part = (label: string, c: { objects: number; bytes: number }): string => `${label} ${formatCount(c.objects)} (${formatBytes(c.bytes)})`;
    lines.push(
      '',
      `Last catalog pass (#${delta.pass}, finished ${delta.finishedAt}${delta.scope ? `, limited to ${delta.scope}` : ''}): ` +
        `${part('new', delta.new)}, ${part('modified', delta.modified)}, ${part('gone', delta.gone)}`,
    );
  }
  if (selection) {
    const total = selection.counts.reduce((sum, c) => ({ objects: sum.objects + c.objects, bytes: sum.bytes + c.bytes }), { objects: 0, bytes: 0 });
    lines.push('', `Selected by ${selection.filter}: ${formatCount(total.objects)} objects, ${formatBytes(total.bytes)}`);
    for (const c of selection.counts) {
      lines.push(`  ${c.status.padEnd(10)} ${formatCount(c.objects).padStart(10)} ${formatBytes(c.bytes).padStart(14)}`);
    }
  }
  if (s.evidenceCounts.length > 0) {
    lines.push('', `Evidence:   ${s.evidenceCounts.map((v) => `${v.evidence} ${formatCount(v.objects)}`).join(', ')} (what done rows were checked against)`);
  }
  const count = (status: string): number => s.counts.find((c) => c.status === status)?.objects ?? 0;
  if (count('changed') > 0) {
    lines.push(`Changed:    ${formatCount(count('changed'))} objects changed at the source since the catalog: run \`s3migrate catalog\` again, then copy`);
  }
  if (count('archived') > 0) {
    lines.push(
      `Archived:   ${formatCount(count('archived'))} objects in an archive storage class (GLACIER, DEEP_ARCHIVE), not copied: ` +
        'restore them at the source, then catalog and copy again',
    );
  }
  if (count('deleted') > 0) {
    lines.push(`Deleted:    ${formatCount(count('deleted'))} objects gone from the source were deleted from the destination (copy --delete-gone)`);
  }
  if (count('unproven') > 0) {
    lines.push(
      `Unproven:   ${formatCount(count('unproven'))} objects an earlier version marked done on size alone: ` +
        '`s3migrate verify --deep` proves them in place, `s3migrate copy` copies them again',
    );
  }
  if (s.verifyResults.some((v) => v.result !== 'not-verified')) {
    lines.push(`Verify:     ${s.verifyResults.map((v) => `${v.result} ${formatCount(v.objects)}`).join(', ')} (last verify)`);
  }
  if (s.openUploads.count > 0) {
    lines.push(
      `Uploads:    ${formatCount(s.openUploads.count)} multipart uploads kept for resumption, ${formatBytes(s.openUploads.bytesDone)} of parts stored ` +
        '(the next copy resumes them; `s3migrate abort-uploads` aborts them)',
    );
    for (const upload of s.openUploads.sample) {
      lines.push(
        `  ${upload.key}: ${formatCount(upload.partsDone)}/${formatCount(upload.partCount)} parts, ` +
          `${formatBytes(upload.bytesDone)} of ${formatBytes(upload.size)}, since ${upload.startedAt}`,
      );
    }
  }
  if (s.lastRun) {
    lines.push(`Last run:   ${s.lastRun.command}, ${s.lastRun.outcome}, started ${s.lastRun.startedAt}`);
  }
  if (s.recentErrors.length > 0) {
    lines.push('', 'Recent errors:');
    for (const e of s.recentErrors) lines.push(`  ${e.key} (attempts ${e.attempts}): ${e.error}`);
  }
  return `${lines.join('\n')}\n`;
}
