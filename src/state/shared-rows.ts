/** Row shapes and small computations both stores share. */
import type { CatalogPassDelta, MeasuredRate } from './types.js';

/** A catalog_passes row as both stores read it. */
export interface PassRow {
  pass: number;
  started_at: string | null;
  finished_at: string;
  scope: string | null;
  new_objects: number;
  new_bytes: number;
  modified_objects: number;
  modified_bytes: number;
  gone_objects: number;
  gone_bytes: number;
}

export function passDelta(row: PassRow): CatalogPassDelta {
  return {
    pass: Number(row.pass),
    ...(row.started_at ? { startedAt: row.started_at } : {}),
    finishedAt: row.finished_at,
    ...(row.scope ? { scope: row.scope } : {}),
    new: { objects: Number(row.new_objects), bytes: Number(row.new_bytes) },
    modified: { objects: Number(row.modified_objects), bytes: Number(row.modified_bytes) },
    gone: { objects: Number(row.gone_objects), bytes: Number(row.gone_bytes) },
  };
}

/** The totals of finished copy runs, or undefined when they took too little time to measure anything. */
export function rateOf(runs: ReadonlyArray<{ objects: number; bytes: number; startedAt: string; finishedAt: string }>): MeasuredRate | undefined {
  let objects = 0;
  let bytes = 0;
  let seconds = 0;
  for (const run of runs) {
    const elapsed = (Date.parse(run.finishedAt) - Date.parse(run.startedAt)) / 1000;
    if (!(elapsed > 0)) continue;
    objects += Number(run.objects);
    bytes += Number(run.bytes);
    seconds += elapsed;
  }
  // Under a few seconds of copying, start-up costs dominate: no measurement to speak of.
  if (seconds < 5 || objects === 0) return undefined;
  return { runs: runs.length, objects, bytes, seconds };
}
