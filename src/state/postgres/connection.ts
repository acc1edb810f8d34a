import fs from 'node:fs';
import os from 'node:os';
import type { ConnectionOptions } from 'node:tls';
import type pg from 'pg';
import { FatalError, UsageError } from '../../errors.js';
import { lookupPassFile, passFilePath } from './pgpass.js';

export type Env = Record<string, string | undefined>;

/** A parsed --state URL: where to connect, without any secret. */
export interface PgTarget {
  host: string;
  port: number;
  user: string;
  database: string;
  /** `postgres://USER@HOST:PORT/DATABASE`, for messages. */
  display: string;
  sslmode: string | undefined;
  sslrootcert: string | undefined;
  connectTimeoutMs: number;
  applicationName: string;
}

const FORM = 'postgres://USER@HOST[:PORT]/DATABASE';
const PASSWORD_ADVICE =
  'A password never goes into the URL (it would show in process listings and shell history): ' +
  'put it in PGPASSWORD, or in ~/.pgpass (chmod 0600; PGPASSFILE names another file).';
const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];
const PARAMETERS = ['sslmode', 'sslrootcert', 'connect_timeout', 'application_name', 'host'];

/**
 * Parses a `--state postgres://USER@HOST[:PORT]/DATABASE[?sslmode=...]` URL. Parts the URL leaves out come
 * from the standard PG* variables (PGHOST, PGPORT, PGUSER, PGDATABASE, PGSSLMODE, ...), then libpq's
 * defaults. A password in the URL is refused; the URL's text is never repeated in a message, in case it
 * carries one.
 */
export function parsePostgresUrl(text: string, env: Env): PgTarget {
  const scheme = /^postgres(ql)?:\/\//i.exec(text);
  if (!scheme) throw new UsageError(`--state: not a postgres:// URL (expected ${FORM})`);
  const beforeQuery = text.split('?')[0]!;
  const at = beforeQuery.indexOf('@');
  if (at >= 0 && beforeQuery.slice(scheme[0].length, at).includes(':')) {
    throw new UsageError(`--state: the URL carries a password; it was not used. ${PASSWORD_ADVICE}`);
  }
  // libpq accepts a user without a host (`postgres://user@/db?host=/run/postgresql`); WHATWG URL does not.
  let rest = text.slice(scheme[0].length);
  const noHost = /^[^/?#]*@(?=[/?#]|$)/.exec(rest);
  if (noHost) rest = `${noHost[0]}no-host.invalid${rest.slice(noHost[0].length)}`;
  let url: URL;
  try {
    url = new URL(`postgres://${rest}`);
  } catch {
    throw new UsageError(`--state: not a valid PostgreSQL URL (expected ${FORM})`);
  }
  if (url.password !== '') {
    throw new UsageError(`--state: the URL carries a password; it was not used. ${PASSWORD_ADVICE}`);
  }
  const params = new Map<string, string>();
  for (const [name, value] of url.searchParams) {
    if (name === 'password') {
      throw new UsageError(`--state: the URL carries a password; it was not used. ${PASSWORD_ADVICE}`);
    }
    if (!PARAMETERS.includes(name)) {
      throw new UsageError(`--state: the URL parameter "${name}" is not supported (supported: ${PARAMETERS.join(', ')})`);
    }
    params.set(name, value);
  }
  const decode = (part: string, what: string): string => {
    try {
      return decodeURIComponent(part);
    } catch {
      throw new UsageError(`--state: the ${what} in the URL is not valid percent-encoding (expected ${FORM})`);
    }
  };

  const rawHost = noHost ? '' : url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (rawHost.includes(',')) throw new UsageError('--state: several hosts in one URL are not supported; name one host');
  const host = params.get('host') ?? (rawHost !== '' ? decode(rawHost, 'host') : (env.PGHOST ?? 'localhost'));
  const portText = url.port !== '' ? url.port : (env.PGPORT ?? '5432');
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(`--state: the port "${portText}" is not a TCP port (expected ${FORM})`);
  }
  const user = (url.username !== '' ? decode(url.username, 'user name') : undefined) ?? env.PGUSER ?? osUser() ?? '';
  if (user === '') throw new UsageError(`--state: no user name: give it in the URL (${FORM}) or in PGUSER`);
  const path = url.pathname.replace(/^\//, '');
  if (path.includes('/')) throw new UsageError(`--state: "/" after the database name (expected ${FORM})`);
  const database = (path !== '' ? decode(path, 'database name') : undefined) ?? env.PGDATABASE ?? user;

  const sslmode = params.get('sslmode') ?? env.PGSSLMODE;
  if (sslmode !== undefined && !SSL_MODES.includes(sslmode)) {
    throw new UsageError(`--state: sslmode "${sslmode}" is not one of ${SSL_MODES.join(', ')}`);
  }
  const timeoutText = params.get('connect_timeout') ?? env.PGCONNECT_TIMEOUT;
  let connectTimeoutMs = 15_000;
  if (timeoutText !== undefined && timeoutText !== '') {
    const seconds = Number(timeoutText);
    if (!Number.isFinite(seconds) || seconds < 0) {
      throw new UsageError(`--state: connect_timeout "${timeoutText}" is not a number of seconds`);
    }
    // libpq: 0 waits forever; less than 2 seconds counts as 2.
    connectTimeoutMs = seconds === 0 ? 0 : Math.max(2, seconds) * 1000;
  }
  const hostPart = host.includes(':') ? `[${host}]` : host.startsWith('/') ? '' : host;
  const query = host.startsWith('/') ? `?host=${encodeURIComponent(host)}` : '';
  return {
    host,
    port,
    user,
    database,
    display: `postgres://${encodeURIComponent(user)}@${hostPart}:${port}/${encodeURIComponent(database)}${query}`,
    sslmode,
    sslrootcert: params.get('sslrootcert') ?? env.PGSSLROOTCERT,
    connectTimeoutMs,
    applicationName: params.get('application_name') ?? env.PGAPPNAME ?? 's3migrate',
  };
}

function osUser(): string | undefined {
  try {
    return os.userInfo().username;
  } catch {
    return undefined; // a container user without a passwd entry
  }
}

/** libpq's sslmode in node's TLS terms. `pg` cannot fall back from TLS to plain: allow/prefer mean plain. */
function sslOptions(target: PgTarget): false | ConnectionOptions {
  switch (target.sslmode) {
    case undefined:
    case 'disable':
    case 'allow':
    case 'prefer':
      return false;
    case 'require':
      // libpq: encrypted, the certificate not checked (unless a root certificate is given).
      return target.sslrootcert ? { ca: readCert(target.sslrootcert), checkServerIdentity: () => undefined } : { rejectUnauthorized: false };
    case 'verify-ca':
      return { ca: target.sslrootcert ? readCert(target.sslrootcert) : undefined, checkServerIdentity: () => undefined };
    default:
      return { ca: target.sslrootcert ? readCert(target.sslrootcert) : undefined };
  }
}

function readCert(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new FatalError(`--state: cannot read the sslrootcert file ${file}: ${(error as Error).message}`);
  }
}

/** Where the password came from (or that none was found), for the message when the server refuses it. */
export interface PasswordSource {
  used?: 'PGPASSWORD' | 'password file';
  file: string;
  ignored?: string;
}

/**
 * The `pg` client configuration for a target. The password is looked up only when the server asks for
 * one: PGPASSWORD first, then the password file (PGPASSFILE or ~/.pgpass), as libpq does.
 */
export function clientConfig(target: PgTarget, env: Env, source: PasswordSource): pg.ClientConfig {
  return {
    host: target.host,
    port: target.port,
    user: target.user,
    database: target.database,
    ssl: sslOptions(target),
    connectionTimeoutMillis: target.connectTimeoutMs,
    application_name: target.applicationName,
    password: async () => {
      if (env.PGPASSWORD !== undefined && env.PGPASSWORD !== '') {
        source.used = 'PGPASSWORD';
        return env.PGPASSWORD;
      }
      const found = lookupPassFile(target, env);
      source.file = found.file;
      source.ignored = found.ignored;
      if (found.password === undefined) throw noPassword(target, source);
      source.used = 'password file';
      return found.password;
    },
  };
}

/** The server asks for a password and neither PGPASSWORD nor the password file has one. */
function noPassword(target: PgTarget, source: PasswordSource): FatalError {
  const ignored = source.ignored ? ` (${source.file} was ignored: ${source.ignored})` : ` (none in ${source.file})`;
  return new FatalError(
    `PostgreSQL at ${target.host}:${target.port} asks user "${target.user}" for a password and none was given${ignored}. ` +
      `Set PGPASSWORD, or add a line "${target.host}:${target.port}:${target.database}:${target.user}:PASSWORD" ` +
      'to ~/.pgpass (chmod 0600).',
  );
}

export function newPasswordSource(env: Env): PasswordSource {
  return { file: passFilePath(env) };
}

/**
 * A connection that could not be made, as one FatalError that says what to do: the server unreachable,
 * the password refused or missing, the database or role missing. The password itself is never shown.
 */
export function connectionError(error: unknown, target: PgTarget, source: PasswordSource): FatalError {
  const code = (error as { code?: string }).code;
  const message = (error as Error).message ?? String(error);
  const where = `${target.host}:${target.port}`;
  const passwordFrom =
    source.used === 'PGPASSWORD'
      ? 'the password in PGPASSWORD'
      : source.used === 'password file'
        ? `the password from ${source.file}`
        : 'no password';
  switch (code) {
    case 'ECONNREFUSED':
      return new FatalError(
        `Cannot connect to the PostgreSQL state at ${where} (connection refused): is the server running and ` +
          `listening on that address and port? Check the host and port in --state (${target.display}).`,
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new FatalError(`Cannot connect to the PostgreSQL state: the host name "${target.host}" does not resolve (${code}).`);
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new FatalError(`Cannot connect to the PostgreSQL state at ${where} (${code}): check the address and any firewall in between.`);
    case '28P01':
      return new FatalError(
        `PostgreSQL at ${where} refused ${passwordFrom} for user "${target.user}" (28P01 invalid_password). ` +
          `Set the right one in PGPASSWORD or in ${source.file} (chmod 0600).`,
      );
    case '28000':
      return new FatalError(
        `PostgreSQL at ${where} does not let user "${target.user}" into database "${target.database}" (28000: ${message}). ` +
          'Ask its administrator for a pg_hba.conf entry, or use sslmode=require if it wants TLS.',
      );
    case '3D000':
      return new FatalError(
        `The database "${target.database}" does not exist on ${where} (3D000). Create it first ` +
          `(createdb -h ${target.host} -p ${target.port} -U ${target.user} ${target.database}), or fix the database name in --state.`,
      );
    case '53300':
      return new FatalError(`PostgreSQL at ${where} has no free connection slot (53300: ${message}); raise max_connections or run fewer commands at once.`);
    default:
      break;
  }
  if (error instanceof FatalError) return error;
  if (/timeout/i.test(message)) {
    return new FatalError(
      `Cannot connect to the PostgreSQL state at ${where}: no answer within ${target.connectTimeoutMs / 1000} s ` +
        '(check the address and any firewall in between; ?connect_timeout=SECONDS changes the wait).',
    );
  }
  return new FatalError(`Cannot connect to the PostgreSQL state at ${where}: ${code ? `${code}: ` : ''}${message}`);
}
