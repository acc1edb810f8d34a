import fs from 'node:fs';
import { UsageError } from '../errors.js';

/** `--log-format`: plain lines (the default) or one JSON object per line. */
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Where log lines go: a file opened for appending, or stderr. */
export interface LogSink {
  /** Writes one line (the newline is added). Never throws: a file that fails is reported once and dropped. */
  writeLine(line: string): void;
  close(): void;
}

/** Where a run's log goes and whether the terminal still gets its progress and messages. */
export interface LogTarget {
  format: LogFormat;
  /** Undefined in text mode without --log-file: the terminal output is the only log. */
  sink: LogSink | undefined;
  /**
   * False when the JSON lines go to stderr: then stderr carries nothing else (no progress, no notes,
   * no error line: the run-end line holds the error).
   */
  terminal: boolean;
}

interface Writable {
  write(text: string): unknown;
}

/**
 * Opens the log of a run from `--log-format` and `--log-file`, before anything else runs: a file that
 * cannot be opened for appending is invalid usage (exit 2), with nothing touched. The file is created
 * if missing and always appended to, so a rerun's lines follow the previous run's.
 */
export function openLogTarget(format: LogFormat, file: string | undefined, stderr: Writable = process.stderr): LogTarget {
  if (file === undefined) {
    return format === 'json' ? { format, sink: streamSink(stderr), terminal: false } : { format, sink: undefined, terminal: true };
  }
  return { format, sink: fileSink(file, stderr), terminal: true };
}

function streamSink(stream: Writable): LogSink {
  return {
    writeLine: (line) => void stream.write(`${line}\n`),
    close: () => undefined,
  };
}

function fileSink(file: string, stderr: Writable): LogSink {
  if (file.trim() === '') throw new UsageError('--log-file needs a file name');
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'a', 0o644);
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    throw new UsageError(`--log-file ${file} cannot be opened for appending (${code ?? message}); nothing was run`);
  }
  // Synchronous appends: every line is in the file before the next event, whatever ends the process later.
  const writeAll = (bytes: Buffer): void => {
    let offset = 0;
    while (offset < bytes.length) offset += fs.writeSync(fd!, bytes, offset, bytes.length - offset);
  };
  return {
    writeLine(line) {
      if (fd === undefined) return;
      try {
        writeAll(Buffer.from(`${line}\n`, 'utf8'));
      } catch (error) {
        // A full disk must not stop a migration: say so once, then go on without the log.
        const { code, message } = error as NodeJS.ErrnoException;
        stderr.write(`s3migrate: writing the log file ${file} failed (${code ?? message}); the run goes on without it\n`);
        this.close();
      }
    },
    close() {
      if (fd === undefined) return;
      const open = fd;
      fd = undefined;
      try {
        fs.closeSync(open);
      } catch {
        // Nothing more can be done about a log that cannot be closed.
      }
    },
  };
}
