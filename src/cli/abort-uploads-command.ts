import { Command } from 'commander';
import { describeLocation } from '../config/s3-url.js';
import { formatCount } from '../progress/format.js';
import { loadEnvironment } from './environment.js';
import { EXIT } from './exit-codes.js';
import { resolveMigration } from './migration.js';
import { addEndpointOptions, addStateOptions, stateFromFlags } from './options.js';
import { onInterrupt, runAction } from './run-action.js';

interface AbortUploadsFlags extends Record<string, string | boolean | undefined> {
  state?: string;
  migration?: string;
  to?: string;
}

const EXAMPLES = `
Examples:
  $ s3migrate status                 # lists the open uploads and their bytes
  $ s3migrate abort-uploads

copy keeps the multipart uploads of large objects across runs (a crash or Ctrl+C resumes them part by
part). Their parts cost storage until completed or aborted: this aborts them (their rows stay pending
and start over on the next copy), and any other open upload at one of our destination keys.`;

export function abortUploadsCommand(): Command {
  const command = new Command('abort-uploads')
    .description('Abort the multipart uploads kept for resumption (and any open upload at our destination keys)');
  addStateOptions(command, 'state file')
    .option('--to <s3-url>', 'destination (default: the one copy used)');
  addEndpointOptions(command, ['source', 'dest']);
  command.addHelpText('after', EXAMPLES);
  command.action((flags: AbortUploadsFlags) => runAction(() => abortUploadsAction(flags)));
  return command;
}

async function abortUploadsAction(flags: AbortUploadsFlags): Promise<number> {
  const env = loadEnvironment();
  const [{ createS3Client }, { S3Bucket }, { openStateStore }, { abortUploads }] = await Promise.all([
    import('../s3/client.js'),
    import('../s3/bucket.js'),
    import('../state/open-store.js'),
    import('../copy/abort-uploads.js'),
  ]);
  const state = stateFromFlags(flags, env);
  const store = await openStateStore(state.location, { create: false, readonly: false, migration: state.migration, env });
  try {
    const migration = await resolveMigration(store, env, flags);
    await store.acquireLock('abort-uploads');
    const controller = new AbortController();
    const unhook = onInterrupt(
      () => controller.abort(),
      () => controller.abort(),
    );
    try {
      const report = await abortUploads({
        store,
        dest: new S3Bucket(createS3Client(migration.destConfig, { maxSockets: 8 }), migration.dest.bucket, 'dest'),
        sourcePrefix: migration.source.prefix,
        destPrefix: migration.dest.prefix,
        signal: controller.signal,
      });
      const lines = [
        `Aborted ${formatCount(report.recorded)} recorded multipart uploads at ${describeLocation(migration.dest)}` +
          (report.listingUnsupported
            ? '; the destination cannot list its uploads, so no others were looked for.'
            : ` and ${formatCount(report.unrecorded)} other open uploads at our destination keys.`),
      ];
      for (const failure of report.failed) lines.push(`  could not abort ${failure.key} (${failure.uploadId}): ${failure.error}`);
      process.stdout.write(`${lines.join('\n')}\n`);
      return report.failed.length > 0 ? EXIT.incomplete : EXIT.ok;
    } finally {
      unhook();
    }
  } finally {
    await store.close();
  }
}
