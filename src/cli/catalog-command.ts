import { Command } from 'commander';
import type { InventoryReader } from '../catalog/inventory/read-inventory.js';
import { describeEndpoint } from '../config/endpoint-config.js';
import { parseS3Url } from '../config/s3-url.js';
import { catalogLog } from '../progress/catalog-log.js';
import { catalogProgress } from '../progress/catalog-progress.js';
import { openLogTarget, type LogFormat } from '../progress/log-sink.js';
import { chooseProgressMode } from '../progress/output.js';
import { S3MigrateError, UsageError } from '../errors.js';
import { sameCatalogSource } from '../state/catalog-meta.js';
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
import { YOUNG_GENERATION_CATALOG, YoungGenerationCap } from './young-generation.js';

interface CatalogFlags extends FilterOptionFlags {
  from: string;
  listConcurrency: string;
  fromInventory?: string;
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
  $ s3migrate catalog --from s3://my-bucket --list-concurrency 16
  $ s3migrate catalog --from s3://my-bucket --from-inventory s3://inventory-bucket/my-bucket/all/2024-01-31T01-00Z/manifest.json

  $ s3migrate catalog --from s3://my-bucket --include 'photos/**' --modified-after 2024-01-01

Run it again at any time: an interrupted listing continues where each part stopped; a finished one is
re-listed and reconciled (new and changed keys become pending, vanished keys are marked gone;
\`s3migrate status\` shows what the pass found). With filters, only matching objects are recorded,
and only keys within the --include/--exclude scope can be marked gone.
From an inventory, rows newer than the report are never overwritten, and only rows last modified a day
or more before it was taken can be marked gone.`;

/**
 * Parts listed at once by default: one. Listing in parts needs a server that lists in byte order (AWS,
 * Ceph RGW, MinIO do; s3rver does not, and such answers are refused rather than risk a lost key), so the
 * default works everywhere; `--list-concurrency 8` lists 1.8x faster on RGW (see Catalog at scale).
 */
export const DEFAULT_LIST_CONCURRENCY = 1;

export function catalogCommand(): Command {
  const command = new Command('catalog')
    .description('List the source bucket into the state file (resumable)')
    .requiredOption('--from <s3-url>', 'source: s3://BUCKET[/PREFIX]')
    .option(
      '--list-concurrency <n>',
      'parts of the key space listed at once (split at the prefixes a delimiter listing finds; needs a server listing in byte order, as AWS, RGW and MinIO do; 8 is a good start)',
      String(DEFAULT_LIST_CONCURRENCY),
    )
    .option(
      '--from-inventory <s3-url>',
      "read the keys from this S3 Inventory report (CSV) instead of listing the bucket: the manifest.json's s3:// URL, read with the source credentials",
    );
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
  // Millions of rows would otherwise let V8 grow its young generation to its maximum: memory that rises
  // through the run for nothing kept.
  new YoungGenerationCap({ limitBytes: YOUNG_GENERATION_CATALOG }).start();
  const env = loadEnvironment();
  const location = parseS3Url(flags.from, '--from');
  const config = endpointConfigFromFlags('source', env, flags as Record<string, string | undefined>);
  const intervalSeconds = parsePositiveInteger(flags.progressInterval, '--progress-interval', 3600);
  const listConcurrency = parsePositiveInteger(flags.listConcurrency, '--list-concurrency', 256);
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
  const [
    { bindSource, catalogSourceFor, runCatalog },
    { createS3Client },
    { openStateStore, stateFileExists, closeAndDiscardNew },
    { describeS3Failure },
  ] = await Promise.all([
    import('../catalog/catalog.js'),
    import('../s3/client.js'),
    import('../state/open-store.js'),
    import('../s3/describe-failure.js'),
  ]);
  // The inventory reader (and its CSV parser) is loaded only for --from-inventory: a listing never pays for it.
  const fromInventory =
    flags.fromInventory === undefined ? undefined : { url: flags.fromInventory, reader: await import('../catalog/inventory/read-inventory.js') };
  try {
    fromInventory?.reader.parseManifestUrl(fromInventory.url);
  } catch (error) {
    return failed(error);
  }
  const inventoryFailure = (error: unknown, url: string, credentialSource: string): unknown => {
    if (error instanceof S3MigrateError) return error;
    const bucket = /^s3:\/\/([^/]+)/.exec(url)?.[1] ?? url;
    return describeS3Failure(error, { side: 'source', bucket, credentialSource });
  };
  // A part being listed has up to three requests out: its page, the next one (asked while the page is
  // stored) and the first page after its prefix.
  const client = createS3Client(config, { maxSockets: Math.max(4, 3 * listConcurrency) });
  // The report is opened before the state: one of another bucket is invalid usage, nothing touched.
  let inventory: InventoryReader | undefined;
  if (fromInventory !== undefined) {
    try {
      inventory = await fromInventory.reader.openInventory(client, fromInventory.url);
      if (inventory.identity.sourceBucket !== location.bucket) {
        throw new UsageError(
          `The inventory ${inventory.identity.manifestUrl} lists the bucket "${inventory.identity.sourceBucket}", not ` +
            `"${location.bucket}" (--from ${flags.from}). Give the manifest.json of a report of ${location.bucket}.`,
        );
      }
    } catch (error) {
      return failed(inventoryFailure(error, fromInventory.url, config.credentialSource));
    }
  }
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
    const controller = new AbortController();
    if (inventory) {
      // Every data file still to read is proven against the manifest before anything is stored: a damaged
      // or incomplete report stops here, the state as it was.
      const pass = await store.catalogPass();
      const resumable = pass && !pass.complete && sameCatalogSource(pass.source, catalogSourceFor(inventory));
      if (terminal && !flags.quiet) process.stderr.write(`Checking the inventory's data files against ${inventory.identity.manifestUrl}\n`);
      try {
        await inventory.verifyFiles({ startAtFile: resumable ? pass.nextFile : 0 });
      } catch (error) {
        throw inventoryFailure(error, flags.fromInventory!, config.credentialSource);
      }
    }
    const runId = await store.startRun(
      'catalog',
      JSON.stringify({
        from: flags.from,
        listConcurrency,
        ...(flags.fromInventory ? { fromInventory: flags.fromInventory } : {}),
        ...(scopeText ? { filter: JSON.parse(scopeText) as unknown } : {}),
      }),
    );
    log.describe({ source, stateRunId: runId });
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
        client,
        source,
        credentialSource: config.credentialSource,
        signal: controller.signal,
        listConcurrency,
        inventory,
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
