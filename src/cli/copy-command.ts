import os from 'node:os';
import { Command, Option } from 'commander';
import { describeEndpoint } from '../config/endpoint-config.js';
import { parseS3Url } from '../config/s3-url.js';
import { MAX_PART_SIZE, MIN_PART_SIZE } from '../copy/part-size.js';
import { parseSize } from '../config/size.js';
import { UsageError } from '../errors.js';
import type { CopyStats } from '../copy/events.js';
import type { TagsMode } from '../copy/transfer-settings.js';
import type { WriteEncryption } from '../s3/bucket.js';
import { openLogTarget, type LogFormat, type LogTarget } from '../progress/log-sink.js';
import { chooseProgressMode } from '../progress/output.js';
import type { OutcomeCounts, StateStore } from '../state/store.js';
import { SORT_ORDERS, type SortOrder } from '../state/types.js';
import { loadEnvironment } from './environment.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import {
  addEndpointOptions,
  addFilterOptions,
  addLogOptions,
  addStateOptions,
  checkFilterFlags,
  filterFromFlags,
  filterText,
  parsePositiveInteger,
  parseSizeInRange,
  stateFromFlags,
  type FilterOptionFlags,
} from './options.js';
import type { ObjectFilter } from '../filter/object-filter.js';
import type { EndpointConfig, Env } from '../config/endpoint-config.js';
import type { EndpointLocation } from '../state/types.js';
import { printPlan } from './plan-command.js';
import { addPriceOptions, checkPlanFlags, parseMaxDelete, type PlanFlags } from './plan-report.js';
import { coordinateWorkers } from './copy-coordinator.js';
import { reportToParent, WORKER_EVENTS_VARIABLE, workerShare } from './copy-workers.js';
import { resolveMigration } from './migration.js';
import { errorLine, onInterrupt, runAction } from './run-action.js';
import { YoungGenerationCap } from './young-generation.js';

/** Default worker processes: one per core (see the README's Performance section for what it buys here). */
export const DEFAULT_WORKERS = Math.max(1, os.availableParallelism());

/**
 * Without --workers, a run starts no more workers than one per this much work left. A worker costs about
 * 0.25 CPU s to start here (Node, the SDK, the state, the bucket checks; with a coordinator beside the first
 * two: `copy` with nothing left takes 0.23 CPU s with one worker, 0.71 with two) and ~50 MiB: each is
 * started only for about 20 times that in work, ~5 CPU s, which is 10,000 small objects (~0.5 ms each) or
 * 4 GiB (~1.2 s/GiB). Below that a second process costs more than it gives: W1 (5,000 objects) ran 7 %
 * slower with two workers than with one on the bench (README, Performance).
 */
const OBJECTS_PER_WORKER = 10_000;
const BYTES_PER_WORKER = 4 * 1024 ** 3;

/**
 * How many worker processes this run starts: --workers as given; by default one per core, but no more
 * than the work left keeps busy (a worker costs a process start and its own connections).
 */
async function workerCount(store: StateStore, workers: number, given: boolean, concurrency: number): Promise<number> {
  if (given || workers <= 1) return workers;
  const summary = await store.summary(0);
  return defaultWorkers(workers, summary.objectsTotal - summary.objectsDone, summary.bytesTotal - summary.bytesDone, concurrency);
}

/**
 * Workers without --workers: `cores`, but at most one per 10,000 objects (or per window) or 4 GiB left,
 * and never more than the objects left: one object is never shared by two workers, so a worker past
 * them would only cost a process start and its memory.
 */
export function defaultWorkers(cores: number, objects: number, bytes: number, concurrency: number): number {
  const useful = Math.max(Math.ceil(objects / Math.max(OBJECTS_PER_WORKER, concurrency)), Math.ceil(bytes / BYTES_PER_WORKER));
  return Math.max(1, Math.min(cores, useful, objects));
}

/** What a worker child forwards to the parent's display (per-object successes would only be noise). */
const FORWARDED_EVENTS: ReadonlySet<string> = new Set([
  'recovering',
  'recovered',
  'start',
  'object-failed',
  'upload-restarted',
  'server-side-refused',
  'throttled',
]);

/** Default objects in flight; see the Performance section of the README for how it was chosen. */
export const DEFAULT_CONCURRENCY = 32;

interface CopyFlags extends FilterOptionFlags {
  [flag: string]: string | string[] | boolean | undefined;
  to: string;
  dryRun?: boolean;
  deleteGone?: boolean;
  maxDelete?: string;
  prices?: string;
  sourceProvider?: string;
  destProvider?: string;
  from?: string;
  state?: string;
  migration?: string;
  sort: SortOrder;
  concurrency: string;
  partSize: string;
  multipartThreshold: string;
  maxMemory: string;
  partConcurrency: string;
  maxAttempts: string;
  maxBandwidth?: string;
  serverSide: 'auto' | 'always' | 'never';
  tags: TagsMode;
  storageClass?: string;
  destSse?: 'AES256' | 'aws:kms';
  destSseKmsKeyId?: string;
  maxRequestsPerSecond?: string;
  quiet?: boolean;
  progressInterval: string;
  logFormat: LogFormat;
  logFile?: string;
  workers?: string;
  leaseSeconds: string;
}

const EXAMPLES = `
Examples:
  $ s3migrate copy --to s3://new-bucket
  $ s3migrate copy --to s3://new-bucket/archive/ --sort newest --concurrency 64
  $ DEST_ENDPOINT=https://ACCOUNT.r2.cloudflarestorage.com s3migrate copy --to s3://dst --state photos.db
  $ s3migrate copy --to s3://new-bucket --log-format json --log-file copy.ndjson   # one JSON line per event
  $ s3migrate copy --to s3://new-bucket --storage-class STANDARD_IA --dest-sse aws:kms --dest-sse-kms-key-id alias/archive
  $ SOURCE_SSE_C_KEY=... DEST_SSE_C_KEY=... s3migrate copy --to s3://new-bucket   # SSE-C keys (base64 of 32 bytes), each side its own

  $ s3migrate copy --to s3://new-bucket --include 'photos/**' --modified-after 2024-01-01   # one wave
  $ s3migrate copy --to s3://new-bucket --dry-run                  # the plan: nothing sent, nothing changed
  $ s3migrate copy --to s3://new-bucket --delete-gone --max-delete 100   # cut-over: also delete what vanished

Tags travel by default (asked only for objects whose source reports some); storage class and
encryption are the destination's defaults unless asked. See the README's "Object fidelity" for what
travels and what cannot (ACLs across accounts, object lock, versions).

Ctrl+C once: in-flight objects (and the parts in flight of large ones) finish, then it stops (exit
130). Twice: it stops at once; in-flight objects stay pending. Three times: it exits at once. Multipart
uploads are kept: the next run resumes them part by part (\`s3migrate abort-uploads\` aborts them). Run the same command again to carry on; failed objects are
retried. Exit 3 when objects failed or changed at the source since the catalog (run catalog again);
source keys that vanished are recorded as gone and do not fail the run. Objects in archive storage
classes (GLACIER, DEEP_ARCHIVE) are skipped (row state archived: restore them at the source, then
catalog and copy again); exit 3 when that is all that is left. --delete-gone deletes from the
destination only objects s3migrate wrote whose source vanished, after a HeadObject shows the ETag it
recorded; with --max-delete N, more than N candidates stop the run before it does anything (exit 1).`;

export function copyCommand(): Command {
  const command = new Command('copy')
    .description('Copy every cataloged object to the destination, in the order you choose (resumable)')
    .requiredOption('--to <s3-url>', 'destination: s3://BUCKET[/PREFIX]')
    .option('--from <s3-url>', 'source; must match the catalog (optional check)');
  addStateOptions(command, 'state file made by `s3migrate catalog`')
    .addOption(new Option('--sort <order>', 'copy order').choices([...SORT_ORDERS]).default('key'))
    .option('--concurrency <n>', 'objects in flight', String(DEFAULT_CONCURRENCY))
    .option('--multipart-threshold <size>', 'objects larger than this go as multipart uploads (smaller ones are buffered)', '64MiB')
    .option('--max-memory <size>', 'bytes all transfers in flight may buffer together (objects wait for their share)', '256MiB')
    .option('--part-size <size>', 'multipart part size (raised for objects over 10,000 parts)', '8MiB')
    .option('--part-concurrency <n>', 'parts in flight per multipart object', '4')
    .option('--max-attempts <n>', 'attempts per object before it is recorded as failed (throttling not counted)', '5')
    .addOption(
      new Option('--server-side <mode>', 'copy inside the endpoint without moving bytes through us, when both sides are one endpoint')
        .choices(['auto', 'always', 'never'])
        .default('auto'),
    )
    .addOption(
      new Option('--tags <mode>', 'object tags: copy (asked only where the source reports some), always (asked for every object), none')
        .choices(['copy', 'always', 'none'])
        .default('copy'),
    )
    .option('--storage-class <class>', "storage class of every object written, or keep (the source object's own) (default: the destination's default)")
    .addOption(new Option('--dest-sse <algorithm>', 'encrypt what is written: AES256 (SSE-S3) or aws:kms (SSE-KMS)').choices(['AES256', 'aws:kms']))
    .option('--dest-sse-kms-key-id <id>', 'the KMS key of --dest-sse aws:kms (default: the destination account\'s AWS managed key)')
    .option('--max-bandwidth <size>', 'bytes per second read from the source, across the run (e.g. 50MiB)')
    .option('--max-requests-per-second <n>', 'HTTP requests per second, both sides together, retries included')
    .option('--workers <n>', 'worker processes sharing the state (claims with leases); totals stay totals (default: one per core, at most one per 10,000 objects or 4 GiB left, and per object left)')
    .option('--lease-seconds <s>', 'how long a claimed object stays a worker\'s without renewal (a dead worker\'s rows return after it)', '60')
    .option('--dry-run', 'print the plan (what this copy would do, and its cost) and stop: nothing sent, nothing changed')
    .option('--delete-gone', 'after copying, delete from the destination the copies s3migrate wrote of objects gone from the source')
    .option('--max-delete <n>', 'with --delete-gone: stop before doing anything when more than N objects would be deleted')
    .option('--quiet', 'print only failures and the final summary')
    .option('--progress-interval <seconds>', 'seconds between progress lines when not on a terminal', '5');
  addFilterOptions(command);
  addPriceOptions(command);
  addEndpointOptions(command, ['source', 'dest']);
  addLogOptions(command);
  command.addHelpText('after', EXAMPLES);
  command.action((flags: CopyFlags) => runAction(() => copy(flags)));
  return command;
}

async function copy(flags: CopyFlags): Promise<number> {
  // At most Node 20's young generation on every Node (Node 24 would grow it to 128 MiB).
  new YoungGenerationCap().start();
  const env = loadEnvironment();
  // Checked before the state file is opened, so a typo never touches it.
  parseS3Url(flags.to, '--to');
  if (flags.from !== undefined) parseS3Url(flags.from, '--from');
  checkFilterFlags(flags);
  const maxDelete = parseMaxDelete(flags.maxDelete);
  if (flags.maxDelete !== undefined && !flags.deleteGone) throw new UsageError('--max-delete needs --delete-gone');
  if (flags.dryRun) {
    const planFlags = flags as unknown as PlanFlags;
    checkPlanFlags(planFlags);
    return printPlan(planFlags, env, maxDelete);
  }
  const concurrency = parsePositiveInteger(flags.concurrency, '--concurrency', 1024);
  const partConcurrency = parsePositiveInteger(flags.partConcurrency, '--part-concurrency', 64);
  const maxAttempts = parsePositiveInteger(flags.maxAttempts, '--max-attempts', 100);
  const intervalSeconds = parsePositiveInteger(flags.progressInterval, '--progress-interval', 3600);
  const partSize = parseSizeInRange(flags.partSize, '--part-size', MIN_PART_SIZE, MAX_PART_SIZE);
  const memoryTotal = parseSizeInRange(flags.maxMemory, '--max-memory', 16 * 1024 * 1024, 1024 ** 4, 'a sane range');
  const multipartThreshold = parseSizeInRange(flags.multipartThreshold, '--multipart-threshold', MIN_PART_SIZE, MAX_PART_SIZE);
  const workersGiven = flags.workers !== undefined;
  const workers = workersGiven ? parsePositiveInteger(flags.workers!, '--workers', 256) : DEFAULT_WORKERS;
  const leaseMs = parsePositiveInteger(flags.leaseSeconds, '--lease-seconds', 3600) * 1000;
  if (leaseMs < 2000) throw new UsageError(`--lease-seconds must be at least 2, got "${flags.leaseSeconds}"`);
  // A worker of `copy --workers N` takes its share of the run's totals.
  const share = workerShare(process.env) ?? 1;
  const limits = {
    bytesPerSecond: flags.maxBandwidth === undefined ? undefined : parseBandwidth(flags.maxBandwidth) / share,
    requestsPerSecond:
      flags.maxRequestsPerSecond === undefined
        ? undefined
        : parsePositiveInteger(flags.maxRequestsPerSecond, '--max-requests-per-second', 1_000_000) / share,
  };
  const storageClass = flags.storageClass === undefined ? undefined : parseStorageClass(flags.storageClass);
  const encryption = destEncryption(flags);
  const memoryBudget = Math.max(16 * 1024 * 1024, Math.floor(memoryTotal / share));
  const child = workerShare(process.env) !== undefined;
  // Opened before the state file: a log file that cannot be opened is invalid usage, nothing touched.
  // A worker child writes no log: its parent does, from the events it forwards.
  const logTarget: LogTarget = child
    ? { format: flags.logFormat, sink: undefined, terminal: false }
    : openLogTarget(flags.logFormat, flags.logFile);
  const parent = child ? reportToParent() : undefined;
  const forwardAll = process.env[WORKER_EVENTS_VARIABLE] === 'all';
  // False when the JSON log goes to stderr, or in a worker child: then nothing else goes there.
  const terminal = logTarget.terminal && !child;
  // Loaded here rather than at start-up, so that the other commands never pay for the engine.
  const [{ CopyEngine }, { S3Bucket }, { applyRateLimits }, { copyProgress, statsLine }, { createS3Client }, { openStateStore }, { copyLog }] =
    await Promise.all([
      import('../copy/copy-engine.js'),
      import('../s3/bucket.js'),
      import('../s3/rate-limit.js'),
      import('../progress/copy-progress.js'),
      import('../s3/client.js'),
      import('../state/open-store.js'),
      import('../progress/copy-log.js'),
    ]);
  const state = stateFromFlags(flags, env);
  const log = copyLog(logTarget, { flags, intervalSeconds });
  let snapshot: (() => CopyStats) | undefined;
  const closeLog = (): void => {
    log.close();
    logTarget.sink?.close();
  };
  // A failed run ends its log with run-end; with the JSON log on stderr that line is the report (no plain one).
  const failed = async (error: unknown): Promise<number> => {
    log.end({ outcome: 'failed', exitCode: exitCodeFor(error), stats: snapshot?.(), error: (error as Error)?.message ?? String(error) });
    closeLog();
    // A worker child's parent reports the error, once for all workers.
    if (parent) await parent.fatal(errorLine(error), exitCodeFor(error));
    if (terminal) throw error;
    return exitCodeFor(error);
  };
  let store: StateStore;
  try {
    store = await openStateStore(state.location, { create: false, readonly: false, migration: state.migration, env });
  } catch (error) {
    return await failed(error);
  }
  try {
    const { source, dest, sourceConfig, destConfig } = await resolveMigration(store, env, flags as Record<string, string | undefined> & { to: string });
    const filter = filterFromFlags(flags, source.prefix);
    // --max-delete is checked before anything is copied or deleted (exit 1).
    const deletions = flags.deleteGone && !child ? await deletionCheck(store, filter, maxDelete) : undefined;
    if (destConfig.sseCustomerKey !== undefined && encryption !== undefined) {
      throw new UsageError('DEST_SSE_C_KEY and --dest-sse are both set: an object is encrypted either with your key (SSE-C) or by the server. Keep one.');
    }
    const sameEndpoint = describeEndpoint(sourceConfig) === describeEndpoint(destConfig);
    if (flags.serverSide === 'always' && !sameEndpoint) {
      throw new UsageError(
        `--server-side always needs both sides on one endpoint; the source is ${describeEndpoint(sourceConfig)}, ` +
          `the destination ${describeEndpoint(destConfig)}. Use --server-side auto (or never) to stream.`,
      );
    }
    // A server-side copy is proven by the copy's ETag equal to the source's: never so with an SSE-C
    // source (its ETags are not MD5s) or a destination whose ETags are not (SSE-C, SSE-KMS).
    const unprovable =
      sourceConfig.sseCustomerKey !== undefined
        ? 'SOURCE_SSE_C_KEY (SSE-C objects have ETags that are not MD5s)'
        : destConfig.sseCustomerKey !== undefined
          ? 'DEST_SSE_C_KEY (SSE-C objects have ETags that are not MD5s)'
          : encryption?.algorithm === 'aws:kms'
            ? '--dest-sse aws:kms (SSE-KMS objects have ETags that are not MD5s)'
            : undefined;
    if (flags.serverSide === 'always' && unprovable !== undefined) {
      throw new UsageError(`--server-side always cannot prove its copies with ${unprovable}. Use --server-side auto (or never) to stream.`);
    }
    const catalogComplete = await store.catalogComplete();
    if (!catalogComplete && terminal) {
      process.stderr.write(
        'Note: the catalog is incomplete (its listing was interrupted); copying what is listed so far. ' +
          'Run `s3migrate catalog` again to list the rest.\n',
      );
    }

    const processes = child ? 1 : await workerCount(store, workers, workersGiven, concurrency);
    if (processes > 1) {
      // Checked here once for all of them; the workers run this same command line.
      await store.close();
      const run = await coordinateWorkers(processes, {
        terminal,
        log,
        logging: logTarget.sink !== undefined,
        output: { mode: chooseProgressMode(process.stderr, Boolean(flags.quiet)), stream: process.stderr, intervalSeconds },
        started: (combined) => {
          snapshot = combined;
          log.describe({ source, destination: dest, catalogComplete, snapshot: combined });
        },
      });
      if (run.fatal) {
        log.end({ outcome: 'failed', exitCode: run.code, stats: run.stats, error: run.fatal.message });
        if (terminal) process.stderr.write(`s3migrate: ${run.fatal.message}\n`);
        return run.code;
      }
      if (terminal) process.stderr.write(`${run.code === EXIT.interrupted ? 'Stopped' : 'Finished'}: ${statsLine(run.stats)}\n`);
      if (run.code !== EXIT.ok && run.code !== EXIT.incomplete && run.code !== EXIT.archived) {
        log.end({ outcome: run.code === EXIT.interrupted ? 'interrupted' : 'failed', exitCode: run.code, stats: run.stats });
        return run.code;
      }
      const again = await openStateStore(state.location, { create: false, readonly: true, migration: state.migration, env });
      let code: number;
      let outcomes: OutcomeCounts;
      try {
        outcomes = await again.outcomeCounts(filter);
        code = reportOutcomes(outcomes, changedObjectsQuery(state.location, state.migration), terminal);
      } finally {
        await again.close();
      }
      // The deletions of a run whose copies went to worker processes: here, once, after them.
      if (deletions !== undefined) {
        await runDeletions({ location: state.location, migration: state.migration, env, destConfig, dest, filter, maxDelete, concurrency, terminal, log });
      }
      log.end({ outcome: 'completed', exitCode: code, stats: run.stats, outcomes });
      return code;
    }

    // Each object may hold `partConcurrency` ranged GETs and as many part uploads at once.
    const sockets = concurrency * partConcurrency + 8;
    const sourceClient = createS3Client(sourceConfig, { maxSockets: sockets });
    const destClient = createS3Client(destConfig, { maxSockets: sockets });
    const releaseLimits = applyRateLimits(sourceClient, destClient, limits);
    const engine = new CopyEngine({
      store,
      source: new S3Bucket(sourceClient, source.bucket, 'source', { sseCustomerKey: sourceConfig.sseCustomerKey }),
      dest: new S3Bucket(destClient, dest.bucket, 'dest', { sseCustomerKey: destConfig.sseCustomerKey, encryption }),
      sourceLocation: source,
      destLocation: dest,
      order: flags.sort,
      concurrency,
      partSize,
      multipartThreshold,
      memoryBudget,
      destChecksumMode: destConfig.checksumMode,
      partConcurrency,
      maxAttempts,
      credentialSources: { source: sourceConfig.credentialSource, dest: destConfig.credentialSource },
      serverSide: { mode: flags.serverSide, available: sameEndpoint && unprovable === undefined },
      leaseMs,
      fidelity: { tags: flags.tags, storageClass, probePrefix: dest.prefix },
      filter,
      // No secrets: the SSE-C keys come from the environment only and are never recorded.
      runArguments: JSON.stringify({
        to: flags.to,
        sort: flags.sort,
        concurrency,
        partSize,
        partConcurrency,
        ...limits,
        tags: flags.tags,
        storageClass,
        destSse: flags.destSse,
        ...(filterText(flags) ? { filter: JSON.parse(filterText(flags)!) as unknown } : {}),
        ...(flags.deleteGone ? { deleteGone: true, maxDelete } : {}),
      }),
      onEvent: (event) => {
        progress.onEvent(event);
        log.onEvent(event);
        if (parent && (forwardAll || FORWARDED_EVENTS.has(event.type))) parent.event(event);
      },
    });
    snapshot = () => engine.snapshot();
    // A worker child of `copy --workers N` reports to the parent, which displays the run.
    const reporting = parent ? setInterval(() => parent.stats(engine.snapshot()), 500) : undefined;
    reporting?.unref();
    log.describe({ source, destination: dest, catalogComplete, snapshot });
    const output = { mode: chooseProgressMode(process.stderr, Boolean(flags.quiet)), stream: process.stderr, intervalSeconds };
    const progress = terminal ? copyProgress(output, snapshot) : { onEvent: () => undefined, close: () => undefined };
    const unhook = onInterrupt(
      () => engine.stop(),
      () => {
        releaseLimits(); // requests waiting for a token go now, and fail on the aborted signal
        engine.abort();
      },
    );
    try {
      const summary = await engine.run();
      if (reporting) clearInterval(reporting);
      parent?.stats(summary.stats);
      progress.close();
      if (terminal) process.stderr.write(`${summary.interrupted ? 'Stopped' : 'Finished'}: ${statsLine(summary.stats)}\n`);
      const code = summary.interrupted
        ? EXIT.interrupted
        : reportOutcomes(summary.outcomes, changedObjectsQuery(state.location, state.migration), terminal);
      if (deletions !== undefined && !summary.interrupted) {
        const { deleteGone, deletionPlan } = await import('../copy/delete-gone.js');
        const result = await deleteGone({
          store,
          dest: new S3Bucket(destClient, dest.bucket, 'dest', { sseCustomerKey: destConfig.sseCustomerKey }),
          candidates: await deletionPlan(store, filter, maxDelete),
          concurrency,
          onEvent: (event) => {
            reportDeletion(event, terminal);
            log.deletion(event);
          },
        });
        reportDeletions(result, terminal);
      }
      log.end({ outcome: summary.interrupted ? 'interrupted' : 'completed', exitCode: code, stats: summary.stats, outcomes: summary.outcomes });
      return code;
    } finally {
      progress.close();
      unhook();
    }
  } catch (error) {
    return await failed(error);
  } finally {
    await store.close();
    closeLog();
  }
}

/**
 * The exit code of a finished run, from the rows of the whole state: failed or changed rows left -> 3
 * (with what to do), gone rows alone -> 0 (recorded, not an error: the source no longer has them).
 */
function reportOutcomes(outcomes: OutcomeCounts, changedQuery: string, terminal: boolean): number {
  const code =
    outcomes.failed > 0 || outcomes.changed > 0 ? EXIT.incomplete : outcomes.archived > 0 ? EXIT.archived : EXIT.ok;
  // With the JSON log on stderr, run-end's state counts say this.
  if (!terminal) return code;
  if (outcomes.archived > 0) {
    process.stderr.write(
      `${outcomes.archived} objects are in an archive storage class (GLACIER, DEEP_ARCHIVE) and were not copied (recorded as archived): ` +
        'restore them at the source (S3 RestoreObject), then run `s3migrate catalog` and `s3migrate copy` again. ' +
        '`s3migrate status` counts them.\n',
    );
  }
  if (outcomes.gone > 0) {
    process.stderr.write(
      `${outcomes.gone} cataloged objects are gone from the source (deleted since the catalog); recorded as gone, not copied.\n`,
    );
  }
  if (outcomes.changed > 0) {
    process.stderr.write(
      `${outcomes.changed} objects changed at the source since the catalog and were not copied: ` +
        'run `s3migrate catalog` again (it reconciles them), then `s3migrate copy`. ' +
        `They are listed by: ${changedQuery}\n`,
    );
  }
  if (outcomes.failed > 0) {
    process.stderr.write(`${outcomes.failed} objects failed; see \`s3migrate status\`. Run copy again to retry them.\n`);
  }
  return code;
}

/** The command that lists the changed objects of this state, for the user to paste. */
function changedObjectsQuery(location: string, migration: string | undefined): string {
  if (/^postgres(ql)?:\/\//i.test(location)) {
    return `psql '${location}' -c "select * from s3migrate.changed_objects where migration = '${migration ?? 'default'}'"`;
  }
  return `sqlite3 ${location} 'select * from changed_objects'`;
}

/**
 * --storage-class: `keep`, or a class name sent as given (only the destination knows its classes: one it
 * refuses stops the run at the first write). Letters, digits, `_` and `-`, as S3's and other providers' names.
 */
function parseStorageClass(text: string): string {
  const value = text.trim();
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(value)) {
    throw new UsageError(`--storage-class expects a class name such as STANDARD_IA (letters, digits, _ and -), or keep; got "${text}"`);
  }
  return value;
}

/** --dest-sse and --dest-sse-kms-key-id. */
function destEncryption(flags: CopyFlags): WriteEncryption | undefined {
  if (flags.destSseKmsKeyId !== undefined && flags.destSse !== 'aws:kms') {
    throw new UsageError('--dest-sse-kms-key-id needs --dest-sse aws:kms');
  }
  if (flags.destSse === undefined) return undefined;
  const kmsKeyId = flags.destSseKmsKeyId?.trim();
  if (kmsKeyId === '') throw new UsageError('--dest-sse-kms-key-id is empty');
  return kmsKeyId === undefined ? { algorithm: flags.destSse } : { algorithm: flags.destSse, kmsKeyId };
}

/** --max-bandwidth: a size per second, at least 1 KiB. */
function parseBandwidth(text: string): number {
  const bytes = parseSize(text, '--max-bandwidth');
  if (bytes < 1024) throw new UsageError(`--max-bandwidth must be at least 1KiB (bytes per second), got "${text}"`);
  return bytes;
}

/** The --delete-gone candidates, refused whole (DeleteLimitError, exit 1) beyond --max-delete. */
async function deletionCheck(store: StateStore, filter: ObjectFilter | undefined, maxDelete: number | undefined): Promise<number> {
  const { deletionPlan } = await import('../copy/delete-gone.js');
  return (await deletionPlan(store, filter, maxDelete)).length;
}

/** The deletions of a run whose copies went to worker processes: done here, once, after them. */
async function runDeletions(options: {
  location: string;
  migration: string | undefined;
  env: Env;
  destConfig: EndpointConfig;
  dest: EndpointLocation;
  filter: ObjectFilter | undefined;
  maxDelete: number | undefined;
  /** Deletions at once: the copy's --concurrency. */
  concurrency: number;
  terminal: boolean;
  log: import('../progress/copy-log.js').CopyLog;
}): Promise<void> {
  const [{ deleteGone, deletionPlan }, { S3Bucket }, { createS3Client }, { openStateStore }] = await Promise.all([
    import('../copy/delete-gone.js'),
    import('../s3/bucket.js'),
    import('../s3/client.js'),
    import('../state/open-store.js'),
  ]);
  const store = await openStateStore(options.location, { create: false, readonly: false, migration: options.migration, env: options.env });
  try {
    const client = createS3Client(options.destConfig, { maxSockets: options.concurrency });
    const result = await deleteGone({
      store,
      dest: new S3Bucket(client, options.dest.bucket, 'dest', { sseCustomerKey: options.destConfig.sseCustomerKey }),
      candidates: await deletionPlan(store, options.filter, options.maxDelete),
      concurrency: options.concurrency,
      onEvent: (event) => {
        reportDeletion(event, options.terminal);
        options.log.deletion(event);
      },
    });
    reportDeletions(result, options.terminal);
  } finally {
    await store.close();
  }
}

function reportDeletion(event: import('../copy/delete-gone.js').DeleteEvent, terminal: boolean): void {
  if (!terminal || event.type === 'deleted') return;
  process.stderr.write(`left alone: ${event.destKey}: ${event.reason}\n`);
}

function reportDeletions(result: import('../copy/delete-gone.js').DeleteGoneResult, terminal: boolean): void {
  if (!terminal) return;
  process.stderr.write(
    `Deleted ${result.deleted} objects gone from the source from the destination` +
      (result.leftAlone > 0 ? `; left ${result.leftAlone} alone (not as s3migrate wrote them: see above, and \`s3migrate status\`)` : '') +
      '.\n',
  );
}
