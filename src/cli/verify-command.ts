import { Command } from 'commander';
import { describeLocation } from '../config/s3-url.js';
import { formatCount } from '../progress/format.js';
import { openLogTarget, type LogFormat } from '../progress/log-sink.js';
import { verifyLog } from '../progress/verify-log.js';
import type { StateStore } from '../state/store.js';
import type { VerifyReport } from '../verify/verify.js';
import { loadEnvironment } from './environment.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { addEndpointOptions, addLogOptions, addStateOptions, stateFromFlags } from './options.js';
import { resolveMigration } from './migration.js';
import { onInterrupt, runAction } from './run-action.js';
import { YoungGenerationCap } from './young-generation.js';

interface VerifyFlags extends Record<string, string | boolean | undefined> {
  state?: string;
  migration?: string;
  to?: string;
  json?: boolean;
  deep?: boolean;
  logFormat: LogFormat;
  logFile?: string;
}

const EXAMPLES = `
Examples:
  $ s3migrate verify
  $ s3migrate verify --deep --json > report.json

Exit 0 when every cataloged object is at the destination and matches; 3 otherwise. Objects found
missing or different go back to pending: run \`s3migrate copy\` to repair them, then verify again.`;

const REASONS: Record<string, string> = {
  missing: 'missing at the destination',
  'size-mismatch': 'size differs',
  'etag-mismatch': 'ETag differs',
  'content-mismatch': 'content differs (--deep)',
  'not-copied': 'not copied yet',
  unproven: 'marked done on size alone by an earlier version: not proven (--deep proves it)',
};

export function verifyCommand(): Command {
  const command = new Command('verify')
    .description('Prove the migration: compare the destination with the catalog (sizes, ETags, --deep content)');
  addStateOptions(command, 'state file')
    .option('--to <s3-url>', 'destination (default: the one copy used)')
    .option('--deep', 're-read both sides and compare MD5s where ETags cannot be compared')
    .option('--json', 'print one JSON document with every problem key');
  addEndpointOptions(command, ['source', 'dest']);
  addLogOptions(command);
  command.addHelpText('after', EXAMPLES);
  command.action((flags: VerifyFlags) => runAction(() => verify(flags)));
  return command;
}

async function verify(flags: VerifyFlags): Promise<number> {
  // At most Node 20's young generation on every Node (Node 24 would grow it to 128 MiB).
  new YoungGenerationCap().start();
  const env = loadEnvironment();
  // Loaded here rather than at start-up, so that the other commands never pay for them.
  const [{ createS3Client }, { openStateStore }, { runVerify, verifyPassed }] = await Promise.all([
    import('../s3/client.js'),
    import('../state/open-store.js'),
    import('../verify/verify.js'),
  ]);
  const state = stateFromFlags(flags, env);
  // Opened before the state file: a log file that cannot be opened is invalid usage, nothing touched.
  const logTarget = openLogTarget(flags.logFormat, flags.logFile);
  // False when the JSON log goes to stderr: then nothing else goes there.
  const terminal = logTarget.terminal;
  const log = verifyLog(logTarget, { flags });
  // A failed run ends its log with run-end; with the JSON log on stderr that line is the report (no plain one).
  const failed = (error: unknown): number => {
    log.end({ outcome: 'failed', exitCode: exitCodeFor(error), error: (error as Error)?.message ?? String(error) });
    logTarget.sink?.close();
    if (terminal) throw error;
    return exitCodeFor(error);
  };
  let store: StateStore;
  try {
    store = await openStateStore(state.location, { create: false, readonly: false, migration: state.migration, env });
  } catch (error) {
    return failed(error);
  }
  try {
    const migration = await resolveMigration(store, env, flags);
    await store.acquireLock('verify');
    log.begin({ source: migration.source, destination: migration.dest, deep: Boolean(flags.deep) });
    const controller = new AbortController();
    const unhook = onInterrupt(
      () => controller.abort(),
      () => controller.abort(),
    );
    let report: VerifyReport;
    try {
      report = await runVerify({
        store,
        source: createS3Client(migration.sourceConfig, { maxSockets: 16 }),
        dest: createS3Client(migration.destConfig, { maxSockets: 16 }),
        sourceLocation: migration.source,
        destLocation: migration.dest,
        deep: Boolean(flags.deep),
        credentialSources: { source: migration.sourceConfig.credentialSource, dest: migration.destConfig.credentialSource },
        sseCustomerKeys: { source: migration.sourceConfig.sseCustomerKey, dest: migration.destConfig.sseCustomerKey },
        signal: controller.signal,
      });
    } finally {
      unhook();
    }
    if (!report.complete) {
      if (terminal) process.stderr.write('Verify interrupted before the destination listing ended; nothing concluded.\n');
      log.end({ outcome: 'interrupted', exitCode: EXIT.interrupted, listed: report.listed });
      return EXIT.interrupted;
    }
    const problems: Array<{ key: string; size: number; result: string }> = [];
    for await (const problem of store.verifyProblems()) problems.push(problem);
    if (flags.json) {
      const document = {
        passed: verifyPassed(report),
        destination: migration.dest,
        listed: report.listed,
        results: report.results,
        problems: problems.map((p) => ({ key: p.key, size: p.size, reason: p.result })),
        extraKeys: report.extraKeys,
      };
      process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
    } else {
      process.stdout.write(renderReport(report, problems, describeLocation(migration.dest)));
    }
    const code = verifyPassed(report) ? EXIT.ok : EXIT.incomplete;
    log.end({
      outcome: 'completed',
      exitCode: code,
      passed: verifyPassed(report),
      listed: report.listed,
      results: report.results,
      extraKeys: report.extraKeys.count,
    });
    return code;
  } catch (error) {
    return failed(error);
  } finally {
    await store.close();
    logTarget.sink?.close();
  }
}

function renderReport(report: VerifyReport, problems: Array<{ key: string; result: string }>, dest: string): string {
  const lines = [`Verified against ${dest}: ${formatCount(report.listed)} destination objects listed`];
  for (const [result, count] of Object.entries(report.results)) {
    if (count > 0) lines.push(`  ${result.padEnd(17)} ${formatCount(count).padStart(10)}`);
  }
  if (report.extraKeys.count > 0) {
    lines.push(`  ${'extra (info)'.padEnd(17)} ${formatCount(report.extraKeys.count).padStart(10)}  keys at the destination that are not in the catalog`);
  }
  if (problems.length > 0) {
    lines.push('', `Problems (${formatCount(problems.length)}; first 20 shown, --json lists all):`);
    for (const problem of problems.slice(0, 20)) lines.push(`  ${problem.key}: ${REASONS[problem.result] ?? problem.result}`);
    if (problems.some((problem) => problem.result !== 'unproven')) {
      lines.push('', 'Objects found missing or different are pending again: run `s3migrate copy` to repair them, then verify.');
    }
    if (report.results.unproven > 0) {
      lines.push(
        '',
        `${formatCount(report.results.unproven)} objects were marked done by an earlier s3migrate on size alone, which proves nothing. ` +
          'Run `s3migrate verify --deep` to compare their content in place (reads both sides), ' +
          'or `s3migrate copy` to copy them again with evidence.',
      );
    }
  } else {
    lines.push('', 'Everything matches.');
  }
  return `${lines.join('\n')}\n`;
}
