import { describe, expect, it } from 'vitest';
import { MAX_PARTS } from '../../src/copy/part-size.js';
import { UsageError } from '../../src/errors.js';
import { type Plan, type PlanInput, assumedThroughput, buildPlan, tieredEgress } from '../../src/plan/cost.js';
import {
  BUILTIN_PROVIDERS,
  GB,
  PRICES_AS_OF,
  type PriceTable,
  builtinPrices,
  detectProvider,
  parsePriceFile,
  resolveProvider,
  withPriceFile,
} from '../../src/plan/prices.js';
import {
  REQUEST_RULES,
  type SizeGroup,
  type TransferShape,
  estimateTransfer,
  listRequests,
  partsFor,
  sizeGroupsFromRows,
} from '../../src/plan/request-model.js';
import { formatMoney, renderPlan } from '../../src/progress/plan-text.js';

const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;
const TIB = 1024 * GIB;

const SHAPE: TransferShape = { multipartThreshold: 64 * MIB, partSize: 8 * MIB };
const PRICES = builtinPrices();
const THROUGHPUT = { bytesPerSecond: 100 * MIB, requestsPerSecond: 320, basis: 'test' };

function one(size: number, shape: TransferShape = SHAPE) {
  return estimateTransfer([{ size, count: 1 }], shape);
}

describe('request model', () => {
  it('a 0-byte object is one GetObject and one PutObject', () => {
    const estimate = one(0);
    expect(estimate.singlePut).toEqual({ objects: 1, bytes: 0 });
    expect(estimate.multipart).toEqual({ objects: 0, bytes: 0, parts: 0 });
    expect(estimate.source).toEqual({ get: 1, head: 0, list: 0 });
    expect(estimate.dest).toEqual({ put: 1, createMultipartUpload: 0, uploadPart: 0, completeMultipartUpload: 0, head: 0 });
  });

  it('an object of exactly the threshold still goes as one PutObject', () => {
    expect(partsFor(64 * MIB, SHAPE)).toBe(0);
    const estimate = one(64 * MIB);
    expect(estimate.source.get).toBe(1);
    expect(estimate.dest.put).toBe(1);
    expect(estimate.bytesRead).toBe(64 * MIB);
    expect(estimate.bytesWritten).toBe(64 * MIB);
  });

  it('one byte over the threshold is a multipart upload with one ranged GetObject per part', () => {
    expect(partsFor(64 * MIB + 1, SHAPE)).toBe(9); // 8 parts of 8 MiB and 1 byte
    const estimate = one(64 * MIB + 1);
    expect(estimate.multipart).toEqual({ objects: 1, bytes: 64 * MIB + 1, parts: 9 });
    expect(estimate.source).toEqual({ get: 9, head: 0, list: 0 });
    expect(estimate.dest).toEqual({ put: 0, createMultipartUpload: 1, uploadPart: 9, completeMultipartUpload: 1, head: 0 });
  });

  it('raises the part size so no object needs more than 10,000 parts', () => {
    expect(partsFor(MAX_PARTS * 8 * MIB, SHAPE)).toBe(10_000); // exactly 10,000 parts of 8 MiB
    expect(partsFor(MAX_PARTS * 8 * MIB + 1, SHAPE)).toBe(8889); // 9 MiB parts
    expect(partsFor(100 * GIB, SHAPE)).toBe(9310); // 11 MiB parts: ceil(102,400 / 11)
    expect(partsFor(5 * TIB, SHAPE)).toBe(9987); // 525 MiB parts, the largest S3 object
    const estimate = one(100 * GIB);
    expect(estimate.source.get).toBe(9310);
    expect(estimate.dest.uploadPart).toBe(9310);
    expect(estimate.dest.createMultipartUpload).toBe(1);
    expect(estimate.dest.completeMultipartUpload).toBe(1);
  });

  it('with a part size above the threshold, a multipart object may have one part', () => {
    expect(partsFor(70 * MIB, { multipartThreshold: 64 * MIB, partSize: 128 * MIB })).toBe(1);
  });

  it('adds groups: aggregated small objects and exact sizes above the threshold', () => {
    const groups: SizeGroup[] = [
      { count: 1000, bytes: 1000 * MIB, maxSize: 64 * MIB },
      { size: 100 * MIB, count: 2 },
      { size: 0, count: 5 },
      { size: 1, count: 0 },
    ];
    const estimate = estimateTransfer(groups, SHAPE);
    expect(estimate.objects).toBe(1007);
    expect(estimate.bytes).toBe(1200 * MIB);
    expect(estimate.singlePut).toEqual({ objects: 1005, bytes: 1000 * MIB });
    expect(estimate.multipart).toEqual({ objects: 2, bytes: 200 * MIB, parts: 26 });
    expect(estimate.source.get).toBe(1005 + 26);
    expect(estimate.dest).toEqual({ put: 1005, createMultipartUpload: 2, uploadPart: 26, completeMultipartUpload: 2, head: 0 });
  });

  it('refuses an aggregated group that may hold multipart objects', () => {
    expect(() => estimateTransfer([{ count: 1, bytes: 100 * MIB, maxSize: 128 * MIB }], SHAPE)).toThrow(RangeError);
    expect(() => estimateTransfer([{ size: -1, count: 1 }], SHAPE)).toThrow(RangeError);
    expect(() => estimateTransfer([{ size: 1, count: Number.NaN }], SHAPE)).toThrow(RangeError);
  });

  it('turns the GROUP BY rows into groups', () => {
    const groups = sizeGroupsFromRows(
      [
        { storageClass: null, size: null, count: 10, bytes: 12345 },
        { storageClass: 'STANDARD_IA', size: 70 * MIB, count: 3, bytes: 210 * MIB },
      ],
      64 * MIB,
    );
    expect(groups).toEqual([
      { count: 10, bytes: 12345, maxSize: 64 * MIB, storageClass: null },
      { size: 70 * MIB, count: 3, storageClass: 'STANDARD_IA' },
    ]);
    expect(estimateTransfer(groups, SHAPE).multipart.parts).toBe(27);
  });

  it('counts HeadObject and listings by the named rules', () => {
    expect(REQUEST_RULES).toMatchObject({ listPageSize: 1000, sourceGetsPerPart: 1, sourceHeadsPerObject: 0, destHeadsPerObject: 0 });
    const shape = { ...SHAPE, rules: { destHeadsPerObject: 1, sourceHeadsPerObject: 1 } };
    const estimate = estimateTransfer([{ size: 1, count: 3 }, { size: 65 * MIB, count: 2 }], shape);
    expect(estimate.source.head).toBe(5);
    expect(estimate.dest.head).toBe(5);
    expect([0, 1, 1000, 1001, 2_500_000].map((keys) => listRequests(keys))).toEqual([1, 1, 1, 2, 2500]);
    expect(listRequests(1001, { rules: { listPageSize: 500 } })).toBe(3);
  });

  it('can describe one streamed GetObject per multipart object instead of one per part', () => {
    const streamed = { ...SHAPE, rules: { sourceGetsPerPart: 0, sourceGetsPerMultipart: 1 } };
    const estimate = estimateTransfer([{ size: 1, count: 3 }, { size: 100 * MIB, count: 2 }], streamed);
    expect(estimate.source.get).toBe(3 + 2);
    expect(estimate.dest.uploadPart).toBe(26);
  });
});

/** 1,000 objects of 1 MiB (aggregated) and 2 of 100 MiB (13 parts each): 1,200 MiB = 1.171875 GB. */
const EXAMPLE: SizeGroup[] = [
  { count: 1000, bytes: 1000 * MIB, maxSize: 64 * MIB },
  { size: 100 * MIB, count: 2 },
];
// Source GETs: 1,000 + 26 = 1,026. Destination writes: 1,000 PUT + 2 Create + 26 UploadPart + 2 Complete = 1,030.

function plan(source: string, dest: string, extra: Partial<PlanInput> = {}, objects: SizeGroup[] = EXAMPLE): Plan {
  return buildPlan({
    objects,
    transfer: SHAPE,
    source: PRICES[source]!,
    dest: PRICES[dest]!,
    throughput: THROUGHPUT,
    ...extra,
  });
}

describe('cost, checked by hand on 1,002 objects / 1,200 MiB', () => {
  it('AWS S3 as source: GET-class requests and $0.09/GB egress', () => {
    const result = plan('aws', 'self-hosted');
    expect(result.requests.source).toEqual({ get: 1026, head: 0, list: 0 });
    // 1,026 x $0.0004/1000 = $0.0004104; 1.171875 GB x $0.09 = $0.10546875
    expect(result.cost.source.requestsCost).toBeCloseTo(0.0004104, 6);
    expect(result.cost.source.egress.cost).toBeCloseTo(0.10546875, 6);
    expect(result.cost.source.total).toBeCloseTo(0.10587915, 6);
    expect(result.cost.dest.total).toBe(0);
    expect(result.cost.total).toBeCloseTo(0.10587915, 6);
    expect(result.bytes).toEqual({ read: 1200 * MIB, written: 1200 * MIB, egress: 1200 * MIB });
  });

  it('AWS S3 as destination: every write PUT-class at $0.005/1000, no ingress fee', () => {
    const result = plan('self-hosted', 'aws');
    expect(result.cost.dest.requests.map((line) => [line.request, line.count, line.requestClass])).toEqual([
      ['put', 1000, 'put'],
      ['createMultipartUpload', 2, 'put'],
      ['uploadPart', 26, 'put'],
      ['completeMultipartUpload', 2, 'put'],
    ]);
    expect(result.cost.dest.total).toBeCloseTo((1030 * 0.005) / 1000, 9); // $0.00515
    expect(result.cost.source.total).toBe(0);
  });

  it('AWS S3: a catalog pass lists at PUT-class prices', () => {
    const result = plan('aws', 'self-hosted', { catalogKeys: 2500 });
    expect(result.requests.source.list).toBe(3);
    const list = result.cost.source.requests.find((line) => line.request === 'list')!;
    expect(list).toMatchObject({ count: 3, requestClass: 'put', per1000: 0.005 });
    expect(list.cost).toBeCloseTo(0.000015, 9);
  });

  it('Cloudflare R2: no egress; Class B reads at $0.36/M, Class A writes at $4.50/M', () => {
    const out = plan('r2', 'self-hosted');
    expect(out.cost.source.egress.cost).toBe(0);
    expect(out.cost.source.total).toBeCloseTo((1026 * 0.36) / 1e6, 9); // $0.00036936
    const into = plan('self-hosted', 'r2');
    expect(into.cost.dest.total).toBeCloseTo((1030 * 4.5) / 1e6, 9); // $0.004635
    expect(into.cost.dest.requests.every((line) => line.requestClass === 'A')).toBe(true);
  });

  it('Backblaze B2: free uploads, Class B downloads, Class C listings, egress counted as free', () => {
    const out = plan('b2', 'self-hosted', { catalogKeys: 2500 });
    // 1,026 x $0.004/10,000 + 3 x $0.004/1,000
    expect(out.cost.source.total).toBeCloseTo(1026 * 0.0000004 + 3 * 0.000004, 9);
    expect(out.cost.source.requests.find((line) => line.request === 'list')!.requestClass).toBe('C');
    expect(plan('self-hosted', 'b2').cost.dest.total).toBe(0);
  });

  it('Wasabi: no egress, no request fees', () => {
    expect(plan('wasabi', 'wasabi', { catalogKeys: 5000 }).cost.total).toBe(0);
    expect(plan('wasabi', 'self-hosted').notes.join(' ')).toMatch(/fair-use/);
  });

  it('Google Cloud Storage: Class B reads, $0.12/GB egress, Class A writes', () => {
    const out = plan('gcs', 'self-hosted');
    expect(out.cost.source.requestsCost).toBeCloseTo(0.0004104, 6); // 1,026 x $0.004/10,000
    expect(out.cost.source.egress.cost).toBeCloseTo(1.171875 * 0.12, 6); // $0.140625
    expect(out.cost.source.total).toBeCloseTo(0.1410354, 6);
    expect(plan('self-hosted', 'gcs').cost.dest.total).toBeCloseTo((1030 * 0.005) / 1000, 9);
  });

  it('self-hosted: nothing', () => {
    const result = plan('self-hosted', 'self-hosted', { catalogKeys: 10_000 });
    expect(result.cost.total).toBe(0);
    expect(result.requests.total).toBe(1026 + 1030 + 10);
  });

  it('AWS to R2 end to end', () => {
    const result = plan('aws', 'r2');
    expect(result.cost.total).toBeCloseTo(0.10587915 + 0.004635, 6);
    expect(result.cost.currency).toBe('USD');
    expect(result.objects.toCopy).toEqual({ objects: 1002, bytes: 1200 * MIB });
    expect(result.objects.multipart).toEqual({ objects: 2, bytes: 200 * MIB, parts: 26 });
  });

  it('no egress when the source is read from its own region', () => {
    const result = plan('aws', 'aws', { sourceEgress: 'none' });
    expect(result.cost.source.egress).toEqual({ bytes: 0, bands: [], cost: 0 });
    expect(result.bytes.egress).toBe(0);
    expect(result.bytes.read).toBe(1200 * MIB);
  });
});

describe('tiered egress', () => {
  it('AWS bands: 10 TB at $0.09, 40 TB at $0.085, 100 TB at $0.07, then $0.05', () => {
    const aws = PRICES.aws!.egress;
    expect(tieredEgress(10 * GB, aws).cost).toBeCloseTo(0.9, 9);
    expect(tieredEgress(20 * 1024 * GB, aws).cost).toBeCloseTo(10240 * 0.09 + 10240 * 0.085, 6); // $1,792
    const big = tieredEgress(200 * 1024 * GB, aws);
    expect(big.cost).toBeCloseTo(921.6 + 3481.6 + 7168 + 2560, 6); // $14,131.20
    expect(big.bands.map((band) => band.gb)).toEqual([10240, 40960, 102400, 51200]);
    expect(tieredEgress(0, aws)).toEqual({ bands: [], cost: 0 });
  });

  it('GCS bands: 1 TB at $0.12, 9 TB at $0.11, then $0.08', () => {
    expect(tieredEgress(2 * 1024 * GB, PRICES.gcs!.egress).cost).toBeCloseTo(122.88 + 112.64, 6);
    expect(tieredEgress(11 * 1024 * GB, PRICES.gcs!.egress).cost).toBeCloseTo(122.88 + 1013.76 + 81.92, 6);
  });
});

describe('storage classes', () => {
  it('infrequent-access reads pay retrieval per GB and their own request prices', () => {
    const objects: SizeGroup[] = [{ size: GIB, count: 10, storageClass: 'STANDARD_IA' }]; // 128 parts each
    const result = plan('aws', 'self-hosted', {}, objects);
    expect(result.requests.source.get).toBe(1280);
    expect(result.cost.source.requestsCost).toBeCloseTo(1280 * 0.000001, 9); // $0.001/1000
    expect(result.cost.source.retrieval).toEqual([{ storageClass: 'STANDARD_IA', bytes: 10 * GIB, perGB: 0.01, cost: 0.1 }]);
    expect(result.cost.source.egress.cost).toBeCloseTo(0.9, 9);
    expect(result.cost.source.total).toBeCloseTo(1.00128, 9);
    const glacierIr = plan('aws', 'self-hosted', {}, [{ size: GIB, count: 1, storageClass: 'GLACIER_IR' }]);
    expect(glacierIr.cost.source.retrievalCost).toBeCloseTo(0.03, 9);
    const nearline = plan('gcs', 'self-hosted', {}, [{ size: GIB, count: 1, storageClass: 'NEARLINE' }]);
    expect(nearline.cost.source.retrievalCost).toBeCloseTo(0.01, 9);
    const r2ia = plan('r2', 'self-hosted', {}, [{ count: 1000, bytes: GIB, maxSize: MIB, storageClass: 'STANDARD_IA' }]);
    expect(r2ia.cost.source.total).toBeCloseTo((1000 * 0.9) / 1e6 + 0.01, 9);
  });

  it('archived objects are counted apart and left out of requests, time and cost', () => {
    const objects: SizeGroup[] = [
      { size: MIB, count: 10 },
      { size: 200 * MIB, count: 3, storageClass: 'GLACIER' },
      { count: 5, bytes: 5 * MIB, maxSize: 64 * MIB, storageClass: 'DEEP_ARCHIVE' },
    ];
    const result = plan('aws', 'r2', {}, objects);
    expect(result.objects.archived).toEqual({ objects: 8, bytes: 605 * MIB });
    expect(result.objects.toCopy).toEqual({ objects: 10, bytes: 10 * MIB });
    expect(result.requests.source.get).toBe(10);
    expect(result.requests.dest.put).toBe(10);
    expect(result.requests.dest.uploadPart).toBe(0);
    expect(result.bytes.read).toBe(10 * MIB);
    expect(result.objects.byStorageClass).toEqual([
      { storageClass: 'DEEP_ARCHIVE', objects: 5, bytes: 5 * MIB, archived: true },
      { storageClass: 'GLACIER', objects: 3, bytes: 600 * MIB, archived: true },
      { storageClass: 'STANDARD', objects: 10, bytes: 10 * MIB, archived: false },
    ]);
    expect(result.warnings.join(' ')).toMatch(/8 archived objects \(DEEP_ARCHIVE, GLACIER\) are not counted: they must be restored/);
    // GLACIER is an archive class on any provider, even one whose table does not list it.
    expect(plan('self-hosted', 'self-hosted', {}, objects).objects.archived.objects).toBe(8);
  });

  it('prices unknown classes as STANDARD, with a warning', () => {
    const result = plan('aws', 'r2', {}, [{ size: MIB, count: 1000, storageClass: 'EXPRESS_ONEZONE' }]);
    expect(result.cost.source.requestsCost).toBeCloseTo(0.0004, 9);
    expect(result.warnings).toEqual(['AWS S3 (us-east-1) has no prices for storage class EXPRESS_ONEZONE: priced as STANDARD.']);
    const dest = plan('self-hosted', 'r2', { destStorageClass: 'GLACIER_IR' });
    expect(dest.warnings).toEqual(['Cloudflare R2 has no prices for storage class GLACIER_IR: priced as STANDARD.']);
  });

  it('prices writes at the destination storage class, or the source class with keep', () => {
    const ia = plan('self-hosted', 'aws', { destStorageClass: 'STANDARD_IA' });
    expect(ia.cost.dest.total).toBeCloseTo((1030 * 0.01) / 1000, 9);
    const objects: SizeGroup[] = [
      { size: MIB, count: 1000 },
      { size: MIB, count: 1000, storageClass: 'GLACIER_IR' },
    ];
    const keep = plan('aws', 'aws', { destStorageClass: 'keep' }, objects);
    expect(keep.cost.dest.requests.map((line) => [line.storageClass, line.count, line.per1000])).toEqual([
      ['GLACIER_IR', 1000, 0.02],
      ['STANDARD', 1000, 0.005],
    ]);
    expect(keep.cost.dest.total).toBeCloseTo(0.005 + 0.02, 9);
  });

  it('refuses prices in two currencies', () => {
    const eur = { ...PRICES.r2!, currency: 'EUR' };
    expect(() => buildPlan({ objects: EXAMPLE, transfer: SHAPE, source: PRICES.aws!, dest: eur, throughput: THROUGHPUT })).toThrow(
      UsageError,
    );
  });
});

describe('duration', () => {
  it('is bound by bandwidth or by requests, whichever runs out first', () => {
    const big = plan('aws', 'r2');
    expect(big.duration.seconds).toBeCloseTo(12, 9); // 1,200 MiB at 100 MiB/s; 2,056 requests at 320/s is 6.4 s
    expect(big.duration.limitedBy).toBe('bandwidth');
    const small = plan('aws', 'r2', {}, [{ count: 100_000, bytes: 100_000 * KIB, maxSize: 64 * MIB }]);
    expect(small.requests.total).toBe(200_000);
    expect(small.duration.seconds).toBeCloseTo(625, 9); // 200,000 requests at 320/s; 98 MiB take 1 s
    expect(small.duration.limitedBy).toBe('requests');
  });

  it('assumes 100 MiB/s and 100 ms per request per object in flight, within the rate flags', () => {
    expect(assumedThroughput({ concurrency: 32 })).toEqual({
      bytesPerSecond: 100 * MIB,
      requestsPerSecond: 320,
      basis: '100 MiB/s assumed, 32 in flight x 100 ms per request assumed',
    });
    const limited = assumedThroughput({ concurrency: 32, maxBandwidth: 10 * MIB, maxRequestsPerSecond: 50 });
    expect(limited).toMatchObject({ bytesPerSecond: 10 * MIB, requestsPerSecond: 50 });
    expect(limited.basis).toBe('--max-bandwidth 10 MiB/s, --max-requests-per-second 50');
    expect(() => plan('aws', 'r2', { throughput: { ...THROUGHPUT, bytesPerSecond: 0 } })).toThrow(RangeError);
  });
});

describe('providers', () => {
  it.each<[string | undefined, string]>([
    [undefined, 'aws'],
    ['', 'aws'],
    ['https://s3.us-east-1.amazonaws.com', 'aws'],
    ['https://s3.eu-west-1.amazonaws.com/', 'aws'],
    ['s3.amazonaws.com', 'aws'],
    ['https://s3.cn-north-1.amazonaws.com.cn', 'aws'],
    ['https://0123456789abcdef.r2.cloudflarestorage.com', 'r2'],
    ['https://0123456789abcdef.eu.r2.cloudflarestorage.com', 'r2'],
    ['https://s3.us-west-004.backblazeb2.com', 'b2'],
    ['https://s3.eu-central-1.wasabisys.com', 'wasabi'],
    ['https://S3.WASABISYS.COM', 'wasabi'],
    ['https://storage.googleapis.com', 'gcs'],
    ['http://127.0.0.1:9000', 'self-hosted'],
    ['http://minio:9000', 'self-hosted'],
    ['minio.internal:9000', 'self-hosted'],
    ['https://amazonaws.com.evil.example', 'self-hosted'],
    ['https://notamazonaws.com', 'self-hosted'],
    ['https://storage.googleapis.com.example', 'self-hosted'],
    ['::not a url::', 'self-hosted'],
  ])('%j is %s', (endpoint, provider) => {
    expect(detectProvider(endpoint)).toBe(provider);
  });

  it('the user choice wins over detection; unknown names are refused naming the flag', () => {
    expect(resolveProvider(PRICES, 'http://127.0.0.1:9000', 'wasabi', '--source-provider').id).toBe('wasabi');
    expect(resolveProvider(PRICES, 'https://x.r2.cloudflarestorage.com', undefined, '--dest-provider').id).toBe('r2');
    expect(() => resolveProvider(PRICES, undefined, 'azure', '--dest-provider')).toThrow(
      /--dest-provider "azure" is not a known provider: use one of aws, r2, b2, wasabi, gcs, self-hosted/,
    );
  });

  it('the built-in table is dated, sourced and valid under the price-file rules', () => {
    expect(PRICES_AS_OF).toBe('2026-12-01');
    expect(Object.keys(PRICES)).toEqual([...BUILTIN_PROVIDERS]);
    const file = { currency: 'USD', providers: {} as Record<string, unknown> };
    for (const [id, prices] of Object.entries(PRICES)) {
      expect(prices.asOf).toBe('2026-12-01');
      if (id !== 'self-hosted') expect(prices.source).toMatch(/^https:\/\//);
      const { id: _id, currency: _currency, ...entry } = prices;
      file.providers[id] = entry;
    }
    expect(parsePriceFile(JSON.stringify(file))).toEqual(PRICES);
    // A fresh copy each time: changing one does not change the next.
    PRICES.aws!.egress[0]!.perGB = 1;
    expect(builtinPrices().aws!.egress[0]!.perGB).toBe(0.09);
    PRICES.aws!.egress[0]!.perGB = 0.09;
  });
});

describe('price files', () => {
  const minimal = {
    providers: {
      'colo-minio': {
        name: 'MinIO in our colocation',
        egress: [{ upToGB: 1000, perGB: 0 }, { perGB: 0.02 }],
        requestClasses: {
          get: 'any',
          head: 'any',
          list: 'any',
          put: 'any',
          createMultipartUpload: 'any',
          uploadPart: 'any',
          completeMultipartUpload: 'any',
        },
        storageClasses: { STANDARD: { per1000Requests: { any: 0 } } },
      },
    },
  };

  it('adds or replaces providers, and their prices are used', () => {
    const file = parsePriceFile(JSON.stringify(minimal), 'prices.json');
    expect(file['colo-minio']).toMatchObject({ id: 'colo-minio', currency: 'USD', name: 'MinIO in our colocation' });
    const table: PriceTable = withPriceFile(builtinPrices(), file);
    expect(Object.keys(table)).toContain('aws');
    const source = resolveProvider(table, 'http://10.0.0.5:9000', 'colo-minio', '--source-provider');
    const result = buildPlan({
      objects: [{ size: 2000 * GIB, count: 1 }],
      transfer: SHAPE,
      source,
      dest: table.r2!,
      throughput: THROUGHPUT,
    });
    expect(result.cost.source.egress.cost).toBeCloseTo(1000 * 0.02, 9); // 1,000 GB free, 1,000 GB at $0.02
    expect(result.cost.source.pricesAsOf).toBeUndefined();
    const replaced = withPriceFile(table, { r2: { ...table.r2!, name: 'R2 (negotiated)' } });
    expect(replaced.r2!.name).toBe('R2 (negotiated)');
  });

  type Mutation = (file: any) => void;
  const broken = (mutate: Mutation): string => {
    const file = structuredClone(minimal) as any;
    mutate(file);
    return JSON.stringify(file);
  };

  it.each<[string, string, RegExp]>([
    ['not JSON', '{"providers": ', /^prices\.json: not valid JSON/],
    ['an array', '[]', /^prices\.json: \(the file\) must be an object, got an array/],
    ['no providers', '{}', /^prices\.json: providers is missing/],
    ['empty providers', '{"providers": {}}', /providers must name at least one provider/],
    ['a typo at the top', broken((f) => (f.provider = {})), /^prices\.json: provider is not a known field/],
    ['a bad currency', broken((f) => (f.currency = 'usd')), /currency must be a three-letter code/],
    ['a bad provider id', broken((f) => (f.providers['Colo MinIO'] = f.providers['colo-minio'])), /providers\.Colo MinIO must be named/],
    ['a missing name', broken((f) => delete f.providers['colo-minio'].name), /providers\.colo-minio\.name must be a non-empty string, got undefined/],
    ['a typo in a provider', broken((f) => (f.providers['colo-minio'].egres = [])), /providers\.colo-minio\.egres is not a known field/],
    ['a bad asOf', broken((f) => (f.providers['colo-minio'].asOf = 'Dec 2026')), /providers\.colo-minio\.asOf must be a date/],
    ['egress not an array', broken((f) => (f.providers['colo-minio'].egress = { perGB: 0 })), /providers\.colo-minio\.egress must be a non-empty array/],
    ['egress empty', broken((f) => (f.providers['colo-minio'].egress = [])), /egress must be a non-empty array/],
    ['a band without upToGB', broken((f) => delete f.providers['colo-minio'].egress[0].upToGB), /egress\[0\]\.upToGB is required on every band but the last/],
    ['a last band with upToGB', broken((f) => (f.providers['colo-minio'].egress[1].upToGB = 5000)), /egress\[1\]\.upToGB must be left out on the last band/],
    ['bands out of order', broken((f) => f.providers['colo-minio'].egress.unshift({ upToGB: 2000, perGB: 0 })), /egress\[1\]\.upToGB must be larger than the band before \(2000\)/],
    ['a negative price', broken((f) => (f.providers['colo-minio'].egress[1].perGB = -1)), /egress\[1\]\.perGB must be a number >= 0, got -1/],
    ['a price as text', broken((f) => (f.providers['colo-minio'].egress[1].perGB = '0.02')), /egress\[1\]\.perGB must be a number >= 0, got "0\.02"/],
    ['a missing request type', broken((f) => delete f.providers['colo-minio'].requestClasses.uploadPart), /requestClasses\.uploadPart is missing/],
    ['an unknown request type', broken((f) => (f.providers['colo-minio'].requestClasses.copy = 'any')), /requestClasses\.copy is not a known field/],
    ['no STANDARD class', broken((f) => (f.providers['colo-minio'].storageClasses = { COLD: f.providers['colo-minio'].storageClasses.STANDARD })), /storageClasses\.STANDARD is missing/],
    ['a class without a price', broken((f) => (f.providers['colo-minio'].requestClasses.get = 'read')), /storageClasses\.STANDARD\.per1000Requests\.read is missing/],
    ['a price for no class', broken((f) => (f.providers['colo-minio'].storageClasses.STANDARD.per1000Requests.B = 1)), /per1000Requests\.B is not a request class used in requestClasses \(any\)/],
    ['archive not a boolean', broken((f) => (f.providers['colo-minio'].storageClasses.STANDARD.archive = 'yes')), /STANDARD\.archive must be true or false/],
    ['an archived STANDARD', broken((f) => (f.providers['colo-minio'].storageClasses.STANDARD.archive = true)), /STANDARD\.archive cannot be true for STANDARD/],
    ['a typo in a class', broken((f) => (f.providers['colo-minio'].storageClasses.STANDARD.retrivalPerGB = 1)), /STANDARD\.retrivalPerGB is not a known field/],
  ])('refuses %s, naming the field', (_, text, message) => {
    expect(() => parsePriceFile(text, 'prices.json')).toThrow(UsageError);
    expect(() => parsePriceFile(text, 'prices.json')).toThrow(message);
  });
});

describe('renderPlan', () => {
  it('prints objects, requests, time, cost, warnings and notes', () => {
    const objects: SizeGroup[] = [...EXAMPLE, { size: 10 * MIB, count: 2, storageClass: 'GLACIER' }];
    const text = renderPlan(plan('aws', 'r2', {}, objects));
    expect(text).toContain('To copy: 1,002 objects, 1.17 GiB');
    expect(text).toMatch(/one PUT\s+1,000 objects\s+1000\.0 MiB\s+\(up to 64\.0 MiB each\)/);
    expect(text).toMatch(/multipart\s+2 objects\s+200\.0 MiB\s+\(26 parts of 8\.00 MiB or more\)/);
    expect(text).toMatch(/archived\s+2 objects\s+20\.0 MiB\s+\(GLACIER: restore them first; not counted below\)/);
    expect(text).toContain('source       GetObject 1,026');
    expect(text).toContain('destination  PutObject 1,000, CreateMultipartUpload 2, UploadPart 26, CompleteMultipartUpload 2');
    expect(text).toContain('Estimated time: 12s (bandwidth-bound at 100.0 MiB/s; test)');
    expect(text).toContain('Estimated cost: $0.1105');
    expect(text).toMatch(/source\s+\$0\.1059\s+AWS S3 \(us-east-1\): egress \$0\.1055, requests \$0\.00041/);
    expect(text).toMatch(/destination\s+\$0\.004635\s+Cloudflare R2: requests \$0\.004635/);
    expect(text).toContain('Warning: 2 archived objects (GLACIER)');
    expect(text).toContain('Note: Estimate from list prices as of 2026-12-01: check before relying');
  });

  it('formats money readably at every scale', () => {
    expect(formatMoney(0, 'USD')).toBe('$0.00');
    expect(formatMoney(1234.567, 'USD')).toBe('$1,234.57');
    expect(formatMoney(0.5, 'USD')).toBe('$0.50');
    expect(formatMoney(0.0042, 'USD')).toBe('$0.0042');
    expect(formatMoney(0.000001, 'USD')).toBe('$0.000001');
    expect(formatMoney(12.5, 'EUR')).toBe('12.50 EUR');
  });

  it('the plan is JSON as it is', () => {
    const result = plan('gcs', 'aws', { catalogKeys: 1234 });
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
  });
});
