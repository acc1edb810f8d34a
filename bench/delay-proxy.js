// The listing benchmark's network: an HTTP proxy that holds every request for a fixed delay before passing it
// on, as a distant endpoint's round trip would (20 ms: a nearby region). Runs as its own process.
// Usage: node bench/delay-proxy.js TARGET_URL DELAY_MS      Prints `{"port":N,"pid":P}` once listening.
import http from 'node:http';

const [target, delay] = [new URL(process.argv[2]), Number(process.argv[3] ?? 20)];
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const server = http.createServer((req, res) => {
  setTimeout(() => {
    const upstream = http.request(
      { hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  }, delay);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port, pid: process.pid })}\n`));
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
