import { UsageError } from '../errors.js';

const FORMS = '2024-01-01, 2024-01-01T12:00:00Z or 2024-01-01T12:00:00+02:00';
const DATE = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?(Z|[+-]\d{2}:\d{2})?)?$/;

/**
 * Parses a date flag into an ISO-8601 UTC string in the state file's format (`toISOString`:
 * `2024-01-01T10:00:00.000Z`), so the store can compare it with `last_modified` as text.
 *
 * Accepted: `YYYY-MM-DD` (midnight UTC), `YYYY-MM-DDTHH:MM:SS[.sss]Z`, `YYYY-MM-DDTHH:MM:SS[.sss]+HH:MM`
 * (or `-HH:MM`; converted to UTC). Anything else is refused, in particular a time without `Z` or an
 * offset, which would depend on the machine's time zone; impossible dates (2023-02-29, 24:00:00, leap
 * seconds) too.
 */
export function parseUtcDate(text: string, flag: string): string {
  const trimmed = text.trim();
  const match = DATE.exec(trimmed);
  if (match && match[4] !== undefined && match[8] === undefined) {
    throw new UsageError(
      `${flag} "${text}" has no time zone: add Z for UTC or an offset such as +02:00 (e.g. ${trimmed}Z)`,
    );
  }
  const invalid = (): UsageError => new UsageError(`${flag} expects a date such as ${FORMS}, got "${text}"`);
  if (!match) throw invalid();
  const [year, month, day, hour = 0, minute = 0, second = 0] = match.slice(1, 7).map((part) =>
    part === undefined ? undefined : Number(part),
  ) as number[];
  const millis = match[7] === undefined ? 0 : Number(match[7].padEnd(3, '0'));
  if (month! < 1 || month! > 12 || hour > 23 || minute > 59 || second > 59) throw invalid();
  const local = Date.UTC(year!, month! - 1, day!, hour, minute, second, millis);
  const check = new Date(local);
  // Date.UTC maps years 0-99 to 1900-1999: set the year explicitly, then check nothing rolled over.
  check.setUTCFullYear(year!, month! - 1, day!);
  if (check.getUTCFullYear() !== year || check.getUTCMonth() !== month! - 1 || check.getUTCDate() !== day) {
    throw invalid();
  }
  let offsetMinutes = 0;
  const zone = match[8];
  if (zone !== undefined && zone !== 'Z') {
    const hours = Number(zone.slice(1, 3));
    const minutes = Number(zone.slice(4, 6));
    if (hours > 23 || minutes > 59) throw invalid();
    offsetMinutes = (zone[0] === '-' ? -1 : 1) * (hours * 60 + minutes);
  }
  const utc = new Date(check.getTime() - offsetMinutes * 60_000);
  const year4 = utc.getUTCFullYear();
  if (year4 < 0 || year4 > 9999) throw invalid();
  return utc.toISOString();
}
