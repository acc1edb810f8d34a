/**
 * An object filter (src/filter/object-filter.ts, plain data) as a SQL condition over the objects table,
 * the same in both stores but for the placeholders and the regular expression operator:
 *
 *   (key >= low1 AND key < high1 OR key >= low2 ...)     -- the key ranges: an index on key serves them
 *   AND (key REGEXP include1 OR ...)                      -- SQLite: our regexp() function; PostgreSQL: key ~ $n
 *   AND NOT (key REGEXP exclude1) AND ...
 *   AND size >= min AND size <= max
 *   AND last_modified >= after AND last_modified < before
 *
 * Every value is a bound parameter, never spliced into the SQL text. Keys compare in byte order in both
 * stores (SQLite's BINARY collation, PostgreSQL's COLLATE "C" columns), as the key ranges expect.
 */
import type { ObjectFilter } from '../filter/object-filter.js';

export type Dialect = 'sqlite' | 'postgres';

/** Collects bound parameters and names their placeholders (`?` for SQLite, `$n` for PostgreSQL). */
export class SqlParams {
  readonly values: unknown[] = [];
  constructor(
    private readonly dialect: Dialect,
    /** PostgreSQL: the number of parameters already in the statement before these. */
    private readonly offset = 0,
  ) {}

  add(value: unknown): string {
    this.values.push(value);
    return this.dialect === 'sqlite' ? '?' : `$${this.offset + this.values.length}`;
  }
}

/**
 * The filter's condition (`TRUE`-like `1 = 1` without a filter), its values added to `params`. `time`: how
 * the store keeps last_modified, from the filter's ISO-8601 bounds (SQLite: integer milliseconds).
 */
export function filterCondition(
  filter: ObjectFilter | undefined,
  params: SqlParams,
  dialect: Dialect,
  column = 'key',
  time: (iso: string) => unknown = (iso) => iso,
): string {
  if (filter === undefined) return '1 = 1';
  const regex = (pattern: string): string =>
    dialect === 'sqlite' ? `${column} REGEXP ${params.add(pattern)}` : `${column} ~ ${params.add(pattern)}`;
  const parts: string[] = [];
  if (filter.keyRanges.length > 0) {
    const ranges = filter.keyRanges.map((range) =>
      range.high === undefined
        ? `${column} >= ${params.add(range.low)}`
        : `(${column} >= ${params.add(range.low)} AND ${column} < ${params.add(range.high)})`,
    );
    parts.push(`(${ranges.join(' OR ')})`);
  }
  if (filter.include.length > 0) parts.push(`(${filter.include.map((p) => regex(p.regex)).join(' OR ')})`);
  for (const pattern of filter.exclude) parts.push(`NOT (${regex(pattern.regex)})`);
  if (filter.minSize !== undefined) parts.push(`size >= ${params.add(filter.minSize)}`);
  if (filter.maxSize !== undefined) parts.push(`size <= ${params.add(filter.maxSize)}`);
  if (filter.modifiedAfter !== undefined) parts.push(`last_modified >= ${params.add(time(filter.modifiedAfter))}`);
  if (filter.modifiedBefore !== undefined) parts.push(`last_modified < ${params.add(time(filter.modifiedBefore))}`);
  return parts.length === 0 ? '1 = 1' : parts.join(' AND ');
}

