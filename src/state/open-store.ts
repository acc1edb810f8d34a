import type { OpenOptions } from './sqlite/open-database.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import type { StateStore } from './store.js';

export type { OpenOptions };

/** Opens the state a `--state` value names: a SQLite file path. */
export async function openStateStore(location: string, options: OpenOptions): Promise<StateStore> {
  return SqliteStore.open(location, options);
}
