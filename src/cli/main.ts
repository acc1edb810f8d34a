import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import { abortUploadsCommand } from './abort-uploads-command.js';
import { catalogCommand } from './catalog-command.js';
import { copyCommand } from './copy-command.js';
import { EXIT } from './exit-codes.js';
import { planCommand } from './plan-command.js';
import { statusCommand } from './status-command.js';
import { verifyCommand } from './verify-command.js';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

export function buildProgram(): Command {
  const program = new Command('s3migrate')
    .description('Move every object of one S3-compatible bucket to another, resumably, with separate credentials per side.')
    .version(version)
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      `
Typical migration:
  $ s3migrate catalog --from s3://old-bucket      # list the source into ./state.db
  $ s3migrate plan                                # what copy would do, and its cost
  $ s3migrate copy --to s3://new-bucket --sort newest
  $ s3migrate status
  $ s3migrate verify                              # prove it: sizes and ETags at the destination

Credentials and endpoints come from SOURCE_* and DEST_* variables (or .env); see .env.example.
Exit codes: 0 done, 1 fatal error, 2 invalid usage, 3 some objects failed, 4 archived objects skipped,
5 --max-delete exceeded (nothing done), 130 interrupted.`,
    );
  for (const command of [catalogCommand(), planCommand(), copyCommand(), statusCommand(), verifyCommand(), abortUploadsCommand()]) {
    program.addCommand(command.showHelpAfterError('(run with --help for usage)'));
  }
  // Commander's own usage errors (unknown flag, bad choice, missing option) exit with 2, like ours.
  program.exitOverride();
  for (const command of program.commands) command.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<void> {
  // `s3migrate status | head`: a reader that went away is not an error worth a stack trace.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
  try {
    await buildProgram().parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.usage;
      return;
    }
    throw error;
  }
}
