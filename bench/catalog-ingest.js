// Catalog ingest benchmark: feeds synthetic ListObjectsV2-shaped pages (1,000 keys each) through the real
// catalog code into a real state file, and reports rows/s and peak RSS at several catalog sizes.
// Usage: node bench/catalog-ingest.js [--rows 10000,100000,1000000]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCatalog } from '../dist/catalog/catalog.js';
import { openStateStore } from '../dist/state/open-store.js';

const arg = process.argv.indexOf('--rows');
const sizes = (arg > 0 ? process.argv[arg + 1] : '10000,100000,1000000').split(',').map(Number);

/** A synthetic ListObjectsV2 of `total` keys, 1,000 per page (the page index is the continuation token). */
const syntheticLister = (total) => async (request) => {
  const day = Date.UTC(2024, 0, 1);
  const start = request.continuationToken === undefined ? 0 : Number(request.continuationToken);
  {
    const objects = [];
    for (let i = start; i < Math.min(start + 1000, total); i += 1) {
      objects.push({
        // Listings arrive in key order, so keys here increase too.
        key: `photos/${String(i).padStart(9, '0')}/img-${i % 97}.jpg`,
        size: 1024 + ((i * 7919) % 1_000_000),
        etag: `"${(i * 2654435761).toString(16).padStart(32, '0').slice(-32)}"`,
        lastModified: new Date(day + i * 1000).toISOString(),
        storageClass: 'STANDARD',
      });
    }
    const next = start + 1000;
    return { objects, prefixes: [], truncated: next < total, nextToken: next < total ? String(next) : undefined, encoded: false };
  }
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 's3migrate-bench-'));
const results = [];
for (const rows of sizes) {
  const file = path.join(dir, `state-${rows}.db`);
  const store = await openStateStore(file, { create: true, readonly: false });
  await store.setSource({ endpoint: 'synthetic', bucket: 'bench', prefix: '' });
  let peakRss = process.memoryUsage().rss;
  const started = process.hrtime.bigint();
  await runCatalog({
    store,
    client: undefined,
    source: { endpoint: 'synthetic', bucket: 'bench', prefix: '' },
    credentialSource: 'none',
    listConcurrency: 1,
    lister: syntheticLister(rows),
    onEvent: () => {
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
    },
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await store.close();
  results.push({ rows, seconds: +seconds.toFixed(2), rowsPerSecond: Math.round(rows / seconds), peakRssMiB: +(peakRss / 2 ** 20).toFixed(1) });
  fs.rmSync(file, { force: true });
}
fs.rmSync(dir, { recursive: true, force: true });

console.log('| rows | seconds | rows/s | peak RSS (MiB) |');
console.log('| ---: | ---: | ---: | ---: |');
for (const r of results) console.log(`| ${r.rows.toLocaleString('en-US')} | ${r.seconds} | ${r.rowsPerSecond.toLocaleString('en-US')} | ${r.peakRssMiB} |`);
