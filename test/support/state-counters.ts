// What `status` reads (objects and bytes per status, per evidence of done rows, per verify result of
// rows not gone or deleted: the summary views over the counters) must equal a full scan of the rows at
// every moment. Checked after every CLI
// command the tests run (test/support/cli.ts), on SQLite files and PostgreSQL databases alike.
import fs from 'node:fs';
import Database from 'better-sqlite3';
import pg from 'pg';
import { clientConfig, newPasswordSource, parsePostgresUrl } from '../../src/state/postgres/connection.js';

type Counted = Array<{ migration: string; kind: string; value: string; objects: number; bytes: number }>;

// What status reads: the three summary views, each as (kind, value, objects, bytes).
const VIEWS = (schema: string, migration: string): string => `
  SELECT ${migration} AS migration, 'status' AS kind, status AS value, objects, bytes FROM ${schema}status_summary
  UNION ALL SELECT ${migration}, 'evidence', evidence, objects, bytes FROM ${schema}evidence_summary
  UNION ALL SELECT ${migration}, 'verify', result, objects, bytes FROM ${schema}verify_summary`;

// The same three groupings by a scan of the rows; zero groups left out on both sides.
const SCAN = (objects: string, migration: string): string => `
  SELECT ${migration} AS migration, kind, value, COUNT(*) AS objects, COALESCE(SUM(size), 0) AS bytes FROM (
    SELECT ${migration === 'migration' ? 'migration, ' : ''}'status' AS kind, status AS value, size FROM ${objects}
    UNION ALL SELECT ${migration === 'migration' ? 'migration, ' : ''}'evidence', COALESCE(evidence, 'none'), size FROM ${objects} WHERE status = 'done'
    UNION ALL SELECT ${migration === 'migration' ? 'migration, ' : ''}'verify', COALESCE(verify_result, 'not-verified'), size FROM ${objects} WHERE status NOT IN ('gone', 'deleted')
  ) AS d GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`;

function sorted(rows: Counted): Counted {
  return rows
    .map((row) => ({ ...row, objects: Number(row.objects), bytes: Number(row.bytes) }))
    .filter((row) => row.objects !== 0 || row.bytes !== 0)
    .sort((a, b) => `${a.migration}\0${a.kind}\0${a.value}`.localeCompare(`${b.migration}\0${b.kind}\0${b.value}`));
}

/** Throws when a SQLite state file's counters differ from a scan; skips files without counters. */
export function checkSqliteCounters(file: string): void {
  if (!fs.existsSync(file) || fs.statSync(file).size === 0) return;
  // Reading a file in WAL mode makes -wal and -shm files beside it; tests check that a refused command
  // leaves the directory as it was, so those this check made go again (none existed: no one has it open).
  const made = [`${file}-wal`, `${file}-shm`].filter((side) => !fs.existsSync(side));
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    let hasCounters: boolean;
    try {
      hasCounters = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'counters'").get() !== undefined;
    } catch (error) {
      if ((error as { code?: string }).code === 'SQLITE_NOTADB') return; // a bad-input test's file
      throw error;
    }
    if (!hasCounters) return;
    const [kept, scanned] = db.transaction(() => [
      db.prepare(VIEWS('', "''")).all() as Counted,
      db.prepare(SCAN('objects', "''")).all() as Counted,
    ])();
    compare(file, kept, scanned);
  } finally {
    db.close();
    if (made.length === 2) for (const side of made) fs.rmSync(side, { force: true });
  }
}

/** Throws when a PostgreSQL state's counters differ from a scan; skips a database without them. */
export async function checkPostgresCounters(url: string, env: NodeJS.ProcessEnv): Promise<void> {
  let client: pg.Client;
  try {
    // Connected as the command was: the same URL and PG* environment (password, pass file).
    client = new pg.Client(clientConfig(parsePostgresUrl(url, env), env, newPasswordSource(env)));
    await client.connect();
  } catch {
    return; // a refused URL, an unreachable database or a refused password: a bad-input test
  }
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const exists = await client.query("SELECT to_regclass('s3migrate.counters') IS NOT NULL AS yes");
    if (!exists.rows[0].yes) return;
    const kept = await client.query(VIEWS('s3migrate.', 'migration'));
    const scanned = await client.query(SCAN('s3migrate.objects', 'migration'));
    compare(url.replace(/\/\/[^@/]*@/, '//'), kept.rows as Counted, scanned.rows as Counted);
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    await client.end();
  }
}

function compare(where: string, kept: Counted, scanned: Counted): void {
  const a = JSON.stringify(sorted(kept));
  const b = JSON.stringify(sorted(scanned));
  if (a !== b) throw new Error(`the counters of ${where} differ from a scan:\n  counters ${a}\n  scan     ${b}`);
}
