// Where scripts/prepare-node-versions.sh left the other Node.js versions and their app copies, for
// test/node-versions.test.ts. Free of vitest on purpose: vitest.config.ts imports the skip reason to say
// once per run why the smoke test does not run.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** One prepared version: its Node binary and an app copy (bin/, dist/, node_modules built for it). */
export interface PreparedNode {
  version: string;
  node: string;
  app: string;
}

export function manifestPath(): string {
  const dir = process.env.S3MIGRATE_NODE_VERSIONS_DIR || path.join(ROOT, '.node-versions');
  return path.join(dir, 'manifest.json');
}

/** S3MIGRATE_NODE_VERSIONS_REQUIRED=1 (CI): a missing or broken preparation fails instead of skipping. */
export function nodeVersionsRequired(): boolean {
  return process.env.S3MIGRATE_NODE_VERSIONS_REQUIRED === '1';
}

/** The prepared versions, or what is wrong with the preparation. */
export function readPreparedNodes(): { nodes: PreparedNode[]; problem?: undefined } | { nodes?: undefined; problem: string } {
  const file = manifestPath();
  const hint = 'run scripts/prepare-node-versions.sh';
  const shown = path.relative(process.cwd(), file);
  if (!existsSync(file)) return { problem: `no ${shown.startsWith('..') ? file : shown}: ${hint}` };
  let nodes: PreparedNode[];
  try {
    nodes = JSON.parse(readFileSync(file, 'utf8')) as PreparedNode[];
    if (!Array.isArray(nodes) || nodes.length === 0) throw new Error('no versions listed');
  } catch (error) {
    return { problem: `${file} is unreadable (${(error as Error).message}): ${hint}` };
  }
  for (const entry of nodes) {
    const needs = [
      [entry.node, constants.X_OK],
      [path.join(entry.app, 'bin', 's3migrate.js'), constants.R_OK],
      [path.join(entry.app, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node'), constants.R_OK],
    ] as const;
    for (const [file, mode] of needs) {
      try {
        accessSync(file, mode);
      } catch {
        return { problem: `Node ${entry.version}: ${file} is missing (the cache was cleared?): ${hint}` };
      }
    }
    // Its dependencies were installed from this lock file; another lock needs another preparation.
    const lock = (dir: string): string => readFileSync(path.join(dir, 'package-lock.json'), 'utf8');
    if (lock(entry.app) !== lock(ROOT)) return { problem: `Node ${entry.version}: package-lock.json changed since the preparation: ${hint}` };
  }
  return { nodes };
}

/** Why the smoke test does not run here, or undefined when it runs (or must, and fails if it cannot). */
export function nodeVersionsSkipReason(): string | undefined {
  if (nodeVersionsRequired()) return undefined;
  return readPreparedNodes().problem;
}
