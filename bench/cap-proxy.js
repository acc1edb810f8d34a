// A WAN link's per-connection cap: a TCP proxy in which every connection is limited to RATE MiB/s in each
// direction (a token bucket per connection per direction, BURST KiB deep), as a long path's window or a
// provider's per-stream limit would. Net-level: bytes are passed on untouched, HTTP is never parsed. Runs as
// its own process, like bench/delay-proxy.js.
// Usage: node bench/cap-proxy.js TARGET_URL RATE_MIB_PER_S [BURST_KIB] [--requests FILE]
//   Prints `{"port":N,"pid":P}` once listening; exits when its stdin closes or on SIGTERM. With --requests,
//   appends one JSON line per request line seen at the start of a client->server chunk
//   ({"t": ms since epoch, "conn": n, "line": "POST /b/k?uploadId=..."}): when each request was sent, e.g. the
//   CompleteMultipartUpload that ends a multipart transfer. A request line split across chunks is missed.
//   On exit, prints the connections served and the bytes passed each way to stderr.
import fs from 'node:fs';
import net from 'node:net';

const args = process.argv.slice(2);
const requestsAt = args.indexOf('--requests');
const requestsFile = requestsAt >= 0 ? args.splice(requestsAt, 2)[1] : undefined;
const [targetArg, rateArg, burstArg] = args;
if (!targetArg || !rateArg) {
  process.stderr.write('usage: node bench/cap-proxy.js TARGET_URL RATE_MIB_PER_S [BURST_KIB] [--requests FILE]\n');
  process.exit(2);
}
const target = new URL(targetArg.includes('://') ? targetArg : `http://${targetArg}`);
const rate = Number(rateArg) * 1024 * 1024; // bytes per second
const burst = Number(burstArg ?? 256) * 1024; // bytes
if (!(rate > 0) || !(burst > 0)) {
  process.stderr.write('RATE and BURST must be positive numbers\n');
  process.exit(2);
}
const requestLog = requestsFile ? fs.openSync(requestsFile, 'a') : undefined;
const METHOD = /^(GET|PUT|POST|HEAD|DELETE) (\S+) HTTP\/1\.[01]\r\n/;
const totals = { connections: 0, up: 0, down: 0 };

/** A token bucket: `take(n)` resolves once n bytes may pass (n <= burst), full at first. */
function bucket() {
  let tokens = burst;
  let last = process.hrtime.bigint();
  return async function take(n) {
    for (;;) {
      const now = process.hrtime.bigint();
      tokens = Math.min(burst, tokens + (Number(now - last) / 1e9) * rate);
      last = now;
      if (tokens >= n) {
        tokens -= n;
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.max(1, Math.ceil(((n - tokens) / rate) * 1000))));
    }
  };
}

/** Passes `from`'s bytes to `to` at most at the cap, in slices no larger than 64 KiB, with backpressure. */
function pipeCapped(from, to, onChunk) {
  const take = bucket();
  const slice = Math.min(64 * 1024, burst);
  let queue = Promise.resolve();
  from.on('data', (chunk) => {
    from.pause();
    onChunk?.(chunk);
    queue = queue.then(async () => {
      for (let offset = 0; offset < chunk.length; offset += slice) {
        const piece = chunk.subarray(offset, Math.min(chunk.length, offset + slice));
        await take(piece.length);
        if (to.destroyed) return;
        if (!to.write(piece)) {
          await new Promise((resolve) => {
            const done = () => {
              to.off('drain', done).off('close', done);
              resolve();
            };
            to.on('drain', done).on('close', done);
          });
        }
      }
      if (!from.destroyed) from.resume();
    });
  });
  from.on('end', () => queue.then(() => to.end()));
}

const server = net.createServer((client) => {
  const conn = (totals.connections += 1);
  const upstream = net.connect({ host: target.hostname, port: Number(target.port) || 80 });
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close).on('close', close);
  upstream.on('error', close).on('close', close);
  pipeCapped(client, upstream, (chunk) => {
    totals.up += chunk.length;
    if (requestLog === undefined || chunk.length < 16 || chunk[0] < 0x41 || chunk[0] > 0x5a) return;
    const match = METHOD.exec(chunk.toString('latin1', 0, Math.min(chunk.length, 2048)));
    if (match) fs.writeSync(requestLog, `${JSON.stringify({ t: Date.now(), conn, line: `${match[1]} ${match[2]}` })}\n`);
  });
  pipeCapped(upstream, client, (chunk) => {
    totals.down += chunk.length;
  });
});

const finish = () => {
  process.stderr.write(`cap-proxy: ${totals.connections} connections, ${totals.up} bytes up, ${totals.down} bytes down\n`);
  process.exit(0);
};
process.on('SIGTERM', finish);
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port, pid: process.pid })}\n`));
process.stdin.resume();
process.stdin.on('end', finish);
