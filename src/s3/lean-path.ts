import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from './sdk.js';
import { Http1Client } from './lean-http.js';
import { EMPTY_SHA256, SigV4Signer, type SigningCredentials } from './sigv4.js';

/**
 * The lean path for the hot calls of a copy (GetObject, PutObject/UploadPart, and CopyObject for
 * server-side copies): the same requests the SDK sends, built from the SDK's own parts, without its
 * per-request middleware stack.
 *
 * - Endpoint and URL: the SDK resolves them itself, once per bucket: a GetObject for a probe key is sent
 *   through the client's full stack and stopped just before signing (see `resolveTarget`); its URL, with
 *   the probe key cut off, is the bucket's base for every key (path or virtual-host style, the endpoint's
 *   path), and its user-agent headers are reused. Keys are encoded as the SDK encodes them (`encodeKey`).
 * - Signing and credentials: SigV4 as the SDK's signer does it for S3 (sigv4.ts, checked against it in
 *   test/unit/sigv4.test.ts), with the region and service the SDK's endpoint rules chose, the client's
 *   credential provider (static keys, session token, profile, the default chain; asked per request, as
 *   the SDK's signer asks it) and its clock-skew offset. Writes that carry Content-MD5 are signed
 *   UNSIGNED-PAYLOAD.
 * - Retries: the client's own retry strategy (the SDK's standard one: attempts, backoff, retry quota),
 *   with the SDK's error types; a streamed body is not retried, as in the SDK.
 * - HTTP: our own HTTP/1.1 client over keep-alive connections (lean-http.ts) by default; node:http or
 *   undici on request (S3MIGRATE_HTTP_CLIENT).
 * - Errors: the shape of the SDK's service errors (`name` = S3 code, `$metadata.httpStatusCode`,
 *   `$fault`, `$response`), network errors as node:http raises them, timeouts as `TimeoutError`.
 *
 * Anything it does not handle the same way (a region redirect, a signing scheme other than SigV4, the
 * `when-supported` checksum mode) is handed back to the SDK path: see `LeanHandover`.
 */

export interface LeanOptions {
  maxSockets: number;
  connectionTimeoutMs: number;
  socketTimeoutMs: number;
  /** More options for the HTTP(S) agents (tests: a `lookup` that sends virtual-host names to 127.0.0.1). */
  agentOptions?: http.AgentOptions;
  /** The HTTP client: our own HTTP/1.1 client (lean-http.ts, default), node:http, or the `undici` package when installed. */
  transport?: 'http1' | 'node-http' | 'undici';
}

/** The part of undici's Dispatcher API the lean path uses (typed here: undici is an optional package). */
interface UndiciAgent {
  request(options: {
    origin: string;
    path: string;
    method: string;
    headers: Record<string, string>;
    body?: Buffer | Readable;
    signal?: AbortSignal;
  }): Promise<{ statusCode: number; headers: Record<string, string | string[] | undefined>; body: Readable }>;
}

/** Thrown before anything was sent: the caller must make this call through the SDK instead. */
export class LeanHandover extends Error {
  constructor(reason: string) {
    super(`lean path not used: ${reason}`);
    this.name = 'LeanHandover';
  }
}

interface SignableRequest {
  method: string;
  protocol: string;
  hostname: string;
  port?: number;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body?: unknown;
}

interface Target {
  protocol: 'http:' | 'https:';
  hostname: string;
  port?: number;
  /** The URL path up to the key, e.g. `/bucket/` (path style) or `/` (virtual host). */
  base: string;
  /** The Host header the SDK sends. */
  host: string;
  userAgent: Record<string, string>;
  /** The client's credential provider (the one its SDK signer asks). */
  credentials: () => Promise<SigningCredentials>;
  signer: SigV4Signer;
}

/** What a lean request answered: the status, headers and (for a 2xx GET) the body stream. */
export interface LeanAnswer {
  statusCode: number;
  headers: http.IncomingHttpHeaders;
  /** The body of a 2xx GET (a write's answer is read whole, and not handed on). */
  body?: Readable;
  /** The whole body of a 2xx answer to a request that asked for it (`readWhole`). */
  text?: string;
}

interface RetryToken {
  getRetryCount(): number;
  getRetryDelay(): number;
}
interface RetryStrategy {
  acquireInitialRetryToken(scope: string): Promise<RetryToken>;
  refreshRetryTokenForRetry(token: RetryToken, info: { error: unknown; errorType: string; retryAfterHint?: Date }): Promise<RetryToken>;
  recordSuccess(token: RetryToken): void;
}

const PROBE_KEY = 's3migrate-endpoint-probe';
/** A body read whole on request (a listing page: 1,000 keys of up to 1 KiB each, XML-escaped) is refused beyond this. */
const READ_WHOLE_LIMIT = 64 * 1024 * 1024;
const EXPECT_CONTINUE_BYTES = 2 * 1024 * 1024;
const CAPTURED = Symbol('s3migrate lean target captured');

/** The SDK's encoding of a greedy `{Key+}` label: each `/`-separated segment URI-encoded, `!'()*` too. */
export function encodeKey(key: string): string {
  // Most keys need no escaping at all: skip the split and the per-segment encoding for them.
  return SAFE_KEY.test(key) ? key : key.split('/').map(escapeUri).join('/');
}
const SAFE_KEY = /^[A-Za-z0-9\-_.~/]*$/;

/** The SDK's URI escaping (encodeURIComponent, plus `!'()*`). */
export function escapeUri(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function queryString(query: Record<string, string>): string {
  const parts: string[] = [];
  for (const name of Object.keys(query)) parts.push(`${escapeUri(name)}=${escapeUri(query[name]!)}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

// The SDK's retry error types (@smithy/core/retry getRetryErrorType), for its retry strategy.
const THROTTLING = new Set([
  'BandwidthLimitExceeded', 'EC2ThrottledException', 'LimitExceededException', 'PriorRequestNotComplete',
  'ProvisionedThroughputExceededException', 'RequestLimitExceeded', 'RequestThrottled', 'RequestThrottledException',
  'SlowDown', 'ThrottledException', 'Throttling', 'ThrottlingException', 'TooManyRequestsException', 'TransactionInProgressException',
]);
const TRANSIENT_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);
const TRANSIENT_ERRNO = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const TRANSIENT_STATUS = new Set([500, 502, 503, 504]);
const CLOCK_SKEW = new Set(['AccessDeniedException', 'AuthFailure', 'InvalidSignatureException', 'RequestExpired', 'RequestInTheFuture', 'RequestTimeTooSkewed', 'SignatureDoesNotMatch']);

interface ErrorLike {
  name?: string;
  code?: string;
  message?: string;
  cause?: unknown;
  $metadata?: { httpStatusCode?: number; clockSkewCorrected?: boolean };
}

function isTransient(error: ErrorLike | undefined, depth = 0): boolean {
  if (!error || error.name === 'AbortError') return false;
  return (
    error.$metadata?.clockSkewCorrected === true ||
    TRANSIENT_NAMES.has(error.name ?? '') ||
    TRANSIENT_ERRNO.has(error.code ?? '') ||
    TRANSIENT_STATUS.has(error.$metadata?.httpStatusCode ?? 0) ||
    (error.cause !== undefined && depth <= 10 && isTransient(error.cause as ErrorLike, depth + 1))
  );
}

export function retryErrorType(error: ErrorLike): 'THROTTLING' | 'TRANSIENT' | 'SERVER_ERROR' | 'CLIENT_ERROR' {
  if (error.$metadata?.httpStatusCode === 429 || THROTTLING.has(error.name ?? '')) return 'THROTTLING';
  if (isTransient(error)) return 'TRANSIENT';
  if ((error.$metadata?.httpStatusCode ?? 0) >= 500) return 'SERVER_ERROR';
  return 'CLIENT_ERROR';
}

function retryAfterHint(error: { $response?: { headers?: Record<string, string | string[] | undefined> } }): Date | undefined {
  const value = error.$response?.headers?.['retry-after'];
  if (typeof value !== 'string') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return new Date(Date.now() + seconds * 1000);
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

const XML_ENTITY = /&(?:(lt|gt|quot|apos|amp)|#x([0-9a-fA-F]+)|#([0-9]+));/g;
const NAMED_ENTITY: Record<string, string> = { lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' };

/** Decodes XML's five named entities and character references in one pass (`&amp;lt;` stays `&lt;`). */
export function unescapeXml(text: string): string {
  return text.replace(XML_ENTITY, (whole, name: string | undefined, hex: string | undefined, dec: string | undefined) => {
    if (name !== undefined) return NAMED_ENTITY[name]!;
    const code = hex !== undefined ? parseInt(hex, 16) : Number(dec);
    return code <= 0x10ffff ? String.fromCodePoint(code) : whole;
  });
}

/** The first `<name>` element's text of a small answer document, its XML entities decoded. */
export function xmlField(body: string, name: string): string | undefined {
  const match = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(body);
  return match ? unescapeXml(match[1]!) : undefined;
}

function headerString(headers: http.IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * An S3 error answer as the SDK's error: named by its S3 code (`UnknownError` when the answer has none,
 * as the SDK says), with its HTTP status, request ids, fault and raw response.
 */
export function serviceError(statusCode: number, headers: http.IncomingHttpHeaders, body: string): Error {
  const code = body.includes('<Error') ? xmlField(body, 'Code') : undefined;
  const message = body.includes('<Error') ? xmlField(body, 'Message') : undefined;
  const name = code && code !== '' ? code : 'UnknownError';
  const error = new Error(message ?? name) as Error & Record<string, unknown>;
  error.name = name;
  if (code) error.Code = code;
  const requestId = (body.includes('<Error') ? xmlField(body, 'RequestId') : undefined) ?? headerString(headers, 'x-amz-request-id');
  const hostId = (body.includes('<Error') ? xmlField(body, 'HostId') : undefined) ?? headerString(headers, 'x-amz-id-2');
  error.$fault = statusCode >= 500 ? 'server' : 'client';
  error.$metadata = { httpStatusCode: statusCode, requestId, extendedRequestId: hostId, cfId: headerString(headers, 'x-amz-cf-id') };
  error.$response = { statusCode, headers, body: undefined };
  if (requestId) error.RequestId = requestId;
  if (hostId) error.HostId = hostId;
  return error;
}

function timeoutError(message: string): Error {
  return Object.assign(new Error(message), { name: 'TimeoutError' });
}

/** undici's errors in the shapes node:http (and so the SDK) gives them: timeouts, resets, aborts. */
function undiciError(error: Error & { code?: string }): Error {
  switch (error.code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return Object.assign(timeoutError(error.message), { cause: error });
    case 'UND_ERR_SOCKET':
      return Object.assign(new Error(error.message), { code: 'ECONNRESET', cause: error });
    case 'UND_ERR_ABORTED':
      return Object.assign(abortError(), { cause: error });
    default:
      return error;
  }
}

function abortError(): Error {
  return Object.assign(new Error('The operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR' });
}

/** Reads a body: its first `keep` bytes (an error's), or (with `failBeyond`) all of it, failing when it is bigger. */
function readAll(stream: Readable, failBeyond?: number): Promise<string> {
  const keep = failBeyond ?? 1 << 20;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      if (failBeyond !== undefined && size + chunk.length > failBeyond) {
        stream.destroy(Object.assign(new Error(`answer body larger than ${failBeyond} bytes`), { code: 'ERR_ANSWER_TOO_LARGE' }));
        return;
      }
      if (size < keep) chunks.push(chunk);
      size += chunk.length;
    });
    stream.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    stream.once('error', reject);
  });
}

export interface LeanRequest {
  method: 'GET' | 'PUT';
  bucket: string;
  key: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body?: Buffer | Readable;
  /** The body is covered by a signed Content-MD5: sign UNSIGNED-PAYLOAD instead of hashing it. */
  unsignedPayload: boolean;
  /** A request whose 2xx body is read whole and answered as `text` (a listing page, a CopyObject result), not handed on as a stream. */
  readWhole?: boolean;
  signal?: AbortSignal;
}

/**
 * One client's lean path. Created by createS3Client (client.ts) when the side allows it and attached to
 * that client; S3Bucket asks `leanPathOf(client)`.
 */
export class LeanPath {
  /** Awaited before every HTTP attempt (the run's request-rate limit; see rate-limit.ts). */
  beforeAttempt: (() => Promise<void>) | undefined;
  /** Applied to every GetObject body (the run's bandwidth limit). */
  wrapBody: ((body: Readable) => Readable) | undefined;
  private readonly targets = new Map<string, Promise<Target>>();
  /** Buckets handed to the SDK for good (a region redirect): it learns and follows what we do not. */
  private readonly handedOver = new Set<string>();
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly http1: Http1Client | undefined;
  private undici: Promise<UndiciAgent> | undefined;

  constructor(
    readonly client: S3Client,
    private readonly options: LeanOptions,
  ) {
    const agentOptions = { keepAlive: true, maxSockets: options.maxSockets, maxFreeSockets: options.maxSockets, ...options.agentOptions };
    this.httpAgent = new http.Agent(agentOptions);
    this.httpsAgent = new https.Agent(agentOptions);
    if (options.transport === undefined || options.transport === 'http1') {
      this.http1 = new Http1Client({
        maxSockets: options.maxSockets,
        connectionTimeoutMs: options.connectionTimeoutMs,
        socketTimeoutMs: options.socketTimeoutMs,
        lookup: options.agentOptions?.lookup,
      });
    }
    if (options.transport === 'undici') {
      const name = 'undici';
      this.undici = (import(name) as Promise<{ Agent: new (options: object) => UndiciAgent }>).catch((error: Error) => {
        throw Object.assign(new Error(`S3MIGRATE_HTTP_CLIENT=undici needs the undici package (npm install undici): ${error.message}`), {
          name: 'UndiciMissing',
        });
      }).then(
        ({ Agent }) =>
          new Agent({
            connections: options.maxSockets,
            connect: { timeout: options.connectionTimeoutMs, ...(options.agentOptions?.lookup ? { lookup: options.agentOptions.lookup } : {}) },
            headersTimeout: options.socketTimeoutMs,
            bodyTimeout: options.socketTimeoutMs,
          }),
      );
      this.undici.catch(() => undefined);
    }
  }

  /** False once a bucket was handed over to the SDK path. */
  serves(bucket: string): boolean {
    return !this.handedOver.has(bucket);
  }

  private target(bucket: string): Promise<Target> {
    let target = this.targets.get(bucket);
    if (!target) {
      target = resolveTarget(this.client, bucket);
      this.targets.set(bucket, target);
      target.catch(() => this.targets.delete(bucket));
    }
    return target;
  }

  /**
   * Sends one request with the SDK's retry strategy; resolves a 2xx answer (its body unread) or throws
   * the SDK-shaped error. A non-2xx answer's body is read for its error code.
   */
  async send(request: LeanRequest): Promise<LeanAnswer> {
    if (this.handedOver.has(request.bucket)) throw new LeanHandover('bucket handed over to the SDK');
    let target: Target;
    try {
      target = await this.target(request.bucket);
    } catch (error) {
      if (error instanceof LeanHandover) {
        this.handedOver.add(request.bucket);
      }
      throw error;
    }
    const config = this.client.config as unknown as { retryStrategy: () => Promise<RetryStrategy>; systemClockOffset?: number };
    const strategy = await config.retryStrategy();
    if (request.signal?.aborted) throw abortError();
    let token = await strategy.acquireInitialRetryToken('');
    let attempts = 0;
    let totalRetryDelay = 0;
    const streamed = request.body !== undefined && !Buffer.isBuffer(request.body);
    for (;;) {
      attempts += 1;
      try {
        if (this.beforeAttempt) await this.beforeAttempt();
        if (request.signal?.aborted) throw abortError();
        const answer = await this.attempt(target, request);
        strategy.recordSuccess(token);
        return answer;
      } catch (raw) {
        const error = raw as ErrorLike & { $metadata?: Record<string, unknown>; $response?: { statusCode?: number; headers?: Record<string, string> } };
        const status = error.$metadata?.httpStatusCode as number | undefined;
        if (status === 301 || status === 307 || error.name === 'PermanentRedirect' || error.name === 'AuthorizationHeaderMalformed') {
          // A region redirect: the SDK path follows it (and remembers the region); hand the bucket over,
          // and this request too when its body can still be sent again.
          this.handedOver.add(request.bucket);
          if (!streamed) throw new LeanHandover(`${error.name} (HTTP ${status}) from the endpoint`);
        }
        if (error.name === 'AbortError' || streamed) {
          setAttempts(error, attempts, totalRetryDelay);
          throw error;
        }
        this.correctClockSkew(error);
        try {
          token = await strategy.refreshRetryTokenForRetry(token, {
            error,
            errorType: retryErrorType(error),
            retryAfterHint: retryAfterHint(error as never),
          });
        } catch {
          setAttempts(error, attempts, totalRetryDelay);
          throw error;
        }
        const delay = token.getRetryDelay();
        totalRetryDelay += delay;
        if (delay > 0) await sleep(delay, request.signal);
      }
    }
  }

  /** The SDK's clock-skew correction: a skew error's Date header moves the client's offset. */
  private correctClockSkew(error: ErrorLike & { $response?: { headers?: Record<string, string> } }): void {
    if (!CLOCK_SKEW.has(error.name ?? '')) return;
    const date = error.$response?.headers?.date;
    if (!date) return;
    const serverTime = Date.parse(date);
    if (!Number.isFinite(serverTime)) return;
    const config = this.client.config as unknown as { systemClockOffset?: number };
    const offset = serverTime - Date.now();
    if (Math.abs(Date.now() + (config.systemClockOffset ?? 0) - serverTime) >= 300_000) {
      config.systemClockOffset = offset;
      error.$metadata = { ...error.$metadata, clockSkewCorrected: true };
    }
  }

  private async attempt(target: Target, request: LeanRequest): Promise<LeanAnswer> {
    // Key '' (never an object's: S3 keys are not empty) is the bucket itself, for a listing: `/bucket/`
    // (path style) or `/` (virtual host), as the SDK sends ListObjectsV2.
    const path = target.base + encodeKey(request.key);
    const headers: Record<string, string> = { host: target.host, ...target.userAgent, ...request.headers };
    if (request.unsignedPayload) headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
    // As the SDK (its add-expect-continue middleware, 2 MiB): with our own agents it, too, sends the body
    // right away rather than waiting for the 100; node:http then flushes the headers on their own.
    if (Number(request.headers['content-length']) >= EXPECT_CONTINUE_BYTES) headers.expect = '100-continue';
    else if (request.body === undefined) headers['x-amz-content-sha256'] = EMPTY_SHA256;
    const offset = (this.client.config as unknown as { systemClockOffset?: number }).systemClockOffset ?? 0;
    const credentials = await target.credentials();
    target.signer.sign(
      { method: request.method, path, query: request.query, headers, body: request.unsignedPayload ? undefined : request.body },
      credentials,
      Date.now() + offset,
    );
    // A PUT without a body (CopyObject) says so, unsigned, as node:http adds it after the SDK signed.
    if (request.body === undefined && request.method === 'PUT') headers['content-length'] = '0';
    const pathAndQuery = path + queryString(request.query);
    if (this.http1) return this.exchangeHttp1(this.http1, target, request, pathAndQuery, headers);
    if (this.undici) return this.exchangeUndici(await this.undici, target, request, pathAndQuery, headers);
    return this.exchange(target, request.method, request.body, request.signal, pathAndQuery, headers, request.readWhole === true);
  }

  private async exchangeHttp1(
    client: Http1Client,
    target: Target,
    request: LeanRequest,
    pathAndQuery: string,
    headers: Record<string, string>,
  ): Promise<LeanAnswer> {
    const stream = request.method === 'GET' && !request.readWhole;
    const answer = await client.request({
      protocol: target.protocol,
      hostname: target.hostname,
      port: target.port,
      method: request.method,
      path: pathAndQuery,
      headers,
      body: request.body,
      signal: request.signal,
      // Only a 2xx GET's body is handed on as a stream; an error's (and a write's answer) is read whole.
      streamBody: (status) => stream && status >= 200 && status < 300,
      maxCollectBytes: request.readWhole ? READ_WHOLE_LIMIT : undefined,
    });
    const { statusCode } = answer;
    if (answer.body) return { statusCode, headers: answer.headers, body: answer.body };
    const bytes = answer.bytes!;
    const ok = statusCode >= 200 && statusCode < 300;
    // As the SDK's throw-200-exceptions middleware: a 2xx whose body ends in </Error> is a 503.
    const text = bytes.length === 0 ? '' : bytes.toString('utf8', 0, request.readWhole ? bytes.length : Math.min(bytes.length, 1 << 20));
    if (ok && !text.slice(-16).endsWith('</Error>')) return { statusCode, headers: answer.headers, text: request.readWhole ? text : undefined };
    throw serviceError(ok ? 503 : statusCode, answer.headers, text);
  }

  private async exchangeUndici(
    agent: UndiciAgent,
    target: Target,
    request: LeanRequest,
    pathAndQuery: string,
    headers: Record<string, string>,
  ): Promise<LeanAnswer> {
    // undici refuses an Expect header (it is not signed: SigV4 leaves it out), and sends the body at once.
    const { expect: _expect, ...undiciHeaders } = headers;
    let answer;
    try {
      answer = await agent.request({
        origin: `${target.protocol}//${target.hostname}${target.port ? `:${target.port}` : ''}`,
        path: pathAndQuery,
        method: request.method,
        headers: undiciHeaders,
        body: request.body,
        signal: request.signal,
      });
    } catch (raw) {
      throw undiciError(raw as Error & { code?: string });
    }
    const { statusCode } = answer;
    const ok = statusCode >= 200 && statusCode < 300;
    if (ok && request.method === 'GET' && !request.readWhole) return { statusCode, headers: answer.headers as http.IncomingHttpHeaders, body: answer.body as http.IncomingMessage };
    const text = await readAll(answer.body, ok && request.readWhole ? READ_WHOLE_LIMIT : undefined);
    if (ok && !text.slice(-16).endsWith('</Error>')) return { statusCode, headers: answer.headers as http.IncomingHttpHeaders, text: request.readWhole ? text : undefined };
    throw serviceError(ok ? 503 : statusCode, answer.headers as http.IncomingHttpHeaders, text);
  }

  /**
   * One HTTP exchange over node:http. The body is dropped from this function's closures once it is
   * handed to the socket: the request's listeners outlive the call (a keep-alive socket keeps the last
   * ClientRequest reachable), and must not keep a 64 MiB body alive with them.
   */
  private exchange(
    target: Target,
    method: 'GET' | 'PUT',
    bodyToSend: Buffer | Readable | undefined,
    signal: AbortSignal | undefined,
    pathAndQuery: string,
    headers: Record<string, string>,
    readWhole = false,
  ): Promise<LeanAnswer> {
    const { connectionTimeoutMs, socketTimeoutMs } = this.options;
    return new Promise<LeanAnswer>((resolve, reject) => {
      let body = bodyToSend;
      bodyToSend = undefined;
      if (signal?.aborted) return reject(abortError());
      const req = (target.protocol === 'https:' ? https : http).request({
        agent: target.protocol === 'https:' ? this.httpsAgent : this.httpAgent,
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port,
        method,
        path: pathAndQuery,
        headers,
      });
      let settled = false;
      const fail = (error: Error): void => {
        if (!settled) {
          settled = true;
          reject(error);
        }
      };
      const onAbort = (): void => {
        const error = abortError();
        req.destroy(error);
        fail(error);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      req.once('close', () => signal?.removeEventListener('abort', onAbort));
      req.on('error', fail);
      req.once('socket', (socket) => {
        if (!socket.connecting) return;
        const timer = setTimeout(() => {
          const error = timeoutError(`Socket timed out without establishing a connection within ${connectionTimeoutMs} ms`);
          req.destroy(error);
          fail(error);
        }, connectionTimeoutMs);
        socket.once('connect', () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      });
      req.setTimeout(socketTimeoutMs, () => {
        const error = timeoutError(`Connection timed out after ${socketTimeoutMs} ms`);
        req.destroy(error);
        fail(error);
      });
      req.once('response', (res) => {
        const statusCode = res.statusCode ?? 0;
        const ok = statusCode >= 200 && statusCode < 300;
        if (ok && method === 'GET' && !readWhole) {
          settled = true;
          resolve({ statusCode, headers: res.headers, body: res });
          return;
        }
        // A write's answer is read whole: an error's code, or S3's "200 with an <Error> inside".
        readAll(res, ok && readWhole ? READ_WHOLE_LIMIT : undefined).then(
          (text) => {
            // As the SDK's throw-200-exceptions middleware: a 2xx whose body ends in </Error> is a 503.
            if (ok && !text.slice(-16).endsWith('</Error>')) {
              settled = true;
              resolve({ statusCode, headers: res.headers, text: readWhole ? text : undefined });
            } else fail(serviceError(ok ? 503 : statusCode, res.headers, text));
          },
          (error: Error) => fail(error),
        );
      });
      if (body === undefined) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else {
        body.once('error', (error) => {
          req.destroy(error);
          fail(error);
        });
        body.pipe(req);
      }
      body = undefined;
    });
  }
}

function setAttempts(error: ErrorLike & { $metadata?: Record<string, unknown> }, attempts: number, totalRetryDelay: number): void {
  if (error && typeof error === 'object') {
    error.$metadata = { ...(error.$metadata ?? {}), attempts, totalRetryDelay };
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError());
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Lets the SDK resolve a bucket's endpoint: a GetObject for a probe key goes through the client's whole
 * middleware stack (endpoint rules, path or virtual-host style, host header, user agent) and is stopped
 * before it is signed or sent. The request it built gives the URL base for every key of the bucket.
 */
export async function resolveTarget(client: S3Client, bucket: string): Promise<Target> {
  const command = new GetObjectCommand({ Bucket: bucket, Key: PROBE_KEY });
  let captured: { request: SignableRequest; context: Record<string, unknown> } | undefined;
  command.middlewareStack.add(
    (_next, context) => async (args) => {
      captured = { request: args.request as SignableRequest, context: context as Record<string, unknown> };
      throw Object.assign(new Error('captured'), { [CAPTURED]: true, $retryable: undefined });
    },
    { step: 'finalizeRequest', priority: 'high', name: 's3migrateLeanProbe', override: true },
  );
  try {
    await client.send(command);
  } catch (error) {
    if (!(error as Record<symbol, unknown>)[CAPTURED]) throw error;
  }
  if (!captured) throw new LeanHandover('the SDK built no request to learn the endpoint from');
  const { request, context } = captured;
  const encodedProbe = encodeKey(PROBE_KEY);
  if (!request.path.endsWith(encodedProbe)) throw new LeanHandover(`unexpected request path ${request.path}`);
  const schemes = (context.authSchemes as Array<{ name?: string; signingName?: string; signingRegion?: string }> | undefined) ?? [];
  const scheme = schemes[0];
  if (scheme && scheme.name !== 'sigv4') throw new LeanHandover(`signing scheme ${scheme.name}`);
  const config = client.config as unknown as {
    credentials: () => Promise<SigningCredentials>;
    region: () => Promise<string>;
    requestChecksumCalculation: () => Promise<string>;
    responseChecksumValidation: () => Promise<string>;
  };
  if ((await config.requestChecksumCalculation()) !== 'WHEN_REQUIRED' || (await config.responseChecksumValidation()) !== 'WHEN_REQUIRED') {
    throw new LeanHandover('the when-supported checksum mode (the SDK adds and checks CRC32 checksums)');
  }
  const signingRegion = scheme?.signingRegion ?? ((context.signing_region as string | undefined) ?? (await config.region()));
  const signingService = scheme?.signingName ?? ((context.signing_service as string | undefined) ?? 's3');
  if (typeof config.credentials !== 'function') throw new LeanHandover('the client has no credential provider');
  const headers = request.headers;
  const userAgent: Record<string, string> = {};
  for (const name of ['user-agent', 'x-amz-user-agent']) if (headers[name]) userAgent[name] = headers[name]!;
  const protocol = request.protocol === 'https:' || request.protocol === 'https' ? 'https:' : 'http:';
  return {
    protocol,
    hostname: request.hostname,
    port: request.port,
    base: request.path.slice(0, request.path.length - encodedProbe.length),
    host: headers.host ?? (request.port ? `${request.hostname}:${request.port}` : request.hostname),
    userAgent,
    credentials: () => config.credentials(),
    signer: new SigV4Signer(signingRegion, signingService),
  };
}

const leanPaths = new WeakMap<S3Client, LeanPath>();

/** Gives `client` a lean path for GetObject, PutObject and UploadPart (S3Bucket uses it). */
export function attachLeanPath(client: S3Client, options: LeanOptions): LeanPath {
  const lean = new LeanPath(client, options);
  leanPaths.set(client, lean);
  return lean;
}

export function leanPathOf(client: S3Client): LeanPath | undefined {
  return leanPaths.get(client);
}
