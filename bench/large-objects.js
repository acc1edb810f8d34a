// Large objects: s3migrate beside rclone on a few big objects, on s3rver or a throwaway Ceph RGW, optionally
// behind a per-connection bandwidth cap, and server-side copy against streaming on one endpoint.
// Usage: node bench/large-objects.js [--server s3rver|rgw] [--objects 1x2GiB[,1000x100KiB...]] [--reps 3]
//          [--tools s3migrate,rclone,s3migrate+part-concurrency=1,s3migrate+server-side=always,...]
//          [--cap MIB_PER_S] [--cpu-prof] [--keep-going]
// A tool `s3migrate+FLAG=VALUE[+FLAG=VALUE]` is s3migrate's copy with `--FLAG VALUE` added. Runs are
// interleaved A B C / C B A / ... on a fresh destination every time: s3rver starts a new destination server;
// RGW (one cluster, one user, source and destination buckets on the one endpoint) gets a new destination
// bucket, and the previous one is purged and garbage-collected so the cluster's disk does not fill.
// s3migrate runs as `catalog` then `copy`: both are timed, and the table's wall time and rates are the
// copy's (the catalog's wall is a column of its own). With --cap, each side is reached through
// bench/cap-proxy.js (every connection capped at MIB_PER_S each way), and "to Complete" is the time from
// the command's start to the CompleteMultipartUpload request seen by the destination's proxy.
// Peak RSS: GNU time's (the largest single process) and the summed RSS of every process the tool started
// (a coordinator and its workers), sampled every 200 ms.
// Every run is checked byte for byte: keys and sizes; then an ETag equal to the source's where both are
// the same kind (plain MD5, or a multipart ETag of the same parts), else the destination object read whole
// and its MD5 compared with the source's (read whole once after seeding).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { startS3rver } from '../scripts/servers/s3rver.js';
import { flag, processCpuSeconds, startHelper, timed } from './measure.js';
import { formatSummary, summarise } from './profile-summary.js';
import { seed } from './workloads.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const serverKind = flag('server', 's3rver');
const reps = Number(flag('reps', '3'));
const cap = flag('cap', undefined);
const cpuProf = process.argv.includes('--cpu-prof');
const toolNames = flag('tools', 's3migrate,rclone').split(',');
const MiB = 1024 * 1024;
const UNITS = { B: 1, KiB: 1024, MiB, GiB: 1024 * MiB };
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const outDir = path.join(root, 'bench/results');
const profDir = path.join(outDir, `profiles-large-${stamp}`);

/** `1x2GiB` -> { count, size, label }. */
function parseGroup(text) {
  const match = /^(\d+)x(\d+(?:\.\d+)?)(B|KiB|MiB|GiB)$/.exec(text);
  if (!match) throw new Error(`--objects: expected COUNTxSIZE such as 1x2GiB or 1000x100KiB, got ${text}`);
  return { count: Number(match[1]), size: Math.round(Number(match[2]) * UNITS[match[3]]), label: `${Number(match[1]).toLocaleString('en-US')} x ${match[2]} ${match[3]}` };
}
const groups = flag('objects', '1x2GiB').split(',').map(parseGroup);

const baseEnv = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
delete baseEnv.AWS_CA_BUNDLE; // rclone 1.60 refuses it

function clientFor(side) {
  return new S3Client({
    endpoint: side.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: side.credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { httpAgent: new http.Agent({ keepAlive: true, maxSockets: 64 }) },
  });
}

// ---- servers -------------------------------------------------------------------------------------------

/** s3rver: a source server for the whole run, a new destination server per run. */
async function s3rverServers() {
  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  const source = await startS3rver({ buckets: ['src'] });
  return {
    source: { endpoint: source.endpoint, bucket: 'src', credentials },
    sourcePids: () => [source.pid],
    async freshDestination() {
      const dest = await startS3rver({ buckets: ['dst'] });
      return { side: { endpoint: dest.endpoint, bucket: 'dst', credentials }, pids: () => [dest.pid], drop: () => dest.stop() };
    },
    stop: () => source.stop(),
  };
}

/** One throwaway Ceph cluster (test/servers/rgw.sh) in a directory of our own, ports picked free by the script. */
async function rgwServers() {
  const script = path.join(root, 'test/servers/rgw.sh');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 's3migrate-bench-large-rgw-'));
  const stopCluster = () => {
    try {
      execFileSync('bash', [script, 'stop', dir], { stdio: 'ignore' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
  process.once('exit', stopCluster);
  process.stderr.write(`starting Ceph RGW in ${dir}...\n`);
  const endpoint = execFileSync('bash', [script, 'start', dir], { encoding: 'utf8' }).trim().split('\n').pop();
  const credentials = { accessKeyId: 'BENCHLARGEACCESSKEY1', secretAccessKey: 'bench-large-secret-key-00000000000000000' };
  execFileSync('bash', [script, 'create-user', dir, 'bench-large', credentials.accessKeyId, credentials.secretAccessKey]);
  const pids = () =>
    fs
      .readdirSync(path.join(dir, 'run'))
      .filter((f) => f.endsWith('.pid'))
      .map((f) => Number(fs.readFileSync(path.join(dir, 'run', f), 'utf8').trim()));
  const client = clientFor({ endpoint, credentials });
  await client.send(new CreateBucketCommand({ Bucket: 'src' }));
  let n = 0;
  const admin = (...args) => execFileSync('radosgw-admin', ['-c', path.join(dir, 'ceph.conf'), ...args], { stdio: 'ignore' });
  return {
    source: { endpoint, bucket: 'src', credentials },
    sourcePids: pids,
    async freshDestination() {
      const bucket = `dst-${(n += 1)}`;
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      return {
        side: { endpoint, bucket, credentials },
        pids: () => [], // the cluster's processes are counted once, with the source's
        drop: async () => {
          admin('bucket', 'rm', `--bucket=${bucket}`, '--purge-objects');
          admin('gc', 'process', '--include-all');
        },
      };
    },
    stop: async () => {
      client.destroy();
      process.off('exit', stopCluster);
      stopCluster();
    },
  };
}

/** bench/cap-proxy.js in front of `endpoint`: { endpoint, pid, requests (file), stop }. */
async function startCapProxy(endpoint, rate, name) {
  const requests = path.join(os.tmpdir(), `s3migrate-bench-cap-${process.pid}-${name}.jsonl`);
  fs.rmSync(requests, { force: true });
  const { child, info } = await startHelper([path.join(root, 'bench/cap-proxy.js'), endpoint, String(rate), '--requests', requests]);
  return {
    endpoint: `http://127.0.0.1:${info.port}`,
    pid: child.pid,
    requests,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin.end();
      await exited;
      fs.rmSync(requests, { force: true });
    },
  };
}

/** Milliseconds since epoch of the last CompleteMultipartUpload (POST ...?uploadId=) the proxy saw after `since`. */
function completeSentAt(requestsFile, since) {
  if (!fs.existsSync(requestsFile)) return undefined;
  const lines = fs.readFileSync(requestsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const completes = lines.filter((l) => l.t >= since && /^POST \S*[?&]uploadId=/.test(l.line));
  return completes.length ? Math.max(...completes.map((l) => l.t)) : undefined;
}

// ---- tools ---------------------------------------------------------------------------------------------

/** s3migrate catalog + copy with `extra` copy flags; rates are the copy's. */
function s3migrate(extra, label) {
  return async (src, dst, work) => {
    const state = path.join(work, 'state.db');
    const env = {
      ...baseEnv,
      SOURCE_ENDPOINT: src.endpoint,
      SOURCE_AWS_ACCESS_KEY_ID: src.credentials.accessKeyId,
      SOURCE_AWS_SECRET_ACCESS_KEY: src.credentials.secretAccessKey,
      SOURCE_AWS_REGION: 'us-east-1',
      DEST_ENDPOINT: dst.endpoint,
      DEST_AWS_ACCESS_KEY_ID: dst.credentials.accessKeyId,
      DEST_AWS_SECRET_ACCESS_KEY: dst.credentials.secretAccessKey,
      DEST_AWS_REGION: 'us-east-1',
    };
    const bin = path.join(root, 'bin/s3migrate.js');
    const catalog = await timed(['node', bin, 'catalog', '--from', `s3://${src.bucket}`, '--state', state, '--quiet'], env);
    if (catalog.code !== 0) return { ...catalog, catalogWall: catalog.wall };
    let prof = [];
    let dirFor;
    if (cpuProf) {
      dirFor = path.join(profDir, `${label}-${path.basename(work)}`);
      fs.mkdirSync(dirFor, { recursive: true });
      prof = ['--cpu-prof', `--cpu-prof-dir=${dirFor}`];
    }
    const started = Date.now();
    const copy = await timed(['node', ...prof, bin, 'copy', '--to', `s3://${dst.bucket}`, '--state', state, '--quiet', ...extra], env);
    if (dirFor) {
      for (const file of fs.readdirSync(dirFor).filter((f) => f.endsWith('.cpuprofile'))) {
        const summary = summarise(JSON.parse(fs.readFileSync(path.join(dirFor, file), 'utf8')));
        const table = formatSummary(summary, 1, copy.cpu, { user: copy.user, sys: copy.sys });
        fs.writeFileSync(path.join(dirFor, `${file}.summary.md`), `${table}\n`);
        process.stderr.write(`  profile of ${label} copy (CPU ${copy.cpu.toFixed(1)} s): ${path.relative(root, path.join(dirFor, file))}\n${table.replace(/^/gm, '    ')}\n`);
      }
    }
    return { ...copy, started, catalogWall: catalog.wall };
  };
}

async function rclone(src, dst) {
  const env = { ...baseEnv };
  for (const [name, side] of [['SRC', src], ['DST', dst]]) {
    Object.assign(env, {
      [`RCLONE_CONFIG_${name}_TYPE`]: 's3',
      [`RCLONE_CONFIG_${name}_PROVIDER`]: 'Other',
      [`RCLONE_CONFIG_${name}_ENDPOINT`]: side.endpoint,
      [`RCLONE_CONFIG_${name}_ACCESS_KEY_ID`]: side.credentials.accessKeyId,
      [`RCLONE_CONFIG_${name}_SECRET_ACCESS_KEY`]: side.credentials.secretAccessKey,
      [`RCLONE_CONFIG_${name}_FORCE_PATH_STYLE`]: 'true',
    });
  }
  // Two remotes, so rclone streams through itself even where both are one endpoint; its multipart defaults
  // (1.60: --s3-upload-cutoff 200Mi, --s3-chunk-size 5Mi, --s3-upload-concurrency 4) are left alone.
  const started = Date.now();
  const result = await timed(
    ['rclone', 'copy', `src:${src.bucket}`, `dst:${dst.bucket}`, '--s3-no-head', '--s3-no-check-bucket', '--fast-list', '--checksum', '--transfers', '32', '--checkers', '32'],
    env,
  );
  return { ...result, started };
}

const tools = {};
for (const name of toolNames) {
  if (name === 'rclone') tools[name] = rclone;
  else if (name === 's3migrate' || name.startsWith('s3migrate+')) {
    const extra = name
      .split('+')
      .slice(1)
      .flatMap((f) => {
        const [k, v] = f.split('=');
        return v === undefined ? [`--${k}`] : [`--${k}`, v];
      });
    tools[name] = s3migrate(extra, name.replace(/[^\w.=-]+/g, '_'));
  } else throw new Error(`unknown tool ${name}`);
}

// ---- checks --------------------------------------------------------------------------------------------

async function listing(side) {
  const client = clientFor(side);
  const items = new Map();
  let token;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: side.bucket, ContinuationToken: token }));
    for (const item of page.Contents ?? []) items.set(item.Key, { size: item.Size, etag: item.ETag.replace(/"/g, '') });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  client.destroy();
  return items;
}

async function md5Of(client, bucket, key) {
  const answer = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const hash = createHash('md5');
  for await (const chunk of answer.Body) hash.update(chunk);
  return hash.digest('hex');
}

/** The source's MD5 of every object whose ETag is not its MD5 (read whole once). */
async function sourceMd5s(source, items) {
  const client = clientFor(source);
  const md5s = new Map();
  for (const [key, { etag }] of items) md5s.set(key, /^[0-9a-f]{32}$/.test(etag) ? etag : await md5Of(client, source.bucket, key));
  client.destroy();
  return md5s;
}

/** { ok, how }: every key there with its size, and its bytes proven by ETag or by a whole read. */
async function check(expected, md5s, dest) {
  const got = await listing(dest);
  if (got.size !== expected.size) return { ok: false, how: `${got.size} objects, expected ${expected.size}` };
  const client = clientFor(dest);
  let byEtag = 0;
  let byRead = 0;
  try {
    for (const [key, want] of expected) {
      const have = got.get(key);
      if (!have || have.size !== want.size) return { ok: false, how: `${key}: missing or of another size` };
      if (have.etag === want.etag) {
        byEtag += 1;
        continue;
      }
      if (/^[0-9a-f]{32}$/.test(have.etag)) {
        if (have.etag !== md5s.get(key)) return { ok: false, how: `${key}: ETag ${have.etag}, source MD5 ${md5s.get(key)}` };
        byEtag += 1;
        continue;
      }
      const md5 = await md5Of(client, dest.bucket, key);
      if (md5 !== md5s.get(key)) return { ok: false, how: `${key}: read MD5 ${md5}, source MD5 ${md5s.get(key)}` };
      byRead += 1;
    }
  } finally {
    client.destroy();
  }
  return { ok: true, how: `${byEtag} by ETag, ${byRead} read whole` };
}

/**
 * Samples the summed RSS of this process's descendants (the tool under test and any worker processes it
 * starts; `exclude`: servers and proxies) every 200 ms: GNU time's peak RSS is that of the largest single
 * process, not of a coordinator and its workers together. stop() resolves the peak in MiB.
 */
function treeRss(exclude) {
  let peak = 0;
  const sample = () => {
    const parents = new Map();
    const rss = new Map();
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        parents.set(Number(entry), Number(fields[1]));
        rss.set(Number(entry), Number(fields[21]) * 4096);
      } catch {
        // gone meanwhile
      }
    }
    const skip = new Set(exclude());
    let total = 0;
    for (const [pid, bytes] of rss) {
      if (pid === process.pid || skip.has(pid)) continue;
      let up = parents.get(pid);
      while (up !== undefined && up !== process.pid && up > 1 && !skip.has(up)) up = parents.get(up);
      if (up === process.pid) total += bytes;
    }
    peak = Math.max(peak, total);
  };
  const timer = setInterval(sample, 200);
  return () => {
    clearInterval(timer);
    return peak / MiB;
  };
}

// ---- run -----------------------------------------------------------------------------------------------

const median = (values) => {
  const sorted = values.filter(Number.isFinite).sort((x, y) => x - y);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

const servers = serverKind === 'rgw' ? await rgwServers() : await s3rverServers();
const runs = [];
const work = fs.mkdtempSync(path.join(os.tmpdir(), 's3migrate-bench-large-'));
let sourceProxy;
try {
  for (const [g, group] of groups.entries()) {
    const prefix = `g${g}/`;
    const objects = Array.from({ length: group.count }, (_, i) => ({ key: `${prefix}obj-${String(i).padStart(5, '0')}.bin`, size: group.size }));
    process.stderr.write(`${group.label}: seeding into ${serverKind}...\n`);
    // Each group under its own prefix of one source bucket; a run copies the whole bucket, so groups are
    // seeded and run one after the other, each previous group's objects deleted first.
    const seedClient = clientFor(servers.source);
    await seed(seedClient, servers.source.bucket, objects);
    seedClient.destroy();
    const all = await listing(servers.source);
    const expected = new Map([...all].filter(([key]) => key.startsWith(prefix)));
    if (expected.size !== all.size) throw new Error('the source bucket holds other objects');
    const md5s = await sourceMd5s(servers.source, expected);
    const bytes = objects.reduce((sum, o) => sum + o.size, 0);
    sourceProxy = cap ? await startCapProxy(servers.source.endpoint, cap, 'source') : undefined;
    const source = sourceProxy ? { ...servers.source, endpoint: sourceProxy.endpoint } : servers.source;
    const names = Object.keys(tools);
    const order = [];
    for (let r = 0; r < reps; r += 1) order.push(...(r % 2 === 0 ? names : [...names].reverse()));
    for (const tool of order) {
      const fresh = await servers.freshDestination();
      const destProxy = cap ? await startCapProxy(fresh.side.endpoint, cap, 'dest') : undefined;
      const dest = destProxy ? { ...fresh.side, endpoint: destProxy.endpoint } : fresh.side;
      const runDir = fs.mkdtempSync(path.join(work, 'run-'));
      const pids = () => [...servers.sourcePids(), ...fresh.pids()];
      const cpuNow = () => pids().reduce((sum, pid) => sum + processCpuSeconds(pid), 0);
      try {
        const before = cpuNow();
        const stopRss = treeRss(() => [...pids(), sourceProxy?.pid, destProxy?.pid]);
        const result = await tools[tool](source, dest, runDir);
        const treeRssMiB = stopRss();
        const serverCpu = cpuNow() - before;
        const complete = destProxy && completeSentAt(destProxy.requests, result.started);
        const toComplete = complete ? (complete - result.started) / 1000 : NaN;
        const verdict = result.code === 0 ? await check(expected, md5s, fresh.side) : { ok: false, how: `exit ${result.code}` };
        const run = {
          group: group.label, tool, ok: verdict.ok, how: verdict.how, wall: result.wall, cpu: result.cpu, user: result.user, sys: result.sys,
          rssMiB: result.rssMiB, treeRssMiB, serverCpu, catalogWall: result.catalogWall, toComplete,
          objectsPerSecond: group.count / result.wall, mibPerSecond: bytes / MiB / result.wall,
          mibPerSecondToComplete: bytes / MiB / toComplete, cpuPerGiB: result.cpu / (bytes / 1024 ** 3),
        };
        runs.push(run);
        process.stderr.write(
          `  ${tool.padEnd(34)} ${run.wall.toFixed(1)} s, ${run.objectsPerSecond.toFixed(1)} obj/s, ${run.mibPerSecond.toFixed(1)} MiB/s` +
            `${Number.isFinite(toComplete) ? ` (to Complete ${toComplete.toFixed(1)} s, ${run.mibPerSecondToComplete.toFixed(1)} MiB/s)` : ''}, ` +
            `cpu ${run.cpu.toFixed(1)} s (${run.cpuPerGiB.toFixed(2)} s/GiB; user ${run.user.toFixed(1)}, sys ${run.sys.toFixed(1)}), rss ${run.rssMiB.toFixed(0)} MiB (all processes ${treeRssMiB.toFixed(0)}), ` +
            `server cpu ${serverCpu.toFixed(1)} s${run.catalogWall !== undefined ? `, catalog ${run.catalogWall.toFixed(1)} s` : ''}; ${verdict.ok ? 'verified' : 'NOT VERIFIED'}: ${verdict.how}\n`,
        );
        if (!verdict.ok && result.stderr) process.stderr.write(result.stderr);
      } finally {
        await destProxy?.stop();
        await fresh.drop();
      }
    }
    await sourceProxy?.stop();
    sourceProxy = undefined;
    // Room for the next group (and the disk): the source objects go.
    if (groups.length > g + 1) {
      const { DeleteObjectsCommand } = await import('@aws-sdk/client-s3');
      const client = clientFor(servers.source);
      const keys = [...expected.keys()];
      for (let i = 0; i < keys.length; i += 1000) {
        await client.send(new DeleteObjectsCommand({ Bucket: servers.source.bucket, Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })) } }));
      }
      client.destroy();
    }
  }
} finally {
  await sourceProxy?.stop();
  await servers.stop();
  fs.rmSync(work, { recursive: true, force: true });
}

const lines = [
  `Machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), ${Math.round(os.totalmem() / 1024 ** 3)} GiB, Node ${process.version}, load average ${os.loadavg()[0].toFixed(1)} at the end; ` +
    `${serverKind}${cap ? `, every connection capped at ${cap} MiB/s each way` : ''}; medians of ${reps} interleaved run(s) per tool. s3migrate: the copy command (catalog apart).`,
  '',
  `| objects | tool | wall s | objects/s | MiB/s |${cap ? ' to Complete s | MiB/s to Complete |' : ''} client CPU s | CPU s/GiB | peak RSS MiB | all processes MiB | server CPU s | catalog s | runs verified |`,
  `| --- | --- | ---: | ---: | ---: |${cap ? ' ---: | ---: |' : ''} ---: | ---: | ---: | ---: | ---: | ---: | ---: |`,
];
for (const group of groups) {
  for (const tool of Object.keys(tools)) {
    const all = runs.filter((r) => r.group === group.label && r.tool === tool);
    const mine = all.filter((r) => r.ok);
    if (all.length === 0) continue;
    const m = (field) => median(mine.map((r) => r[field]));
    const f = (v, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : '');
    lines.push(
      `| ${group.label} | ${tool} | ${f(m('wall'))} | ${f(m('objectsPerSecond'))} | ${f(m('mibPerSecond'))} |` +
        `${cap ? ` ${f(m('toComplete'))} | ${f(m('mibPerSecondToComplete'))} |` : ''} ${f(m('cpu'))} | ${f(m('cpuPerGiB'), 2)} | ${f(m('rssMiB'), 0)} | ${f(m('treeRssMiB'), 0)} | ` +
        `${f(m('serverCpu'))} | ${f(m('catalogWall'))} | ${mine.length}/${all.length} |`,
    );
  }
}
const report = lines.join('\n');
console.log(report);
fs.mkdirSync(outDir, { recursive: true });
fs.writeFileSync(path.join(outDir, `large-${serverKind}-${stamp}.json`), JSON.stringify({ argv: process.argv.slice(2), runs }, null, 2));
fs.writeFileSync(path.join(outDir, `large-${serverKind}-${stamp}.md`), `${report}\n`);
console.error(`\nEvery run: bench/results/large-${serverKind}-${stamp}.json`);
