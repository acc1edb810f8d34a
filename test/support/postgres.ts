// describePostgres: a describe block that owns one throwaway PostgreSQL server (test/servers/postgres.ts),
// started before its tests and stopped after them. Where PostgreSQL is absent the block is skipped (the
// reason is printed once per run by vitest.config.ts); with S3MIGRATE_PG=1 it runs and fails loudly.
import { afterAll, beforeAll, describe } from 'vitest';
import { postgresSkipReason, startPostgres, type PostgresHandle } from '../servers/postgres.js';

export { postgresAvailable, postgresSkipReason, startPostgres, type PostgresHandle } from '../servers/postgres.js';

/**
 * `describePostgres('store contract', (pg) => { it('...', async () => { await pg().query(...) }) })`:
 * `pg()` is the block's server, valid inside its tests and hooks.
 */
export function describePostgres(name: string, fn: (pg: () => PostgresHandle) => void): void {
  const skip = postgresSkipReason();
  if (skip) {
    describe.skip(`${name} (skipped: ${skip})`, () =>
      fn(() => {
        throw new Error(`PostgreSQL is not available: ${skip}`);
      }),
    );
    return;
  }
  describe(name, () => {
    let server: PostgresHandle | undefined;
    beforeAll(async () => {
      server = await startPostgres();
    }, 90_000);
    afterAll(async () => {
      await server?.stop();
    });
    fn(() => {
      if (!server) throw new Error('describePostgres: the server has not started (see the beforeAll error)');
      return server;
    });
  });
}
