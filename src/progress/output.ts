/** Where progress goes: bars on a terminal, a plain line every few seconds elsewhere, or nothing. */
export type ProgressMode = 'bars' | 'lines' | 'quiet';

export interface ProgressOutput {
  mode: ProgressMode;
  stream: NodeJS.WriteStream;
  /** Seconds between plain lines (lines mode). */
  intervalSeconds: number;
}

export function chooseProgressMode(stream: NodeJS.WriteStream, quiet: boolean): ProgressMode {
  if (quiet) return 'quiet';
  // nohup, CI and pipes have no TTY: cursor tricks there only make a mess of the log.
  return stream.isTTY ? 'bars' : 'lines';
}
