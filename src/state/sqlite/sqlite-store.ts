import os from 'node:os';
import type Database from 'better-sqlite3';
import { S3MigrateError } from '../../errors.js';
import { catalogSourceMeta, catalogSourceOf, catalogSourceSummary, sameCatalogSource } from '../catalog-meta.js';
import { inventoryGoneBefore, LeaseLostError, StateBusyError, StateStoreError, type OutcomeCounts, type StateStore } from '../store.js';
import { deadLocalWorker, newWorkerId, processAlive } from '../worker-ids.js';
import { REGEX_FLAGS, type ObjectFilter } from '../../filter/object-filter.js';
import { filterCondition, SqlParams } from '../filter-sql.js';
import { passDelta, rateOf, type PassRow } from '../shared-rows.js';
import {
  ARCHIVE_CLASSES,
  type CatalogPassDelta,
  type DeletionCandidate,
  type MeasuredRate,
  type PlanGroupRow,
} from '../types.js';
import type {
  CatalogPart,
  CatalogProgress,
  CatalogSource,
  PageResume,
  CopyResult,
  EndpointLocation,
  ListedObject,
  ObjectRow,
  OpenUpload,
  RecordedPart,
  RecordedUpload,
  SortOrder,
  StateSummary,
  StatusCount,
  VerifyFinding,
  VerifyRow,
} from '../types.js';
import { GroupCommit } from './group-commit.js';
import { NewRows, type NewRow } from './new-rows.js';
import { openDatabase, type OpenOptions } from './open-database.js';
import { bareEtagSql, destEtagSql, destKeySql, isoSql, SORT_INDEXES, storageClassSql } from './schema.js';
import { decodeEtag, encodeEtag, encodeStorageClass, fromMs, nowMs, toMs } from './encoding.js';

const now = (): string => new Date().toISOString();

/** The page cache of a cataloging connection, in KiB as PRAGMA cache_size takes it (negative: KiB, not pages). */
const CATALOG_CACHE_KIB = -2000;

/** ORDER BY per --sort order, each served by its partial index over pending rows (key breaks ties). */
const ORDER_BY: Record<SortOrder, string> = {
  key: 'key',
  oldest: 'last_modified, key',
  newest: 'last_modified DESC, key DESC',
  smallest: 'size, key',
  largest: 'size DESC, key DESC',
};

const ROW_COLUMNS = 'id, key, size, etag, last_modified AS lastModified, attempts';

/** An object row as stored (see ./encoding.ts) as the engine sees it: the ETag's text, an ISO-8601 time. */
function rowOf(stored: { id: number; key: string; size: number; etag: Buffer | string | null; lastModified: number | string; attempts: number }): ObjectRow {
  return { ...stored, etag: decodeEtag(stored.etag), lastModified: fromMs(stored.lastModified)! };
}
const rowsOf = (stored: unknown[]): ObjectRow[] => (stored as Array<Parameters<typeof rowOf>[0]>).map(rowOf);

/** dest_etag as stored for a row: empty when it is the row's ETag without quotes. */
const STORED_DEST_ETAG = `CASE WHEN @destEtag IS NOT NULL AND @destEtag = ${bareEtagSql('etag')} THEN X'' ELSE @destEtag END`;
const UPLOAD_COLUMNS =
  'object_id AS objectId, dest_key AS destKey, upload_id AS uploadId, source_etag AS sourceEtag, size AS size, ' +
  'part_size AS partSize, part_count AS partCount, started_at AS startedAt';

interface LockOwner {
  pid: number;
  host: string;
  command: string;
  since: string;
}



/** Keys (or ids) per statement of rowsByKeys and of verify's plain 'ok' marks: a page of 1,000 in two (statements are cached per size). */
const KEYS_PER_LOOKUP = 500;

/** `?, ?, ...`: n placeholders. */
function placeholders(n: number): string {
  return Array(n).fill('?').join(', ');
}

/**
 * The state store on one SQLite file (better-sqlite3, synchronous underneath). Every method is one short
 * transaction. Any SQLite failure (disk full, busy, I/O) comes out as a StateStoreError naming the file.
 */
export class SqliteStore implements StateStore {
  private lockHeld = false;
  /** Set by joinAsWorker: this process's worker id and lease length. */
  private worker: { id: string; leaseMs: number } | undefined;
  private readonly statements = new Map<string, Database.Statement>();
  /** The catalog's bulk insert of new rows (made on the first page). */
  private newRows: NewRows | undefined;
  /** Row marks, grouped into one transaction per few milliseconds. */
  private readonly marks: GroupCommit;

  private constructor(
    readonly location: string,
    private readonly db: Database.Database,
  ) {
    this.marks = new GroupCommit(db);
    // `key REGEXP ?` (filters: --include, --exclude), with JavaScript's regular expressions; the filter's
    // patterns are written to mean the same here and in PostgreSQL (see src/filter/glob.ts).
    const compiled = new Map<string, RegExp>();
    db.function('regexp', { deterministic: true }, (pattern: unknown, value: unknown) => {
      if (typeof pattern !== 'string' || typeof value !== 'string') return 0;
      let regex = compiled.get(pattern);
      if (!regex) {
        regex = new RegExp(pattern, REGEX_FLAGS);
        compiled.set(pattern, regex);
      }
      return regex.test(value) ? 1 : 0;
    });
  }

  /** The filter as a condition with its values (for `?` placeholders, in order). */
  private where(filter: ObjectFilter | undefined): { sql: string; values: unknown[] } {
    const params = new SqlParams('sqlite');
    const sql = filterCondition(filter, params, 'sqlite', 'key', toMs);
    return { sql, values: params.values };
  }

  static open(path: string, options: OpenOptions): SqliteStore {
    return new SqliteStore(path, openDatabase(path, options));
  }

  /** The file path (same as location). */
  get path(): string {
    return this.location;
  }

  /** Runs one unit of work; a database failure becomes a StateStoreError, our own errors pass through. */
  private guard<T>(work: () => T): T {
    try {
      return work();
    } catch (error) {
      throw this.stateError(error);
    }
  }

  private stateError(error: unknown): unknown {
    if (error instanceof S3MigrateError) return error;
    const code = (error as { code?: string }).code;
    return new StateStoreError(this.location, (error as Error).message, typeof code === 'string' ? code : undefined);
  }

  /**
   * A row mark, committed with the others queued within a few milliseconds (see GroupCommit). `work`
   * returns false when its fenced write applied nothing: this worker lost the row's lease.
   */
  private async mark(id: number, work: () => boolean | void): Promise<void> {
    let applied: boolean;
    try {
      applied = await this.marks.run(work);
    } catch (error) {
      throw this.stateError(error);
    }
    if (!applied) throw new LeaseLostError(id);
  }

  /**
   * The fence of a row mark: as a worker, only rows in flight under this worker's lease; outside a copy
   * (no worker joined), any row.
   */
  private get fence(): string {
    return this.worker ? "AND status = 'in_flight' AND lease_owner = @owner" : '';
  }

  private fenced(statement: Database.Statement, params: Record<string, unknown>): boolean {
    return statement.run({ ...params, owner: this.worker?.id ?? null }).changes > 0;
  }

  private stmt(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  private getMeta(key: string): string | undefined {
    const row = this.stmt('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return row?.value;
  }

  private setMeta(key: string, value: string): void {
    this.stmt('INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(
      key,
      value,
    );
  }

  private deleteMeta(key: string): void {
    this.stmt('DELETE FROM meta WHERE key = ?').run(key);
  }

  /**
   * Releases our lock and closes the file; safe to call twice, and never throws: it runs on the way out
   * of failed commands too, whose own error is the one to report (a lock left behind by a dead process
   * is taken over by the next command).
   */
  async close(): Promise<void> {
    if (!this.db.open) return;
    try {
      this.marks.flush();
      if (this.lockHeld) this.releaseLockNow();
    } catch {
      // The state file cannot be written (disk full...): the error that got us here says so.
    } finally {
      this.db.close();
    }
  }

  // ---- identity --------------------------------------------------------------------------

  async getSource(): Promise<EndpointLocation | undefined> {
    return this.guard(() => this.getLocation('source'));
  }

  async setSource(source: EndpointLocation): Promise<void> {
    this.guard(() =>
      this.db.transaction(() => {
        this.setLocation('source', source);
        this.setMeta('created_at', now());
      })(),
    );
  }

  async getDestination(): Promise<EndpointLocation | undefined> {
    return this.guard(() => this.getLocation('dest'));
  }

  async setDestination(dest: EndpointLocation): Promise<void> {
    this.guard(() => this.db.transaction(() => this.setLocation('dest', dest))());
  }

  /** A location kept in meta as `<side>_endpoint`, `<side>_bucket`, `<side>_prefix`. */
  private getLocation(side: 'source' | 'dest'): EndpointLocation | undefined {
    const bucket = this.getMeta(`${side}_bucket`);
    if (bucket === undefined) return undefined;
    return { endpoint: this.getMeta(`${side}_endpoint`) ?? '', bucket, prefix: this.getMeta(`${side}_prefix`) ?? '' };
  }

  private setLocation(side: 'source' | 'dest', location: EndpointLocation): void {
    this.setMeta(`${side}_endpoint`, location.endpoint);
    this.setMeta(`${side}_bucket`, location.bucket);
    this.setMeta(`${side}_prefix`, location.prefix);
  }

  // ---- the lock that keeps two writers (copy/catalog/verify) off one state file ----------

  /** Takes the state file for this process, or explains who holds it. A dead holder's lock is taken over. */
  async acquireLock(command: string): Promise<void> {
    const host = os.hostname();
    this.guard(() =>
      this.db
        .transaction(() => {
          const held = this.getMeta('lock');
          if (held) {
            const owner = JSON.parse(held) as LockOwner;
            const stale = owner.host === host && (owner.pid === process.pid || !processAlive(owner.pid));
            if (!stale) {
              throw new StateLockedError(this.location, owner);
            }
            // The holder died (kill -9, reboot): its run never finished.
            this.stmt("UPDATE runs SET outcome = 'abandoned' WHERE outcome = 'running'").run();
          }
          // Copy workers at work hold leases: this command needs the state alone.
          this.expireDeadLocalWorkers();
          const leased = this.stmt(
            "SELECT COUNT(*) AS rows, COUNT(DISTINCT lease_owner) AS workers FROM objects WHERE status = 'in_flight' AND lease_expires_at > ?",
          ).get(Date.now()) as { rows: number; workers: number };
          if (leased.rows > 0) throw new StateBusyError(this.location, command, leased.workers);
          const owner: LockOwner = { pid: process.pid, host, command, since: now() };
          this.setMeta('lock', JSON.stringify(owner));
        })
        .immediate(),
    );
    this.lockHeld = true;
  }

  async releaseLock(): Promise<void> {
    this.guard(() => this.releaseLockNow());
  }

  private releaseLockNow(): void {
    const held = this.getMeta('lock');
    if (held && (JSON.parse(held) as LockOwner).pid === process.pid) this.deleteMeta('lock');
    this.lockHeld = false;
  }

  // ---- runs ------------------------------------------------------------------------------

  async startRun(command: string, args: string): Promise<number> {
    return this.guard(() => {
      const result = this.stmt('INSERT INTO runs(command, arguments, started_at) VALUES (?, ?, ?)').run(
        command,
        args,
        now(),
      );
      return Number(result.lastInsertRowid);
    });
  }

  async finishRun(
    id: number,
    outcome: 'completed' | 'interrupted' | 'failed',
    counts: { objectsDone?: number; objectsFailed?: number; bytesDone?: number; keysListed?: number; error?: string },
  ): Promise<void> {
    this.guard(() =>
      this.stmt(
        `UPDATE runs SET finished_at = ?, outcome = ?, objects_done = ?, objects_failed = ?, bytes_done = ?,
           keys_listed = ?, error = ? WHERE id = ?`,
      ).run(
        now(),
        outcome,
        counts.objectsDone ?? 0,
        counts.objectsFailed ?? 0,
        counts.bytesDone ?? 0,
        counts.keysListed ?? 0,
        counts.error ?? null,
        id,
      ),
    );
  }

  // ---- catalog ---------------------------------------------------------------------------

  /** Continues the interrupted pass of the same source, or starts a new one (which will reconcile every row). */
  async beginCatalogPass(source: CatalogSource): Promise<CatalogProgress> {
    return this.guard(() =>
      this.db
        .transaction((): CatalogProgress => {
          const pass = Number(this.getMeta('catalog_pass') ?? '0');
          let abandoned: CatalogSource | undefined;
          if (pass > 0 && this.getMeta('catalog_state') === 'listing') {
            const current = catalogSourceOf((key) => this.getMeta(key));
            if (sameCatalogSource(current, source)) {
              return {
                pass,
                resumed: true,
                source: current,
                parts: this.partsOf(pass),
                nextFile: Number(this.getMeta('inventory_next_file') ?? '0'),
              };
            }
            abandoned = current;
          }
          const next = pass + 1;
          this.stmt('DELETE FROM catalog_parts').run();
          this.setMeta('catalog_pass', String(next));
          this.setMeta('catalog_state', 'listing');
          this.setMeta('catalog_started_at', now());
          for (const [key, value] of catalogSourceMeta(source)) {
            if (value === undefined) this.deleteMeta(key);
            else this.setMeta(key, value);
          }
          return { pass: next, resumed: false, source, parts: [], nextFile: 0, ...(abandoned ? { abandoned } : {}) };
        })
        .immediate(),
    );
  }

  async catalogPass(): Promise<{ pass: number; complete: boolean; source: CatalogSource; nextFile: number } | undefined> {
    return this.guard(() => {
      const pass = Number(this.getMeta('catalog_pass') ?? '0');
      if (pass === 0) return undefined;
      return {
        pass,
        complete: this.getMeta('catalog_state') === 'complete',
        source: catalogSourceOf((key) => this.getMeta(key)),
        nextFile: Number(this.getMeta('inventory_next_file') ?? '0'),
      };
    });
  }

  private partsOf(pass: number): CatalogPart[] {
    const rows = this.stmt(
      `SELECT part, start_after AS startAfter, end_key AS endKey, resume_after AS resumeAfter, done, keys_listed AS keysListed
       FROM catalog_parts WHERE pass = ? ORDER BY part`,
    ).all(pass) as Array<Omit<CatalogPart, 'done'> & { done: number }>;
    return rows.map((row) => ({ ...row, done: row.done === 1 }));
  }

  async planCatalogParts(pass: number, ranges: ReadonlyArray<{ startAfter: string; endKey: string | null }>): Promise<CatalogPart[]> {
    return this.guard(() =>
      this.db
        .transaction(() => {
          if (Number(this.getMeta('catalog_pass') ?? '0') !== pass) throw new Error(`catalog pass ${pass} is not the current one`);
          const existing = this.partsOf(pass);
          if (existing.length > 0) return existing;
          const insert = this.stmt(
            'INSERT INTO catalog_parts (pass, part, start_after, end_key, resume_after) VALUES (?, ?, ?, ?, ?)',
          );
          ranges.forEach((range, i) => insert.run(pass, i + 1, range.startAfter, range.endKey, range.startAfter));
          return this.partsOf(pass);
        })
        .immediate(),
    );
  }

  async splitCatalogPart(pass: number, part: number, at: string): Promise<CatalogPart | undefined> {
    return this.guard(() =>
      this.db
        .transaction(() => {
          // Byte order: SQLite compares TEXT with memcmp of its UTF-8, as S3 orders keys.
          const row = this.stmt(
            `SELECT end_key AS endKey FROM catalog_parts
             WHERE pass = @pass AND part = @part AND done = 0 AND resume_after < @at AND (end_key IS NULL OR @at < end_key)`,
          ).get({ pass, part, at }) as { endKey: string | null } | undefined;
          if (row === undefined) return undefined;
          this.stmt('UPDATE catalog_parts SET end_key = ? WHERE pass = ? AND part = ?').run(at, pass, part);
          const next = (this.stmt('SELECT MAX(part) + 1 FROM catalog_parts WHERE pass = ?').pluck().get(pass) as number) ?? 1;
          this.stmt('INSERT INTO catalog_parts (pass, part, start_after, end_key, resume_after) VALUES (?, ?, ?, ?, ?)').run(
            pass,
            next,
            at,
            row.endKey,
            at,
          );
          return this.partsOf(pass).find((row) => row.part === next);
        })
        .immediate(),
    );
  }

  /**
   * This connection catalogs: the bulk insert of new rows, and a page cache of SQLite's own default size
   * (about 2 MiB) rather than better-sqlite3's 16 MiB. Ingest writes near the right edge of the table and
   * its key index, and a re-listing reads in key order: the 16 MiB held nothing a catalog reads again, and
   * were 18 MiB of its peak RSS (bench/catalog-ingest.js at 1M rows: 123 -> 105 MiB, same CPU per row).
   */
  private startIngest(): NewRows {
    this.db.pragma(`cache_size = ${CATALOG_CACHE_KIB}`);
    return new NewRows(this.db);
  }

  /**
   * Stores one page and where it leaves its pass in ONE transaction, so a crash leaves either the whole
   * page with its resume point or neither. Changed keys go back to pending; unchanged rows keep their status.
   */
  async ingestPage(pass: number, objects: readonly ListedObject[], resume: PageResume, seen: readonly string[] = []): Promise<void> {
    this.guard(() => {
      // Unchanged rows (the bulk of a re-catalog) only get their pass stamp: no indexed column is written.
      // Rows gone or changed are rewritten whole by the upsert (a changed row is reconciled here).
      const touch = this.stmt(
        `UPDATE objects SET catalog_pass = @pass
         WHERE key = @key AND size = @size AND etag IS @etag AND last_modified = @lastModified
           AND status NOT IN ('gone', 'changed', 'deleted')`,
      );
      // Keys a filtered pass listed outside its size or date bounds: seen (not gone), nothing recorded.
      const see = this.stmt('UPDATE objects SET catalog_pass = @pass WHERE key = @key');
      // New keys are inserted (and counted: no trigger counts an insert, see migration 4); changed ones
      // (size, ETag, LastModified, or back from gone/changed) are rewritten as pending.
      const insert = this.stmt(
        `INSERT INTO objects (key, size, etag, last_modified, status, catalog_pass, change_pass, change_kind, updated_at,
           storage_class)
         VALUES (@key, @size, @etag, @lastModified, 'pending', @pass, @pass, 'new', @now, @storageClass)
         ON CONFLICT(key) DO NOTHING`,
      );
      const rewrite = this.stmt(
        `UPDATE objects SET
           change_kind = CASE WHEN status IN ('gone', 'deleted') THEN 'new' ELSE 'modified' END,
           change_pass = @pass, deleted_at = NULL,
           status = 'pending', attempts = 0, error = NULL, evidence = NULL, verify_result = NULL,
           -- a dest_etag kept as "the source's ETag" keeps its value when the source's ETag changes
           dest_etag = CASE WHEN dest_etag = X'' AND etag IS NOT @etag THEN ${destEtagSql('dest_etag', 'etag')} ELSE dest_etag END,
           size = @size, etag = @etag, last_modified = @lastModified, storage_class = @storageClass,
           catalog_pass = @pass, updated_at = @now
         WHERE key = @key`,
      );
      // An inventory row never replaces what the state knows to be newer: a later version (listed after the
      // report was taken), or a gone verdict reached after it. Such rows are only stamped as seen.
      const inventory = 'file' in resume;
      const newer = this.stmt(
        `UPDATE objects SET catalog_pass = @pass
         WHERE key = @key AND (last_modified > @lastModified OR (status = 'gone' AND updated_at >= @createdAt))`,
      );
      const createdAt = inventory ? toMs(this.getMeta('inventory_created_at') ?? '') : '';
      const stamp = nowMs();
      const upsert = (row: NewRow & { pass: number; now: number }): void => {
        if (insert.run(row).changes === 1) {
          newRows.counted(row.size);
          return;
        }
        newRows.countAdded(); // before the update trigger counts the rewritten row
        rewrite.run(row);
      };
      const store = (stored: NewRow): void => {
        // Spelled out, not spread: better-sqlite3 binds named parameters from a spread copy ~1 us a row slower.
        const row = {
          key: stored.key,
          size: stored.size,
          etag: stored.etag,
          lastModified: stored.lastModified,
          storageClass: stored.storageClass,
          pass,
          now: stamp,
        };
        if (inventory) {
          if (newer.run({ key: row.key, lastModified: row.lastModified, createdAt, pass }).changes > 0) return;
          if (touch.run(row).changes === 0) upsert(row);
          return;
        }
        // A first listing pass only ever meets new keys (each part's resume point commits with its pages).
        if (pass === 1 || touch.run(row).changes === 0) upsert(row);
      };
      // Keys that cannot be stored yet (a first pass, keys new at a re-listing's end) are inserted in bulk.
      const newRows = (this.newRows ??= this.startIngest());
      this.db.transaction(() => {
        newRows.begin({ firstKey: objects[0]?.key, pass, now: stamp, upsert: store });
        for (const object of objects) {
          const row: NewRow = {
            key: object.key,
            size: object.size,
            etag: encodeEtag(object.etag),
            lastModified: toMs(object.lastModified),
            storageClass: encodeStorageClass(object.storageClass),
          };
          if (!newRows.add(row)) store(row);
        }
        newRows.end();
        for (const key of seen) see.run({ pass, key });
        if ('part' in resume) {
          const moved = this.stmt(
            `UPDATE catalog_parts SET resume_after = ?, done = ?, keys_listed = keys_listed + ? WHERE pass = ? AND part = ?`,
          ).run(resume.resumeAfter, resume.done ? 1 : 0, objects.length + seen.length, pass, resume.part);
          if (moved.changes !== 1) throw new Error(`catalog pass ${pass} has no part ${resume.part}`);
        } else if (resume.done) {
          this.setMeta('inventory_next_file', String(resume.file + 1));
        }
      })();
    });
  }

  /**
   * Ends a complete pass: rows it did not see (within its scope) are gone from the source (kept, marked
   * 'gone'); what the pass found is recorded in catalog_passes.
   */
  async finishCatalogPass(pass: number, scope?: ObjectFilter, scopeText?: string): Promise<{ gone: number }> {
    return this.guard(() =>
      this.db.transaction(() => {
        const source = catalogSourceOf((key) => this.getMeta(key));
        // An inventory pass: only rows the report must have seen (see INVENTORY_GONE_MARGIN_MS).
        const before = source.kind === 'inventory' ? toMs(inventoryGoneBefore(source.createdAt)) : null;
        const where = this.where(scope);
        // The first pass has no earlier one whose rows could be gone: no scan of every row to find none.
        const result =
          pass === 1
            ? { changes: 0 }
            : this.stmt(
                `UPDATE objects SET status = 'gone', updated_at = ?, change_kind = 'gone', change_pass = ?
                 WHERE catalog_pass < ? AND status NOT IN ('gone', 'deleted') AND (? IS NULL OR last_modified < ?) AND ${where.sql}`,
              ).run(nowMs(), pass, pass, before, before, ...where.values);
        this.stmt(
          `INSERT OR REPLACE INTO catalog_passes (pass, started_at, finished_at, scope, new_objects, new_bytes,
             modified_objects, modified_bytes, gone_objects, gone_bytes)
           SELECT ?, ?, ?, ?,
             COUNT(*) FILTER (WHERE change_kind = 'new'), COALESCE(SUM(size) FILTER (WHERE change_kind = 'new'), 0),
             COUNT(*) FILTER (WHERE change_kind = 'modified'), COALESCE(SUM(size) FILTER (WHERE change_kind = 'modified'), 0),
             COUNT(*) FILTER (WHERE change_kind = 'gone'), COALESCE(SUM(size) FILTER (WHERE change_kind = 'gone'), 0)
           FROM objects WHERE change_pass = ?`,
        ).run(pass, this.getMeta('catalog_started_at') ?? null, now(), scopeText ?? null, pass);
        this.setMeta('catalog_state', 'complete');
        this.setMeta('catalog_finished_at', now());
        return { gone: result.changes };
      })(),
    );
  }

  async lastCatalogPass(): Promise<CatalogPassDelta | undefined> {
    return this.guard(() => this.lastPass());
  }

  private lastPass(): CatalogPassDelta | undefined {
    const row = this.stmt('SELECT * FROM catalog_passes ORDER BY pass DESC LIMIT 1').get() as PassRow | undefined;
    return row ? passDelta(row) : undefined;
  }

  async catalogComplete(): Promise<boolean> {
    return this.guard(() => this.getMeta('catalog_state') === 'complete');
  }

  async countListed(): Promise<number> {
    return this.guard(
      () => (this.stmt('SELECT objects_total AS n FROM progress').get() as { n: number }).n,
    );
  }

  // ---- copy workers: claims with leases ----------------------------------------------------

  async joinAsWorker(leaseMs: number): Promise<string> {
    const id = newWorkerId();
    this.guard(() =>
      this.db
        .transaction(() => {
          const held = this.getMeta('lock');
          if (held) {
            const owner = JSON.parse(held) as LockOwner;
            const gone = owner.host === os.hostname() && !processAlive(owner.pid);
            if (!gone) throw new StateLockedError(this.location, owner);
          }
        })
        .immediate(),
    );
    this.worker = { id, leaseMs };
    return id;
  }

  async renewLeases(): Promise<number> {
    const worker = this.requireWorker();
    return this.guard(
      () =>
        this.stmt("UPDATE objects SET lease_expires_at = ? WHERE status = 'in_flight' AND lease_owner = ?").run(
          Date.now() + worker.leaseMs,
          worker.id,
        ).changes,
    );
  }

  async holdsLease(id: number, marginMs: number): Promise<boolean> {
    const worker = this.requireWorker();
    return this.guard(() => {
      this.marks.flush();
      const row = this.stmt(
        "SELECT 1 FROM objects WHERE id = ? AND status = 'in_flight' AND lease_owner = ? AND lease_expires_at > ?",
      ).get(id, worker.id, Date.now() + marginMs);
      return row !== undefined;
    });
  }

  async liveLeases(): Promise<number> {
    return this.guard(
      () =>
        this.db.transaction(() => {
          this.expireDeadLocalWorkers();
          return (
          this.stmt(
            "SELECT COUNT(*) AS n FROM objects WHERE status = 'in_flight' AND lease_expires_at > ? AND lease_owner IS NOT ?",
          ).get(Date.now(), this.worker?.id ?? null) as { n: number }
          ).n;
        })(),
    );
  }

  /**
   * Leases held by workers of this host whose process is gone (kill -9, a crash) expire at once: nothing
   * needs to wait out the lease of a worker that cannot come back. Workers elsewhere (a shared PostgreSQL
   * state) keep theirs until it runs out.
   */
  private expireDeadLocalWorkers(): void {
    const owners = this.stmt(
      "SELECT DISTINCT lease_owner AS owner FROM objects WHERE status = 'in_flight' AND lease_expires_at > ? AND lease_owner IS NOT NULL",
    ).all(Date.now()) as Array<{ owner: string }>;
    const expire = this.stmt("UPDATE objects SET lease_expires_at = 0 WHERE status = 'in_flight' AND lease_owner = ?");
    for (const { owner } of owners) {
      if (deadLocalWorker(owner)) expire.run(owner);
    }
  }

  private requireWorker(): { id: string; leaseMs: number } {
    if (!this.worker) throw new Error('joinAsWorker() first');
    return this.worker;
  }

  async prepareCopy(order: SortOrder, filter?: ObjectFilter): Promise<void> {
    this.guard(() => {
      // Builds the index that serves this --sort order, if no earlier copy did (one sort over the catalog).
      this.db.exec(SORT_INDEXES[order]);
      const where = this.where(filter);
      const stamp = nowMs();
      this.db.transaction(() => {
        // Failed rows get another chance on every new copy run; unproven rows are copied again.
        this.stmt(
          `UPDATE objects SET status = 'pending', updated_at = ? WHERE status IN ('failed', 'unproven') AND ${where.sql}`,
        ).run(stamp, ...where.values);
        // Archived objects cannot be read before a restore: skipped, in a state of their own.
        this.stmt(
          `UPDATE objects SET status = 'archived', updated_at = ? WHERE status = 'pending'
             AND storage_class IN (${placeholders(ARCHIVE_CLASSES.length)}) AND ${where.sql}`,
        ).run(stamp, ...ARCHIVE_CLASSES, ...where.values);
      })();
    });
  }

  async inFlightRows(): Promise<ObjectRow[]> {
    return this.guard(
      () => rowsOf(this.stmt(`SELECT ${ROW_COLUMNS} FROM objects WHERE status = 'in_flight' ORDER BY key`).all()),
    );
  }

  async takeExpired(limit: number): Promise<ObjectRow[]> {
    const worker = this.requireWorker();
    return this.guard(() =>
      this.db
        .transaction(() => {
          this.expireDeadLocalWorkers();
          const stamp = Date.now();
          const rows = rowsOf(
            this.stmt(
              `SELECT ${ROW_COLUMNS} FROM objects
               WHERE status = 'in_flight' AND (lease_expires_at IS NULL OR lease_expires_at <= ?) ORDER BY key LIMIT ?`,
            ).all(stamp, limit),
          );
          const take = this.stmt('UPDATE objects SET lease_owner = ?, lease_expires_at = ? WHERE id = ?');
          for (const row of rows) take.run(worker.id, stamp + worker.leaseMs, row.id);
          return rows;
        })
        .immediate(),
    );
  }

  async claimPending(order: SortOrder, limit: number, filter?: ObjectFilter): Promise<ObjectRow[]> {
    const where = this.where(filter);
    return this.guard(() =>
      this.db
        .transaction(() => {
          const rows = rowsOf(
            this.stmt(
              `SELECT ${ROW_COLUMNS} FROM objects WHERE status = 'pending' AND ${where.sql} ORDER BY ${ORDER_BY[order]} LIMIT ?`,
            ).all(...where.values, limit),
          );
          const claim = this.stmt(
            `UPDATE objects SET status = 'in_flight', attempts = attempts + 1, started_at = ?, updated_at = ?,
               lease_owner = ?, lease_expires_at = ? WHERE id = ?`,
          );
          const stamp = nowMs();
          const expires = this.worker ? Date.now() + this.worker.leaseMs : null;
          for (const row of rows) {
            claim.run(stamp, stamp, this.worker?.id ?? null, expires, row.id);
            row.attempts += 1;
          }
          return rows;
        })
        .immediate(),
    );
  }

  async releaseClaims(ids: readonly number[]): Promise<void> {
    const stamp = nowMs();
    const release = this.stmt(
      `UPDATE objects SET status = 'pending', attempts = MAX(attempts - 1, 0), updated_at = @stamp,
         lease_owner = NULL, lease_expires_at = NULL WHERE id = @id AND status = 'in_flight' ${this.worker ? 'AND lease_owner = @owner' : ''}`,
    );
    // Rows lost to another worker meanwhile are simply not released: they are that worker's.
    await this.marks.run(() => {
      for (const id of ids) this.fenced(release, { stamp, id });
    }).catch((error: unknown) => {
      throw this.stateError(error);
    });
  }

  async markDone(id: number, result: CopyResult): Promise<void> {
    const stamp = nowMs();
    const statement = this.stmt(
      `UPDATE objects SET status = 'done', error = NULL, copied_at = @stamp,
         dest_key = CASE WHEN @destKey = key THEN X'' ELSE @destKey END, dest_etag = ${STORED_DEST_ETAG},
         evidence = @evidence, copy_method = @method, verified_at = @stamp, verify_result = NULL, updated_at = @stamp,
         lease_owner = NULL, lease_expires_at = NULL
       WHERE id = @id ${this.fence}`,
    );
    await this.mark(id, () => {
      const params = { stamp, destKey: result.destKey, destEtag: result.destEtag ?? null, evidence: result.evidence, method: result.method ?? 'stream', id };
      if (!this.fenced(statement, params)) return false;
      // The completed upload's record goes in the same transaction as the done mark.
      if (result.completedUpload) this.deleteUpload(id);
      return true;
    });
  }

  async markFailed(id: number, error: string): Promise<void> {
    const statement = this.stmt(
      `UPDATE objects SET status = 'failed', error = @error, updated_at = @stamp, lease_owner = NULL, lease_expires_at = NULL
       WHERE id = @id ${this.fence}`,
    );
    const stamp = nowMs();
    await this.mark(id, () => this.fenced(statement, { error, stamp, id }));
  }

  async markChanged(id: number, reason: string): Promise<void> {
    const statement = this.stmt(
      `UPDATE objects SET status = 'changed', error = @error, updated_at = @stamp, lease_owner = NULL, lease_expires_at = NULL
       WHERE id = @id ${this.fence}`,
    );
    const stamp = nowMs();
    await this.mark(id, () => this.fenced(statement, { error: reason, stamp, id }));
  }

  async markGone(id: number): Promise<void> {
    const statement = this.stmt(
      `UPDATE objects SET status = 'gone', error = NULL, updated_at = @stamp, lease_owner = NULL, lease_expires_at = NULL
       WHERE id = @id ${this.fence}`,
    );
    const stamp = nowMs();
    await this.mark(id, () => this.fenced(statement, { stamp, id }));
  }

  async markPending(id: number, refundAttempt: boolean): Promise<void> {
    const statement = this.stmt(
      `UPDATE objects SET status = 'pending', attempts = MAX(attempts - @refund, 0), updated_at = @stamp,
         lease_owner = NULL, lease_expires_at = NULL
       WHERE id = @id ${this.fence}`,
    );
    const stamp = nowMs();
    await this.mark(id, () => this.fenced(statement, { refund: refundAttempt ? 1 : 0, stamp, id }));
  }

  async recordRetry(id: number, error: string): Promise<void> {
    const statement = this.stmt(`UPDATE objects SET error = @error, attempts = attempts + 1, updated_at = @stamp WHERE id = @id ${this.fence}`);
    const stamp = nowMs();
    await this.mark(id, () => this.fenced(statement, { error, stamp, id }));
  }

  /** True when this worker may write a row's upload record: it holds the row (or no worker is joined). */
  private holdsRow(id: number): boolean {
    if (!this.worker) return true;
    return (
      this.stmt("SELECT 1 FROM objects WHERE id = ? AND status = 'in_flight' AND lease_owner = ?").get(id, this.worker.id) !==
      undefined
    );
  }

  // ---- multipart uploads kept across runs ------------------------------------------------

  async recordUpload(upload: Omit<RecordedUpload, 'parts' | 'startedAt'>): Promise<void> {
    const insert = this.stmt(
      `INSERT INTO uploads (object_id, dest_key, upload_id, source_etag, size, part_size, part_count, started_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const stamp = now();
    await this.mark(upload.objectId, () => {
      if (!this.holdsRow(upload.objectId)) return false;
      this.deleteUpload(upload.objectId);
      insert.run(upload.objectId, upload.destKey, upload.uploadId, upload.sourceEtag, upload.size, upload.partSize, upload.partCount, stamp);
      return true;
    });
  }

  async recordPart(objectId: number, part: RecordedPart): Promise<void> {
    const insert = this.stmt(
      `INSERT INTO parts (object_id, part_number, size, etag, md5) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (object_id, part_number) DO UPDATE SET size = excluded.size, etag = excluded.etag, md5 = excluded.md5`,
    );
    await this.mark(objectId, () => {
      if (!this.holdsRow(objectId)) return false;
      insert.run(objectId, part.partNumber, part.size, part.etag, part.md5);
      return true;
    });
  }

  async uploadOf(objectId: number): Promise<RecordedUpload | undefined> {
    return this.guard(() => {
      this.marks.flush();
      const upload = this.stmt(`SELECT ${UPLOAD_COLUMNS} FROM uploads WHERE object_id = ?`).get(objectId) as
        | Omit<RecordedUpload, 'parts'>
        | undefined;
      if (!upload) return undefined;
      const parts = this.stmt(
        'SELECT part_number AS partNumber, size, etag, md5 FROM parts WHERE object_id = ? ORDER BY part_number',
      ).all(objectId) as RecordedPart[];
      return { ...upload, parts };
    });
  }

  async forgetUpload(objectId: number): Promise<void> {
    // A row another worker holds keeps its upload; rows nobody holds (a stop, abort-uploads) may lose theirs.
    const heldByOther = this.stmt(
      "SELECT 1 FROM objects WHERE id = ? AND status = 'in_flight' AND lease_owner IS NOT NULL AND lease_owner IS NOT ? AND lease_expires_at > ?",
    );
    await this.mark(objectId, () => {
      if (heldByOther.get(objectId, this.worker?.id ?? null, Date.now()) !== undefined) return false;
      this.deleteUpload(objectId);
      return true;
    });
  }

  async recordedUploads(): Promise<Array<Omit<RecordedUpload, 'parts'> & { key: string }>> {
    return this.guard(() => {
      this.marks.flush();
      return this.stmt(
        `SELECT o.key, u.object_id AS objectId, u.dest_key AS destKey, u.upload_id AS uploadId, u.source_etag AS sourceEtag,
           u.size AS size, u.part_size AS partSize, u.part_count AS partCount, u.started_at AS startedAt
         FROM uploads u JOIN objects o ON o.id = u.object_id ORDER BY o.key`,
      ).all() as Array<Omit<RecordedUpload, 'parts'> & { key: string }>;
    });
  }

  private deleteUpload(objectId: number): void {
    this.stmt('DELETE FROM parts WHERE object_id = ?').run(objectId);
    this.stmt('DELETE FROM uploads WHERE object_id = ?').run(objectId);
  }

  async outcomeCounts(filter?: ObjectFilter): Promise<OutcomeCounts> {
    const where = this.where(filter);
    return this.guard(() => {
      this.marks.flush();
      const counts: OutcomeCounts = { failed: 0, changed: 0, gone: 0, unproven: 0, archived: 0 };
      const rows = this.stmt(
        filter === undefined
          ? `SELECT status, objects AS n FROM status_summary WHERE status IN ('failed', 'changed', 'gone', 'unproven', 'archived')`
          : `SELECT status, COUNT(*) AS n FROM objects
             WHERE status IN ('failed', 'changed', 'gone', 'unproven', 'archived') AND ${where.sql} GROUP BY status`,
      ).all(...(filter === undefined ? [] : where.values)) as Array<{ status: keyof OutcomeCounts; n: number }>;
      for (const row of rows) counts[row.status] = row.n;
      return counts;
    });
  }

  // ---- plan, selection and cut-over --------------------------------------------------------

  async planGroups(filter: ObjectFilter | undefined, multipartThreshold: number): Promise<PlanGroupRow[]> {
    const where = this.where(filter);
    return this.guard(
      () =>
        this.stmt(
          `SELECT ${storageClassSql()} AS storageClass, CASE WHEN size <= ? THEN NULL ELSE size END AS size,
             COUNT(*) AS count, COALESCE(SUM(size), 0) AS bytes
           FROM objects WHERE status IN ('pending', 'failed', 'unproven', 'archived') AND ${where.sql}
           GROUP BY 1, 2 ORDER BY 1, 2`,
        ).all(multipartThreshold, ...where.values) as PlanGroupRow[],
    );
  }

  async selectionCounts(filter: ObjectFilter | undefined): Promise<StatusCount[]> {
    const where = this.where(filter);
    return this.guard(
      () =>
        this.stmt(
          `SELECT status, COUNT(*) AS objects, COALESCE(SUM(size), 0) AS bytes FROM objects WHERE ${where.sql}
           GROUP BY status ORDER BY status`,
        ).all(...where.values) as StatusCount[],
    );
  }

  async measuredRate(): Promise<MeasuredRate | undefined> {
    return this.guard(() => {
      const runs = this.stmt(
        `SELECT objects_done AS objects, bytes_done AS bytes, started_at AS startedAt, finished_at AS finishedAt FROM runs
         WHERE command = 'copy' AND finished_at IS NOT NULL AND objects_done > 0 ORDER BY id DESC LIMIT 5`,
      ).all() as Array<{ objects: number; bytes: number; startedAt: string; finishedAt: string }>;
      return rateOf(runs);
    });
  }

  async deletionCandidates(filter?: ObjectFilter): Promise<DeletionCandidate[]> {
    const where = this.where(filter);
    return this.guard(() => {
      this.marks.flush();
      return this.stmt(
        `SELECT id, key, size, ${destKeySql()} AS destKey, ${destEtagSql()} AS destEtag FROM objects
         WHERE status = 'gone' AND dest_etag IS NOT NULL AND dest_key IS NOT NULL AND copied_at IS NOT NULL AND ${where.sql}
         ORDER BY key`,
      ).all(...where.values) as DeletionCandidate[];
    });
  }

  async markDeleted(id: number): Promise<void> {
    const stamp = nowMs();
    this.guard(() =>
      this.stmt(
        "UPDATE objects SET status = 'deleted', deleted_at = ?, error = NULL, updated_at = ? WHERE id = ? AND status = 'gone'",
      ).run(stamp, stamp, id),
    );
  }

  async noteNotDeleted(id: number, reason: string): Promise<void> {
    this.guard(() =>
      this.stmt("UPDATE objects SET error = ?, updated_at = ? WHERE id = ? AND status = 'gone'").run(reason, nowMs(), id),
    );
  }

  // ---- verify ----------------------------------------------------------------------------

  async beginVerifyPass(): Promise<number> {
    return this.guard(() => {
      const pass = Number(this.getMeta('verify_pass') ?? '0') + 1;
      this.setMeta('verify_pass', String(pass));
      return pass;
    });
  }

  async rowByKey(key: string): Promise<VerifyRow | undefined> {
    // Keys are unique: the one row found, if any.
    return (await this.rowsByKeys([key])).values().next().value;
  }

  async rowsByKeys(keys: readonly string[]): Promise<Map<string, VerifyRow>> {
    return this.guard(() => {
      const found = new Map<string, VerifyRow>();
      // KEYS_PER_LOOKUP keys a statement (statements are cached per size).
      for (let at = 0; at < keys.length; at += KEYS_PER_LOOKUP) {
        const chunk = keys.slice(at, at + KEYS_PER_LOOKUP);
        const rows = this.stmt(
          `SELECT id, key, size, etag, status, ${destEtagSql()} AS destEtag, evidence
           FROM objects WHERE key IN (${placeholders(chunk.length)}) AND status NOT IN ('gone', 'deleted')`,
        ).all(...chunk) as Array<Omit<VerifyRow, 'etag'> & { etag: Buffer | string | null }>;
        for (const row of rows) found.set(row.key, { ...row, etag: decodeEtag(row.etag) });
      }
      return found;
    });
  }

  /**
   * Records what verify found for objects present at the destination, in one transaction. Anything
   * found different goes back to pending so the next copy repairs it; an unproven row that verify proved
   * (--deep) becomes done on that evidence.
   */
  async recordVerifyResults(pass: number, results: readonly VerifyFinding[]): Promise<void> {
    this.guard(() => {
      const update = this.stmt(
        `UPDATE objects SET verify_result = @result, verify_pass = @pass, verified_at = @now,
           status = CASE
             WHEN @result = 'ok' AND @evidence IS NOT NULL AND status = 'unproven' THEN 'done'
             WHEN @result IN ('ok', 'unproven') THEN status
             WHEN status IN ('done', 'unproven') THEN 'pending'
             ELSE status END,
           evidence = CASE WHEN @result = 'ok' AND @evidence IS NOT NULL THEN @evidence ELSE evidence END,
           dest_etag = CASE WHEN @result = 'ok' AND @destEtag IS NOT NULL THEN ${STORED_DEST_ETAG} ELSE dest_etag END,
           updated_at = @now WHERE id = @id`,
      );
      const stamp = nowMs();
      // A plain 'ok' (no new evidence, the common case) changes only the verify columns: those rows go in
      // statements of KEYS_PER_LOOKUP ids, the same columns the statement above sets for them.
      const plainOk: number[] = [];
      this.db.transaction(() => {
        for (const finding of results) {
          if (finding.result === 'ok' && finding.evidence === undefined && finding.destEtag === undefined) {
            plainOk.push(finding.id);
            continue;
          }
          update.run({
            id: finding.id,
            result: finding.result,
            evidence: finding.evidence ?? null,
            destEtag: finding.destEtag ?? null,
            pass,
            now: stamp,
          });
        }
        for (let at = 0; at < plainOk.length; at += KEYS_PER_LOOKUP) {
          const ids = plainOk.slice(at, at + KEYS_PER_LOOKUP);
          this.stmt(
            `UPDATE objects SET verify_result = 'ok', verify_pass = ?, verified_at = ?, updated_at = ? WHERE id IN (${placeholders(ids.length)})`,
          ).run(pass, stamp, stamp, ...ids);
        }
      })();
    });
  }

  /** Rows the destination listing did not show: 'missing' when we had copied them, else 'not-copied'. */
  async finishVerifyPass(pass: number): Promise<void> {
    const stamp = nowMs();
    this.guard(() =>
      this.stmt(
        `UPDATE objects SET
           verify_result = CASE WHEN status IN ('done', 'unproven') THEN 'missing' ELSE 'not-copied' END,
           status = CASE WHEN status IN ('done', 'unproven') THEN 'pending' ELSE status END,
           verify_pass = ?, verified_at = ?, updated_at = ?
         WHERE status NOT IN ('gone', 'deleted') AND (verify_pass IS NULL OR verify_pass <> ?)`,
      ).run(pass, stamp, stamp, pass),
    );
  }

  /** Every object the last verify found wrong, in key order, a page at a time. */
  async *verifyProblems(): AsyncGenerator<{ key: string; size: number; result: string }> {
    let after = '';
    for (;;) {
      const rows = this.guard(
        () =>
          this.stmt(
            `SELECT key, size, verify_result AS result FROM objects
             WHERE verify_result IS NOT NULL AND verify_result <> 'ok' AND status NOT IN ('gone', 'deleted') AND key > ?
             ORDER BY key LIMIT 500`,
          ).all(after) as Array<{ key: string; size: number; result: string }>,
      );
      if (rows.length === 0) return;
      yield* rows;
      after = rows[rows.length - 1]!.key;
    }
  }

  async verifyResultCounts(): Promise<Array<{ result: string; objects: number }>> {
    return this.guard(
      () => this.stmt('SELECT result, objects FROM verify_summary').all() as Array<{ result: string; objects: number }>,
    );
  }

  // ---- status ----------------------------------------------------------------------------

  async summary(recentErrorLimit = 5): Promise<StateSummary> {
    return this.guard(() => {
      this.marks.flush();
      const counts = this.stmt('SELECT status, objects, bytes FROM status_summary').all() as StatusCount[];
      const progress = this.stmt(
        'SELECT objects_total AS objectsTotal, objects_done AS objectsDone, bytes_total AS bytesTotal, bytes_done AS bytesDone FROM progress',
      ).get() as { objectsTotal: number; objectsDone: number; bytesTotal: number; bytesDone: number };
      const evidenceCounts = this.stmt('SELECT evidence, objects FROM evidence_summary').all() as Array<{
        evidence: string | null;
        objects: number;
      }>;
      const recentErrors = this.stmt(
        `SELECT key, attempts, error, ${isoSql('updated_at')} AS updatedAt FROM objects
         WHERE error IS NOT NULL AND status IN ('failed', 'changed', 'pending', 'in_flight') ORDER BY updated_at DESC LIMIT ?`,
      ).all(recentErrorLimit) as StateSummary['recentErrors'];
      const lastRun = this.stmt(
        'SELECT command, started_at AS startedAt, finished_at AS finishedAt, outcome FROM runs ORDER BY id DESC LIMIT 1',
      ).get() as StateSummary['lastRun'] | undefined;
      const uploads = this.stmt('SELECT COUNT(*) AS count, COALESCE(SUM(bytes_done), 0) AS bytesDone FROM open_uploads').get() as {
        count: number;
        bytesDone: number;
      };
      const uploadSample = this.stmt(
        `SELECT key, dest_key AS destKey, upload_id AS uploadId, size, parts_done AS partsDone, part_count AS partCount,
           bytes_done AS bytesDone, started_at AS startedAt FROM open_uploads LIMIT 20`,
      ).all() as OpenUpload[];
      const verifyResults = this.stmt('SELECT result, objects FROM verify_summary').all() as Array<{ result: string; objects: number }>;
      return {
        source: this.getLocation('source'),
        catalogState: this.getMeta('catalog_state'),
        catalogStartedAt: this.getMeta('catalog_started_at'),
        catalogFinishedAt: this.getMeta('catalog_finished_at'),
        catalogSource: catalogSourceSummary((key) => this.getMeta(key), () => {
          const pass = Number(this.getMeta('catalog_pass') ?? '0');
          return this.stmt('SELECT COUNT(*) AS parts, COALESCE(SUM(done), 0) AS partsDone FROM catalog_parts WHERE pass = ?').get(pass) as {
            parts: number;
            partsDone: number;
          };
        }),
        counts,
        ...progress,
        evidenceCounts: evidenceCounts.map((v) => ({ evidence: v.evidence ?? 'none', objects: v.objects })),
        verifyResults,
        recentErrors,
        openUploads: { ...uploads, sample: uploadSample },
        lastRun: lastRun ? { ...lastRun, finishedAt: lastRun.finishedAt ?? undefined } : undefined,
        lastCatalogPass: this.lastPass(),
      };
    });
  }
}

/** Another live process holds the state file. */
export class StateLockedError extends S3MigrateError {
  constructor(location: string, owner: LockOwner) {
    super(
      'fatal',
      `${location} is in use by \`s3migrate ${owner.command}\` (pid ${owner.pid} on ${owner.host}, ` +
        `since ${owner.since}). Wait for it to finish or stop it; only one command may write a state file. ` +
        `If that process is gone, run: sqlite3 ${location} "DELETE FROM meta WHERE key = 'lock'"`,
    );
    this.name = 'StateLockedError';
  }
}

