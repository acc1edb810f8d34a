/**
 * ListObjectsV2 on the lean path (see lean-path.ts): the request the SDK sends, signed by the SDK's own
 * signer with its retry strategy, and the answer read by a scanner of the few elements a listing has. The
 * SDK's deserializer costs about 10 ms of CPU per 1,000-key page (half of a catalog's CPU, measured with
 * --cpu-prof on Ceph RGW); with several parts listed at once the client's one thread is the limit, and
 * this scanner does the same work in a fraction of it. Keys come out exactly as the SDK gives them: XML
 * entities decoded, nothing trimmed or normalised (test/s3-lean-list.test.ts compares both on s3rver and
 * RGW).
 */
import type { ListedObject } from '../state/types.js';
import { serviceError, unescapeXml, type LeanPath } from './lean-path.js';

export interface RawListAnswer {
  objects: ListedObject[];
  prefixes: string[];
  truncated: boolean;
  nextToken?: string;
  encodingType?: string;
}

const text = (raw: string): string => (raw.includes('&') ? unescapeXml(raw) : raw);

/** The text of the first <name> element in xml[from, to), or undefined. */
function element(xml: string, name: string, from: number, to: number): string | undefined {
  const open = `<${name}>`;
  const start = xml.indexOf(open, from);
  if (start === -1 || start >= to) return undefined;
  const end = xml.indexOf(`</${name}>`, start + open.length);
  if (end === -1 || end > to) return undefined;
  return text(xml.slice(start + open.length, end));
}

/** Reads a ListBucketResult (ListObjectsV2). Exported for tests. */
export function parseListAnswer(xml: string): RawListAnswer {
  // Anything else read as an empty page would end a listing early (and mark the rest gone).
  if (!/<ListBucketResult[\s>]/.test(xml)) throw new Error('a listing answer that is not a ListBucketResult');
  const objects: ListedObject[] = [];
  const prefixes: string[] = [];
  let at = 0;
  for (;;) {
    const start = xml.indexOf('<Contents>', at);
    if (start === -1) break;
    const end = xml.indexOf('</Contents>', start);
    if (end === -1) throw new Error('a listing answer with an unclosed <Contents>');
    const key = element(xml, 'Key', start, end);
    if (key === undefined) throw new Error('a listing answer with a <Contents> without <Key>');
    const modified = element(xml, 'LastModified', start, end);
    const size = element(xml, 'Size', start, end);
    objects.push({
      key,
      size: size === undefined ? 0 : Number(size),
      etag: element(xml, 'ETag', start, end),
      lastModified: (modified === undefined ? new Date(0) : new Date(modified)).toISOString(),
      storageClass: element(xml, 'StorageClass', start, end),
    });
    at = end + '</Contents>'.length;
  }
  at = 0;
  for (;;) {
    const start = xml.indexOf('<CommonPrefixes>', at);
    if (start === -1) break;
    const end = xml.indexOf('</CommonPrefixes>', start);
    if (end === -1) throw new Error('a listing answer with an unclosed <CommonPrefixes>');
    const prefix = element(xml, 'Prefix', start, end);
    if (prefix !== undefined) prefixes.push(prefix);
    at = end + '</CommonPrefixes>'.length;
  }
  // Top-level elements come before the entries on every server we know; looked for outside them anyway.
  const outside = xml.replace(/<Contents>[\s\S]*?<\/Contents>|<CommonPrefixes>[\s\S]*?<\/CommonPrefixes>/g, '');
  const truncated = element(outside, 'IsTruncated', 0, outside.length) === 'true';
  return {
    objects,
    prefixes,
    truncated,
    nextToken: truncated ? element(outside, 'NextContinuationToken', 0, outside.length) : undefined,
    encodingType: element(outside, 'EncodingType', 0, outside.length),
  };
}

export interface LeanListRequest {
  bucket: string;
  prefix: string;
  startAfter?: string;
  continuationToken?: string;
  delimiter?: string;
  maxKeys: number;
  encodingType?: 'url';
  signal?: AbortSignal;
}

/** Sends one ListObjectsV2 on the lean path; throws LeanHandover when the SDK must send it instead. */
export async function leanListObjects(lean: LeanPath, request: LeanListRequest): Promise<RawListAnswer> {
  const query: Record<string, string> = { 'list-type': '2', 'max-keys': String(request.maxKeys) };
  if (request.prefix !== '') query.prefix = request.prefix;
  if (request.continuationToken !== undefined) query['continuation-token'] = request.continuationToken;
  else if (request.startAfter) query['start-after'] = request.startAfter;
  if (request.delimiter !== undefined) query.delimiter = request.delimiter;
  if (request.encodingType) query['encoding-type'] = request.encodingType;
  // In the SDK's order (sorted by name): the same URL as the SDK would send.
  const sorted = Object.fromEntries(Object.entries(query).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const answer = await lean.send({
    method: 'GET',
    bucket: request.bucket,
    key: '',
    query: sorted,
    headers: {},
    unsignedPayload: false,
    readWhole: true,
    signal: request.signal,
  });
  const xml = answer.text ?? '';
  // As the SDK: a 2xx answer that is an <Error> is a failure (503, retried by the caller's error handling).
  if (!xml.includes('<ListBucketResult') && xml.includes('<Error>')) throw serviceError(503, answer.headers, xml);
  return parseListAnswer(xml);
}
