// node bench/list.js (after npm run build): catalog's listing of 50,000 keys behind a proxy that adds 20 ms to every request, at
// several --list-concurrency values, beside rclone on the same bucket: `rclone lsf -R --fast-list` and `rclone lsf -R`
// (rclone's s3 backend lists both as one flat listing, ListR) and `rclone lsf -R --disable ListR` (a directory walk,
// --checkers 8 at once); interleaved A B C then C B A, medians.
// Usage: node bench/list.js [--server synthetic|s3rver|rgw] [--keys 50000] [--delay 20[,100...]] [--reps 3]
//   [--concurrency 1,2,4,8,16,32] [--no-rclone] [--baseline DIR] (DIR: another built checkout, e.g. before a change: its
//   catalog runs beside, same concurrencies, interleaved).
// Servers: synthetic (bench/list-server.js, its own process: answers from a sorted in-memory array with pre-rendered
//   XML and any signature, so a run measures the client and the delay, as on AWS where the server's CPU is not ours);
//   s3rver (default; a Node process that reads its directories for every request); rgw (Ceph, needs
//   test/servers/rgw.sh install; seeding 50,000 objects takes ~2 minutes). s3rver and RGW share the machine's cores
//   with the client: their runs measure a CPU-bound local server as much as the client.
// Each s3migrate run also reports its catalog run as its JSON log times it (run-start to run-end): the wall time
//   less what comes before the log's first line (Node's start, the CLI's modules: ~0.1 s), which a listing of
//   millions of keys amortises.
// The layout: 40 prefixes whose sizes grow by 15 % each (0.06 % to 13 % of the keys), 15 keys at the root.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import Database from 'better-sqlite3';
import pLimit from 'p-limit';
import { startS3rver } from '../scripts/servers/s3rver.js';
import { layout } from './list-server.js';
import { flag, processCpuSeconds, startHelper, timed } from './measure.js';

if (process.argv.includes('--help')) {
  // The usage is this file's opening comment.
  const head = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n');
  console.log(head.slice(0, head.findIndex((line) => !line.startsWith('//'))).map((line) => line.replace(/^\/\/ ?/, '')).join('\n'));
  process.exit(0);
}
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const serverKind = flag('server', 's3rver');
const total = Number(flag('keys', '50000'));
const delays = flag('delay', '20').split(',').map(Number);
const reps = Number(flag('reps', '3'));
const concurrencies = flag('concurrency', '1,2,4,8,16,32').split(',').map(Number);
const withRclone = !process.argv.includes('--no-rclone');
const baseline = flag('baseline', undefined);
const BUCKET = 'listing';

/** Starts a helper server (bench/list-server.js, bench/delay-proxy.js): its endpoint, pid and stop. */
async function startChild(argv) {
  const { child, info } = await startHelper(argv);
  return { endpoint: `http://127.0.0.1:${info.port}`, pid: child.pid, stop: () => child.kill('SIGTERM') };
}

async function startServer(keys) {
  if (serverKind === 'synthetic') {
    // Its own process, so that its CPU is counted apart from the client's; it builds the same keys itself.
    const s3 = await startChild([path.join(root, 'bench/list-server.js'), '--keys', String(keys.length), '--bucket', BUCKET]);
    return { endpoint: s3.endpoint, accessKeyId: 'SYNTHETIC', secretAccessKey: 'any-signature-is-accepted', pids: [s3.pid], stop: () => s3.stop() };
  }
  if (serverKind === 's3rver') {
    const s3 = await startS3rver({ buckets: [BUCKET] });
    // Straight into s3rver's storage layout: 50,000 PutObjects would take minutes.
    for (const key of keys) {
      const parts = key.split('/');
      const name = parts.pop();
      const dir = path.join(s3.dir, BUCKET, ...parts);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, `${name}._S3rver_object`), key);
    }
    return { endpoint: s3.endpoint, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', pids: [s3.pid], stop: () => s3.stop() };
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 's3migrate-bench-rgw-'));
  const script = path.join(root, 'test/servers/rgw.sh');
  const endpoint = execFileSync('bash', [script, 'start', dir], { encoding: 'utf8' }).trim().split('\n').pop();
  const user = { accessKeyId: 'BENCHLISTACCESSKEY01', secretAccessKey: 'bench-list-secret-key-000000000000000000' };
  execFileSync('bash', [script, 'create-user', dir, 'bench-list', user.accessKeyId, user.secretAccessKey]);
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: user,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    requestHandler: { httpAgent: new http.Agent({ keepAlive: true, maxSockets: 64 }) },
  });
  await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  process.stderr.write(`seeding ${keys.length} objects into RGW...\n`);
  const limit = pLimit(64);
  await Promise.all(keys.map((key) => limit(() => client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: key })))));
  client.destroy();
  const pids = execFileSync('sh', ['-c', `cat ${dir}/run/*.pid 2>/dev/null || true`], { encoding: 'utf8' }).split(/\s+/).filter(Boolean).map(Number);
  return {
    ...user,
    endpoint,
    pids,
    stop: async () => {
      execFileSync('bash', [script, 'stop', dir]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function startDelayProxy(target, delay) {
  return startChild([path.join(root, 'bench/delay-proxy.js'), target, String(delay)]);
}

const median = (values) => {
  const sorted = values.filter(Number.isFinite).sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

const keys = layout(total);
const server = await startServer(keys);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 's3migrate-bench-list-'));
const baseEnv = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
delete baseEnv.AWS_CA_BUNDLE; // rclone 1.60 refuses it
const largest = Math.max(...Object.values(keys.reduce((m, k) => ({ ...m, [k.split('/')[0]]: (m[k.split('/')[0]] ?? 0) + 1 }), {})));
// The floor under every s3migrate run: a process that loads the CLI and exits.
const startup = [];
for (let i = 0; i < 3; i++) startup.push((await timed(['node', path.join(root, 'bin/s3migrate.js'), '--version'], baseEnv)).wall);
const lines = [
  `Listing ${total.toLocaleString('en-US')} keys (40 prefixes of 11 to ${largest} keys, 15 at the root) on ${serverKind}; ` +
    `${os.cpus().length} cores, Node ${process.version}; medians of ${reps} interleaved runs after one unmeasured; ` +
    `\`s3migrate --version\` alone takes ${median(startup).toFixed(2)} s.`,
];

/** Runs every tool `reps` times behind a proxy adding `delay` ms per request. */
async function benchAt(delay) {
  const proxy = await startDelayProxy(server.endpoint, delay);
  const s3migrateEnv = {
    ...baseEnv,
    SOURCE_ENDPOINT: proxy.endpoint,
    SOURCE_AWS_ACCESS_KEY_ID: server.accessKeyId,
    SOURCE_AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
    SOURCE_AWS_REGION: 'us-east-1',
  };
  const rcloneEnv = {
    ...baseEnv,
    RCLONE_CONFIG_SRC_TYPE: 's3',
    RCLONE_CONFIG_SRC_PROVIDER: 'Other',
    RCLONE_CONFIG_SRC_ENDPOINT: proxy.endpoint,
    RCLONE_CONFIG_SRC_ACCESS_KEY_ID: server.accessKeyId,
    RCLONE_CONFIG_SRC_SECRET_ACCESS_KEY: server.secretAccessKey,
    RCLONE_CONFIG_SRC_FORCE_PATH_STYLE: 'true',
  };
  /** Each tool returns wall, CPU and how many keys it found (to check it found them all). */
  const tools = {};
  for (const [label, checkout] of [['s3migrate', root], ...(baseline ? [['baseline', baseline]] : [])])
  for (const n of concurrencies) {
    tools[`${label} --list-concurrency ${n}`] = async (run) => {
      const state = path.join(work, `state-${label}-${n}-${run}.db`);
      const log = path.join(work, `log-${label}-${n}-${run}.jsonl`);
      const result = await timed(
        ['node', path.join(checkout, 'bin/s3migrate.js'), 'catalog', '--from', `s3://${BUCKET}`, '--state', state, '--quiet', '--list-concurrency', String(n), '--log-format', 'json', '--log-file', log],
        s3migrateEnv,
      );
      // The run inside the process (its log's run-start to run-end): the wall time less the process start.
      const end = fs.readFileSync(log, 'utf8').trim().split('\n').map((line) => JSON.parse(line)).find((event) => event.event === 'run-end');
      result.inside = end ? end.elapsedMs / 1000 : NaN;
      fs.rmSync(log, { force: true });
      const db = new Database(state, { readonly: true });
      const found = db.prepare('SELECT COUNT(*) FROM objects').pluck().get();
      db.close();
      for (const suffix of ['', '-wal', '-shm']) fs.rmSync(state + suffix, { force: true });
      return { ...result, found };
    };
  }
  if (withRclone) {
    // rclone's s3 backend lists recursively with one flat listing (ListR) whether --fast-list is given or not;
    // --disable ListR makes it walk the directories (Delimiter=/), --checkers of them at once.
    const variants = [
      ['rclone lsf -R --fast-list', ['--fast-list']],
      ['rclone lsf -R', []],
      ['rclone lsf -R --disable ListR (--checkers 8)', ['--disable', 'ListR', '--checkers', '8']],
    ];
    for (const [name, extra] of variants) {
      tools[name] = async (run) => {
        const out = path.join(work, `rclone-${run}.txt`);
        const result = await timed(['sh', '-c', `rclone lsf -R --files-only ${extra.join(' ')} src:${BUCKET} > ${out}`], rcloneEnv);
        const found = fs.readFileSync(out, 'utf8').split('\n').filter(Boolean).length;
        fs.rmSync(out, { force: true });
        return { ...result, found };
      };
    }
  }
  const runs = [];
  try {
    const names = Object.keys(tools);
    // One unmeasured run of each first: the server's caches warm up (s3rver computes ETags on its first listing).
    for (const name of names) await tools[name]('warm');
    for (let r = 0; r < reps; r++) {
      for (const name of r % 2 === 0 ? names : [...names].reverse()) {
        const cpuOf = (pids) => pids.reduce((sum, pid) => sum + processCpuSeconds(pid), 0);
        const before = { server: cpuOf(server.pids), proxy: cpuOf([proxy.pid]) };
        const result = await tools[name](r);
        result.serverCpu = cpuOf(server.pids) - before.server;
        result.proxyCpu = cpuOf([proxy.pid]) - before.proxy;
        runs.push({ name, ...result });
        process.stderr.write(`  ${delay} ms  ${name.padEnd(46)} ${result.wall.toFixed(2)} s, cpu ${result.cpu.toFixed(2)} s, ${result.found} keys${result.code ? ` (exit ${result.code})` : ''}\n`);
      }
    }
  } finally {
    proxy.stop();
  }
  const one = runs.filter((r) => r.name === 's3migrate --list-concurrency 1');
  const base = median(one.map((r) => r.wall));
  const baseInside = median(one.map((r) => r.inside));
  lines.push('', `Behind a proxy adding ${delay} ms per request:`, '');
  lines.push(
    '| tool | wall s | client CPU s | server CPU s | proxy CPU s | keys found | speed-up vs s3migrate --list-concurrency 1 | catalog run s (log) | its speed-up |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const name of Object.keys(tools)) {
    const mine = runs.filter((r) => r.name === name);
    const wall = median(mine.map((r) => r.wall));
    const inside = median(mine.map((r) => r.inside));
    const insideCells = Number.isFinite(inside) ? `${inside.toFixed(2)} | ${(baseInside / inside).toFixed(2)}x` : ' | ';
    lines.push(`| ${name} | ${wall.toFixed(2)} | ${median(mine.map((r) => r.cpu)).toFixed(2)} | ${median(mine.map((r) => r.serverCpu)).toFixed(2)} | ${median(mine.map((r) => r.proxyCpu)).toFixed(2)} | ${[...new Set(mine.map((r) => r.found))].join(' / ')} | ${(base / wall).toFixed(2)}x | ${insideCells} |`);
  }
}

const loadAtStart = os.loadavg()[0];
try {
  for (const delay of delays) await benchAt(delay);
  // Other work on the machine stretches every run (each tool's CPU waits for a core): say how busy it was.
  lines.push('', `1-minute load average: ${loadAtStart.toFixed(1)} at the start, ${os.loadavg()[0].toFixed(1)} at the end (${os.cpus().length} cores).`);
} finally {
  await server.stop();
  fs.rmSync(work, { recursive: true, force: true });
}
const report = lines.join('\n');
console.log(report);
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
fs.mkdirSync(path.join(root, 'bench/results'), { recursive: true });
fs.writeFileSync(path.join(root, `bench/results/list-${serverKind}-${stamp}.md`), `${report}\n`);
