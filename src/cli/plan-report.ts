/**
 * `s3migrate plan` and `copy --dry-run`: reads the state (read-only, nothing written), asks the store for
 * the rows a copy would take (within the filter), prices them (src/plan) and prints the plan. No request
 * is sent to either bucket.
 */
import fs from 'node:fs';
import { Option, type Command } from 'commander';
import { parseSize } from '../config/size.js';
import { MAX_PART_SIZE, MIN_PART_SIZE } from '../copy/part-size.js';
import { UsageError } from '../errors.js';
import { assumedThroughput, buildPlan, type Plan, type Throughput } from '../plan/cost.js';
import { builtinPrices, parsePriceFile, resolveProvider, withPriceFile, type PriceTable } from '../plan/prices.js';
import { sizeGroupsFromRows } from '../plan/request-model.js';
import { formatBytes, formatCount } from '../progress/format.js';
import { renderPlan } from '../progress/plan-text.js';
import type { Env } from '../config/endpoint-config.js';
import type { StateStore } from '../state/store.js';
import type { MeasuredRate } from '../state/types.js';
import {
  endpointConfigFromFlags,
  filterFromFlags,
  filterText,
  parsePositiveInteger,
  parseSizeInRange,
  type FilterOptionFlags,
} from './options.js';

/** The flags the plan reads (plan takes them all; copy shares the ones it has). */
export interface PlanFlags extends FilterOptionFlags {
  json?: boolean;
  prices?: string;
  sourceProvider?: string;
  destProvider?: string;
  multipartThreshold: string;
  partSize: string;
  concurrency: string;
  maxBandwidth?: string;
  maxRequestsPerSecond?: string;
  storageClass?: string;
  deleteGone?: boolean;
  maxDelete?: string;
  [flag: string]: unknown;
}

/** Flags of the cost estimate that only plan and copy --dry-run use. */
export function addPriceOptions(command: Command): Command {
  return command
    .option('--prices <file.json>', 'price file replacing or adding providers (see the README: Plan)')
    .addOption(new Option('--source-provider <id>', 'price the source as this provider (default: detected from the endpoint)'))
    .addOption(new Option('--dest-provider <id>', 'price the destination as this provider (default: detected from the endpoint)'));
}

/** The price table with --prices applied: a file that is missing or not a valid price file is invalid usage. */
export function loadPrices(file: string | undefined): PriceTable {
  const table = builtinPrices();
  if (file === undefined) return table;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`--prices ${file}: cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  return withPriceFile(table, parsePriceFile(text, file));
}

export interface DeletionsPlan {
  objects: number;
  bytes: number;
  requests: { head: number; delete: number };
  /** Destination keys (all of them in JSON, the first 20 in text). */
  keys: string[];
}

export interface PlanReport extends Plan {
  /** The filter flags given (JSON), when the plan covers a wave only. */
  selection?: string;
  /** With --delete-gone: what would be deleted from the destination. */
  deletions?: DeletionsPlan;
}

/** Checks every plan flag without touching the state: UsageError (exit 2) on anything wrong. */
export function checkPlanFlags(flags: PlanFlags): { prices: PriceTable; shape: { multipartThreshold: number; partSize: number } } {
  const prices = loadPrices(flags.prices);
  const partSize = parseSizeInRange(flags.partSize, '--part-size', MIN_PART_SIZE, MAX_PART_SIZE);
  const multipartThreshold = parseSizeInRange(flags.multipartThreshold, '--multipart-threshold', MIN_PART_SIZE, MAX_PART_SIZE);
  parsePositiveInteger(flags.concurrency, '--concurrency', 1024);
  if (flags.maxDelete !== undefined && !flags.deleteGone) throw new UsageError('--max-delete needs --delete-gone');
  return { prices, shape: { multipartThreshold, partSize } };
}

function throughputOf(flags: PlanFlags, measured: MeasuredRate | undefined, requestsPerObject: number): Throughput {
  const concurrency = Number(flags.concurrency);
  const maxBandwidth = flags.maxBandwidth === undefined ? undefined : parseSize(flags.maxBandwidth, '--max-bandwidth');
  const maxRequestsPerSecond = flags.maxRequestsPerSecond === undefined ? undefined : Number(flags.maxRequestsPerSecond);
  if (!measured) return assumedThroughput({ concurrency, maxBandwidth, maxRequestsPerSecond });
  const bytesPerSecond = Math.max(1, measured.bytes / measured.seconds);
  const objectsPerSecond = measured.objects / measured.seconds;
  return {
    bytesPerSecond: Math.min(bytesPerSecond, maxBandwidth ?? Infinity),
    // Requests at the rate objects went, with this plan's requests per object.
    requestsPerSecond: Math.min(Math.max(objectsPerSecond * requestsPerObject, 0.001), maxRequestsPerSecond ?? Infinity),
    basis:
      `measured: the last ${measured.runs} copy run${measured.runs === 1 ? '' : 's'} moved ${formatCount(measured.objects)} objects, ` +
      `${formatBytes(measured.bytes)} in ${Math.round(measured.seconds)} s (${formatBytes(bytesPerSecond)}/s, ${objectsPerSecond.toFixed(1)} objects/s)`,
  };
}

/** The plan of a copy of this state's remaining rows (within the filter flags), from the store alone. */
export async function planReport(store: StateStore, flags: PlanFlags, env: Env): Promise<PlanReport> {
  const { prices, shape } = checkPlanFlags(flags);
  const source = await store.getSource();
  const filter = filterFromFlags(flags, source?.prefix ?? '');
  const sourceConfig = endpointConfigFromFlags('source', env, flags as Record<string, string | undefined>);
  const destConfig = endpointConfigFromFlags('dest', env, flags as Record<string, string | undefined>);
  const sourcePrices = resolveProvider(prices, sourceConfig.endpoint, flags.sourceProvider, '--source-provider');
  const destPrices = resolveProvider(prices, destConfig.endpoint, flags.destProvider, '--dest-provider');
  const groups = sizeGroupsFromRows(await store.planGroups(filter, shape.multipartThreshold), shape.multipartThreshold);
  const input = {
    objects: groups,
    transfer: shape,
    source: sourcePrices,
    dest: destPrices,
    destStorageClass: flags.storageClass,
  };
  const measured = await store.measuredRate();
  // The requests per object come from the plan itself (the throughput does not change them).
  const draft = buildPlan({ ...input, throughput: assumedThroughput({ concurrency: Number(flags.concurrency) }) });
  const perObject = draft.objects.toCopy.objects === 0 ? 2 : draft.requests.total / draft.objects.toCopy.objects;
  const plan: PlanReport = buildPlan({ ...input, throughput: throughputOf(flags, measured, perObject) });
  const selection = filterText(flags);
  if (selection) plan.selection = selection;
  if (flags.deleteGone) {
    const candidates = await store.deletionCandidates(filter);
    plan.deletions = {
      objects: candidates.length,
      bytes: candidates.reduce((sum, row) => sum + row.size, 0),
      requests: { head: candidates.length, delete: candidates.length },
      keys: candidates.map((row) => row.destKey),
    };
  }
  return plan;
}

export function renderPlanReport(report: PlanReport, maxDelete?: number): string {
  let text = '';
  if (report.selection) text += `Selection: ${report.selection} (rows outside it stay pending)\n\n`;
  text += renderPlan(report);
  const deletions = report.deletions;
  if (deletions) {
    const lines = [
      '',
      `Deletions (--delete-gone): ${formatCount(deletions.objects)} objects, ${formatBytes(deletions.bytes)} at the destination ` +
        `(HeadObject ${formatCount(deletions.requests.head)}, DeleteObject ${formatCount(deletions.requests.delete)}; ` +
        'each only if the destination still holds the ETag s3migrate wrote)',
      ...deletions.keys.slice(0, 20).map((key) => `  would delete ${key}`),
    ];
    if (deletions.keys.length > 20) lines.push(`  ... and ${formatCount(deletions.keys.length - 20)} more (plan --json lists them all)`);
    if (maxDelete !== undefined && deletions.objects > maxDelete) {
      lines.push(`Warning: more than --max-delete ${maxDelete}: the copy would stop before doing anything (exit 1).`);
    }
    text += `${lines.join('\n')}\n`;
  }
  return text;
}

/** --max-delete N: a whole number, 0 allowed. */
export function parseMaxDelete(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`--max-delete expects a whole number (0 or more), got "${text}"`);
  return Number(text);
}

export const PLAN_DEFAULTS = { multipartThreshold: '64MiB', partSize: '8MiB', concurrency: '32' } as const;
