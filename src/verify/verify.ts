import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '../s3/sdk.js';
import pLimit from 'p-limit';
import type { BucketLocation } from '../config/s3-url.js';
import { describeS3Failure } from '../s3/describe-failure.js';
import { isPlainMd5, normalizeEtag } from '../s3/etag.js';
import { prefetchOne } from '../prefetch.js';
import { listPages } from '../s3/list-pages.js';
import { StateStoreError, type StateStore } from '../state/store.js';
import {
  PROVEN_EVIDENCE,
  type EndpointLocation,
  type ListedObject,
  type VerifyFinding,
  type VerifyResult,
  type VerifyRow,
} from '../state/types.js';

export interface VerifyOptions {
  store: StateStore;
  source: S3Client;
  dest: S3Client;
  sourceLocation: EndpointLocation;
  destLocation: BucketLocation;
  /** Re-read both sides and compare content hashes where ETags cannot be compared. */
  deep: boolean;
  credentialSources: { source: string; dest: string };
  /** Each side's SSE-C key (base64), for --deep's reads of SSE-C objects; listings need none. */
  sseCustomerKeys?: { source?: string; dest?: string };
  signal?: AbortSignal;
  onPage?: (listed: number) => void;
  /** How many extra destination keys to keep for the report (all are counted). */
  extraSampleSize?: number;
}

export interface VerifyReport {
  listed: number;
  results: Record<VerifyResult, number>;
  extraKeys: { count: number; sample: string[] };
  /** False when interrupted before the destination listing ended (nothing was concluded about unseen rows). */
  complete: boolean;
}

async function md5Of(client: S3Client, bucket: string, key: string, sseCustomerKey: string | undefined, signal?: AbortSignal): Promise<string> {
  const sse = sseCustomerKey === undefined ? {} : { SSECustomerAlgorithm: 'AES256', SSECustomerKey: sseCustomerKey };
  const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, ...sse }), { abortSignal: signal });
  const hash = createHash('md5');
  for await (const chunk of response.Body as Readable) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Compares the destination with the catalog: lists the destination under the mapped prefix, checks
 * each object against its row (size, then ETag where comparable, or content with --deep), and records
 * the findings. Rows the listing did not show are missing (or never copied). Anything found missing or
 * different goes back to pending, so the next `copy` repairs it.
 */
export async function runVerify(options: VerifyOptions): Promise<VerifyReport> {
  const { store, sourceLocation, destLocation } = options;
  const pass = await store.beginVerifyPass();
  const deepLimit = pLimit(8);
  const report: VerifyReport = {
    listed: 0,
    results: {
      ok: 0,
      missing: 0,
      'size-mismatch': 0,
      'etag-mismatch': 0,
      'content-mismatch': 0,
      'not-copied': 0,
      unproven: 0,
    },
    extraKeys: { count: 0, sample: [] },
    complete: false,
  };

  const compare = async (row: VerifyRow, object: ListedObject, destKey: string): Promise<VerifyFinding> => {
    if (object.size !== row.size) return { id: row.id, result: 'size-mismatch' };
    const destEtag = normalizeEtag(object.etag);
    const reference = referenceEtag(row);
    if (reference !== undefined) {
      return { id: row.id, result: destEtag === reference ? 'ok' : 'etag-mismatch' };
    }
    // Nothing recorded proves this row (a first-release size-only row): only the content can.
    if (!options.deep) return { id: row.id, result: 'unproven' };
    const [sourceMd5, destMd5] = await Promise.all([
      md5Of(options.source, sourceLocation.bucket, row.key, options.sseCustomerKeys?.source, options.signal),
      md5Of(options.dest, destLocation.bucket, destKey, options.sseCustomerKeys?.dest, options.signal),
    ]);
    return sourceMd5 === destMd5
      ? { id: row.id, result: 'ok', evidence: 'deep-md5', destEtag }
      : { id: row.id, result: 'content-mismatch' };
  };

  try {
    // The next page is asked for while this one is compared with the state.
    for await (const page of prefetchOne(
      listPages(options.dest, {
        bucket: destLocation.bucket,
        prefix: destLocation.prefix,
        startAfter: '',
        signal: options.signal,
      }),
    )) {
      const findings: Array<Promise<VerifyFinding>> = [];
      const sourceKeys = page.objects.map((object) => sourceLocation.prefix + object.key.slice(destLocation.prefix.length));
      const rows = await store.rowsByKeys(sourceKeys);
      for (const [i, object] of page.objects.entries()) {
        const row = rows.get(sourceKeys[i]!);
        if (!row) {
          report.extraKeys.count += 1;
          if (report.extraKeys.sample.length < (options.extraSampleSize ?? 1000)) report.extraKeys.sample.push(object.key);
          continue;
        }
        // Rows neither done nor unproven are "not copied" whatever is there: finishVerifyPass records them.
        if (row.status !== 'done' && row.status !== 'unproven') continue;
        findings.push(deepLimit(() => compare(row, object, object.key)));
      }
      const results = await Promise.all(findings);
      await store.recordVerifyResults(pass, results);
      report.listed += page.objects.length;
      options.onPage?.(report.listed);
      if (options.signal?.aborted) return report;
    }
  } catch (error) {
    if (error instanceof StateStoreError) throw error;
    if (options.signal?.aborted) return report;
    throw describeS3Failure(error, {
      side: 'dest',
      bucket: destLocation.bucket,
      credentialSource: options.credentialSources.dest,
    });
  }

  await store.finishVerifyPass(pass);
  for (const { result, objects } of await store.verifyResultCounts()) {
    if (result in report.results) report.results[result as VerifyResult] = objects;
  }
  report.complete = true;
  return report;
}

export function verifyPassed(report: VerifyReport): boolean {
  return report.complete && Object.entries(report.results).every(([result, count]) => result === 'ok' || count === 0);
}

/**
 * What a row's destination object must carry: the ETag the destination gave the write that our evidence
 * proved (recorded with the row), never a value read back from the destination alone. A done row whose
 * evidence is an MD5 must also agree with a plain-MD5 source ETag in the catalog. Undefined when nothing
 * recorded proves the row (first-release size-only rows): only --deep can settle those.
 */
export function referenceEtag(row: VerifyRow): string | undefined {
  if (row.status !== 'done' || row.evidence === null || !PROVEN_EVIDENCE.includes(row.evidence)) return undefined;
  const recorded = normalizeEtag(row.destEtag);
  const source = isPlainMd5(row.etag) ? normalizeEtag(row.etag) : undefined;
  if (row.evidence === 'md5' && source !== undefined && recorded !== undefined && recorded !== source) {
    // The evidence does not belong to this catalog version: let the comparison fail.
    return source;
  }
  return recorded ?? (row.evidence === 'md5' ? source : undefined);
}
