import { createHash } from 'node:crypto';
import os from 'node:os';
import pg from 'pg';
import { FatalError, S3MigrateError, UsageError } from '../../errors.js';
import { catalogSourceMeta, catalogSourceOf, catalogSourceSummary, sameCatalogSource } from '../catalog-meta.js';
import { inventoryGoneBefore, LeaseLostError, StateBusyError, StateStoreError, type OutcomeCounts, type StateStore } from '../store.js';
import { deadLocalWorker, newWorkerId, processAlive } from '../worker-ids.js';
import type { ObjectFilter } from '../../filter/object-filter.js';
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
import { clientConfig, connectionError, newPasswordSource, parsePostgresUrl, type Env, type PgTarget } from './connection.js';
import { AsyncGroupCommit } from './group-commit.js';
import { APPLICATION, MIGRATIONS, SCHEMA, SCHEMA_LOCK_KEY, SCHEMA_VERSION, SORT_INDEXES } from './schema.js';

export interface PgOpenOptions {
  /** Create the migration (and the schema) when missing (only `catalog` does). */
  create: boolean;
  /** Queries only: the session is read-only (a schema upgrade still runs, as for the SQLite file). */
  readonly: boolean;
  /** The migration inside the database (--migration). */
  migration: string;
  /** The environment the CLI loaded: PG* variables and the password (never read from process.env here). */
  env?: Env;
}

const now = (): string => new Date().toISOString();

/** ORDER BY per --sort order, each served by its partial index over pending rows (key breaks ties). */
const ORDER_BY: Record<SortOrder, string> = {
  key: 'key',
  oldest: 'last_modified, key',
  newest: 'last_modified DESC, key DESC',
  smallest: 'size, key',
  largest: 'size DESC, key DESC',
};

const ROW_COLUMNS = 'id, key, size, etag, last_modified AS "lastModified", attempts';

/**
 * A claim's floor (see PgStore.claimPending): the rows after a row in this order, its sort values the
 * parameters from $n on; a row comparison that the order's index answers as a range.
 */
const CLAIM_FLOOR: Record<SortOrder, (n: number) => string> = {
  key: (n) => `key > $${n}::text`,
  oldest: (n) => `(last_modified, key) > ($${n}::text, $${n + 1}::text)`,
  newest: (n) => `(last_modified, key) < ($${n}::text, $${n + 1}::text)`,
  smallest: (n) => `(size, key) > ($${n}::bigint, $${n + 1}::text)`,
  largest: (n) => `(size, key) < ($${n}::bigint, $${n + 1}::text)`,
};

/** The floor's values after `row` in this order (CLAIM_FLOOR's parameters). */
function floorValues(order: SortOrder, row: ObjectRow): unknown[] {
  switch (order) {
    case 'key':
      return [row.key];
    case 'oldest':
    case 'newest':
      return [row.lastModified, row.key];
    default:
      return [row.size, row.key];
  }
}

/**
 * How long a worker's claims may start after its last claimed row before one starts at the head of the
 * order again: rows that became pending behind it meanwhile (released, retried, a dead worker's) wait
 * at most this long for their turn.
 */
export const CLAIM_FLOOR_MS = 1000;
const UPLOAD_COLUMNS =
  'object_id AS "objectId", dest_key AS "destKey", upload_id AS "uploadId", source_etag AS "sourceEtag", size, ' +
  'part_size AS "partSize", part_count AS "partCount", started_at AS "startedAt"';

/** The filter as a condition whose parameters follow the statement's first `offset` ones. */
function whereOf(filter: ObjectFilter | undefined, offset: number): { sql: string; values: unknown[] } {
  const params = new SqlParams('postgres', offset);
  const sql = filterCondition(filter, params, 'postgres');
  return { sql, values: params.values };
}

/**
 * The claim of at most `limit` rows: the next pending rows in this order (within the filter, whose
 * parameters follow the four of the claim), locked (skipping rows another claim holds) and marked in
 * flight. The limit is part of the text, not a parameter: the claim runs as a prepared statement (see
 * preparedStatement), and a generic plan of LIMIT $n is costed for a tenth of the pending rows, so the
 * server would never reuse it and planned every claim anew (same plan, the index of the order).
 */
export function claimSql(order: SortOrder, limit: number, filterSql = '1 = 1', floorAt?: number): string {
  if (!Number.isSafeInteger(limit) || limit < 0) throw new Error(`claim of ${limit} rows`);
  const floor = floorAt === undefined ? '' : ` AND ${CLAIM_FLOOR[order](floorAt)}`;
  return `WITH picked AS (
      SELECT id FROM s3migrate.objects
      WHERE migration = $1 AND status = 'pending' AND ${filterSql}${floor}
      ORDER BY ${ORDER_BY[order]} LIMIT ${limit}
      FOR UPDATE SKIP LOCKED
    ), claimed AS (
      UPDATE s3migrate.objects o SET status = 'in_flight', attempts = o.attempts + 1, started_at = $2, updated_at = $2,
        lease_owner = $3, lease_expires_at = CASE WHEN $3::text IS NULL THEN NULL ELSE (extract(epoch from clock_timestamp()) * 1000)::bigint + $4 END
      WHERE o.migration = $1 AND o.id = ANY (ARRAY(SELECT id FROM picked)) AND o.status = 'pending'
      RETURNING o.id, o.key, o.size, o.etag, o.last_modified, o.attempts
    )
    SELECT ${ROW_COLUMNS} FROM claimed ORDER BY ${ORDER_BY[order]}`;
}

/**
 * The statements a worker runs for every few objects (claims, row marks, lease renewals) go as named
 * prepared statements, one per distinct text and connection: the server parses and analyzes each once per
 * connection and, after a few runs, reuses a generic plan instead of planning every claim and mark again.
 * The name is derived from the text, so that one name never stands for two texts.
 */
const statementNames = new Map<string, string>();

/** What to do when the server lost or doubled such a statement (26000, 42P05): a pooler in between. */
export const PREPARED_STATEMENTS_ADVICE =
  "s3migrate's workers use named prepared statements, which a connection pooler in transaction mode loses " +
  'between transactions: with PgBouncer, use 1.21 or later with max_prepared_statements set (e.g. 200), or ' +
  'session pooling, or connect to PostgreSQL directly.';

function preparedStatement(text: string, values: unknown[]): pg.QueryConfig {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `s3migrate_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`;
    statementNames.set(text, name);
  }
  return { name, text, values };
}

/** The names a --migration may have: plain, so that it reads well in SQL and in messages. */
const MIGRATION_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export function checkMigrationName(name: string): string {
  if (!MIGRATION_NAME.test(name)) {
    throw new UsageError(
      `--migration must be 1 to 63 letters, digits, '.', '_' or '-' (starting with a letter or digit), got "${name}"`,
    );
  }
  return name;
}

interface LockOwner {
  pid: number;
  host: string;
  command: string;
  since: string;
}


/** int8 as a JS number (sizes, counts, ids), everything else as `pg` parses it; per pool, not global. */
const INT8_OID = 20;
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

/** A row mark, or an upload record, applied with the others of its batch (see AsyncGroupCommit). */
type ObjectMark =
  | { kind: 'release'; id: number; stamp: string }
  | {
      kind: 'done';
      id: number;
      destKey: string;
      destEtag: string | null;
      evidence: string;
      method: string;
      completedUpload: boolean;
      stamp: string;
    }
  | { kind: 'failed' | 'changed' | 'retry'; id: number; error: string; stamp: string }
  | { kind: 'gone'; id: number; stamp: string }
  | { kind: 'pending'; id: number; refund: number; stamp: string };
type UploadMark =
  | {
      kind: 'upload';
      id: number;
      destKey: string;
      uploadId: string;
      sourceEtag: string | null;
      size: number;
      partSize: number;
      partCount: number;
      stamp: string;
    }
  | { kind: 'part'; id: number; partNumber: number; size: number; etag: string; md5: string }
  | { kind: 'forget'; id: number };
type Mark = ObjectMark | UploadMark;

/** Per kind of row mark: the columns it passes (as arrays, one element per row) and what it sets. */
const MARKS: Record<ObjectMark['kind'], { columns: Array<[string, string]>; set: string; where?: string }> = {
  release: {
    columns: [['stamp', 'text']],
    set: "status = 'pending', attempts = GREATEST(o.attempts - 1, 0), updated_at = v.stamp, lease_owner = NULL, lease_expires_at = NULL",
    where: "AND o.status = 'in_flight'",
  },
  done: {
    columns: [['dest_key', 'text'], ['dest_etag', 'text'], ['evidence', 'text'], ['copy_method', 'text'], ['stamp', 'text']],
    set:
      "status = 'done', error = NULL, copied_at = v.stamp, dest_key = v.dest_key, dest_etag = v.dest_etag, " +
      'evidence = v.evidence, copy_method = v.copy_method, verified_at = v.stamp, verify_result = NULL, updated_at = v.stamp, ' +
      'lease_owner = NULL, lease_expires_at = NULL',
  },
  failed: {
    columns: [['error', 'text'], ['stamp', 'text']],
    set: "status = 'failed', error = v.error, updated_at = v.stamp, lease_owner = NULL, lease_expires_at = NULL",
  },
  changed: {
    columns: [['error', 'text'], ['stamp', 'text']],
    set: "status = 'changed', error = v.error, updated_at = v.stamp, lease_owner = NULL, lease_expires_at = NULL",
  },
  gone: { columns: [['stamp', 'text']], set: "status = 'gone', error = NULL, updated_at = v.stamp, lease_owner = NULL, lease_expires_at = NULL" },
  pending: {
    columns: [['refund', 'int'], ['stamp', 'text']],
    set: "status = 'pending', attempts = GREATEST(o.attempts - v.refund, 0), updated_at = v.stamp, lease_owner = NULL, lease_expires_at = NULL",
  },
  retry: { columns: [['error', 'text'], ['stamp', 'text']], set: 'error = v.error, attempts = o.attempts + 1, updated_at = v.stamp' },
};

function markValues(mark: ObjectMark): unknown[] {
  switch (mark.kind) {
    case 'done':
      return [mark.destKey, mark.destEtag, mark.evidence, mark.method, mark.stamp];
    case 'failed':
    case 'changed':
    case 'retry':
      return [mark.error, mark.stamp];
    case 'pending':
      return [mark.refund, mark.stamp];
    default:
      return [mark.stamp];
  }
}

/** Milliseconds since 1970 by the database's clock: leases of a fleet follow one clock. */
const NOW_MS = '(extract(epoch from clock_timestamp()) * 1000)::bigint';

/**
 * The fence of a row write, with the worker id as parameter $N: as a worker, only rows in flight under
 * its own lease; outside a copy (no worker joined: the parameter is NULL), any row. Two texts rather than
 * one "$N IS NULL OR ..." so that the prepared statements' generic plans see the condition a worker's
 * writes have (the server reused none of the combined text's generic plans and planned every mark anew).
 */
const fenceOf = (worker: boolean, n: number, alias = 'o'): string =>
  worker ? `AND ${alias}.status = 'in_flight' AND ${alias}.lease_owner = $${n}::text` : `AND $${n}::text IS NULL`;

/** Per kind of row mark, as a worker's (fenced) and as any other process's. */
const markSql = (worker: boolean): Record<ObjectMark['kind'], string> =>
  Object.fromEntries(
    Object.entries(MARKS).map(([kind, { columns, set, where }]) => [
      kind,
      `UPDATE s3migrate.objects o SET ${set}
     FROM unnest($2::bigint[], ${columns.map(([, type], i) => `$${i + 3}::${type}[]`).join(', ')})
       AS v(id, ${columns.map(([name]) => name).join(', ')})
     WHERE o.migration = $1 AND o.id = v.id ${where ?? ''} ${fenceOf(worker, columns.length + 3)}
     RETURNING o.id`,
    ]),
  ) as Record<ObjectMark['kind'], string>;
const MARK_SQL = { worker: markSql(true), other: markSql(false) };

/** The rows of `ids` (param $2) this worker ($3) may write an upload record for: it holds them (or no worker). */
const heldIds = (worker: boolean): string =>
  `SELECT o.id FROM s3migrate.objects o WHERE o.migration = $1 AND o.id = ANY ($2::bigint[]) ${fenceOf(worker, 3)}`;
const HELD_IDS = { worker: heldIds(true), other: heldIds(false) };
/** The rows of `ids` whose upload record may go: not held by another worker's live lease. */
const FORGETTABLE_IDS = `SELECT o.id FROM s3migrate.objects o WHERE o.migration = $1 AND o.id = ANY ($2::bigint[])
  AND NOT (o.status = 'in_flight' AND o.lease_owner IS NOT NULL AND o.lease_owner IS DISTINCT FROM $3::text
           AND o.lease_expires_at > ${NOW_MS})`;

const FORGET_PARTS = 'DELETE FROM s3migrate.parts WHERE migration = $1 AND object_id = ANY ($2::bigint[])';
const FORGET_UPLOADS = 'DELETE FROM s3migrate.uploads WHERE migration = $1 AND object_id = ANY ($2::bigint[])';
const INSERT_UPLOADS = `INSERT INTO s3migrate.uploads
    (object_id, migration, dest_key, upload_id, source_etag, size, part_size, part_count, started_at)
  SELECT v.id, $1, v.dest_key, v.upload_id, v.source_etag, v.size, v.part_size, v.part_count, v.stamp
  FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::int[], $9::text[])
    AS v(id, dest_key, upload_id, source_etag, size, part_size, part_count, stamp)`;
const UPSERT_PARTS = `INSERT INTO s3migrate.parts (object_id, migration, part_number, size, etag, md5)
  SELECT v.id, $1, v.part_number, v.size, v.etag, v.md5
  FROM unnest($2::bigint[], $3::int[], $4::bigint[], $5::text[], $6::text[]) AS v(id, part_number, size, etag, md5)
  ON CONFLICT (object_id, part_number) DO UPDATE SET size = EXCLUDED.size, etag = EXCLUDED.etag, md5 = EXCLUDED.md5`;

/**
 * Applies one group of marks of one kind (no two of which touch the same row) on `client`, fenced by the
 * worker id; returns the ids of the rows it applied to.
 */
async function applyGroup(
  query: (sql: string, values: unknown[]) => Promise<pg.QueryResult>,
  migration: string,
  owner: string | null,
  group: readonly Mark[],
): Promise<Set<number>> {
  const first = group[0]!;
  const fenced = owner === null ? 'other' : 'worker';
  const idsOf = async (sql: string, ids: number[]): Promise<number[]> =>
    (await query(sql, [migration, ids, owner])).rows.map((row) => Number((row as { id: number }).id));
  switch (first.kind) {
    case 'upload': {
      const held = new Set(await idsOf(HELD_IDS[fenced], group.map((mark) => mark.id)));
      const uploads = (group as Array<Extract<Mark, { kind: 'upload' }>>).filter((upload) => held.has(upload.id));
      if (uploads.length === 0) return held;
      const ids = uploads.map((upload) => upload.id);
      await query(FORGET_PARTS, [migration, ids]);
      await query(FORGET_UPLOADS, [migration, ids]);
      await query(INSERT_UPLOADS, [
        migration,
        ids,
        uploads.map((u) => u.destKey),
        uploads.map((u) => u.uploadId),
        uploads.map((u) => u.sourceEtag),
        uploads.map((u) => u.size),
        uploads.map((u) => u.partSize),
        uploads.map((u) => u.partCount),
        uploads.map((u) => u.stamp),
      ]);
      return held;
    }
    case 'part': {
      const held = new Set(await idsOf(HELD_IDS[fenced], group.map((mark) => mark.id)));
      const parts = (group as Array<Extract<Mark, { kind: 'part' }>>).filter((part) => held.has(part.id));
      if (parts.length > 0) {
        await query(UPSERT_PARTS, [
          migration,
          parts.map((p) => p.id),
          parts.map((p) => p.partNumber),
          parts.map((p) => p.size),
          parts.map((p) => p.etag),
          parts.map((p) => p.md5),
        ]);
      }
      return held;
    }
    case 'forget': {
      const ids = await idsOf(FORGETTABLE_IDS, group.map((mark) => mark.id));
      if (ids.length > 0) {
        await query(FORGET_PARTS, [migration, ids]);
        await query(FORGET_UPLOADS, [migration, ids]);
      }
      return new Set(ids);
    }
    default: {
      const marks = group as ObjectMark[];
      const kind = first.kind;
      const columns = MARKS[kind].columns.map((_, i) => marks.map((mark) => markValues(mark)[i]));
      const applied = new Set(
        (await query(MARK_SQL[fenced][kind], [migration, marks.map((mark) => mark.id), ...columns, owner])).rows.map((row) =>
          Number((row as { id: number }).id),
        ),
      );
      // A completed upload's record goes in the same transaction as the done mark (where it applied).
      const completed = marks.filter((mark) => mark.kind === 'done' && mark.completedUpload && applied.has(mark.id)).map((mark) => mark.id);
      if (completed.length > 0) {
        await query(FORGET_PARTS, [migration, completed]);
        await query(FORGET_UPLOADS, [migration, completed]);
      }
      return applied;
    }
  }
}

/**
 * Groups items into statements that one set-based statement each can apply, keeping what order matters:
 * the marks of one row apply in the order they were issued (a row's second mark goes into the next round:
 * an UPDATE ... FROM joins each row once), while marks of different rows commute, as do parts of one
 * upload with different numbers; within a round, all marks of one kind become one statement.
 */
function groupsOf<T extends { id: number }>(items: readonly T[], kindOf: (item: T) => string, partOf: (item: T) => number | undefined = () => undefined): T[][] {
  const rounds: Array<Map<string, T[]>> = [];
  // Per row: the last round of any of its items, and of its items other than parts; per part: its last round.
  const lastAny = new Map<number, number>();
  const lastWhole = new Map<number, number>();
  const lastPart = new Map<string, number>();
  for (const item of items) {
    const part = partOf(item);
    const round =
      part === undefined
        ? (lastAny.get(item.id) ?? -1) + 1
        : Math.max(lastWhole.get(item.id) ?? -1, lastPart.get(`${item.id}:${part}`) ?? -1) + 1;
    lastAny.set(item.id, Math.max(lastAny.get(item.id) ?? -1, round));
    if (part === undefined) lastWhole.set(item.id, round);
    else lastPart.set(`${item.id}:${part}`, round);
    const groups = (rounds[round] ??= new Map());
    const kind = kindOf(item);
    const group = groups.get(kind);
    if (group) group.push(item);
    else groups.set(kind, [item]);
  }
  return rounds.flatMap((groups) => [...groups.values()]);
}

/** Deadlock or serialization failure: the transaction was rolled back whole and may simply run again. */
const RETRYABLE = new Set(['40P01', '40001']);

type Queryable = pg.Pool | pg.PoolClient;

/** Runs one statement again (up to 5 times) when the server aborted it for a deadlock or a serialization conflict. */
async function retryingConflicts<T>(statement: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await statement();
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (!(code && RETRYABLE.has(code)) || attempt >= 5) throw error;
    }
  }
}

/** A database failure of the PostgreSQL state: StateStoreError (exit 1, caught as such), worded for a database. */
export class PgStateStoreError extends StateStoreError {
  constructor(location: string, reason: string, code: string | undefined) {
    super(location, reason, code);
    this.message =
      `The PostgreSQL state ${location} could not be written or read (${code ? `${code}: ` : ''}${reason}). ` +
      `No object was marked by the failed write. Fix the cause (the database server, the network, the role's ` +
      `rights) and run the same command again: it carries on from the last committed change.`;
  }
}

/**
 * The state store on PostgreSQL: the same tables, views and semantics as SqliteStore, for one migration of
 * a database that may hold several. Every method is one short transaction (or one statement); row marks
 * are grouped into one transaction per few milliseconds. Any database failure (connection lost, server
 * gone, rights) comes out as a StateStoreError with the server's SQLSTATE (or the socket's error code).
 */
export class PgStore implements StateStore {
  private lockHeld = false;
  /** Set by joinAsWorker: this process's worker id and lease length. */
  private worker: { id: string; leaseMs: number } | undefined;
  /** Where this worker's next claim starts (see claimPending): after `after`, for claims of `scope`. */
  private claimFloor: { scope: string; after: unknown[]; since: number } | undefined;
  private closed = false;
  private readonly marks: AsyncGroupCommit<Mark>;

  private constructor(
    readonly location: string,
    /** The --migration this store reads and writes; every query filters by it. */
    readonly migration: string,
    private readonly pool: pg.Pool,
    /** True when this open created the migration (a catalog that then fails may discard it). */
    readonly created: boolean,
  ) {
    this.marks = new AsyncGroupCommit<Mark>((units) => this.commitMarks(units));
  }

  /**
   * Connects, checks (and upgrades) the schema and finds the migration; `create` makes the schema and the
   * migration when they are missing. Connection failures are FatalErrors that say what to do.
   */
  static async open(url: string, options: PgOpenOptions): Promise<PgStore> {
    const env = options.env ?? {};
    const migration = checkMigrationName(options.migration);
    const target = parsePostgresUrl(url, env);
    const location = `${target.display} (migration "${migration}")`;
    const passwordSource = newPasswordSource(env);
    const config: pg.PoolConfig = {
      ...clientConfig(target, env, passwordSource),
      types,
      // status: a read-only session, so that nothing it runs can write (a schema upgrade says READ WRITE).
      ...(options.readonly ? { options: `${env.PGOPTIONS ?? ''} -c default_transaction_read_only=on`.trim() } : {}),
    };

    // The first connection is our own, not the pool's: one that fails (a refused password) must be closed
    // at once, and the pool would leave its socket open until the server gives up on it.
    const setup = new pg.Client(config);
    setup.on('error', () => undefined);
    try {
      await setup.connect();
    } catch (error) {
      await setup.end().catch(() => undefined);
      throw connectionError(error, target, passwordSource);
    }
    let created = false;
    try {
      await prepareSchema(setup, target, location, options);
      created = await findMigration(setup, target, migration, options);
    } catch (error) {
      if (error instanceof S3MigrateError) throw error;
      throw setupError(error, target);
    } finally {
      await setup.end().catch(() => undefined);
    }

    const pool = new pg.Pool({
      ...config,
      // Claims, grouped marks and the odd read run side by side; a fleet multiplies this by its workers.
      max: 3,
      idleTimeoutMillis: 30_000,
    });
    // A connection that breaks while idle, or between the queries of a transaction, must not take the
    // process down: the next query on it fails, and that failure is the one reported.
    pool.on('error', () => undefined);
    pool.on('connect', (client) => client.on('error', () => undefined));
    return new PgStore(location, migration, pool, created);
  }

  // ---- plumbing ----------------------------------------------------------------------------

  private stateError(error: unknown): unknown {
    if (error instanceof S3MigrateError) return error;
    let code = (error as { code?: string }).code;
    const message = (error as Error).message ?? String(error);
    // pg reports a connection the server dropped while it sat in the pool without a code of its own.
    if (typeof code !== 'string' && /Connection terminated/i.test(message)) code = 'ECONNRESET';
    // A connection pooler that hands each transaction another server session loses named prepared statements.
    const advice = code === '26000' || code === '42P05' ? `; ${PREPARED_STATEMENTS_ADVICE}` : '';
    return new PgStateStoreError(this.location, message + advice, typeof code === 'string' ? code : undefined);
  }

  /** Runs one unit of work; a database failure becomes a StateStoreError, our own errors pass through. */
  private async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw this.stateError(error);
    }
  }

  private query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    values: unknown[] = [],
    on: Queryable = this.pool,
  ): Promise<pg.QueryResult<R>> {
    return on.query<R>(sql, values);
  }

  /** A statement run often (see preparedStatement): parsed once per connection, its plan kept. */
  private queryPrepared<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    values: unknown[],
    on: Queryable = this.pool,
  ): Promise<pg.QueryResult<R>> {
    return on.query<R>(preparedStatement(sql, values));
  }

  /** One transaction on one connection; a deadlock or serialization failure runs it again (it left nothing). */
  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
    for (let attempt = 1; ; attempt += 1) {
      const client = await this.pool.connect();
      let broken: Error | undefined;
      try {
        await client.query(begin);
        const result = await work(client);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
        const code = (error as { code?: string }).code;
        if (!broken && code && RETRYABLE.has(code) && attempt < 5) continue;
        throw error;
      } finally {
        client.release(broken);
      }
    }
  }

  /** Serialises the migration's bookkeeping (lock, passes) against other processes: its row, locked. */
  private async lockMigrationRow(client: pg.PoolClient): Promise<void> {
    const found = await this.query('SELECT 1 FROM s3migrate.migrations WHERE name = $1 FOR NO KEY UPDATE', [this.migration], client);
    if (found.rowCount === 0) {
      throw new FatalError(`${this.location} no longer exists (its migration row was deleted while this command ran).`);
    }
  }

  private async getMeta(key: string, on: Queryable = this.pool): Promise<string | undefined> {
    const result = await this.query<{ value: string | null }>(
      'SELECT value FROM s3migrate.meta WHERE migration = $1 AND key = $2',
      [this.migration, key],
      on,
    );
    return result.rows[0]?.value ?? undefined;
  }

  private async allMeta(on: Queryable = this.pool): Promise<Map<string, string>> {
    const result = await this.query<{ key: string; value: string | null }>(
      'SELECT key, value FROM s3migrate.meta WHERE migration = $1',
      [this.migration],
      on,
    );
    return new Map(result.rows.filter((row) => row.value !== null).map((row) => [row.key, row.value!]));
  }

  private async setMeta(key: string, value: string, on: Queryable = this.pool): Promise<void> {
    await this.query(
      `INSERT INTO s3migrate.meta (migration, key, value) VALUES ($1, $2, $3)
       ON CONFLICT (migration, key) DO UPDATE SET value = EXCLUDED.value`,
      [this.migration, key, value],
      on,
    );
  }

  private async deleteMeta(key: string, on: Queryable = this.pool): Promise<void> {
    await this.query('DELETE FROM s3migrate.meta WHERE migration = $1 AND key = $2', [this.migration, key], on);
  }

  /**
   * Row marks, committed with the others queued within a few milliseconds. As a worker, a mark of a row
   * whose lease this worker lost applies nothing: LeaseLostError (unless `lenient`).
   */
  private async mark(...marks: Mark[]): Promise<void> {
    await this.markAll(marks, false);
  }

  private async markAll(marks: readonly Mark[], lenient: boolean): Promise<void> {
    let applied: boolean[];
    try {
      applied = await this.marks.runAll(marks);
    } catch (error) {
      throw this.stateError(error);
    }
    const lost = marks.find((_, i) => !applied[i]);
    if (lost && !lenient) throw new LeaseLostError(lost.id);
  }

  /** One batch of marks: one set-based statement per kind (and round), all in one transaction. */
  private async commitMarks(units: readonly Mark[]): Promise<boolean[]> {
    const groups = groupsOf(
      units,
      (mark) => mark.kind,
      (mark) => (mark.kind === 'part' ? mark.partNumber : undefined),
    );
    const owner = this.worker?.id ?? null;
    const applied = new Map<Mark, boolean>();
    await this.transaction(async (client) => {
      applied.clear();
      for (const group of groups) {
        const ids = await applyGroup((sql, values) => this.queryPrepared(sql, values, client), this.migration, owner, group);
        for (const mark of group) applied.set(mark, ids.has(mark.id));
      }
    });
    return units.map((unit) => applied.get(unit) ?? false);
  }

  /**
   * Releases our lock and closes the connections; safe to call twice, and never throws: it runs on the
   * way out of failed commands too, whose own error is the one to report.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.marks.flush();
      if (this.lockHeld) await this.releaseLockNow();
    } catch {
      // The database cannot be reached: the error that got us here says so.
    } finally {
      await this.pool.end().catch(() => undefined);
    }
  }

  /**
   * Undoes a migration this store created, when nothing was listed into it (a catalog that failed at once:
   * a missing bucket, refused credentials), so that the failed command leaves the database as it found it.
   * A migration with rows, or one another live process holds, is kept.
   */
  async discardIfCreated(): Promise<void> {
    if (!this.created || this.closed) return;
    await this.guard(() =>
      this.transaction(async (client) => {
        await this.query('SELECT 1 FROM s3migrate.migrations WHERE name = $1 FOR UPDATE', [this.migration], client);
        const rows = await this.query('SELECT 1 FROM s3migrate.objects WHERE migration = $1 LIMIT 1', [this.migration], client);
        if (rows.rowCount !== 0) return;
        const held = await this.getMeta('lock', client);
        if (held) {
          const owner = JSON.parse(held) as LockOwner;
          if (owner.pid !== process.pid || owner.host !== os.hostname()) return;
        }
        await this.query('DELETE FROM s3migrate.migrations WHERE name = $1', [this.migration], client);
        this.lockHeld = false;
      }),
    );
  }

  // ---- identity --------------------------------------------------------------------------

  async getSource(): Promise<EndpointLocation | undefined> {
    return this.guard(async () => locationFrom(await this.allMeta(), 'source'));
  }

  async setSource(source: EndpointLocation): Promise<void> {
    await this.guard(() =>
      this.transaction(async (client) => {
        await this.setLocation('source', source, client);
        await this.setMeta('created_at', now(), client);
      }),
    );
  }

  async getDestination(): Promise<EndpointLocation | undefined> {
    return this.guard(async () => locationFrom(await this.allMeta(), 'dest'));
  }

  async setDestination(dest: EndpointLocation): Promise<void> {
    await this.guard(() => this.transaction((client) => this.setLocation('dest', dest, client)));
  }

  private async setLocation(side: 'source' | 'dest', location: EndpointLocation, client: pg.PoolClient): Promise<void> {
    await this.setMeta(`${side}_endpoint`, location.endpoint, client);
    await this.setMeta(`${side}_bucket`, location.bucket, client);
    await this.setMeta(`${side}_prefix`, location.prefix, client);
  }

  // ---- the lock that keeps two writers (copy/catalog/verify) off one migration ------------

  /** Takes the migration for this process, or explains who holds it. A dead holder on this host is taken over. */
  async acquireLock(command: string): Promise<void> {
    const host = os.hostname();
    await this.guard(() =>
      this.transaction(async (client) => {
        await this.lockMigrationRow(client);
        const held = await this.getMeta('lock', client);
        if (held) {
          const owner = JSON.parse(held) as LockOwner;
          const stale = owner.host === host && (owner.pid === process.pid || !processAlive(owner.pid));
          if (!stale) throw new PgStateLockedError(this.location, this.migration, owner);
          // The holder died (kill -9, reboot): its run never finished.
          await this.query("UPDATE s3migrate.runs SET outcome = 'abandoned' WHERE migration = $1 AND outcome = 'running'", [this.migration], client);
        }
        // Copy workers at work hold leases: this command needs the migration alone.
        await this.expireDeadLocalWorkers();
        const leased = await this.query<{ rows: number; workers: number }>(
          `SELECT COUNT(*)::int AS rows, COUNT(DISTINCT lease_owner)::int AS workers FROM s3migrate.objects
           WHERE migration = $1 AND status = 'in_flight' AND lease_expires_at > ${NOW_MS}`,
          [this.migration],
          client,
        );
        if (leased.rows[0]!.rows > 0) throw new StateBusyError(this.location, command, leased.rows[0]!.workers);
        const owner: LockOwner = { pid: process.pid, host, command, since: now() };
        await this.setMeta('lock', JSON.stringify(owner), client);
      }),
    );
    this.lockHeld = true;
  }

  async releaseLock(): Promise<void> {
    await this.guard(() => this.releaseLockNow());
  }

  private async releaseLockNow(): Promise<void> {
    await this.transaction(async (client) => {
      const held = await this.getMeta('lock', client);
      if (held) {
        const owner = JSON.parse(held) as LockOwner;
        if (owner.pid === process.pid && owner.host === os.hostname()) await this.deleteMeta('lock', client);
      }
    });
    this.lockHeld = false;
  }

  // ---- runs ------------------------------------------------------------------------------

  async startRun(command: string, args: string): Promise<number> {
    return this.guard(async () => {
      const result = await this.query<{ id: number }>(
        'INSERT INTO s3migrate.runs (migration, command, arguments, started_at) VALUES ($1, $2, $3, $4) RETURNING id',
        [this.migration, command, args, now()],
      );
      return result.rows[0]!.id;
    });
  }

  async finishRun(
    id: number,
    outcome: 'completed' | 'interrupted' | 'failed',
    counts: { objectsDone?: number; objectsFailed?: number; bytesDone?: number; keysListed?: number; error?: string },
  ): Promise<void> {
    await this.guard(() =>
      this.query(
        `UPDATE s3migrate.runs SET finished_at = $3, outcome = $4, objects_done = $5, objects_failed = $6, bytes_done = $7,
           keys_listed = $8, error = $9 WHERE migration = $1 AND id = $2`,
        [
          this.migration,
          id,
          now(),
          outcome,
          counts.objectsDone ?? 0,
          counts.objectsFailed ?? 0,
          counts.bytesDone ?? 0,
          counts.keysListed ?? 0,
          counts.error ?? null,
        ],
      ),
    );
  }

  // ---- catalog ---------------------------------------------------------------------------

  /** Continues the interrupted pass of the same source, or starts a new one (which will reconcile every row). */
  async beginCatalogPass(source: CatalogSource): Promise<CatalogProgress> {
    return this.guard(() =>
      this.transaction(async (client): Promise<CatalogProgress> => {
        await this.lockMigrationRow(client);
        const meta = await this.allMeta(client);
        const pass = Number(meta.get('catalog_pass') ?? '0');
        let abandoned: CatalogSource | undefined;
        if (pass > 0 && meta.get('catalog_state') === 'listing') {
          const current = catalogSourceOf((key) => meta.get(key));
          if (sameCatalogSource(current, source)) {
            return {
              pass,
              resumed: true,
              source: current,
              parts: await this.partsOf(pass, client),
              nextFile: Number(meta.get('inventory_next_file') ?? '0'),
            };
          }
          abandoned = current;
        }
        const next = pass + 1;
        await this.query('DELETE FROM s3migrate.catalog_parts WHERE migration = $1', [this.migration], client);
        await this.setMeta('catalog_pass', String(next), client);
        await this.setMeta('catalog_state', 'listing', client);
        await this.setMeta('catalog_started_at', now(), client);
        for (const [key, value] of catalogSourceMeta(source)) {
          if (value === undefined) await this.deleteMeta(key, client);
          else await this.setMeta(key, value, client);
        }
        return { pass: next, resumed: false, source, parts: [], nextFile: 0, ...(abandoned ? { abandoned } : {}) };
      }),
    );
  }

  async catalogPass(): Promise<{ pass: number; complete: boolean; source: CatalogSource; nextFile: number } | undefined> {
    return this.guard(async () => {
      const meta = await this.allMeta();
      const pass = Number(meta.get('catalog_pass') ?? '0');
      if (pass === 0) return undefined;
      return {
        pass,
        complete: meta.get('catalog_state') === 'complete',
        source: catalogSourceOf((key) => meta.get(key)),
        nextFile: Number(meta.get('inventory_next_file') ?? '0'),
      };
    });
  }

  private async partsOf(pass: number, on: Queryable = this.pool): Promise<CatalogPart[]> {
    const result = await this.query<CatalogPart>(
      `SELECT part, start_after AS "startAfter", end_key AS "endKey", resume_after AS "resumeAfter", done, keys_listed AS "keysListed"
       FROM s3migrate.catalog_parts WHERE migration = $1 AND pass = $2 ORDER BY part`,
      [this.migration, pass],
      on,
    );
    return result.rows.map((row) => ({ ...row }));
  }

  async planCatalogParts(pass: number, ranges: ReadonlyArray<{ startAfter: string; endKey: string | null }>): Promise<CatalogPart[]> {
    return this.guard(() =>
      this.transaction(async (client) => {
        await this.lockMigrationRow(client);
        if (Number((await this.getMeta('catalog_pass', client)) ?? '0') !== pass) throw new Error(`catalog pass ${pass} is not the current one`);
        const existing = await this.partsOf(pass, client);
        if (existing.length > 0) return existing;
        await this.query(
          `INSERT INTO s3migrate.catalog_parts (migration, pass, part, start_after, end_key, resume_after)
           SELECT $1, $2, v.part, v.start_after, v.end_key, v.start_after
           FROM unnest($3::int[], $4::text[], $5::text[]) AS v(part, start_after, end_key)`,
          [this.migration, pass, ranges.map((_, i) => i + 1), ranges.map((r) => r.startAfter), ranges.map((r) => r.endKey)],
          client,
        );
        return this.partsOf(pass, client);
      }),
    );
  }

  async splitCatalogPart(pass: number, part: number, at: string): Promise<CatalogPart | undefined> {
    return this.guard(() =>
      this.transaction(async (client) => {
        await this.lockMigrationRow(client);
        // COLLATE "C": byte order, as S3 orders keys.
        const found = await this.query<{ endKey: string | null }>(
          `SELECT end_key AS "endKey" FROM s3migrate.catalog_parts
           WHERE migration = $1 AND pass = $2 AND part = $3 AND NOT done AND resume_after < $4 AND (end_key IS NULL OR $4 < end_key)
           FOR UPDATE`,
          [this.migration, pass, part, at],
          client,
        );
        const row = found.rows[0];
        if (row === undefined) return undefined;
        await this.query('UPDATE s3migrate.catalog_parts SET end_key = $4 WHERE migration = $1 AND pass = $2 AND part = $3', [this.migration, pass, part, at], client);
        const inserted = await this.query<{ part: number }>(
          `INSERT INTO s3migrate.catalog_parts (migration, pass, part, start_after, end_key, resume_after)
           SELECT $1, $2, COALESCE(MAX(part), 0) + 1, $3, $4, $3 FROM s3migrate.catalog_parts WHERE migration = $1 AND pass = $2
           RETURNING part`,
          [this.migration, pass, at, row.endKey],
          client,
        );
        return (await this.partsOf(pass, client)).find((p) => p.part === inserted.rows[0]!.part);
      }),
    );
  }

  /**
   * Stores one page and where it leaves its pass in ONE transaction, so a crash leaves either the whole
   * page with its resume point or neither. Changed keys go back to pending; unchanged rows keep their
   * status. One set-based statement per page.
   */
  async ingestPage(pass: number, objects: readonly ListedObject[], resume: PageResume, seen: readonly string[] = []): Promise<void> {
    // A key listed twice in one page (an inventory report can do that): the last one wins, as row by row.
    const byKey = new Map<string, ListedObject>();
    for (const object of objects) {
      byKey.delete(object.key);
      byKey.set(object.key, object);
    }
    const page = [...byKey.values()];
    const inventory = 'file' in resume;
    const values: unknown[] = [
      this.migration,
      page.map((o) => o.key),
      page.map((o) => o.size),
      page.map((o) => o.etag ?? null),
      page.map((o) => o.lastModified),
      page.map((o) => o.storageClass ?? null),
      pass,
      now(),
    ];
    const upsert = `INSERT INTO s3migrate.objects AS t
        (migration, key, size, etag, last_modified, storage_class, status, catalog_pass, listed_at, updated_at,
         change_kind, change_pass)
      SELECT $1, v.key, v.size, v.etag, v.last_modified, v.storage_class, 'pending', $7, $8, $8, 'new', $7 FROM v
      %WHERE%
      ON CONFLICT (migration, key) DO UPDATE SET
        change_kind = CASE WHEN t.status IN ('gone', 'deleted') THEN 'new' ELSE 'modified' END,
        change_pass = EXCLUDED.change_pass, deleted_at = NULL,
        status = 'pending', attempts = 0, error = NULL, evidence = NULL, verify_result = NULL,
        size = EXCLUDED.size, etag = EXCLUDED.etag, last_modified = EXCLUDED.last_modified,
        storage_class = EXCLUDED.storage_class, catalog_pass = EXCLUDED.catalog_pass,
        listed_at = EXCLUDED.listed_at, updated_at = EXCLUDED.updated_at`;
    const input = `v AS (SELECT * FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[])
        AS v(key, size, etag, last_modified, storage_class))`;
    // An inventory row never replaces what the state knows to be newer: a later version (listed after the
    // report was taken), or a gone verdict reached after it. Such rows are only stamped as seen.
    const newerThanInventory = `(o.last_modified > v.last_modified OR (o.status = 'gone' AND o.updated_at >= $9))`;
    const touched = `touched AS (
            UPDATE s3migrate.objects o SET catalog_pass = $7, listed_at = $8 FROM v
            WHERE o.migration = $1 AND o.key = v.key AND o.size = v.size AND o.etag IS NOT DISTINCT FROM v.etag
              AND o.last_modified = v.last_modified AND o.status NOT IN ('gone', 'changed', 'deleted')
              ${inventory ? `AND NOT ${newerThanInventory}` : ''}
            RETURNING o.key
          )`;
    let sql: string;
    if (inventory) {
      sql = `WITH ${input}, newer AS (
            UPDATE s3migrate.objects o SET catalog_pass = $7, listed_at = $8 FROM v
            WHERE o.migration = $1 AND o.key = v.key AND ${newerThanInventory}
            RETURNING o.key
          ), ${touched} ${upsert.replace('%WHERE%', 'WHERE v.key NOT IN (SELECT key FROM touched) AND v.key NOT IN (SELECT key FROM newer)')}`;
    } else if (pass === 1) {
      // A first listing pass only ever meets new keys (each part's resume point commits with its pages).
      sql = `WITH ${input} ${upsert.replace('%WHERE%', '')}`;
    } else {
      // Later passes first stamp unchanged rows (the bulk of a re-catalog: no indexed column is written);
      // new, changed, gone or changed-marked keys are rewritten whole by the upsert.
      sql = `WITH ${input}, ${touched} ${upsert.replace('%WHERE%', 'WHERE v.key NOT IN (SELECT key FROM touched)')}`;
    }
    await this.guard(() =>
      this.transaction(async (client) => {
        if (inventory) values.push((await this.getMeta('inventory_created_at', client)) ?? '');
        if (page.length > 0) await this.query(sql, values, client);
        // Keys a filtered pass listed outside its size or date bounds: seen (not gone), nothing recorded.
        if (seen.length > 0) {
          await this.query(
            'UPDATE s3migrate.objects SET catalog_pass = $2 WHERE migration = $1 AND key = ANY ($3::text[])',
            [this.migration, pass, [...seen]],
            client,
          );
        }
        if ('part' in resume) {
          const moved = await this.query(
            `UPDATE s3migrate.catalog_parts SET resume_after = $4, done = $5, keys_listed = keys_listed + $6
             WHERE migration = $1 AND pass = $2 AND part = $3`,
            [this.migration, pass, resume.part, resume.resumeAfter, resume.done, objects.length + seen.length],
            client,
          );
          if (moved.rowCount !== 1) throw new Error(`catalog pass ${pass} has no part ${resume.part}`);
        } else if (resume.done) {
          await this.setMeta('inventory_next_file', String(resume.file + 1), client);
        }
      }),
    );
  }

  /**
   * Ends a complete pass: rows it did not see (within its scope) are gone from the source (kept, marked
   * 'gone'); what the pass found is recorded in catalog_passes.
   */
  async finishCatalogPass(pass: number, scope?: ObjectFilter, scopeText?: string): Promise<{ gone: number }> {
    return this.guard(() =>
      this.transaction(async (client) => {
        const meta = await this.allMeta(client);
        const source = catalogSourceOf((key) => meta.get(key));
        // An inventory pass: only rows the report must have seen (see INVENTORY_GONE_MARGIN_MS).
        const before = source.kind === 'inventory' ? inventoryGoneBefore(source.createdAt) : null;
        const stamp = now();
        const where = whereOf(scope, 4);
        const result = await this.query(
          `UPDATE s3migrate.objects SET status = 'gone', updated_at = $2, change_kind = 'gone', change_pass = $3
           WHERE migration = $1 AND catalog_pass < $3 AND status NOT IN ('gone', 'deleted')
             AND ($4::text IS NULL OR last_modified < $4::text) AND ${where.sql}`,
          [this.migration, stamp, pass, before, ...where.values],
          client,
        );
        await this.query(
          `INSERT INTO s3migrate.catalog_passes (migration, pass, started_at, finished_at, scope, new_objects, new_bytes,
             modified_objects, modified_bytes, gone_objects, gone_bytes)
           SELECT $1, $2, $3, $4, $5,
             COUNT(*) FILTER (WHERE change_kind = 'new'), COALESCE(SUM(size) FILTER (WHERE change_kind = 'new'), 0),
             COUNT(*) FILTER (WHERE change_kind = 'modified'), COALESCE(SUM(size) FILTER (WHERE change_kind = 'modified'), 0),
             COUNT(*) FILTER (WHERE change_kind = 'gone'), COALESCE(SUM(size) FILTER (WHERE change_kind = 'gone'), 0)
           FROM s3migrate.objects WHERE migration = $1 AND change_pass = $2
           ON CONFLICT (migration, pass) DO UPDATE SET finished_at = EXCLUDED.finished_at, scope = EXCLUDED.scope,
             new_objects = EXCLUDED.new_objects, new_bytes = EXCLUDED.new_bytes, modified_objects = EXCLUDED.modified_objects,
             modified_bytes = EXCLUDED.modified_bytes, gone_objects = EXCLUDED.gone_objects, gone_bytes = EXCLUDED.gone_bytes`,
          [this.migration, pass, (await this.getMeta('catalog_started_at', client)) ?? null, stamp, scopeText ?? null],
          client,
        );
        await this.setMeta('catalog_state', 'complete', client);
        await this.setMeta('catalog_finished_at', now(), client);
        return { gone: result.rowCount ?? 0 };
      }),
    );
  }

  async lastCatalogPass(): Promise<CatalogPassDelta | undefined> {
    return this.guard(() => this.lastPassOn(this.pool));
  }

  private async lastPassOn(on: Queryable): Promise<CatalogPassDelta | undefined> {
    const row = (
      await this.query<PassRow>('SELECT * FROM s3migrate.catalog_passes WHERE migration = $1 ORDER BY pass DESC LIMIT 1', [this.migration], on)
    ).rows[0];
    return row ? passDelta(row) : undefined;
  }

  async catalogComplete(): Promise<boolean> {
    return this.guard(async () => (await this.getMeta('catalog_state')) === 'complete');
  }

  async countListed(): Promise<number> {
    return this.guard(async () => {
      const result = await this.query<{ n: number }>(
        'SELECT objects_total AS n FROM s3migrate.progress WHERE migration = $1',
        [this.migration],
      );
      return result.rows[0]!.n;
    });
  }

  // ---- copy ------------------------------------------------------------------------------

  async prepareCopy(order: SortOrder, filter?: ObjectFilter): Promise<void> {
    await this.guard(async () => {
      const built = await this.ensureSortIndex(order);
      await this.refreshStatistics(built);
      const where = whereOf(filter, 3);
      await this.transaction(async (client) => {
        // Failed rows get another chance on every new copy run; unproven rows are copied again.
        await this.query(
          `UPDATE s3migrate.objects SET status = 'pending', updated_at = $2
           WHERE migration = $1 AND status IN ('failed', 'unproven') AND $3::int IS NOT NULL AND ${where.sql}`,
          [this.migration, now(), 0, ...where.values],
          client,
        );
        // Archived objects cannot be read before a restore: skipped, in a state of their own.
        await this.query(
          `UPDATE s3migrate.objects SET status = 'archived', updated_at = $2
           WHERE migration = $1 AND status = 'pending' AND storage_class = ANY ($3::text[]) AND ${where.sql}`,
          [this.migration, now(), [...ARCHIVE_CLASSES], ...where.values],
          client,
        );
      });
    });
  }

  /**
   * Builds the index that serves this --sort order, if no earlier copy did: one sort over the catalog,
   * once per database (the index serves every migration). Workers starting together build it once.
   * Returns whether this call built it.
   */
  private async ensureSortIndex(order: SortOrder): Promise<boolean> {
    const { name, columns } = SORT_INDEXES[order];
    // Read from pg_class with the statement's own snapshot, not with to_regclass(): that one looks the
    // name up in the backend's catalog cache, which a transaction refreshes only when it starts or locks
    // a relation (an advisory lock does not). Waiting on the lock below while another worker built the
    // index, it would still say "missing", and CREATE INDEX then failed with 42P07 (already exists).
    const exists = async (on: Queryable): Promise<boolean> =>
      (
        await this.query<{ found: boolean }>(
          `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relname = $2) AS found`,
          [SCHEMA, name],
          on,
        )
      ).rows[0]!.found;
    if (await exists(this.pool)) return false;
    return this.transaction(async (client) => {
      await this.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK_KEY], client);
      if (await exists(client)) return false;
      await this.query(`CREATE INDEX ${name} ON ${SCHEMA}.objects ${columns} WHERE status = 'pending'`, [], client);
      return true;
    });
  }

  /**
   * The planner serves a claim from the order's partial index only when its statistics know how many rows
   * are pending. Right after a catalog (many new rows, a migration it has never seen) autovacuum may not
   * have analyzed the table yet, and a claim then walks the (migration, key) index past rows that are not
   * pending: the table is analyzed here when a tenth of it changed since the last analysis. One worker
   * does it; the others go on (best effort: ANALYZE needs the table's owner).
   */
  private async refreshStatistics(force: boolean): Promise<void> {
    const stale = async (): Promise<boolean> =>
      (
        await this.query<{ stale: boolean | null }>(
          `SELECT n_mod_since_analyze > 0.1 * GREATEST(n_live_tup, 1000) AS stale FROM pg_stat_user_tables
           WHERE relid = to_regclass($1)`,
          [`${SCHEMA}.objects`],
        )
      ).rows[0]?.stale === true;
    if (!force && !(await stale())) return;
    await this.transaction(async (client) => {
      const locked = await this.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS locked', [SCHEMA_LOCK_KEY + 1], client);
      if (locked.rows[0]!.locked) await this.query(`ANALYZE ${SCHEMA}.objects`, [], client);
    }).catch(() => undefined);
  }

  async inFlightRows(): Promise<ObjectRow[]> {
    return this.guard(async () => {
      const result = await this.query<ObjectRow>(
        `SELECT ${ROW_COLUMNS} FROM s3migrate.objects WHERE migration = $1 AND status = 'in_flight' ORDER BY key`,
        [this.migration],
      );
      return result.rows.map(objectRow);
    });
  }

  // ---- copy workers: claims with leases ----------------------------------------------------

  async joinAsWorker(leaseMs: number): Promise<string> {
    const id = newWorkerId();
    await this.guard(async () => {
      const held = await this.getMeta('lock');
      if (held) {
        const owner = JSON.parse(held) as LockOwner;
        const gone = owner.host === os.hostname() && !processAlive(owner.pid);
        if (!gone) throw new PgStateLockedError(this.location, this.migration, owner);
      }
    });
    this.worker = { id, leaseMs };
    return id;
  }

  async renewLeases(): Promise<number> {
    const worker = this.requireWorker();
    return this.guard(async () => {
      // The renewal and a batch of this worker's marks (commitMarks) run on two connections and would lock
      // the same rows in two orders: they deadlocked (40P01), and at 1,000,000 rows a mark batch lost five
      // times in a row and stopped its worker. So the renewal waits for no row: rows a mark holds are being
      // marked (done, failed...) and need no renewal; if that mark rolls back, the next renewal, a third of
      // the lease later, renews them.
      const result = await retryingConflicts(() =>
        this.queryPrepared(
          `UPDATE s3migrate.objects o SET lease_expires_at = ${NOW_MS} + $3
           FROM (SELECT id FROM s3migrate.objects WHERE migration = $1 AND status = 'in_flight' AND lease_owner = $2
                 FOR UPDATE SKIP LOCKED) AS held
           WHERE o.id = held.id`,
          [this.migration, worker.id, worker.leaseMs],
        ),
      );
      return result.rowCount ?? 0;
    });
  }

  async holdsLease(id: number, marginMs: number): Promise<boolean> {
    const worker = this.requireWorker();
    return this.guard(async () => {
      await this.marks.flush();
      const result = await this.query(
        `SELECT 1 FROM s3migrate.objects WHERE migration = $1 AND id = $2 AND status = 'in_flight'
           AND lease_owner = $3 AND lease_expires_at > ${NOW_MS} + $4`,
        [this.migration, id, worker.id, marginMs],
      );
      return (result.rowCount ?? 0) > 0;
    });
  }

  async liveLeases(): Promise<number> {
    return this.guard(async () => {
      await this.expireDeadLocalWorkers();
      const result = await this.query<{ n: number }>(
        `SELECT COUNT(*)::int AS n FROM s3migrate.objects WHERE migration = $1 AND status = 'in_flight'
           AND lease_expires_at > ${NOW_MS} AND lease_owner IS DISTINCT FROM $2`,
        [this.migration, this.worker?.id ?? null],
      );
      return result.rows[0]!.n;
    });
  }

  async takeExpired(limit: number): Promise<ObjectRow[]> {
    const worker = this.requireWorker();
    return this.guard(async () => {
      await this.expireDeadLocalWorkers();
      const result = await this.query<ObjectRow>(
        `WITH picked AS (
           SELECT id FROM s3migrate.objects
           WHERE migration = $1 AND status = 'in_flight' AND (lease_expires_at IS NULL OR lease_expires_at <= ${NOW_MS})
           ORDER BY key LIMIT $2 FOR UPDATE SKIP LOCKED
         ), taken AS (
           UPDATE s3migrate.objects o SET lease_owner = $3, lease_expires_at = ${NOW_MS} + $4
           WHERE o.migration = $1 AND o.id = ANY (ARRAY(SELECT id FROM picked))
           RETURNING o.id, o.key, o.size, o.etag, o.last_modified, o.attempts
         )
         SELECT ${ROW_COLUMNS} FROM taken ORDER BY key`,
        [this.migration, limit, worker.id, worker.leaseMs],
      );
      return result.rows.map(objectRow);
    });
  }

  /**
   * Leases held by workers of this host whose process is gone (kill -9, a crash) expire at once; workers
   * elsewhere keep theirs until they run out (this host cannot tell whether they live).
   */
  private async expireDeadLocalWorkers(): Promise<void> {
    const owners = await this.query<{ owner: string }>(
      `SELECT DISTINCT lease_owner AS owner FROM s3migrate.objects
       WHERE migration = $1 AND status = 'in_flight' AND lease_owner IS NOT NULL AND lease_expires_at > ${NOW_MS}`,
      [this.migration],
    );
    const dead = owners.rows.map((row) => row.owner).filter(deadLocalWorker);
    if (dead.length === 0) return;
    await this.query(
      `UPDATE s3migrate.objects SET lease_expires_at = 0 WHERE migration = $1 AND status = 'in_flight' AND lease_owner = ANY ($2::text[])`,
      [this.migration, dead],
    );
  }

  private requireWorker(): { id: string; leaseMs: number } {
    if (!this.worker) throw new Error('joinAsWorker() first');
    return this.worker;
  }

  /**
   * Claims the next `limit` pending rows in the chosen order in one statement. FOR UPDATE SKIP LOCKED: rows
   * another worker's claim is taking right now are skipped, so no two claims ever return the same row.
   */
  async claimPending(order: SortOrder, limit: number, filter?: ObjectFilter): Promise<ObjectRow[]> {
    const where = whereOf(filter, 4);
    // A claim leaves its rows' entries in the order's pending index dead until VACUUM, and a claim from the
    // head of the order walks past every one of them (540 index pages a claim halfway through 300,000
    // rows). So a claim starts after this worker's last claimed row, its floor: what lies before it was
    // claimed already, by this worker or by others. Rows that become pending behind a floor get their turn
    // at the next claim from the head: every CLAIM_FLOOR_MS, and whenever a claim from the floor finds
    // nothing, so that "nothing pending" is only ever concluded from the head.
    const scope = `${order} ${where.sql} ${JSON.stringify(where.values)}`;
    const floor = this.claimFloor;
    const fromFloor = floor !== undefined && floor.scope === scope && Date.now() - floor.since < CLAIM_FLOOR_MS;
    return this.guard(async () => {
      const claim = async (after: unknown[] | undefined): Promise<ObjectRow[]> => {
        const floorAt = after === undefined ? undefined : 5 + where.values.length;
        const result = await this.queryPrepared<ObjectRow>(claimSql(order, limit, where.sql, floorAt), [
          this.migration,
          now(),
          this.worker?.id ?? null,
          this.worker?.leaseMs ?? 0,
          ...where.values,
          ...(after ?? []),
        ]);
        return result.rows.map(objectRow);
      };
      let rows = fromFloor ? await claim(floor.after) : [];
      const fromHead = !fromFloor || rows.length === 0;
      if (fromHead) rows = await claim(undefined);
      const last = rows[rows.length - 1];
      this.claimFloor =
        last === undefined
          ? undefined
          : { scope, after: floorValues(order, last), since: fromHead ? Date.now() : floor!.since };
      return rows;
    });
  }

  async releaseClaims(ids: readonly number[]): Promise<void> {
    // Released rows lie behind this worker's floor: its next claim starts at the head again.
    this.claimFloor = undefined;
    const stamp = now();
    // Rows lost to another worker meanwhile are simply not released: they are that worker's.
    await this.markAll(ids.map((id): Mark => ({ kind: 'release', id, stamp })), true);
  }

  async markDone(id: number, result: CopyResult): Promise<void> {
    await this.mark({
      kind: 'done',
      id,
      destKey: result.destKey,
      destEtag: result.destEtag ?? null,
      evidence: result.evidence,
      method: result.method ?? 'stream',
      completedUpload: result.completedUpload === true,
      stamp: now(),
    });
  }

  async markFailed(id: number, error: string): Promise<void> {
    await this.mark({ kind: 'failed', id, error, stamp: now() });
  }

  async markChanged(id: number, reason: string): Promise<void> {
    await this.mark({ kind: 'changed', id, error: reason, stamp: now() });
  }

  async markGone(id: number): Promise<void> {
    await this.mark({ kind: 'gone', id, stamp: now() });
  }

  async markPending(id: number, refundAttempt: boolean): Promise<void> {
    this.claimFloor = undefined; // as releaseClaims
    await this.mark({ kind: 'pending', id, refund: refundAttempt ? 1 : 0, stamp: now() });
  }

  async recordRetry(id: number, error: string): Promise<void> {
    await this.mark({ kind: 'retry', id, error, stamp: now() });
  }

  // ---- multipart uploads kept across runs ------------------------------------------------

  async recordUpload(upload: Omit<RecordedUpload, 'parts' | 'startedAt'>): Promise<void> {
    await this.mark({
      kind: 'upload',
      id: upload.objectId,
      destKey: upload.destKey,
      uploadId: upload.uploadId,
      sourceEtag: upload.sourceEtag,
      size: upload.size,
      partSize: upload.partSize,
      partCount: upload.partCount,
      stamp: now(),
    });
  }

  async recordPart(objectId: number, part: RecordedPart): Promise<void> {
    await this.mark({ kind: 'part', id: objectId, partNumber: part.partNumber, size: part.size, etag: part.etag, md5: part.md5 });
  }

  async uploadOf(objectId: number): Promise<RecordedUpload | undefined> {
    return this.guard(async () => {
      await this.marks.flush();
      const upload = (
        await this.query<Omit<RecordedUpload, 'parts'>>(
          `SELECT ${UPLOAD_COLUMNS} FROM s3migrate.uploads WHERE migration = $1 AND object_id = $2`,
          [this.migration, objectId],
        )
      ).rows[0];
      if (!upload) return undefined;
      const parts = (
        await this.query<RecordedPart>(
          `SELECT part_number AS "partNumber", size, etag, md5 FROM s3migrate.parts
           WHERE migration = $1 AND object_id = $2 ORDER BY part_number`,
          [this.migration, objectId],
        )
      ).rows.map((part) => ({ partNumber: part.partNumber, size: part.size, etag: part.etag, md5: part.md5 }));
      return { ...uploadFields(upload), parts };
    });
  }

  async forgetUpload(objectId: number): Promise<void> {
    await this.mark({ kind: 'forget', id: objectId });
  }

  async recordedUploads(): Promise<Array<Omit<RecordedUpload, 'parts'> & { key: string }>> {
    return this.guard(async () => {
      await this.marks.flush();
      const rows = (
        await this.query<Omit<RecordedUpload, 'parts'> & { key: string }>(
          `SELECT o.key, u.object_id AS "objectId", u.dest_key AS "destKey", u.upload_id AS "uploadId",
             u.source_etag AS "sourceEtag", u.size, u.part_size AS "partSize", u.part_count AS "partCount", u.started_at AS "startedAt"
           FROM s3migrate.uploads u JOIN s3migrate.objects o ON o.id = u.object_id
           WHERE u.migration = $1 ORDER BY o.key`,
          [this.migration],
        )
      ).rows;
      return rows.map((row) => ({ key: row.key, ...uploadFields(row) }));
    });
  }

  async outcomeCounts(filter?: ObjectFilter): Promise<OutcomeCounts> {
    const where = whereOf(filter, 1);
    return this.guard(async () => {
      await this.marks.flush();
      const counts: OutcomeCounts = { failed: 0, changed: 0, gone: 0, unproven: 0, archived: 0 };
      const result = await this.query<{ status: keyof OutcomeCounts; n: number }>(
        filter === undefined
          ? `SELECT status, objects AS n FROM s3migrate.status_summary
             WHERE migration = $1 AND status IN ('failed', 'changed', 'gone', 'unproven', 'archived')`
          : `SELECT status, COUNT(*)::int AS n FROM s3migrate.objects
             WHERE migration = $1 AND status IN ('failed', 'changed', 'gone', 'unproven', 'archived') AND ${where.sql} GROUP BY status`,
        filter === undefined ? [this.migration] : [this.migration, ...where.values],
      );
      for (const row of result.rows) counts[row.status] = row.n;
      return counts;
    });
  }

  // ---- plan, selection and cut-over --------------------------------------------------------

  async planGroups(filter: ObjectFilter | undefined, multipartThreshold: number): Promise<PlanGroupRow[]> {
    const where = whereOf(filter, 2);
    return this.guard(async () => {
      const result = await this.query<PlanGroupRow>(
        `SELECT storage_class AS "storageClass", CASE WHEN size <= $2 THEN NULL ELSE size END AS size,
           COUNT(*)::bigint AS count, COALESCE(SUM(size), 0)::bigint AS bytes
         FROM s3migrate.objects
         WHERE migration = $1 AND status IN ('pending', 'failed', 'unproven', 'archived') AND ${where.sql}
         GROUP BY 1, 2 ORDER BY 1 NULLS FIRST, 2 NULLS FIRST`,
        [this.migration, multipartThreshold, ...where.values],
      );
      return result.rows.map((row) => ({ storageClass: row.storageClass, size: row.size, count: row.count, bytes: row.bytes }));
    });
  }

  async selectionCounts(filter: ObjectFilter | undefined): Promise<StatusCount[]> {
    const where = whereOf(filter, 1);
    return this.guard(async () => {
      const result = await this.query<StatusCount>(
        `SELECT status, COUNT(*)::bigint AS objects, COALESCE(SUM(size), 0)::bigint AS bytes FROM s3migrate.objects
         WHERE migration = $1 AND ${where.sql} GROUP BY status ORDER BY status`,
        [this.migration, ...where.values],
      );
      return result.rows.map((row) => ({ status: row.status, objects: row.objects, bytes: row.bytes }));
    });
  }

  async measuredRate(): Promise<MeasuredRate | undefined> {
    return this.guard(async () => {
      const result = await this.query<{ objects: number; bytes: number; startedAt: string; finishedAt: string }>(
        `SELECT objects_done AS objects, bytes_done AS bytes, started_at AS "startedAt", finished_at AS "finishedAt"
         FROM s3migrate.runs WHERE migration = $1 AND command = 'copy' AND finished_at IS NOT NULL AND objects_done > 0
         ORDER BY id DESC LIMIT 5`,
        [this.migration],
      );
      return rateOf(result.rows);
    });
  }

  async deletionCandidates(filter?: ObjectFilter): Promise<DeletionCandidate[]> {
    const where = whereOf(filter, 1);
    return this.guard(async () => {
      await this.marks.flush();
      const result = await this.query<DeletionCandidate>(
        `SELECT id, key, size, dest_key AS "destKey", dest_etag AS "destEtag" FROM s3migrate.objects
         WHERE migration = $1 AND status = 'gone' AND dest_etag IS NOT NULL AND dest_key IS NOT NULL
           AND copied_at IS NOT NULL AND ${where.sql}
         ORDER BY key`,
        [this.migration, ...where.values],
      );
      return result.rows.map((row) => ({ id: row.id, key: row.key, size: row.size, destKey: row.destKey, destEtag: row.destEtag }));
    });
  }

  async markDeleted(id: number): Promise<void> {
    const stamp = now();
    await this.guard(() =>
      this.query(
        `UPDATE s3migrate.objects SET status = 'deleted', deleted_at = $3, error = NULL, updated_at = $3
         WHERE migration = $1 AND id = $2 AND status = 'gone'`,
        [this.migration, id, stamp],
      ),
    );
  }

  async noteNotDeleted(id: number, reason: string): Promise<void> {
    await this.guard(() =>
      this.query(
        "UPDATE s3migrate.objects SET error = $3, updated_at = $4 WHERE migration = $1 AND id = $2 AND status = 'gone'",
        [this.migration, id, reason, now()],
      ),
    );
  }

  // ---- verify ----------------------------------------------------------------------------

  async beginVerifyPass(): Promise<number> {
    return this.guard(() =>
      this.transaction(async (client) => {
        await this.lockMigrationRow(client);
        const pass = Number((await this.getMeta('verify_pass', client)) ?? '0') + 1;
        await this.setMeta('verify_pass', String(pass), client);
        return pass;
      }),
    );
  }

  async rowByKey(key: string): Promise<VerifyRow | undefined> {
    // Keys are unique within a migration: the one row found, if any.
    return (await this.rowsByKeys([key])).values().next().value;
  }

  async rowsByKeys(keys: readonly string[]): Promise<Map<string, VerifyRow>> {
    return this.guard(async () => {
      const found = new Map<string, VerifyRow>();
      if (keys.length === 0) return found;
      // One round trip for the page, not one per key.
      const result = await this.query<VerifyRow>(
        `SELECT id, key, size, etag, status, dest_etag AS "destEtag", evidence
         FROM s3migrate.objects WHERE migration = $1 AND key = ANY($2::text[]) AND status NOT IN ('gone', 'deleted')`,
        [this.migration, keys],
      );
      for (const row of result.rows) {
        found.set(row.key, { id: row.id, key: row.key, size: row.size, etag: row.etag, status: row.status, destEtag: row.destEtag, evidence: row.evidence });
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
    if (results.length === 0) return;
    const stamp = now();
    const sql = `UPDATE s3migrate.objects o SET verify_result = v.result, verify_pass = $2, verified_at = $3,
        status = CASE
          WHEN v.result = 'ok' AND v.evidence IS NOT NULL AND o.status = 'unproven' THEN 'done'
          WHEN v.result IN ('ok', 'unproven') THEN o.status
          WHEN o.status IN ('done', 'unproven') THEN 'pending'
          ELSE o.status END,
        evidence = CASE WHEN v.result = 'ok' AND v.evidence IS NOT NULL THEN v.evidence ELSE o.evidence END,
        dest_etag = CASE WHEN v.result = 'ok' AND v.dest_etag IS NOT NULL THEN v.dest_etag ELSE o.dest_etag END,
        updated_at = $3
      FROM unnest($4::bigint[], $5::text[], $6::text[], $7::text[]) AS v(id, result, evidence, dest_etag)
      WHERE o.migration = $1 AND o.id = v.id`;
    await this.guard(() =>
      this.transaction(async (client) => {
        for (const run of groupsOf(results, () => 'finding')) {
          await this.query(
            sql,
            [
              this.migration,
              pass,
              stamp,
              run.map((f) => f.id),
              run.map((f) => f.result),
              run.map((f) => f.evidence ?? null),
              run.map((f) => f.destEtag ?? null),
            ],
            client,
          );
        }
      }),
    );
  }

  /** Rows the destination listing did not show: 'missing' when we had copied them, else 'not-copied'. */
  async finishVerifyPass(pass: number): Promise<void> {
    const stamp = now();
    await this.guard(() =>
      this.query(
        `UPDATE s3migrate.objects SET
           verify_result = CASE WHEN status IN ('done', 'unproven') THEN 'missing' ELSE 'not-copied' END,
           status = CASE WHEN status IN ('done', 'unproven') THEN 'pending' ELSE status END,
           verify_pass = $2, verified_at = $3, updated_at = $3
         WHERE migration = $1 AND status NOT IN ('gone', 'deleted') AND (verify_pass IS NULL OR verify_pass <> $2)`,
        [this.migration, pass, stamp],
      ),
    );
  }

  /** Every object the last verify found wrong, in key order, a page at a time. */
  async *verifyProblems(): AsyncGenerator<{ key: string; size: number; result: string }> {
    let after = '';
    for (;;) {
      const rows = await this.guard(
        async () =>
          (
            await this.query<{ key: string; size: number; result: string }>(
              `SELECT key, size, verify_result AS result FROM s3migrate.objects
               WHERE migration = $1 AND verify_result IS NOT NULL AND verify_result <> 'ok' AND status NOT IN ('gone', 'deleted') AND key > $2
               ORDER BY key LIMIT 500`,
              [this.migration, after],
            )
          ).rows,
      );
      if (rows.length === 0) return;
      for (const row of rows) yield { key: row.key, size: row.size, result: row.result };
      after = rows[rows.length - 1]!.key;
    }
  }

  async verifyResultCounts(): Promise<Array<{ result: string; objects: number }>> {
    return this.guard(() => this.verifyResultCountsOn(this.pool));
  }

  private async verifyResultCountsOn(on: Queryable): Promise<Array<{ result: string; objects: number }>> {
    const result = await this.query<{ result: string; objects: number }>(
      'SELECT result, objects FROM s3migrate.verify_summary WHERE migration = $1 ORDER BY result',
      [this.migration],
      on,
    );
    return result.rows.map((row) => ({ result: row.result, objects: row.objects }));
  }

  // ---- status ----------------------------------------------------------------------------

  /** The views' numbers for this migration, from one snapshot. */
  async summary(recentErrorLimit = 5): Promise<StateSummary> {
    return this.guard(async () => {
      await this.marks.flush();
      return this.transaction(async (client) => {
        const m = [this.migration];
        const counts = (
          await this.query<StatusCount>('SELECT status, objects, bytes FROM s3migrate.status_summary WHERE migration = $1 ORDER BY status', m, client)
        ).rows.map((row) => ({ status: row.status, objects: row.objects, bytes: row.bytes }));
        const progress = (
          await this.query<{ objectsTotal: number; objectsDone: number; bytesTotal: number; bytesDone: number }>(
            `SELECT objects_total AS "objectsTotal", objects_done AS "objectsDone", bytes_total AS "bytesTotal",
               bytes_done AS "bytesDone" FROM s3migrate.progress WHERE migration = $1`,
            m,
            client,
          )
        ).rows[0] ?? { objectsTotal: 0, objectsDone: 0, bytesTotal: 0, bytesDone: 0 };
        const evidenceCounts = (
          await this.query<{ evidence: string | null; objects: number }>(
            'SELECT evidence, objects FROM s3migrate.evidence_summary WHERE migration = $1 ORDER BY evidence NULLS FIRST',
            m,
            client,
          )
        ).rows;
        const recentErrors = (
          await this.query<StateSummary['recentErrors'][number]>(
            `SELECT key, attempts, error, updated_at AS "updatedAt" FROM s3migrate.objects
             WHERE migration = $1 AND error IS NOT NULL AND status IN ('failed', 'changed', 'pending', 'in_flight')
             ORDER BY updated_at DESC LIMIT $2`,
            [this.migration, recentErrorLimit],
            client,
          )
        ).rows.map((row) => ({ key: row.key, attempts: row.attempts, error: row.error, updatedAt: row.updatedAt }));
        const lastRun = (
          await this.query<{ command: string; startedAt: string; finishedAt: string | null; outcome: string }>(
            `SELECT command, started_at AS "startedAt", finished_at AS "finishedAt", outcome FROM s3migrate.runs
             WHERE migration = $1 ORDER BY id DESC LIMIT 1`,
            m,
            client,
          )
        ).rows[0];
        const uploads = (
          await this.query<{ count: number; bytesDone: number }>(
            'SELECT COUNT(*) AS count, COALESCE(SUM(bytes_done), 0)::bigint AS "bytesDone" FROM s3migrate.open_uploads WHERE migration = $1',
            m,
            client,
          )
        ).rows[0]!;
        const uploadSample = (
          await this.query<OpenUpload>(
            `SELECT key, dest_key AS "destKey", upload_id AS "uploadId", size, parts_done AS "partsDone", part_count AS "partCount",
               bytes_done AS "bytesDone", started_at AS "startedAt" FROM s3migrate.open_uploads WHERE migration = $1 ORDER BY key LIMIT 20`,
            m,
            client,
          )
        ).rows.map((u) => ({
          key: u.key,
          destKey: u.destKey,
          uploadId: u.uploadId,
          size: u.size,
          partsDone: u.partsDone,
          partCount: u.partCount,
          bytesDone: u.bytesDone,
          startedAt: u.startedAt,
        }));
        const verifyResults = await this.verifyResultCountsOn(client);
        const lastCatalogPass = await this.lastPassOn(client);
        const meta = await this.allMeta(client);
        const partCounts = (
          await this.query<{ parts: number; partsDone: number }>(
            `SELECT COUNT(*)::int AS parts, COUNT(*) FILTER (WHERE done)::int AS "partsDone" FROM s3migrate.catalog_parts
             WHERE migration = $1 AND pass = $2`,
            [this.migration, Number(meta.get('catalog_pass') ?? '0')],
            client,
          )
        ).rows[0]!;
        return {
          source: locationFrom(meta, 'source'),
          catalogState: meta.get('catalog_state'),
          catalogStartedAt: meta.get('catalog_started_at'),
          catalogFinishedAt: meta.get('catalog_finished_at'),
          catalogSource: catalogSourceSummary((key) => meta.get(key), () => partCounts),
          counts,
          objectsTotal: progress.objectsTotal,
          objectsDone: progress.objectsDone,
          bytesTotal: progress.bytesTotal,
          bytesDone: progress.bytesDone,
          evidenceCounts: evidenceCounts.map((v) => ({ evidence: v.evidence ?? 'none', objects: v.objects })),
          verifyResults,
          recentErrors,
          openUploads: { count: uploads.count, bytesDone: uploads.bytesDone, sample: uploadSample },
          lastRun: lastRun
            ? { command: lastRun.command, startedAt: lastRun.startedAt, finishedAt: lastRun.finishedAt ?? undefined, outcome: lastRun.outcome }
            : undefined,
          lastCatalogPass,
        };
      }, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    });
  }
}

/** A row as the engine needs it, its fields in SqliteStore's order. */
function objectRow(row: ObjectRow): ObjectRow {
  return { id: row.id, key: row.key, size: row.size, etag: row.etag, lastModified: row.lastModified, attempts: row.attempts };
}

/** An upload record's fields, in SqliteStore's order. */
function uploadFields(row: Omit<RecordedUpload, 'parts'>): Omit<RecordedUpload, 'parts'> {
  return {
    objectId: row.objectId,
    destKey: row.destKey,
    uploadId: row.uploadId,
    sourceEtag: row.sourceEtag,
    size: row.size,
    partSize: row.partSize,
    partCount: row.partCount,
    startedAt: row.startedAt,
  };
}

/** A location kept in meta as `<side>_endpoint`, `<side>_bucket`, `<side>_prefix`. */
function locationFrom(meta: Map<string, string>, side: 'source' | 'dest'): EndpointLocation | undefined {
  const bucket = meta.get(`${side}_bucket`);
  if (bucket === undefined) return undefined;
  return { endpoint: meta.get(`${side}_endpoint`) ?? '', bucket, prefix: meta.get(`${side}_prefix`) ?? '' };
}

// ---- opening: schema and migration -------------------------------------------------------

/**
 * Checks that the database is one we may use and its schema one we can read, then upgrades it (forward
 * only, in one transaction, under an advisory lock so that workers starting together upgrade once). A
 * schema named s3migrate that is not ours, or one of a newer s3migrate, is refused and left untouched.
 */
async function prepareSchema(client: pg.ClientBase, target: PgTarget, location: string, options: PgOpenOptions): Promise<void> {
  const encoding = (await client.query<{ encoding: string }>("SELECT current_setting('server_encoding') AS encoding")).rows[0]!.encoding;
  if (encoding !== 'UTF8') {
    throw new FatalError(
      `The database "${target.database}" on ${target.host}:${target.port} uses the encoding ${encoding}; s3migrate needs UTF8 ` +
        `(S3 keys are UTF-8). Create one with: CREATE DATABASE ... ENCODING 'UTF8' TEMPLATE template0`,
    );
  }
  const inspect = async (): Promise<{ schema: boolean; version: number | undefined; foreign: boolean }> => {
    const found = (
      await client.query<{ schema: boolean; versioned: boolean; relations: number }>(
        `SELECT to_regnamespace($1) IS NOT NULL AS schema, to_regclass($2) IS NOT NULL AS versioned,
           (SELECT COUNT(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1) AS relations`,
        [SCHEMA, `${SCHEMA}.schema_version`],
      )
    ).rows[0]!;
    if (!found.versioned) return { schema: found.schema, version: undefined, foreign: found.relations > 0 };
    const rows = (await client.query<{ application: string; version: number }>(`SELECT application, version FROM ${SCHEMA}.schema_version`)).rows;
    const ours = rows.length === 1 && rows[0]!.application === APPLICATION;
    return { schema: true, version: ours ? rows[0]!.version : undefined, foreign: !ours };
  };
  const notOurs = (): FatalError =>
    new FatalError(
      `The database "${target.database}" on ${target.host}:${target.port} has a schema "${SCHEMA}" that s3migrate did not make; ` +
        `it was left untouched. Use another database for the s3migrate state.`,
    );
  const check = (state: { version: number | undefined; foreign: boolean }): void => {
    if (state.foreign) throw notOurs();
    if (state.version !== undefined && state.version > SCHEMA_VERSION) {
      throw new FatalError(
        `${location} was written by a newer s3migrate (schema version ${state.version}, this one reads up to ` +
          `${SCHEMA_VERSION}); it was left untouched. Upgrade s3migrate to continue with it.`,
      );
    }
  };

  let state = await inspect();
  check(state);
  if (state.version === SCHEMA_VERSION) return;
  if (state.version === undefined && !options.create) throw noState(target, options.migration);

  await client.query('BEGIN READ WRITE');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK_KEY]);
    state = await inspect(); // another process may have upgraded it meanwhile
    check(state);
    if (state.version !== SCHEMA_VERSION) {
      if (!state.schema) await client.query(`CREATE SCHEMA ${SCHEMA}`);
      if (state.version === undefined) {
        await client.query(`CREATE TABLE ${SCHEMA}.schema_version (
          application TEXT NOT NULL, version INTEGER NOT NULL, upgraded_at TEXT NOT NULL)`);
        await client.query(`INSERT INTO ${SCHEMA}.schema_version VALUES ($1, 0, $2)`, [APPLICATION, now()]);
      }
      for (let version = state.version ?? 0; version < SCHEMA_VERSION; version += 1) {
        await client.query(MIGRATIONS[version]!);
      }
      await client.query(`UPDATE ${SCHEMA}.schema_version SET version = $1, upgraded_at = $2`, [SCHEMA_VERSION, now()]);
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    if ((error as { code?: string }).code === '42501') {
      throw new FatalError(
        `User "${target.user}" may not create the s3migrate schema in database "${target.database}" (42501: ${(error as Error).message}). ` +
          `Use a database the user owns, or have its owner run: CREATE SCHEMA ${SCHEMA} AUTHORIZATION "${target.user}"`,
      );
    }
    throw error;
  }
}

/** Finds the migration, or creates it (catalog). Returns whether this call created it. */
async function findMigration(client: pg.ClientBase, target: PgTarget, migration: string, options: PgOpenOptions): Promise<boolean> {
  const found = await client.query('SELECT 1 FROM s3migrate.migrations WHERE name = $1', [migration]);
  if (found.rowCount !== 0) return false;
  if (!options.create) {
    const others = (await client.query<{ name: string }>('SELECT name FROM s3migrate.migrations ORDER BY name LIMIT 20')).rows;
    throw noState(target, migration, others.map((row) => row.name));
  }
  const inserted = await client.query(
    'INSERT INTO s3migrate.migrations (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING',
    [migration, now()],
  );
  return inserted.rowCount === 1;
}

function noState(target: PgTarget, migration: string, others: string[] = []): FatalError {
  const holds = others.length > 0 ? ` (it holds: ${others.join(', ')})` : '';
  return new FatalError(
    `No migration "${migration}" in the PostgreSQL state ${target.display}${holds}. ` +
      `Run \`s3migrate catalog --from s3://BUCKET --state ${target.display} --migration ${migration}\` first.`,
  );
}

function setupError(error: unknown, target: PgTarget): FatalError {
  const code = (error as { code?: string }).code;
  return new FatalError(
    `Cannot use the PostgreSQL state ${target.display}: ${code ? `${code}: ` : ''}${(error as Error).message ?? String(error)}`,
  );
}

/** Another live process holds the migration. */
export class PgStateLockedError extends S3MigrateError {
  constructor(location: string, migration: string, owner: LockOwner) {
    super(
      'fatal',
      `${location} is in use by \`s3migrate ${owner.command}\` (pid ${owner.pid} on ${owner.host}, ` +
        `since ${owner.since}). Wait for it to finish or stop it; only one command may write a migration. ` +
        `If that process is gone, run: psql -c "DELETE FROM s3migrate.meta WHERE migration = '${migration}' AND key = 'lock'"`,
    );
    this.name = 'StateLockedError';
  }
}
