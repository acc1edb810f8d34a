// Claim throughput of the state store alone (no S3): a synthetic catalog of N rows (the real catalog code
// with a synthetic lister, as bench/catalog-ingest.js), then W worker processes (forks of this script, as
// `copy --workers` and a fleet run them) that each join as a worker and run the copy engine's own
// Scheduler (dist/copy/scheduler.js, window --concurrency, default 32 as `copy`): it claims with
// claimPending(order, batch) at the engine's batch size (claimBatch in dist/copy/scheduler.js: half the
// window, at most 64: 16 at 32), and the "work" of each row is only its markDone with the CopyResult a
// streamed small object gets. Until no row is pending. Then the end state is checked: every row done,
// claimed exactly once (attempts), marked exactly once (the workers' done counts add up to the rows), and
// the status counters equal a full scan.
//
// Usage (after npm run build):
//   node bench/claims.js [--rows 1000000] [--workers 1,2,4,8] [--sort key,newest] [--stores sqlite,pg]
//                        [--repeat 2] [--concurrency 32] [--batch N (fixed claim size instead of the engine's)]
//                        [--cpu-prof DIR (profiles of the workers)] [--json]
// PostgreSQL: a throwaway cluster from test/servers/postgres.sh (Debian's packages: test/servers/postgres.sh
// install) in a temporary directory on 127.0.0.1, stopped and removed at the end.
import { execFileSync, fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import Database from 'better-sqlite3';
import { runCatalog } from '../dist/catalog/catalog.js';
import { openStateStore } from '../dist/state/open-store.js';
import { Scheduler } from '../dist/copy/scheduler.js';
import { DEFAULT_LEASE_MS } from '../dist/copy/copy-engine.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const POSTGRES_SH = path.join(HERE, '..', 'test', 'servers', 'postgres.sh');
const PG_USER = 's3migrate';
const PG_PASSWORD = 's3migrate-test-password';

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

// ---- worker process -------------------------------------------------------------------------------

async function worker(config) {
  const env = { ...process.env, PGPASSWORD: PG_PASSWORD };
  const store = await openStateStore(config.location, { create: false, readonly: false, env });
  await store.joinAsWorker(DEFAULT_LEASE_MS);
  // As the engine: leases renewed every third of their length (a run this short may not reach one).
  const renewal = setInterval(() => void store.renewLeases().catch((error) => fail(error)), DEFAULT_LEASE_MS / 3);
  renewal.unref();

  // Time inside the store's synchronous work (SQLite: the claim transaction, the group commit of marks,
  // including waits on another worker's write lock); for PostgreSQL the work is in the server (its CPU is
  // measured by the parent) and this is only the driver's part before its first await.
  let storeNs = 0n;
  const timed = (fn) =>
    function (...args) {
      const t = process.hrtime.bigint();
      try {
        return fn.apply(this, args);
      } finally {
        storeNs += process.hrtime.bigint() - t;
      }
    };
  const marks = store.marks;
  if (marks && typeof marks.flush === 'function' && config.kind === 'sqlite') marks.flush = timed(marks.flush);
  const claimPending = timed(store.claimPending.bind(store));

  let claims = 0;
  let claimed = 0;
  let marked = 0;
  const fail = (error) => {
    process.send({ type: 'error', message: String(error?.stack ?? error) });
    process.exit(1);
  };
  await new Promise((resolve) => {
    process.once('message', resolve);
    process.send({ type: 'ready' });
  });
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const scheduler = new Scheduler(config.concurrency);
  await scheduler
    .run(
      async (count) => {
        claims += 1;
        const rows = await claimPending(config.order, config.batch ?? count);
        claimed += rows.length;
        return rows;
      },
      async (row) => {
        // What the engine passes for an object streamed in one PUT and proven by its MD5.
        await store.markDone(row.id, { destKey: row.key, destEtag: row.etag, evidence: 'md5', method: 'stream' });
        marked += 1;
      },
      async (rows) => fail(new Error(`released ${rows.length} rows`)),
    )
    .catch(fail);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(renewal);
  process.send({
    type: 'done',
    claims,
    claimed,
    marked,
    seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    storeSeconds: Number(storeNs) / 1e9,
  });
  // Connections stay open until the parent sampled the server's CPU.
  await new Promise((resolve) => process.once('message', resolve));
  await store.close();
  process.exit(0);
}

// ---- parent ---------------------------------------------------------------------------------------

async function main() {
  const rows = Number(option('rows', '1000000'));
  const workerCounts = option('workers', '1,2,4,8').split(',').map(Number);
  const orders = option('sort', 'key,newest').split(',');
  const kinds = option('stores', 'sqlite,pg').split(',');
  const repeat = Number(option('repeat', '2'));
  const concurrency = Number(option('concurrency', '32'));
  const batch = option('batch') === undefined ? undefined : Number(option('batch'));
  const profileDir = option('cpu-prof');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 's3migrate-claims-'));
  fs.chmodSync(dir, 0o755);
  const results = [];
  let server;
  try {
    for (const kind of kinds) {
      const base = kind === 'sqlite' ? await sqliteBase(dir, rows) : await pgBase((server = startPostgres(dir)), rows);
      for (const order of orders) {
        for (const workers of workerCounts) {
          for (let run = 1; run <= repeat; run += 1) {
            const result = await oneRun({ kind, base, order, workers, rows, concurrency, batch, profileDir, dir, server, run });
            results.push(result);
            console.error(
              `${kind} --sort ${order} W=${workers} run ${run}: ${result.objectsPerSecond.toLocaleString('en-US')} objects/s ` +
                `(${result.seconds.toFixed(1)} s; ${result.claimSize} rows/claim; worker CPU ${result.workerCpu.toFixed(1)} s, ` +
                `in store ${result.storeSeconds.toFixed(1)} s${result.serverCpu === undefined ? '' : `, server CPU ${result.serverCpu.toFixed(1)} s`}; ${result.check})`,
            );
          }
        }
      }
    }
  } finally {
    if (server) stopPostgres(server);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (process.argv.includes('--json')) console.log(JSON.stringify(results, null, 2));
  else printTable(results, { rows, concurrency, batch });
}

/** The catalog in a SQLite file, built once; every run works on a copy of it. */
async function sqliteBase(dir, rows) {
  const file = path.join(dir, 'base.db');
  const store = await openStateStore(file, { create: true, readonly: false });
  const seconds = await catalog(store, rows);
  await store.close();
  console.error(`sqlite: catalog of ${rows.toLocaleString('en-US')} rows in ${seconds.toFixed(1)} s`);
  return { file };
}

/** The catalog in a PostgreSQL database, built once; every run works on a copy (CREATE DATABASE ... TEMPLATE). */
async function pgBase(server, rows) {
  const url = `${server.url}/claims_base`;
  await admin(server, 'CREATE DATABASE claims_base');
  const store = await openStateStore(url, { create: true, readonly: false, env: { PGPASSWORD: PG_PASSWORD } });
  const seconds = await catalog(store, rows);
  await store.close();
  console.error(`pg: catalog of ${rows.toLocaleString('en-US')} rows in ${seconds.toFixed(1)} s`);
  return { database: 'claims_base' };
}

async function catalog(store, rows) {
  const source = { endpoint: 'synthetic', bucket: 'bench', prefix: '' };
  await store.setSource(source);
  const started = process.hrtime.bigint();
  await runCatalog({ store, client: undefined, source, credentialSource: 'none', listConcurrency: 1, lister: syntheticLister(rows) });
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** ListObjectsV2-shaped pages of 1,000 keys in key order; modification times a permutation of the keys. */
function syntheticLister(total) {
  const day = Date.UTC(2024, 0, 1);
  return async (request) => {
    const start = request.continuationToken === undefined ? 0 : Number(request.continuationToken);
    const objects = [];
    for (let i = start; i < Math.min(start + 1000, total); i += 1) {
      objects.push({
        key: `photos/${String(i).padStart(9, '0')}/img-${i % 97}.jpg`,
        size: 1024 + ((i * 7919) % 1_000_000),
        etag: `"${(i * 2654435761).toString(16).padStart(32, '0').slice(-32)}"`,
        lastModified: new Date(day + ((i * 7919) % total) * 1000).toISOString(),
        storageClass: 'STANDARD',
      });
    }
    const next = start + 1000;
    return { objects, prefixes: [], truncated: next < total, nextToken: next < total ? String(next) : undefined, encoded: false };
  };
}

async function oneRun({ kind, base, order, workers, rows, concurrency, batch, profileDir, dir, server, run }) {
  let location;
  if (kind === 'sqlite') {
    location = path.join(dir, 'run.db');
    for (const suffix of ['', '-wal', '-shm']) fs.rmSync(location + suffix, { force: true });
    fs.copyFileSync(base.file, location);
  } else {
    await admin(server, 'DROP DATABASE IF EXISTS claims_run');
    await admin(server, `CREATE DATABASE claims_run TEMPLATE ${base.database}`);
    location = `${server.url}/claims_run`;
  }
  // As the first copy does before it claims: the --sort index, not timed (one sort over the catalog).
  const env = { PGPASSWORD: PG_PASSWORD };
  const prep = await openStateStore(location, { create: false, readonly: false, env });
  await prep.prepareCopy(order);
  await prep.close();

  const execArgv = profileDir ? ['--cpu-prof', '--cpu-prof-dir', path.join(profileDir, `${kind}-${order}-w${workers}-r${run}`)] : [];
  const children = [];
  const ready = [];
  const done = [];
  for (let i = 0; i < workers; i += 1) {
    const child = fork(fileURLToPath(import.meta.url), ['--worker', JSON.stringify({ kind, location, order, concurrency, batch })], {
      execArgv,
      env: { ...process.env, PGPASSWORD: PG_PASSWORD },
    });
    const messages = { ready: deferred(), done: deferred() };
    child.on('message', (message) => {
      if (message.type === 'error') messages.ready.reject(new Error(message.message)), messages.done.reject(new Error(message.message));
      else messages[message.type]?.resolve(message);
    });
    child.on('exit', (code) => {
      if (code !== 0) messages.done.reject(new Error(`worker exited with ${code}`));
    });
    children.push(child);
    ready.push(messages.ready.promise);
    done.push(messages.done.promise);
  }
  await Promise.all(ready);
  const serverCpu0 = kind === 'pg' ? serverCpuSeconds(server) : undefined;
  const started = process.hrtime.bigint();
  for (const child of children) child.send('go');
  const reports = await Promise.all(done);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const serverCpu = kind === 'pg' ? serverCpuSeconds(server) - serverCpu0 : undefined;
  const exited = children.map((child) => new Promise((resolve) => child.once('exit', resolve)));
  for (const child of children) child.send('close');
  await Promise.all(exited);

  const check = await checkEndState(kind, location, rows, reports);
  const sum = (field) => reports.reduce((total, report) => total + report[field], 0);
  return {
    store: kind,
    order,
    workers,
    run,
    seconds,
    objectsPerSecond: Math.round(rows / seconds),
    claimsPerSecond: Math.round(sum('claims') / seconds),
    claimSize: +(sum('claimed') / sum('claims')).toFixed(1),
    workerCpu: sum('cpuSeconds'),
    storeSeconds: sum('storeSeconds'),
    serverCpu,
    check,
  };
}

/**
 * Every row done, each claimed once (attempts = 1) and marked once (the workers' marks add up to the rows),
 * and the counters `status` reads equal a full scan (the queries of test/support/state-counters.ts).
 */
async function checkEndState(kind, location, rows, reports) {
  const marked = reports.reduce((total, report) => total + report.marked, 0);
  const claimed = reports.reduce((total, report) => total + report.claimed, 0);
  const objects = kind === 'sqlite' ? 'objects' : 's3migrate.objects';
  const rowSql = `SELECT COUNT(*) AS total, SUM(CASE WHEN status = 'done' THEN 1 ELSE 0 END) AS done,
      SUM(CASE WHEN attempts = 1 THEN 1 ELSE 0 END) AS once, SUM(attempts) AS attempts FROM ${objects}`;
  let counts;
  let kept;
  let scanned;
  if (kind === 'sqlite') {
    const db = new Database(location, { readonly: true, fileMustExist: true });
    [counts, kept, scanned] = db.transaction(() => [db.prepare(rowSql).get(), db.prepare(VIEWS('', "''")).all(), db.prepare(SCAN('objects', "''")).all()])();
    db.close();
  } else {
    const client = new pg.Client({ ...pgTarget(location), password: PG_PASSWORD });
    await client.connect();
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    counts = (await client.query(rowSql)).rows[0];
    kept = (await client.query(VIEWS('s3migrate.', 'migration'))).rows;
    scanned = (await client.query(SCAN(objects, 'migration'))).rows;
    await client.query('ROLLBACK');
    await client.end();
  }
  const n = (value) => Number(value);
  const problems = [];
  if (n(counts.total) !== rows) problems.push(`${counts.total} rows, not ${rows}`);
  if (n(counts.done) !== rows) problems.push(`${counts.done} done`);
  if (n(counts.once) !== rows || n(counts.attempts) !== rows) problems.push(`${counts.once} rows claimed once, ${counts.attempts} claims`);
  if (claimed !== rows || marked !== rows) problems.push(`workers claimed ${claimed} and marked ${marked}`);
  const a = JSON.stringify(sortedCounts(kept));
  const b = JSON.stringify(sortedCounts(scanned));
  if (a !== b) problems.push(`counters ${a} differ from the scan ${b}`);
  if (problems.length > 0) throw new Error(`end state of ${location} is wrong: ${problems.join('; ')}`);
  return 'exact';
}

// The summary views and the same groupings by a scan: as in test/support/state-counters.ts.
const VIEWS = (schema, migration) => `
  SELECT ${migration} AS migration, 'status' AS kind, status AS value, objects, bytes FROM ${schema}status_summary
  UNION ALL SELECT ${migration}, 'evidence', evidence, objects, bytes FROM ${schema}evidence_summary
  UNION ALL SELECT ${migration}, 'verify', result, objects, bytes FROM ${schema}verify_summary`;
const SCAN = (objects, migration) => `
  SELECT ${migration} AS migration, kind, value, COUNT(*) AS objects, COALESCE(SUM(size), 0) AS bytes FROM (
    SELECT ${migration === 'migration' ? 'migration, ' : ''}'status' AS kind, status AS value, size FROM ${objects}
    UNION ALL SELECT ${migration === 'migration' ? 'migration, ' : ''}'evidence', COALESCE(evidence, 'none'), size FROM ${objects} WHERE status = 'done'
    UNION ALL SELECT ${migration === 'migration' ? 'migration, ' : ''}'verify', COALESCE(verify_result, 'not-verified'), size FROM ${objects} WHERE status NOT IN ('gone', 'deleted')
  ) AS d GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`;

function sortedCounts(rows) {
  return rows
    .map((row) => ({ ...row, objects: Number(row.objects), bytes: Number(row.bytes) }))
    .filter((row) => row.objects !== 0 || row.bytes !== 0)
    .sort((a, b) => `${a.migration}\0${a.kind}\0${a.value}`.localeCompare(`${b.migration}\0${b.kind}\0${b.value}`));
}

// ---- a throwaway PostgreSQL cluster ---------------------------------------------------------------

function startPostgres(dir) {
  const clusterDir = path.join(dir, 'pg');
  fs.mkdirSync(clusterDir);
  const port = execFileSync(POSTGRES_SH, ['start', clusterDir], { encoding: 'utf8' }).trim().split('\n').pop();
  const pid = Number(fs.readFileSync(path.join(clusterDir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const version = fs.readFileSync(path.join(clusterDir, 'data', 'PG_VERSION'), 'utf8').trim();
  console.error(`pg: PostgreSQL ${version} on 127.0.0.1:${port} (fsync off, synchronous_commit off: test/servers/postgres.sh)`);
  return { dir: clusterDir, port, pid, url: `postgres://${PG_USER}@127.0.0.1:${port}` };
}

/** host, port, user and database of a postgres:// URL without a password. */
function pgTarget(url) {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port), user: decodeURIComponent(u.username), database: u.pathname.slice(1) };
}

function stopPostgres(server) {
  execFileSync(POSTGRES_SH, ['stop', server.dir], { stdio: 'inherit' });
}

async function admin(server, sql) {
  const client = new pg.Client({ host: '127.0.0.1', port: Number(server.port), user: PG_USER, database: PG_USER, password: PG_PASSWORD });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** CPU seconds (user + system) of the postmaster and its live children (the backends of our workers). */
function serverCpuSeconds(server) {
  const tick = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
  let total = 0;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pid = Number(entry);
    const ppid = Number(fields[1]);
    if (pid === server.pid || ppid === server.pid) total += (Number(fields[11]) + Number(fields[12])) / tick;
  }
  return total;
}

function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => ((resolve = res), (reject = rej)));
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

function printTable(results, { rows, concurrency, batch }) {
  console.log(
    `${rows.toLocaleString('en-US')} rows; window ${concurrency} per worker; claims of ${batch ?? 'the engine\'s size'}; ` +
      `${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), Node ${process.version}`,
  );
  console.log('| store | --sort | workers | objects/s (each run) | claims/s | rows/claim | worker CPU s | in store s | server CPU s | end state |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  const groups = new Map();
  for (const r of results) {
    const key = `${r.store}\0${r.order}\0${r.workers}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const fmt = (values, digits = 0) => values.map((v) => (digits ? v.toFixed(digits) : v.toLocaleString('en-US'))).join(' / ');
  for (const runs of groups.values()) {
    const r = runs[0];
    console.log(
      `| ${r.store === 'pg' ? 'PostgreSQL' : 'SQLite'} | ${r.order} | ${r.workers} | ${fmt(runs.map((x) => x.objectsPerSecond))} | ` +
        `${fmt(runs.map((x) => x.claimsPerSecond))} | ${fmt(runs.map((x) => x.claimSize), 1)} | ${fmt(runs.map((x) => x.workerCpu), 1)} | ` +
        `${fmt(runs.map((x) => x.storeSeconds), 1)} | ${r.serverCpu === undefined ? '' : fmt(runs.map((x) => x.serverCpu), 1)} | ${runs.map((x) => x.check).join(', ')} |`,
    );
  }
}

// Last: the constants above are initialized by then.
if (process.argv[2] === '--worker') await worker(JSON.parse(process.argv[3]));
else await main();
