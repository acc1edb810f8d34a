import { Command, Option } from 'commander';
import { SORT_ORDERS } from '../state/types.js';
import { loadEnvironment } from './environment.js';
import { EXIT } from './exit-codes.js';
import { addEndpointOptions, addFilterOptions, addStateOptions, checkFilterFlags, stateFromFlags } from './options.js';
import { addPriceOptions, checkPlanFlags, parseMaxDelete, planReport, PLAN_DEFAULTS, renderPlanReport, type PlanFlags } from './plan-report.js';
import { runAction } from './run-action.js';

const EXAMPLES = `
Examples:
  $ s3migrate plan
  $ s3migrate plan --include 'photos/**' --modified-after 2024-01-01 --json
  $ s3migrate plan --prices prices.json --dest-provider colo-minio
  $ DEST_ENDPOINT=https://ACCOUNT.r2.cloudflarestorage.com s3migrate plan --delete-gone

What \`s3migrate copy\` (with the same flags) would do with the rows still to copy: objects and bytes,
the requests on each side, an estimated time (from earlier copy runs of this state when they were
long enough to measure, else stated assumptions) and an estimated cost at each provider, from list
prices with their date (--prices FILE.json overrides them). Objects in archive storage classes
(GLACIER, DEEP_ARCHIVE) are counted apart: copy skips them. Sends no request to either bucket and
changes nothing in the state.`;

export function planCommand(): Command {
  const command = new Command('plan').description('Show what copy would do and what it would cost (reads the state only)');
  addStateOptions(command, 'state file made by `s3migrate catalog`')
    .option('--json', 'print one JSON document instead of text')
    .addOption(new Option('--sort <order>', 'copy order (does not change the plan)').choices([...SORT_ORDERS]).default('key'))
    .option('--multipart-threshold <size>', 'as copy: objects larger than this go as multipart uploads', PLAN_DEFAULTS.multipartThreshold)
    .option('--part-size <size>', 'as copy: multipart part size', PLAN_DEFAULTS.partSize)
    .option('--concurrency <n>', 'as copy: objects in flight (for the time estimate)', PLAN_DEFAULTS.concurrency)
    .option('--max-bandwidth <size>', 'as copy: bytes per second (caps the time estimate)')
    .option('--max-requests-per-second <n>', 'as copy: requests per second (caps the time estimate)')
    .option('--storage-class <class>', 'as copy: the storage class written (prices the destination requests), or keep')
    .option('--delete-gone', 'also list what copy --delete-gone would delete at the destination')
    .option('--max-delete <n>', 'as copy: warn when the deletions exceed it');
  addPriceOptions(command);
  addFilterOptions(command);
  addEndpointOptions(command, ['source', 'dest']);
  command.addHelpText('after', EXAMPLES);
  command.action((flags: PlanFlags) => runAction(() => plan(flags)));
  return command;
}

async function plan(flags: PlanFlags): Promise<number> {
  const env = loadEnvironment();
  // Checked before the state is opened: bad input changes nothing.
  checkFilterFlags(flags);
  checkPlanFlags(flags);
  const maxDelete = parseMaxDelete(flags.maxDelete);
  return printPlan(flags, env, maxDelete);
}

/** Opens the state read-only and prints the plan (also `copy --dry-run`). */
export async function printPlan(flags: PlanFlags, env: ReturnType<typeof loadEnvironment>, maxDelete: number | undefined): Promise<number> {
  const state = stateFromFlags(flags as { state?: string; migration?: string }, env);
  const { openStateStore } = await import('../state/open-store.js');
  const store = await openStateStore(state.location, { create: false, readonly: true, migration: state.migration, env });
  try {
    const report = await planReport(store, flags, env);
    process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : renderPlanReport(report, maxDelete));
    return EXIT.ok;
  } finally {
    await store.close();
  }
}
