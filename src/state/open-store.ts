import fs from 'node:fs';
import { UsageError } from '../errors.js';
import type { OpenOptions } from './sqlite/open-database.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import type { StateStore } from './store.js';

/** What opening a state takes: the SQLite options, plus what a PostgreSQL state needs. */
export interface StateOpenOptions extends OpenOptions {
  /** --migration: which migration of a PostgreSQL database (a SQLite file holds one). */
  migration?: string;
  /** The environment the CLI loaded (PG* variables, PGPASSWORD); nothing below the CLI reads process.env. */
  env?: Record<string, string | undefined>;
}

export type { OpenOptions };

/** The migration a PostgreSQL state uses when --migration is not given. */
export const DEFAULT_MIGRATION = 'default';

/** `postgres://` or `postgresql://`: a --state value that names a PostgreSQL database, not a file. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/**
 * Opens the state a `--state` value names: a PostgreSQL database for a postgres:// URL (loaded only then),
 * else a SQLite file path.
 */
export async function openStateStore(location: string, options: StateOpenOptions): Promise<StateStore> {
  if (isPostgresUrl(location)) {
    const { PgStore } = await import('./postgres/pg-store.js');
    return PgStore.open(location, { ...options, migration: options.migration ?? DEFAULT_MIGRATION });
  }
  if (options.migration !== undefined && options.migration !== DEFAULT_MIGRATION) {
    throw new UsageError(
      `--migration ${options.migration} names a migration inside a PostgreSQL state (--state postgres://...); ` +
        `a state file holds one migration: use one file per migration (--state ${options.migration}.db).`,
    );
  }
  return SqliteStore.open(location, options);
}

/** True when `location` is a state file that exists with content (a PostgreSQL state answers after opening). */
export function stateFileExists(location: string): boolean {
  return !isPostgresUrl(location) && fs.existsSync(location) && fs.statSync(location).size > 0;
}

/**
 * Closes a store whose command failed before it listed anything, and removes what that command created:
 * a new state file (and its -wal/-shm), or a new migration of a PostgreSQL state. An existing state is
 * kept as it was.
 */
export async function closeAndDiscardNew(store: StateStore, location: string, fileExisted: boolean): Promise<void> {
  const discard = (store as { discardIfCreated?: () => Promise<void> }).discardIfCreated;
  if (discard) await discard.call(store).catch(() => undefined);
  await store.close();
  if (!isPostgresUrl(location) && !fileExisted) {
    for (const suffix of ['', '-wal', '-shm']) fs.rmSync(location + suffix, { force: true });
  }
}
