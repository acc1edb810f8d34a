import { randomBytes } from 'node:crypto';
import os from 'node:os';

/** A new copy worker's id: `host:pid:random`, so that workers of this host can tell a dead one. */
export function newWorkerId(): string {
  return `${os.hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
}

/** True when a process of this host with this pid runs (EPERM: it runs, as another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A worker id of this host whose process no longer runs: its leases can expire at once. */
export function deadLocalWorker(owner: string): boolean {
  const [host, pid] = owner.split(':');
  return host === os.hostname() && Number.isInteger(Number(pid)) && !processAlive(Number(pid));
}
