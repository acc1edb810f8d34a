// A throwaway Ceph RADOS Gateway for the compatibility tests: wraps test/servers/rgw.sh (one mon, one
// OSD, radosgw on 127.0.0.1, everything under one temporary directory). Free of the AWS SDK on purpose:
// vitest.config.ts imports rgwAvailable() to decide whether the suite runs.
import { execFile, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const RGW_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'rgw.sh');
const DAEMONS = ['radosgw', 'radosgw-admin', 'ceph-mon', 'ceph-osd'];
const START_TIMEOUT_MS = 120_000;

export interface RgwUser {
  uid: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface RgwHandle {
  /** e.g. `http://127.0.0.1:40123` */
  endpoint: string;
  /** Everything of this cluster: conf, data, logs (log/), pid files, admin sockets. */
  dir: string;
  /** Milliseconds the cluster took to start. */
  startMs: number;
  /** Creates an S3 user with these fixed keys (idempotent). */
  createUser(uid: string, accessKeyId: string, secretAccessKey: string): Promise<RgwUser>;
  /** Stops the daemons (by PID) and removes `dir` (kept when S3MIGRATE_RGW_KEEP=1, for a look at the logs). */
  stop(): Promise<void>;
}

function onPath(name: string): boolean {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/bin', '/usr/sbin'];
  return dirs.some((dir) => {
    if (!dir) return false;
    try {
      accessSync(path.join(dir, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * True when the RGW suite can run here: Ceph's daemons are installed (test/servers/rgw.sh install).
 * S3MIGRATE_RGW=1 forces the suite on (it then fails loudly if they are missing), S3MIGRATE_RGW=0 off.
 */
export function rgwAvailable(): boolean {
  const forced = process.env.S3MIGRATE_RGW;
  if (forced === '1') return true;
  if (forced === '0') return false;
  return DAEMONS.every(onPath);
}

function runScript(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', [RGW_SCRIPT, ...args], { timeout: timeoutMs, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`test/servers/rgw.sh ${args[0]} failed (${error.message.split('\n')[0]})\n${stderr.trim()}`));
      } else {
        resolve(stdout.trim());
      }
    });
  });
}

/** Starts a fresh single-node cluster with radosgw in a new temporary directory. */
export async function startRgw(): Promise<RgwHandle> {
  if (!DAEMONS.every(onPath)) {
    throw new Error('Ceph is not installed: run `sudo test/servers/rgw.sh install` (Debian/Ubuntu), or unset S3MIGRATE_RGW.');
  }
  const dir = mkdtempSync(path.join(tmpdir(), 's3migrate-rgw-'));
  const keep = process.env.S3MIGRATE_RGW_KEEP === '1';
  // A test process that dies without calling stop() must not leave three daemons behind.
  const stopNow = (): void => {
    spawnSync('bash', [RGW_SCRIPT, 'stop', dir], { stdio: 'ignore', timeout: 15_000 });
    if (!keep) rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stopNow);

  const started = Date.now();
  let output: string;
  try {
    output = await runScript(['start', dir], START_TIMEOUT_MS);
  } catch (error) {
    process.off('exit', stopNow);
    stopNow();
    throw error;
  }
  const startMs = Date.now() - started;
  const endpoint = output.split('\n').pop()!;
  if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(endpoint)) {
    process.off('exit', stopNow);
    stopNow();
    throw new Error(`test/servers/rgw.sh start printed no endpoint: ${output}`);
  }

  let stopping: Promise<void> | undefined;
  return {
    endpoint,
    dir,
    startMs,
    async createUser(uid, accessKeyId, secretAccessKey) {
      await runScript(['create-user', dir, uid, accessKeyId, secretAccessKey], 60_000);
      return { uid, accessKeyId, secretAccessKey };
    },
    stop() {
      stopping ??= (async () => {
        process.off('exit', stopNow);
        await runScript(['stop', dir], 30_000).catch(() => undefined);
        if (!keep) rmSync(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}
