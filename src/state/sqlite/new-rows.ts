import type Database from 'better-sqlite3';
import { compareKeys } from '../../catalog/key-order.js';

/**
 * Catalog rows for keys the state file cannot hold yet, stored with plain multi-row INSERTs: the row the
 * ingest's per-row INSERT writes for a new key, without a statement per row (better-sqlite3 pays a call,
 * a bind and a reset per statement: at 1,000 keys a page that was a third of the ingest's cost). It also
 * counts a page's new rows (these and those the per-row path inserted) into the pending counter, once per
 * page (schema 4 has no insert trigger).
 *
 * Which keys those are is decided per page with one index lookup: the first stored key at or after the
 * page's first key. Keys of the page below it, each above the one before it (a listing's byte order),
 * cannot be stored; from the first key that is not so, the page takes the per-row path (touch, newer,
 * insert or rewrite). A first pass (a new state, or a part or data file beyond every key stored) thus
 * never looks a key up, and a re-listing pays one lookup per page for keys that are new at its end.
 */
export const NEW_ROWS_PER_INSERT = 100;

const COLUMNS = '(key, size, etag, last_modified, status, catalog_pass, change_pass, change_kind, updated_at, storage_class)';
const ROW = "(?, ?, ?, ?, 'pending', ?, ?, 'new', ?, ?)";

/** One stored row's encoded values, as the ingest binds them. */
export interface NewRow {
  key: string;
  size: number;
  etag: Buffer | string | null;
  lastModified: number | string;
  storageClass: Buffer | string | null;
}

/** What a page's rows share, and how a row the fast path gives back is stored (the per-row path). */
export interface NewRowsPage {
  firstKey: string | undefined;
  pass: number;
  now: number;
  upsert: (row: NewRow) => void;
}

export class NewRows {
  private readonly inserts = new Map<number, Database.Statement>();
  private readonly firstAtOrAfter: Database.Statement;
  private page: NewRowsPage | undefined;
  private values: unknown[] = [];
  private rows: NewRow[] = [];
  /** The first stored key at or after the page's first key (null: none); undefined: the page left the fast path. */
  private bound: string | null | undefined;
  private last: string | undefined;
  /** The page's new rows (bulk and per-row) and their bytes, for the pending counter. */
  private added = 0;
  private addedBytes = 0;

  constructor(private readonly db: Database.Database) {
    this.firstAtOrAfter = db.prepare('SELECT MIN(key) FROM objects WHERE key >= ?').pluck();
    this.count = db.prepare(
      `INSERT INTO counters VALUES ('status', 'pending', ?, ?)
       ON CONFLICT (kind, value) DO UPDATE SET objects = objects + excluded.objects, bytes = bytes + excluded.bytes`,
    );
  }

  private readonly count: Database.Statement;

  /** Starts a page whose rows come in the listing's order (inside the page's transaction). */
  begin(page: NewRowsPage): void {
    this.page = page;
    this.values = [];
    this.rows = [];
    this.last = undefined;
    this.added = 0;
    this.addedBytes = 0;
    this.bound = page.firstKey === undefined ? undefined : (this.firstAtOrAfter.get(page.firstKey) as string | null);
  }

  /** Queues `row` if its key provably is not stored (true), or leaves it, and every row after it, to the per-row path (false). */
  add(row: NewRow): boolean {
    const bound = this.bound;
    if (bound === undefined) return false;
    const key = row.key;
    if ((this.last !== undefined && compareKeys(key, this.last) <= 0) || (bound !== null && compareKeys(key, bound) >= 0)) {
      this.flush();
      this.bound = undefined;
      return false;
    }
    this.last = key;
    this.rows.push(row);
    const { pass, now } = this.page!;
    this.values.push(key, row.size, row.etag, row.lastModified, pass, pass, now, row.storageClass);
    if (this.rows.length === NEW_ROWS_PER_INSERT) this.flush();
    return true;
  }

  /** Stores the queued rows: before the page's other writes, and at its end. */
  flush(): void {
    const rows = this.rows;
    if (rows.length === 0) return;
    const values = this.values;
    this.rows = [];
    this.values = [];
    try {
      this.insert(rows.length).run(values);
      this.added += rows.length;
      for (const row of rows) this.addedBytes += row.size;
    } catch (error) {
      // A key compareKeys placed below the bound though it is stored: its byte order is UTF-8's, and a
      // lone surrogate (no UTF-8; SQLite keeps its 3 bytes) compares otherwise. The failed statement
      // changed nothing; the per-row path stores its rows.
      if ((error as { code?: string }).code !== 'SQLITE_CONSTRAINT_UNIQUE') throw error;
      for (const row of rows) this.page!.upsert(row);
    }
  }

  /** One new row the per-row path inserted (status pending, `size` bytes). */
  counted(size: number): void {
    this.added += 1;
    this.addedBytes += size;
  }

  /**
   * Ends the page (inside its transaction): the queued rows stored, and the page's new rows added to the
   * pending counter at once, what the insert trigger of migrations 2-3 did row by row.
   */
  end(): void {
    this.flush();
    this.countAdded();
  }

  /**
   * Adds the rows counted so far to the pending counter. Also due before any write that fires the update
   * trigger (a rewritten row): its decrement of the pending counter must find that counter's row.
   */
  countAdded(): void {
    if (this.added > 0) this.count.run(this.added, this.addedBytes);
    this.added = 0;
    this.addedBytes = 0;
  }

  private insert(count: number): Database.Statement {
    let statement = this.inserts.get(count);
    if (!statement) {
      statement = this.db.prepare(`INSERT INTO objects ${COLUMNS} VALUES ${Array(count).fill(ROW).join(', ')}`);
      this.inserts.set(count, statement);
    }
    return statement;
  }
}
