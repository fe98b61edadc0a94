import { configDefaults, defineConfig } from 'vitest/config';

// Two projects: `unit` (tests beside the code; no servers) and `integration` (test/; one real Temporal dev server
// per run, started by globalSetup through the project's own provisioning code). Two cores: the two projects run side
// by side, each one file at a time (integration files mostly wait on servers and timers; two of them at once would
// contend for the same simulated clusters' CPU and their timing-sensitive checks).
export default defineConfig({
  test: {
    maxWorkers: 2,
    // Quiet worker logs unless the developer asks for them.
    env: { CUTPOINT_LOG_LEVEL: process.env.CUTPOINT_LOG_LEVEL ?? 'warn' },
    pool: 'forks',
    reporters: ['default', './test/summary-reporter.ts'],
    // Every temporary directory a test file made through test/helpers/temp.ts goes when the file ends.
    setupFiles: ['test/helpers/temp-setup.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          // test/no-cycles.test.ts reads the source tree only: a unit test, though it covers every folder.
          include: ['{common,lib,repository,workflows,activities,workers,api,cli,scripts,sim,docs}/**/*.test.ts', 'test/no-cycles.test.ts'],
          fileParallelism: false,
          testTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/no-cycles.test.ts'],
          fileParallelism: false,
          globalSetup: ['test/global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 1_800_000,
        },
      },
    ],
  },
});
