// --state postgres:// URLs and the password file, without a server: what is accepted, what comes from
// the PG* variables, and that a password in the URL is refused without being repeated.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { parsePostgresUrl } from '../../src/state/postgres/connection.js';
import { lookupPassFile } from '../../src/state/postgres/pgpass.js';

describe('parsePostgresUrl', () => {
  it('reads user, host, port and database; fills the rest from PG* variables, then the defaults', () => {
    expect(parsePostgresUrl('postgres://s3migrate@db.example.com:6543/state', {})).toMatchObject({
      host: 'db.example.com',
      port: 6543,
      user: 's3migrate',
      database: 'state',
      display: 'postgres://s3migrate@db.example.com:6543/state',
      sslmode: undefined,
      connectTimeoutMs: 15_000,
      applicationName: 's3migrate',
    });
    expect(parsePostgresUrl('postgresql://u@h/d', {})).toMatchObject({ host: 'h', port: 5432, user: 'u', database: 'd' });
    expect(parsePostgresUrl('postgres:///', { PGHOST: 'pg', PGPORT: '7000', PGUSER: 'me', PGDATABASE: 'db' })).toMatchObject({
      host: 'pg',
      port: 7000,
      user: 'me',
      database: 'db',
    });
    // The URL wins over the variables; the database defaults to the user's name, as in libpq.
    expect(parsePostgresUrl('postgres://url@urlhost/', { PGHOST: 'pg', PGUSER: 'me' })).toMatchObject({ host: 'urlhost', user: 'url', database: 'url' });
    expect(parsePostgresUrl('postgres://u@[::1]:5433/d', {})).toMatchObject({ host: '::1', port: 5433, display: 'postgres://u@[::1]:5433/d' });
    expect(parsePostgresUrl('postgres://us%40er@h/my%20db', {})).toMatchObject({ user: 'us@er', database: 'my db' });
    expect(parsePostgresUrl('postgres://u@/d?host=/var/run/postgresql', {})).toMatchObject({ host: '/var/run/postgresql' });
    expect(
      parsePostgresUrl('postgres://u@h/d?sslmode=verify-full&connect_timeout=1&application_name=w1', { PGSSLMODE: 'disable' }),
    ).toMatchObject({ sslmode: 'verify-full', connectTimeoutMs: 2_000, applicationName: 'w1' });
    expect(parsePostgresUrl('postgres://u@h/d', { PGSSLMODE: 'require' }).sslmode).toBe('require');
  });

  it('refuses a password in the URL, in any spelling, without repeating it', () => {
    const secret = 'S3cr3t-xyz';
    for (const url of [
      `postgres://u:${secret}@h/d`,
      `postgresql://u:${secret}@h:5432/d`,
      'postgres://u:@h/d',
      `postgres://u:${secret}/with/slash@h/d`,
      `postgres://u:p@${secret}@h/d`,
      `postgres://u@h/d?password=${secret}`,
      `postgres://u@h/d?sslmode=require&password=${secret}`,
    ]) {
      let error: unknown;
      try {
        parsePostgresUrl(url, {});
      } catch (e) {
        error = e;
      }
      expect(error, url).toBeInstanceOf(UsageError);
      expect((error as Error).message, url).toMatch(/carries a password; it was not used\. .*PGPASSWORD.*~\/\.pgpass/);
      expect((error as Error).message).not.toContain(secret);
    }
  });

  it('refuses what it cannot honour, saying what it expects', () => {
    const cases: Array<[string, RegExp]> = [
      ['postgres://u@h/d?sslmode=sometimes', /sslmode "sometimes" is not one of disable, allow, prefer, require, verify-ca, verify-full/],
      ['postgres://u@h/d?target_session_attrs=any', /parameter "target_session_attrs" is not supported \(supported: sslmode/],
      ['postgres://u@h:99999/d', /not a valid PostgreSQL URL|is not a TCP port/],
      ['postgres://u@h1,h2/d', /several hosts/],
      ['postgres://u@h/d/e', /"\/" after the database name/],
      ['postgres://u@h/d?connect_timeout=soon', /connect_timeout "soon" is not a number/],
    ];
    for (const [url, message] of cases) expect(() => parsePostgresUrl(url, {}), url).toThrow(message);
  });
});

describe('lookupPassFile', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 's3migrate-pgpass-unit-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const target = { host: 'db.example.com', port: 5432, database: 'state', user: 's3migrate' };

  function passFile(text: string, mode = 0o600): Record<string, string> {
    const file = path.join(dir, `pgpass-${Math.random().toString(36).slice(2)}`);
    fs.writeFileSync(file, text, { mode });
    fs.chmodSync(file, mode);
    return { PGPASSFILE: file };
  }

  it('takes the first matching line, with wildcards and escapes, as libpq does', () => {
    const env = passFile(
      [
        '# host:port:database:user:password',
        'other.example.com:*:*:*:not-this',
        'db.example.com:5433:*:*:wrong-port',
        'db.example.com:5432:state:someone:wrong-user',
        'db.example.com:*:state:s3migrate:p\\:a\\\\ss:word',
        '*:*:*:*:fallback',
      ].join('\n'),
    );
    expect(lookupPassFile(target, env).password).toBe('p:a\\ss:word');
    expect(lookupPassFile({ ...target, user: 'x' }, env).password).toBe('fallback');
    // A socket connection matches "localhost".
    expect(lookupPassFile({ ...target, host: '/run/postgresql' }, passFile('localhost:5432:*:*:sock\n')).password).toBe('sock');
  });

  it('ignores a file that group or others may read, and a missing one, saying so', () => {
    const open = passFile('*:*:*:*:pw\n', 0o644);
    expect(lookupPassFile(target, open)).toEqual({ file: open.PGPASSFILE, ignored: expect.stringMatching(/group or others may read it/) });
    expect(lookupPassFile(target, { PGPASSFILE: path.join(dir, 'absent') })).toEqual({ file: path.join(dir, 'absent') });
    expect(lookupPassFile(target, { HOME: dir }).file).toBe(path.join(dir, '.pgpass'));
  });
});
