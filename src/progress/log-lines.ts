import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type { EndpointLocation } from '../state/types.js';
import type { LogSink } from './log-sink.js';

export type LogCommand = 'catalog' | 'copy' | 'verify';
export type RunOutcome = 'completed' | 'interrupted' | 'failed';

/** The s3migrate version, for run-start lines. */
export const VERSION = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

/**
 * A run's id in its log lines: UTC start time, process id and a random suffix
 * (`20250301T101502Z-4711-a3f9c1`): unique across a fleet whose workers all run as pid 1.
 */
export function makeRunId(startedAt: number): string {
  const time = new Date(startedAt).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${time}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/**
 * One JSON object per line. Every line starts with the same four fields, in this order: `ts` (ISO-8601
 * UTC, milliseconds), `event`, `run`, `command`; the event's own fields follow.
 */
export class JsonLines {
  /** The run's id, made from its start. */
  readonly run: string;

  constructor(
    private readonly sink: LogSink,
    readonly command: LogCommand,
    /** When the run started: run-start's ts, and what run-end's elapsedMs counts from. */
    readonly startedAt = Date.now(),
  ) {
    this.run = makeRunId(startedAt);
  }

  write(event: string, fields: Record<string, unknown>, at = Date.now()): void {
    this.sink.writeLine(JSON.stringify({ ts: new Date(at).toISOString(), event, run: this.run, command: this.command, ...fields }));
  }
}

/** Plain lines for a --log-file in text mode: each one prefixed with its ISO-8601 UTC time. */
export class TextLines {
  constructor(private readonly sink: LogSink) {}

  write(text: string, at = Date.now()): void {
    this.sink.writeLine(`${new Date(at).toISOString()} ${text}`);
  }
}

/** A key as a text line shows it: as is, or JSON-quoted when it holds control characters (a newline). */
export function showKey(key: string): string {
  return /[\u0000-\u001f\u007f]/.test(key) ? JSON.stringify(key) : key;
}

/** `s3://bucket/prefix/` of a location (never its endpoint). */
export function s3Url(location: Pick<EndpointLocation, 'bucket' | 'prefix'> | undefined): string | null {
  return location ? `s3://${location.bucket}/${location.prefix}` : null;
}

/**
 * The host (and port) of an endpoint URL, without user info or path; labels such as `aws` as they are.
 */
export function endpointHost(location: Pick<EndpointLocation, 'endpoint'> | undefined): string | null {
  if (!location) return null;
  try {
    const url = new URL(location.endpoint);
    return url.host === '' ? location.endpoint : url.host;
  } catch {
    return location.endpoint;
  }
}

const SECRET_PARAM = /pass|secret|token|credential|signature|(^|[^a-z])key$/i;

/**
 * A URL-like value with any password (user info, or a query parameter such as `password=`) replaced by
 * `***`. s3:// URLs and plain paths are returned as they are.
 */
export function redactUrl(text: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text) || /^s3:\/\//i.test(text)) return text;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return text;
  }
  let changed = false;
  if (url.password !== '') {
    url.password = '***';
    changed = true;
  }
  for (const name of [...url.searchParams.keys()]) {
    if (SECRET_PARAM.test(name)) {
      url.searchParams.set(name, '***');
      changed = true;
    }
  }
  return changed ? url.toString() : text;
}

/** The fields every run-start begins with: the version, this process and its arguments. */
export function runStartFields(flags: Record<string, unknown>): { version: string; pid: number; arguments: Record<string, unknown> } {
  return { version: VERSION, pid: process.pid, arguments: loggedArguments(flags) };
}

/**
 * The command's arguments for run-start: every flag as parsed (defaults included), URL-like values
 * redacted. There are no secret flags (secrets come only from the environment), so this is defence in depth.
 */
export function loggedArguments(flags: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(flags)) {
    if (value === undefined) continue;
    if (typeof value === 'string') out[name] = redactUrl(value);
    else if (Array.isArray(value)) out[name] = value.map((item: unknown) => (typeof item === 'string' ? redactUrl(item) : item));
    else out[name] = value;
  }
  return out;
}
