// W2m's source: a small HTTP proxy in front of s3rver that shows multipart-uploaded objects with the ETag
// real S3 (and Ceph RGW) give them, `<MD5 of the part MD5s>-<parts>`, where s3rver gives a whole-object
// MD5. It rewrites the ETag header of every answer, the ETags inside XML answers (listings), and turns
// If-Match / If-None-Match values back into s3rver's own, so conditional reads behave as on S3. Bodies
// of objects are passed through untouched. Runs as its own process (its CPU counts as server CPU).
// Usage: node bench/etag-proxy.js TARGET_PORT REAL=FAKE[,REAL=FAKE...]   (ETags without quotes)
// Prints `{"port":N,"pid":P}` once listening.
import http from 'node:http';

const [targetPort, pairs] = process.argv.slice(2);
const toFake = new Map(pairs.split(',').map((pair) => pair.split('=')));
const toReal = new Map([...toFake].map(([real, fake]) => [fake, real]));
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

const swap = (value, map) => {
  if (typeof value !== 'string') return value;
  let out = value;
  for (const [from, to] of map) if (out.includes(from)) out = out.split(from).join(to);
  return out;
};

const server = http.createServer((req, res) => {
  const headers = { ...req.headers };
  for (const name of ['if-match', 'if-none-match']) if (headers[name]) headers[name] = swap(headers[name], toReal);
  const upstream = http.request(
    { host: '127.0.0.1', port: Number(targetPort), method: req.method, path: req.url, headers, agent },
    (answer) => {
      const out = { ...answer.headers };
      if (out.etag) out.etag = swap(out.etag, toFake);
      if (/xml/.test(out['content-type'] ?? '')) {
        const chunks = [];
        answer.on('data', (chunk) => chunks.push(chunk));
        answer.on('end', () => {
          const body = Buffer.from(swap(Buffer.concat(chunks).toString('utf8'), toFake));
          delete out['transfer-encoding'];
          out['content-length'] = String(body.length);
          res.writeHead(answer.statusCode, out);
          res.end(body);
        });
        answer.on('error', () => res.destroy());
        return;
      }
      res.writeHead(answer.statusCode, out);
      answer.pipe(res);
    },
  );
  upstream.on('error', () => res.destroy());
  req.pipe(upstream);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port, pid: process.pid })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
