// `npm run demo`: a complete migration between two local S3 endpoints.
// Starts two s3rver instances, seeds the source with a sample corpus, then runs
// the built CLI (catalog -> copy -> status) exactly as a user would, with the
// endpoints and keys passed through the environment. The state file is kept.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seedDemoBucket } from './seed-demo.js';
import { S3RVER_CREDENTIALS, s3rverClient, startS3rver } from './servers/s3rver.js';

// The SDK warns on every run that future versions need Node 22; noise in a demo.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'bin', 's3migrate.js');
const SOURCE_BUCKET = 'demo-source';
const DEST_BUCKET = 'demo-dest';
const EXIT_INTERRUPTED = 130;
const EXIT_PARTIAL = 3; // the run finished but some objects failed: still worth showing `status`

const servers = [];
let runningStep = null; // the CLI child process, while one runs
let interrupted = false;

/** Quotes an argument for display only when the shell would need it. */
const shellQuote = (arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`);

function banner(title) {
  const line = '━'.repeat(Math.max(8, 72 - title.length));
  console.log(`\n━━━ ${title} ${line}`);
}

/** Environment for the CLI: one endpoint and key pair per side, nothing inherited for them. */
function cliEnvironment(source, dest) {
  const env = { ...process.env };
  for (const name of Object.keys(env)) {
    if (/^(SOURCE|DEST)_/.test(name)) delete env[name]; // e.g. a stray SOURCE_AWS_PROFILE
  }
  for (const [prefix, server] of [['SOURCE', source], ['DEST', dest]]) {
    env[`${prefix}_ENDPOINT`] = server.endpoint;
    env[`${prefix}_AWS_ACCESS_KEY_ID`] = S3RVER_CREDENTIALS.accessKeyId;
    env[`${prefix}_AWS_SECRET_ACCESS_KEY`] = S3RVER_CREDENTIALS.secretAccessKey;
    env[`${prefix}_AWS_REGION`] = 'us-east-1';
    env[`${prefix}_FORCE_PATH_STYLE`] = 'true'; // `demo-source.127.0.0.1` would not resolve
  }
  return env;
}

/** Runs `s3migrate ARGS` with the terminal attached; resolves with its exit code. */
function runCli(args, { env, cwd }) {
  console.log(`$ s3migrate ${args.map(shellQuote).join(' ')}\n`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: 'inherit', env, cwd });
    runningStep = child;
    child.once('error', (err) => {
      console.error(`demo: could not start the CLI: ${err.message}`);
      resolve(1);
    });
    child.once('exit', (code, signal) => {
      runningStep = null;
      resolve(code ?? (signal === 'SIGINT' || signal === 'SIGTERM' ? EXIT_INTERRUPTED : 1));
    });
  });
}

/** Safe to call again: stop() is idempotent, so later calls also wait for earlier ones. */
async function stopServers() {
  await Promise.allSettled(servers.map((server) => server.stop()));
}

// Ctrl+C in a terminal reaches the CLI child too (same process group), and it
// stops cleanly by itself; we only wait for it. A SIGTERM sent to us alone is
// passed on. With no CLI running (e.g. while seeding) we stop the servers now,
// which makes the seeding fail fast, and main() unwinds at its next checkpoint.
function onSignal(signal) {
  if (runningStep) {
    if (signal === 'SIGTERM') runningStep.kill('SIGTERM');
    return;
  }
  if (interrupted) return;
  interrupted = true;
  console.error('\ndemo: interrupted, stopping the servers');
  void stopServers();
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

class Interrupted extends Error {}
function checkpoint() {
  if (interrupted) throw new Interrupted();
}

async function main() {
  if (!existsSync(join(ROOT, 'dist'))) {
    console.error('demo: dist/ is missing; run `npm run demo` (it builds first) or `npm run build`.');
    return 1;
  }
  const stateDir = await mkdtemp(join(tmpdir(), 's3migrate-demo-'));
  const statePath = join(stateDir, 'state.db');

  banner('Starting two local S3 endpoints (s3rver)');
  const source = await startS3rver({ buckets: [SOURCE_BUCKET] });
  servers.push(source);
  const dest = await startS3rver({ buckets: [DEST_BUCKET] });
  servers.push(dest);
  checkpoint();
  console.log(`source  ${source.endpoint}  bucket ${SOURCE_BUCKET}`);
  console.log(`dest    ${dest.endpoint}  bucket ${DEST_BUCKET}`);

  banner(`Seeding s3://${SOURCE_BUCKET} with sample objects`);
  const started = Date.now();
  const client = s3rverClient(source.endpoint);
  const seeded = await seedDemoBucket(client, SOURCE_BUCKET).finally(() => client.destroy());
  checkpoint();
  const mib = (seeded.bytes / 2 ** 20).toFixed(1);
  console.log(`${seeded.objects} objects, ${mib} MiB in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  // cwd = the state dir: no stray .env from the user's working directory applies.
  const options = { env: cliEnvironment(source, dest), cwd: stateDir };
  const steps = [
    ['Step 1/3: catalog the source', ['catalog', '--from', `s3://${SOURCE_BUCKET}`, '--state', statePath]],
    ['Step 2/3: copy, newest first', ['copy', '--to', `s3://${DEST_BUCKET}`, '--sort', 'newest', '--multipart-threshold', '8MiB', '--state', statePath]],
    ['Step 3/3: status', ['status', '--state', statePath]],
  ];
  let exitCode = 0;
  for (const [title, args] of steps) {
    checkpoint();
    banner(title);
    const code = await runCli(args, options);
    if (code === 0) continue;
    exitCode ||= code;
    console.error(`\ndemo: \`s3migrate ${args[0]}\` exited with code ${code}`);
    if (code !== EXIT_PARTIAL) break;
  }

  banner(exitCode === 0 ? 'Done' : 'Stopped');
  console.log(`State file (kept): ${statePath}`);
  console.log('Explore it with:');
  console.log(`  sqlite3 ${shellQuote(statePath)} "select * from status_summary"`);
  console.log(`  node bin/s3migrate.js status --state ${shellQuote(statePath)}`);
  return exitCode;
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (err) {
  if (interrupted) exitCode = EXIT_INTERRUPTED; // the failure is only the servers going away
  else console.error(`demo: ${err instanceof Error ? err.stack : err}`);
} finally {
  await stopServers();
}
process.exit(exitCode);
