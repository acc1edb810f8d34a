// Runs the built CLI (bin/s3migrate.js -> dist/) as a child process, the way users run it.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { checkPostgresCounters, checkSqliteCounters } from './state-counters.js';

export const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/s3migrate.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  timeoutMs?: number;
  /** The Node binary to run the CLI with (default: the one running the tests). */
  node?: string;
  /** The CLI's entry point (default: this checkout's bin/s3migrate.js), e.g. that of an app copy. */
  bin?: string;
}

/** Endpoint variables for both sides pointing at s3rver-style endpoints (S3RVER keys). */
export function s3rverEnv(sourceEndpoint: string, destEndpoint: string): Record<string, string> {
  return {
    SOURCE_ENDPOINT: sourceEndpoint,
    SOURCE_AWS_ACCESS_KEY_ID: 'S3RVER',
    SOURCE_AWS_SECRET_ACCESS_KEY: 'S3RVER',
    SOURCE_AWS_REGION: 'us-east-1',
    DEST_ENDPOINT: destEndpoint,
    DEST_AWS_ACCESS_KEY_ID: 'S3RVER',
    DEST_AWS_SECRET_ACCESS_KEY: 'S3RVER',
    DEST_AWS_REGION: 'us-east-1',
  };
}

/** A clean environment: no AWS_*, SOURCE_* or DEST_* from the machine leaks into a test. */
function baseEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(AWS_|SOURCE_|DEST_)/.test(name)) continue;
    env[name] = value;
  }
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  // Keep the SDK away from any shared config/credentials files on the machine.
  env.AWS_CONFIG_FILE = '/nonexistent/aws-config';
  env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/aws-credentials';
  env.AWS_EC2_METADATA_DISABLED = 'true';
  for (const [name, value] of Object.entries(extra)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

/** Starts the CLI; the caller may signal it and then await `result`. */
export function startCli(args: string[], options: CliOptions = {}): { child: ChildProcess; result: Promise<CliResult> } {
  const env = baseEnv(options.env ?? {});
  const child = spawn(options.node ?? process.execPath, [options.bin ?? BIN, ...args], {
    cwd: options.cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
  const result = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      checkStateCounters(args, env, options.cwd).then(() => resolve({ code, signal, stdout, stderr }), reject);
    });
  });
  return { child, result };
}

export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return startCli(args, options).result;
}

/**
 * After a command ended (any way, kill -9 included), the state it used keeps counters equal to a full
 * scan of its rows (see state-counters.ts): checked on every command a test runs.
 */
async function checkStateCounters(args: readonly string[], env: NodeJS.ProcessEnv, cwd: string | undefined): Promise<void> {
  const at = args.indexOf('--state');
  const state = at >= 0 ? args[at + 1] : env.S3MIGRATE_STATE_URL;
  if (state === undefined) return;
  if (/^postgres(ql)?:\/\//.test(state)) await checkPostgresCounters(state, env);
  else checkSqliteCounters(path.resolve(cwd ?? process.cwd(), state));
}

/** The CLI exited with `code`; on failure the message shows its signal and everything it printed. */
export function expectExit(result: CliResult, code: number): void {
  expect(result.code, `exit ${result.code} (signal ${result.signal})\nstdout: ${result.stdout}\nstderr: ${result.stderr}`).toBe(code);
}
