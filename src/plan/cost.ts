/**
 * The plan: what a copy of the pending objects would do (objects, bytes, requests), how long it would
 * take and what it would cost, as one JSON-ready object (`plan --json`, `copy --dry-run`). Pure: the store
 * supplies the numbers (size groups, see request-model.ts), the CLI the prices and the throughput.
 *
 * Cost formula (prices from prices.ts; n_t = requests of type t from the request model; GB = 2^30 bytes):
 *   source requests  = sum over source storage classes c of  sum over t in {get, head}
 *                        n_t(c) x P_src[c][class_src(t)] / 1000
 *                      + n_list x P_src[STANDARD][class_src(list)] / 1000
 *   source retrieval = sum over c of  bytes read from c / GB x R_src[c]        (infrequent-access classes)
 *   source egress    = tiered(bytes read / GB, E_src)                          (0 with sourceEgress 'none')
 *   dest requests    = sum over t in {put, createMultipartUpload, uploadPart, completeMultipartUpload, head}
 *                        n_t x P_dst[d][class_dst(t)] / 1000,   d = the destination storage class
 *                        (with 'keep', d = each object's source class)
 *   total            = source requests + source retrieval + source egress + dest requests
 * where P[c][k] is the price per 1,000 requests of request class k for storage class c (unknown classes
 * priced as STANDARD, with a warning), class(t) the provider's billing class of call t (AWS: list and
 * every write are PUT-class, get and head GET-class; R2 and GCS: writes and list Class A, get and head
 * Class B; B2: writes Class A, get and head Class B, list Class C), R[c] the retrieval fee per GB and E the
 * monthly egress bands: tiered(x) = sum over bands of (GB of x falling in the band) x band price.
 * Writing is free at every listed provider (no ingress fee). Archived objects (GLACIER, DEEP_ARCHIVE, or a
 * class the price table marks archive) cannot be read without a restore: they are counted apart and left
 * out of requests, bytes, time and cost.
 * Not included: storage at the destination, minimum storage durations and early-deletion fees, free
 * tiers, taxes, retries, and restoring archived objects.
 *
 * Duration = max(bytes / bytesPerSecond, requests / requestsPerSecond): whichever of bandwidth and request
 * rate runs out first, with both sides' requests counted (they share the objects in flight).
 */
import { UsageError } from '../errors.js';
import {
  type DestRequests,
  type RequestRules,
  type SizeGroup,
  type SourceRequests,
  type TransferEstimate,
  type TransferShape,
  addGroup,
  emptyEstimate,
  listRequests,
  rulesOf,
} from './request-model.js';
import {
  type EgressTier,
  type ProviderPrices,
  type RequestType,
  type StorageClassPrices,
  GB,
  PRICES_AS_OF,
  requestPrice,
  storageClassOf,
} from './prices.js';

const MIB = 1024 * 1024;

/** Throughput the duration estimate assumes. */
export interface Throughput {
  /** Bytes per second read from the source (and written to the destination). */
  bytesPerSecond: number;
  /** Requests per second, both sides together. */
  requestsPerSecond: number;
  /** Where the numbers come from, for the reader ("measured: last copy run", "assumed: ..."). */
  basis: string;
}

/** Assumed when nothing was measured: 100 MiB/s (a rented VM's network), and 100 ms per request per object in flight. */
export const ASSUMED_BYTES_PER_SECOND = 100 * MIB;
export const ASSUMED_SECONDS_PER_REQUEST = 0.1;

/** The throughput to assume from the copy settings (--concurrency, --max-bandwidth, --max-requests-per-second). */
export function assumedThroughput(settings: {
  concurrency: number;
  maxBandwidth?: number;
  maxRequestsPerSecond?: number;
}): Throughput {
  const bandwidth = Math.min(settings.maxBandwidth ?? Infinity, ASSUMED_BYTES_PER_SECOND);
  const byConcurrency = settings.concurrency / ASSUMED_SECONDS_PER_REQUEST;
  const requests = Math.min(settings.maxRequestsPerSecond ?? Infinity, byConcurrency);
  const parts = [
    settings.maxBandwidth !== undefined && settings.maxBandwidth <= ASSUMED_BYTES_PER_SECOND
      ? `--max-bandwidth ${formatRate(bandwidth)}`
      : `${formatRate(bandwidth)} assumed`,
    settings.maxRequestsPerSecond !== undefined && settings.maxRequestsPerSecond <= byConcurrency
      ? `--max-requests-per-second ${requests}`
      : `${settings.concurrency} in flight x ${ASSUMED_SECONDS_PER_REQUEST * 1000} ms per request assumed`,
  ];
  return { bytesPerSecond: bandwidth, requestsPerSecond: requests, basis: parts.join(', ') };
}

function formatRate(bytesPerSecond: number): string {
  return `${+(bytesPerSecond / MIB).toFixed(2)} MiB/s`;
}

export interface PlanInput {
  /** The objects still to copy, as size groups (one GROUP BY query: see request-model.ts). */
  objects: Iterable<SizeGroup>;
  transfer: TransferShape;
  source: ProviderPrices;
  dest: ProviderPrices;
  /** Storage class of the copies: a class name, or 'keep' for each object's source class. Default STANDARD. */
  destStorageClass?: string;
  /** 'internet' (default): the source bills egress; 'none': reads are free (e.g. from the bucket's own region). */
  sourceEgress?: 'internet' | 'none';
  /** Keys a catalog pass would list first (adds source ListObjectsV2 requests); omitted: no listing. */
  catalogKeys?: number;
  throughput: Throughput;
}

export interface RequestCostLine {
  request: RequestType;
  storageClass: string;
  count: number;
  /** The provider's billing class for this call (put/get, A/B/C). */
  requestClass: string;
  per1000: number;
  cost: number;
}

export interface RetrievalCostLine {
  storageClass: string;
  bytes: number;
  perGB: number;
  cost: number;
}

export interface EgressBandCost {
  /** GB (2^30 bytes) billed in this band. */
  gb: number;
  perGB: number;
  cost: number;
}

export interface SideCost {
  provider: string;
  name: string;
  pricesAsOf?: string;
  pricesSource?: string;
  requests: RequestCostLine[];
  requestsCost: number;
  retrieval: RetrievalCostLine[];
  retrievalCost: number;
  egress: { bytes: number; bands: EgressBandCost[]; cost: number };
  total: number;
}

export interface StorageClassCount {
  storageClass: string;
  objects: number;
  bytes: number;
  archived: boolean;
}

export interface Plan {
  objects: {
    /** What the copy would transfer (archived objects left out). */
    toCopy: { objects: number; bytes: number };
    singlePut: { objects: number; bytes: number };
    multipart: { objects: number; bytes: number; parts: number };
    /** Objects that need a restore first: not copied, not in requests, time or cost. */
    archived: { objects: number; bytes: number };
    byStorageClass: StorageClassCount[];
  };
  requests: { source: SourceRequests; dest: DestRequests; total: number };
  bytes: { read: number; written: number; egress: number };
  duration: {
    seconds: number;
    limitedBy: 'bandwidth' | 'requests';
    bytesPerSecond: number;
    requestsPerSecond: number;
    basis: string;
  };
  cost: { currency: string; source: SideCost; dest: SideCost; total: number };
  settings: {
    multipartThreshold: number;
    partSize: number;
    destStorageClass: string;
    sourceEgress: 'internet' | 'none';
    catalogKeys?: number;
    rules: RequestRules;
  };
  warnings: string[];
  notes: string[];
}

const SOURCE_TYPES = ['get', 'head'] as const;
const DEST_TYPES = ['put', 'createMultipartUpload', 'uploadPart', 'completeMultipartUpload', 'head'] as const;
const DEST_FIELD: Record<(typeof DEST_TYPES)[number], keyof DestRequests> = {
  put: 'put',
  createMultipartUpload: 'createMultipartUpload',
  uploadPart: 'uploadPart',
  completeMultipartUpload: 'completeMultipartUpload',
  head: 'head',
};

/** Money rounded to a billionth, so JSON shows 0.3 and not 0.30000000000000004. */
function money(value: number): number {
  return Math.round(value * 1e9) / 1e9;
}

/** Egress over monthly bands. */
export function tieredEgress(bytes: number, tiers: readonly EgressTier[]): { bands: EgressBandCost[]; cost: number } {
  const gb = bytes / GB;
  const bands: EgressBandCost[] = [];
  let from = 0;
  let cost = 0;
  for (const tier of tiers) {
    const to = tier.upToGB ?? Infinity;
    const inBand = Math.min(gb, to) - from;
    if (inBand > 0) {
      bands.push({ gb: inBand, perGB: tier.perGB, cost: money(inBand * tier.perGB) });
      cost += inBand * tier.perGB;
    }
    if (gb <= to) break;
    from = to;
  }
  return { bands, cost: money(cost) };
}

function add(into: TransferEstimate, from: TransferEstimate): void {
  into.objects += from.objects;
  into.bytes += from.bytes;
  into.bytesRead += from.bytesRead;
  into.bytesWritten += from.bytesWritten;
  into.singlePut.objects += from.singlePut.objects;
  into.singlePut.bytes += from.singlePut.bytes;
  into.multipart.objects += from.multipart.objects;
  into.multipart.bytes += from.multipart.bytes;
  into.multipart.parts += from.multipart.parts;
  for (const key of Object.keys(from.source) as Array<keyof SourceRequests>) into.source[key] += from.source[key];
  for (const key of Object.keys(from.dest) as Array<keyof DestRequests>) into.dest[key] += from.dest[key];
}

export function buildPlan(input: PlanInput): Plan {
  const { source, dest, transfer } = input;
  if (source.currency !== dest.currency) {
    throw new UsageError(
      `--prices: the source's prices (${source.id}) are in ${source.currency} and the destination's (${dest.id}) in ${dest.currency}: give both in one currency`,
    );
  }
  const { bytesPerSecond, requestsPerSecond } = input.throughput;
  if (!(bytesPerSecond > 0) || !(requestsPerSecond > 0)) {
    throw new RangeError(`throughput must be positive, got ${bytesPerSecond} bytes/s and ${requestsPerSecond} requests/s`);
  }
  const destStorageClass = input.destStorageClass ?? 'STANDARD';
  const sourceEgress = input.sourceEgress ?? 'internet';
  const warnings: string[] = [];

  // Per source storage class: what copying its objects takes; archived classes only counted.
  const byClass = new Map<string, { estimate: TransferEstimate; archived: boolean }>();
  for (const group of input.objects) {
    const { name, archive } = storageClassOf(source, group.storageClass);
    let entry = byClass.get(name);
    if (!entry) byClass.set(name, (entry = { estimate: emptyEstimate(), archived: archive }));
    addGroup(entry.estimate, group, transfer);
  }
  const classes = [...byClass.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

  const total = emptyEstimate();
  const archived = { objects: 0, bytes: 0 };
  for (const [, { estimate, archived: isArchived }] of classes) {
    if (isArchived) {
      archived.objects += estimate.objects;
      archived.bytes += estimate.bytes;
    } else {
      add(total, estimate);
    }
  }
  if (input.catalogKeys !== undefined) total.source.list = listRequests(input.catalogKeys, transfer);

  const archivedNames = classes.filter(([, entry]) => entry.archived && entry.estimate.objects > 0).map(([name]) => name);
  if (archived.objects > 0) {
    warnings.push(
      `${archived.objects.toLocaleString('en-US')} archived objects (${archivedNames.join(', ')}) are not counted: they must be restored ` +
        'before they can be copied (s3migrate does not restore them; restored ones copy like the others).',
    );
  }
  const unknownSource = classes
    .filter(([name, entry]) => !entry.archived && entry.estimate.objects > 0 && !storageClassOf(source, name).known)
    .map(([name]) => name);
  if (unknownSource.length > 0) {
    warnings.push(`${source.name} has no prices for storage class ${unknownSource.join(', ')}: priced as STANDARD.`);
  }

  // Source side: requests and retrieval per storage class, listing at STANDARD prices, egress over all.
  const sourceLines: RequestCostLine[] = [];
  const retrieval: RetrievalCostLine[] = [];
  for (const [name, { estimate, archived: isArchived }] of classes) {
    if (isArchived || estimate.objects === 0) continue;
    const { prices } = storageClassOf(source, name);
    for (const type of SOURCE_TYPES) {
      sourceLines.push(requestLine(source, prices, name, type, estimate.source[type]));
    }
    if (prices.retrievalPerGB) {
      retrieval.push({
        storageClass: name,
        bytes: estimate.bytesRead,
        perGB: prices.retrievalPerGB,
        cost: money((estimate.bytesRead / GB) * prices.retrievalPerGB),
      });
    }
  }
  if (total.source.list > 0) {
    sourceLines.push(requestLine(source, storageClassOf(source, 'STANDARD').prices, 'STANDARD', 'list', total.source.list));
  }
  const egressBytes = sourceEgress === 'internet' ? total.bytesRead : 0;
  const egress = tieredEgress(egressBytes, source.egress);

  // Destination side: the copies' storage class (or each source class, with 'keep').
  const destCounts = new Map<string, DestRequests>();
  for (const [name, { estimate, archived: isArchived }] of classes) {
    if (isArchived || estimate.objects === 0) continue;
    const target = destStorageClass === 'keep' ? name : destStorageClass;
    const counts = destCounts.get(target) ?? emptyEstimate().dest;
    for (const key of Object.keys(counts) as Array<keyof DestRequests>) counts[key] += estimate.dest[key];
    destCounts.set(target, counts);
  }
  if (destCounts.size === 0) destCounts.set(destStorageClass === 'keep' ? 'STANDARD' : destStorageClass, emptyEstimate().dest);
  const destLines: RequestCostLine[] = [];
  const unknownDest: string[] = [];
  for (const [name, counts] of destCounts) {
    const { prices, known } = storageClassOf(dest, name);
    if (!known) unknownDest.push(name);
    for (const type of DEST_TYPES) destLines.push(requestLine(dest, prices, name, type, counts[DEST_FIELD[type]]));
  }
  if (unknownDest.length > 0) {
    warnings.push(`${dest.name} has no prices for storage class ${unknownDest.join(', ')}: priced as STANDARD.`);
  }

  const sourceCost = side(source, sourceLines, retrieval, { bytes: egressBytes, ...egress });
  const destCost = side(dest, destLines, [], { bytes: 0, bands: [], cost: 0 });

  const requestsTotal =
    Object.values(total.source).reduce((sum, n) => sum + n, 0) + Object.values(total.dest).reduce((sum, n) => sum + n, 0);
  const byBandwidth = total.bytesRead / input.throughput.bytesPerSecond;
  const byRequests = requestsTotal / input.throughput.requestsPerSecond;

  return {
    objects: {
      toCopy: { objects: total.objects, bytes: total.bytes },
      singlePut: total.singlePut,
      multipart: total.multipart,
      archived,
      byStorageClass: classes.map(([name, entry]) => ({
        storageClass: name,
        objects: entry.estimate.objects,
        bytes: entry.estimate.bytes,
        archived: entry.archived,
      })),
    },
    requests: { source: total.source, dest: total.dest, total: requestsTotal },
    bytes: { read: total.bytesRead, written: total.bytesWritten, egress: egressBytes },
    duration: {
      seconds: Math.max(byBandwidth, byRequests),
      limitedBy: byRequests > byBandwidth ? 'requests' : 'bandwidth',
      bytesPerSecond: input.throughput.bytesPerSecond,
      requestsPerSecond: input.throughput.requestsPerSecond,
      basis: input.throughput.basis,
    },
    cost: { currency: source.currency, source: sourceCost, dest: destCost, total: money(sourceCost.total + destCost.total) },
    settings: {
      multipartThreshold: transfer.multipartThreshold,
      partSize: transfer.partSize,
      destStorageClass,
      sourceEgress,
      ...(input.catalogKeys === undefined ? {} : { catalogKeys: input.catalogKeys }),
      rules: rulesOf(transfer),
    },
    warnings,
    notes: notes(source, dest, sourceEgress),
  };
}

function requestLine(
  provider: ProviderPrices,
  prices: StorageClassPrices,
  storageClass: string,
  type: RequestType,
  count: number,
): RequestCostLine {
  const per1000 = requestPrice(provider, prices, type);
  return {
    request: type,
    storageClass,
    count,
    requestClass: provider.requestClasses[type],
    per1000,
    cost: money((count / 1000) * per1000),
  };
}

function side(
  provider: ProviderPrices,
  requests: RequestCostLine[],
  retrieval: RetrievalCostLine[],
  egress: SideCost['egress'],
): SideCost {
  const requestsCost = money(requests.reduce((sum, line) => sum + line.cost, 0));
  const retrievalCost = money(retrieval.reduce((sum, line) => sum + line.cost, 0));
  return {
    provider: provider.id,
    name: provider.name,
    ...(provider.asOf === undefined ? {} : { pricesAsOf: provider.asOf }),
    ...(provider.source === undefined ? {} : { pricesSource: provider.source }),
    requests: requests.filter((line) => line.count > 0),
    requestsCost,
    retrieval: retrieval.filter((line) => line.bytes > 0),
    retrievalCost,
    egress,
    total: money(requestsCost + retrievalCost + egress.cost),
  };
}

function notes(source: ProviderPrices, dest: ProviderPrices, sourceEgress: 'internet' | 'none'): string[] {
  const dates = [...new Set([source.asOf, dest.asOf].filter((date) => date !== undefined))];
  const list = [
    `Estimate from list prices as of ${dates.join(' / ') || PRICES_AS_OF}: check before relying (--prices FILE.json overrides them).`,
    'Not included: storage at the destination, minimum storage durations, free tiers, taxes, retries, restores.',
  ];
  if (sourceEgress === 'none') list.push('Egress counted as free (sourceEgress: none).');
  for (const provider of source.id === dest.id ? [source] : [source, dest]) {
    if (provider.note) list.push(`${provider.name}: ${provider.note}`);
  }
  return list;
}
