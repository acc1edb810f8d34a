import type { IncomingHttpHeaders } from 'node:http';
import net from 'node:net';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import { readSlabs } from './read-slabs.js';

/**
 * The lean path's own HTTP/1.1 client: keep-alive connections per origin, one request at a time on each,
 * and nothing else. It does what node:http's ClientRequest, IncomingMessage and Agent do for the lean
 * path's requests at a fraction of their CPU per request (W1: 0.22 -> 0.10 ms per GET + PUT pair in a
 * bare loop): no per-request socket re-arming, no header objects built twice, no ClientRequest.
 *
 * What it handles: request bodies as one Buffer or a stream of known length (Content-Length, checked);
 * answers framed by Content-Length, chunked transfer-encoding or the end of the connection; interim 1xx
 * answers (`Expect: 100-continue` is sent with the body right away, as the lean path does on node:http);
 * `Connection: close`; HTTPS through node:tls (sessions reused). Errors have node:http's shapes: a
 * connection closed or reset before the answer is `socket hang up` (ECONNRESET), one cut inside a body
 * `aborted` (ECONNRESET), timeouts `TimeoutError`, an abort signal `AbortError`; invalid header
 * characters are refused before anything is sent (ERR_INVALID_CHAR), as node:http refuses them.
 */

export interface Http1Options {
  /** Connections per origin at most; requests beyond wait for a free one. */
  maxSockets: number;
  connectionTimeoutMs: number;
  /** A connection idle this long (no byte either way) while a request is on it fails the request. */
  socketTimeoutMs: number;
  /** Host name lookup (tests send virtual-host names to 127.0.0.1). */
  lookup?: net.LookupFunction;
  /** More TLS options for HTTPS connections (a CA, a server name). */
  tls?: tls.ConnectionOptions;
}

export interface Http1Request {
  protocol: 'http:' | 'https:';
  hostname: string;
  port?: number;
  method: string;
  /** Path and query string, encoded. */
  path: string;
  /** Lower-case names; the Host header among them. */
  headers: Record<string, string>;
  /** A body needs a content-length header; a stream must deliver exactly that many bytes. */
  body?: Buffer | Readable;
  signal?: AbortSignal;
  /**
   * Whether an answer with this status hands its body over as a stream (resolving at the answer's head);
   * otherwise the body is read whole first and resolves as `bytes`.
   */
  streamBody: (statusCode: number) => boolean;
  /** An answer read whole and bigger than this fails (without it: its first 1 MiB is kept, an error's). */
  maxCollectBytes?: number;
}

export interface Http1Answer {
  statusCode: number;
  headers: IncomingHttpHeaders;
  /** The body as a stream (when `streamBody` said so). */
  body?: Readable;
  /** The whole body (otherwise). */
  bytes?: Buffer;
}

const MAX_HEAD_BYTES = 64 * 1024;
const MAX_COLLECTED_BYTES = 1024 * 1024;
// node:http's rules: a token for names, and no control characters but tab (nor anything above 0xff) in values.
const TOKEN = /^[\^_`a-zA-Z\-0-9!#$%&'*+.|~]+$/;
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
// Headers of which node:http keeps the first of several; others are joined with ", " (set-cookie: a list).
const SINGLE = new Set([
  'age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since',
  'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after',
  'server', 'user-agent',
]);

function isBlank(code: number): boolean {
  return code === 32 || code === 9;
}
function isDigits(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i += 1) {
    const code = text.charCodeAt(i);
    if (code < 48 || code > 57) return false;
  }
  return true;
}

function hangUp(): Error {
  return Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
}
function cutBody(): Error {
  return Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
}
function abortError(): Error {
  return Object.assign(new Error('The operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR' });
}
function timeoutError(message: string): Error {
  return Object.assign(new Error(message), { name: 'TimeoutError' });
}
function parseError(message: string): Error {
  return Object.assign(new Error(`Parse Error: ${message}`), { code: 'HPE_INVALID_RESPONSE' });
}

/** The request head, validated as node:http validates headers. */
function requestHead(request: Http1Request): string {
  let head = `${request.method} ${request.path} HTTP/1.1\r\n`;
  for (const name in request.headers) {
    const value = request.headers[name]!;
    if (!TOKEN.test(name)) {
      throw Object.assign(new TypeError(`Header name must be a valid HTTP token ["${name}"]`), { code: 'ERR_INVALID_HTTP_TOKEN' });
    }
    if (INVALID_VALUE.test(value)) {
      throw Object.assign(new TypeError(`Invalid character in header content ["${name}"]`), { code: 'ERR_INVALID_CHAR' });
    }
    head += `${name}: ${value}\r\n`;
  }
  return `${head}\r\n`;
}

/** A response body handed over as a stream: backpressure pauses the connection. */
class AnswerBody extends Readable {
  constructor(private readonly exchange: Exchange) {
    super();
  }
  override _read(): void {
    const { connection } = this.exchange;
    if (connection.exchange === this.exchange) connection.socket.resume();
  }
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.exchange.bodyDestroyed();
    // As node:http's IncomingMessage: a body failed before anyone listens (aborted while it waits for its
    // reader, e.g. a part queued behind others) ends destroyed, and does not throw from an unhandled
    // 'error' event; a reader attaching later still gets the error (the stream keeps it), never a clean end.
    callback(error !== null && this.listenerCount('error') > 0 ? error : null);
  }
}

type Framing = { kind: 'none' } | { kind: 'length'; left: number } | { kind: 'chunked' } | { kind: 'close' };

/** One request and its answer on one connection. */
class Exchange {
  statusCode = 0;
  headers: IncomingHttpHeaders = {};
  framing: Framing = { kind: 'none' };
  body: AnswerBody | undefined;
  collected: Buffer[] | undefined;
  collectedBytes = 0;
  /** The answer's head has been parsed (the promise may have resolved). */
  headDone = false;
  answerDone = false;
  requestDone = false;
  keepAlive = true;
  settled = false;
  private abortListener: (() => void) | undefined;

  constructor(
    readonly connection: Connection,
    readonly request: Http1Request,
    private readonly resolve: (answer: Http1Answer) => void,
    private readonly reject: (error: Error) => void,
  ) {
    const signal = request.signal;
    if (signal) {
      this.abortListener = () => this.fail(abortError());
      signal.addEventListener('abort', this.abortListener, { once: true });
    }
  }

  /** The exchange failed: before the answer's head, the promise rejects; inside a body, the body errors. */
  fail(error: Error): void {
    this.detach();
    if (!this.settled) {
      this.settled = true;
      this.reject(error);
    } else if (this.body && !this.answerDone) {
      this.body.destroy(error);
    }
    this.connection.destroy();
  }

  /** The consumer destroyed the body before its end: the connection cannot carry another request. */
  bodyDestroyed(): void {
    if (!this.answerDone) {
      this.detach();
      this.connection.destroy();
    }
  }

  headParsed(): void {
    this.headDone = true;
    if (this.request.streamBody(this.statusCode)) {
      this.body = new AnswerBody(this);
      this.settled = true;
      this.resolve({ statusCode: this.statusCode, headers: this.headers, body: this.body });
    } else {
      this.collected = [];
    }
  }

  data(chunk: Buffer): void {
    if (this.body) {
      if (!this.body.push(chunk)) this.connection.socket.pause();
    } else {
      this.collectedBytes += chunk.length;
      const limit = this.request.maxCollectBytes;
      if (limit === undefined) {
        // An error's (or a write's) answer: the first 1 MiB is kept, the rest read and dropped.
        if (this.collectedBytes - chunk.length < MAX_COLLECTED_BYTES) this.collected!.push(chunk);
      } else if (this.collectedBytes > limit) {
        // A body asked for whole (a listing) is refused beyond its limit, never cut short.
        throw Object.assign(new Error(`answer body larger than ${limit} bytes`), { code: 'ERR_ANSWER_TOO_LARGE' });
      } else this.collected!.push(chunk);
    }
  }

  answerEnded(): void {
    this.answerDone = true;
    if (this.body) {
      this.body.push(null);
    } else if (!this.settled) {
      this.settled = true;
      const chunks = this.collected!;
      this.collected = undefined;
      this.resolve({ statusCode: this.statusCode, headers: this.headers, bytes: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) });
    }
    this.maybeDone();
  }

  requestEnded(): void {
    this.requestDone = true;
    this.maybeDone();
  }

  /** Both directions are through: the connection goes back to the pool (or closes). */
  private maybeDone(): void {
    if (!this.answerDone) return;
    if (!this.requestDone) {
      // The server answered before it had the whole request body: this connection is done for.
      this.detach();
      this.connection.destroy();
      return;
    }
    this.detach();
    this.connection.exchangeDone(this.keepAlive);
  }

  private detach(): void {
    if (this.abortListener) {
      this.request.signal!.removeEventListener('abort', this.abortListener);
      this.abortListener = undefined;
    }
  }
}

/** One keep-alive connection to an origin. */
class Connection {
  exchange: Exchange | undefined;
  destroyed = false;
  /** Bytes received and not parsed yet (a head split across reads, a chunk-size line). */
  private pending: Buffer | undefined;
  private chunkLeft = 0;
  private chunkState: 'size' | 'data' | 'data-end' | 'trailers' = 'size';
  private parsing = false;
  private doneKeepAlive: boolean | undefined;
  /** Stops a request body being piped in (the connection was destroyed under it). */
  private stopBody: (() => void) | undefined;

  constructor(
    private readonly pool: OriginPool,
    readonly socket: net.Socket,
  ) {
    // Plain-TCP connections read through `onread` (see OriginPool.connect); TLS ones emit 'data'.
    if (socket instanceof tls.TLSSocket) socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error: Error) => this.onClose(error));
    socket.on('end', () => this.onEnd());
    socket.on('close', () => this.onClose(undefined));
    socket.on('timeout', () => {
      if (this.exchange) this.exchange.fail(timeoutError(`Connection timed out after ${this.pool.options.socketTimeoutMs} ms`));
      else this.destroy();
    });
  }

  /** Sends one request on this (idle) connection. */
  start(exchange: Exchange, head: string): void {
    if (this.destroyed) {
      exchange.fail(hangUp());
      return;
    }
    this.exchange = exchange;
    const { socket } = this;
    socket.resume(); // the last answer's body may have left it paused
    const body = exchange.request.body;
    if (body === undefined) {
      socket.write(head, 'latin1');
      exchange.requestEnded();
    } else if (Buffer.isBuffer(body)) {
      socket.cork();
      socket.write(head, 'latin1');
      socket.write(body);
      socket.uncork();
      exchange.requestEnded();
    } else {
      socket.write(head, 'latin1');
      this.pipeBody(exchange, body, Number(exchange.request.headers['content-length']));
    }
  }

  private pipeBody(exchange: Exchange, body: Readable, length: number): void {
    const { socket } = this;
    let sent = 0;
    const cleanup = (): void => {
      this.stopBody = undefined;
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onBodyClose);
      socket.off('drain', onDrain);
    };
    const onData = (chunk: Buffer): void => {
      sent += chunk.length;
      if (sent > length) {
        cleanup();
        exchange.fail(Object.assign(new Error(`Request body larger than its content-length ${length}`), { code: 'ERR_HTTP_CONTENT_LENGTH_MISMATCH' }));
        return;
      }
      // A slab's view goes back once this write is through (read-slabs.ts): nobody else holds it.
      const written = readSlabs.owns(chunk) ? (error?: Error | null) => error || readSlabs.recycle(chunk) : undefined;
      if (!socket.write(chunk, written)) body.pause();
    };
    const onDrain = (): void => {
      body.resume();
    };
    const onEnd = (): void => {
      cleanup();
      if (sent !== length) {
        exchange.fail(Object.assign(new Error(`Request body of ${sent} bytes, its content-length is ${length}`), { code: 'ERR_HTTP_CONTENT_LENGTH_MISMATCH' }));
      } else exchange.requestEnded();
    };
    const onError = (error: Error): void => {
      cleanup();
      exchange.fail(error);
    };
    const onBodyClose = (): void => {
      cleanup();
      exchange.fail(Object.assign(new Error('Request body closed before its end'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    };
    this.stopBody = cleanup;
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
    body.once('close', onBodyClose);
    socket.on('drain', onDrain);
  }

  exchangeDone(keepAlive: boolean): void {
    this.exchange = undefined;
    // Inside onData, the connection goes back only once the rest of that read is known to be empty.
    if (this.parsing) this.doneKeepAlive = keepAlive;
    else this.finishExchange(keepAlive);
  }

  private finishExchange(keepAlive: boolean): void {
    if (!keepAlive || this.pending !== undefined || this.destroyed) this.destroy();
    else this.pool.release(this);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.exchange = undefined;
    this.stopBody?.();
    this.socket.destroy();
    this.pool.forget(this);
  }

  private onEnd(): void {
    const exchange = this.exchange;
    // A body framed by the end of the connection ends here.
    if (exchange && exchange.headDone && !exchange.answerDone && exchange.framing.kind === 'close') {
      exchange.answerEnded();
      return;
    }
    this.onClose(undefined);
  }

  private onClose(error: Error | undefined): void {
    const exchange = this.exchange;
    this.exchange = undefined;
    if (exchange && !exchange.answerDone) {
      if (!exchange.headDone) exchange.fail(error && (error as { code?: string }).code !== undefined ? error : hangUp());
      else exchange.fail(cutBody());
    }
    this.destroy();
  }

  /**
   * A plain-TCP read of `length` bytes into the shared read buffer, which the next read overwrites: its
   * bytes are copied out here. The bytes of a streamed body framed by its length go into a slab that comes
   * back once written on; everything else (heads, small answers read whole) into a buffer of its own.
   */
  onRead(length: number): void {
    const exchange = this.exchange;
    const slab = exchange?.body !== undefined && exchange.framing.kind === 'length' && this.pending === undefined;
    this.onData(slab ? readSlabs.take(length) : Buffer.from(readSlabs.readBuffer.subarray(0, length)));
  }

  private onData(chunk: Buffer): void {
    const exchange = this.exchange;
    if (!exchange) {
      // Bytes nobody asked for (an idle connection): it cannot be trusted with the next request.
      this.destroy();
      return;
    }
    let data = chunk;
    if (this.pending) {
      data = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    this.parsing = true;
    try {
      while (data.length > 0 && this.exchange === exchange && !exchange.answerDone) {
        if (!exchange.headDone) {
          const end = data.indexOf('\r\n\r\n', 0, 'latin1');
          if (end < 0) {
            if (data.length > MAX_HEAD_BYTES) throw parseError('answer head too large');
            this.pending = data;
            data = data.subarray(data.length);
            break;
          }
          const interim = this.parseHead(exchange, data.toString('latin1', 0, end));
          data = data.subarray(end + 4);
          if (interim) continue;
          exchange.headParsed();
          if (exchange.framing.kind === 'none' || (exchange.framing.kind === 'length' && exchange.framing.left === 0)) {
            exchange.answerEnded();
            break;
          }
          continue;
        }
        data = this.bodyBytes(exchange, data);
      }
    } catch (error) {
      this.parsing = false;
      this.doneKeepAlive = undefined;
      exchange.fail(error as Error);
      return;
    }
    this.parsing = false;
    const done = this.doneKeepAlive;
    this.doneKeepAlive = undefined;
    if (done !== undefined) {
      // Bytes after a complete answer: not expected with one request at a time; the connection is not reused.
      this.finishExchange(done && data.length === 0);
    } else if (data.length > 0 && !this.destroyed) {
      this.destroy();
    }
  }

  /** Parses an answer's head; returns true for an interim (1xx) answer, which is skipped. */
  private parseHead(exchange: Exchange, head: string): boolean {
    // A hand-rolled scan (no split, no regular expression per line): this runs twice per object.
    let eol = head.indexOf('\r\n');
    if (eol < 0) eol = head.length;
    const code = head.charCodeAt(9) - 48;
    if (
      !head.startsWith('HTTP/1.') ||
      (head[7] !== '0' && head[7] !== '1') ||
      head[8] !== ' ' ||
      eol < 12 ||
      (eol > 12 && head[12] !== ' ') ||
      !isDigits(head, 9, 12) ||
      code < 1
    ) {
      throw parseError(`bad status line ${JSON.stringify(head.slice(0, Math.min(eol, 60)))}`);
    }
    const statusCode = Number(head.slice(9, 12));
    if (statusCode < 200) return true;
    const headers: IncomingHttpHeaders = {};
    let at = eol + 2;
    while (at < head.length) {
      let end = head.indexOf('\r\n', at);
      if (end < 0) end = head.length;
      const colon = head.indexOf(':', at);
      if (colon <= at || colon > end) throw parseError('bad header line');
      const name = head.slice(at, colon).toLowerCase();
      let from = colon + 1;
      let to = end;
      while (from < to && isBlank(head.charCodeAt(from))) from += 1;
      while (to > from && isBlank(head.charCodeAt(to - 1))) to -= 1;
      const value = head.slice(from, to);
      const seen = headers[name];
      if (seen === undefined) headers[name] = name === 'set-cookie' ? [value] : value;
      else if (name === 'set-cookie') (seen as string[]).push(value);
      else if (!SINGLE.has(name)) headers[name] = `${seen as string}, ${value}`;
      at = end + 2;
    }
    exchange.statusCode = statusCode;
    exchange.headers = headers;
    const connection = (headers.connection as string | undefined)?.toLowerCase() ?? '';
    exchange.keepAlive = head[7] === '1' ? !connection.includes('close') : connection.includes('keep-alive');
    const encoding = headers['transfer-encoding'] as string | undefined;
    const length = headers['content-length'] as string | undefined;
    if (exchange.request.method === 'HEAD' || statusCode === 204 || statusCode === 304) exchange.framing = { kind: 'none' };
    else if (encoding !== undefined && /(?:^|,)\s*chunked\s*$/i.test(encoding)) {
      exchange.framing = { kind: 'chunked' };
      this.chunkState = 'size';
    } else if (length !== undefined) {
      if (!/^\d+$/.test(length)) throw parseError(`bad content-length ${JSON.stringify(length)}`);
      exchange.framing = { kind: 'length', left: Number(length) };
    } else {
      exchange.framing = { kind: 'close' };
      exchange.keepAlive = false;
    }
    return false;
  }

  /** Hands body bytes to the exchange; returns what is left over (the rest of a short line stays pending). */
  private bodyBytes(exchange: Exchange, data: Buffer): Buffer {
    const framing = exchange.framing;
    if (framing.kind === 'close') {
      exchange.data(data);
      return data.subarray(data.length);
    }
    if (framing.kind === 'length') {
      const take = Math.min(framing.left, data.length);
      exchange.data(take === data.length ? data : data.subarray(0, take));
      framing.left -= take;
      if (framing.left === 0) exchange.answerEnded();
      return data.subarray(take);
    }
    // Chunked: size line, data, CRLF, ..., a 0 size, trailers up to an empty line.
    switch (this.chunkState) {
      case 'size':
      case 'trailers': {
        const eol = data.indexOf('\r\n', 0, 'latin1');
        if (eol < 0) {
          if (data.length > MAX_HEAD_BYTES) throw parseError('chunk line too long');
          this.pending = data;
          return data.subarray(data.length);
        }
        const line = data.toString('latin1', 0, eol);
        if (this.chunkState === 'trailers') {
          if (line === '') exchange.answerEnded();
        } else {
          const size = /^([0-9a-fA-F]+)\s*(?:;.*)?$/.exec(line);
          if (!size) throw parseError('bad chunk size');
          this.chunkLeft = parseInt(size[1]!, 16);
          this.chunkState = this.chunkLeft === 0 ? 'trailers' : 'data';
        }
        return data.subarray(eol + 2);
      }
      case 'data': {
        const take = Math.min(this.chunkLeft, data.length);
        exchange.data(take === data.length ? data : data.subarray(0, take));
        this.chunkLeft -= take;
        if (this.chunkLeft === 0) this.chunkState = 'data-end';
        return data.subarray(take);
      }
      case 'data-end': {
        if (data.length < 2) {
          this.pending = data;
          return data.subarray(data.length);
        }
        if (data[0] !== 13 || data[1] !== 10) throw parseError('bad chunk end');
        this.chunkState = 'size';
        return data.subarray(2);
      }
    }
  }
}

/** The connections to one origin, and the requests waiting for one. */
class OriginPool {
  private readonly idle: Connection[] = [];
  private readonly waiting: Array<{ grant: (connection: Connection | undefined) => void }> = [];
  private count = 0;
  private session: Buffer | undefined;

  constructor(
    readonly options: Http1Options,
    private readonly protocol: 'http:' | 'https:',
    private readonly hostname: string,
    private readonly port: number,
  ) {}

  /** An idle connection, or undefined when the caller may open a new one (its place is taken); null at maxSockets. */
  acquire(): Connection | undefined | null {
    while (this.idle.length > 0) {
      const connection = this.idle.pop()!;
      if (!connection.destroyed) {
        connection.socket.ref();
        return connection;
      }
    }
    if (this.count < this.options.maxSockets) {
      this.count += 1;
      return undefined;
    }
    return null;
  }

  /** Waits for the next connection released (or the place of one that closed); an abort leaves the queue. */
  wait(signal: AbortSignal | undefined): Promise<Connection | undefined> {
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        const at = this.waiting.indexOf(waiter);
        if (at >= 0) this.waiting.splice(at, 1);
        reject(abortError());
      };
      const waiter = {
        grant: (connection: Connection | undefined): void => {
          signal?.removeEventListener('abort', onAbort);
          if (connection) connection.socket.ref();
          resolve(connection);
        },
      };
      this.waiting.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Gives back a place taken by acquire() or wait() that was not used for a connection. */
  givePlaceBack(): void {
    this.count -= 1;
    this.grantNext();
  }

  /** Opens a new connection (its place was taken by acquire()); resolves once it is connected. */
  connect(signal: AbortSignal | undefined): Promise<Connection> {
    return new Promise<Connection>((resolve, reject) => {
      const { connectionTimeoutMs, lookup } = this.options;
      const tlsOptions = this.options.tls ?? {};
      const secure = this.protocol === 'https:';
      const socket = secure
        ? tls.connect({
            host: this.hostname,
            port: this.port,
            servername: net.isIP(this.hostname) ? undefined : this.hostname,
            session: this.session,
            ...(lookup ? { lookup } : {}),
            ...tlsOptions,
          })
        : net.connect({
            host: this.hostname,
            port: this.port,
            ...(lookup ? { lookup } : {}),
            // Reads land in the process's one read buffer (read-slabs.ts), not in a new buffer each.
            onread: { buffer: readSlabs.readBuffer, callback: (length: number) => {
                if (connection) connection.onRead(length);
                else socket.destroy(); // nothing is sent before the connection is made
                return true;
              },
            },
          });
      let connection: Connection | undefined;
      let done = false;
      const finish = (error: Error | undefined): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.off('error', finish);
        socket.off('close', onClose);
        signal?.removeEventListener('abort', onAbort);
        if (error) {
          socket.destroy();
          this.givePlaceBack();
          reject(error);
          return;
        }
        socket.setNoDelay(true);
        socket.setKeepAlive(true, 1000);
        socket.setTimeout(this.options.socketTimeoutMs);
        connection = new Connection(this, socket);
        resolve(connection);
      };
      const onClose = (): void => finish(hangUp());
      const onAbort = (): void => finish(abortError());
      const timer = setTimeout(
        () => finish(timeoutError(`Socket timed out without establishing a connection within ${connectionTimeoutMs} ms`)),
        connectionTimeoutMs,
      );
      socket.once(secure ? 'secureConnect' : 'connect', () => finish(undefined));
      socket.once('error', finish);
      socket.once('close', onClose);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (secure) socket.on('session', (session: Buffer) => (this.session = session));
    });
  }

  /** A connection is free again: to the next waiting request, or idle. */
  release(connection: Connection): void {
    const waiter = this.waiting.shift();
    if (waiter) {
      waiter.grant(connection);
      return;
    }
    // Idle connections do not keep the process alive.
    connection.socket.unref();
    this.idle.push(connection);
  }

  /** A connection is gone: its place goes to the next waiting request. */
  forget(connection: Connection): void {
    const at = this.idle.indexOf(connection);
    if (at >= 0) this.idle.splice(at, 1);
    this.givePlaceBack();
  }

  private grantNext(): void {
    if (this.count >= this.options.maxSockets) return;
    const waiter = this.waiting.shift();
    if (waiter) {
      this.count += 1;
      waiter.grant(undefined);
    }
  }
}

/** Keep-alive connection pools, one per origin. */
export class Http1Client {
  private readonly pools = new Map<string, OriginPool>();

  constructor(readonly options: Http1Options) {}

  private poolFor(request: Http1Request): OriginPool {
    const port = request.port ?? (request.protocol === 'https:' ? 443 : 80);
    const key = `${request.protocol}//${request.hostname}:${port}`;
    let pool = this.pools.get(key);
    if (!pool) {
      pool = new OriginPool(this.options, request.protocol, request.hostname, port);
      this.pools.set(key, pool);
    }
    return pool;
  }

  /** Sends one request; resolves its answer (see Http1Request.streamBody) or rejects with node:http's error shapes. */
  async request(request: Http1Request): Promise<Http1Answer> {
    const head = requestHead(request);
    if (request.body !== undefined && request.headers['content-length'] === undefined) {
      throw Object.assign(new TypeError('a request body needs a content-length header'), { code: 'ERR_HTTP_CONTENT_LENGTH_MISMATCH' });
    }
    const { signal } = request;
    if (signal?.aborted) throw abortError();
    const pool = this.poolFor(request);
    let connection = pool.acquire();
    if (connection === null) connection = await pool.wait(signal);
    if (signal?.aborted) {
      // Aborted while it waited: the connection (or the place for one) goes back unused.
      if (connection) pool.release(connection);
      else pool.givePlaceBack();
      throw abortError();
    }
    const open = connection ?? (await pool.connect(signal));
    return new Promise<Http1Answer>((resolve, reject) => {
      open.start(new Exchange(open, request, resolve, reject), head);
    });
  }
}
