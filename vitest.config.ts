import { defineConfig } from 'vitest/config';

/**
 * Three projects, so the fast part runs alone (`npx vitest run --project unit`):
 *   unit         colocated src tests (in-process, simulator at the HTTP level) and the repo-structure tests;
 *   integration  a whole gpu-medic runtime against the simulator, in this process or as child processes;
 *   e2e          the `gpu-medic` command itself, as an operator runs it (bin/gpu-medic.js as a child).
 * `npm test` runs all three. Tests against real third-party binaries (a Prometheus) live in test/interop/ and run
 * with `npm run test:interop` (vitest.interop.config.ts).
 */
export default defineConfig({
  test: {
    environment: 'node',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests start servers on ephemeral ports; two workers fit the 2-core CI box.
    pool: 'forks',
    maxWorkers: 2,
    // One real PostgreSQL for the run, started in the background (test/support/postgres.ts uses it).
    globalSetup: ['test/support/postgres-server.ts'],
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', LOG_LEVEL: 'silent' },
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['src/**/*.test.ts', 'test/*.test.ts', 'test/support/**/*.test.ts'] },
      },
      { extends: true, test: { name: 'integration', include: ['test/integration/**/*.test.ts'] } },
      { extends: true, test: { name: 'e2e', include: ['test/e2e/**/*.test.ts', 'test/cli/**/*.test.ts'] } },
    ],
  },
});
