/**
 * Prices for the plan's cost estimate: a built-in, dated table of list prices, a JSON price file that
 * replaces or adds providers, and the provider an endpoint URL points at.
 *
 * LIST PRICES AS OF 2026-12-01, CHECK BEFORE RELYING. They were written from the providers' public pricing
 * pages (URLs below, one per provider) without access to them on that date: they are the best known
 * list prices, in US dollars, without free tiers, discounts, taxes or committed-use pricing. A price file
 * (--prices FILE.json, parsePriceFile) overrides them.
 *
 * Units: request prices per 1,000 requests; transfer and retrieval prices per GB, where GB = 2^30 bytes
 * (what AWS and Google bill as "GB"). Egress tiers are per calendar month and assume no other egress from
 * the account that month.
 */
import { UsageError } from '../errors.js';

export const PRICES_AS_OF = '2026-12-01';
export const GB = 2 ** 30;

/** The S3 calls the engine makes, as the request model counts them. */
export const REQUEST_TYPES = [
  'get',
  'head',
  'list',
  'put',
  'createMultipartUpload',
  'uploadPart',
  'completeMultipartUpload',
] as const;
export type RequestType = (typeof REQUEST_TYPES)[number];

/** Monthly egress band: up to `upToGB` (cumulative; absent on the last, open-ended band) at `perGB`. */
export interface EgressTier {
  upToGB?: number;
  perGB: number;
}

export interface StorageClassPrices {
  /** Price per 1,000 requests, by the provider's request class name (see requestClasses). */
  per1000Requests: Record<string, number>;
  /** Per GB read out of this class (infrequent-access retrieval fee). */
  retrievalPerGB?: number;
  /** Objects must be restored before they can be read (GLACIER, DEEP_ARCHIVE): not copied, counted apart. */
  archive?: boolean;
}

export interface ProviderPrices {
  id: string;
  name: string;
  currency: string;
  /** The pricing page these prices come from. */
  source?: string;
  /** The date the prices were checked (YYYY-MM-DD). */
  asOf?: string;
  note?: string;
  /** Internet egress, billed by the side data is read from. */
  egress: EgressTier[];
  /** Which request class each call is billed as (AWS: put/get; R2, GCS: A/B; B2: A/B/C). */
  requestClasses: Record<RequestType, string>;
  /** By S3 storage class name, as listings report it; STANDARD is required and prices unknown names. */
  storageClasses: Record<string, StorageClassPrices>;
}

export type PriceTable = Record<string, ProviderPrices>;

export const BUILTIN_PROVIDERS = ['aws', 'r2', 'b2', 'wasabi', 'gcs', 'self-hosted'] as const;
export type BuiltinProvider = (typeof BUILTIN_PROVIDERS)[number];

/** Storage classes that need a restore before a GetObject, whatever the provider says. */
export const ARCHIVE_STORAGE_CLASSES: ReadonlySet<string> = new Set(['GLACIER', 'DEEP_ARCHIVE']);

const AWS_CLASSES: Record<RequestType, string> = {
  get: 'get', // "GET, SELECT, and all other requests"
  head: 'get',
  list: 'put', // "PUT, COPY, POST, LIST requests"
  put: 'put',
  createMultipartUpload: 'put',
  uploadPart: 'put',
  completeMultipartUpload: 'put',
};

const A_B_CLASSES: Record<RequestType, string> = {
  get: 'B',
  head: 'B',
  list: 'A',
  put: 'A',
  createMultipartUpload: 'A',
  uploadPart: 'A',
  completeMultipartUpload: 'A',
};

function allAs(name: string): Record<RequestType, string> {
  return Object.fromEntries(REQUEST_TYPES.map((type) => [type, name])) as Record<RequestType, string>;
}

const BUILTIN: Record<BuiltinProvider, Omit<ProviderPrices, 'id' | 'currency' | 'asOf'>> = {
  aws: {
    name: 'AWS S3 (us-east-1)',
    source: 'https://aws.amazon.com/s3/pricing/',
    note:
      'us-east-1 prices; other regions differ. Egress is to the internet; reading from an EC2 instance in ' +
      "the bucket's region has no transfer charge. The first 100 GB of egress a month are free across the " +
      'account (not counted). INTELLIGENT_TIERING objects in its optional archive tiers must be restored ' +
      'first, which a listing does not show.',
    egress: [
      { upToGB: 10 * 1024, perGB: 0.09 },
      { upToGB: 50 * 1024, perGB: 0.085 },
      { upToGB: 150 * 1024, perGB: 0.07 },
      { perGB: 0.05 },
    ],
    requestClasses: AWS_CLASSES,
    storageClasses: {
      STANDARD: { per1000Requests: { put: 0.005, get: 0.0004 } },
      REDUCED_REDUNDANCY: { per1000Requests: { put: 0.005, get: 0.0004 } },
      INTELLIGENT_TIERING: { per1000Requests: { put: 0.005, get: 0.0004 } },
      STANDARD_IA: { per1000Requests: { put: 0.01, get: 0.001 }, retrievalPerGB: 0.01 },
      ONEZONE_IA: { per1000Requests: { put: 0.01, get: 0.001 }, retrievalPerGB: 0.01 },
      GLACIER_IR: { per1000Requests: { put: 0.02, get: 0.01 }, retrievalPerGB: 0.03 },
      GLACIER: { per1000Requests: { put: 0.03, get: 0.0004 }, archive: true },
      DEEP_ARCHIVE: { per1000Requests: { put: 0.05, get: 0.0004 }, archive: true },
    },
  },
  r2: {
    name: 'Cloudflare R2',
    source: 'https://developers.cloudflare.com/r2/pricing/',
    note:
      'No egress fees. The monthly free tier (1 million Class A, 10 million Class B operations) is not ' +
      'counted. Infrequent Access (STANDARD_IA) has a 30-day minimum storage duration.',
    egress: [{ perGB: 0 }],
    requestClasses: A_B_CLASSES,
    storageClasses: {
      STANDARD: { per1000Requests: { A: 0.0045, B: 0.00036 } },
      STANDARD_IA: { per1000Requests: { A: 0.009, B: 0.0009 }, retrievalPerGB: 0.01 },
    },
  },
  b2: {
    name: 'Backblaze B2',
    source: 'https://www.backblaze.com/cloud-storage/pricing',
    note:
      'Egress is free up to 3x the average data stored in the month, then $0.01/GB: one copy of a bucket ' +
      'stays within it, so it is counted as 0. Class A (uploads) is free; Class B (downloads, HeadObject) ' +
      'and Class C (listings) have 2,500 free a day each, not counted ' +
      '(https://www.backblaze.com/cloud-storage/transaction-pricing).',
    egress: [{ perGB: 0 }],
    requestClasses: {
      get: 'B',
      head: 'B',
      list: 'C',
      put: 'A',
      createMultipartUpload: 'A',
      uploadPart: 'A',
      completeMultipartUpload: 'A',
    },
    storageClasses: {
      STANDARD: { per1000Requests: { A: 0, B: 0.0004, C: 0.004 } },
    },
  },
  wasabi: {
    name: 'Wasabi',
    source: 'https://wasabi.com/pricing',
    note:
      'No egress or API request fees under the fair-use policy: monthly egress up to the volume stored ' +
      '(one copy of a bucket stays within it). As a destination: pay-as-you-go objects are billed for at ' +
      'least 90 days and accounts for at least 1 TB of storage (storage is not part of this estimate).',
    egress: [{ perGB: 0 }],
    requestClasses: allAs('request'),
    storageClasses: {
      STANDARD: { per1000Requests: { request: 0 } },
    },
  },
  gcs: {
    name: 'Google Cloud Storage (regional bucket)',
    source: 'https://cloud.google.com/storage/pricing',
    note:
      'Regional-bucket operation prices (multi-region and dual-region Class A operations cost more). ' +
      'Egress is Premium Tier to the internet, worldwide destinations except China and Australia. ' +
      'NEARLINE, COLDLINE and ARCHIVE are read directly (no restore) but have minimum storage durations.',
    egress: [{ upToGB: 1024, perGB: 0.12 }, { upToGB: 10 * 1024, perGB: 0.11 }, { perGB: 0.08 }],
    requestClasses: A_B_CLASSES,
    storageClasses: {
      STANDARD: { per1000Requests: { A: 0.005, B: 0.0004 } },
      MULTI_REGIONAL: { per1000Requests: { A: 0.005, B: 0.0004 } },
      REGIONAL: { per1000Requests: { A: 0.005, B: 0.0004 } },
      NEARLINE: { per1000Requests: { A: 0.01, B: 0.001 }, retrievalPerGB: 0.01 },
      COLDLINE: { per1000Requests: { A: 0.02, B: 0.01 }, retrievalPerGB: 0.02 },
      ARCHIVE: { per1000Requests: { A: 0.05, B: 0.05 }, retrievalPerGB: 0.05 },
    },
  },
  'self-hosted': {
    name: 'Self-hosted (MinIO, Ceph, ...)',
    note: 'Your own servers: no per-request or transfer prices. Give a price file if your network bills transfer.',
    egress: [{ perGB: 0 }],
    requestClasses: allAs('request'),
    storageClasses: {
      STANDARD: { per1000Requests: { request: 0 } },
    },
  },
};

/** The built-in table (a fresh copy each call: callers may change it). */
export function builtinPrices(): PriceTable {
  const table: PriceTable = {};
  for (const id of BUILTIN_PROVIDERS) {
    table[id] = structuredClone({ id, currency: 'USD', asOf: PRICES_AS_OF, ...BUILTIN[id] });
  }
  return table;
}

/** The table with the price file's providers replacing (or added to) the built-in ones. */
export function withPriceFile(table: PriceTable, file: PriceTable): PriceTable {
  return { ...table, ...file };
}

// ---------------------------------------------------------------------------------------------------
// Provider detection

const HOSTS: Array<[string, BuiltinProvider]> = [
  ['amazonaws.com', 'aws'],
  ['amazonaws.com.cn', 'aws'],
  ['r2.cloudflarestorage.com', 'r2'],
  ['backblazeb2.com', 'b2'],
  ['wasabisys.com', 'wasabi'],
  ['storage.googleapis.com', 'gcs'],
];

/**
 * The provider an endpoint URL belongs to, by host name: no endpoint (the SDK's default) is AWS;
 * *.amazonaws.com AWS, *.r2.cloudflarestorage.com R2, *.backblazeb2.com B2, *.wasabisys.com Wasabi,
 * storage.googleapis.com GCS; anything else (MinIO, Ceph, localhost, an IP address) self-hosted.
 */
export function detectProvider(endpoint: string | undefined): BuiltinProvider {
  if (endpoint === undefined || endpoint.trim() === '') return 'aws';
  let host: string;
  try {
    const text = endpoint.trim();
    host = new URL(text.includes('://') ? text : `https://${text}`).hostname.toLowerCase();
  } catch {
    return 'self-hosted';
  }
  host = host.replace(/\.$/, '');
  for (const [domain, provider] of HOSTS) {
    if (host === domain || host.endsWith(`.${domain}`)) return provider;
  }
  return 'self-hosted';
}

/**
 * The prices for one side: the user's choice (`--source-provider` / `--dest-provider`, named by `flag`)
 * when given, else the provider detected from the endpoint.
 */
export function resolveProvider(
  table: PriceTable,
  endpoint: string | undefined,
  chosen: string | undefined,
  flag: string,
): ProviderPrices {
  const id = chosen ?? detectProvider(endpoint);
  const prices = table[id];
  if (!prices) {
    throw new UsageError(`${flag} "${id}" is not a known provider: use one of ${Object.keys(table).join(', ')}`);
  }
  return prices;
}

/** The prices that apply to objects of a storage class (missing or '' = STANDARD; unknown names priced as STANDARD). */
export function storageClassOf(
  provider: ProviderPrices,
  storageClass: string | null | undefined,
): { name: string; prices: StorageClassPrices; known: boolean; archive: boolean } {
  const name = storageClass === null || storageClass === undefined || storageClass === '' ? 'STANDARD' : storageClass;
  const own = provider.storageClasses[name];
  const prices = own ?? provider.storageClasses.STANDARD!;
  return { name, prices, known: own !== undefined, archive: ARCHIVE_STORAGE_CLASSES.has(name) || own?.archive === true };
}

/** Price per 1,000 requests of `type` for objects of a storage class. */
export function requestPrice(provider: ProviderPrices, prices: StorageClassPrices, type: RequestType): number {
  return prices.per1000Requests[provider.requestClasses[type]] ?? 0;
}

// ---------------------------------------------------------------------------------------------------
// Price files

/**
 * Parses a price file. Its shape (every provider complete; it replaces the built-in one of the same id,
 * or adds a provider, e.g. for a colocation MinIO whose network bills transfer):
 *
 * {
 *   "currency": "USD",                       optional, default USD
 *   "providers": {
 *     "aws": {
 *       "name": "AWS S3 (eu-west-1)",         required
 *       "source": "https://...", "asOf": "2026-12-01", "note": "...",   optional
 *       "egress": [ { "upToGB": 10240, "perGB": 0.09 }, { "perGB": 0.05 } ],   last band open-ended
 *       "requestClasses": { "get": "get", "head": "get", "list": "put", "put": "put",
 *                           "createMultipartUpload": "put", "uploadPart": "put",
 *                           "completeMultipartUpload": "put" },          all seven calls
 *       "storageClasses": {
 *         "STANDARD":    { "per1000Requests": { "put": 0.005, "get": 0.0004 } },      required
 *         "STANDARD_IA": { "per1000Requests": { "put": 0.01, "get": 0.001 }, "retrievalPerGB": 0.01 },
 *         "GLACIER":     { "per1000Requests": { "put": 0.03, "get": 0.0004 }, "archive": true }
 *       }
 *     }
 *   }
 * }
 *
 * Every request class named in requestClasses must have a price in each storage class. Unknown fields
 * are refused (a typo would otherwise silently keep a built-in price). `origin` names the file in errors.
 */
export function parsePriceFile(jsonText: string, origin = '--prices'): PriceTable {
  let data: unknown;
  try {
    data = JSON.parse(jsonText);
  } catch (error) {
    throw new UsageError(`${origin}: not valid JSON (${(error as Error).message})`);
  }
  const fail = (path: string, why: string): never => {
    throw new UsageError(`${origin}: ${path} ${why}`);
  };
  const root = object(data, '(the file)', fail);
  only(root, ['currency', 'providers'], '', fail);
  const currency = root.currency === undefined ? 'USD' : text(root.currency, 'currency', fail);
  if (!/^[A-Z]{3}$/.test(currency)) fail('currency', `must be a three-letter code such as USD, got "${currency}"`);
  if (root.providers === undefined) fail('providers', 'is missing');
  const providers = object(root.providers, 'providers', fail);
  if (Object.keys(providers).length === 0) fail('providers', 'must name at least one provider');
  const table: PriceTable = {};
  for (const [id, value] of Object.entries(providers)) {
    const path = `providers.${id}`;
    if (!/^[a-z0-9][a-z0-9-]*$/.test(id)) fail(path, 'must be named with lowercase letters, digits and -');
    table[id] = provider(id, value, path, currency, fail);
  }
  return table;
}

type Fail = (path: string, why: string) => never;

function shown(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? `"${value}"` : typeof value === 'object' ? 'an object' : String(value);
}

function object(value: unknown, path: string, fail: Fail): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail(path, `must be an object, got ${shown(value)}`);
  }
  return value as Record<string, unknown>;
}

function text(value: unknown, path: string, fail: Fail): string {
  if (typeof value !== 'string' || value.trim() === '') return fail(path, `must be a non-empty string, got ${shown(value)}`);
  return value;
}

function amount(value: unknown, path: string, fail: Fail): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    return fail(path, `must be a number >= 0, got ${shown(value)}`);
  }
  return value;
}

function only(value: Record<string, unknown>, allowed: string[], path: string, fail: Fail): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      fail(path === '' ? key : `${path}.${key}`, `is not a known field (known: ${allowed.join(', ')})`);
    }
  }
}

function provider(id: string, value: unknown, path: string, currency: string, fail: Fail): ProviderPrices {
  const entry = object(value, path, fail);
  only(entry, ['name', 'source', 'asOf', 'note', 'egress', 'requestClasses', 'storageClasses'], path, fail);
  const result: ProviderPrices = {
    id,
    name: text(entry.name, `${path}.name`, fail),
    currency,
    egress: [],
    requestClasses: {} as Record<RequestType, string>,
    storageClasses: {},
  };
  for (const field of ['source', 'asOf', 'note'] as const) {
    if (entry[field] !== undefined) result[field] = text(entry[field], `${path}.${field}`, fail);
  }
  if (result.asOf !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(result.asOf)) {
    fail(`${path}.asOf`, `must be a date such as 2026-12-01, got "${result.asOf}"`);
  }

  if (!Array.isArray(entry.egress) || entry.egress.length === 0) {
    fail(`${path}.egress`, `must be a non-empty array of { "upToGB", "perGB" } bands, got ${shown(entry.egress)}`);
  }
  const bands = entry.egress as unknown[];
  let previous = 0;
  bands.forEach((band, i) => {
    const bandPath = `${path}.egress[${i}]`;
    const fields = object(band, bandPath, fail);
    only(fields, ['upToGB', 'perGB'], bandPath, fail);
    const tier: EgressTier = { perGB: amount(fields.perGB, `${bandPath}.perGB`, fail) };
    const last = i === bands.length - 1;
    if (fields.upToGB === undefined || fields.upToGB === null) {
      if (!last) fail(`${bandPath}.upToGB`, 'is required on every band but the last');
    } else {
      if (last) fail(`${bandPath}.upToGB`, 'must be left out on the last band, which has no upper end');
      const upTo = amount(fields.upToGB, `${bandPath}.upToGB`, fail);
      if (upTo <= previous) fail(`${bandPath}.upToGB`, `must be larger than the band before (${previous})`);
      previous = upTo;
      tier.upToGB = upTo;
    }
    result.egress.push(tier);
  });

  const classes = object(entry.requestClasses, `${path}.requestClasses`, fail);
  only(classes, [...REQUEST_TYPES], `${path}.requestClasses`, fail);
  for (const type of REQUEST_TYPES) {
    if (classes[type] === undefined) fail(`${path}.requestClasses.${type}`, 'is missing');
    result.requestClasses[type] = text(classes[type], `${path}.requestClasses.${type}`, fail);
  }
  const priceClasses = [...new Set(Object.values(result.requestClasses))];

  const storage = object(entry.storageClasses, `${path}.storageClasses`, fail);
  if (storage.STANDARD === undefined) fail(`${path}.storageClasses.STANDARD`, 'is missing (it prices unknown classes too)');
  for (const [name, prices] of Object.entries(storage)) {
    const classPath = `${path}.storageClasses.${name}`;
    const fields = object(prices, classPath, fail);
    only(fields, ['per1000Requests', 'retrievalPerGB', 'archive'], classPath, fail);
    const per1000 = object(fields.per1000Requests, `${classPath}.per1000Requests`, fail);
    const parsed: StorageClassPrices = { per1000Requests: {} };
    for (const [priceClass, price] of Object.entries(per1000)) {
      if (!priceClasses.includes(priceClass)) {
        fail(
          `${classPath}.per1000Requests.${priceClass}`,
          `is not a request class used in requestClasses (${priceClasses.join(', ')})`,
        );
      }
      parsed.per1000Requests[priceClass] = amount(price, `${classPath}.per1000Requests.${priceClass}`, fail);
    }
    for (const priceClass of priceClasses) {
      if (parsed.per1000Requests[priceClass] === undefined) fail(`${classPath}.per1000Requests.${priceClass}`, 'is missing');
    }
    if (fields.retrievalPerGB !== undefined) {
      parsed.retrievalPerGB = amount(fields.retrievalPerGB, `${classPath}.retrievalPerGB`, fail);
    }
    if (fields.archive !== undefined) {
      if (typeof fields.archive !== 'boolean') fail(`${classPath}.archive`, `must be true or false, got ${shown(fields.archive)}`);
      parsed.archive = fields.archive as boolean;
    }
    if (name === 'STANDARD' && parsed.archive) fail(`${classPath}.archive`, 'cannot be true for STANDARD');
    result.storageClasses[name] = parsed;
  }
  return result;
}
