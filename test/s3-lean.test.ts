// The lean path (src/s3/lean-path.ts) against the SDK path, call for call, on s3rver behind a recording,
// fault-injecting proxy: the same URL for every tricky key, the same request headers (known, listed
// differences aside), the same answers (bytes, ETag, headers, metadata, ranges, If-Match), the same error
// classification (404, 412, 403, 503 SlowDown, connection resets, timeouts), the same retries, aborts that
// cancel in-flight requests, path and virtual-host style, and credentials (static, session token,
// profile) signed into the request the same way. Signatures themselves are checked by Ceph RGW in
// test/compat/lean-rgw.test.ts (s3rver checks none).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo, LookupFunction } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { CreateMultipartUploadCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startS3rver, type S3rverHandle } from '../scripts/servers/s3rver.js';
import type { EndpointConfig } from '../src/config/endpoint-config.js';
import { S3Bucket, type BucketOptions, type SourceObject } from '../src/s3/bucket.js';
import { createS3Client } from '../src/s3/client.js';
import { classifyError } from '../src/s3/errors.js';
import { attachLeanPath, encodeKey, leanPathOf } from '../src/s3/lean-path.js';
import { listPages, type ListingPage } from '../src/s3/list-pages.js';
import { applyRateLimits } from '../src/s3/rate-limit.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

// Our own HTTP/1.1 client (the default) and node:http always; undici too where that (optional) package is installed.
const undiciName = 'undici';
const TRANSPORTS: Array<'http1' | 'node-http' | 'undici'> = ['http1', 'node-http'];
if (await import(undiciName).then(() => true, () => false)) TRANSPORTS.push('undici');

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}
type Fault = { status: number; code: string } | 'reset' | 'hang';

/**
 * A proxy in front of s3rver: records every request, and answers the next ones with `faults`; adds
 * `answerHeaders` to every answer passed on (headers s3rver does not send, e.g. x-amz-tagging-count).
 */
async function startProxy(
  target: number,
): Promise<{ port: number; seen: Seen[]; faults: Fault[]; answerHeaders: Record<string, string>; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const answerHeaders: Record<string, string> = {};
  const faults: Fault[] = [];
  const agent = new http.Agent({ keepAlive: true });
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers });
    const fault = faults.shift();
    if (fault === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault === 'hang') {
      req.resume();
      return;
    }
    if (fault) {
      req.resume();
      const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${fault.code}</Code><Message>injected</Message><RequestId>r1</RequestId></Error>`;
      res.writeHead(fault.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    const upstream = http.request({ host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers, agent }, (answer) => {
      res.writeHead(answer.statusCode!, { ...answer.headers, ...answerHeaders });
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    faults,
    answerHeaders,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const KEYS = [
  'plain.bin',
  'with space.txt',
  'plus+sign',
  'percent%20literal',
  'unicode/ünïcødé-日本語-😀',
  'tilde~star*quote\'paren()',
  'bang!dollar$amp&comma,semi;eq=at@colon:',
  'dir/sub/',
  'hash#question?',
  'bracket[x]{y}',
];
// s3rver cannot store these two; their URLs are still compared (and RGW stores them: lean-rgw.test.ts).
const URL_ONLY_KEYS = ['a//b', '/leading'];

const HEADERS = {
  ContentType: 'text/plain; charset=utf-8',
  ContentEncoding: 'identity',
  ContentDisposition: 'attachment; filename="x y.txt"',
  ContentLanguage: 'de-CH',
  CacheControl: 'max-age=3600, must-revalidate',
  Expires: new Date('2031-02-03T04:05:06Z'),
  Metadata: { color: 'blue', 'multi-word': 'a b  c', empty: '' },
};

function md5(body: Buffer): string {
  return createHash('md5').update(body).digest('base64');
}

async function bytesOf(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A GetObject answer without its stream, for comparing the two paths. */
function shape(got: SourceObject): Omit<SourceObject, 'body'> {
  const { body: _body, ...rest } = got;
  return rest;
}

/** Request headers that differ on purpose or per request; everything else must be the same. */
const VOLATILE = new Set(['authorization', 'x-amz-date', 'amz-sdk-invocation-id', 'amz-sdk-request', 'connection', 'expect']);
function stableHeaders(headers: http.IncomingHttpHeaders): Record<string, unknown> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !VOLATILE.has(name)));
}
function credentialOf(authorization: string | string[] | undefined): string {
  return /Credential=([^,]+),/.exec(String(authorization))?.[1]?.replace(/\/\d{8}\//, '/DATE/') ?? '';
}
function signedHeadersOf(authorization: string | string[] | undefined): string[] {
  return (/SignedHeaders=([^,]+),/.exec(String(authorization))?.[1] ?? '').split(';').filter((h) => !VOLATILE.has(h)).sort();
}

let server: S3rverHandle;
let proxy: Awaited<ReturnType<typeof startProxy>>;
let endpoint: string;

let transport: 'http1' | 'node-http' | 'undici' = 'http1';

function config(extra: Partial<EndpointConfig> = {}): EndpointConfig {
  return {
    httpClient: transport,
    side: 'dest',
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    checksumMode: 'when-required',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    credentialSource: 'test',
    ...extra,
  };
}

/** The same bucket through both paths, each with its own client built by createS3Client. */
function pair(bucket: string, extra: Partial<EndpointConfig> = {}, maxAttempts?: number): { lean: S3Bucket; sdk: S3Bucket } {
  const leanClient = createS3Client(config(extra), { maxSockets: 8, maxAttempts });
  const sdkClient = createS3Client(config({ ...extra, leanPath: false }), { maxSockets: 8, maxAttempts });
  expect(leanPathOf(leanClient)).toBeDefined();
  expect(leanPathOf(sdkClient)).toBeUndefined();
  return { lean: new S3Bucket(leanClient, bucket, 'dest'), sdk: new S3Bucket(sdkClient, bucket, 'dest') };
}

beforeAll(async () => {
  server = await startS3rver({ buckets: ['lean', 'sdk', 'b'] });
  proxy = await startProxy(server.port);
  endpoint = `http://127.0.0.1:${proxy.port}`;
});
afterAll(async () => {
  await proxy?.close();
  await server?.stop();
});
beforeEach(() => {
  proxy.seen.length = 0;
  proxy.faults.length = 0;
  for (const name of Object.keys(proxy.answerHeaders)) delete proxy.answerHeaders[name];
});

for (const httpClient of TRANSPORTS) describe(`lean path over ${httpClient}`, () => {
beforeAll(() => {
  transport = httpClient;
});

describe('lean path and SDK path send the same requests and read the same answers', () => {
  it('encodes every tricky key as the SDK does (URL and signed path)', async () => {
    const { lean, sdk } = pair('b');
    for (const key of [...KEYS, ...URL_ONLY_KEYS]) {
      proxy.seen.length = 0;
      proxy.faults.push({ status: 404, code: 'NoSuchKey' }, { status: 404, code: 'NoSuchKey' });
      await lean.get(key).catch(() => undefined);
      await sdk.get(key).catch(() => undefined);
      expect(proxy.seen).toHaveLength(2);
      const [viaLean, viaSdk] = proxy.seen;
      expect(viaLean!.url, key).toBe(viaSdk!.url);
      expect(viaLean!.url).toBe(`/b/${encodeKey(key)}?x-id=GetObject`);
    }
  });

  it('puts and gets every tricky key with headers and metadata: same requests, same answers, same bytes', async () => {
    const { lean } = pair('lean');
    const { sdk } = pair('sdk');
    for (const [i, key] of KEYS.entries()) {
      const body = Buffer.from(`${key} body ${i} `.repeat(50 + i));
      proxy.seen.length = 0;
      const putLean = await lean.put(key, body, { contentLength: body.length, contentMd5: md5(body), headers: HEADERS });
      const putSdk = await sdk.put(key, body, { contentLength: body.length, contentMd5: md5(body), headers: HEADERS });
      expect(putLean).toEqual(putSdk);
      expect(putLean.etag).toBe(`"${createHash('md5').update(body).digest('hex')}"`);
      const [leanPut, sdkPut] = proxy.seen;
      expect(leanPut!.url.replace('/lean/', '/x/')).toBe(sdkPut!.url.replace('/sdk/', '/x/'));
      // Both sign UNSIGNED-PAYLOAD (Content-MD5 is signed and checked by the server); the lean path sends
      // no SDK invocation ids nor Expect: 100-continue (VOLATILE).
      expect(leanPut!.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
      expect(stableHeaders(leanPut!.headers)).toEqual(stableHeaders(sdkPut!.headers));
      expect(signedHeadersOf(leanPut!.headers.authorization)).toEqual(signedHeadersOf(sdkPut!.headers.authorization));

      proxy.seen.length = 0;
      const gotLean = await lean.get(key);
      const gotSdk = await sdk.get(key);
      expect(shape(gotLean)).toEqual(shape(gotSdk));
      expect(gotLean.headers).toEqual(HEADERS);
      expect(await bytesOf(gotLean.body)).toEqual(body);
      expect(await bytesOf(gotSdk.body)).toEqual(body);
      const [leanGet, sdkGet] = proxy.seen;
      expect(stableHeaders(leanGet!.headers)).toEqual(stableHeaders(sdkGet!.headers));
      expect(signedHeadersOf(leanGet!.headers.authorization)).toEqual(signedHeadersOf(sdkGet!.headers.authorization));
    }
  });

  it('ranged reads with If-Match: same answer, same bytes; a 412 is classified the same', async () => {
    const { lean, sdk } = pair('lean');
    const body = Buffer.from('0123456789abcdefghij'.repeat(100));
    const put = await lean.put('ranged', body, { contentLength: body.length, contentMd5: md5(body) });
    const range = { start: 100, end: 1099 };
    const gotLean = await lean.get('ranged', { ifMatch: put.etag!.replace(/"/g, ''), range });
    const gotSdk = await sdk.get('ranged', { ifMatch: put.etag!, range });
    expect(shape(gotLean)).toEqual(shape(gotSdk));
    expect(gotLean.contentLength).toBe(1000);
    expect(gotLean.objectSize).toBe(body.length);
    expect(await bytesOf(gotLean.body)).toEqual(body.subarray(100, 1100));
    await bytesOf(gotSdk.body);
    expect(proxy.seen.at(-1)!.headers['if-match']).toBe(put.etag);
    expect(proxy.seen.at(-2)!.headers['if-match']).toBe(put.etag);
    // s3rver ignores If-Match: the refusal is injected here (RGW refuses for real: test/compat/rgw.test.ts).
    const stale = '0123456789abcdef0123456789abcdef';
    proxy.faults.push({ status: 412, code: 'PreconditionFailed' }, { status: 412, code: 'PreconditionFailed' });
    const errors = [await lean.get('ranged', { ifMatch: stale }).catch((e) => e), await sdk.get('ranged', { ifMatch: stale }).catch((e) => e)];
    expect(classifyError(errors[0])).toEqual(classifyError(errors[1]));
    expect(classifyError(errors[0])).toMatchObject({ code: 'PreconditionFailed', status: 412 });
  });

  it('copies server-side (CopyObject) as the SDK does: same request, same ETag, metadata kept; refusals classified the same', async () => {
    const { lean, sdk } = pair('lean');
    const body = Buffer.from('copied inside the server '.repeat(40));
    // s3rver finds no source for a copy of a key holding + & ; = ? or # (its decoding of x-amz-copy-source),
    // on both paths alike: those keys are left out here.
    for (const key of KEYS.filter((k) => !/[+&;=?#]/.test(k))) {
      const put = await lean.put(key, body, { contentLength: body.length, contentMd5: md5(body), headers: HEADERS });
      const source = { bucket: 'lean', key, ifMatch: put.etag!.replace(/"/g, '') };
      proxy.seen.length = 0;
      const copiedLean = await lean.copyFrom(source, `copy-lean/${key}`, { copyTags: true });
      const copiedSdk = await sdk.copyFrom(source, `copy-sdk/${key}`, { copyTags: true });
      expect(copiedLean).toEqual(copiedSdk);
      expect(copiedLean.etag).toBe(put.etag);
      const [viaLean, viaSdk] = proxy.seen;
      expect(viaLean!.method).toBe('PUT');
      expect(viaLean!.url.replace('/copy-lean/', '/copy-x/')).toBe(viaSdk!.url.replace('/copy-sdk/', '/copy-x/'));
      // The user agent differs only in the SDK's feature metrics of the request (m/...), not sent for copies.
      const withoutAgent = (headers: http.IncomingHttpHeaders) => ({ ...stableHeaders(headers), 'user-agent': undefined });
      expect(withoutAgent(viaLean!.headers)).toEqual(withoutAgent(viaSdk!.headers));
      expect(signedHeadersOf(viaLean!.headers.authorization)).toEqual(signedHeadersOf(viaSdk!.headers.authorization));
      const got = await lean.get(`copy-lean/${key}`);
      expect(got.headers).toEqual(HEADERS);
      expect(await bytesOf(got.body)).toEqual(body);
    }
    const source = { bucket: 'lean', key: KEYS[0]! };
    // A 200 whose document is an <Error> (S3 may answer a CopyObject so): a failure, retried on both paths.
    proxy.seen.length = 0;
    proxy.faults.push({ status: 200, code: 'InternalError' }, { status: 200, code: 'InternalError' });
    expect((await lean.copyFrom(source, 'copy-lean/retried', { copyTags: true })).etag).toBeDefined();
    expect((await sdk.copyFrom(source, 'copy-sdk/retried', { copyTags: true })).etag).toBeDefined();
    expect(proxy.seen).toHaveLength(4);
    // Refusals (a server without CopyObject rights, a source that changed): the same classification.
    for (const fault of [{ status: 403, code: 'AccessDenied' }, { status: 412, code: 'PreconditionFailed' }, { status: 501, code: 'NotImplemented' }]) {
      proxy.faults.push(fault, fault);
      const errors = [
        await lean.copyFrom(source, 'copy-lean/refused', { copyTags: false }).catch((e) => e),
        await sdk.copyFrom(source, 'copy-sdk/refused', { copyTags: false }).catch((e) => e),
      ];
      expect(classifyError(errors[0])).toEqual(classifyError(errors[1]));
      expect(classifyError(errors[0])).toMatchObject({ code: fault.code, status: fault.status });
    }
  });

  it('uploads parts the same way (UploadPart URL, Content-MD5, ETag)', async () => {
    const { lean, sdk } = pair('lean');
    const part = Buffer.alloc(5 * 1024 * 1024, 7);
    const uploadId = (await lean.client.send(new CreateMultipartUploadCommand({ Bucket: 'lean', Key: 'mp' }))).UploadId!;
    proxy.seen.length = 0;
    const viaLean = await lean.uploadPart('mp', uploadId, 1, part, { contentLength: part.length, contentMd5: md5(part) });
    const viaSdk = await sdk.uploadPart('mp', uploadId, 2, part, { contentLength: part.length, contentMd5: md5(part) });
    expect(viaLean).toEqual(viaSdk);
    expect(proxy.seen[0]!.url).toBe(`/lean/mp?partNumber=1&uploadId=${encodeURIComponent(uploadId)}&x-id=UploadPart`);
    expect(proxy.seen[1]!.url).toBe(proxy.seen[0]!.url.replace('partNumber=1', 'partNumber=2'));
    expect(stableHeaders(proxy.seen[0]!.headers)).toMatchObject({ 'content-md5': md5(part), 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' });
    // A body of 2 MiB or more: Expect: 100-continue, as the SDK sends it (undici cannot send that header).
    if (transport !== 'undici') expect(proxy.seen[0]!.headers.expect).toBe(proxy.seen[1]!.headers.expect);
    expect(proxy.seen[1]!.headers.expect).toBe('100-continue');
  });

  it('does not keep a written body alive once the write is answered (keep-alive sockets hold the last request)', async () => {
    const v8 = await import('node:v8');
    const vm = await import('node:vm');
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const { lean } = pair('lean');
    let body: Buffer | undefined = Buffer.alloc(8 * 1024 * 1024, 1);
    const ref = new WeakRef(body);
    await lean.put('gc-me', body, { contentLength: body.length, contentMd5: md5(body) });
    body = undefined;
    for (let i = 0; i < 5 && ref.deref(); i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      gc();
    }
    expect(ref.deref()).toBeUndefined();
  });

  it('writes tags, storage class, encryption and SSE-C as the SDK does, and reads tag count, class and redirect the same', async () => {
    const { lean: leanBucket, sdk: sdkBucket } = pair('lean');
    const sseCustomerKey = Buffer.alloc(32, 9).toString('base64');
    const sides: BucketOptions[] = [
      { sseCustomerKey },
      { encryption: { algorithm: 'aws:kms', kmsKeyId: 'alias/archive key' } },
      { encryption: { algorithm: 'AES256' } },
    ];
    const write = { tags: [{ Key: 'a b', Value: 'c&d=é+' }, { Key: 'empty', Value: '' }], storageClass: 'STANDARD_IA' };
    const headers = { ...HEADERS, WebsiteRedirectLocation: '/moved/here.html' };
    for (const options of sides) {
      const label = JSON.stringify(options);
      const lean = new S3Bucket(leanBucket.client, 'lean', 'dest', options);
      const sdk = new S3Bucket(sdkBucket.client, 'sdk', 'dest', options);
      const body = Buffer.from(`fidelity ${label} `.repeat(40));
      proxy.seen.length = 0;
      expect(await lean.put('fidelity', body, { contentLength: body.length, contentMd5: md5(body), headers, write })).toEqual(
        await sdk.put('fidelity', body, { contentLength: body.length, contentMd5: md5(body), headers, write }),
      );
      const [leanPut, sdkPut] = proxy.seen;
      expect(stableHeaders(leanPut!.headers), label).toEqual(stableHeaders(sdkPut!.headers));
      expect(signedHeadersOf(leanPut!.headers.authorization), label).toEqual(signedHeadersOf(sdkPut!.headers.authorization));
      expect(leanPut!.headers, label).toMatchObject({
        'x-amz-tagging': 'a%20b=c%26d%3D%C3%A9%2B&empty=',
        'x-amz-storage-class': 'STANDARD_IA',
        'x-amz-website-redirect-location': '/moved/here.html',
      });
      if (options.sseCustomerKey) {
        expect(leanPut!.headers, label).toMatchObject({
          'x-amz-server-side-encryption-customer-algorithm': 'AES256',
          'x-amz-server-side-encryption-customer-key': sseCustomerKey,
          'x-amz-server-side-encryption-customer-key-md5': createHash('md5').update(Buffer.alloc(32, 9)).digest('base64'),
        });
      } else {
        expect(leanPut!.headers['x-amz-server-side-encryption'], label).toBe(options.encryption!.algorithm);
      }

      // s3rver keeps the class and the redirect; it has no tag count, which the proxy adds here.
      proxy.seen.length = 0;
      proxy.answerHeaders['x-amz-tagging-count'] = '2';
      const gotLean = await lean.get('fidelity');
      const gotSdk = await sdk.get('fidelity');
      expect(shape(gotLean), label).toEqual(shape(gotSdk));
      expect({ tagCount: gotLean.tagCount, storageClass: gotLean.storageClass, redirect: gotLean.headers.WebsiteRedirectLocation }, label).toEqual({
        tagCount: 2,
        storageClass: 'STANDARD_IA',
        redirect: '/moved/here.html',
      });
      await bytesOf(gotLean.body);
      await bytesOf(gotSdk.body);
      const [leanGet, sdkGet] = proxy.seen;
      expect(stableHeaders(leanGet!.headers), label).toEqual(stableHeaders(sdkGet!.headers));
      delete proxy.answerHeaders['x-amz-tagging-count'];

      // UploadPart carries the SSE-C key alone (an upload's encryption is set when it is created).
      // (s3rver refuses a redirect location on CreateMultipartUpload.)
      const uploadId = await lean.createUpload('fidelity-mp', HEADERS, write);
      const part = Buffer.alloc(1000, 5);
      proxy.seen.length = 0;
      await lean.uploadPart('fidelity-mp', uploadId, 1, part, { contentLength: part.length, contentMd5: md5(part) });
      await sdk.uploadPart('fidelity-mp', uploadId, 2, part, { contentLength: part.length, contentMd5: md5(part) });
      // The SDK also labels a part's Buffer body application/octet-stream (unsigned, and meaningless for a part).
      const { 'content-type': _type, ...sdkPart } = stableHeaders(proxy.seen[1]!.headers);
      expect(stableHeaders(proxy.seen[0]!.headers), label).toEqual(sdkPart);
      expect(proxy.seen[0]!.headers['x-amz-storage-class'], label).toBeUndefined();
      expect(proxy.seen[0]!.headers['x-amz-server-side-encryption-customer-key'], label).toBe(options.sseCustomerKey);
    }
  });

  it('streams a PUT body of known length, unsigned like the SDK does', async () => {
    const { lean } = pair('lean');
    const { Readable } = await import('node:stream');
    const body = Buffer.alloc(300_000, 3);
    const answer = await lean.put('streamed', Readable.from([body.subarray(0, 100_000), body.subarray(100_000)]), { contentLength: body.length });
    expect(answer.etag).toBe(`"${createHash('md5').update(body).digest('hex')}"`);
    expect(proxy.seen.at(-1)!.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
  });
});

describe('ListObjectsV2 on the lean path', () => {
  // Keys a listing's XML must carry: entities (& < > ' "), blanks at either end, unicode, '+', '%'.
  const LISTED = [...KEYS, 'amp&lt;tag>&amp;', "quote\"apos'", ' lead and trail ', 'ctl\ttab'].map((key) => `list/${key}`);

  async function pages(bucket: S3Bucket, options: { prefix: string; startAfter: string; pageSize: number }): Promise<ListingPage[]> {
    const out: ListingPage[] = [];
    for await (const page of listPages(bucket.client, { bucket: 'b', ...options })) out.push(page);
    return out;
  }

  it('lists tricky keys page by page with the same requests and the same pages as the SDK', async () => {
    const { lean, sdk } = pair('b');
    for (const key of LISTED) await sdk.put(key, Buffer.from(key), { contentLength: Buffer.byteLength(key), contentMd5: md5(Buffer.from(key)) });
    for (const options of [
      { prefix: 'list/', startAfter: '', pageSize: 3 },
      { prefix: 'list/', startAfter: 'list/plus+sign', pageSize: 2 },
      { prefix: '', startAfter: '', pageSize: 1000 },
      { prefix: 'nothing/', startAfter: '', pageSize: 5 },
    ]) {
      proxy.seen.length = 0;
      const viaLean = await pages(lean, options);
      const leanSeen = proxy.seen.splice(0);
      const viaSdk = await pages(sdk, options);
      expect(viaLean, JSON.stringify(options)).toEqual(viaSdk);
      // s3rver's continuation tokens differ from listing to listing.
      const url = (r: Seen): string => r.url.replace(/continuation-token=[^&]+/, 'continuation-token=T');
      expect(leanSeen.map(url)).toEqual(proxy.seen.map(url));
      for (const [i, request] of leanSeen.entries()) {
        expect(request.url).toMatch(/^\/b\/\?(continuation-token=[^&]+&)?(encoding-type=url&)?list-type=2&/);
        // The user agent is the one captured from a GetObject: the SDK's listing adds its checksum-mode
        // feature ids (m/N,a,c,E,e instead of m/N,E,e), telemetry only.
        const { 'user-agent': leanAgent, ...leanHeaders } = stableHeaders(request.headers);
        const { 'user-agent': sdkAgent, ...sdkHeaders } = stableHeaders(proxy.seen[i]!.headers);
        expect(leanHeaders).toEqual(sdkHeaders);
        expect(String(leanAgent).replace(/ m\/.*$/, '')).toBe(String(sdkAgent).replace(/ m\/.*$/, ''));
        expect(signedHeadersOf(request.headers.authorization)).toEqual(signedHeadersOf(proxy.seen[i]!.headers.authorization));
      }
    }
    const all = (await pages(lean, { prefix: 'list/', startAfter: '', pageSize: 4 })).flatMap((page) => page.objects.map((o) => o.key));
    expect(all.sort()).toEqual([...LISTED].sort());
  });

  it('retries a listing as the SDK does, and classifies its errors the same', async () => {
    const { lean, sdk } = pair('b', {}, 3);
    const options = { prefix: 'list/', startAfter: '', pageSize: 1000 };
    for (const faults of [[{ status: 503, code: 'SlowDown' }, 'reset'], [{ status: 403, code: 'AccessDenied' }]] as Fault[][]) {
      const out: unknown[] = [];
      const requests: number[] = [];
      for (const bucket of [lean, sdk]) {
        proxy.seen.length = 0;
        proxy.faults.length = 0;
        proxy.faults.push(...faults);
        out.push(await pages(bucket, options).then((p) => p.flatMap((page) => page.objects.map((o) => o.key)), (error: unknown) => classifyError(error)));
        requests.push(proxy.seen.length);
      }
      expect(out[0]).toEqual(out[1]);
      expect(requests[0]).toBe(requests[1]);
    }
  });
});

describe('errors, retries and aborts: classified and retried as on the SDK path', () => {
  async function both<T>(run: (bucket: S3Bucket) => Promise<T>, faults: Fault[], maxAttempts?: number): Promise<{ lean: unknown; sdk: unknown; requests: number[] }> {
    const { lean, sdk } = pair('lean', {}, maxAttempts);
    const requests: number[] = [];
    const out: unknown[] = [];
    for (const bucket of [lean, sdk]) {
      proxy.seen.length = 0;
      proxy.faults.length = 0;
      proxy.faults.push(...faults);
      out.push(await run(bucket).then(() => 'ok', (error: unknown) => error));
      requests.push(proxy.seen.length);
    }
    return { lean: out[0], sdk: out[1], requests };
  }
  const body = Buffer.from('retry me');
  const put = (bucket: S3Bucket): Promise<unknown> => bucket.put('r', body, { contentLength: body.length, contentMd5: md5(body) });

  it('NoSuchKey 404', async () => {
    const { lean, sdk, requests } = await both((b) => b.get('no/such/key'), []);
    expect(classifyError(lean)).toEqual(classifyError(sdk));
    expect(classifyError(lean)).toMatchObject({ kind: 'not-found', code: 'NoSuchKey', status: 404 });
    expect(requests).toEqual([1, 1]);
  });

  it('403 AccessDenied: not retried, auth', async () => {
    const { lean, sdk, requests } = await both(put, [{ status: 403, code: 'AccessDenied' }]);
    expect(classifyError(lean)).toEqual(classifyError(sdk));
    expect(classifyError(lean).kind).toBe('auth');
    expect(requests).toEqual([1, 1]);
  });

  it('403 without a body (a HEAD-like answer): named Forbidden on both', async () => {
    const { lean, sdk } = await both(put, [{ status: 403, code: '' }]);
    expect(classifyError(lean)).toMatchObject({ kind: 'auth', status: 403 });
    expect(classifyError(lean).kind).toEqual(classifyError(sdk).kind);
  });

  it('503 SlowDown: retried up to the attempts, then throttled', async () => {
    const slow = { status: 503, code: 'SlowDown' };
    const { lean, sdk, requests } = await both(put, [slow, slow, slow, slow]);
    expect(classifyError(lean)).toEqual(classifyError(sdk));
    expect(classifyError(lean)).toMatchObject({ kind: 'throttled', code: 'SlowDown', status: 503 });
    expect(requests).toEqual([3, 3]);
    expect((lean as { $metadata: { attempts: number } }).$metadata.attempts).toBe(3);
  });

  it('transient faults then success: both retry and succeed', async () => {
    const { lean, sdk, requests } = await both(put, [{ status: 500, code: 'InternalError' }, 'reset']);
    expect(lean).toBe('ok');
    expect(sdk).toBe('ok');
    expect(requests).toEqual([3, 3]);
  });

  it('connection resets: retryable, with the same code', async () => {
    const { lean, sdk, requests } = await both((b) => b.get('r'), ['reset', 'reset', 'reset'], 2);
    // The message may differ by HTTP client ("socket hang up", "other side closed"); the class may not.
    const { description: _a, ...leanClass } = classifyError(lean);
    const { description: _b, ...sdkClass } = classifyError(sdk);
    expect(leanClass).toEqual(sdkClass);
    expect(classifyError(lean).kind).toBe('retryable');
    expect(requests).toEqual([2, 2]);
  });

  it('socket timeouts: TimeoutError, retryable, on both', async () => {
    const make = (): S3Client =>
      new S3Client({
        endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        maxAttempts: 1,
        requestHandler: { socketTimeout: 300 },
      });
    const sdkClient = make();
    const leanClient = make();
    attachLeanPath(leanClient, { maxSockets: 4, connectionTimeoutMs: 1000, socketTimeoutMs: 300, transport });
    proxy.faults.push('hang', 'hang');
    const errors = await Promise.all([
      new S3Bucket(leanClient, 'lean', 'source').get('r').catch((e) => e),
      new S3Bucket(sdkClient, 'lean', 'source').get('r').catch((e) => e),
    ]);
    expect(classifyError(errors[0])).toMatchObject({ kind: 'retryable', code: 'TimeoutError' });
    expect(classifyError(errors[0]).kind).toBe(classifyError(errors[1]).kind);
    expect(classifyError(errors[0]).code).toBe(classifyError(errors[1]).code);
  });

  it('an abort signal cancels an in-flight request at once', async () => {
    const { lean, sdk } = pair('lean');
    for (const bucket of [lean, sdk]) {
      proxy.faults.push('hang');
      const controller = new AbortController();
      const started = Date.now();
      const pending = bucket.get('r', { signal: controller.signal }).catch((e) => e);
      setTimeout(() => controller.abort(), 100);
      const error = await pending;
      expect(classifyError(error).kind).toBe('aborted');
      expect(Date.now() - started).toBeLessThan(3000);
    }
  });

  it('the request-rate limit counts every lean attempt', async () => {
    const { lean } = pair('lean');
    const other = createS3Client(config(), { maxSockets: 2 });
    applyRateLimits(lean.client, other, { requestsPerSecond: 5 });
    proxy.faults.push({ status: 500, code: 'InternalError' }, { status: 500, code: 'InternalError' });
    const started = Date.now();
    for (let i = 0; i < 4; i += 1) await put(lean); // 2 failed attempts + 4 successes = 6 tokens, 5 per second
    expect(proxy.seen).toHaveLength(6);
    expect(Date.now() - started).toBeGreaterThan(150);
  });
});

describe('credentials and addressing', () => {
  it('signs with the session token and access key the SDK uses', async () => {
    const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', sessionToken: 'token-ABC/+=' };
    const { lean, sdk } = pair('lean', { credentials });
    await lean.get('r').then((g) => g.body.resume());
    await sdk.get('r').then((g) => g.body.resume());
    const [viaLean, viaSdk] = proxy.seen;
    expect(viaLean!.headers['x-amz-security-token']).toBe('token-ABC/+=');
    expect(viaSdk!.headers['x-amz-security-token']).toBe('token-ABC/+=');
    expect(credentialOf(viaLean!.headers.authorization)).toBe(credentialOf(viaSdk!.headers.authorization));
    expect(signedHeadersOf(viaLean!.headers.authorization)).toContain('x-amz-security-token');
  });

  it('takes credentials and region from a profile through the SDK provider chain', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 's3migrate-lean-profile-'));
    const saved = { AWS_CONFIG_FILE: process.env.AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE: process.env.AWS_SHARED_CREDENTIALS_FILE };
    fs.writeFileSync(path.join(dir, 'config'), '[profile leanprof]\nregion = eu-west-3\n');
    fs.writeFileSync(path.join(dir, 'credentials'), '[leanprof]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\naws_session_token = profile-token\n');
    process.env.AWS_CONFIG_FILE = path.join(dir, 'config');
    process.env.AWS_SHARED_CREDENTIALS_FILE = path.join(dir, 'credentials');
    try {
      const { lean, sdk } = pair('lean', { credentials: undefined, profile: 'leanprof', region: undefined });
      await lean.get('r').then((g) => g.body.resume());
      await sdk.get('r').then((g) => g.body.resume());
      const [viaLean, viaSdk] = proxy.seen;
      expect(credentialOf(viaLean!.headers.authorization)).toBe('S3RVER/DATE/eu-west-3/s3/aws4_request');
      expect(credentialOf(viaSdk!.headers.authorization)).toBe('S3RVER/DATE/eu-west-3/s3/aws4_request');
      expect(viaLean!.headers['x-amz-security-token']).toBe('profile-token');
    } finally {
      for (const [name, value] of Object.entries(saved)) if (value === undefined) delete process.env[name]; else process.env[name] = value;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('virtual-host style: the bucket in the host name, the same URL and Host as the SDK', async () => {
    // s3rver serves `<bucket>.s3.amazonaws.com`; every such name is looked up as 127.0.0.1 here.
    const lookup = ((_host: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) =>
      options?.all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4)) as unknown as LookupFunction;
    const make = (): S3Client =>
      new S3Client({
        endpoint: `http://s3.amazonaws.com:${proxy.port}`,
        region: 'us-east-1',
        forcePathStyle: false,
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        requestHandler: { httpAgent: new http.Agent({ keepAlive: true, lookup }) },
      });
    const leanClient = make();
    attachLeanPath(leanClient, { maxSockets: 4, connectionTimeoutMs: 5000, socketTimeoutMs: 5000, agentOptions: { lookup }, transport });
    const lean = new S3Bucket(leanClient, 'lean', 'dest');
    const sdk = new S3Bucket(make(), 'lean', 'dest');
    const body = Buffer.from('virtual host');
    await lean.put('vh/a b+c', body, { contentLength: body.length, contentMd5: md5(body) });
    await sdk.put('vh/a b+c', body, { contentLength: body.length, contentMd5: md5(body) });
    const gotLean = await lean.get('vh/a b+c');
    const gotSdk = await sdk.get('vh/a b+c');
    expect(await bytesOf(gotLean.body)).toEqual(body);
    expect(shape(gotLean)).toEqual(shape(gotSdk));
    await bytesOf(gotSdk.body);
    const [putLean, putSdk, getLean, getSdk] = proxy.seen;
    expect(putLean!.headers.host).toBe(`lean.s3.amazonaws.com:${proxy.port}`);
    expect(putLean!.url).toBe('/vh/a%20b%2Bc?x-id=PutObject');
    expect([putLean!.url, putLean!.headers.host]).toEqual([putSdk!.url, putSdk!.headers.host]);
    expect([getLean!.url, getLean!.headers.host]).toEqual([getSdk!.url, getSdk!.headers.host]);
  });

  it('leaves the when-supported checksum mode to the SDK path', async () => {
    const { lean } = pair('lean', { checksumMode: 'when-supported' });
    const body = Buffer.from('checksums');
    await lean.put('cs', body, { contentLength: body.length, contentMd5: md5(body) });
    expect(proxy.seen.at(-1)!.headers['amz-sdk-invocation-id']).toBeDefined();
  });

  it('the lean path is off with S3MIGRATE_LEAN_PATH=0 (no lean path on the client)', async () => {
    const { resolveEndpointConfig } = await import('../src/config/endpoint-config.js');
    expect(resolveEndpointConfig('source', { S3MIGRATE_LEAN_PATH: '0' }).leanPath).toBe(false);
    expect(resolveEndpointConfig('source', {}).leanPath).toBeUndefined();
    const client = createS3Client(resolveEndpointConfig('source', { S3MIGRATE_LEAN_PATH: '0', SOURCE_ENDPOINT: endpoint }), { maxSockets: 2 });
    expect(leanPathOf(client)).toBeUndefined();
  });
});
});
