// The listing benchmark's synthetic S3 server (bench/list.js --server synthetic): answers ListObjectsV2 (and
// ListObjects v1, HeadBucket, GetBucketLocation, ListBuckets) for one bucket from a sorted in-memory array of
// keys, so that its own CPU costs next to nothing and a listing's time is the client's and the network's (the
// delay proxy in front), as on AWS where the server is not on our cores. Every key's <Contents> element is
// rendered once, into one buffer (keys as they are, and URL-encoded): a page without a delimiter is one slice of it.
// A bench stand-in only: it accepts ANY signature (and none), holds no object data (GetObject, PUT: 501), and
// answers one bucket, path style. Never point anything real at it.
// Usage: node bench/list-server.js [--keys 50000] [--bucket listing] [--log]      Prints `{"port":N,"pid":P}`
//   once listening; --log writes each request line to stderr after the time (Unix
//   seconds), to see what a client sends, and when.
// Listing parameters: prefix, delimiter, start-after, continuation-token (opaque: the last key or common prefix
// returned), max-keys (default and cap 1000), encoding-type=url (keys, prefixes, start-after, delimiter),
// fetch-owner (ignored: no Owner); v1: marker, NextMarker (always sent when truncated).
import crypto from 'node:crypto';
import http from 'node:http';
import { fileURLToPath } from 'node:url';

/**
 * The benchmark's keys: 40 prefixes whose sizes grow by 15 % each (0.06 % to 13 % of the keys), then 15 keys
 * at the root (`d00/obj-000000` ... `root-14.txt`, already in byte order).
 */
export function layout(total) {
  const rootKeys = 15;
  const weights = Array.from({ length: 40 }, (_, i) => 1.15 ** i);
  const sum = weights.reduce((a, b) => a + b, 0);
  const sizes = weights.map((w) => Math.max(1, Math.floor(((total - rootKeys) * w) / sum)));
  sizes[39] += total - rootKeys - sizes.reduce((a, b) => a + b, 0);
  const keys = [];
  sizes.forEach((size, p) => {
    for (let i = 0; i < size; i++) keys.push(`d${String(p).padStart(2, '0')}/obj-${String(i).padStart(6, '0')}`);
  });
  for (let i = 0; i < rootKeys; i++) keys.push(`root-${String(i).padStart(2, '0')}.txt`);
  return keys;
}

/** S3's key order: UTF-8 bytes (UTF-16 order with surrogate pairs moved above U+E000-U+FFFF). */
function compareKeys(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) return (x >= 0xe000 ? x - 0x800 : x + 0x2000) - (y >= 0xe000 ? y - 0x800 : y + 0x2000);
    return x - y;
  }
  return a.length - b.length;
}

const xml = (text) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
// As AWS encodes with EncodingType=url: form encoding (space as +), `/` left as it is.
const urlEncode = (text) => encodeURIComponent(text).replace(/%2F/g, '/').replace(/%20/g, '+').replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** The sorted keys and their pre-rendered <Contents> elements: plain[offsets[i]..offsets[i+1]) is key i's. */
export function prepare(keyList) {
  const keys = [...keyList].sort(compareKeys);
  const lastModified = '2026-01-01T00:00:00.000Z';
  const render = (encode) => {
    const pieces = keys.map((key, i) => {
      const etag = crypto.createHash('md5').update(key).digest('hex');
      return `<Contents><Key>${xml(encode(key))}</Key><LastModified>${lastModified}</LastModified><ETag>&quot;${etag}&quot;</ETag><Size>${100 + (i % 9000)}</Size><StorageClass>STANDARD</StorageClass></Contents>`;
    });
    const buffers = pieces.map((piece) => Buffer.from(piece));
    const offsets = new Uint32Array(keys.length + 1);
    buffers.forEach((buffer, i) => (offsets[i + 1] = offsets[i] + buffer.length));
    return { all: Buffer.concat(buffers), offsets };
  };
  return { keys, plain: render((key) => key), encoded: render(urlEncode) };
}

/** The index of the first key above `after` ('' : 0). */
function firstAfter(keys, after) {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareKeys(keys[mid], after) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The index of the first key that does not start with `prefix`, from `from` on (keys from `from` all do, up to it). */
function pastPrefix(keys, prefix, from) {
  let lo = from;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid].startsWith(prefix) || compareKeys(keys[mid], prefix) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * One page: the entries (key ranges and common prefixes, in order) after `after` within `prefix`, at most
 * `maxKeys` of them. A common prefix counts as one entry and is listed only if it sorts above `after` (so a
 * listing resumed after a common prefix skips its keys).
 */
export function listPage(data, { prefix = '', delimiter = '', after = '', maxKeys = 1000 }) {
  const { keys } = data;
  // From the first key above `after`, or from the prefix itself (a key equal to it included).
  let i = firstAfter(keys, compareKeys(after, prefix) < 0 ? prefix : after);
  if (compareKeys(after, prefix) < 0 && i > 0 && keys[i - 1] === prefix) i -= 1;
  const end = prefix === '' ? keys.length : pastPrefix(keys, prefix, i);
  const runs = []; // { from, to } key ranges or { prefix } common prefixes
  let count = 0;
  let last;
  while (i < end && count < maxKeys) {
    const key = keys[i];
    const cut = delimiter === '' ? -1 : key.indexOf(delimiter, prefix.length);
    if (cut === -1) {
      // A run of plain keys: up to the next key holding the delimiter (or the page's end).
      let j = i + 1;
      const stop = Math.min(end, i + (maxKeys - count));
      if (delimiter === '') j = stop;
      else while (j < stop && keys[j].indexOf(delimiter, prefix.length) === -1) j++;
      const top = runs.at(-1);
      if (top && top.to === i) top.to = j;
      else runs.push({ from: i, to: j });
      count += j - i;
      last = keys[j - 1];
      i = j;
      continue;
    }
    const common = key.slice(0, cut + delimiter.length);
    const next = pastPrefix(keys, common, i);
    if (compareKeys(common, after) > 0) {
      runs.push({ prefix: common });
      count += 1;
      last = common;
    }
    i = next;
  }
  return { runs, truncated: i < end && last !== undefined, last };
}

function render(data, bucket, query, version) {
  const encode = query.get('encoding-type') === 'url';
  const out = encode ? (text) => xml(urlEncode(text)) : xml;
  const prefix = query.get('prefix') ?? '';
  const delimiter = query.get('delimiter') ?? '';
  const asked = Number(query.get('max-keys') ?? '1000');
  const maxKeys = Number.isFinite(asked) && asked >= 0 ? Math.min(1000, Math.floor(asked)) : 1000;
  const token = query.get('continuation-token');
  const startAfter = query.get('start-after') ?? '';
  const marker = query.get('marker') ?? '';
  const after = version === 1 ? marker : token ? Buffer.from(token, 'base64url').toString() : startAfter;
  const page = listPage(data, { prefix, delimiter, after, maxKeys });
  const contents = encode ? data.encoded : data.plain;
  const chunks = [];
  const head = [`<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`, `<Name>${xml(bucket)}</Name><Prefix>${out(prefix)}</Prefix>`];
  let keyCount = 0;
  for (const run of page.runs) keyCount += run.prefix === undefined ? run.to - run.from : 1;
  if (version === 1) {
    head.push(`<Marker>${out(marker)}</Marker>`);
    if (page.truncated && page.last !== undefined) head.push(`<NextMarker>${out(page.last)}</NextMarker>`);
  } else {
    if (token) head.push(`<ContinuationToken>${xml(token)}</ContinuationToken>`);
    if (startAfter !== '') head.push(`<StartAfter>${out(startAfter)}</StartAfter>`);
    head.push(`<KeyCount>${keyCount}</KeyCount>`);
    if (page.truncated && page.last !== undefined) head.push(`<NextContinuationToken>${Buffer.from(page.last).toString('base64url')}</NextContinuationToken>`);
  }
  head.push(`<MaxKeys>${maxKeys}</MaxKeys>`);
  if (delimiter !== '') head.push(`<Delimiter>${out(delimiter)}</Delimiter>`);
  if (encode) head.push('<EncodingType>url</EncodingType>');
  head.push(`<IsTruncated>${page.truncated}</IsTruncated>`);
  chunks.push(Buffer.from(head.join('')));
  for (const run of page.runs) {
    if (run.prefix !== undefined) chunks.push(Buffer.from(`<CommonPrefixes><Prefix>${out(run.prefix)}</Prefix></CommonPrefixes>`));
    else chunks.push(contents.all.subarray(contents.offsets[run.from], contents.offsets[run.to]));
  }
  chunks.push(Buffer.from('</ListBucketResult>'));
  return Buffer.concat(chunks);
}

const errorXml = (code, message) => `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xml(message)}</Message></Error>`;

export function startServer({ keys, bucket = 'listing', log = false }) {
  const data = prepare(keys);
  const server = http.createServer((req, res) => {
    if (log) process.stderr.write(`list-server: ${(Date.now() / 1000).toFixed(3)} ${req.method} ${req.url}\n`);
    // The request body (none is expected) is drained so that the connection stays usable.
    req.resume();
    const url = new URL(req.url ?? '/', 'http://localhost');
    const send = (status, body, headers = {}) => {
      const payload = Buffer.isBuffer(body) ? body : Buffer.from(body ?? '');
      res.writeHead(status, { 'content-type': 'application/xml', 'x-amz-request-id': '0', 'x-amz-bucket-region': 'us-east-1', ...headers, 'content-length': payload.length });
      res.end(req.method === 'HEAD' ? undefined : payload);
    };
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (parts.length === 0 && req.method === 'GET') {
      return send(200, `<?xml version="1.0" encoding="UTF-8"?>\n<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>bench</ID><DisplayName>bench</DisplayName></Owner><Buckets><Bucket><Name>${xml(bucket)}</Name><CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket></Buckets></ListAllMyBucketsResult>`);
    }
    if (parts[0] !== bucket) return send(404, errorXml('NoSuchBucket', 'The specified bucket does not exist'));
    if (parts.length > 1) return send(501, errorXml('NotImplemented', 'the synthetic listing server holds no objects'));
    if (req.method === 'HEAD') return send(200, '');
    if (req.method !== 'GET') return send(501, errorXml('NotImplemented', `${req.method} on the bucket`));
    if (url.searchParams.has('location')) {
      return send(200, '<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>');
    }
    const others = [...url.searchParams.keys()].filter((name) => !['list-type', 'prefix', 'delimiter', 'start-after', 'continuation-token', 'max-keys', 'encoding-type', 'fetch-owner', 'marker', 'x-id'].includes(name));
    if (others.length > 0) return send(501, errorXml('NotImplemented', `bucket subresource ${others.join(', ')}`));
    const encoding = url.searchParams.get('encoding-type');
    if (encoding !== null && encoding !== 'url') return send(400, errorXml('InvalidArgument', 'Invalid Encoding Method specified in Request'));
    return send(200, render(data, bucket, url.searchParams, url.searchParams.get('list-type') === '2' ? 2 : 1));
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name, fallback) => {
    const at = process.argv.indexOf(`--${name}`);
    return at > 0 ? process.argv[at + 1] : fallback;
  };
  const server = await startServer({ keys: layout(Number(arg('keys', '50000'))), bucket: arg('bucket', 'listing'), log: process.argv.includes('--log') });
  process.stdout.write(`${JSON.stringify({ port: server.address().port, pid: process.pid })}\n`);
  // Ends with its parent (stdin closed), as the delay proxy does.
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}
