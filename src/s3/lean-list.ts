/**
 * ListObjectsV2 on the lean path (see lean-path.ts): the request the SDK sends, signed by the SDK's own
 * signer with its retry strategy, and the answer read by a scanner of the few elements a listing has. The
 * SDK's deserializer costs about 10 ms of CPU per 1,000-key page (half of a catalog's CPU, measured with
 * --cpu-prof on Ceph RGW); with several parts listed at once the client's one thread is the limit, and
 * this scanner does the same work in a fraction of it. Keys come out exactly as the SDK gives them: XML
 * entities decoded, nothing trimmed or normalised (test/s3-lean-list.test.ts compares both on s3rver and
 * RGW).
 */
import { canonicalIsoMs } from '../iso-time.js';
import type { ListedObject } from '../state/types.js';
import { serviceError, unescapeXml, type LeanPath } from './lean-path.js';

export interface RawListAnswer {
  objects: ListedObject[];
  prefixes: string[];
  truncated: boolean;
  nextToken?: string;
  encodingType?: string;
}

/** An ETag as servers write it, `&quot;...&quot;`, needs no general entity decoder. */
const QUOTE = '&quot;';
function text(raw: string): string {
  if (!raw.includes('&')) return raw;
  if (raw.startsWith(QUOTE) && raw.endsWith(QUOTE) && raw.length >= 2 * QUOTE.length) {
    const inner = raw.slice(QUOTE.length, raw.length - QUOTE.length);
    if (!inner.includes('&')) return `"${inner}"`;
  }
  return unescapeXml(raw);
}

/** An element's tags, made once (a page asks for five elements of each of its 1,000 entries). */
interface Tag {
  open: string;
  close: string;
}
const tag = (name: string): Tag => ({ open: `<${name}>`, close: `</${name}>` });
const KEY = tag('Key');
const LAST_MODIFIED = tag('LastModified');
const SIZE = tag('Size');
const ETAG = tag('ETag');
const STORAGE_CLASS = tag('StorageClass');
const PREFIX = tag('Prefix');
const CONTENTS = tag('Contents');
const COMMON_PREFIXES = tag('CommonPrefixes');
const IS_TRUNCATED = tag('IsTruncated');
const NEXT_CONTINUATION_TOKEN = tag('NextContinuationToken');
const ENCODING_TYPE = tag('EncodingType');

/** The text of the first element `name` in xml[from, to), or undefined. */
function element(xml: string, name: Tag, from: number, to: number): string | undefined {
  const start = xml.indexOf(name.open, from);
  if (start === -1 || start >= to) return undefined;
  const end = xml.indexOf(name.close, start + name.open.length);
  if (end === -1 || end > to) return undefined;
  return text(xml.slice(start + name.open.length, end));
}

/** Reads a ListBucketResult (ListObjectsV2). Exported for tests. */
export function parseListAnswer(xml: string): RawListAnswer {
  // Anything else read as an empty page would end a listing early (and mark the rest gone).
  if (!/<ListBucketResult[\s>]/.test(xml)) throw new Error('a listing answer that is not a ListBucketResult');
  const objects: ListedObject[] = [];
  const prefixes: string[] = [];
  // One pass over the entries, in document order; what lies between them is kept for the top-level
  // elements (IsTruncated, NextContinuationToken, EncodingType), which no entry's own element may shadow.
  let outside = '';
  let at = 0;
  let nextContents = xml.indexOf(CONTENTS.open);
  let nextPrefix = xml.indexOf(COMMON_PREFIXES.open);
  while (nextContents !== -1 || nextPrefix !== -1) {
    const isContents = nextPrefix === -1 || (nextContents !== -1 && nextContents < nextPrefix);
    const entry = isContents ? CONTENTS : COMMON_PREFIXES;
    const start = isContents ? nextContents : nextPrefix;
    const end = xml.indexOf(entry.close, start);
    if (end === -1) throw new Error(`a listing answer with an unclosed ${entry.open}`);
    outside += xml.slice(at, start);
    if (isContents) {
      const key = element(xml, KEY, start, end);
      if (key === undefined) throw new Error('a listing answer with a <Contents> without <Key>');
      const modified = element(xml, LAST_MODIFIED, start, end);
      const size = element(xml, SIZE, start, end);
      objects.push({
        key,
        size: size === undefined ? 0 : Number(size),
        etag: element(xml, ETAG, start, end),
        // Already as toISOString writes it (every server we know): kept, not parsed and written again.
        lastModified:
          modified !== undefined && canonicalIsoMs(modified) !== undefined
            ? modified
            : (modified === undefined ? new Date(0) : new Date(modified)).toISOString(),
        storageClass: element(xml, STORAGE_CLASS, start, end),
      });
    } else {
      const prefix = element(xml, PREFIX, start, end);
      if (prefix !== undefined) prefixes.push(prefix);
    }
    at = end + entry.close.length;
    if (nextContents !== -1 && nextContents < at) nextContents = xml.indexOf(CONTENTS.open, at);
    if (nextPrefix !== -1 && nextPrefix < at) nextPrefix = xml.indexOf(COMMON_PREFIXES.open, at);
  }
  outside += xml.slice(at);
  const truncated = element(outside, IS_TRUNCATED, 0, outside.length) === 'true';
  return {
    objects,
    prefixes,
    truncated,
    nextToken: truncated ? element(outside, NEXT_CONTINUATION_TOKEN, 0, outside.length) : undefined,
    encodingType: element(outside, ENCODING_TYPE, 0, outside.length),
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
