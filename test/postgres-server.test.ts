// The PostgreSQL test server itself (test/servers/postgres.sh + postgres.ts): it starts, listens on
// 127.0.0.1 only, lets the test role in with its password and nobody without one, creates databases,
// runs beside a second cluster without sharing anything, and stops for good.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { expect, it } from 'vitest';
import { describePostgres, startPostgres, type PostgresHandle } from './support/postgres.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** One connection's answer, or the error it got (a pg DatabaseError carries the SQLSTATE in `code`). */
async function connect(config: pg.ClientConfig, sql = 'SELECT current_user AS user'): Promise<pg.QueryResultRow> {
  const client = new pg.Client({ connectionTimeoutMillis: 5_000, ...config });
  await client.connect();
  try {
    return (await client.query(sql)).rows[0]!;
  } finally {
    await client.end();
  }
}

/** Runs a child Node process that connects with `pg` configured by nothing but `env` and `url`. */
function childQuery(env: Record<string, string>, url: string, sql: string): Promise<{ code: number | null; out: string; err: string }> {
  const script = `
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: process.argv[1] });
    await client.connect();
    const { rows } = await client.query(process.argv[2]);
    await client.end();
    console.log(JSON.stringify(rows));`;
  const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('PG')));
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, url, sql], {
    cwd: ROOT,
    env: { ...clean, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

describePostgres('a throwaway PostgreSQL server', (server) => {
  it('starts on 127.0.0.1 only, with the fast settings, in its own directory', async () => {
    const s = server();
    expect(s.host).toBe('127.0.0.1');
    expect(s.url).toBe(`postgres://${s.user}@127.0.0.1:${s.port}/${s.database}`);
    expect(s.url).not.toContain(s.password);
    expect(s.env).toEqual({
      PGHOST: '127.0.0.1',
      PGPORT: String(s.port),
      PGUSER: s.user,
      PGPASSWORD: s.password,
      PGDATABASE: s.database,
    });
    expect(existsSync(path.join(s.dir, 'data', 'PG_VERSION'))).toBe(true);
    const settings = await s.query<{ name: string; setting: string }>(
      "SELECT name, setting FROM pg_settings WHERE name IN ('listen_addresses', 'fsync', 'synchronous_commit', 'port', 'lc_collate', 'server_encoding') ORDER BY name",
    );
    expect(Object.fromEntries(settings.rows.map((row) => [row.name, row.setting]))).toEqual({
      fsync: 'off',
      lc_collate: 'C',
      listen_addresses: '127.0.0.1',
      port: String(s.port),
      server_encoding: 'UTF8',
      synchronous_commit: 'off',
    });
    const version = await s.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
    expect(Number(version.rows[0]!.v)).toBeGreaterThanOrEqual(150_000);
    console.info(`postgres: started in ${(s.startMs / 1000).toFixed(2)} s on port ${s.port}`);
  });

  it('lets the test role in with its password: an ordinary role that may create databases', async () => {
    const s = server();
    const row = await connect(
      { host: s.host, port: s.port, user: s.user, password: s.password, database: s.database },
      'SELECT current_user AS user, rolsuper, rolcreatedb, inet_server_addr()::text AS addr FROM pg_roles WHERE rolname = current_user',
    );
    expect(row).toEqual({ user: s.user, rolsuper: false, rolcreatedb: true, addr: '127.0.0.1/32' });
  });

  it('a child process connects with nothing but the url and the PG* variables', async () => {
    const s = server();
    const result = await childQuery(s.env, s.url, 'SELECT current_user AS user, current_database() AS db');
    expect(result.code, result.err).toBe(0);
    expect(JSON.parse(result.out)).toEqual([{ user: s.user, db: s.database }]);
  });

  it('refuses a wrong password (28P01), and the superuser over TCP', async () => {
    const s = server();
    const wrong = await connect({ host: s.host, port: s.port, user: s.user, password: `${s.password}-wrong`, database: s.database }).catch(
      (error: unknown) => error,
    );
    expect(wrong).toBeInstanceOf(Error);
    expect((wrong as pg.DatabaseError).code).toBe('28P01'); // invalid_password
    const superuser = await connect({ host: s.host, port: s.port, user: 'postgres', password: s.password, database: 'postgres' }).catch(
      (error: unknown) => error,
    );
    expect((superuser as pg.DatabaseError).code).toBe('28P01');
    // A child process given a wrong PGPASSWORD is refused too.
    const result = await childQuery({ ...s.env, PGPASSWORD: 'nope' }, s.url, 'SELECT 1');
    expect(result.code).not.toBe(0);
    expect(result.err).toContain("code: '28P01'");
  });

  it('creates databases owned by the test role, each its own namespace', async () => {
    const s = server();
    const name = await s.createDatabase('contract_a');
    expect(name).toBe('contract_a');
    const fresh = await s.createDatabase();
    expect(fresh).toMatch(/^test_\d+_\d+$/);
    const owners = await s.query<{ datname: string; owner: string }>(
      'SELECT datname, pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = ANY($1) ORDER BY datname',
      [[name, fresh]],
    );
    expect(owners.rows).toEqual([
      { datname: name, owner: s.user }, // 'contract_a' sorts before 'test_...'
      { datname: fresh, owner: s.user },
    ]);
    await s.query('CREATE TABLE t (k text PRIMARY KEY)', [], name);
    await s.query("INSERT INTO t VALUES ('b'), ('a'), ('B')", [], name);
    // The C collation orders by bytes, as SQLite does.
    expect((await s.query('SELECT k FROM t ORDER BY k', [], name)).rows.map((r) => r.k)).toEqual(['B', 'a', 'b']);
    await expect(s.query('SELECT k FROM t', [], fresh)).rejects.toMatchObject({ code: '42P01' });
    const viaUrl = await childQuery(s.env, s.urlOf(name), 'SELECT count(*)::int AS n FROM t');
    expect(JSON.parse(viaUrl.out)).toEqual([{ n: 3 }]);
    await expect(s.createDatabase(name)).rejects.toMatchObject({ code: '42P04' }); // duplicate_database
    await expect(s.createDatabase('Bad"Name')).rejects.toThrow(/not a plain lower-case name/);
  });

  it('a second cluster runs beside the first, shares nothing, and stops for good', async () => {
    const first = server();
    await first.query('CREATE TABLE IF NOT EXISTS only_in_first (x int)');
    let second: PostgresHandle | undefined;
    try {
      second = await startPostgres();
      expect(second.port).not.toBe(first.port);
      expect(second.dir).not.toBe(first.dir);
      expect((await second.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      await expect(second.query('SELECT * FROM only_in_first')).rejects.toMatchObject({ code: '42P01' });
    } finally {
      await second?.stop();
    }
    const stopped = second!;
    await stopped.stop(); // twice is fine
    expect(existsSync(stopped.dir)).toBe(false);
    const refused = await connect({ host: stopped.host, port: stopped.port, user: stopped.user, password: stopped.password, database: stopped.database }).catch(
      (error: unknown) => error,
    );
    expect((refused as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    // The first one is untouched.
    expect((await first.query('SELECT count(*)::int AS n FROM only_in_first')).rows).toEqual([{ n: 0 }]);
  });
});
