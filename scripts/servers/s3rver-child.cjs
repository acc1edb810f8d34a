#!/usr/bin/env node
// Runs one s3rver instance as a child process so tests and the demo can start
// real S3 endpoints in isolation (s3rver needs --openssl-legacy-provider, which
// we do not want to impose on the parent process).
//
// Usage: node --openssl-legacy-provider s3rver-child.cjs DIR [BUCKET...]
// Prints exactly one line `{"port":NNNN}` on stdout once listening.
'use strict';

const fs = require('node:fs');
const S3rver = require('s3rver');

async function main() {
  const [directory, ...buckets] = process.argv.slice(2);
  if (!directory) {
    process.stderr.write('usage: s3rver-child.cjs DIR [BUCKET...]\n');
    process.exit(2);
  }

  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  const { port } = await server.run();

  let closing = false;
  const shutdown = () => {
    if (closing) return;
    closing = true;
    const closed = server.close();
    // Do not wait for clients' keep-alive sockets to go idle.
    server.httpServer.closeAllConnections();
    closed.then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  // If the parent dies without signalling us, our stdin pipe closes: do not
  // linger as an orphan. Only when stdin is a pipe (a tty or /dev/null is not).
  const stdin = fs.fstatSync(0);
  if (stdin.isFIFO() || stdin.isSocket()) {
    process.stdin.on('end', shutdown);
    process.stdin.resume();
  }

  process.stdout.write(JSON.stringify({ port }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`s3rver-child: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
