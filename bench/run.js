// npm run bench: s3migrate side by side with rclone (when on PATH) and a bare SDK loop, on two local s3rver
// endpoints, interleaved A B C then C B A so drift on a shared machine hits every tool alike.
// Usage: node bench/run.js [--reps 3] [--workloads W1,W2,W2m,W3,W4] [--w2-objects 64] [--w3-size 2] [--concurrency 32]
//          [--tools s3migrate,rclone,sdk-loop] [--variant LABEL=[DIR][;NAME=VALUE...]]... [--cpu-prof]
// --reps N: N runs of each tool per workload, interleaved A B C, C B A, A B C, ... (the median of N counts).
// --variant: one more s3migrate to compare in the same run, named s3migrate@LABEL: the bin/ and dist/ of
//   another checkout (DIR, built), and/or extra environment variables; ARGS=... is not one: its words go on
//   the copy's command line (e.g. --variant one=;ARGS=--workers 1). --cpu-prof: every s3migrate copy runs
//   under node --cpu-prof; each profile is summarised per object (bench/profile-summary.js) and kept.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { startS3rver, s3rverClient } from '../scripts/servers/s3rver.js';
import { flag, machineCpuSeconds, mainThreadWaitSeconds, processCpuSeconds, timed } from './measure.js';
import { formatSummary, summarise } from './profile-summary.js';
import { seed, startEtagProxy, workloads } from './workloads.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const flags = (name) => process.argv.flatMap((arg, i) => (arg === `--${name}` ? [process.argv[i + 1]] : []));
const reps = Number(flag('reps', '3'));
const concurrency = Number(flag('concurrency', '32'));
const selected = flag('workloads', 'W1,W2,W2m,W3,W4').split(',');
const cpuProf = process.argv.includes('--cpu-prof');
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const outDir = path.join(root, 'bench/results');
const profDir = path.join(outDir, `profiles-${stamp}`);
const w3Size = Math.round(parseFloat(flag('w3-size', '2')) * 1024 ** 3);
const w2Objects = Number(flag('w2-objects', '64'));
const MiB = 1024 * 1024;

function onPath(command) {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const baseEnv = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
delete baseEnv.AWS_CA_BUNDLE; // rclone 1.60 refuses it; the others do not need it for http endpoints

/** s3migrate catalog + copy from checkout `dir` (its bin/ and dist/), with `extraEnv` on top. */
const s3migrateTool = (dir, variantEnv, label) => async (src, dst, work, objectCount) => {
  const state = path.join(work, 'state.db');
  const { ARGS: extraArgs = '', ...extraEnv } = variantEnv;
  const env = {
    ...baseEnv,
    SOURCE_ENDPOINT: src,
    SOURCE_AWS_ACCESS_KEY_ID: 'S3RVER',
    SOURCE_AWS_SECRET_ACCESS_KEY: 'S3RVER',
    DEST_ENDPOINT: dst,
    DEST_AWS_ACCESS_KEY_ID: 'S3RVER',
    DEST_AWS_SECRET_ACCESS_KEY: 'S3RVER',
    ...extraEnv,
  };
  const bin = path.join(dir, 'bin/s3migrate.js');
  const catalog = await timed(['node', bin, 'catalog', '--from', 's3://src', '--state', state, '--quiet'], env);
  let prof = [];
  if (cpuProf) {
    const dirFor = path.join(profDir, `${label}-${path.basename(work)}`);
    fs.mkdirSync(dirFor, { recursive: true });
    prof = ['--cpu-prof', `--cpu-prof-dir=${dirFor}`];
  }
  const copy = await timed(
    ['node', ...prof, bin, 'copy', '--to', 's3://dst', '--state', state, '--quiet', '--concurrency', String(concurrency), ...extraArgs.split(' ').filter(Boolean)],
    env,
  );
  if (cpuProf) {
    const dirFor = prof[1].slice('--cpu-prof-dir='.length);
    for (const file of fs.readdirSync(dirFor).filter((f) => f.endsWith('.cpuprofile'))) {
      const summary = summarise(JSON.parse(fs.readFileSync(path.join(dirFor, file), 'utf8')));
      const table = formatSummary(summary, objectCount, copy.cpu, { user: copy.user, sys: copy.sys });
      fs.writeFileSync(path.join(dirFor, `${file}.summary.md`), `${table}\n`);
      process.stderr.write(`  profile of ${label} copy (CPU ${copy.cpu.toFixed(1)} s): ${path.relative(root, path.join(dirFor, file))}\n${table.replace(/^/gm, '    ')}\n`);
    }
  }
  return {
    wall: catalog.wall + copy.wall,
    cpu: catalog.cpu + copy.cpu,
    user: catalog.user + copy.user,
    sys: catalog.sys + copy.sys,
    rssMiB: Math.max(catalog.rssMiB, copy.rssMiB),
    code: catalog.code || copy.code,
    stderr: catalog.stderr + copy.stderr,
    catalogWall: catalog.wall,
    copyWall: copy.wall,
    copyCpu: copy.cpu,
  };
};

const tools = {
  s3migrate: s3migrateTool(root, {}, 's3migrate'),
  rclone: async (src, dst) => {
    const env = { ...baseEnv };
    for (const [name, endpoint] of [['SRC', src], ['DST', dst]]) {
      Object.assign(env, {
        [`RCLONE_CONFIG_${name}_TYPE`]: 's3',
        [`RCLONE_CONFIG_${name}_PROVIDER`]: 'Other',
        [`RCLONE_CONFIG_${name}_ENDPOINT`]: endpoint,
        [`RCLONE_CONFIG_${name}_ACCESS_KEY_ID`]: 'S3RVER',
        [`RCLONE_CONFIG_${name}_SECRET_ACCESS_KEY`]: 'S3RVER',
        [`RCLONE_CONFIG_${name}_FORCE_PATH_STYLE`]: 'true',
      });
    }
    const n = String(concurrency);
    return timed(
      ['rclone', 'copy', 'src:src', 'dst:dst', '--s3-no-head', '--s3-no-check-bucket', '--fast-list', '--checksum', '--transfers', n, '--checkers', n],
      env,
    );
  },
  'sdk-loop': (src, dst) => timed(['node', path.join(root, 'bench/sdk-loop.js'), src, 'src', dst, 'dst', String(concurrency)], baseEnv),
};
const onlyTools = flag('tools', '');
if (onlyTools) for (const name of Object.keys(tools)) if (!onlyTools.split(',').includes(name)) delete tools[name];
for (const spec of flags('variant')) {
  const [label, rest = ''] = spec.split(/=(.*)/s);
  const [dir, ...assignments] = rest.split(';');
  const extraEnv = Object.fromEntries(assignments.filter(Boolean).map((a) => a.split(/=(.*)/s).slice(0, 2)));
  tools[`s3migrate@${label}`] = s3migrateTool(dir ? path.resolve(dir) : root, extraEnv, `s3migrate@${label}`);
}
if (tools.rclone && !onPath('rclone')) {
  console.error('rclone is not on PATH (Debian package rclone): comparing with the SDK loop only');
  delete tools.rclone;
}

async function listing(endpoint, bucket) {
  const client = s3rverClient(endpoint);
  const items = new Map();
  let token;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const item of page.Contents ?? []) items.set(item.Key, `${item.Size}:${item.ETag}`);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return items;
}

function sameListing(a, b) {
  if (a.size !== b.size) return false;
  for (const [key, value] of a) if (b.get(key) !== value) return false;
  return true;
}

const median = (values) => {
  const sorted = values.filter(Number.isFinite).sort((x, y) => x - y);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

const runs = [];
const listWalls = {};
const defs = workloads({ w2Objects, w3Size });
for (const id of selected.filter((w) => defs[w])) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `s3migrate-bench-${id}-`));
  const { objects, title, partSize, multipartSourceEtags } = defs[id];
  const bytes = objects.reduce((sum, o) => sum + o.size, 0);
  const source = await startS3rver({ buckets: ['src'] });
  let proxy;
  try {
    process.stderr.write(`${id}: seeding ${title}...\n`);
    const multipartEtags = await seed(s3rverClient(source.endpoint), 'src', objects, { partSize });
    // What the destination must hold: the source's keys, sizes and real (whole-object MD5) ETags.
    const expected = await listing(source.endpoint, 'src');
    if (multipartSourceEtags) {
      // s3rver gives a multipart upload a whole-object MD5 ETag; real S3 (and Ceph RGW) give `<md5 of part
      // md5s>-N`. The tools read the source through a proxy that shows the S3 form (see workloads.js).
      proxy = await startEtagProxy(source.port, multipartEtags);
      process.stderr.write(`  source ETags through the proxy: ${[...multipartEtags.values()][0]} ...\n`);
    }
    const sourceEndpoint = proxy ? proxy.endpoint : source.endpoint;
    const serverPids = () => [source.pid, ...(proxy ? [proxy.pid] : [])];
    // Catalog's reference: bare ListObjectsV2 paging of the same bucket, timed the same way.
    const bareListings = [];
    for (let r = 0; r < Math.max(reps, 1) * 2; r += 1) {
      bareListings.push((await timed(['node', path.join(root, 'bench/list-only.js'), sourceEndpoint, 'src'], baseEnv)).wall);
    }
    listWalls[id] = median(bareListings);
    const names = Object.keys(tools);
    const order = [];
    for (let r = 0; r < reps; r += 1) order.push(...(r % 2 === 0 ? names : [...names].reverse()));
    // One unmeasured run first: the run right after seeding was its tool's slowest in 4 of 7 W2 benches
    // (16.1-17.1 s against 13.6-15.6 s), and it was always the first tool's (s3migrate's) run.
    for (const [i, tool] of [order[0], ...order].entries()) {
      const warmUp = i === 0;
      // What the seeding and the run before left in the page cache is written back now, not by the kernel's
      // flusher during this run (W2 writes 4 GiB a run): no run pays for another's writes.
      execFileSync('sync');
      const dest = await startS3rver({ buckets: ['dst'] });
      const runDir = fs.mkdtempSync(path.join(work, `${tool}-`));
      try {
        const cpuOf = (pids) => pids.reduce((sum, pid) => sum + processCpuSeconds(pid), 0);
        const before = { source: cpuOf(serverPids()), dest: cpuOf([dest.pid]), destWait: mainThreadWaitSeconds(dest.pid), sourceWait: mainThreadWaitSeconds(source.pid), machine: machineCpuSeconds() };
        const result = await tools[tool](sourceEndpoint, dest.endpoint, runDir, objects.length);
        const machine = machineCpuSeconds();
        // How busy the cores were, and how long each server's main thread waited for one: where a run's
        // wall time goes when the client's and the servers' CPU are alike.
        const coresBusy = (machine.busy - before.machine.busy) / result.wall;
        const destWait = mainThreadWaitSeconds(dest.pid) - before.destWait;
        const sourceWait = mainThreadWaitSeconds(source.pid) - before.sourceWait;
        // Apart as well as together: which side of the copy a tool's requests cost the servers.
        const sourceServerCpu = cpuOf(serverPids()) - before.source;
        const destServerCpu = cpuOf([dest.pid]) - before.dest;
        const serverCpu = sourceServerCpu + destServerCpu;
        const verified = result.code === 0 && sameListing(expected, await listing(dest.endpoint, 'dst'));
        if (warmUp) {
          process.stderr.write(`  (unmeasured warm-up: ${tool} ${result.wall.toFixed(1)} s${verified ? '' : ' NOT VERIFIED'})\n`);
          continue;
        }
        const run = {
          workload: id, tool, verified, ...result, serverCpu, sourceServerCpu, destServerCpu, coresBusy, destWait, sourceWait,
          objectsPerSecond: objects.length / result.wall,
          mibPerSecond: bytes / MiB / result.wall,
          cpuPerGiB: result.cpu / (bytes / 1024 ** 3),
          cpuMsPerObject: (result.cpu * 1000) / objects.length,
        };
        runs.push(run);
        process.stderr.write(
          `  ${tool.padEnd(9)} ${result.wall.toFixed(1)} s, ${run.objectsPerSecond.toFixed(1)} obj/s, ${run.mibPerSecond.toFixed(1)} MiB/s, ` +
            `cpu ${result.cpu.toFixed(1)} s (${run.cpuMsPerObject.toFixed(2)} ms/object; user ${result.user.toFixed(1)} s, sys ${result.sys.toFixed(1)} s), rss ${result.rssMiB.toFixed(0)} MiB, server cpu ${serverCpu.toFixed(1)} s (source ${sourceServerCpu.toFixed(1)}, destination ${destServerCpu.toFixed(1)}; waited for a core: source ${sourceWait.toFixed(1)} s, destination ${destWait.toFixed(1)} s), cores busy ${coresBusy.toFixed(2)}${verified ? '' : ' NOT VERIFIED'}\n`,
        );
        if (!verified && result.stderr) process.stderr.write(result.stderr);
      } finally {
        await dest.stop();
      }
    }
  } finally {
    await proxy?.stop();
    await source.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

const lines = [
  `Machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), ${Math.round(os.totalmem() / 1024 ** 3)} GiB, Node ${process.version}; ` +
    `two s3rver endpoints on 127.0.0.1 share the cores with the client. Concurrency ${concurrency}, medians of ${reps} interleaved run(s) per tool.`,
  '',
  '| workload | tool | wall s | objects/s | MiB/s | client CPU s | CPU ms/object | CPU s/GiB | peak RSS MiB | server CPU s | runs |',
  '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
];
const ratios = [];
for (const id of selected.filter((w) => defs[w])) {
  const perTool = {};
  for (const tool of Object.keys(tools)) {
    const mine = runs.filter((r) => r.workload === id && r.tool === tool && r.verified);
    if (mine.length === 0) continue;
    const m = (field) => median(mine.map((r) => r[field]));
    perTool[tool] = { ops: m('objectsPerSecond'), mibs: m('mibPerSecond'), cpu: m('cpu') };
    lines.push(
      `| ${id} ${defs[id].title} | ${tool} | ${m('wall').toFixed(1)} | ${m('objectsPerSecond').toFixed(1)} | ${m('mibPerSecond').toFixed(1)} | ` +
        `${m('cpu').toFixed(1)} | ${m('cpuMsPerObject').toFixed(2)} | ${m('cpuPerGiB').toFixed(2)} | ${m('rssMiB').toFixed(0)} | ${m('serverCpu').toFixed(1)} | ${mine.length} |`,
    );
  }
  for (const mine of Object.keys(perTool).filter((t) => t.startsWith('s3migrate'))) {
    for (const peer of ['rclone', 'sdk-loop']) {
      if (perTool[peer]) {
        ratios.push(
          `${id}: ${mine}/${peer} throughput ${(perTool[mine].mibs / perTool[peer].mibs).toFixed(2)}x, ` +
            `client CPU ${(perTool[mine].cpu / perTool[peer].cpu).toFixed(2)}x`,
        );
      }
    }
  }
}
for (const id of Object.keys(listWalls)) {
  const catalogWall = median(runs.filter((r) => r.workload === id && r.tool.startsWith('s3migrate')).map((r) => r.catalogWall));
  if (Number.isFinite(catalogWall)) ratios.push(`${id}: catalog ${catalogWall.toFixed(2)} s vs bare ListObjectsV2 paging ${listWalls[id].toFixed(2)} s (${(catalogWall / listWalls[id]).toFixed(2)}x)`);
}
if (ratios.length) lines.push('', ...ratios.map((r) => `- ${r}`));

if (selected.includes('W4')) {
  lines.push('', 'W4 catalog ingest (synthetic ListObjectsV2 pages through the real catalog code):', '');
  lines.push(execFileSync('node', [path.join(root, 'bench/catalog-ingest.js'), '--rows', '10000,100000,1000000'], { encoding: 'utf8' }).trim());
}

const report = lines.join('\n');
console.log(report);
fs.mkdirSync(outDir, { recursive: true });
fs.writeFileSync(path.join(outDir, `bench-${stamp}.json`), JSON.stringify({ concurrency, reps, runs }, null, 2));
fs.writeFileSync(path.join(outDir, `bench-${stamp}.md`), `${report}\n`);
console.error(`\nEvery run: bench/results/bench-${stamp}.json`);
