// The fencing scenario both state stores must pass (test/workers.test.ts on SQLite, test/fleet-postgres.test.ts
// on PostgreSQL): worker A is stopped (SIGSTOP) the moment its first part upload arrives, holding rows and
// recorded uploads; worker B copies everything, A's rows included once their lease ran out; A runs again
// (SIGCONT) and writes nothing: its marks are refused (lease-lost), it completes no upload, and every
// multipart object was completed exactly once.
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { expectExit, runCli, startCli, type CliOptions } from './cli.js';
import { requestsPerKey, waitFor } from './copy-fixtures.js';
import type { RequestProxy, RequestProxyOptions } from './request-proxy.js';

export interface PausedWorkerScenario {
  /** Starts the proxy both workers send their destination requests through. */
  proxy: (options: RequestProxyOptions) => Promise<RequestProxy>;
  /** The workers' environment with the destination at `endpoint` (the proxy). */
  env: (endpoint: string) => CliOptions['env'];
  cwd?: string;
  /** The copy command, writing its JSON log to `log`. */
  args: (log: string) => string[];
  logs: { a: string; b: string };
  bucket: string;
  multipartKeys: readonly string[];
  /** Keys of the rows in flight now (read from the state). */
  inFlight: () => Promise<string[]>;
  /** Once A is stopped, before its rows are read: lets the store settle (PostgreSQL: no transaction of A's left open). */
  settle?: (pid: number) => Promise<void>;
  /** Every row done on evidence, no lease left; the destination holds the corpus. */
  expectFinished: () => Promise<void>;
}

/** The keys a JSON log reports done, and those whose lease the worker found lost. */
export function loggedOutcomes(file: string): { done: string[]; lost: string[] } {
  const lines = readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as { event: string; key?: string });
  return {
    done: lines.filter((line) => line.event === 'object-done').map((line) => line.key!),
    lost: lines.filter((line) => line.event === 'lease-lost').map((line) => line.key!),
  };
}

export async function pausedWorkerScenario(scenario: PausedWorkerScenario): Promise<void> {
  let pausedPid: number | undefined;
  const counted = await scenario.proxy({
    onRequest: (info) => {
      if (info.op === 'UploadPart' && pausedPid === undefined && a.child.pid !== undefined) {
        pausedPid = a.child.pid;
        process.kill(pausedPid, 'SIGSTOP');
      }
    },
  });
  const options: CliOptions = { env: scenario.env(counted.endpoint), ...(scenario.cwd ? { cwd: scenario.cwd } : {}) };
  const a = startCli(scenario.args(scenario.logs.a), options);
  try {
    await waitFor(() => pausedPid !== undefined, 20_000, 'worker A to send a part');
    await scenario.settle?.(pausedPid!);
    const heldByA = await scenario.inFlight();
    expect(heldByA.length).toBeGreaterThan(0);

    // Worker B copies everything else, takes over A's rows once their lease ran out, and finishes them.
    expectExit(await runCli(scenario.args(scenario.logs.b), options), 0);
    await scenario.expectFinished();
    const byB = loggedOutcomes(scenario.logs.b);
    expect(byB.done).toEqual(expect.arrayContaining(heldByA));

    // A runs again: every write it attempts for those rows is refused.
    const seenBefore = counted.log().length;
    process.kill(pausedPid!, 'SIGCONT');
    expectExit(await a.result, 0);
    // Nothing A sends completes a write: a Complete it had checked its lease for just before the pause may
    // still go out, and is refused (B completed that upload), as the state refuses its marks. (A create
    // sent before the pause may be retried when A wakes: an upload A cannot record is aborted once answered.)
    const written = counted
      .log()
      .slice(seenBefore)
      .filter((entry) => ['CompleteMultipartUpload', 'PutObject'].includes(entry.op) && entry.status >= 200 && entry.status < 300);
    expect(written.map((entry) => `${entry.op} ${entry.path} ${entry.status}`)).toEqual([]);
    const byA = loggedOutcomes(scenario.logs.a);
    expect(byA.done.filter((key) => heldByA.includes(key))).toEqual([]);
    expect(byA.done.filter((key) => byB.done.includes(key))).toEqual([]);
    expect(byA.lost.length).toBeGreaterThan(0);
    expect(byA.lost.every((key) => heldByA.includes(key))).toBe(true);

    // One completed upload per multipart object, across both workers; bytes right; every row done.
    const completed = counted.log().filter((entry) => entry.status >= 200 && entry.status < 300);
    const completes = requestsPerKey(completed, scenario.bucket, 'CompleteMultipartUpload');
    for (const key of scenario.multipartKeys) expect(completes.get(key), key).toBe(1);
    await scenario.expectFinished();
  } finally {
    if (a.child.exitCode === null && a.child.signalCode === null) {
      process.kill(pausedPid ?? a.child.pid!, 'SIGCONT');
      a.child.kill('SIGKILL');
    }
  }
}
