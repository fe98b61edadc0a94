import { defineConfig } from 'vitest/config';

// Two projects: `unit` (tests beside the code; no servers) and `integration` (test/; one real Temporal dev server
// per run, started by globalSetup through the project's own provisioning code). Two cores: files run one at a time.
export default defineConfig({
  test: {
    fileParallelism: false,
    // Quiet worker logs unless the developer asks for them.
    env: { CUTPOINT_LOG_LEVEL: process.env.CUTPOINT_LOG_LEVEL ?? 'warn' },
    pool: 'forks',
    reporters: ['default', './test/summary-reporter.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['{common,workflows,activities,workers,scripts,sim}/**/*.test.ts'],
          testTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          globalSetup: ['test/global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 1_800_000,
        },
      },
    ],
  },
});
