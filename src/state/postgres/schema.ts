/**
 * The PostgreSQL state's schema, as forward-only migrations, mirroring src/state/sqlite/schema.ts.
 *
 * Everything lives in one schema, `s3migrate`, so that our generic table names (objects, runs, meta) never
 * meet another application's in a shared database. Several migrations (--migration NAME) share its tables:
 * every row carries its `migration`, every query of the store filters by it, and every view has it as its
 * first column (`SELECT * FROM s3migrate.status_summary WHERE migration = 'photos'`). One set of tables
 * rather than a schema per migration: no DDL per migration, schema upgrades run once per database, and an
 * overview of every migration is one query.
 *
 * Text is compared in byte order (COLLATE "C" on every text column): keys sort as S3 lists them and as
 * SQLite's BINARY collation orders them, whatever the database's default collation. Timestamps are
 * ISO-8601 UTC text and sizes bigint, as in the SQLite file, so rows read back identical.
 *
 * The version lives in s3migrate.schema_version (one row per database); migrations run in one transaction
 * under an advisory lock, so that workers starting together upgrade once.
 */

export const SCHEMA = 's3migrate';

/** Key of the advisory lock that serialises schema upgrades: "s3mg" in ASCII, as SQLite's application id. */
export const SCHEMA_LOCK_KEY = 0x73336d67;

/** Written into schema_version.application: a schema named s3migrate that lacks it is not ours. */
export const APPLICATION = 's3migrate';

/**
 * What the counters of migration 3 count of some rows, `sign` 1 to add them and -1 to take them away:
 * each row under its status, done rows under their evidence, rows not gone or deleted that have a verify
 * result under it (verify_summary derives 'not-verified' from the totals).
 */
function countedRows(rows: string, sign: 1 | -1): string {
  return [
    `      SELECT migration, 'status' AS kind, status AS value, ${sign} AS n, ${sign} * size AS b FROM ${rows}`,
    `      UNION ALL SELECT migration, 'evidence', COALESCE(evidence, 'none'), ${sign}, ${sign} * size FROM ${rows} WHERE status = 'done'`,
    `      UNION ALL SELECT migration, 'verify', verify_result, ${sign}, ${sign} * size FROM ${rows}` +
      " WHERE verify_result IS NOT NULL AND status NOT IN ('gone', 'deleted')",
  ].join('\n');
}

/** A statement trigger's function adding the deltas of its transition tables to this session's counter rows. */
function countingFunction(name: string, sources: ReadonlyArray<readonly [string, 1 | -1]>): string {
  return `  CREATE FUNCTION s3migrate.${name}() RETURNS trigger LANGUAGE plpgsql AS $fn$
  BEGIN
    INSERT INTO s3migrate.counters AS c (migration, kind, value, slot, objects, bytes)
    SELECT migration, kind, value, pg_backend_pid(), SUM(n), SUM(b) FROM (
${sources.map(([rows, sign]) => countedRows(rows, sign)).join('\n      UNION ALL\n')}
    ) AS d GROUP BY migration, kind, value HAVING SUM(n) <> 0 OR SUM(b) <> 0 ORDER BY migration, kind, value
    ON CONFLICT (migration, kind, value, slot)
      DO UPDATE SET objects = c.objects + excluded.objects, bytes = c.bytes + excluded.bytes;
    RETURN NULL;
  END
  $fn$;`;
}

export const MIGRATIONS: readonly string[] = [
  // 1: the SQLite file's schema version 2 (catalog, runs, evidence, views), with a migration column.
  `
  CREATE TABLE s3migrate.migrations (
    name        TEXT COLLATE "C" PRIMARY KEY,
    created_at  TEXT COLLATE "C" NOT NULL
  );

  -- Per migration: source and destination, catalog pass and resume point, verify pass, the writer's lock.
  CREATE TABLE s3migrate.meta (
    migration TEXT COLLATE "C" NOT NULL REFERENCES s3migrate.migrations(name) ON DELETE CASCADE,
    key       TEXT COLLATE "C" NOT NULL,
    value     TEXT COLLATE "C",
    PRIMARY KEY (migration, key)
  );

  -- One row per source object. Timestamps are ISO-8601 UTC text, sizes are bytes.
  CREATE TABLE s3migrate.objects (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    migration       TEXT COLLATE "C" NOT NULL REFERENCES s3migrate.migrations(name) ON DELETE CASCADE,
    key             TEXT COLLATE "C" NOT NULL,
    size            BIGINT NOT NULL,
    etag            TEXT COLLATE "C",
    last_modified   TEXT COLLATE "C" NOT NULL,
    storage_class   TEXT COLLATE "C",
    -- pending | in_flight | done | failed | changed | gone | unproven
    status          TEXT COLLATE "C" NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    error           TEXT COLLATE "C",
    -- which catalog pass last saw this key; rows not seen by a finished pass are gone
    catalog_pass    INTEGER NOT NULL,
    listed_at       TEXT COLLATE "C" NOT NULL,
    started_at      TEXT COLLATE "C",
    copied_at       TEXT COLLATE "C",
    dest_key        TEXT COLLATE "C",
    dest_etag       TEXT COLLATE "C",
    -- what the bytes were checked against: md5 | multipart-etag | part-etags | content-md5 | deep-md5
    evidence        TEXT COLLATE "C",
    -- how a done row's bytes went: stream (through s3migrate) or server-side (copied by the destination)
    copy_method     TEXT COLLATE "C",
    -- the copy worker holding an in-flight row, and until when (ms since 1970, by the database's clock)
    lease_owner     TEXT COLLATE "C",
    lease_expires_at BIGINT,
    verified_at     TEXT COLLATE "C",
    -- what the last \`verify\` found: ok | missing | size-mismatch | etag-mismatch | content-mismatch | not-copied
    verify_result   TEXT COLLATE "C",
    verify_pass     INTEGER,
    updated_at      TEXT COLLATE "C" NOT NULL,
    UNIQUE (migration, key)
  );

  -- The --sort indexes (objects_pending_by_*, see SORT_INDEXES) are built by the first copy that needs them.
  CREATE INDEX objects_in_flight ON s3migrate.objects (migration, key)        WHERE status = 'in_flight';
  CREATE INDEX objects_failed    ON s3migrate.objects (migration, updated_at) WHERE status = 'failed';
  CREATE INDEX objects_changed   ON s3migrate.objects (migration, key)        WHERE status = 'changed';

  CREATE TABLE s3migrate.runs (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    migration        TEXT COLLATE "C" NOT NULL REFERENCES s3migrate.migrations(name) ON DELETE CASCADE,
    command          TEXT COLLATE "C" NOT NULL,
    arguments        TEXT COLLATE "C",
    started_at       TEXT COLLATE "C" NOT NULL,
    finished_at      TEXT COLLATE "C",
    -- running | completed | interrupted | failed | abandoned (killed without a chance to record it)
    outcome          TEXT COLLATE "C" NOT NULL DEFAULT 'running',
    objects_done     BIGINT NOT NULL DEFAULT 0,
    objects_failed   BIGINT NOT NULL DEFAULT 0,
    bytes_done       BIGINT NOT NULL DEFAULT 0,
    keys_listed      BIGINT NOT NULL DEFAULT 0,
    error            TEXT COLLATE "C"
  );
  CREATE INDEX runs_by_migration ON s3migrate.runs (migration, id);

  -- The SQLite file's views, each with the migration as its first column.
  CREATE VIEW s3migrate.status_summary AS
    SELECT migration, status, COUNT(*) AS objects, COALESCE(SUM(size), 0)::bigint AS bytes
    FROM s3migrate.objects GROUP BY migration, status ORDER BY migration, status;

  CREATE VIEW s3migrate.progress AS
    SELECT
      m.name                                                              AS migration,
      COUNT(o.id) FILTER (WHERE o.status <> 'gone')                       AS objects_total,
      COUNT(o.id) FILTER (WHERE o.status = 'done')                        AS objects_done,
      COALESCE(SUM(o.size) FILTER (WHERE o.status <> 'gone'), 0)::bigint  AS bytes_total,
      COALESCE(SUM(o.size) FILTER (WHERE o.status = 'done'), 0)::bigint   AS bytes_done,
      ROUND(100.0 * COUNT(o.id) FILTER (WHERE o.status = 'done')
            / GREATEST(COUNT(o.id) FILTER (WHERE o.status <> 'gone'), 1), 2) AS percent_done
    FROM s3migrate.migrations m LEFT JOIN s3migrate.objects o ON o.migration = m.name
    GROUP BY m.name ORDER BY m.name;

  CREATE VIEW s3migrate.failed_objects AS
    SELECT migration, key, size, attempts, error, updated_at FROM s3migrate.objects
    WHERE status = 'failed' ORDER BY migration, updated_at DESC;

  CREATE VIEW s3migrate.verify_problems AS
    SELECT migration, key, size, verify_result, status, verified_at FROM s3migrate.objects
    WHERE verify_result IS NOT NULL AND verify_result <> 'ok' AND status <> 'gone' ORDER BY migration, key;

  -- What each done row's bytes were checked against.
  CREATE VIEW s3migrate.evidence_summary AS
    SELECT migration, evidence, COUNT(*) AS objects, COALESCE(SUM(size), 0)::bigint AS bytes
    FROM s3migrate.objects WHERE status = 'done' GROUP BY migration, evidence ORDER BY migration, evidence NULLS FIRST;

  -- Source objects that changed since the catalog: run \`s3migrate catalog\` again.
  CREATE VIEW s3migrate.changed_objects AS
    SELECT migration, key, size, etag, error, updated_at FROM s3migrate.objects
    WHERE status = 'changed' ORDER BY migration, key;

  -- The parts of the current listing pass (catalog --list-concurrency): each the keys k with
  -- start_after < k <= end_key in byte order (end_key NULL: to the last key), listed on its own and
  -- resumed after resume_after, the last key it stored (committed with each page).
  CREATE TABLE s3migrate.catalog_parts (
    migration    TEXT COLLATE "C" NOT NULL REFERENCES s3migrate.migrations(name) ON DELETE CASCADE,
    pass         INTEGER NOT NULL,
    part         INTEGER NOT NULL,
    start_after  TEXT COLLATE "C" NOT NULL,
    end_key      TEXT COLLATE "C",
    resume_after TEXT COLLATE "C" NOT NULL,
    done         BOOLEAN NOT NULL DEFAULT false,
    keys_listed  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (migration, pass, part)
  );
  `,
  // 2: multipart uploads kept across runs (part-level resume), as in the SQLite file.
  `
  -- The multipart upload a row's copy is building (one per row at most), kept across runs so that a
  -- crash or a stop resumes it: only the missing parts are sent again.
  CREATE TABLE s3migrate.uploads (
    object_id    BIGINT PRIMARY KEY REFERENCES s3migrate.objects(id) ON DELETE CASCADE,
    migration    TEXT COLLATE "C" NOT NULL REFERENCES s3migrate.migrations(name) ON DELETE CASCADE,
    dest_key     TEXT COLLATE "C" NOT NULL,
    upload_id    TEXT COLLATE "C" NOT NULL,
    -- the source version the parts are read from (every part read carries If-Match on it)
    source_etag  TEXT COLLATE "C",
    size         BIGINT NOT NULL,
    part_size    BIGINT NOT NULL,
    part_count   INTEGER NOT NULL,
    started_at   TEXT COLLATE "C" NOT NULL
  );
  CREATE INDEX uploads_by_migration ON s3migrate.uploads (migration);

  -- Each part the destination confirmed: its ETag (for CompleteMultipartUpload) and the MD5 of the
  -- bytes we sent (for the multipart ETag the completed object must carry).
  CREATE TABLE s3migrate.parts (
    object_id    BIGINT NOT NULL REFERENCES s3migrate.objects(id) ON DELETE CASCADE,
    migration    TEXT COLLATE "C" NOT NULL REFERENCES s3migrate.migrations(name) ON DELETE CASCADE,
    part_number  INTEGER NOT NULL,
    size         BIGINT NOT NULL,
    etag         TEXT COLLATE "C" NOT NULL,
    md5          TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (object_id, part_number)
  );

  CREATE VIEW s3migrate.open_uploads AS
    SELECT u.migration, o.key, u.dest_key, u.upload_id, u.size, u.part_size, u.part_count,
           COUNT(p.part_number) AS parts_done, COALESCE(SUM(p.size), 0)::bigint AS bytes_done, u.started_at
    FROM s3migrate.uploads u JOIN s3migrate.objects o ON o.id = u.object_id
    LEFT JOIN s3migrate.parts p ON p.object_id = u.object_id
    GROUP BY u.object_id, o.id ORDER BY u.migration, o.key;

  -- Cut-over, as in the SQLite file: states archived and deleted, per-row catalog changes, per-pass deltas.
  ALTER TABLE s3migrate.objects ADD COLUMN deleted_at TEXT COLLATE "C";
  ALTER TABLE s3migrate.objects ADD COLUMN change_kind TEXT COLLATE "C";
  ALTER TABLE s3migrate.objects ADD COLUMN change_pass INTEGER;
  CREATE INDEX objects_gone ON s3migrate.objects (migration, key) WHERE status = 'gone';

  CREATE TABLE s3migrate.catalog_passes (
    migration         TEXT COLLATE "C" NOT NULL REFERENCES s3migrate.migrations(name) ON DELETE CASCADE,
    pass              INTEGER NOT NULL,
    started_at        TEXT COLLATE "C",
    finished_at       TEXT COLLATE "C" NOT NULL,
    scope             TEXT COLLATE "C",
    new_objects       BIGINT NOT NULL,
    new_bytes         BIGINT NOT NULL,
    modified_objects  BIGINT NOT NULL,
    modified_bytes    BIGINT NOT NULL,
    gone_objects      BIGINT NOT NULL,
    gone_bytes        BIGINT NOT NULL,
    PRIMARY KEY (migration, pass)
  );

  CREATE OR REPLACE VIEW s3migrate.progress AS
    SELECT
      m.name                                                                              AS migration,
      COUNT(o.id) FILTER (WHERE o.status NOT IN ('gone', 'deleted'))                      AS objects_total,
      COUNT(o.id) FILTER (WHERE o.status = 'done')                                        AS objects_done,
      COALESCE(SUM(o.size) FILTER (WHERE o.status NOT IN ('gone', 'deleted')), 0)::bigint AS bytes_total,
      COALESCE(SUM(o.size) FILTER (WHERE o.status = 'done'), 0)::bigint                   AS bytes_done,
      ROUND(100.0 * COUNT(o.id) FILTER (WHERE o.status = 'done')
            / GREATEST(COUNT(o.id) FILTER (WHERE o.status NOT IN ('gone', 'deleted')), 1), 2) AS percent_done
    FROM s3migrate.migrations m LEFT JOIN s3migrate.objects o ON o.migration = m.name
    GROUP BY m.name ORDER BY m.name;

  CREATE VIEW s3migrate.archived_objects AS
    SELECT migration, key, size, storage_class, last_modified FROM s3migrate.objects
    WHERE status = 'archived' ORDER BY migration, key;
  CREATE VIEW s3migrate.deleted_objects AS
    SELECT migration, key, dest_key, size, dest_etag, deleted_at FROM s3migrate.objects
    WHERE status = 'deleted' ORDER BY migration, key;
  CREATE VIEW s3migrate.gone_objects AS
    SELECT migration, key, dest_key, size, dest_etag, error, updated_at FROM s3migrate.objects
    WHERE status = 'gone' ORDER BY migration, key;
  `,
  // 3: counters per status, evidence and verify result, kept by statement triggers in the same
  // transaction as every change of rows, so that status answers from a few rows instead of a scan. Each
  // database session adds to rows of its own (slot: its backend pid), so workers marking at once never
  // wait on one another's counter rows; readers sum the slots.
  `
  CREATE TABLE s3migrate.counters (
    migration  TEXT COLLATE "C" NOT NULL REFERENCES s3migrate.migrations(name) ON DELETE CASCADE,
    kind       TEXT COLLATE "C" NOT NULL,   -- status | evidence | verify
    value      TEXT COLLATE "C" NOT NULL,
    slot       INTEGER NOT NULL,
    objects    BIGINT NOT NULL,
    bytes      BIGINT NOT NULL,
    PRIMARY KEY (migration, kind, value, slot)
  );
  INSERT INTO s3migrate.counters (migration, kind, value, slot, objects, bytes)
    SELECT migration, kind, value, 0, SUM(n), SUM(b) FROM (
${countedRows('s3migrate.objects', 1)}
    ) AS d GROUP BY migration, kind, value;

${countingFunction('objects_counted_insert', [['new_rows', 1]])}
${countingFunction('objects_counted_delete', [['old_rows', -1]])}
${countingFunction('objects_counted_update', [['new_rows', 1], ['old_rows', -1]])}

  CREATE TRIGGER objects_counted_insert AFTER INSERT ON s3migrate.objects
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION s3migrate.objects_counted_insert();
  CREATE TRIGGER objects_counted_delete AFTER DELETE ON s3migrate.objects
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION s3migrate.objects_counted_delete();
  CREATE TRIGGER objects_counted_update AFTER UPDATE ON s3migrate.objects
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION s3migrate.objects_counted_update();

  CREATE OR REPLACE VIEW s3migrate.status_summary AS
    SELECT migration, value AS status, SUM(objects)::bigint AS objects, SUM(bytes)::bigint AS bytes
    FROM s3migrate.counters WHERE kind = 'status' GROUP BY migration, value HAVING SUM(objects) > 0
    ORDER BY migration, value;
  CREATE OR REPLACE VIEW s3migrate.evidence_summary AS
    SELECT migration, value AS evidence, SUM(objects)::bigint AS objects, SUM(bytes)::bigint AS bytes
    FROM s3migrate.counters WHERE kind = 'evidence' GROUP BY migration, value HAVING SUM(objects) > 0
    ORDER BY migration, value;
  CREATE OR REPLACE VIEW s3migrate.progress AS
    SELECT
      m.name                                                                       AS migration,
      COALESCE(SUM(c.objects) FILTER (WHERE c.value NOT IN ('gone', 'deleted')), 0)::bigint         AS objects_total,
      COALESCE(SUM(c.objects) FILTER (WHERE c.value = 'done'), 0)::bigint          AS objects_done,
      COALESCE(SUM(c.bytes) FILTER (WHERE c.value NOT IN ('gone', 'deleted')), 0)::bigint           AS bytes_total,
      COALESCE(SUM(c.bytes) FILTER (WHERE c.value = 'done'), 0)::bigint            AS bytes_done,
      ROUND(100.0 * COALESCE(SUM(c.objects) FILTER (WHERE c.value = 'done'), 0)
            / GREATEST(COALESCE(SUM(c.objects) FILTER (WHERE c.value NOT IN ('gone', 'deleted')), 0), 1), 2) AS percent_done
    FROM s3migrate.migrations m LEFT JOIN s3migrate.counters c ON c.migration = m.name AND c.kind = 'status'
    GROUP BY m.name ORDER BY m.name;
  -- Rows not gone or deleted per verify result; those without one are the totals less the others.
  CREATE VIEW s3migrate.verify_summary AS
    SELECT migration, result, objects, bytes FROM (
      SELECT migration, value AS result, SUM(objects)::bigint AS objects, SUM(bytes)::bigint AS bytes
      FROM s3migrate.counters WHERE kind = 'verify' GROUP BY migration, value
      UNION ALL
      SELECT p.migration, 'not-verified', (p.objects_total - COALESCE(SUM(c.objects), 0))::bigint,
             (p.bytes_total - COALESCE(SUM(c.bytes), 0))::bigint
      FROM s3migrate.progress p LEFT JOIN s3migrate.counters c ON c.migration = p.migration AND c.kind = 'verify'
      GROUP BY p.migration, p.objects_total, p.bytes_total
    ) AS v WHERE objects > 0 ORDER BY migration, result;
  -- The few rows that carry an error (status lists the latest), found without a scan.
  CREATE INDEX objects_with_error ON s3migrate.objects (migration, updated_at) WHERE error IS NOT NULL;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * One partial index per --sort order over pending rows, the migration first (every claim names it) and
 * the key as tie-breaker. Built by the first copy that needs it, as in the SQLite file.
 */
export const SORT_INDEXES = {
  key: { name: 'objects_pending_by_key', columns: '(migration, key)' },
  oldest: { name: 'objects_pending_by_modified', columns: '(migration, last_modified, key)' },
  newest: { name: 'objects_pending_by_modified', columns: '(migration, last_modified, key)' },
  smallest: { name: 'objects_pending_by_size', columns: '(migration, size, key)' },
  largest: { name: 'objects_pending_by_size', columns: '(migration, size, key)' },
} as const;
