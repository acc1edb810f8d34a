// Catalog ingest benchmark: feeds synthetic ListObjectsV2-shaped pages (1,000 keys each) through the real
// catalog code into a real state file, and reports rows/s and peak RSS at several catalog sizes, and the
// file's size per row: after the catalog, and after every row was claimed and marked done through the
// store calls a copy makes (claimPending, markDone). Overhead = bytes/row - the average key length.
// Usage: node bench/catalog-ingest.js [--rows 10000,100000,1000000] [--where] [--catalog-only] [--relist]
//   [--young-generation v8|N] (V8's own young generation growth, or a bound of N MiB, instead of the catalog command's)
// (--relist: a second pass over the same listing, every 10th object's size changed and 1% new keys at
// its end, as a re-catalog meets them; its CPU seconds are printed after the table, and the file sizes
// then include it).
// (--where: bytes per table/index; --catalog-only: skip the all-done marking and its file size). CPU s is the
// process's user + system CPU during the catalog (this process is single-threaded apart from SQLite's I/O).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCatalog } from '../dist/catalog/catalog.js';
import { openStateStore } from '../dist/state/open-store.js';
import Database from 'better-sqlite3';
import { YOUNG_GENERATION_CATALOG, YoungGenerationCap } from '../dist/cli/young-generation.js';

// As `s3migrate catalog` does from its start (src/cli/catalog-command.ts); --young-generation v8 leaves it to
// V8, --young-generation N bounds it at N MiB instead.
const young = process.argv.includes('--young-generation') ? process.argv[process.argv.indexOf('--young-generation') + 1] : 'cap';
if (young !== 'v8') new YoungGenerationCap({ limitBytes: young === 'cap' ? YOUNG_GENERATION_CATALOG : Number(young) * 2 ** 20 }).start();

const arg = process.argv.indexOf('--rows');
const sizes = (arg > 0 ? process.argv[arg + 1] : '10000,100000,1000000').split(',').map(Number);
const showWhere = process.argv.includes('--where');
const catalogOnly = process.argv.includes('--catalog-only');
const relist = process.argv.includes('--relist');
const keyOf = (i) => `photos/${String(i).padStart(9, '0')}/img-${i % 97}.jpg`;
const etagOf = (i) => `"${(i * 2654435761).toString(16).padStart(32, '0').slice(-32)}"`;

/** A synthetic ListObjectsV2 of `total` keys, 1,000 per page (the page index is the continuation token). */
const syntheticLister = (total, changed = () => false) => async (request) => {
  const day = Date.UTC(2024, 0, 1);
  const start = request.continuationToken === undefined ? 0 : Number(request.continuationToken);
  {
    const objects = [];
    for (let i = start; i < Math.min(start + 1000, total); i += 1) {
      objects.push({
        // Listings arrive in key order, so keys here increase too.
        key: keyOf(i),
        size: 1024 + ((i * 7919) % 1_000_000) + (changed(i) ? 1 : 0),
        etag: etagOf(i),
        lastModified: new Date(day + i * 1000).toISOString(),
        storageClass: 'STANDARD',
      });
    }
    const next = start + 1000;
    return { objects, prefixes: [], truncated: next < total, nextToken: next < total ? String(next) : undefined, encoded: false };
  }
};

/** One catalog pass of the synthetic listing through the real catalog code. */
const catalogPass = (store, lister, onEvent) =>
  runCatalog({
    store,
    client: undefined,
    source: { endpoint: 'synthetic', bucket: 'bench', prefix: '' },
    credentialSource: 'none',
    listConcurrency: 1,
    lister,
    onEvent,
  });

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 's3migrate-bench-'));
const results = [];
for (const rows of sizes) {
  const file = path.join(dir, `state-${rows}.db`);
  const store = await openStateStore(file, { create: true, readonly: false });
  await store.setSource({ endpoint: 'synthetic', bucket: 'bench', prefix: '' });
  let peakRss = process.memoryUsage().rss;
  const started = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  await catalogPass(store, syntheticLister(rows), () => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  let relistCpuSeconds;
  if (relist) {
    const again = process.cpuUsage();
    await catalogPass(store, syntheticLister(rows + rows / 100, (i) => i % 10 === 0));
    const used = process.cpuUsage(again);
    relistCpuSeconds = (used.user + used.system) / 1e6;
  }
  await store.close(); // the last connection's close checkpoints the WAL into the file
  const catalogBytes = fs.statSync(file).size;
  const catalogWhere = showWhere ? where(file) : undefined;

  // Every row done, as a copy marks it: claimed in key order, then marked done on MD5 evidence with the
  // destination's ETag (the source's MD5, unquoted) at the same key.
  const copy = await openStateStore(file, { create: false, readonly: false });
  await copy.prepareCopy('key');
  for (; !catalogOnly; ) {
    const claimed = await copy.claimPending('key', 1000);
    if (claimed.length === 0) break;
    await Promise.all(
      claimed.map((row) => copy.markDone(row.id, { destKey: row.key, destEtag: row.etag.replace(/"/g, ''), evidence: 'md5', method: 'stream' })),
    );
  }
  await copy.close();
  const doneBytes = fs.statSync(file).size;
  let keyBytes = 0;
  for (let i = 0; i < rows; i += 1) keyBytes += Buffer.byteLength(keyOf(i));
  const keyAverage = keyBytes / rows;
  results.push({
    rows,
    seconds: +seconds.toFixed(2),
    rowsPerSecond: Math.round(rows / seconds),
    cpuSeconds: +cpuSeconds.toFixed(2),
    relistCpuSeconds,
    rowsPerCpuSecond: Math.round(rows / cpuSeconds),
    peakRssMiB: +(peakRss / 2 ** 20).toFixed(1),
    keyAverage: +keyAverage.toFixed(1),
    catalogPerRow: +(catalogBytes / rows).toFixed(1),
    donePerRow: catalogOnly ? undefined : +(doneBytes / rows).toFixed(1),
    catalogWhere,
    doneWhere: showWhere ? where(file) : undefined,
  });
  fs.rmSync(file, { force: true });
}

/** Bytes per table and index (SQLite's dbstat), largest first. */
function where(file) {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC').all();
  } finally {
    db.close();
  }
}
fs.rmSync(dir, { recursive: true, force: true });

console.log('| rows | seconds | rows/s | CPU s | rows per CPU s | peak RSS (MiB) | key (B) | catalog B/row | overhead | all done B/row | overhead |');
console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of results) {
  console.log(
    `| ${r.rows.toLocaleString('en-US')} | ${r.seconds} | ${r.rowsPerSecond.toLocaleString('en-US')} | ${r.cpuSeconds} | ` +
      `${r.rowsPerCpuSecond.toLocaleString('en-US')} | ${r.peakRssMiB} | ${r.keyAverage} | ` +
      `${r.catalogPerRow} | ${(r.catalogPerRow - r.keyAverage).toFixed(1)} | ` +
      (r.donePerRow === undefined ? '- | - |' : `${r.donePerRow} | ${(r.donePerRow - r.keyAverage).toFixed(1)} |`),
  );
}
for (const r of results.filter((r) => r.relistCpuSeconds !== undefined)) {
  console.log(`\n${r.rows.toLocaleString('en-US')} rows listed again (10% changed, 1% new): ${r.relistCpuSeconds.toFixed(2)} CPU s`);
}
for (const r of results.filter((r) => r.catalogWhere)) {
  console.log(`\n${r.rows.toLocaleString('en-US')} rows, bytes per row by table/index (catalog -> all done):`);
  const done = new Map(r.doneWhere.map((w) => [w.name, w.bytes]));
  for (const w of r.catalogWhere) console.log(`  ${w.name.padEnd(28)} ${(w.bytes / r.rows).toFixed(1).padStart(7)} -> ${((done.get(w.name) ?? 0) / r.rows).toFixed(1)}`);
  for (const [name, bytes] of done) if (!r.catalogWhere.some((w) => w.name === name)) console.log(`  ${name.padEnd(28)} ${'0.0'.padStart(7)} -> ${(bytes / r.rows).toFixed(1)}`);
}
