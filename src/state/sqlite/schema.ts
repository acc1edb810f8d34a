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

export const MIGRATIONS: readonly string[] = [
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

  CREATE TRIGGER objects_counted_insert AFTER INSERT ON objects BEGIN
${COUNT_NEW_ROW}  END;
  CREATE TRIGGER objects_counted_delete AFTER DELETE ON objects BEGIN
${UNCOUNT_OLD_ROW}  END;
  CREATE TRIGGER objects_counted_update AFTER UPDATE OF status, size, evidence, verify_result ON objects
    WHEN OLD.status IS NOT NEW.status OR OLD.size IS NOT NEW.size
      OR OLD.evidence IS NOT NEW.evidence OR OLD.verify_result IS NOT NEW.verify_result
  BEGIN
${UNCOUNT_OLD_ROW}${COUNT_NEW_ROW}  END;

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

export const SCHEMA_VERSION = MIGRATIONS.length;

/** One partial index per --sort order, over pending rows only, with the key as tie-breaker for keyset paging. */
export const SORT_INDEXES = {
  key: 'CREATE INDEX IF NOT EXISTS objects_pending_by_key ON objects(key) WHERE status = \'pending\'',
  oldest: 'CREATE INDEX IF NOT EXISTS objects_pending_by_modified ON objects(last_modified, key) WHERE status = \'pending\'',
  newest: 'CREATE INDEX IF NOT EXISTS objects_pending_by_modified ON objects(last_modified, key) WHERE status = \'pending\'',
  smallest: 'CREATE INDEX IF NOT EXISTS objects_pending_by_size ON objects(size, key) WHERE status = \'pending\'',
  largest: 'CREATE INDEX IF NOT EXISTS objects_pending_by_size ON objects(size, key) WHERE status = \'pending\'',
} as const;
