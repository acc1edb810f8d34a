import { Command } from 'commander';
import { describeEndpoint } from '../config/endpoint-config.js';
import { parseS3Url } from '../config/s3-url.js';
import { catalogLog } from '../progress/catalog-log.js';
import { catalogProgress } from '../progress/catalog-progress.js';
import { openLogTarget, type LogFormat } from '../progress/log-sink.js';
import { chooseProgressMode } from '../progress/output.js';
import type { StateStore } from '../state/store.js';
import { loadEnvironment } from './environment.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import {
  addEndpointOptions,
  addFilterOptions,
  addLogOptions,
  addStateOptions,
  endpointConfigFromFlags,
  filterFromFlags,
  filterText,
  parsePositiveInteger,
  stateFromFlags,
  type FilterOptionFlags,
} from './options.js';
import { onInterrupt, runAction } from './run-action.js';

interface CatalogFlags extends FilterOptionFlags {
  from: string;
  state?: string;
  migration?: string;
  quiet?: boolean;
  progressInterval: string;
  logFormat: LogFormat;
  logFile?: string;
  [flag: string]: string | string[] | boolean | undefined;
}

const EXAMPLES = `
Examples:
  $ s3migrate catalog --from s3://my-bucket
  $ s3migrate catalog --from s3://my-bucket/photos/ --state photos.db
  $ PGPASSWORD=... s3migrate catalog --from s3://my-bucket --state postgres://s3migrate@db.example.com/s3migrate --migration photos
  $ SOURCE_ENDPOINT=https://s3.eu-central-1.wasabisys.com s3migrate catalog --from s3://archive

  $ s3migrate catalog --from s3://my-bucket --include 'photos/**' --modified-after 2024-01-01

Run it again at any time: an interrupted listing continues where it stopped; a finished one is
re-listed and reconciled (new and changed keys become pending, vanished keys are marked gone;
\`s3migrate status\` shows what the pass found). With filters, only matching objects are recorded,
and only keys within the --include/--exclude scope can be marked gone.`;

export function catalogCommand(): Command {
  const command = new Command('catalog')
    .description('List the source bucket into the state file (resumable)')
    .requiredOption('--from <s3-url>', 'source: s3://BUCKET[/PREFIX]');
  addStateOptions(command, 'state file (created if missing)')
    .option('--quiet', 'print only errors and the final summary')
    .option('--progress-interval <seconds>', 'seconds between progress lines when not on a terminal', '5');
  addFilterOptions(command);
  addEndpointOptions(command, ['source']);
  addLogOptions(command);
  command.addHelpText('after', EXAMPLES);
  command.action((flags: CatalogFlags) => runAction(() => catalog(flags)));
  return command;
}

async function catalog(flags: CatalogFlags): Promise<number> {
  const env = loadEnvironment();
  const location = parseS3Url(flags.from, '--from');
  const config = endpointConfigFromFlags('source', env, flags as Record<string, string | undefined>);
  const intervalSeconds = parsePositiveInteger(flags.progressInterval, '--progress-interval', 3600);
  const source = { endpoint: describeEndpoint(config), ...location };
  // Checked before the state file is opened: a bad glob, size or date changes nothing.
  const filter = filterFromFlags(flags, location.prefix);
  const scopeText = filterText(flags);
  const state = stateFromFlags(flags, env);
  // Opened before the state file: a log file that cannot be opened is invalid usage, nothing touched.
  const logTarget = openLogTarget(flags.logFormat, flags.logFile);
  // False when the JSON log goes to stderr: then nothing else goes there.
  const terminal = logTarget.terminal;
  const log = catalogLog(logTarget, { flags, intervalSeconds });
  // A failed run ends its log with run-end; with the JSON log on stderr that line is the report (no plain one).
  const failed = (error: unknown): number => {
    log.end({ outcome: 'failed', exitCode: exitCodeFor(error), error: (error as Error)?.message ?? String(error) });
    logTarget.sink?.close();
    if (terminal) throw error;
    return exitCodeFor(error);
  };

  // Loaded here rather than at start-up, so that the other commands never pay for them.
  const [{ bindSource, runCatalog }, { createS3Client }, { openStateStore, stateFileExists, closeAndDiscardNew }] = await Promise.all([
    import('../catalog/catalog.js'),
    import('../s3/client.js'),
    import('../state/open-store.js'),
  ]);
  const existed = stateFileExists(state.location);
  let store: StateStore;
  try {
    store = await openStateStore(state.location, { create: true, readonly: false, migration: state.migration, env });
  } catch (error) {
    return failed(error);
  }
  let listedAny = false;
  try {
    await bindSource(store, source);
    await store.acquireLock('catalog');
    const runId = await store.startRun('catalog', JSON.stringify({ from: flags.from, ...(scopeText ? { filter: JSON.parse(scopeText) as unknown } : {}) }));
    log.describe({ source, stateRunId: runId });
    const controller = new AbortController();
    const output = { mode: chooseProgressMode(process.stderr, Boolean(flags.quiet)), stream: process.stderr, intervalSeconds };
    const render = terminal ? catalogProgress(output) : () => undefined;
    const unhook = onInterrupt(
      () => {
        if (terminal) process.stderr.write('\nStopping the listing; run the same command again to continue.\n');
        log.stopping();
        controller.abort();
      },
      () => controller.abort(),
    );
    try {
      const result = await runCatalog({
        store,
        client: createS3Client(config, { maxSockets: 4 }),
        source,
        credentialSource: config.credentialSource,
        signal: controller.signal,
        filter,
        filterText: scopeText,
        onEvent: (event) => {
          if (event.type === 'page') listedAny = true;
          render(event);
          log.onEvent(event);
        },
      });
      await store.finishRun(runId, result.completed ? 'completed' : 'interrupted', { keysListed: result.keysListed });
      const code = result.completed ? EXIT.ok : EXIT.interrupted;
      log.end({
        outcome: result.completed ? 'completed' : 'interrupted',
        exitCode: code,
        keysListed: result.keysListed,
        totalKeys: result.totalKeys,
        gone: result.gone,
      });
      return code;
    } catch (error) {
      await store.finishRun(runId, 'failed', { error: (error as Error).message }).catch(() => undefined);
      throw error;
    } finally {
      unhook();
    }
  } catch (error) {
    // A catalog that failed before listing anything into a state it created leaves no state behind.
    if (!listedAny) await closeAndDiscardNew(store, state.location, existed);
    await store.close();
    return failed(error);
  } finally {
    await store.close();
    logTarget.sink?.close();
  }
}
