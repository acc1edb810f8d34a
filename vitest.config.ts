import { defineConfig } from 'vitest/config';
import { postgresSkipReason } from './test/servers/postgres.js';
import { rgwAvailable } from './test/servers/rgw.js';
import { nodeVersionsSkipReason } from './test/support/node-versions.js';

// The Ceph RGW compatibility suite (test/compat) needs Ceph's daemons: without them `npm test` skips it
// with one line; `npm run test:compat` (which names the folder) runs it and fails if it cannot.
const compatAsked = process.argv.some((arg) => arg.replace(/\/+$/, '').endsWith('test/compat') || arg.includes('test/compat/'));
const compat = compatAsked || rgwAvailable();
if (!compat) {
  const why = process.env.S3MIGRATE_RGW === '0' ? 'S3MIGRATE_RGW=0' : 'radosgw is not installed: test/servers/rgw.sh install';
  process.stderr.write(`Ceph RGW compatibility suite skipped (${why}); run it with \`npm run test:compat\`.\n`);
}

// Suites on a real PostgreSQL server (describePostgres in test/support/postgres.ts) skip themselves where
// it is absent; this says why, once per run. S3MIGRATE_PG=1 makes them run (and fail) regardless.
const postgresSkipped = postgresSkipReason();
if (postgresSkipped) {
  process.stderr.write(`PostgreSQL suites skipped (${postgresSkipped}); S3MIGRATE_PG=1 makes a missing server an error.\n`);
}

// The CLI's smoke test on the other Node versions users run (test/node-versions.test.ts) needs
// scripts/prepare-node-versions.sh first; CI runs it and sets S3MIGRATE_NODE_VERSIONS_REQUIRED=1.
const nodeVersionsSkipped = nodeVersionsSkipReason();
if (nodeVersionsSkipped) {
  process.stderr.write(`Node 22/24 smoke test skipped (${nodeVersionsSkipped}).\n`);
}

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['**/node_modules/**', ...(compat ? [] : ['test/compat/**'])],
    // Integration tests start real S3 servers and child processes: give them room, and keep the
    // number of files running at once within what two cores can serve.
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    minWorkers: 1,
  },
});
