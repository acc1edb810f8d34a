// Summarises a V8 .cpuprofile (node --cpu-prof) by where the CPU went: SDK middleware and serde, signing,
// HTTP, streams, hashing, SQLite, our own code under dist/, GC, idle. Self time of every sample is charged
// to a category by the script URL of its frame; native frames (no URL: crypto digests, better-sqlite3
// statements, socket writes) are charged to the nearest caller that has one, so a Hash.update called from
// node:internal/crypto counts as hashing and a Statement.run called from dist/src/state as SQLite.
// Usage: node bench/profile-summary.js FILE.cpuprofile [--objects N] [--cpu SECONDS | --user S --sys S] [--top N] [--json]
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

const CATEGORIES = [
  // [category, test on the frame's URL (or null for special frames)]
  ['SDK signing', (u) => /node_modules\/@smithy\/(signature-v4|hash-node)|node_modules\/@aws-sdk\/signature-v4-multi-region/.test(u)],
  ['SDK credentials', (u) => /node_modules\/@aws-sdk\/credential-provider|node_modules\/@smithy\/credential-provider/.test(u)],
  ['SDK HTTP handler', (u) => /node_modules\/@smithy\/node-http-handler/.test(u)],
  ['SDK middleware + serde', (u) => /node_modules\/(@smithy|@aws-sdk|@aws-crypto|fast-xml-parser|tslib|bowser|strnum)\//.test(u)],
  ['SQLite (better-sqlite3)', (u) => /node_modules\/better-sqlite3\/|\/dist\/(src\/)?state\//.test(u)],
  ['own code: S3 layer (dist/s3/)', (u) => /\/dist\/(src\/)?s3\//.test(u)],
  ['own code: engine and rest (dist/)', (u) => /\/dist\//.test(u)],
  ['hashing (node:crypto)', (u) => /^node:internal\/crypto\//.test(u)],
  ['HTTP (node:http, net, undici)', (u) => /^node:(_http_|http|https|net|tls|internal\/http|internal\/net|internal\/deps\/undici|internal\/stream_base|internal\/dns|dns)|node_modules\/undici\//.test(u)],
  ['streams', (u) => /^node:(stream|internal\/streams|internal\/webstreams)/.test(u)],
  ['timers, promises, events', (u) => /^node:(timers|internal\/timers|events|internal\/event_target|internal\/process\/task_queues|internal\/abort_controller|internal\/async_hooks)/.test(u)],
  ['other node internals', (u) => /^node:/.test(u)],
  ['other dependencies', (u) => /node_modules\//.test(u)],
];
// Native frames that are the socket write system calls themselves: the profiler samples by wall clock, and
// on busy cores a process is often descheduled inside them, so they are shown (and scaled) apart.
const SYSCALL_FRAMES = new Set(['writev', 'writeLatin1String', 'writeBuffer', 'writeUtf8String', 'writeAsciiString']);
export const SYSCALLS = 'socket writes (system calls)';
const SPECIAL = { '(garbage collector)': 'GC', '(idle)': 'idle', '(program)': 'program (V8/native, unattributed)', '(root)': 'program (V8/native, unattributed)' };

function categoryOf(url) {
  for (const [name, test] of CATEGORIES) if (test(url)) return name;
  return 'other';
}

export function summarise(profile) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const categoryCache = new Map();
  const categoryOfNode = (id) => {
    if (categoryCache.has(id)) return categoryCache.get(id);
    const node = byId.get(id);
    const { functionName, url } = node.callFrame;
    let category;
    if (SPECIAL[functionName] && !url) category = SPECIAL[functionName];
    else if (!url && SYSCALL_FRAMES.has(functionName)) category = SYSCALLS;
    else if (url) {
      category = categoryOf(url);
      // node:crypto working for the signer (HMACs, the payload SHA-256) is signing, not content hashing.
      if (category === 'hashing (node:crypto)') {
        let up = parent.get(id);
        while (up !== undefined && (!byId.get(up).callFrame.url || byId.get(up).callFrame.url.startsWith('node:internal/crypto/'))) up = parent.get(up);
        if (up !== undefined && categoryOfNode(up).startsWith('SDK')) category = 'SDK signing';
      }
    }
    else {
      // A native frame: charge it to the nearest caller with a URL.
      let up = parent.get(id);
      while (up !== undefined && !byId.get(up).callFrame.url && !SPECIAL[byId.get(up).callFrame.functionName]) up = parent.get(up);
      category = up === undefined || SPECIAL[byId.get(up).callFrame.functionName] ? 'program (V8/native, unattributed)' : categoryOfNode(up);
    }
    categoryCache.set(id, category);
    return category;
  };
  const micros = new Map();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i += 1) {
    // timeDeltas[i] is the time before sample i; charge it to the sample that ends the interval.
    const delta = deltas[i + 1] ?? 0;
    const category = categoryOfNode(samples[i]);
    micros.set(category, (micros.get(category) ?? 0) + Math.max(0, delta));
  }
  const total = [...micros.values()].reduce((a, b) => a + b, 0);
  const idle = micros.get('idle') ?? 0;
  return {
    totalMs: total / 1000,
    busyMs: (total - idle) / 1000,
    categories: [...micros.entries()].map(([name, us]) => ({ name, ms: us / 1000 })).sort((a, b) => b.ms - a.ms),
    top: (n) => {
      const perFrame = new Map();
      for (let i = 0; i < samples.length; i += 1) {
        const { functionName, url, lineNumber } = byId.get(samples[i]).callFrame;
        const name = `${functionName || '(anonymous)'} ${url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/dist\//, 'dist/')}:${lineNumber + 1} [${categoryOfNode(samples[i])}]`;
        perFrame.set(name, (perFrame.get(name) ?? 0) + Math.max(0, deltas[i + 1] ?? 0));
      }
      return [...perFrame.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, us]) => ({ name, ms: us / 1000 }));
    },
  };
}

/**
 * A markdown table. The profiler samples the main thread by wall clock, so on a machine whose cores are
 * busy (the servers share them) "busy" overstates CPU: with `cpuSeconds` (the process's measured CPU) the
 * per-object column is the category's share of that measured CPU.
 */
export function formatSummary(summary, objects, cpuSeconds, split) {
  const lines = [];
  // With the user/sys split, the socket write calls are scaled to the system time and the rest to the user
  // time (the other system calls, reads and epoll, are small); otherwise everything to the measured total.
  const syscallMs = summary.categories.find((c) => c.name === SYSCALLS)?.ms ?? 0;
  const userScale = split ? (split.user * 1000) / Math.max(1, summary.busyMs - syscallMs) : undefined;
  const sysScale = split ? (split.sys * 1000) / Math.max(1, syscallMs) : undefined;
  const uniform = cpuSeconds ? (cpuSeconds * 1000) / summary.busyMs : 1;
  const scaleOf = (name) => (split ? (name === SYSCALLS ? sysScale : userScale) : uniform);
  const per = objects ? ` | ms/object${cpuSeconds ? ' (of measured CPU)' : ''}` : '';
  lines.push(`| category | sampled ms | % of busy${per} |`, `| --- | ---: | ---: |${objects ? ' ---: |' : ''}`);
  for (const { name, ms } of summary.categories) {
    const share = name === 'idle' ? '' : ((ms / summary.busyMs) * 100).toFixed(1);
    const perObject = name === 'idle' ? '' : ((ms * scaleOf(name)) / objects).toFixed(3);
    lines.push(`| ${name} | ${ms.toFixed(0)} | ${share} |${objects ? ` ${perObject} |` : ''}`);
  }
  const busyPerObject = split ? ((split.user + split.sys) * 1000) / objects : (summary.busyMs * uniform) / objects;
  lines.push(`| **busy (all but idle)** | ${summary.busyMs.toFixed(0)} | 100 |${objects ? ` ${busyPerObject.toFixed(3)} |` : ''}`);
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  const args = process.argv.slice(2);
  const file = args.find((a, i) => !a.startsWith('--') && !['--objects', '--cpu', '--user', '--sys', '--top'].includes(args[i - 1]));
  const valueOf = (name) => (args.indexOf(name) >= 0 ? Number(args[args.indexOf(name) + 1]) : undefined);
  const objects = valueOf('--objects');
  const cpuSeconds = valueOf('--cpu');
  const user = valueOf('--user');
  const sys = valueOf('--sys');
  const top = valueOf('--top');
  if (!file) {
    console.error('usage: node bench/profile-summary.js FILE.cpuprofile [--objects N] [--cpu SECONDS | --user S --sys S] [--top N] [--json]');
    process.exit(2);
  }
  const summary = summarise(JSON.parse(fs.readFileSync(file, 'utf8')));
  if (args.includes('--json')) console.log(JSON.stringify({ objects, ...summary, top: summary.top(top ?? 40) }, null, 2));
  else {
    console.log(formatSummary(summary, objects, cpuSeconds, user !== undefined && sys !== undefined ? { user, sys } : undefined));
    if (top) for (const { name, ms } of summary.top(top)) console.log(`${ms.toFixed(0).padStart(7)} ms  ${name}`);
  }
}
