/**
 * The closing line CI reads: tests that never ran because their file's beforeAll failed count as failed, not skipped
 * (test/summary-reporter.ts), over a fixture run in a vitest of its own.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

it('counts the tests under a failed beforeAll as failed, and only deliberate skips as skipped', () => {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const run = spawnSync(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', '--config', 'test/fixtures/reporter/vitest.config.ts'], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, CI: 'true', NO_COLOR: '1' },
    timeout: 60_000,
  });
  expect(run.status).toBe(1);
  const lines = run.stdout.trim().split('\n');
  // two under the failed hook + one failing test; one it.skip and one ctx.skip()
  expect(lines.at(-1)).toBe('tests: 1 passed, 3 failed, 2 skipped');
});
