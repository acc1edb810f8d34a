/**
 * Object filters: `--include GLOB`, `--exclude GLOB` (both repeatable), `--min-size S`, `--max-size S`,
 * `--modified-after DATE`, `--modified-before DATE`, on catalog, copy, plan and status.
 *
 * Semantics:
 * - Patterns match the key RELATIVE to the catalog's prefix: with `catalog --from s3://b/photos/`,
 *   `--include '2024/**'` selects `photos/2024/...`. A key outside the catalog's prefix never matches.
 * - Glob syntax (see glob.ts for every rule): `*` does not cross `/`, `**` (a whole segment) does, `?` is
 *   one character other than `/`, `[a-z]` / `[!a-z]` sets, `{a,b}` and `{1..9}` braces, `\` escapes.
 *   Dotfiles and `.`/`..` segments are ordinary keys (like `.git/x`); matching is case-sensitive and
 *   byte-exact (no Unicode normalization).
 * - A key is selected when it matches at least one include (no include = every key) and no exclude:
 *   an exclude wins over an include.
 * - `--min-size` / `--max-size`: bytes, inclusive on both ends (`10MiB`, `1.5GiB`, `500KB`, `0`).
 * - `--modified-after` is inclusive, `--modified-before` exclusive, both in UTC: `2024-01-01` (midnight
 *   UTC), `2024-01-01T12:00:00Z`, `2024-01-01T12:00:00+02:00` (converted to UTC). Anything else, a time
 *   without a zone in particular, is refused.
 * - All conditions must hold (AND).
 * Bad input (a malformed glob, an unparsable size or date, min > max, after >= before) is a UsageError
 * naming the flag.
 *
 * The filter is plain data (JSON-serialisable), described so that a store can evaluate it in SQL and get
 * exactly what `matches` computes in memory (SQLite: register a `regexp(pattern, key)` function built on
 * `new RegExp(pattern, REGEX_FLAGS)`; PostgreSQL: `key ~ $n`, with keys compared `COLLATE "C"`):
 *
 *   (key >= r1.low AND key < r1.high OR key >= r2.low ...)        -- keyRanges (an index serves it)
 *   AND (key ~ include1.regex OR key ~ include2.regex ...)        -- when there are includes
 *   AND NOT (key ~ exclude1.regex) AND NOT (key ~ exclude2.regex) ...
 *   AND size >= minSize AND size <= maxSize
 *   AND last_modified >= modifiedAfter AND last_modified < modifiedBefore
 *
 * Each regex matches the FULL key (the catalog prefix is part of it, escaped), anchored at both ends,
 * and uses only the constructs listed in glob.ts. Each pattern also carries the key ranges its matches
 * lie in (one per literal prefix of its brace alternatives), so an include can be served as
 * `(key >= low AND key < high AND key ~ regex)`. Time bounds are ISO strings in `toISOString` form, the
 * format of `last_modified`, so text comparison is time order. Always pass regexes and bounds as bound
 * parameters, never spliced into SQL text.
 */
import { parseSize } from '../config/size.js';
import { UsageError } from '../errors.js';
import { compileGlob, escapeLiteral } from './glob.js';
import { type KeyRange, inKeyRange, mergeKeyRanges, prefixRange } from './key-range.js';
import { parseUtcDate } from './utc-date.js';

export type { KeyRange } from './key-range.js';

/** Flags for `new RegExp(regex, REGEX_FLAGS)`: `s` so `.` matches newlines as in PostgreSQL, `u` for code points. */
export const REGEX_FLAGS = 'su';

/** The filter flags as the CLI collected them (repeatable flags as arrays; sizes as text or bytes). */
export interface FilterFlags {
  include?: string | readonly string[];
  exclude?: string | readonly string[];
  minSize?: string | number;
  maxSize?: string | number;
  modifiedAfter?: string;
  modifiedBefore?: string;
}

export interface PatternFilter {
  /** The glob as the user gave it (relative to the catalog prefix). */
  glob: string;
  /** Regular expression source matching the full key; valid in JavaScript (REGEX_FLAGS) and PostgreSQL ARE. */
  regex: string;
  /** Every key this pattern matches lies in one of these ranges (byte order, merged). */
  ranges: KeyRange[];
}

export interface ObjectFilter {
  /** The catalog's prefix ('' or ending with '/'); patterns are relative to it. */
  catalogPrefix: string;
  /** Empty: every key is included. */
  include: PatternFilter[];
  exclude: PatternFilter[];
  /** A selected key lies in one of these: the includes' ranges merged, or the catalog prefix's range. */
  keyRanges: KeyRange[];
  /** Bytes, inclusive. */
  minSize?: number;
  /** Bytes, inclusive. */
  maxSize?: number;
  /** ISO-8601 UTC (toISOString form), inclusive. */
  modifiedAfter?: string;
  /** ISO-8601 UTC (toISOString form), exclusive. */
  modifiedBefore?: string;
}

/** What `matches` looks at: a catalog row. */
export interface FilterCandidate {
  key: string;
  size: number;
  /** ISO-8601. */
  lastModified: string;
}

function list(value: string | readonly string[] | undefined): string[] {
  if (value === undefined) return [];
  return typeof value === 'string' ? [value] : [...value];
}

function size(value: string | number | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new UsageError(`${flag} expects a size in bytes, got ${value}`);
    return value;
  }
  return parseSize(value, flag);
}

function pattern(glob: string, flag: string, catalogPrefix: string): PatternFilter {
  const alternatives = compileGlob(glob, flag);
  const body = [...new Set(alternatives.map((alternative) => alternative.source))].join('|');
  return {
    glob,
    regex: `^${escapeLiteral(catalogPrefix)}(?:${body})$`,
    ranges: mergeKeyRanges(alternatives.map((alternative) => prefixRange(catalogPrefix + alternative.literalPrefix))),
  };
}

/** Builds the filter from the flags, or undefined when no filter flag was given. */
export function parseFilter(flags: FilterFlags, catalogPrefix: string): ObjectFilter | undefined {
  const includes = list(flags.include);
  const excludes = list(flags.exclude);
  const given =
    includes.length > 0 ||
    excludes.length > 0 ||
    [flags.minSize, flags.maxSize, flags.modifiedAfter, flags.modifiedBefore].some((value) => value !== undefined);
  if (!given) return undefined;

  const include = includes.map((glob) => pattern(glob, '--include', catalogPrefix));
  const exclude = excludes.map((glob) => pattern(glob, '--exclude', catalogPrefix));
  const filter: ObjectFilter = {
    catalogPrefix,
    include,
    exclude,
    keyRanges: include.length > 0 ? mergeKeyRanges(include.flatMap((p) => p.ranges)) : [prefixRange(catalogPrefix)],
  };

  const minSize = size(flags.minSize, '--min-size');
  const maxSize = size(flags.maxSize, '--max-size');
  if (minSize !== undefined && maxSize !== undefined && minSize > maxSize) {
    throw new UsageError(
      `--min-size ${flags.minSize} (${minSize} bytes) is larger than --max-size ${flags.maxSize} (${maxSize} bytes): no object could match`,
    );
  }
  if (minSize !== undefined) filter.minSize = minSize;
  if (maxSize !== undefined) filter.maxSize = maxSize;

  const after = flags.modifiedAfter === undefined ? undefined : parseUtcDate(flags.modifiedAfter, '--modified-after');
  const before =
    flags.modifiedBefore === undefined ? undefined : parseUtcDate(flags.modifiedBefore, '--modified-before');
  if (after !== undefined && before !== undefined && after >= before) {
    throw new UsageError(
      `--modified-after ${flags.modifiedAfter} must be earlier than --modified-before ${flags.modifiedBefore} ` +
        `(after is inclusive, before exclusive): no object could match`,
    );
  }
  if (after !== undefined) filter.modifiedAfter = after;
  if (before !== undefined) filter.modifiedBefore = before;
  return filter;
}

// Compiled once per filter object; the filter itself stays plain data.
const compiled = new WeakMap<ObjectFilter, { include: RegExp[]; exclude: RegExp[]; after?: number; before?: number }>();

function compile(filter: ObjectFilter) {
  let entry = compiled.get(filter);
  if (!entry) {
    entry = {
      include: filter.include.map((p) => new RegExp(p.regex, REGEX_FLAGS)),
      exclude: filter.exclude.map((p) => new RegExp(p.regex, REGEX_FLAGS)),
      after: filter.modifiedAfter === undefined ? undefined : Date.parse(filter.modifiedAfter),
      before: filter.modifiedBefore === undefined ? undefined : Date.parse(filter.modifiedBefore),
    };
    compiled.set(filter, entry);
  }
  return entry;
}

/** Whether a catalog row is selected by the filter (undefined: every row is). */
export function matches(filter: ObjectFilter | undefined, object: FilterCandidate): boolean {
  if (filter === undefined) return true;
  if (!object.key.startsWith(filter.catalogPrefix)) return false;
  if (filter.minSize !== undefined && object.size < filter.minSize) return false;
  if (filter.maxSize !== undefined && object.size > filter.maxSize) return false;
  const { include, exclude, after, before } = compile(filter);
  if (after !== undefined || before !== undefined) {
    const time = Date.parse(object.lastModified);
    if (Number.isNaN(time)) return false;
    if (after !== undefined && time < after) return false;
    if (before !== undefined && time >= before) return false;
  }
  if (include.length > 0 && !include.some((re) => re.test(object.key))) return false;
  return !exclude.some((re) => re.test(object.key));
}

/** Whether a key lies in one of the filter's key ranges (what the index part of the WHERE clause does). */
export function inFilterRanges(filter: ObjectFilter, key: string): boolean {
  return filter.keyRanges.some((range) => inKeyRange(key, range));
}

/**
 * The key part of a filter only (prefix, includes, excludes): the scope in which a filtered catalog pass
 * may conclude that a key vanished (a vanished object has no size or date to filter by).
 */
export function keyScope(filter: ObjectFilter | undefined): ObjectFilter | undefined {
  if (filter === undefined) return undefined;
  return { catalogPrefix: filter.catalogPrefix, include: filter.include, exclude: filter.exclude, keyRanges: filter.keyRanges };
}
