import { Command } from 'commander';
import { describeEndpoint } from '../config/endpoint-config.js';
import { parseS3Url } from '../config/s3-url.js';
import { catalogProgress } from '../progress/catalog-progress.js';
import { chooseProgressMode } from '../progress/output.js';
import { loadEnvironment } from './environment.js';
import { EXIT } from './exit-codes.js';
import { addEndpointOptions, addStateOptions, endpointConfigFromFlags, parsePositiveInteger, stateFromFlags } from './options.js';
import { onInterrupt, runAction } from './run-action.js';

interface CatalogFlags extends Record<string, string | boolean | undefined> {
  from: string;
  state?: string;
  migration?: string;
  quiet?: boolean;
  progressInterval: string;
}

const EXAMPLES = `
Examples:
  $ s3migrate catalog --from s3://my-bucket
  $ s3migrate catalog --from s3://my-bucket/photos/ --state photos.db
  $ PGPASSWORD=... s3migrate catalog --from s3://my-bucket --state postgres://s3migrate@db.example.com/s3migrate --migration photos
  $ SOURCE_ENDPOINT=https://s3.eu-central-1.wasabisys.com s3migrate catalog --from s3://archive

Run it again at any time: an interrupted listing continues where it stopped; a finished one is
re-listed and reconciled (new and changed keys become pending, vanished keys are marked gone).`;

export function catalogCommand(): Command {
  const command = new Command('catalog')
    .description('List the source bucket into the state file (resumable)')
    .requiredOption('--from <s3-url>', 'source: s3://BUCKET[/PREFIX]');
  addStateOptions(command, 'state file (created if missing)')
    .option('--quiet', 'print only errors and the final summary')
    .option('--progress-interval <seconds>', 'seconds between progress lines when not on a terminal', '5');
  addEndpointOptions(command, ['source']);
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
  const state = stateFromFlags(flags, env);

  // Loaded here rather than at start-up, so that the other commands never pay for them.
  const [{ bindSource, runCatalog }, { createS3Client }, { openStateStore, stateFileExists, closeAndDiscardNew }] = await Promise.all([
    import('../catalog/catalog.js'),
    import('../s3/client.js'),
    import('../state/open-store.js'),
  ]);
  const existed = stateFileExists(state.location);
  const store = await openStateStore(state.location, { create: true, readonly: false, migration: state.migration, env });
  let listedAny = false;
  try {
    await bindSource(store, source);
    await store.acquireLock('catalog');
    const runId = await store.startRun('catalog', JSON.stringify({ from: flags.from }));
    const controller = new AbortController();
    const output = { mode: chooseProgressMode(process.stderr, Boolean(flags.quiet)), stream: process.stderr, intervalSeconds };
    const render = catalogProgress(output);
    const unhook = onInterrupt(
      () => {
        process.stderr.write('\nStopping the listing; run the same command again to continue.\n');
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
        onEvent: (event) => {
          if (event.type === 'page') listedAny = true;
          render(event);
        },
      });
      await store.finishRun(runId, result.completed ? 'completed' : 'interrupted', { keysListed: result.keysListed });
      return result.completed ? EXIT.ok : EXIT.interrupted;
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
    throw error;
  } finally {
    await store.close();
  }
}
