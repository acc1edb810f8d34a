import os from 'node:os';
import type Database from 'better-sqlite3';
import { FatalError } from '../errors.js';
import { openDatabase, type OpenOptions } from './open-database.js';
import { SORT_INDEXES } from './schema.js';
import type {
  CatalogProgress,
  CopyResult,
  ListedObject,
  ObjectRow,
  SortOrder,
  EndpointLocation,
  StateSummary,
  StatusCount,
  VerifyFinding,
  VerifyRow,
} from './types.js';

const now = (): string => new Date().toISOString();

/** Keyset pagination per --sort order: the first page, then "after this row" pages, both on a partial index. */
const ORDER_SQL: Record<SortOrder, { orderBy: string; after: string }> = {
  key: { orderBy: 'key', after: 'key > @key' },
  oldest: { orderBy: 'last_modified, key', after: '(last_modified, key) > (@lastModified, @key)' },
  newest: { orderBy: 'last_modified DESC, key DESC', after: '(last_modified, key) < (@lastModified, @key)' },
  smallest: { orderBy: 'size, key', after: '(size, key) > (@size, @key)' },
  largest: { orderBy: 'size DESC, key DESC', after: '(size, key) < (@size, @key)' },
};

const ROW_COLUMNS = 'id, key, size, etag, last_modified AS lastModified, attempts';

interface LockOwner {
  pid: number;
  host: string;
  command: string;
  since: string;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The only code that speaks SQL. Every method is one short transaction. */
export class StateStore {
  private lockHeld = false;
  private readonly statements = new Map<string, Database.Statement>();

  private constructor(
    readonly path: string,
    private readonly db: Database.Database,
  ) {}

  static open(path: string, options: OpenOptions): StateStore {
    return new StateStore(path, openDatabase(path, options));
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

  /** Releases our lock and closes the file; safe to call twice. */
  close(): void {
    if (!this.db.open) return;
    if (this.lockHeld) this.releaseLock();
    this.db.close();
  }

  // ---- source identity -------------------------------------------------------------------

  getSource(): EndpointLocation | undefined {
    return this.getLocation('source');
  }

  setSource(source: EndpointLocation): void {
    this.db.transaction(() => {
      this.setLocation('source', source);
      this.setMeta('created_at', now());
    })();
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
  acquireLock(command: string): void {
    const host = os.hostname();
    this.db
      .transaction(() => {
        const held = this.getMeta('lock');
        if (held) {
          const owner = JSON.parse(held) as LockOwner;
          const stale = owner.host === host && (owner.pid === process.pid || !processAlive(owner.pid));
          if (!stale) {
            throw new FatalError(
              `${this.path} is in use by \`s3migrate ${owner.command}\` (pid ${owner.pid} on ${owner.host}, ` +
                `since ${owner.since}). Wait for it to finish or stop it; only one command may write a state file. ` +
                `If that process is gone, run: sqlite3 ${this.path} "DELETE FROM meta WHERE key = 'lock'"`,
            );
          }
        }
        if (held) {
          // The holder died (kill -9, reboot): its run never finished.
          this.stmt("UPDATE runs SET outcome = 'abandoned' WHERE outcome = 'running'").run();
        }
        const owner: LockOwner = { pid: process.pid, host, command, since: now() };
        this.setMeta('lock', JSON.stringify(owner));
      })
      .immediate();
    this.lockHeld = true;
  }

  releaseLock(): void {
    const held = this.getMeta('lock');
    if (held && (JSON.parse(held) as LockOwner).pid === process.pid) this.deleteMeta('lock');
    this.lockHeld = false;
  }

  // ---- runs ------------------------------------------------------------------------------

  startRun(command: string, args: string): number {
    const result = this.stmt('INSERT INTO runs(command, arguments, started_at) VALUES (?, ?, ?)').run(
      command,
      args,
      now(),
    );
    return Number(result.lastInsertRowid);
  }

  finishRun(
    id: number,
    outcome: 'completed' | 'interrupted' | 'failed',
    counts: { objectsDone?: number; objectsFailed?: number; bytesDone?: number; keysListed?: number; error?: string },
  ): void {
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
    );
  }

  // ---- catalog ---------------------------------------------------------------------------

  /** Continues an interrupted listing pass, or starts a new one (which will reconcile every row). */
  beginCatalogPass(): CatalogProgress {
    return this.db
      .transaction((): CatalogProgress => {
        const pass = Number(this.getMeta('catalog_pass') ?? '0');
        if (pass > 0 && this.getMeta('catalog_state') === 'listing') {
          return { pass, startAfter: this.getMeta('catalog_start_after') ?? '', resumed: true };
        }
        const next = pass + 1;
        this.setMeta('catalog_pass', String(next));
        this.setMeta('catalog_state', 'listing');
        this.setMeta('catalog_start_after', '');
        this.setMeta('catalog_started_at', now());
        return { pass: next, startAfter: '', resumed: false };
      })
      .immediate();
  }

  /**
   * Stores one listing page and the listing's resume point in ONE transaction, so a crash leaves either
   * the whole page with its resume point or neither. Changed keys go back to pending; unchanged rows keep
   * their status.
   */
  ingestPage(pass: number, objects: readonly ListedObject[], startAfter: string): void {
    // Unchanged rows (the bulk of a re-catalog) only get their pass stamp: no indexed column is written.
    const touch = this.stmt(
      `UPDATE objects SET catalog_pass = @pass, listed_at = @now
       WHERE key = @key AND size = @size AND etag IS @etag AND last_modified = @lastModified AND status <> 'gone'`,
    );
    // New keys are inserted; changed ones (size, ETag, LastModified, or back from gone) become pending again.
    const upsert = this.stmt(
      `INSERT INTO objects (key, size, etag, last_modified, storage_class, status, catalog_pass, listed_at, updated_at)
       VALUES (@key, @size, @etag, @lastModified, @storageClass, 'pending', @pass, @now, @now)
       ON CONFLICT(key) DO UPDATE SET
         status = 'pending', attempts = 0, error = NULL, verify_method = NULL, verify_result = NULL,
         size = excluded.size, etag = excluded.etag, last_modified = excluded.last_modified,
         storage_class = excluded.storage_class, catalog_pass = excluded.catalog_pass,
         listed_at = excluded.listed_at, updated_at = excluded.updated_at`,
    );
    const stamp = now();
    this.db.transaction(() => {
      for (const object of objects) {
        const row = {
          key: object.key,
          size: object.size,
          etag: object.etag ?? null,
          lastModified: object.lastModified,
          storageClass: object.storageClass ?? null,
          pass,
          now: stamp,
        };
        // The first pass only ever meets new keys (its resume point commits with each page): no probe needed.
        if (pass === 1 || touch.run(row).changes === 0) upsert.run(row);
      }
      this.setMeta('catalog_start_after', startAfter);
    })();
  }

  /** Ends a complete pass: rows it did not see are gone from the source (kept, marked 'gone'). */
  finishCatalogPass(pass: number): { gone: number } {
    return this.db.transaction(() => {
      const result = this.stmt(
        `UPDATE objects SET status = 'gone', updated_at = ? WHERE catalog_pass < ? AND status <> 'gone'`,
      ).run(now(), pass);
      this.setMeta('catalog_state', 'complete');
      this.setMeta('catalog_finished_at', now());
      this.deleteMeta('catalog_start_after');
      return { gone: result.changes };
    })();
  }

  catalogComplete(): boolean {
    return this.getMeta('catalog_state') === 'complete';
  }

  countListed(): number {
    return (this.stmt("SELECT COUNT(*) AS n FROM objects WHERE status <> 'gone'").get() as { n: number }).n;
  }

  // ---- copy ------------------------------------------------------------------------------

  /** Failed rows get another chance on every new copy run. */
  requeueFailed(): number {
    return this.stmt("UPDATE objects SET status = 'pending', updated_at = ? WHERE status = 'failed'").run(now())
      .changes;
  }

  /** Rows a crashed run left in flight; the engine checks them at the destination before anything else. */
  inFlightRows(): ObjectRow[] {
    return this.stmt(`SELECT ${ROW_COLUMNS} FROM objects WHERE status = 'in_flight' ORDER BY key`).all() as ObjectRow[];
  }

  /** Builds the index that serves this --sort order, if no earlier copy did (one sort over the catalog). */
  ensureSortIndex(order: SortOrder): void {
    this.db.exec(SORT_INDEXES[order]);
  }

  /** The next pending rows in the chosen order, strictly after `after` (keyset pagination). */
  nextPending(order: SortOrder, after: ObjectRow | undefined, limit: number): ObjectRow[] {
    const { orderBy, after: afterSql } = ORDER_SQL[order];
    const where = after ? `status = 'pending' AND ${afterSql}` : `status = 'pending'`;
    const sql = `SELECT ${ROW_COLUMNS} FROM objects WHERE ${where} ORDER BY ${orderBy} LIMIT @limit`;
    const params = after
      ? { key: after.key, lastModified: after.lastModified, size: after.size, limit }
      : { limit };
    return this.stmt(sql).all(params) as ObjectRow[];
  }

  pendingTotals(): { objects: number; bytes: number } {
    return this.stmt(
      "SELECT COUNT(*) AS objects, COALESCE(SUM(size), 0) AS bytes FROM objects WHERE status IN ('pending', 'in_flight')",
    ).get() as { objects: number; bytes: number };
  }

  markInFlight(id: number): void {
    this.stmt(
      "UPDATE objects SET status = 'in_flight', attempts = attempts + 1, started_at = ?, updated_at = ? WHERE id = ?",
    ).run(now(), now(), id);
  }

  /** Called only after the destination confirmed the write. */
  markDone(id: number, result: CopyResult): void {
    const stamp = now();
    this.stmt(
      `UPDATE objects SET status = 'done', error = NULL, copied_at = ?, dest_key = ?, dest_etag = ?,
         verify_method = ?, verified_at = ?, verify_result = NULL, updated_at = ? WHERE id = ?`,
    ).run(stamp, result.destKey, result.destEtag ?? null, result.verifyMethod, stamp, stamp, id);
  }

  markFailed(id: number, error: string): void {
    this.stmt("UPDATE objects SET status = 'failed', error = ?, updated_at = ? WHERE id = ?").run(error, now(), id);
  }

  /** An interrupted transfer: back to pending, and the attempt it started does not count. */
  markPending(id: number, refundAttempt: boolean): void {
    this.stmt(
      `UPDATE objects SET status = 'pending', attempts = MAX(attempts - ?, 0), updated_at = ? WHERE id = ?`,
    ).run(refundAttempt ? 1 : 0, now(), id);
  }

  /** Records a failed attempt's error and counts the retry that follows it. */
  recordRetry(id: number, error: string): void {
    this.stmt('UPDATE objects SET error = ?, attempts = attempts + 1, updated_at = ? WHERE id = ?').run(error, now(), id);
  }

  // ---- destination -----------------------------------------------------------------------

  getDestination(): EndpointLocation | undefined {
    return this.getLocation('dest');
  }

  setDestination(dest: EndpointLocation): void {
    this.db.transaction(() => this.setLocation('dest', dest))();
  }

  // ---- verify ----------------------------------------------------------------------------

  beginVerifyPass(): number {
    const pass = Number(this.getMeta('verify_pass') ?? '0') + 1;
    this.setMeta('verify_pass', String(pass));
    return pass;
  }

  rowByKey(key: string): VerifyRow | undefined {
    return this.stmt(
      `SELECT id, key, size, etag, status, dest_etag AS destEtag, verify_method AS verifyMethod
       FROM objects WHERE key = ? AND status <> 'gone'`,
    ).get(key) as VerifyRow | undefined;
  }

  /**
   * Records what verify found for objects present at the destination, in one transaction. Anything
   * found different goes back to pending so the next copy repairs it.
   */
  recordVerifyResults(pass: number, results: readonly VerifyFinding[]): void {
    const update = this.stmt(
      `UPDATE objects SET verify_result = @result, verify_pass = @pass, verified_at = @now,
         verify_method = COALESCE(@method, verify_method),
         status = CASE WHEN @result = 'ok' THEN status WHEN status = 'done' THEN 'pending' ELSE status END,
         updated_at = @now WHERE id = @id`,
    );
    const stamp = now();
    this.db.transaction(() => {
      for (const finding of results) {
        update.run({ id: finding.id, result: finding.result, method: finding.method ?? null, pass, now: stamp });
      }
    })();
  }

  /** Rows the destination listing did not show: 'missing' when we had copied them, else 'not-copied'. */
  finishVerifyPass(pass: number): void {
    const stamp = now();
    this.stmt(
      `UPDATE objects SET
         verify_result = CASE WHEN status = 'done' THEN 'missing' ELSE 'not-copied' END,
         status = CASE WHEN status = 'done' THEN 'pending' ELSE status END,
         verify_pass = ?, verified_at = ?, updated_at = ?
       WHERE status <> 'gone' AND (verify_pass IS NULL OR verify_pass <> ?)`,
    ).run(pass, stamp, stamp, pass);
  }

  /** Every object the last verify found wrong, in key order, a page at a time. */
  *verifyProblems(): Generator<{ key: string; size: number; result: string }> {
    let after = '';
    for (;;) {
      const rows = this.stmt(
        `SELECT key, size, verify_result AS result FROM objects
         WHERE verify_result IS NOT NULL AND verify_result <> 'ok' AND status <> 'gone' AND key > ?
         ORDER BY key LIMIT 500`,
      ).all(after) as Array<{ key: string; size: number; result: string }>;
      if (rows.length === 0) return;
      yield* rows;
      after = rows[rows.length - 1]!.key;
    }
  }

  verifyResultCounts(): Array<{ result: string; objects: number }> {
    return this.stmt(
      `SELECT COALESCE(verify_result, 'not-verified') AS result, COUNT(*) AS objects FROM objects
       WHERE status <> 'gone' GROUP BY 1 ORDER BY 1`,
    ).all() as Array<{ result: string; objects: number }>;
  }

  // ---- status ----------------------------------------------------------------------------

  summary(recentErrorLimit = 5): StateSummary {
    const counts = this.stmt('SELECT status, objects, bytes FROM status_summary').all() as StatusCount[];
    const progress = this.stmt(
      'SELECT objects_total AS objectsTotal, objects_done AS objectsDone, bytes_total AS bytesTotal, bytes_done AS bytesDone FROM progress',
    ).get() as { objectsTotal: number; objectsDone: number; bytesTotal: number; bytesDone: number };
    const verifyCounts = this.stmt(
      "SELECT verify_method AS method, COUNT(*) AS objects FROM objects WHERE status = 'done' GROUP BY verify_method ORDER BY verify_method",
    ).all() as Array<{ method: string; objects: number }>;
    const recentErrors = this.stmt(
      `SELECT key, attempts, error, updated_at AS updatedAt FROM objects
       WHERE error IS NOT NULL AND status IN ('failed', 'pending', 'in_flight') ORDER BY updated_at DESC LIMIT ?`,
    ).all(recentErrorLimit) as StateSummary['recentErrors'];
    const lastRun = this.stmt(
      'SELECT command, started_at AS startedAt, finished_at AS finishedAt, outcome FROM runs ORDER BY id DESC LIMIT 1',
    ).get() as StateSummary['lastRun'] | undefined;
    return {
      source: this.getSource(),
      catalogState: this.getMeta('catalog_state'),
      catalogStartedAt: this.getMeta('catalog_started_at'),
      catalogFinishedAt: this.getMeta('catalog_finished_at'),
      counts,
      ...progress,
      verifyCounts: verifyCounts.map((v) => ({ method: v.method ?? 'none', objects: v.objects })),
      verifyResults: this.verifyResultCounts(),
      recentErrors,
      lastRun: lastRun ? { ...lastRun, finishedAt: lastRun.finishedAt ?? undefined } : undefined,
    };
  }
}
