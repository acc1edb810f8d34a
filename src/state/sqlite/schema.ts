/**
 * The state file's schema, as forward-only migrations. Version N is reached by running migrations
 * 1..N in order; the version lives in PRAGMA user_version, and our files carry APPLICATION_ID so a
 * random SQLite file is never mistaken for (and never modified as) a state file.
 */

/** "s3mg" in ASCII: marks SQLite files made by s3migrate (PRAGMA application_id). */
export const APPLICATION_ID = 0x73336d67;

/**
 * What the counter triggers (migration 2) do for a row: add it to its status, to its evidence when done,
 * and to its verify result when it has one and is not gone or deleted; or take it away from them. An
 * update does both. Rows without a verify result are not counted per row: verify_summary derives
 * 'not-verified' from the totals, so a catalog's inserts and a copy's marks pay for no verify counter.
 */
const COUNT_NEW_ROW = `
    INSERT INTO counters VALUES ('status', NEW.status, 1, NEW.size)
      ON CONFLICT (kind, value) DO UPDATE SET objects = objects + 1, bytes = bytes + excluded.bytes;
    INSERT INTO counters SELECT 'evidence', COALESCE(NEW.evidence, 'none'), 1, NEW.size WHERE NEW.status = 'done'
      ON CONFLICT (kind, value) DO UPDATE SET objects = objects + 1, bytes = bytes + excluded.bytes;
    INSERT INTO counters SELECT 'verify', NEW.verify_result, 1, NEW.size
      WHERE NEW.verify_result IS NOT NULL AND NEW.status NOT IN ('gone', 'deleted')
      ON CONFLICT (kind, value) DO UPDATE SET objects = objects + 1, bytes = bytes + excluded.bytes;
`.slice(1);
const UNCOUNT_OLD_ROW = `
    UPDATE counters SET objects = objects - 1, bytes = bytes - OLD.size WHERE kind = 'status' AND value = OLD.status;
    UPDATE counters SET objects = objects - 1, bytes = bytes - OLD.size
      WHERE OLD.status = 'done' AND kind = 'evidence' AND value = COALESCE(OLD.evidence, 'none');
    UPDATE counters SET objects = objects - 1, bytes = bytes - OLD.size
      WHERE OLD.status NOT IN ('gone', 'deleted') AND kind = 'verify' AND value = OLD.verify_result;
`.slice(1);

/** The triggers that keep `counters` (migrations 2 and 3, which rebuilds the table they are on). */
const COUNTER_TRIGGERS = `
  CREATE TRIGGER objects_counted_insert AFTER INSERT ON objects BEGIN
${COUNT_NEW_ROW}  END;
  CREATE TRIGGER objects_counted_delete AFTER DELETE ON objects BEGIN
${UNCOUNT_OLD_ROW}  END;
  CREATE TRIGGER objects_counted_update AFTER UPDATE OF status, size, evidence, verify_result ON objects
    WHEN OLD.status IS NOT NEW.status OR OLD.size IS NOT NEW.size
      OR OLD.evidence IS NOT NEW.evidence OR OLD.verify_result IS NOT NEW.verify_result
  BEGIN
${UNCOUNT_OLD_ROW}${COUNT_NEW_ROW}  END;
`.slice(1);

const FIRST_MIGRATIONS: readonly string[] = [
  // 1: the catalog, run history and the views that make `sqlite3 state.db` pleasant.
  `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT
  ) WITHOUT ROWID;

  -- One row per source object. Timestamps are ISO-8601 UTC text, sizes are bytes.
  CREATE TABLE objects (
    id              INTEGER PRIMARY KEY,
    key             TEXT NOT NULL UNIQUE,
    size            INTEGER NOT NULL,
    etag            TEXT,
    last_modified   TEXT NOT NULL,
    storage_class   TEXT,
    -- pending | in_flight | done | failed | gone (no longer at the source)
    status          TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    error           TEXT,
    -- which catalog pass last saw this key; rows not seen by a finished pass are gone
    catalog_pass    INTEGER NOT NULL,
    listed_at       TEXT NOT NULL,
    started_at      TEXT,
    copied_at       TEXT,
    dest_key        TEXT,
    dest_etag       TEXT,
    -- how the copy was checked: md5 | multipart-etag | size-only | unverified
    verify_method   TEXT,
    verified_at     TEXT,
    -- what the last \`verify\` found: ok | missing | size-mismatch | etag-mismatch | content-mismatch | not-copied
    verify_result   TEXT,
    verify_pass     INTEGER,
    updated_at      TEXT NOT NULL
  );

  -- The --sort indexes (objects_pending_by_*, see SORT_INDEXES) are built by the first copy that needs
  -- them: one sort over the finished catalog is far cheaper than maintaining them row by row while listing.
  -- Only the few rows in flight or failed: a new (pending) row costs these nothing while listing.
  CREATE INDEX objects_in_flight ON objects(key)        WHERE status = 'in_flight';
  CREATE INDEX objects_failed    ON objects(updated_at) WHERE status = 'failed';

  CREATE TABLE runs (
    id               INTEGER PRIMARY KEY,
    command          TEXT NOT NULL,
    arguments        TEXT,
    started_at       TEXT NOT NULL,
    finished_at      TEXT,
    -- running | completed | interrupted | failed | abandoned (killed without a chance to record it)
    outcome          TEXT NOT NULL DEFAULT 'running',
    objects_done     INTEGER NOT NULL DEFAULT 0,
    objects_failed   INTEGER NOT NULL DEFAULT 0,
    bytes_done       INTEGER NOT NULL DEFAULT 0,
    keys_listed      INTEGER NOT NULL DEFAULT 0,
    error            TEXT
  );

  CREATE VIEW status_summary AS
    SELECT status, COUNT(*) AS objects, COALESCE(SUM(size), 0) AS bytes
    FROM objects GROUP BY status ORDER BY status;

  CREATE VIEW verify_problems AS
    SELECT key, size, verify_result, status, verified_at FROM objects
    WHERE verify_result IS NOT NULL AND verify_result <> 'ok' AND status <> 'gone' ORDER BY key;

  CREATE VIEW failed_objects AS
    SELECT key, size, attempts, error, updated_at FROM objects WHERE status = 'failed' ORDER BY updated_at DESC;

  CREATE VIEW progress AS
    SELECT
      COUNT(*) FILTER (WHERE status <> 'gone')                          AS objects_total,
      COUNT(*) FILTER (WHERE status = 'done')                           AS objects_done,
      COALESCE(SUM(size) FILTER (WHERE status <> 'gone'), 0)            AS bytes_total,
      COALESCE(SUM(size) FILTER (WHERE status = 'done'), 0)             AS bytes_done,
      ROUND(100.0 * COUNT(*) FILTER (WHERE status = 'done')
            / MAX(COUNT(*) FILTER (WHERE status <> 'gone'), 1), 2)      AS percent_done
    FROM objects;
  `,
  // 2: positive evidence. The column that said how a copy was checked is now its evidence; rows the first
  // release marked done on size alone (or unchecked) are not done on evidence: they become 'unproven'
  // (verify --deep proves them in place, copy copies them again). New states: changed, unproven.
  `
  ALTER TABLE objects RENAME COLUMN verify_method TO evidence;
  -- How a done row's bytes went: stream (through s3migrate) or server-side (copied by the destination).
  ALTER TABLE objects ADD COLUMN copy_method TEXT;
  -- The copy worker holding an in-flight row, and until when (ms since 1970): an expired lease returns
  -- the row to the pool after a check at the destination; a worker writes only rows it holds.
  ALTER TABLE objects ADD COLUMN lease_owner TEXT;
  ALTER TABLE objects ADD COLUMN lease_expires_at INTEGER;
  UPDATE objects SET status = 'unproven', verify_result = NULL
    WHERE status = 'done' AND (evidence IS NULL OR evidence NOT IN ('md5', 'multipart-etag'));
  CREATE INDEX objects_changed ON objects(key) WHERE status = 'changed';

  DROP VIEW verify_problems;
  CREATE VIEW verify_problems AS
    SELECT key, size, verify_result, status, verified_at FROM objects
    WHERE verify_result IS NOT NULL AND verify_result <> 'ok' AND status <> 'gone' ORDER BY key;

  -- What each done row's bytes were checked against.
  CREATE VIEW evidence_summary AS
    SELECT evidence, COUNT(*) AS objects, COALESCE(SUM(size), 0) AS bytes
    FROM objects WHERE status = 'done' GROUP BY evidence ORDER BY evidence;

  -- Source objects that changed since the catalog: run \`s3migrate catalog\` again.
  CREATE VIEW changed_objects AS
    SELECT key, size, etag, error, updated_at FROM objects WHERE status = 'changed' ORDER BY key;

  -- The multipart upload a row's copy is building (one per row at most), kept across runs so that a
  -- crash or a stop resumes it: only the missing parts are sent again.
  CREATE TABLE uploads (
    object_id    INTEGER PRIMARY KEY,
    dest_key     TEXT NOT NULL,
    upload_id    TEXT NOT NULL,
    -- the source version the parts are read from (every part read carries If-Match on it)
    source_etag  TEXT,
    size         INTEGER NOT NULL,
    part_size    INTEGER NOT NULL,
    part_count   INTEGER NOT NULL,
    started_at   TEXT NOT NULL
  );
  -- Each part the destination confirmed: its ETag (for CompleteMultipartUpload) and the MD5 of the
  -- bytes we sent (for the multipart ETag the completed object must carry).
  CREATE TABLE parts (
    object_id    INTEGER NOT NULL,
    part_number  INTEGER NOT NULL,
    size         INTEGER NOT NULL,
    etag         TEXT NOT NULL,
    md5          TEXT NOT NULL,
    PRIMARY KEY (object_id, part_number)
  ) WITHOUT ROWID;

  CREATE VIEW open_uploads AS
    SELECT o.key, u.dest_key, u.upload_id, u.size, u.part_size, u.part_count,
           COUNT(p.part_number) AS parts_done, COALESCE(SUM(p.size), 0) AS bytes_done, u.started_at
    FROM uploads u JOIN objects o ON o.id = u.object_id LEFT JOIN parts p ON p.object_id = u.object_id
    GROUP BY u.object_id ORDER BY o.key;

  -- Counters kept by the triggers below in the same transaction as every row change, so that \`status\`
  -- answers from a few rows instead of scanning the table: objects and bytes per status, per evidence of
  -- done rows, per verify result of rows not gone or deleted. The views below read them; a full scan
  -- (SELECT status, COUNT(*), SUM(size) FROM objects GROUP BY status) gives the same numbers.
  CREATE TABLE counters (
    kind     TEXT NOT NULL,            -- status | evidence | verify
    value    TEXT NOT NULL,
    objects  INTEGER NOT NULL,
    bytes    INTEGER NOT NULL,
    PRIMARY KEY (kind, value)
  ) WITHOUT ROWID;
  INSERT INTO counters SELECT 'status', status, COUNT(*), COALESCE(SUM(size), 0) FROM objects GROUP BY status;
  INSERT INTO counters SELECT 'evidence', COALESCE(evidence, 'none'), COUNT(*), COALESCE(SUM(size), 0)
    FROM objects WHERE status = 'done' GROUP BY 2;
  INSERT INTO counters SELECT 'verify', verify_result, COUNT(*), COALESCE(SUM(size), 0)
    FROM objects WHERE verify_result IS NOT NULL AND status NOT IN ('gone', 'deleted') GROUP BY 2;

${COUNTER_TRIGGERS}
  DROP VIEW status_summary;
  CREATE VIEW status_summary AS
    SELECT value AS status, objects, bytes FROM counters WHERE kind = 'status' AND objects > 0 ORDER BY value;
  DROP VIEW evidence_summary;
  CREATE VIEW evidence_summary AS
    SELECT value AS evidence, objects, bytes FROM counters WHERE kind = 'evidence' AND objects > 0 ORDER BY value;
  DROP VIEW progress;
  CREATE VIEW progress AS
    SELECT
      COALESCE(SUM(objects) FILTER (WHERE value NOT IN ('gone', 'deleted')), 0)          AS objects_total,
      COALESCE(SUM(objects) FILTER (WHERE value = 'done'), 0)           AS objects_done,
      COALESCE(SUM(bytes) FILTER (WHERE value NOT IN ('gone', 'deleted')), 0)            AS bytes_total,
      COALESCE(SUM(bytes) FILTER (WHERE value = 'done'), 0)             AS bytes_done,
      ROUND(100.0 * COALESCE(SUM(objects) FILTER (WHERE value = 'done'), 0)
            / MAX(COALESCE(SUM(objects) FILTER (WHERE value NOT IN ('gone', 'deleted')), 0), 1), 2) AS percent_done
    FROM counters WHERE kind = 'status';
  -- Rows not gone or deleted per verify result; those without one are the totals less the others.
  CREATE VIEW verify_summary AS
    SELECT result, objects, bytes FROM (
      SELECT value AS result, objects, bytes FROM counters WHERE kind = 'verify'
      UNION ALL
      SELECT 'not-verified', p.objects_total - COALESCE(SUM(c.objects), 0), p.bytes_total - COALESCE(SUM(c.bytes), 0)
      FROM progress p LEFT JOIN counters c ON c.kind = 'verify'
    ) WHERE objects > 0 ORDER BY result;
  -- The few rows that carry an error (status lists the latest), found without a scan.
  CREATE INDEX objects_with_error ON objects(updated_at) WHERE error IS NOT NULL;

  -- The parts of the current listing pass (catalog --list-concurrency): each the keys k with
  -- start_after < k <= end_key in byte order (end_key NULL: to the last key), listed on its own and
  -- resumed after resume_after, the last key it stored (committed with each page).
  CREATE TABLE catalog_parts (
    pass         INTEGER NOT NULL,
    part         INTEGER NOT NULL,
    start_after  TEXT NOT NULL,
    end_key      TEXT,
    resume_after TEXT NOT NULL,
    done         INTEGER NOT NULL DEFAULT 0,
    keys_listed  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (pass, part)
  ) WITHOUT ROWID;
  -- A listing the first release left interrupted resumes as one part, after the key it had stored last.
  INSERT INTO catalog_parts (pass, part, start_after, end_key, resume_after)
    SELECT CAST(p.value AS INTEGER), 1, '', NULL, COALESCE(a.value, '')
    FROM meta p JOIN meta s ON s.key = 'catalog_state' AND s.value = 'listing'
    LEFT JOIN meta a ON a.key = 'catalog_start_after'
    WHERE p.key = 'catalog_pass';
  DELETE FROM meta WHERE key = 'catalog_start_after';

  -- Cut-over. States: archived (an archive storage class: restore it first; copy skips it) and deleted
  -- (gone from the source, and the copy s3migrate wrote deleted by copy --delete-gone, at deleted_at).
  ALTER TABLE objects ADD COLUMN deleted_at TEXT;
  -- What the catalog pass change_pass found for this row: new | modified | gone.
  ALTER TABLE objects ADD COLUMN change_kind TEXT;
  ALTER TABLE objects ADD COLUMN change_pass INTEGER;
  CREATE INDEX objects_gone ON objects(key) WHERE status = 'gone';

  -- What each finished catalog pass found, compared with the state before it.
  CREATE TABLE catalog_passes (
    pass              INTEGER PRIMARY KEY,
    started_at        TEXT,
    finished_at       TEXT NOT NULL,
    -- the filter a filtered pass was limited to (JSON of its flags); NULL: the whole prefix
    scope             TEXT,
    new_objects       INTEGER NOT NULL,
    new_bytes         INTEGER NOT NULL,
    modified_objects  INTEGER NOT NULL,
    modified_bytes    INTEGER NOT NULL,
    gone_objects      INTEGER NOT NULL,
    gone_bytes        INTEGER NOT NULL
  );

  -- Objects copy skips until they are restored at the source.
  CREATE VIEW archived_objects AS
    SELECT key, size, storage_class, last_modified FROM objects WHERE status = 'archived' ORDER BY key;
  -- What copy --delete-gone deleted from the destination, and gone rows it left alone (with why).
  CREATE VIEW deleted_objects AS
    SELECT key, dest_key, size, dest_etag, deleted_at FROM objects WHERE status = 'deleted' ORDER BY key;
  CREATE VIEW gone_objects AS
    SELECT key, dest_key, size, dest_etag, error, updated_at FROM objects WHERE status = 'gone' ORDER BY key;
  `,
];

/*
 * Migration 3 stores each object row compactly; the views show it as readable text. The SQL expressions
 * that encode (in the migration) and decode (in the views and some of the store's reads) each value live
 * here, beside their JavaScript twins in ./encoding.ts, and must agree with them exactly.
 *
 * - Times are integer milliseconds since 1970 (UTC); shown as `2024-01-01T00:00:00.000Z`. A value that is
 *   not an integer (text someone wrote by hand) is shown as it is.
 * - An ETag of the usual form, `"<32 hex>"` or `"<32 hex>-<parts>"`, is a blob: the 16 bytes of the hex,
 *   then `-<parts>` in ASCII. Any other ETag is kept as text, exactly.
 * - dest_etag: an empty blob when it is the source ETag's value without quotes (the usual case).
 * - dest_key: an empty blob when it is the key itself.
 * - storage_class: NULL for STANDARD; an empty blob when the listing gave none.
 */
const HEX32 = '[0-9a-f]'.repeat(32);

/** A column of integer milliseconds as ISO-8601 text (other values as they are). */
export function isoSql(column: string): string {
  return `CASE WHEN typeof(${column}) IN ('integer', 'real') THEN strftime('%Y-%m-%dT%H:%M:%fZ', ${column} / 1000.0, 'unixepoch') ELSE ${column} END`;
}

/** ISO-8601 text as integer milliseconds (text that is no date kept as it is). */
export function msSql(column: string): string {
  return `COALESCE(CAST(ROUND(unixepoch(${column}, 'subsec') * 1000) AS INTEGER), ${column})`;
}

/** An ETag column as stored (blob or text) as the ETag's text: quoted. */
export function etagSql(column: string): string {
  return `CASE typeof(${column}) WHEN 'blob' THEN '"' || lower(hex(substr(${column}, 1, 16))) || CAST(substr(${column}, 17) AS TEXT) || '"' ELSE ${column} END`;
}

/** The stored ETag's value without quotes, when it is a blob; NULL otherwise (what an empty dest_etag stands for). */
export function bareEtagSql(column: string): string {
  return `CASE typeof(${column}) WHEN 'blob' THEN lower(hex(substr(${column}, 1, 16))) || CAST(substr(${column}, 17) AS TEXT) END`;
}

/** An ETag's text as stored: the usual forms as a blob, anything else as it is. */
export function etagBlobSql(column: string): string {
  return `CASE
      WHEN ${column} GLOB '"${HEX32}"' THEN unhex(substr(${column}, 2, 32))
      WHEN ${column} GLOB '"${HEX32}-[0-9]*"' AND substr(${column}, 36, length(${column}) - 36) NOT GLOB '*[^0-9]*'
        THEN unhex(substr(${column}, 2, 32) || hex(substr(${column}, 34, length(${column}) - 34)))
      ELSE ${column} END`;
}

/** dest_etag as its text, given the row's stored source ETag. */
export function destEtagSql(column = 'dest_etag', etag = 'etag'): string {
  return `CASE WHEN ${column} = X'' THEN ${bareEtagSql(etag)} ELSE ${column} END`;
}

/** dest_key as its text, given the row's key. */
export function destKeySql(column = 'dest_key', key = 'key'): string {
  return `CASE WHEN ${column} = X'' THEN ${key} ELSE ${column} END`;
}

/** storage_class as its text. */
export function storageClassSql(column = 'storage_class'): string {
  return `CASE WHEN ${column} IS NULL THEN 'STANDARD' WHEN ${column} = X'' THEN NULL ELSE ${column} END`;
}

/** When a row was last listed: the start of the catalog pass that last saw it. */
const LISTED_AT_SQL = `COALESCE(
      (SELECT started_at FROM catalog_passes p WHERE p.pass = o.catalog_pass),
      (SELECT m2.value FROM meta m1 JOIN meta m2 ON m2.key = 'catalog_started_at'
       WHERE m1.key = 'catalog_pass' AND CAST(m1.value AS INTEGER) = o.catalog_pass))`;

const MIGRATION_3 = `
  -- 3: a compact row. Times in integer milliseconds, ETags of the usual form in 16 bytes, the common
  -- values (STANDARD, dest_key = key, dest_etag = the source's) left out, listed_at dropped (the catalog
  -- pass that listed a row says when), and the columns most rows leave NULL last (SQLite stores nothing
  -- for trailing NULLs). The views show every value as before: ISO-8601 text, quoted ETags; objects_view
  -- shows whole rows so.
  DROP VIEW verify_problems;
  DROP VIEW failed_objects;
  DROP VIEW changed_objects;
  DROP VIEW open_uploads;
  DROP VIEW archived_objects;
  DROP VIEW deleted_objects;
  DROP VIEW gone_objects;

  CREATE TABLE objects_compact (
    id               INTEGER PRIMARY KEY,
    key              TEXT NOT NULL UNIQUE,
    size             INTEGER NOT NULL,
    -- the usual ETags as a blob, others as text (see above; TEXT leaves blobs as they are)
    etag             TEXT,
    last_modified    INTEGER NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending',
    attempts         INTEGER NOT NULL DEFAULT 0,
    catalog_pass     INTEGER NOT NULL,
    change_pass      INTEGER,
    change_kind      TEXT,
    updated_at       INTEGER,
    storage_class    TEXT,
    started_at       INTEGER,
    copied_at        INTEGER,
    verified_at      INTEGER,
    evidence         TEXT,
    copy_method      TEXT,
    dest_etag        TEXT,
    dest_key         TEXT,
    verify_result    TEXT,
    verify_pass      INTEGER,
    error            TEXT,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    deleted_at       INTEGER
  );
  INSERT INTO objects_compact (id, key, size, etag, last_modified, status, attempts, catalog_pass, change_pass,
      change_kind, updated_at, storage_class, started_at, copied_at, verified_at, evidence, copy_method, dest_etag,
      dest_key, verify_result, verify_pass, error, lease_owner, lease_expires_at, deleted_at)
    SELECT id, key, size, stored_etag, ${msSql('last_modified')}, status, attempts, catalog_pass, change_pass,
      change_kind, ${msSql('updated_at')},
      CASE WHEN storage_class IS NULL THEN X'' WHEN storage_class = 'STANDARD' THEN NULL ELSE storage_class END,
      ${msSql('started_at')}, ${msSql('copied_at')}, ${msSql('verified_at')}, evidence, copy_method,
      CASE WHEN dest_etag IS NOT NULL AND dest_etag = ${bareEtagSql('stored_etag')} THEN X'' ELSE dest_etag END,
      CASE WHEN dest_key = key THEN X'' ELSE dest_key END,
      verify_result, verify_pass, error, lease_owner, lease_expires_at, ${msSql('deleted_at')}
    FROM (SELECT *, ${etagBlobSql('etag')} AS stored_etag FROM objects) ORDER BY id;
  DROP TABLE objects;
  ALTER TABLE objects_compact RENAME TO objects;

  CREATE INDEX objects_in_flight  ON objects(key)        WHERE status = 'in_flight';
  CREATE INDEX objects_failed     ON objects(updated_at) WHERE status = 'failed';
  CREATE INDEX objects_changed    ON objects(key)        WHERE status = 'changed';
  CREATE INDEX objects_gone       ON objects(key)        WHERE status = 'gone';
  CREATE INDEX objects_with_error ON objects(updated_at) WHERE error IS NOT NULL;

${COUNTER_TRIGGERS}
  -- Every object row as text, with the columns of the tables before this migration (listed_at: when
  -- the catalog pass that last saw the row started).
  CREATE VIEW objects_view AS
    SELECT o.id, o.key, o.size, ${etagSql('o.etag')} AS etag, ${isoSql('o.last_modified')} AS last_modified,
      ${storageClassSql('o.storage_class')} AS storage_class, o.status, o.attempts, o.error, o.catalog_pass,
      ${LISTED_AT_SQL} AS listed_at,
      ${isoSql('o.started_at')} AS started_at, ${isoSql('o.copied_at')} AS copied_at,
      ${destKeySql('o.dest_key', 'o.key')} AS dest_key, ${destEtagSql('o.dest_etag', 'o.etag')} AS dest_etag,
      o.evidence, ${isoSql('o.verified_at')} AS verified_at, o.verify_result, o.verify_pass,
      ${isoSql('o.updated_at')} AS updated_at, o.copy_method, o.lease_owner, o.lease_expires_at,
      ${isoSql('o.deleted_at')} AS deleted_at, o.change_kind, o.change_pass
    FROM objects o;

  CREATE VIEW verify_problems AS
    SELECT key, size, verify_result, status, ${isoSql('verified_at')} AS verified_at FROM objects
    WHERE verify_result IS NOT NULL AND verify_result <> 'ok' AND status <> 'gone' ORDER BY key;
  CREATE VIEW failed_objects AS
    SELECT key, size, attempts, error, ${isoSql('updated_at')} AS updated_at FROM objects
    WHERE status = 'failed' ORDER BY objects.updated_at DESC;
  CREATE VIEW changed_objects AS
    SELECT key, size, ${etagSql('etag')} AS etag, error, ${isoSql('updated_at')} AS updated_at FROM objects
    WHERE status = 'changed' ORDER BY key;
  CREATE VIEW open_uploads AS
    SELECT o.key, u.dest_key, u.upload_id, u.size, u.part_size, u.part_count,
           COUNT(p.part_number) AS parts_done, COALESCE(SUM(p.size), 0) AS bytes_done, u.started_at
    FROM uploads u JOIN objects o ON o.id = u.object_id LEFT JOIN parts p ON p.object_id = u.object_id
    GROUP BY u.object_id ORDER BY o.key;
  CREATE VIEW archived_objects AS
    SELECT key, size, ${storageClassSql()} AS storage_class, ${isoSql('last_modified')} AS last_modified FROM objects
    WHERE status = 'archived' ORDER BY key;
  CREATE VIEW deleted_objects AS
    SELECT key, ${destKeySql()} AS dest_key, size, ${destEtagSql()} AS dest_etag, ${isoSql('deleted_at')} AS deleted_at
    FROM objects WHERE status = 'deleted' ORDER BY key;
  CREATE VIEW gone_objects AS
    SELECT key, ${destKeySql()} AS dest_key, size, ${destEtagSql()} AS dest_etag, error, ${isoSql('updated_at')} AS updated_at
    FROM objects WHERE status = 'gone' ORDER BY key;
`;

/*
 * Migration 4: no trigger counts an inserted row. The catalog is the only writer that inserts object rows,
 * always as pending, and counts a page's new rows with one counters statement in the page's transaction
 * (src/state/sqlite/new-rows.ts): the trigger cost a quarter of the ingest's SQLite time, running its
 * three statements for every row. Updates and deletes are still counted by their triggers.
 */
const MIGRATION_4 = `
  DROP TRIGGER objects_counted_insert;
`;

export const MIGRATIONS: readonly string[] = [...FIRST_MIGRATIONS, MIGRATION_3, MIGRATION_4];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** One partial index per --sort order, over pending rows only, with the key as tie-breaker for keyset paging. */
export const SORT_INDEXES = {
  key: 'CREATE INDEX IF NOT EXISTS objects_pending_by_key ON objects(key) WHERE status = \'pending\'',
  oldest: 'CREATE INDEX IF NOT EXISTS objects_pending_by_modified ON objects(last_modified, key) WHERE status = \'pending\'',
  newest: 'CREATE INDEX IF NOT EXISTS objects_pending_by_modified ON objects(last_modified, key) WHERE status = \'pending\'',
  smallest: 'CREATE INDEX IF NOT EXISTS objects_pending_by_size ON objects(size, key) WHERE status = \'pending\'',
  largest: 'CREATE INDEX IF NOT EXISTS objects_pending_by_size ON objects(size, key) WHERE status = \'pending\'',
} as const;
