import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import pLimit from 'p-limit';
import { listPages } from '../catalog/list-pages.js';
import type { BucketLocation } from '../config/s3-url.js';
import { isPlainMd5, unquote } from '../copy/integrity.js';
import { describeS3Failure } from '../s3/describe-failure.js';
import type { StateStore } from '../state/state-store.js';
import type { ListedObject, EndpointLocation, VerifyFinding, VerifyResult, VerifyRow } from '../state/types.js';

export interface VerifyOptions {
  store: StateStore;
  source: S3Client;
  dest: S3Client;
  sourceLocation: EndpointLocation;
  destLocation: BucketLocation;
  /** Re-read both sides and compare content hashes where ETags cannot be compared. */
  deep: boolean;
  credentialSources: { source: string; dest: string };
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

async function md5Of(client: S3Client, bucket: string, key: string, signal?: AbortSignal): Promise<string> {
  const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
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
  const pass = store.beginVerifyPass();
  const deepLimit = pLimit(8);
  const report: VerifyReport = {
    listed: 0,
    results: { ok: 0, missing: 0, 'size-mismatch': 0, 'etag-mismatch': 0, 'content-mismatch': 0, 'not-copied': 0 },
    extraKeys: { count: 0, sample: [] },
    complete: false,
  };

  const compare = async (row: VerifyRow, object: ListedObject, destKey: string): Promise<VerifyFinding> => {
    if (object.size !== row.size) return { id: row.id, result: 'size-mismatch' };
    const destEtag = unquote(object.etag)?.toLowerCase();
    // The ETag the destination gave our write is the best reference; a plain-MD5 source ETag the next best.
    const reference = row.destEtag ?? (isPlainMd5(row.etag ?? undefined) ? unquote(row.etag!) : undefined);
    if (reference !== undefined && destEtag !== undefined && destEtag !== '') {
      return { id: row.id, result: destEtag === reference.toLowerCase() ? 'ok' : 'etag-mismatch' };
    }
    if (!options.deep) return { id: row.id, result: 'ok' };
    const [sourceMd5, destMd5] = await Promise.all([
      md5Of(options.source, sourceLocation.bucket, row.key, options.signal),
      md5Of(options.dest, destLocation.bucket, destKey, options.signal),
    ]);
    return sourceMd5 === destMd5 ? { id: row.id, result: 'ok', method: 'md5' } : { id: row.id, result: 'content-mismatch' };
  };

  try {
    for await (const page of listPages(options.dest, {
      bucket: destLocation.bucket,
      prefix: destLocation.prefix,
      startAfter: '',
      signal: options.signal,
    })) {
      const findings: Array<Promise<VerifyFinding>> = [];
      for (const object of page.objects) {
        const sourceKey = sourceLocation.prefix + object.key.slice(destLocation.prefix.length);
        const row = store.rowByKey(sourceKey);
        if (!row) {
          report.extraKeys.count += 1;
          if (report.extraKeys.sample.length < (options.extraSampleSize ?? 1000)) report.extraKeys.sample.push(object.key);
          continue;
        }
        // Rows not marked done are "not copied" whatever is there: finishVerifyPass records them.
        if (row.status !== 'done') continue;
        findings.push(deepLimit(() => compare(row, object, object.key)));
      }
      const results = await Promise.all(findings);
      store.recordVerifyResults(pass, results);
      report.listed += page.objects.length;
      options.onPage?.(report.listed);
      if (options.signal?.aborted) return report;
    }
  } catch (error) {
    if (options.signal?.aborted) return report;
    throw describeS3Failure(error, {
      side: 'dest',
      bucket: destLocation.bucket,
      credentialSource: options.credentialSources.dest,
    });
  }

  store.finishVerifyPass(pass);
  for (const { result, objects } of store.verifyResultCounts()) {
    if (result in report.results) report.results[result as VerifyResult] = objects;
  }
  report.complete = true;
  return report;
}

export function verifyPassed(report: VerifyReport): boolean {
  return report.complete && Object.entries(report.results).every(([result, count]) => result === 'ok' || count === 0);
}
