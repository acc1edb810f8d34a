// A throwaway PostgreSQL server for the tests of the shared PostgreSQL state: wraps
// test/servers/postgres.sh (initdb into a temporary directory, postgres on 127.0.0.1 on a free port,
// password logins over TCP). Each call of startPostgres() is its own cluster, so test files running
// side by side never share one. Free of vitest and of `pg` at load time on purpose: vitest.config.ts
// imports postgresSkipReason() to say once why PostgreSQL suites are skipped.
import { execFile, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Pool, QueryResult, QueryResultRow } from 'pg';

export const POSTGRES_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'postgres.sh');
/** The test role (LOGIN CREATEDB, not a superuser), its password and its own database. */
export const PG_TEST_USER = 's3migrate';
export const PG_TEST_PASSWORD = 's3migrate-test-password';
export const PG_TEST_DATABASE = 's3migrate';
const BINARIES = ['initdb', 'postgres', 'pg_ctl', 'psql'];
const START_TIMEOUT_MS = 60_000;

export interface PostgresHandle {
  /** Always `127.0.0.1`. */
  host: string;
  port: number;
  /** The test role: may log in over TCP with `password` only, may create databases, not a superuser. */
  user: string;
  password: string;
  /** The test role's own database. */
  database: string;
  /** `postgres://USER@127.0.0.1:PORT/DATABASE`: no password, as the CLI wants it (PGPASSWORD carries it). */
  url: string;
  /** PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE for a child process (libpq's and `pg`'s variables). */
  env: Record<'PGHOST' | 'PGPORT' | 'PGUSER' | 'PGPASSWORD' | 'PGDATABASE', string>;
  /** The cluster's directory: data/, log/ (postgres.log), run/ (unix socket). */
  dir: string;
  /** Milliseconds the cluster took to start (initdb included). */
  startMs: number;
  /** The URL of another database of this server, same form as `url`. */
  urlOf(database: string): string;
  /** Creates an empty database owned by the test role (a fresh name when none is given); returns its name. */
  createDatabase(name?: string): Promise<string>;
  /** Runs SQL as the test role through `pg` (a small pool per database), for test assertions. */
  query<R extends QueryResultRow = QueryResultRow>(sql: string, params?: unknown[], database?: string): Promise<QueryResult<R>>;
  /** Closes the pools, stops the server (immediate shutdown) and removes `dir` (kept when S3MIGRATE_PG_KEEP=1). */
  stop(): Promise<void>;
}

/** Debian's layout: /usr/lib/postgresql/VERSION/bin, the newest version that has every binary we need. */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  let versions: string[];
  try {
    versions = readdirSync(root);
  } catch {
    return undefined;
  }
  versions.sort((a, b) => b.localeCompare(a, 'en', { numeric: true }));
  for (const version of versions) {
    const bin = path.join(root, version, 'bin');
    const complete = BINARIES.every((name) => {
      try {
        accessSync(path.join(bin, name), constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
    if (complete) return bin;
  }
  return undefined;
}

/**
 * Why PostgreSQL suites do not run here, or undefined when they do. S3MIGRATE_PG=1 forces them on (a
 * missing install then fails them loudly), S3MIGRATE_PG=0 off; otherwise they run when the binaries exist.
 */
export function postgresSkipReason(): string | undefined {
  const forced = process.env.S3MIGRATE_PG;
  if (forced === '1') return undefined;
  if (forced === '0') return 'S3MIGRATE_PG=0';
  if (!postgresBinDir()) return 'PostgreSQL is not installed: test/servers/postgres.sh install';
  return undefined;
}

/** True when PostgreSQL suites run here (see postgresSkipReason). */
export function postgresAvailable(): boolean {
  return postgresSkipReason() === undefined;
}

function runScript(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, PG_TEST_USER, PG_TEST_PASSWORD, PG_TEST_DATABASE };
    execFile('bash', [POSTGRES_SCRIPT, ...args], { env, timeout: timeoutMs, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`test/servers/postgres.sh ${args[0]} failed (${error.message.split('\n')[0]})\n${stderr.trim()}`));
      } else {
        resolve(stdout.trim());
      }
    });
  });
}

let databases = 0;

/** Starts a fresh cluster in a new temporary directory. */
export async function startPostgres(): Promise<PostgresHandle> {
  if (!postgresBinDir()) {
    throw new Error(
      'PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres): run `sudo test/servers/postgres.sh install` (Debian/Ubuntu), or unset S3MIGRATE_PG.',
    );
  }
  const dir = mkdtempSync(path.join(tmpdir(), 's3migrate-pg-'));
  const keep = process.env.S3MIGRATE_PG_KEEP === '1';
  // A test process that dies without calling stop() must not leave a server behind.
  const stopNow = (): void => {
    spawnSync('bash', [POSTGRES_SCRIPT, 'stop', dir], { stdio: 'ignore', timeout: 10_000 });
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
  const port = Number(output.split('\n').pop());
  if (!Number.isInteger(port) || port <= 0) {
    process.off('exit', stopNow);
    stopNow();
    throw new Error(`test/servers/postgres.sh start printed no port: ${output}`);
  }

  const host = '127.0.0.1';
  const urlOf = (database: string): string => `postgres://${PG_TEST_USER}@${host}:${port}/${encodeURIComponent(database)}`;
  const pools = new Map<string, Pool>();
  const pool = async (database: string): Promise<Pool> => {
    let found = pools.get(database);
    if (!found) {
      const { default: pg } = await import('pg');
      found = new pg.Pool({ host, port, user: PG_TEST_USER, password: PG_TEST_PASSWORD, database, max: 2 });
      // An idle client's error (the server stopped under it) must not crash the test process.
      found.on('error', () => undefined);
      pools.set(database, found);
    }
    return found;
  };

  let stopping: Promise<void> | undefined;
  return {
    host,
    port,
    user: PG_TEST_USER,
    password: PG_TEST_PASSWORD,
    database: PG_TEST_DATABASE,
    url: urlOf(PG_TEST_DATABASE),
    env: {
      PGHOST: host,
      PGPORT: String(port),
      PGUSER: PG_TEST_USER,
      PGPASSWORD: PG_TEST_PASSWORD,
      PGDATABASE: PG_TEST_DATABASE,
    },
    dir,
    startMs,
    urlOf,
    async createDatabase(name) {
      const database = name ?? `test_${process.pid}_${++databases}`;
      if (!/^[a-z_][a-z0-9_]{0,62}$/.test(database)) throw new Error(`createDatabase: ${JSON.stringify(database)} is not a plain lower-case name`);
      await (await pool(PG_TEST_DATABASE)).query(`CREATE DATABASE "${database}"`);
      return database;
    },
    async query<R extends QueryResultRow = QueryResultRow>(sql: string, params?: unknown[], database = PG_TEST_DATABASE) {
      return (await pool(database)).query<R>(sql, params);
    },
    stop() {
      stopping ??= (async () => {
        await Promise.all([...pools.values()].map((p) => p.end().catch(() => undefined)));
        pools.clear();
        process.off('exit', stopNow);
        await runScript(['stop', dir], 15_000).catch(() => undefined);
        if (!keep) rmSync(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}
