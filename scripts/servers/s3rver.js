// Starts s3rver (an in-process S3 emulator) in a child process bound to
// 127.0.0.1 on a free port, for tests and the demo.
//
// Why a child process: s3rver 3.7 encrypts ListObjectsV2 continuation tokens
// with DES, which Node 20 only allows under --openssl-legacy-provider; without
// it every listing over 1,000 keys fails with HTTP 500. The flag stays confined
// to the child instead of the test runner or the CLI under test.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { S3Client } from '@aws-sdk/client-s3';

const CHILD = fileURLToPath(new URL('./s3rver-child.cjs', import.meta.url));
const START_TIMEOUT_MS = 20_000;
const KILL_GRACE_MS = 3_000;

/** s3rver accepts only this key pair (and checks no signature). */
// Not frozen: the SDK may tag a credentials object it is handed.
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/**
 * @typedef {object} S3rverHandle
 * @property {string} endpoint e.g. `http://127.0.0.1:54321`
 * @property {number} port
 * @property {string} dir directory holding the stored objects
 * @property {() => Promise<void>} stop kills the server; removes `dir` if we created it
 */

/**
 * Starts one s3rver instance.
 * @param {{ buckets?: string[], dir?: string }} [options]
 * @returns {Promise<S3rverHandle>}
 */
export async function startS3rver({ buckets = [], dir } = {}) {
  const ownDir = !dir;
  const dataDir = dir ?? (await mkdtemp(join(tmpdir(), 's3rver-')));

  // stdin is a pipe so the child notices if we die without calling stop().
  // Own process group (POSIX): a terminal Ctrl+C reaches the CLI under test,
  // which then stops cleanly, but not the server it is still talking to.
  const child = spawn(process.execPath, ['--openssl-legacy-provider', CHILD, dataDir, ...buckets], {
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: process.platform !== 'win32',
  });
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: null, signal: null })); // failed to spawn: no 'exit' follows
  });

  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-8_000); // keep the tail for error messages
  });

  let port;
  try {
    port = await readPort(child, exited, () => stderr);
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    if (ownDir) await rm(dataDir, { recursive: true, force: true });
    throw err;
  }

  let stopping;
  const stop = () =>
    (stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }
      child.stdin.destroy();
      if (ownDir) await rm(dataDir, { recursive: true, force: true });
    })());

  return { endpoint: `http://127.0.0.1:${port}`, port, dir: dataDir, pid: child.pid, stop };
}

/** Waits for the child's `{"port":N}` line, its early exit, or the timeout. */
function readPort(child, exited, getStderr) {
  return new Promise((resolve, reject) => {
    let out = '';
    const fail = (why) => {
      cleanup();
      const tail = getStderr().trim();
      reject(new Error(`s3rver did not start: ${why}${tail ? `\n--- s3rver stderr ---\n${tail}` : ''}`));
    };
    const onData = (chunk) => {
      out += chunk;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      try {
        const { port } = JSON.parse(out.slice(0, nl));
        if (!Number.isInteger(port)) throw new Error('no port');
        cleanup();
        resolve(port);
      } catch {
        fail(`unexpected output ${JSON.stringify(out.slice(0, nl))}`);
      }
    };
    const timer = setTimeout(() => fail(`no port after ${START_TIMEOUT_MS / 1000} s`), START_TIMEOUT_MS);
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout.off('data', onData);
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', onData);
    child.once('error', (err) => fail(err.message));
    // Give stderr a moment to drain so the message includes the child's reason.
    exited.then(({ code, signal }) => setTimeout(() => fail(`exited early (code ${code}, signal ${signal})`), 50));
  });
}

/**
 * An S3Client for an s3rver endpoint. Checksums only when required: s3rver
 * does not understand the SDK's default flexible checksums (CRC32 trailers).
 * @param {string} endpoint
 * @returns {S3Client}
 */
export function s3rverClient(endpoint) {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { ...S3RVER_CREDENTIALS },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}
