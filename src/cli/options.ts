import { Option, type Command } from 'commander';
import { resolveEndpointConfig, type EndpointConfig, type Env, type Side } from '../config/endpoint-config.js';
import { parseSize } from '../config/size.js';
import { UsageError } from '../errors.js';
import { parseFilter, type FilterFlags, type ObjectFilter } from '../filter/object-filter.js';
import { LOG_FORMATS } from '../progress/log-sink.js';

export const DEFAULT_STATE = './state.db';

/**
 * --state and --migration, as every command takes them. --state has no commander default, so that
 * S3MIGRATE_STATE_URL can stand in for it (see stateFromFlags).
 */
export function addStateOptions(command: Command, what: string): Command {
  return command
    .option(
      '--state <file|url>',
      `${what}, or postgres://USER@HOST[:PORT]/DB for a shared PostgreSQL state ` +
        `(default: $S3MIGRATE_STATE_URL, else ${DEFAULT_STATE})`,
    )
    .option('--migration <name>', 'the migration inside a PostgreSQL state (default: "default")');
}

/** The state a command uses: --state, else S3MIGRATE_STATE_URL (a PostgreSQL URL), else ./state.db. */
export function stateFromFlags(
  flags: { state?: string | boolean; migration?: string | boolean },
  env: Env,
): { location: string; migration: string | undefined } {
  const migration = typeof flags.migration === 'string' ? flags.migration : undefined;
  if (typeof flags.state === 'string') return { location: flags.state, migration };
  const fromEnv = env.S3MIGRATE_STATE_URL;
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!/^postgres(ql)?:\/\//i.test(fromEnv)) {
      throw new UsageError('S3MIGRATE_STATE_URL must be a postgres:// URL (postgres://USER@HOST[:PORT]/DB); for a file, use --state');
    }
    return { location: fromEnv, migration };
  }
  return { location: DEFAULT_STATE, migration };
}

/** Adds the per-side endpoint flags (`--source-endpoint`, `--dest-region`, ...) for the given sides. */
export function addEndpointOptions(command: Command, sides: Side[]): Command {
  for (const side of sides) {
    const name = side === 'source' ? 'source' : 'dest';
    const label = side === 'source' ? 'source' : 'destination';
    command
      .option(`--${name}-endpoint <url>`, `${label} S3 endpoint URL (overrides ${name.toUpperCase()}_ENDPOINT)`)
      .option(`--${name}-region <region>`, `${label} region (overrides ${name.toUpperCase()}_AWS_REGION)`)
      .option(`--${name}-profile <name>`, `${label} AWS profile (overrides ${name.toUpperCase()}_AWS_PROFILE)`)
      .addOption(
        new Option(`--${name}-checksum <mode>`, `${label} request checksums (default: when-required for custom endpoints)`)
          .choices(['when-required', 'when-supported']),
      );
  }
  return command;
}

/** `--log-format` and `--log-file` (see docs/logs.md). */
export function addLogOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--log-format <format>', 'log as plain lines or one JSON object per line (json without --log-file: on stderr, instead of progress)')
        .choices([...LOG_FORMATS])
        .default('text'),
    )
    .option('--log-file <file>', 'append the log to this file (created if missing); the terminal keeps its progress');
}

type EndpointFlags = Record<string, string | undefined>;

export function endpointConfigFromFlags(side: Side, env: Env, flags: EndpointFlags): EndpointConfig {
  const name = side === 'source' ? 'source' : 'dest';
  const camel = (suffix: string): string | undefined => flags[`${name}${suffix}`];
  return resolveEndpointConfig(side, env, {
    endpoint: camel('Endpoint'),
    region: camel('Region'),
    profile: camel('Profile'),
    checksum: camel('Checksum'),
  });
}

export function parsePositiveInteger(text: string, flag: string, max = 100_000): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1 || Number(text) > max) {
    throw new UsageError(`${flag} expects a whole number from 1 to ${max}, got "${text}"`);
  }
  return Number(text);
}

export function parseSizeInRange(text: string, flag: string, min: number, max: number, why = 'S3 limits'): number {
  const bytes = parseSize(text, flag);
  if (bytes < min || bytes > max) {
    throw new UsageError(
      `${flag} must be between ${min / 1024 / 1024} MiB and ${max / 1024 / 1024 / 1024} GiB, got "${text}" (${why})`,
    );
  }
  return bytes;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** The filter flags (README: Filters), as catalog, copy, plan and status take them. */
export function addFilterOptions(command: Command): Command {
  return command
    .option('--include <glob>', 'only keys matching this glob, relative to the catalog prefix (repeatable)', collect)
    .option('--exclude <glob>', 'never keys matching this glob (repeatable; wins over --include)', collect)
    .option('--min-size <size>', 'only objects of at least this size (e.g. 1KiB)')
    .option('--max-size <size>', 'only objects of at most this size (e.g. 64MiB)')
    .option('--modified-after <date>', 'only objects modified at or after this UTC date (2024-01-01, 2024-01-01T12:00:00Z)')
    .option('--modified-before <date>', 'only objects modified before this UTC date');
}

export interface FilterOptionFlags {
  include?: string[];
  exclude?: string[];
  minSize?: string;
  maxSize?: string;
  modifiedAfter?: string;
  modifiedBefore?: string;
}

function filterFlags(flags: FilterOptionFlags): FilterFlags {
  return {
    include: flags.include,
    exclude: flags.exclude,
    minSize: flags.minSize,
    maxSize: flags.maxSize,
    modifiedAfter: flags.modifiedAfter,
    modifiedBefore: flags.modifiedBefore,
  };
}

/** Checks the filter flags before anything is opened (a bad glob or date changes nothing): UsageError. */
export function checkFilterFlags(flags: FilterOptionFlags): void {
  parseFilter(filterFlags(flags), '');
}

/** The filter for a catalog's prefix, or undefined when no filter flag was given. */
export function filterFromFlags(flags: FilterOptionFlags, catalogPrefix: string): ObjectFilter | undefined {
  return parseFilter(filterFlags(flags), catalogPrefix);
}

/** The filter flags given, as recorded with a catalog pass or a run (JSON), or undefined. */
export function filterText(flags: FilterOptionFlags): string | undefined {
  const given = Object.fromEntries(Object.entries(filterFlags(flags)).filter(([, value]) => value !== undefined));
  return Object.keys(given).length === 0 ? undefined : JSON.stringify(given);
}
