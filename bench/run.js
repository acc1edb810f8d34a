// npm run bench: s3migrate side by side with rclone (when on PATH) and a bare SDK loop, on two local s3rver
// endpoints, interleaved A B C then C B A so drift on a shared machine hits every tool alike.
// Usage: node bench/run.js [--reps 1] [--workloads W1,W2,W3,W4] [--w3-size 2] [--concurrency 32] [--tools s3migrate,rclone,sdk-loop]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { startS3rver, s3rverClient } from '../scripts/servers/s3rver.js';
import { processCpuSeconds, timed } from './measure.js';
import { seed, workloads } from './workloads.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const flag = (name, fallback) => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : fallback;
};
const reps = Number(flag('reps', '1'));
const concurrency = Number(flag('concurrency', '32'));
const selected = flag('workloads', 'W1,W2,W3,W4').split(',');
const w3Size = Math.round(parseFloat(flag('w3-size', '2')) * 1024 ** 3);
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

const tools = {
  s3migrate: async (src, dst, work) => {
    const state = path.join(work, 'state.db');
    const env = {
      ...baseEnv,
      SOURCE_ENDPOINT: src,
      SOURCE_AWS_ACCESS_KEY_ID: 'S3RVER',
      SOURCE_AWS_SECRET_ACCESS_KEY: 'S3RVER',
      DEST_ENDPOINT: dst,
      DEST_AWS_ACCESS_KEY_ID: 'S3RVER',
      DEST_AWS_SECRET_ACCESS_KEY: 'S3RVER',
    };
    const bin = path.join(root, 'bin/s3migrate.js');
    const catalog = await timed(['node', bin, 'catalog', '--from', 's3://src', '--state', state, '--quiet'], env);
    const copy = await timed(
      ['node', bin, 'copy', '--to', 's3://dst', '--state', state, '--quiet', '--concurrency', String(concurrency)],
      env,
    );
    return {
      wall: catalog.wall + copy.wall,
      cpu: catalog.cpu + copy.cpu,
      rssMiB: Math.max(catalog.rssMiB, copy.rssMiB),
      code: catalog.code || copy.code,
      stderr: catalog.stderr + copy.stderr,
      catalogWall: catalog.wall,
      copyWall: copy.wall,
    };
  },
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
const defs = workloads({ w3Size });
for (const id of selected.filter((w) => defs[w])) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `s3migrate-bench-${id}-`));
  const { objects, title } = defs[id];
  const bytes = objects.reduce((sum, o) => sum + o.size, 0);
  const source = await startS3rver({ buckets: ['src'] });
  try {
    process.stderr.write(`${id}: seeding ${title}...\n`);
    await seed(s3rverClient(source.endpoint), 'src', objects);
    const expected = await listing(source.endpoint, 'src');
    // Catalog's reference: bare ListObjectsV2 paging of the same bucket, timed the same way.
    const bareListings = [];
    for (let r = 0; r < Math.max(reps, 1) * 2; r += 1) {
      bareListings.push((await timed(['node', path.join(root, 'bench/list-only.js'), source.endpoint, 'src'], baseEnv)).wall);
    }
    listWalls[id] = median(bareListings);
    const names = Object.keys(tools);
    const order = [];
    for (let r = 0; r < reps; r += 1) order.push(...names, ...[...names].reverse());
    for (const tool of order) {
      const dest = await startS3rver({ buckets: ['dst'] });
      const runDir = fs.mkdtempSync(path.join(work, `${tool}-`));
      try {
        const serverBefore = processCpuSeconds(source.pid) + processCpuSeconds(dest.pid);
        const result = await tools[tool](source.endpoint, dest.endpoint, runDir);
        const serverCpu = processCpuSeconds(source.pid) + processCpuSeconds(dest.pid) - serverBefore;
        const verified = result.code === 0 && sameListing(expected, await listing(dest.endpoint, 'dst'));
        const run = {
          workload: id, tool, verified, ...result, serverCpu,
          objectsPerSecond: objects.length / result.wall,
          mibPerSecond: bytes / MiB / result.wall,
          cpuPerGiB: result.cpu / (bytes / 1024 ** 3),
        };
        runs.push(run);
        process.stderr.write(
          `  ${tool.padEnd(9)} ${result.wall.toFixed(1)} s, ${run.objectsPerSecond.toFixed(1)} obj/s, ${run.mibPerSecond.toFixed(1)} MiB/s, ` +
            `cpu ${result.cpu.toFixed(1)} s, rss ${result.rssMiB.toFixed(0)} MiB, server cpu ${serverCpu.toFixed(1)} s${verified ? '' : ' NOT VERIFIED'}\n`,
        );
        if (!verified && result.stderr) process.stderr.write(result.stderr);
      } finally {
        await dest.stop();
      }
    }
  } finally {
    await source.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

const lines = [
  `Machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), ${Math.round(os.totalmem() / 1024 ** 3)} GiB, Node ${process.version}; ` +
    `two s3rver endpoints on 127.0.0.1 share the cores with the client. Concurrency ${concurrency}, ${reps} rep(s) interleaved.`,
  '',
  '| workload | tool | wall s | objects/s | MiB/s | client CPU s | CPU s/GiB | peak RSS MiB | server CPU s | runs |',
  '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
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
        `${m('cpu').toFixed(1)} | ${m('cpuPerGiB').toFixed(2)} | ${m('rssMiB').toFixed(0)} | ${m('serverCpu').toFixed(1)} | ${mine.length} |`,
    );
  }
  for (const peer of ['rclone', 'sdk-loop']) {
    if (perTool.s3migrate && perTool[peer]) {
      ratios.push(
        `${id}: s3migrate/${peer} throughput ${(perTool.s3migrate.mibs / perTool[peer].mibs).toFixed(2)}x, ` +
          `client CPU ${(perTool.s3migrate.cpu / perTool[peer].cpu).toFixed(2)}x`,
      );
    }
  }
}
for (const id of Object.keys(listWalls)) {
  const catalogWall = median(runs.filter((r) => r.workload === id && r.tool === 's3migrate').map((r) => r.catalogWall));
  ratios.push(`${id}: catalog ${catalogWall.toFixed(2)} s vs bare ListObjectsV2 paging ${listWalls[id].toFixed(2)} s (${(catalogWall / listWalls[id]).toFixed(2)}x)`);
}
if (ratios.length) lines.push('', ...ratios.map((r) => `- ${r}`));

if (selected.includes('W4')) {
  lines.push('', 'W4 catalog ingest (synthetic ListObjectsV2 pages through the real catalog code):', '');
  lines.push(execFileSync('node', [path.join(root, 'bench/catalog-ingest.js'), '--rows', '10000,100000,1000000'], { encoding: 'utf8' }).trim());
}

const report = lines.join('\n');
console.log(report);
const outDir = path.join(root, 'bench/results');
fs.mkdirSync(outDir, { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
fs.writeFileSync(path.join(outDir, `bench-${stamp}.json`), JSON.stringify({ concurrency, reps, runs }, null, 2));
fs.writeFileSync(path.join(outDir, `bench-${stamp}.md`), `${report}\n`);
console.error(`\nEvery run: bench/results/bench-${stamp}.json`);
