// Inventory ingest benchmark (after npm run build): `catalog --from-inventory` of synthetic S3 Inventory reports
// of 1, 10 and 30 million rows into a real state file: rows/s and peak RSS. The report is what AWS writes
// (manifest.json + gzip CSV data files without a header, every field quoted, keys form-encoded), on local disk;
// the real inventory reader reads it through an S3 client stand-in whose GetObject streams the local file (no
// S3 server: an s3rver would measure its own CPU), then the real catalog code stores it. As the CLI does, every
// data file is first checked against the manifest (verifyFiles), then read again and parsed (pages): both are
// timed. Each size runs in a fresh process, so its peak RSS (VmHWM) is its own.
// Usage: node bench/inventory-ingest.js [--rows 1000000,10000000,30000000] [--rows-per-file 1000000] [--dir /tmp]
//   [--young-generation cap|v8] (cap, the default: the young generation bounded as `s3migrate catalog` bounds it,
//   dist/cli/young-generation.js; v8: V8's own growth, as before that bound)
// The report of each size is deleted after it was measured (30 million rows: ~1 GiB of gzip, a ~6 GiB state).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { runCatalog } from '../dist/catalog/catalog.js';
import { openInventory } from '../dist/catalog/inventory/read-inventory.js';
import { openStateStore } from '../dist/state/open-store.js';
import { YOUNG_GENERATION_CATALOG, YoungGenerationCap, youngGenerationBytes } from '../dist/cli/young-generation.js';
import { flag } from './measure.js';

if (process.argv.includes('--help')) {
  const head = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n');
  console.log(head.slice(0, head.findIndex((line) => !line.startsWith('//'))).map((line) => line.replace(/^\/\/ ?/, '')).join('\n'));
  process.exit(0);
}
const SOURCE = { endpoint: 'http://synthetic.invalid', bucket: 'bench-source', prefix: '' };
const INVENTORY_BUCKET = 'bench-inventories';

/** Writes a report of `rows` rows into `dir`: data files of `perFile` rows, keys ascending; returns the manifest key. */
async function writeReport(dir, rows, perFile) {
  const files = [];
  const day = Date.UTC(2024, 0, 1);
  for (let first = 0, index = 0; first < rows; first += perFile, index += 1) {
    const key = `inventory/${SOURCE.bucket}/all/data/part-${String(index).padStart(5, '0')}.csv.gz`;
    const file = path.join(dir, key);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const gzip = zlib.createGzip({ level: 1 });
    const out = fs.createWriteStream(file);
    gzip.pipe(out);
    const last = Math.min(first + perFile, rows);
    for (let i = first; i < last; ) {
      let chunk = '';
      for (const stop = Math.min(i + 5000, last); i < stop; i += 1) {
        // Keys with a space and a '+' now and then, form-encoded as AWS writes them.
        const name = i % 50 === 0 ? `img+${i % 97} copy.jpg` : `img-${i % 97}.jpg`;
        const encoded = encodeURIComponent(`photos/${String(Math.floor(i / 1000)).padStart(9, '0')}/${String(i).padStart(12, '0')}-${name}`)
          .replace(/%20/g, '+');
        const etag = (Math.imul(i, 2654435761) >>> 0).toString(16).padStart(8, '0').repeat(4);
        chunk += `"${SOURCE.bucket}","${encoded}","${1024 + ((i * 7919) % 1_000_000)}","${new Date(day + i * 1000).toISOString()}","${etag}","STANDARD"\n`;
      }
      if (!gzip.write(chunk)) await new Promise((resolve) => gzip.once('drain', resolve));
    }
    gzip.end();
    await new Promise((resolve, reject) => out.once('finish', resolve).once('error', reject));
    const bytes = fs.readFileSync(file);
    files.push({ key, size: bytes.length, MD5checksum: createHash('md5').update(bytes).digest('hex') });
  }
  const manifest = {
    sourceBucket: SOURCE.bucket,
    destinationBucket: `arn:aws:s3:::${INVENTORY_BUCKET}`,
    version: '2016-11-30',
    creationTimestamp: String(Date.UTC(2024, 1, 1)),
    fileFormat: 'CSV',
    fileSchema: 'Bucket, Key, Size, LastModifiedDate, ETag, StorageClass',
    files,
  };
  const manifestKey = `inventory/${SOURCE.bucket}/all/2024-02-01T00-00Z/manifest.json`;
  fs.mkdirSync(path.dirname(path.join(dir, manifestKey)), { recursive: true });
  fs.writeFileSync(path.join(dir, manifestKey), JSON.stringify(manifest, null, 4));
  return manifestKey;
}

/** An S3 client stand-in: GetObject of `dir`'s files (what the inventory reader sends), NoSuchKey else. */
function localClient(dir) {
  return {
    send: async (command) => {
      const { Key } = command.input;
      const file = path.join(dir, Key);
      if (!fs.existsSync(file)) throw Object.assign(new Error('NoSuchKey'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });
      const body = fs.createReadStream(file, { highWaterMark: 64 * 1024 }); // chunks of the size an HTTP body arrives in
      body.transformToByteArray = async () => new Uint8Array(fs.readFileSync(file));
      body.transformToString = async () => fs.readFileSync(file, 'utf8');
      return { Body: body };
    },
    destroy: () => undefined,
  };
}

const peakRssMiB = () => Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;

/** One size, in this process: verify, then catalog; prints a JSON line. */
async function runOne(dir, manifestKey, stateFile) {
  // As `s3migrate catalog` does from its start (src/cli/catalog-command.ts).
  if (youngCap === 'cap') new YoungGenerationCap({ limitBytes: YOUNG_GENERATION_CATALOG }).start();
  const client = localClient(dir);
  const started = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const inventory = await openInventory(client, `s3://${INVENTORY_BUCKET}/${manifestKey}`);
  await inventory.verifyFiles();
  const verified = process.hrtime.bigint();
  const cpu1 = process.cpuUsage();
  const store = await openStateStore(stateFile, { create: true, readonly: false });
  await store.setSource(SOURCE);
  let rssSamples = [];
  let pages = 0;
  let atPeak = { hwm: 0 };
  const heapAfterGc = [];
  const result = await runCatalog({
    store,
    client,
    source: SOURCE,
    credentialSource: 'none',
    inventory,
    inventoryTempDir: dir,
    onEvent: (event) => {
      if (event.type !== 'page') return;
      pages += 1;
      if (pages % 1000 === 0) {
        // Under `node --expose-gc`: the heap after a full collection too, what is really kept.
        if (globalThis.gc) {
          globalThis.gc();
          heapAfterGc.push(Math.round(process.memoryUsage().heapUsed / 2 ** 20));
        }
        rssSamples.push(Math.round(process.memoryUsage().rss / 2 ** 20));
      }
      // Where the peak happens, and in what: V8's heap, buffers outside it, or neither (SQLite, the C++ side).
      if (pages % 50 === 0) {
        const hwm = peakRssMiB();
        if (hwm > atPeak.hwm) {
          const m = process.memoryUsage();
          const mib = (n) => Math.round(n / 2 ** 20);
          // RssAnon less V8's heap is malloc'd memory (SQLite's page cache, zlib, buffers); RssFile the mapped binaries.
          const status = fs.readFileSync('/proc/self/status', 'utf8');
          const statusMiB = (name) => Math.round(Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024);
          atPeak = {
            hwm: Math.round(hwm), page: pages, rss: mib(m.rss), rssAnon: statusMiB('RssAnon'), rssFile: statusMiB('RssFile'), rssShmem: statusMiB('RssShmem'),
            heapTotal: mib(m.heapTotal), heapUsed: mib(m.heapUsed), external: mib(m.external), arrayBuffers: mib(m.arrayBuffers),
          };
        }
      }
    },
  });
  const done = process.hrtime.bigint();
  const cpu2 = process.cpuUsage();
  const cpuSeconds = (a, b) => (b.user + b.system - a.user - a.system) / 1e6;
  await store.close();
  const rows = result.totalKeys;
  const verifySeconds = Number(verified - started) / 1e9;
  const ingestSeconds = Number(done - verified) / 1e9;
  process.stdout.write(
    `${JSON.stringify({ rows, verifySeconds, ingestSeconds, verifyCpu: cpuSeconds(cpu0, cpu1), ingestCpu: cpuSeconds(cpu1, cpu2), stateBytes: fs.statSync(stateFile).size, peakRssMiB: peakRssMiB(), youngGenerationMiB: youngGenerationBytes() / 2 ** 20, rssEveryMillionRows: rssSamples, atPeak, ...(globalThis.gc ? { heapAfterGcMiB: heapAfterGc } : {}) })}\n`,
  );
}

const youngCap = flag('young-generation', 'cap');
if (!['cap', 'v8'].includes(youngCap)) throw new Error(`--young-generation cap or v8, not ${youngCap}`);
if (process.argv.includes('--one')) {
  const at = process.argv.indexOf('--one');
  await runOne(process.argv[at + 1], process.argv[at + 2], process.argv[at + 3]);
  process.exit(0);
}

const sizes = flag('rows', '1000000,10000000,30000000').split(',').map(Number);
const perFile = Number(flag('rows-per-file', '1000000'));
const results = [];
for (const rows of sizes) {
  const dir = fs.mkdtempSync(path.join(flag('dir', os.tmpdir()), 's3migrate-bench-inventory-'));
  try {
    const t0 = Date.now();
    const manifestKey = await writeReport(dir, rows, perFile);
    const gzBytes = fs.readdirSync(path.join(dir, `inventory/${SOURCE.bucket}/all/data`)).reduce((sum, name) => sum + fs.statSync(path.join(dir, `inventory/${SOURCE.bucket}/all/data`, name)).size, 0);
    process.stderr.write(`${rows.toLocaleString('en-US')} rows: report written in ${((Date.now() - t0) / 1000).toFixed(0)} s (${(gzBytes / 2 ** 20).toFixed(0)} MiB gzip)\n`);
    const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--one', dir, manifestKey, path.join(dir, 'state.db'), '--young-generation', youngCap], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 24,
    });
    if (child.status !== 0) throw new Error(`ingest of ${rows} rows failed (exit ${child.status})`);
    const result = JSON.parse(child.stdout.trim().split('\n').pop());
    if (result.rows !== rows) throw new Error(`${rows} rows written, ${result.rows} cataloged`);
    results.push({ ...result, gzBytes });
    process.stderr.write(`  ${JSON.stringify(result)}\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
const lines = [
  `Inventory ingest (catalog --from-inventory code path, local files, ${perFile.toLocaleString('en-US')} rows per data file, young generation: ${youngCap === 'cap' ? 'capped as the CLI does' : "V8's own growth"}); ${os.cpus().length} cores, Node ${process.version}`,
  '',
  '| rows | gzip MiB | verify s | ingest s | rows/s (ingest) | rows/s (verify + ingest) | ingest CPU s | rows per CPU s | state GiB | peak RSS MiB |',
  '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...results.map(
    (r) =>
      `| ${r.rows.toLocaleString('en-US')} | ${(r.gzBytes / 2 ** 20).toFixed(0)} | ${r.verifySeconds.toFixed(1)} | ${r.ingestSeconds.toFixed(1)} | ${Math.round(r.rows / r.ingestSeconds).toLocaleString('en-US')} | ${Math.round(r.rows / (r.verifySeconds + r.ingestSeconds)).toLocaleString('en-US')} | ${r.ingestCpu.toFixed(1)} | ${Math.round(r.rows / (r.verifyCpu + r.ingestCpu)).toLocaleString('en-US')} | ${(r.stateBytes / 2 ** 30).toFixed(2)} | ${r.peakRssMiB.toFixed(0)} |`,
  ),
];
console.log(lines.join('\n'));
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
fs.mkdirSync(path.join(root, 'bench/results'), { recursive: true });
fs.writeFileSync(path.join(root, `bench/results/inventory-ingest-${stamp}.md`), `${lines.join('\n')}\n`);
