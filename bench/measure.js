// Bench helpers: runs a command under GNU time, reads a server's CPU time from /proc (wall, client CPU, peak RSS),
// starts the bench's helper servers, and reads --flags.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const TICKS_PER_SECOND = 100;

/** User+system CPU seconds a process has used so far (Linux /proc). */
export function processCpuSeconds(pid) {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return NaN;
  }
}

/**
 * Seconds the main thread of a process has spent runnable but waiting for a core (Linux /proc schedstat):
 * on a machine where the servers share the cores with the client, how long a server was held up by the others.
 */
export function mainThreadWaitSeconds(pid) {
  try {
    return Number(fs.readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e9;
  } catch {
    return NaN;
  }
}

/** The machine's CPU time so far, in seconds summed over cores: { busy, idle } (idle includes I/O wait). */
export function machineCpuSeconds() {
  const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = fields[3] + fields[4];
  const total = fields.slice(0, 8).reduce((sum, value) => sum + value, 0);
  return { busy: (total - idle) / TICKS_PER_SECOND, idle: idle / TICKS_PER_SECOND };
}

/** Runs argv under /usr/bin/time; resolves { wall, cpu, user, sys, rssMiB, code, stderr } (CPU in seconds). */
export function timed(argv, env) {
  const out = path.join(os.tmpdir(), `s3migrate-bench-time-${process.pid}-${Date.now()}`);
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', '%e %U %S %M', '-o', out, ...argv], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      const [wall, user, sys, rssKiB] = fs.readFileSync(out, 'utf8').trim().split('\n').pop().split(' ').map(Number);
      fs.rmSync(out, { force: true });
      resolve({ wall, cpu: user + sys, user, sys, rssMiB: rssKiB / 1024, code, stderr: stderr.slice(-2000) });
    });
  });
}

/** The value after `--NAME` on the command line, or `fallback`. */
export function flag(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : fallback;
}

/**
 * Starts a helper server script (`node SCRIPT ARGS...`: a proxy, the synthetic listing server) that prints
 * one JSON line (`{"port":N,...}`) once it listens; resolves with the child and that line, parsed. stdin is
 * a pipe (the helpers stop when it closes), stderr is inherited.
 */
export async function startHelper(argv) {
  const child = spawn(process.execPath, argv, { stdio: ['pipe', 'pipe', 'inherit'] });
  const info = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      if (out.includes('\n')) resolve(JSON.parse(out.slice(0, out.indexOf('\n'))));
    });
    child.once('exit', (code) => reject(new Error(`${path.basename(argv[0])} exited with ${code}`)));
  });
  return { child, info };
}
