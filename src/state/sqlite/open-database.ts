import fs from 'node:fs';
import Database from 'better-sqlite3';
import { FatalError } from '../../errors.js';
import { APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION } from './schema.js';

export interface OpenOptions {
  /** Create the file when it does not exist (only `catalog` does). */
  create: boolean;
  /** Open read-only: queries only, no migration, nothing written. */
  readonly: boolean;
}

function notAStateFile(path: string): FatalError {
  return new FatalError(
    `${path} is not an s3migrate state file; it was left untouched. ` +
      `Pass --state with the file \`s3migrate catalog\` created, or a new path to start a new catalog.`,
  );
}

/**
 * Opens (or creates) a state file. An existing file is identified before anything is written to it:
 * a file that is not ours, or is from a newer s3migrate, is refused and left byte-for-byte unchanged.
 */
export function openDatabase(path: string, options: OpenOptions): Database.Database {
  // A 0-byte file is what a catalog killed while creating the file leaves behind: treat it as new.
  const exists = fs.existsSync(path) && !(options.create && fs.statSync(path).size === 0);
  if (!exists && !options.create) {
    throw new FatalError(`No state file at ${path}. Run \`s3migrate catalog --from s3://BUCKET --state ${path}\` first.`);
  }
  if (exists && fs.statSync(path).isDirectory()) {
    throw new FatalError(`${path} is a directory; --state expects a file path.`);
  }
  if (exists && !options.readonly) {
    try {
      fs.accessSync(path, fs.constants.W_OK);
    } catch {
      throw new FatalError(`The state file ${path} is read-only; make it writable (chmod u+w) and run again.`);
    }
  }

  // A read-only command (status) on a file of an older schema migrates it first: the views it reads
  // are the current schema's. Migrations are one transaction each way: all or nothing.
  const readonly = exists && options.readonly && !needsMigration(path);
  let db: Database.Database;
  try {
    db = new Database(path, { readonly, fileMustExist: fs.existsSync(path) });
  } catch (error) {
    throw new FatalError(`Cannot open the state file ${path}: ${(error as Error).message}`);
  }

  try {
    if (exists) {
      checkIdentity(db, path);
    }
    if (!readonly) {
      // Migrate first: on a new file the schema and the identity land in one atomic commit.
      migrate(db);
      db.pragma('journal_mode = WAL');
      // NORMAL is durable across process crashes in WAL mode; only an OS crash can lose the last commits,
      // which the next copy re-checks at the destination.
      db.pragma('synchronous = NORMAL');
    }
    db.pragma('busy_timeout = 5000');
    return db;
  } catch (error) {
    db.close();
    if (error instanceof FatalError) throw error;
    if ((error as { code?: string }).code === 'SQLITE_NOTADB') throw notAStateFile(path);
    if ((error as { code?: string }).code === 'SQLITE_READONLY') {
      throw new FatalError(`The state file ${path} is read-only; make it writable and run again.`);
    }
    throw new FatalError(`Cannot read the state file ${path}: ${(error as Error).message}`);
  }
}

/** True for one of our files whose schema is older than this version's (peeked at read-only). */
function needsMigration(path: string): boolean {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const applicationId = db.pragma('application_id', { simple: true }) as number;
    const version = db.pragma('user_version', { simple: true }) as number;
    return applicationId === APPLICATION_ID && version < SCHEMA_VERSION;
  } catch {
    return false; // checkIdentity reports it properly
  } finally {
    db?.close();
  }
}

function checkIdentity(db: Database.Database, path: string): void {
  let applicationId: number;
  let version: number;
  try {
    applicationId = db.pragma('application_id', { simple: true }) as number;
    version = db.pragma('user_version', { simple: true }) as number;
  } catch (error) {
    if ((error as { code?: string }).code === 'SQLITE_NOTADB') throw notAStateFile(path);
    throw error;
  }
  if (applicationId !== APPLICATION_ID) throw notAStateFile(path);
  if (version > SCHEMA_VERSION) {
    throw new FatalError(
      `${path} was written by a newer s3migrate (schema version ${version}, this one reads up to ` +
        `${SCHEMA_VERSION}); it was left untouched. Upgrade s3migrate to continue with it.`,
    );
  }
}

function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current === SCHEMA_VERSION) return;
  db.transaction(() => {
    for (let version = current; version < SCHEMA_VERSION; version += 1) {
      db.exec(MIGRATIONS[version]!);
    }
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  })();
}
