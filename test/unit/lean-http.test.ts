// The lean path's HTTP/1.1 client (src/s3/lean-http.ts) against servers that answer byte by byte as
// the test says: framing (Content-Length, chunked, to the end of the connection), interim 100 answers,
// heads and chunks split across reads, keep-alive reuse and its limits, errors in node:http's shapes,
// timeouts, aborts, request bodies (buffers, streams, backpressure), header validation, and HTTPS.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Http1Client, type Http1Request } from '../../src/s3/lean-http.js';
import { readSlabs } from '../../src/s3/read-slabs.js';

const closers: Array<() => void> = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

/** A raw TCP server: `onRequest` gets each request's head (and the socket) and writes the answer itself. */
async function rawServer(onRequest: (socket: net.Socket, head: string, body: Buffer) => void): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  const server = net.createServer((socket) => {
    connections += 1;
    let buffered = Buffer.alloc(0);
    socket.on('error', () => undefined);
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffered.subarray(0, end).toString('latin1');
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (buffered.length < end + 4 + length) return;
        const body = buffered.subarray(end + 4, end + 4 + length);
        buffered = buffered.subarray(end + 4 + length);
        onRequest(socket, head, body);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => server.close());
  return { port: (server.address() as net.AddressInfo).port, connections: () => connections };
}

function client(extra: Partial<ConstructorParameters<typeof Http1Client>[0]> = {}): Http1Client {
  return new Http1Client({ maxSockets: 4, connectionTimeoutMs: 2000, socketTimeoutMs: 2000, ...extra });
}

function get(port: number, extra: Partial<Http1Request> = {}): Http1Request {
  return {
    protocol: 'http:',
    hostname: '127.0.0.1',
    port,
    method: 'GET',
    path: '/b/k',
    headers: { host: `127.0.0.1:${port}` },
    streamBody: (status) => status === 200,
    ...extra,
  };
}

async function bytesOf(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Writes `text` one small piece at a time (every head and chunk boundary split across reads). */
async function trickle(socket: net.Socket, text: string | Buffer, piece = 3): Promise<void> {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text, 'latin1');
  for (let i = 0; i < bytes.length; i += piece) {
    socket.write(bytes.subarray(i, i + piece));
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('Http1Client', () => {
  it('reads Content-Length and chunked answers, even split into 3-byte reads, and reuses one connection', async () => {
    let n = 0;
    const server = await rawServer((socket) => {
      n += 1;
      const answer =
        n % 2 === 1
          ? 'HTTP/1.1 200 OK\r\nContent-Length: 11\r\nETag: "abc"\r\nX-Amz-Meta-A: 1\r\nx-amz-meta-a: 2\r\n\r\nhello world'
          : 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n';
      void trickle(socket, answer);
    });
    const http1 = client();
    for (let i = 0; i < 4; i += 1) {
      const answer = await http1.request(get(server.port));
      expect(answer.statusCode).toBe(200);
      expect((await bytesOf(answer.body!)).toString()).toBe('hello world');
      if (i % 2 === 0) expect(answer.headers).toMatchObject({ etag: '"abc"', 'x-amz-meta-a': '1, 2' });
    }
    expect(server.connections()).toBe(1);
  });

  it('reads a write answer whole, skips an interim 100 Continue, and gives an error body as bytes', async () => {
    const server = await rawServer((socket, head, body) => {
      if (head.startsWith('PUT')) {
        socket.write('HTTP/1.1 100 Continue\r\n\r\n');
        socket.write(`HTTP/1.1 200 OK\r\nETag: "${createHash('md5').update(body).digest('hex')}"\r\nContent-Length: 0\r\n\r\n`);
      } else {
        const xml = '<Error><Code>NoSuchKey</Code></Error>';
        socket.write(`HTTP/1.1 404 Not Found\r\nContent-Length: ${xml.length}\r\n\r\n${xml}`);
      }
    });
    const http1 = client();
    const body = Buffer.from('some bytes');
    const put = await http1.request({
      ...get(server.port),
      method: 'PUT',
      headers: { host: 'h', 'content-length': String(body.length), expect: '100-continue' },
      body,
      streamBody: () => false,
    });
    expect(put.statusCode).toBe(200);
    expect(put.headers.etag).toBe(`"${createHash('md5').update(body).digest('hex')}"`);
    expect(put.bytes!.length).toBe(0);
    const missing = await http1.request(get(server.port));
    expect(missing.statusCode).toBe(404);
    expect(missing.bytes!.toString()).toContain('NoSuchKey');
  });

  it('reads a body framed by the end of the connection, and does not reuse that connection', async () => {
    const server = await rawServer((socket) => {
      socket.end('HTTP/1.1 200 OK\r\n\r\nuntil the end');
    });
    const http1 = client();
    expect((await bytesOf((await http1.request(get(server.port))).body!)).toString()).toBe('until the end');
    expect((await bytesOf((await http1.request(get(server.port))).body!)).toString()).toBe('until the end');
    expect(server.connections()).toBe(2);
  });

  it('closes after Connection: close, and after an answer that came before the whole request body', async () => {
    const server = await rawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok');
    });
    const http1 = client();
    await bytesOf((await http1.request(get(server.port))).body!);
    await bytesOf((await http1.request(get(server.port))).body!);
    expect(server.connections()).toBe(2);

    // An early answer (403 before the body): the request body stream is left alone, the connection dropped.
    const eager = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', () => socket.write('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n'));
    });
    await new Promise<void>((resolve) => eager.listen(0, '127.0.0.1', resolve));
    closers.push(() => eager.close());
    const body = new Readable({ read() {} });
    body.push(Buffer.alloc(10));
    const answer = await client().request({
      ...get((eager.address() as net.AddressInfo).port),
      method: 'PUT',
      headers: { host: 'h', 'content-length': '1000' },
      body,
      streamBody: () => false,
    });
    expect(answer.statusCode).toBe(403);
    body.destroy();
  });

  it('fails as node:http does: a reset before the answer is ECONNRESET, a cut body is "aborted"', async () => {
    const resets = await rawServer((socket) => socket.destroy());
    const error = await client().request(get(resets.port)).catch((e: Error & { code?: string }) => e);
    expect(error).toMatchObject({ code: 'ECONNRESET' });

    const cuts = await rawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b');
      setTimeout(() => socket.destroy(), 20);
    });
    const answer = await client().request(get(cuts.port));
    const cut = await bytesOf(answer.body!).catch((e: Error & { code?: string }) => e);
    expect(cut).toMatchObject({ message: 'aborted', code: 'ECONNRESET' });

    const refused = await client().request(get(1)).catch((e: Error & { code?: string }) => e);
    expect(refused).toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('times out a silent server (TimeoutError), and an abort signal cancels at once, waiting or in flight', async () => {
    const silent = await rawServer(() => undefined);
    const slow = client({ socketTimeoutMs: 200, maxSockets: 1 });
    const started = Date.now();
    const timedOut = await slow.request(get(silent.port)).catch((e: Error) => e);
    expect(timedOut).toMatchObject({ name: 'TimeoutError' });
    expect(Date.now() - started).toBeLessThan(2000);

    const http1 = client({ maxSockets: 1 });
    const first = new AbortController();
    const second = new AbortController();
    const inFlight = http1.request(get(silent.port, { signal: first.signal })).catch((e: Error) => e);
    const waiting = http1.request(get(silent.port, { signal: second.signal })).catch((e: Error) => e);
    await new Promise((resolve) => setTimeout(resolve, 50));
    second.abort();
    expect(await waiting).toMatchObject({ name: 'AbortError' });
    first.abort();
    expect(await inFlight).toMatchObject({ name: 'AbortError' });
  });

  it('aborting while a body streams errors the body', async () => {
    const server = await rawServer((socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome'));
    const controller = new AbortController();
    const answer = await client().request(get(server.port, { signal: controller.signal }));
    const reading = bytesOf(answer.body!).catch((e: Error) => e);
    controller.abort();
    expect(await reading).toMatchObject({ name: 'AbortError' });
  });

  it('aborting a body nobody reads yet destroys it without an unhandled error; a late reader gets the abort', async () => {
    const server = await rawServer((socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome'));
    const controller = new AbortController();
    const answer = await client().request(get(server.port, { signal: controller.signal }));
    controller.abort();
    await new Promise((resolve) => setImmediate(resolve));
    expect(answer.body!.destroyed).toBe(true);
    await expect(bytesOf(answer.body!)).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('keeps to maxSockets per origin: the requests beyond wait for a free connection', async () => {
    let open = 0;
    let most = 0;
    const server = http.createServer((_req, res) => {
      open += 1;
      most = Math.max(most, open);
      setTimeout(() => {
        open -= 1;
        res.end('x');
      }, 20);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => server.close());
    closers.push(() => server.closeAllConnections());
    const port = (server.address() as net.AddressInfo).port;
    const http1 = client({ maxSockets: 3 });
    const answers = await Promise.all(Array.from({ length: 12 }, () => http1.request(get(port)).then((a) => bytesOf(a.body!))));
    expect(answers.map(String)).toEqual(Array(12).fill('x'));
    expect(most).toBe(3);
  });

  it('streams a request body of known length with backpressure, and refuses one of the wrong length', async () => {
    const received: Buffer[] = [];
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        received.push(Buffer.concat(chunks));
        res.end('');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => server.close());
    closers.push(() => server.closeAllConnections());
    const port = (server.address() as net.AddressInfo).port;
    const big = Buffer.alloc(8 * 1024 * 1024, 5);
    const pieces = Array.from({ length: 128 }, (_, i) => big.subarray(i * 65536, (i + 1) * 65536));
    const put = (body: Readable, length: number) =>
      client().request({ ...get(port), method: 'PUT', headers: { host: 'h', 'content-length': String(length) }, body, streamBody: () => false });
    expect((await put(Readable.from(pieces), big.length)).statusCode).toBe(200);
    expect(received[0]!.equals(big)).toBe(true);
    expect(await put(Readable.from([Buffer.alloc(10)]), 11).catch((e: Error & { code?: string }) => e)).toMatchObject({ code: 'ERR_HTTP_CONTENT_LENGTH_MISMATCH' });
    expect(await put(Readable.from([Buffer.alloc(12)]), 11).catch((e: Error & { code?: string }) => e)).toMatchObject({ code: 'ERR_HTTP_CONTENT_LENGTH_MISMATCH' });
  });

  it('relays bodies GET -> PUT through reused read slabs without a byte going astray, many at once', async () => {
    // Each object's bytes are its own (seeded), so a slab reused while still held would show as a wrong digest.
    // Larger than what the kernel's socket buffers absorb, so that writes wait in the relay.
    const objects = Array.from({ length: 6 }, (_, i) => {
      const body = Buffer.alloc(16 * 1024 * 1024 + i * 4099);
      for (let at = 0; at + 4 <= body.length; at += 4) body.writeUInt32LE((Math.imul(at + 1, 2654435761) ^ i) >>> 0, at);
      return body;
    });
    const source = http.createServer((req, res) => {
      const body = objects[Number(req.url!.slice(1))]!;
      res.writeHead(200, { 'content-length': body.length });
      // Written in uneven pieces, so reads land across slab boundaries.
      let at = 0;
      const pump = (): void => {
        while (at < body.length) {
          const piece = body.subarray(at, at + 100_003);
          at += piece.length;
          if (!res.write(piece)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    const digests = new Map<string, string>();
    const destination = http.createServer((req, res) => {
      const hash = createHash('md5');
      // A slow reader: the relay's writes queue up, and the slabs they hold with them.
      req.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        req.pause();
        setTimeout(() => req.resume(), 1);
      });
      req.on('end', () => {
        digests.set(req.url!, hash.digest('hex'));
        res.end('');
      });
    });
    for (const server of [source, destination]) {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      closers.push(() => server.closeAllConnections());
      closers.push(() => server.close());
    }
    const port = (server: http.Server) => (server.address() as net.AddressInfo).port;
    const http1 = client({ maxSockets: 16 });
    const taken = vi.spyOn(readSlabs, 'take');
    const recycled = vi.spyOn(readSlabs, 'recycle');
    await Promise.all(
      objects.map(async (body, i) => {
        const got = await http1.request(get(port(source), { path: `/${i}`, headers: { host: 'src' } }));
        const put = await http1.request({
          ...get(port(destination)),
          method: 'PUT',
          path: `/${i}`,
          headers: { host: 'dst', 'content-length': String(body.length) },
          body: got.body!,
          streamBody: () => false,
        });
        expect(put.statusCode).toBe(200);
      }),
    );
    for (const [i, body] of objects.entries()) expect(digests.get(`/${i}`), `object ${i}`).toBe(createHash('md5').update(body).digest('hex'));
    // The relay's slab views came back for reuse (written whole on the destination's socket).
    expect(taken.mock.calls.length).toBeGreaterThan(6 * 60);
    expect(recycled.mock.calls.length).toBeGreaterThan(taken.mock.calls.length / 2);
    taken.mockRestore();
    recycled.mockRestore();
  });

  it('refuses header values node:http refuses, before anything is sent', async () => {
    const server = await rawServer(() => undefined);
    const error = await client()
      .request(get(server.port, { headers: { host: 'h', 'x-amz-meta-evil': 'a\r\nx-injected: 1' } }))
      .catch((e: Error & { code?: string }) => e);
    expect(error).toMatchObject({ code: 'ERR_INVALID_CHAR' });
    expect(server.connections()).toBe(0);
  });

  it('drops an idle connection the server closed, and uses a new one', async () => {
    const server = await rawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      setTimeout(() => socket.end(), 10);
    });
    const http1 = client();
    await bytesOf((await http1.request(get(server.port))).body!);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await bytesOf((await http1.request(get(server.port))).body!);
    expect(server.connections()).toBe(2);
  });

  it('speaks HTTPS through node:tls', async (context) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lean-http-tls-'));
    closers.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
    } catch {
      context.skip();
      return;
    }
    const cert = fs.readFileSync(path.join(dir, 'cert.pem'));
    const server = https.createServer({ key: fs.readFileSync(path.join(dir, 'key.pem')), cert }, (_req, res) => res.end('secure'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => server.close());
    closers.push(() => server.closeAllConnections());
    const port = (server.address() as net.AddressInfo).port;
    // The certificate is not trusted: refused as node:https refuses it.
    const refused = await client().request({ ...get(port), protocol: 'https:' }).catch((e: Error & { code?: string }) => e);
    expect(refused).toMatchObject({ code: expect.stringMatching(/SELF_SIGNED|UNABLE_TO_VERIFY|DEPTH_ZERO/) });
    const trusting = client({ tls: { ca: cert, servername: 'localhost' } });
    const answer = await trusting.request({ ...get(port), protocol: 'https:' });
    expect((await bytesOf(answer.body!)).toString()).toBe('secure');
  });
});
