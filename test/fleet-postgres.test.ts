// A fleet of copy workers on one PostgreSQL state, end to end (issue 13): 4 separate `copy --workers 1`
// processes copy a corpus byte for byte, each object written once; 2 of 4 workers killed with SIGKILL
// mid-run leave nothing half done (status stays consistent while they run) and the other 2 finish the
// job once the dead workers' leases expire; the Kubernetes Job's own command and environment, run as 3
// local processes, finish a migration; a worker paused (SIGSTOP) past its lease marks nothing and completes
// no upload it lost once it runs again. Requests are counted through a proxy, never timed.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { s3rverClient, startS3rver, type S3rverHandle } from '../scripts/servers/s3rver.js';
import { expectExit, runCli, s3rverEnv, startCli } from './support/cli.js';
import {
  bytes,
  expectBucketHolds,
  listKeys,
  MiB,
  requestsPerKey,
  seed,
  sleep,
  tempDir,
  teardown,
  waitFor,
  type SeedObject,
} from './support/copy-fixtures.js';
import { PgStore } from '../src/state/postgres/pg-store.js';
import { SORT_ORDERS } from '../src/state/types.js';
import { jobCommand } from './support/k8s-job.js';
import { describePostgres } from './support/postgres.js';
import { pausedWorkerScenario } from './support/paused-worker.js';
import { startRequestProxy, type RequestProxy } from './support/request-proxy.js';

const K8S = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../deploy/kubernetes');
const PART = 5 * MiB;
const CORPUS: SeedObject[] = [
  ...Array.from({ length: 194 }, (_, i) => ({ key: `small/${String(i).padStart(3, '0')}.bin`, body: bytes(100 + ((i * 7919) % 30_000)) })),
  ...Array.from({ length: 6 }, (_, i) => ({ key: `big/${i}.bin`, body: bytes(PART + 1 + i * 1_000_000 + (i % 2) * PART) })),
];
const SMALL_KEYS = CORPUS.filter((object) => object.key.startsWith('small/')).map((object) => object.key);
const BIG_KEYS = CORPUS.filter((object) => object.key.startsWith('big/')).map((object) => object.key);
const MULTIPART = ['--multipart-threshold', '5MiB', '--part-size', '5MiB'];
/** The fencing test's corpus: every multipart object and 20 small ones. */
const FENCED = CORPUS.filter((object) => object.key.startsWith('big/') || object.key < 'small/020');
const SLOW: SeedObject[] = Array.from({ length: 80 }, (_, i) => ({ key: `s/${String(i).padStart(2, '0')}`, body: bytes(1000 + i * 13) }));

let source: S3rverHandle;
let dest: S3rverHandle;
let sourceClient: S3Client;
let destClient: S3Client;
let work: Awaited<ReturnType<typeof tempDir>>;
const proxies: RequestProxy[] = [];

beforeAll(async () => {
  [source, dest] = await Promise.all([
    startS3rver({ buckets: ['corpus', 'slow', 'fence'] }),
    startS3rver({ buckets: ['pg-four', 'pg-killed', 'pg-job', 'pg-fenced'] }),
  ]);
  sourceClient = s3rverClient(source.endpoint);
  destClient = s3rverClient(dest.endpoint);
  await Promise.all([seed(sourceClient, 'corpus', CORPUS), seed(sourceClient, 'slow', SLOW), seed(sourceClient, 'fence', FENCED)]);
  work = await tempDir('fleet-pg');
}, 60_000);

afterAll(() => teardown({ proxies, clients: [sourceClient, destClient], servers: [source, dest], work }));

async function proxy(options: Parameters<typeof startRequestProxy>[1] = {}): Promise<RequestProxy> {
  const started = await startRequestProxy(dest.endpoint, options);
  proxies.push(started);
  return started;
}

async function expectCorpusAt(bucket: string, corpus: readonly SeedObject[]): Promise<void> {
  await expectBucketHolds(destClient, bucket, corpus);
}

describePostgres('a fleet of copy workers on a PostgreSQL state', (pg) => {
  const env = (destEndpoint: string, extra: Record<string, string | undefined> = {}): Record<string, string | undefined> => ({
    ...s3rverEnv(source.endpoint, destEndpoint),
    PGHOST: undefined,
    PGPORT: undefined,
    PGUSER: undefined,
    PGDATABASE: undefined,
    PGPASSFILE: undefined,
    PGSSLMODE: undefined,
    S3MIGRATE_STATE_URL: undefined,
    HOME: work.dir,
    PGPASSWORD: pg().password,
    ...extra,
  });

  const rowsOf = async (database: string): Promise<Array<{ key: string; status: string; evidence: string | null; lease_owner: string | null }>> =>
    (
      await pg().query<{ key: string; status: string; evidence: string | null; lease_owner: string | null }>(
        'SELECT key, status, evidence, lease_owner FROM s3migrate.objects ORDER BY key',
        [],
        database,
      )
    ).rows;

  const expectAllDone = async (database: string, count: number): Promise<void> => {
    const rows = await rowsOf(database);
    expect(rows.length).toBe(count);
    expect(rows.filter((row) => row.status !== 'done' || row.evidence === null || row.lease_owner !== null)).toEqual([]);
  };

  async function catalog(bucket: string, database: string): Promise<string[]> {
    const state = ['--state', pg().urlOf(database), '--migration', 'fleet'];
    expectExit(await runCli(['catalog', '--from', `s3://${bucket}`, ...state, '--quiet'], { env: env(dest.endpoint), cwd: work.dir }), 0);
    return state;
  }

  it('4 separate `copy --workers 1` processes copy 200 objects (6 multipart) byte for byte, each written once', async () => {
    const database = await pg().createDatabase();
    const state = await catalog('corpus', database);
    const counted = await proxy();
    const workers = Array.from({ length: 4 }, () =>
      startCli(['copy', '--to', 's3://pg-four', ...state, '--workers', '1', '--concurrency', '8', ...MULTIPART, '--quiet'], {
        env: env(counted.endpoint),
        cwd: work.dir,
      }),
    );
    for (const result of await Promise.all(workers.map((worker) => worker.result))) expectExit(result, 0);
    await expectCorpusAt('pg-four', CORPUS);
    await expectAllDone(database, CORPUS.length);

    const log = counted.log();
    const puts = requestsPerKey(log, 'pg-four', 'PutObject');
    expect(SMALL_KEYS.filter((key) => puts.get(key) !== 1)).toEqual([]);
    expect([...puts.keys()].filter((key) => !SMALL_KEYS.includes(key))).toEqual([]);
    const creates = requestsPerKey(log, 'pg-four', 'CreateMultipartUpload');
    const completes = requestsPerKey(log, 'pg-four', 'CompleteMultipartUpload');
    for (const key of BIG_KEYS) {
      expect(creates.get(key), key).toBe(1);
      expect(completes.get(key), key).toBe(1);
    }
    const parts = BIG_KEYS.reduce((total, key) => total + Math.ceil(CORPUS.find((o) => o.key === key)!.body.length / PART), 0);
    expect(log.filter((entry) => entry.op === 'UploadPart').length).toBe(parts);
  }, 90_000);

  it('workers starting together each ready the copy (the --sort index is built once, nobody fails on it)', async () => {
    // Regression: a worker that waited for another to build the index looked it up in a stale catalog
    // cache, tried to build it too and stopped with 42P07 (relation already exists): exit 1.
    for (let round = 0; round < 3; round += 1) {
      const database = await pg().createDatabase();
      await catalog('slow', database);
      const stores = await Promise.all(
        Array.from({ length: 6 }, () =>
          PgStore.open(pg().urlOf(database), { create: false, readonly: false, migration: 'fleet', env: { PGPASSWORD: pg().password } }),
        ),
      );
      try {
        for (const order of SORT_ORDERS) await Promise.all(stores.map((store) => store.prepareCopy(order)));
      } finally {
        await Promise.all(stores.map((store) => store.close()));
      }
    }
  }, 60_000);

  it('2 of 4 workers killed with SIGKILL mid-run: the others finish after the leases expire; status stays consistent', async () => {
    const database = await pg().createDatabase();
    const state = await catalog('slow', database);
    // Slow PUTs keep the run going long enough to kill workers in the middle of it.
    const slowed = await proxy({ onRequest: async (info) => (info.op === 'PutObject' ? sleep(250) : undefined) });
    const workers = Array.from({ length: 4 }, () =>
      startCli(['copy', '--to', 's3://pg-killed', ...state, '--workers', '1', '--lease-seconds', '3', '--concurrency', '2', '--quiet'], {
        env: env(slowed.endpoint),
        cwd: work.dir,
      }),
    );

    /** `status` while it runs, and the rule it must show: no row done that is not at the destination. */
    const consistent = async (): Promise<number> => {
      const status = await runCli(['status', ...state, '--json'], { env: env(dest.endpoint), cwd: work.dir });
      expectExit(status, 0);
      const summary = JSON.parse(status.stdout) as { objectsTotal: number; objectsDone: number };
      expect(summary.objectsTotal).toBe(SLOW.length);
      const done = (await rowsOf(database)).filter((row) => row.status === 'done').map((row) => row.key);
      // Listed after the rows were read: whatever was done then is at the destination now.
      const there = new Set(await listKeys(destClient, 'pg-killed'));
      expect(done.filter((key) => !there.has(key))).toEqual([]);
      expect(summary.objectsDone).toBeLessThanOrEqual(there.size);
      return summary.objectsDone;
    };

    try {
      await waitFor(() => slowed.log().filter((entry) => entry.op === 'PutObject').length >= 12, 30_000, '12 PUTs');
      for (const worker of workers.slice(0, 2)) worker.child.kill('SIGKILL');
      const killed = await Promise.all(workers.slice(0, 2).map((worker) => worker.result));
      for (const result of killed) expect(result.signal).toBe('SIGKILL');
      const during = await consistent();
      expect(during).toBeLessThan(SLOW.length);
      // The dead workers' rows are still leased to them: in flight, not lost.
      const inFlight = (await rowsOf(database)).filter((row) => row.status === 'in_flight');
      expect(inFlight.length).toBeGreaterThan(0);

      for (const result of await Promise.all(workers.slice(2).map((worker) => worker.result))) expectExit(result, 0);
      expect(await consistent()).toBe(SLOW.length);
      const after = await runCli(['status', ...state], { env: env(dest.endpoint), cwd: work.dir });
      expectExit(after, 0);
      await expectAllDone(database, SLOW.length);
      await expectCorpusAt('pg-killed', SLOW);
    } finally {
      for (const worker of workers) worker.child.kill('SIGKILL');
    }
  }, 90_000);

  it('fencing: a worker paused past its lease marks nothing it lost and completes no upload it lost after SIGCONT', async () => {
    const database = await pg().createDatabase();
    const state = await catalog('fence', database);
    await pausedWorkerScenario({
      proxy,
      env: (endpoint) => env(endpoint),
      cwd: work.dir,
      args: (log) => [
        'copy', '--to', 's3://pg-fenced', ...state, '--workers', '1', '--lease-seconds', '2', '--concurrency', '4',
        '--part-concurrency', '1', ...MULTIPART, '--log-format', 'json', '--log-file', log,
      ],
      logs: { a: work.file('pg-a.ndjson'), b: work.file('pg-b.ndjson') },
      bucket: 'pg-fenced',
      multipartKeys: BIG_KEYS,
      inFlight: async () => (await rowsOf(database)).filter((row) => row.status === 'in_flight').map((row) => row.key),
      // A paused inside a state transaction would keep its rows locked from B (B skips locked rows): a
      // scenario of its own. Here A runs on for a few milliseconds at a time until it holds none open.
      settle: async (pid) => {
        const open = async (): Promise<number> =>
          (
            await pg().query<{ n: number }>(
              "SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND state LIKE 'idle in transaction%'",
              [database],
              database,
            )
          ).rows[0]!.n;
        for (let tries = 0; (await open()) > 0; tries += 1) {
          expect(tries).toBeLessThan(200);
          process.kill(pid, 'SIGCONT');
          await sleep(5);
          process.kill(pid, 'SIGSTOP');
          await sleep(20);
        }
      },
      expectFinished: async () => {
        await expectAllDone(database, FENCED.length);
        await expectCorpusAt('pg-fenced', FENCED);
      },
    });
  }, 90_000);

  it("the Kubernetes Jobs' own commands and environment: the catalog Job, then the copy Job as 3 local processes", async () => {
    const database = await pg().createDatabase();
    const counted = await proxy();
    const options = {
      secrets: { SOURCE_AWS_ACCESS_KEY_ID: 'S3RVER', SOURCE_AWS_SECRET_ACCESS_KEY: 'S3RVER', DEST_AWS_ACCESS_KEY_ID: 'S3RVER', DEST_AWS_SECRET_ACCESS_KEY: 'S3RVER', PGPASSWORD: pg().password },
      config: {
        S3MIGRATE_FROM: 's3://slow',
        S3MIGRATE_TO: 's3://pg-job',
        S3MIGRATE_MIGRATION: 'k8s',
        S3MIGRATE_STATE_URL: pg().urlOf(database),
        SOURCE_ENDPOINT: source.endpoint,
        SOURCE_AWS_REGION: 'us-east-1',
        DEST_ENDPOINT: counted.endpoint,
        DEST_AWS_REGION: 'us-east-1',
      },
    };
    const catalogJob = jobCommand(path.join(K8S, 'catalog-job.yaml'), options);
    const copyJob = jobCommand(path.join(K8S, 'copy-job.yaml'), options);
    const jobEnv = (command: typeof copyJob) => ({ ...env(dest.endpoint), ...command.env });
    expectExit(await runCli(catalogJob.argv, { env: jobEnv(catalogJob), cwd: work.dir }), 0);

    // A pod is one worker: the Job's command says so rather than counting the node's cores.
    expect(copyJob.argv.slice(copyJob.argv.indexOf('--workers'), copyJob.argv.indexOf('--workers') + 2)).toEqual(['--workers', '1']);
    const pods = Array.from({ length: 3 }, () => startCli(copyJob.argv, { env: jobEnv(copyJob), cwd: work.dir }));
    for (const result of await Promise.all(pods.map((pod) => pod.result))) expectExit(result, 0);
    await expectAllDone(database, SLOW.length);
    await expectCorpusAt('pg-job', SLOW);
    const puts = requestsPerKey(counted.log(), 'pg-job', 'PutObject');
    expect(SLOW.filter((object) => puts.get(object.key) !== 1).map((object) => object.key)).toEqual([]);
  }, 60_000);
});
