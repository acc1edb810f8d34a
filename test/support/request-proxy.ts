// A small reverse proxy put in front of an S3 endpoint in tests: it counts the
// S3 operations the code under test performs and can inject failures (an S3
// error answer or a dropped connection) without touching the real server.
// Path-style requests only (`/bucket/key`), which is how tests address s3rver.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline, type Transform } from 'node:stream';

export type S3Op =
  | 'ListObjectsV2'
  | 'ListObjects'
  | 'ListMultipartUploads'
  | 'HeadBucket'
  | 'HeadObject'
  | 'GetObject'
  | 'PutObject'
  | 'CopyObject'
  | 'CreateMultipartUpload'
  | 'UploadPart'
  | 'UploadPartCopy'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'DeleteObject'
  | 'GetObjectTagging'
  | 'PutObjectTagging'
  | 'DeleteObjectTagging'
  | 'Other';

export interface RequestInfo {
  op: S3Op;
  method: string;
  /** URL path as sent (percent-encoded, no query string), e.g. `/bucket/some%20key`. */
  path: string;
  /** The query string as sent, without '?' ('' when none), e.g. `partNumber=1&uploadId=...`. */
  query: string;
  /** The request's headers (lower-case names), as the client sent them. */
  headers: http.IncomingHttpHeaders;
}

export interface LogEntry extends RequestInfo {
  /** Status sent to the client; 0 for a reset connection or a request still in flight. */
  status: number;
  /** Body bytes the client sent, and the target answered, through the proxy (for forwarded requests). */
  requestBytes: number;
  responseBytes: number;
}

export interface InjectedError {
  status: number;
  code: string;
  message?: string;
}

/** 'pass' (or nothing) forwards, an error object answers with an S3 error, 'reset' drops the connection. */
export type ProxyDecision = 'pass' | 'reset' | InjectedError | undefined | void;

export interface RequestProxyOptions {
  onRequest?: (info: RequestInfo) => ProxyDecision | Promise<ProxyDecision>;
  /**
   * Called when the target has answered a forwarded request, before the answer is passed on to the
   * client (which waits until the returned promise settles): e.g. to kill the client right after the
   * target stored an object but before the client learns it.
   */
  onResponse?: (info: RequestInfo, status: number) => void | Promise<void>;
  /**
   * Decides, per forwarded answer, whether to cut its body short: the status and headers go through,
   * then only `afterBytes` of the body, then the connection is destroyed (`how: 'destroy'`, the client
   * sees fewer bytes than Content-Length) or the answer ends cleanly without Content-Length (`how: 'end'`,
   * a short body nothing at the HTTP level notices). Undefined forwards the whole answer.
   */
  cutResponse?: (info: RequestInfo, status: number) => ResponseCut | undefined;
  /**
   * Decides, per forwarded answer that is not cut, whether its body goes through a stream of the test's
   * (e.g. one that trickles it slowly). Undefined forwards it as it comes.
   */
  shapeResponse?: (info: RequestInfo, status: number, headers: http.IncomingHttpHeaders) => Transform | undefined;
  /**
   * Decides, per forwarded answer, whether to rewrite it: headers replaced by name, and the body (read
   * whole) passed through a function, Content-Length set to what comes out. Undefined forwards it as is.
   */
  rewriteResponse?: (info: RequestInfo, status: number, headers: http.IncomingHttpHeaders) => ResponseRewrite | undefined;
}

export interface ResponseRewrite {
  /** Header values to set (lower-case names), replacing the target's. */
  headers?: Record<string, string>;
  body?: (body: Buffer) => Buffer;
}

/** Sends a rewritten answer: the target's head with `rewrite.headers` applied, the body rewritten whole. */
function forwardRewritten(upRes: http.IncomingMessage, res: http.ServerResponse, rewrite: ResponseRewrite): void {
  const chunks: Buffer[] = [];
  upRes.on('data', (chunk: Buffer) => chunks.push(chunk));
  upRes.on('error', () => res.destroy());
  upRes.on('end', () => {
    const original = Buffer.concat(chunks);
    const body = rewrite.body ? rewrite.body(original) : original;
    const replaced = { ...rewrite.headers, ...(rewrite.body ? { 'content-length': String(body.length) } : {}) };
    const raw = endToEndHeaders(upRes.rawHeaders);
    const headers: string[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      if (!(raw[i]!.toLowerCase() in replaced)) headers.push(raw[i]!, raw[i + 1]!);
    }
    for (const [name, value] of Object.entries(replaced)) headers.push(name, value);
    res.writeHead(upRes.statusCode ?? 0, upRes.statusMessage, headers);
    res.end(body);
  });
}

export interface ResponseCut {
  afterBytes: number;
  how: 'destroy' | 'end';
  /** Milliseconds to hold the connection open after the last byte sent, before cutting. */
  holdMs?: number;
}

/** Passes on the answer's head and its first `cut.afterBytes` body bytes, then cuts it (see cutResponse). */
function forwardCut(upRes: http.IncomingMessage, res: http.ServerResponse, cut: ResponseCut): void {
  const raw = endToEndHeaders(upRes.rawHeaders);
  const headers: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (cut.how === 'destroy' || raw[i]!.toLowerCase() !== 'content-length') headers.push(raw[i]!, raw[i + 1]!);
  }
  res.writeHead(upRes.statusCode ?? 0, upRes.statusMessage, headers);
  let left = cut.afterBytes;
  let done = false;
  // Once what was written has left, end cleanly or drop the connection mid-body.
  const cutNow = (): void => void (cut.how === 'end' ? res.end() : res.destroy());
  upRes.on('error', () => undefined); // we destroy it ourselves
  if (left <= 0) {
    done = true;
    upRes.destroy();
    res.flushHeaders();
    setImmediate(cutNow);
    return;
  }
  upRes.on('data', (chunk: Buffer) => {
    if (done) return;
    const piece = chunk.length > left ? chunk.subarray(0, left) : chunk;
    left -= piece.length;
    if (left > 0) return void res.write(piece);
    done = true;
    upRes.destroy();
    res.write(piece, () => setTimeout(cutNow, cut.holdMs ?? 0));
  });
  upRes.on('end', () => {
    if (!done) res.end(); // shorter than afterBytes: nothing to cut
  });
}

export interface RequestProxy {
  endpoint: string;
  /** Requests seen so far per operation (injected failures included). */
  counts(): Record<string, number>;
  log(): LogEntry[];
  reset(): void;
  stop(): Promise<void>;
}

// Query parameters of a plain ListObjects (v1) call; anything else on a bucket GET is another API.
const LIST_PARAMS = new Set(['prefix', 'delimiter', 'marker', 'max-keys', 'encoding-type', 'x-id']);
// Object sub-resources that make a GET/PUT something other than Get/PutObject (ACLs, tags, ListParts...).
const OBJECT_SUBRESOURCES = ['acl', 'tagging', 'attributes', 'retention', 'legal-hold', 'torrent', 'restore'];

/** Maps a path-style S3 request to its operation name. */
export function classifyS3Request(method: string, url: string, headers: http.IncomingHttpHeaders = {}): S3Op {
  const { pathname, searchParams: q } = new URL(url, 'http://proxy.invalid');
  const slash = pathname.indexOf('/', 1); // the end of `/bucket`
  const hasKey = slash > 0 && slash < pathname.length - 1;
  const isCopy = headers['x-amz-copy-source'] !== undefined;

  if (!hasKey) {
    if (method === 'HEAD') return 'HeadBucket';
    if (method !== 'GET') return 'Other'; // CreateBucket, DeleteObjects (POST ?delete), ...
    if (q.get('list-type') === '2') return 'ListObjectsV2';
    if (q.has('uploads')) return 'ListMultipartUploads';
    return [...q.keys()].every((k) => LIST_PARAMS.has(k)) ? 'ListObjects' : 'Other';
  }
  if (q.has('tagging')) {
    if (method === 'GET') return 'GetObjectTagging';
    if (method === 'PUT') return 'PutObjectTagging';
    if (method === 'DELETE') return 'DeleteObjectTagging';
  }
  if (OBJECT_SUBRESOURCES.some((k) => q.has(k))) return 'Other';

  switch (method) {
    case 'HEAD':
      return 'HeadObject';
    case 'GET':
      return q.has('uploadId') ? 'Other' /* ListParts */ : 'GetObject';
    case 'PUT':
      if (q.has('partNumber') && q.has('uploadId')) return isCopy ? 'UploadPartCopy' : 'UploadPart';
      return isCopy ? 'CopyObject' : 'PutObject';
    case 'POST':
      if (q.has('uploads')) return 'CreateMultipartUpload';
      if (q.has('uploadId')) return 'CompleteMultipartUpload';
      return 'Other';
    case 'DELETE':
      return q.has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject';
    default:
      return 'Other';
  }
}

// Hop-by-hop headers belong to one connection, not to the request; Expect was already answered by us.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'upgrade', 'expect']);

/** Filters a flat rawHeaders list ([name, value, name, value, ...]) keeping case and duplicates. */
function endToEndHeaders(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function sendS3Error(res: http.ServerResponse, { status, code, message = code }: InjectedError): void {
  const body = Buffer.from(
    `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${escapeXml(code)}</Code>` +
      `<Message>${escapeXml(message)}</Message></Error>`,
  );
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': body.length });
  res.end(body);
}

export async function startRequestProxy(targetEndpoint: string, opts: RequestProxyOptions = {}): Promise<RequestProxy> {
  const target = new URL(targetEndpoint);
  const agent = new http.Agent({ keepAlive: true });
  let entries: LogEntry[] = [];

  const forward = (req: http.IncomingMessage, res: http.ServerResponse, entry: LogEntry, info: RequestInfo): void => {
    const upstream = http.request({
      protocol: target.protocol,
      hostname: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: endToEndHeaders(req.rawHeaders), // keeps the client's Host header
      agent,
    });
    req.on('data', (chunk: Buffer) => (entry.requestBytes += chunk.length));
    upstream.on('response', (upRes) => {
      const status = upRes.statusCode ?? 0;
      const pass = (): void => {
        entry.status = status;
        // Counted only now: a listener attached earlier would start the flow before anything reads it.
        upRes.on('data', (chunk: Buffer) => (entry.responseBytes += chunk.length));
        const cut = opts.cutResponse?.({ ...info }, status);
        if (cut) return forwardCut(upRes, res, cut);
        const rewrite = opts.rewriteResponse?.({ ...info }, status, upRes.headers);
        if (rewrite) return forwardRewritten(upRes, res, rewrite);
        res.writeHead(status, upRes.statusMessage, endToEndHeaders(upRes.rawHeaders));
        const shape = opts.shapeResponse?.({ ...info }, status, upRes.headers);
        if (shape) return void pipeline(upRes, shape, res, () => {});
        pipeline(upRes, res, () => {}); // a client that hangs up just ends the stream
      };
      if (!opts.onResponse) return pass();
      Promise.resolve(opts.onResponse({ ...info }, status)).then(pass, pass);
    });
    // Streams the request body as it arrives; if the target fails, answer 502 (or drop if too late).
    pipeline(req, upstream, (err) => {
      if (!err) return;
      if (!res.headersSent) {
        entry.status = 502;
        sendS3Error(res, { status: 502, code: 'BadGateway', message: `proxy: ${err.message}` });
      } else {
        res.destroy();
      }
    });
  };

  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const info: RequestInfo = {
      op: classifyS3Request(method, url, req.headers),
      method,
      path: url.split('?')[0]!,
      query: url.includes('?') ? url.slice(url.indexOf('?') + 1) : '',
      headers: req.headers,
    };
    const entry: LogEntry = { ...info, status: 0, requestBytes: 0, responseBytes: 0 };
    entries.push(entry);

    Promise.resolve(opts.onRequest?.({ ...info }))
      .then((decision) => {
        if (decision === undefined || decision === 'pass') return forward(req, res, entry, info);
        if (decision === 'reset') return void req.socket.destroy();
        entry.status = decision.status;
        req.resume(); // drain an unread upload so the client sees our answer, not EPIPE
        sendS3Error(res, decision);
      })
      .catch((err: unknown) => {
        if (res.headersSent) return void res.destroy();
        entry.status = 500;
        sendS3Error(res, { status: 500, code: 'ProxyHookError', message: String(err) });
      });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    counts() {
      const counts: Record<string, number> = {};
      for (const { op } of entries) counts[op] = (counts[op] ?? 0) + 1;
      return counts;
    },
    log: () => entries.map((e) => ({ ...e })),
    reset() {
      entries = [];
    },
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // do not wait for clients' idle keep-alive sockets
      });
      agent.destroy();
    },
  };
}
