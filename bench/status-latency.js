// `status` latency on large synthetic states (after npm run build): builds a state of N rows through the real
// schema (the store creates it; rows go in by direct SQL bulk inserts, which fire the real counter triggers),
// then times `s3migrate status` and `status --json` as fresh processes (median of --reps) and reports the
// file or database size. SQLite: a state file in --dir; PostgreSQL: a throwaway cluster started by
// test/servers/postgres.sh (Debian's packages: `bash test/servers/postgres.sh install`).
// Usage: node bench/status-latency.js [--rows 10000000,100000000] [--stores sqlite,postgres] [--pg-rows 10000000,30000000]
//   [--reps 3] [--dir /tmp]. Each state is deleted after it is measured.
// The rows: 50 % done (evidence md5), 35 % pending, 5 % failed, 5 % gone, 5 % verified ok; sizes 1 KiB..1 MiB.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import { runCatalog } from '../dist/catalog/catalog.js';
import { openStateStore } from '../dist/state/open-store.js';
import { flag, timed } from './measure.js';

if (process.argv.includes('--help')) {
  const head = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n');
  console.log(head.slice(0, head.findIndex((line) => !line.startsWith('//'))).map((line) => line.replace(/^\/\/ ?/, '')).join('\n'));
  process.exit(0);
}
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sizes = flag('rows', '10000000,100000000').split(',').map(Number);
const pgSizes = flag('pg-rows', flag('rows', '10000000,30000000')).split(',').map(Number);
const stores = flag('stores', 'sqlite,postgres').split(',');
const reps = Number(flag('reps', '3'));
const dir = fs.mkdtempSync(path.join(flag('dir', os.tmpdir()), 's3migrate-bench-status-'));
fs.chmodSync(dir, 0o755); // the postgres user runs the cluster in it
const CHUNK = 1_000_000;
const SOURCE = { endpoint: 'http://synthetic.invalid', bucket: 'bench', prefix: '' };
const PG_USER = 's3migrate';
const PG_PASSWORD = 's3migrate-test-password';

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const log = (text) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${text}\n`);

/** A state with its schema, source and one complete (empty) catalog pass, made by the real code. */
async function createState(location, env) {
  const store = await openStateStore(location, { create: true, readonly: false, env });
  await store.setSource(SOURCE);
  const lister = async () => ({ objects: [], prefixes: [], truncated: false, encoded: false });
  await runCatalog({ store, client: undefined, source: SOURCE, credentialSource: 'none', lister });
  await store.close();
}

// One row per n (0-based): its columns as SQL expressions of n, the same for both databases.
const STATUS = `CASE WHEN n % 20 < 10 THEN 'done' WHEN n % 20 < 17 THEN 'pending' WHEN n % 20 = 17 THEN 'failed' WHEN n % 20 = 18 THEN 'gone' ELSE 'done' END`;
const rowSql = (cast) => ({
  key: `'photos/' || ${cast(`(n / 1000)`)} || '/img-' || ${cast('n')} || '.jpg'`,
  size: `1024 + (n * 7919) % 1048576`,
  etag: `'"' || ${cast('n')} || '-etag"'`,
  status: STATUS,
  evidence: `CASE WHEN n % 20 < 10 OR n % 20 = 19 THEN 'md5' END`,
  verify: `CASE WHEN n % 20 = 19 THEN 'ok' END`,
  error: `CASE WHEN n % 20 = 17 THEN 'synthetic failure' END`,
});

async function buildSqlite(file, rows) {
  await createState(file, {});
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const r = rowSql((x) => x);
  // Keys must arrive in order for a fast build: n is zero-padded so key order = n order. The state file's
  // compact row (schema 3): times in milliseconds since 1970, no per-row listed_at.
  const key = `'photos/' || printf('%09d', n / 1000) || '/img-' || printf('%012d', n) || '.jpg'`;
  const insert = db.prepare(`
    WITH RECURSIVE s(n) AS (SELECT ? UNION ALL SELECT n + 1 FROM s WHERE n + 1 < ?)
    INSERT INTO objects (key, size, etag, last_modified, status, attempts, error, catalog_pass, updated_at, evidence, verify_result, copied_at)
    SELECT ${key}, ${r.size}, ${r.etag}, ${Date.UTC(2024, 0, 1)}, ${r.status}, CASE WHEN ${r.status} = 'failed' THEN 3 ELSE 0 END, ${r.error}, 1,
      ${Date.UTC(2024, 1, 1)}, ${r.evidence}, ${r.verify}, CASE WHEN ${r.status} = 'done' THEN ${Date.UTC(2024, 1, 2)} END
    FROM s`);
  for (let start = 0; start < rows; start += CHUNK) {
    db.transaction(() => insert.run(start, Math.min(start + CHUNK, rows)))();
    if ((start / CHUNK) % 10 === 9) log(`  sqlite: ${(start + CHUNK).toLocaleString('en-US')} rows`);
  }
  // No trigger counts an inserted row (schema 4: the catalog counts its pages): count them as migration 2 did.
  db.exec(`
    DELETE FROM counters;
    INSERT INTO counters SELECT 'status', status, COUNT(*), COALESCE(SUM(size), 0) FROM objects GROUP BY status;
    INSERT INTO counters SELECT 'evidence', COALESCE(evidence, 'none'), COUNT(*), COALESCE(SUM(size), 0)
      FROM objects WHERE status = 'done' GROUP BY 2;
    INSERT INTO counters SELECT 'verify', verify_result, COUNT(*), COALESCE(SUM(size), 0)
      FROM objects WHERE verify_result IS NOT NULL AND status NOT IN ('gone', 'deleted') GROUP BY 2;`);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  return fs.statSync(file).size;
}

function startPostgres() {
  const pgDir = path.join(dir, 'pg');
  const port = execFileSync('bash', [path.join(root, 'test/servers/postgres.sh'), 'start', pgDir], { encoding: 'utf8' }).trim().split('\n').pop();
  return { port: Number(port), stop: () => execFileSync('bash', [path.join(root, 'test/servers/postgres.sh'), 'stop', pgDir]) };
}

async function buildPostgres(port, database, rows) {
  const admin = new pg.Client({ host: '127.0.0.1', port, user: PG_USER, password: PG_PASSWORD, database: PG_USER });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${database}`);
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  const url = `postgres://${PG_USER}@127.0.0.1:${port}/${database}`;
  await createState(url, { PGPASSWORD: PG_PASSWORD });
  const client = new pg.Client({ host: '127.0.0.1', port, user: PG_USER, password: PG_PASSWORD, database });
  await client.connect();
  await client.query('SET synchronous_commit = off');
  const r = rowSql((x) => `${x}::text`);
  const key = `'photos/' || lpad((n / 1000)::text, 9, '0') || '/img-' || lpad(n::text, 12, '0') || '.jpg'`;
  for (let start = 0; start < rows; start += CHUNK) {
    await client.query(
      `INSERT INTO s3migrate.objects (migration, key, size, etag, last_modified, status, attempts, error, catalog_pass, listed_at, updated_at, evidence, verify_result, copied_at)
       SELECT 'default', ${key}, ${r.size}, ${r.etag}, '2024-01-01T00:00:00.000Z', ${r.status}, CASE WHEN ${r.status} = 'failed' THEN 3 ELSE 0 END, ${r.error}, 1,
         '2024-02-01T00:00:00.000Z', '2024-02-01T00:00:00.000Z', ${r.evidence}, ${r.verify}, CASE WHEN ${r.status} = 'done' THEN '2024-02-02T00:00:00.000Z' END
       FROM generate_series($1::bigint, $2::bigint - 1) AS n`,
      [start, Math.min(start + CHUNK, rows)],
    );
    if ((start / CHUNK) % 10 === 9) log(`  postgres: ${(start + CHUNK).toLocaleString('en-US')} rows`);
  }
  await client.query('VACUUM ANALYZE s3migrate.objects');
  await client.query('CHECKPOINT').catch(() => undefined);
  const size = Number((await client.query('SELECT pg_database_size(current_database()) AS b')).rows[0].b);
  await client.end();
  return { url, size };
}

/** Times `status` and `status --json` as fresh processes; checks the JSON's total. */
async function measure(state, rows, env) {
  const out = {};
  for (const [name, extra] of [['status', []], ['status --json', ['--json']]]) {
    const walls = [];
    for (let i = 0; i < reps; i++) {
      const result = await timed(['node', path.join(root, 'bin/s3migrate.js'), 'status', '--state', state, ...extra], env);
      if (result.code !== 0) throw new Error(`status exited ${result.code}: ${result.stderr}`);
      walls.push(result.wall);
    }
    out[name] = median(walls);
  }
  // The JSON's object count must be the rows built (gone rows included or not: either figure proves a count).
  const json = JSON.parse(execFileSync('node', [path.join(root, 'bin/s3migrate.js'), 'status', '--state', state, '--json'], { env, encoding: 'utf8' }));
  out.check = JSON.stringify(json).includes(String(rows)) || JSON.stringify(json).includes(String(rows - rows / 20));
  return out;
}

// Startup alone: `--help` of the same CLI, the floor under any command.
const baseEnv = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
const helps = [];
for (let i = 0; i < reps; i++) helps.push((await timed(['node', path.join(root, 'bin/s3migrate.js'), '--help'], baseEnv)).wall);
const results = [];
try {
  if (stores.includes('sqlite')) {
    for (const rows of sizes) {
      const file = path.join(dir, `state-${rows}.db`);
      const started = Date.now();
      log(`sqlite: building ${rows.toLocaleString('en-US')} rows`);
      const bytes = await buildSqlite(file, rows);
      const build = (Date.now() - started) / 1000;
      log(`sqlite: built in ${build.toFixed(0)} s, ${(bytes / 2 ** 30).toFixed(2)} GiB`);
      const m = await measure(file, rows, baseEnv);
      results.push({ store: 'SQLite', rows, bytes, build, ...m });
      for (const suffix of ['', '-wal', '-shm']) fs.rmSync(file + suffix, { force: true });
    }
  }
  if (stores.includes('postgres')) {
    const server = startPostgres();
    try {
      for (const rows of pgSizes) {
        const started = Date.now();
        log(`postgres: building ${rows.toLocaleString('en-US')} rows`);
        const database = `bench_${rows}`;
        const { url, size } = await buildPostgres(server.port, database, rows);
        const build = (Date.now() - started) / 1000;
        log(`postgres: built in ${build.toFixed(0)} s, ${(size / 2 ** 30).toFixed(2)} GiB`);
        const m = await measure(url, rows, { ...baseEnv, PGPASSWORD: PG_PASSWORD });
        results.push({ store: 'PostgreSQL', rows, bytes: size, build, ...m });
        const admin = new pg.Client({ host: '127.0.0.1', port: server.port, user: PG_USER, password: PG_PASSWORD, database: PG_USER });
        await admin.connect();
        await admin.query(`DROP DATABASE ${database}`);
        await admin.end();
      }
    } finally {
      server.stop();
    }
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
const lines = [
  `status latency, fresh processes, medians of ${reps}; ${os.cpus().length} cores, Node ${process.version}; \`s3migrate --help\` alone: ${median(helps).toFixed(2)} s`,
  '',
  '| state | rows | size GiB | build s | `status` s | `status --json` s | counts check |',
  '| --- | ---: | ---: | ---: | ---: | ---: | --- |',
  ...results.map(
    (r) =>
      `| ${r.store} | ${r.rows.toLocaleString('en-US')} | ${(r.bytes / 2 ** 30).toFixed(2)} | ${r.build.toFixed(0)} | ${r['status'].toFixed(2)} | ${r['status --json'].toFixed(2)} | ${r.check ? 'ok' : 'MISMATCH'} |`,
  ),
];
console.log(lines.join('\n'));
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
fs.mkdirSync(path.join(root, 'bench/results'), { recursive: true });
fs.writeFileSync(path.join(root, `bench/results/status-${stamp}.md`), `${lines.join('\n')}\n`);
