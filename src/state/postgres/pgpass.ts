import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** What a password file line is matched against (libpq's rules: the host and port as given, not resolved). */
export interface PassFileTarget {
  host: string;
  port: number;
  database: string;
  user: string;
}

export interface PassFileLookup {
  /** The password of the first matching line, if any. */
  password?: string;
  /** The file that was read, or why none was: for messages (never the password). */
  file: string;
  ignored?: string;
}

/** The password file libpq would read: PGPASSFILE, else ~/.pgpass. */
export function passFilePath(env: Record<string, string | undefined>): string {
  if (env.PGPASSFILE) return env.PGPASSFILE;
  return path.join(env.HOME || os.homedir(), '.pgpass');
}

/** Splits one line into its five fields; `\:` and `\\` are escapes, as libpq reads them. */
function fields(line: string): string[] | undefined {
  const out: string[] = [];
  let current = '';
  for (let i = 0; i < line.length; i += 1) {
    const c = line[i]!;
    if (c === '\\' && i + 1 < line.length) {
      current += line[i + 1];
      i += 1;
    } else if (c === ':' && out.length < 4) {
      out.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  out.push(current);
  return out.length === 5 ? out : undefined;
}

/** libpq: a socket connection (no host, or a directory) is matched by the name `localhost`. */
function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*' || pattern === host) return true;
  return pattern === 'localhost' && (host === '' || host.startsWith('/'));
}

/**
 * Reads the password for `target` from the password file, the way libpq does (the same file format and
 * matching; a file that group or others may read is ignored, as libpq ignores it). `pg` can read this file
 * too, but only through a code path it deprecated (with a warning on every run), so we read it ourselves.
 */
export function lookupPassFile(target: PassFileTarget, env: Record<string, string | undefined>): PassFileLookup {
  const file = passFilePath(env);
  let text: string;
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile()) return { file, ignored: 'not a regular file' };
    if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
      return { file, ignored: 'group or others may read it; libpq and s3migrate ignore it unless it is chmod 0600' };
    }
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { file };
    return { file, ignored: `not readable (${(error as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  for (const raw of text.split(/\r?\n/)) {
    if (raw === '' || raw.startsWith('#')) continue;
    const parts = fields(raw);
    if (!parts) continue;
    const [host, port, database, user, password] = parts as [string, string, string, string, string];
    if (
      hostMatches(host, target.host) &&
      (port === '*' || port === String(target.port)) &&
      (database === '*' || database === target.database) &&
      (user === '*' || user === target.user)
    ) {
      return { password, file };
    }
  }
  return { file };
}
