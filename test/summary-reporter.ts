/**
 * Prints one plain closing line, `tests: N passed, N failed, N skipped`, after vitest's own summary, so that CI
 * tooling that reads a runner's last line understands the result.
 *
 * A test that did not run because a hook of its file or suite failed (a `beforeAll` that could not start a server, a
 * missing browser) counts as failed, never as skipped: vitest reports such tests `skipped`, and a closing line of
 * "0 failed" would then hide that nothing was checked. Only tests skipped on purpose (`it.skip`, `it.todo`,
 * `skipIf`, `ctx.skip()` in a file whose hooks passed) count as skipped.
 */
import type { Reporter, TestCase, TestModule, TestSuite } from 'vitest/node';

/** The closing line's counts over the finished modules. */
export function summarize(modules: ReadonlyArray<TestModule>): { passed: number; failed: number; skipped: number } {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  for (const m of modules) {
    for (const t of m.children.allTests()) {
      const state = t.result().state;
      if (state === 'passed') passed++;
      else if (state === 'failed' || hookFailedAbove(t)) failed++;
      else skipped++;
    }
    if (m.state() === 'failed' && [...m.children.allTests()].length === 0) failed++; // a file that failed to load
  }
  return { passed, failed, skipped };
}

/** True when a suite or the file holding `t` carries errors of its own: a failed beforeAll/afterAll or collection. */
function hookFailedAbove(t: TestCase): boolean {
  for (let p: TestSuite | TestModule = t.parent; ; p = p.parent) {
    if (p.errors().length > 0) return true;
    if (p.type === 'module') return false;
  }
}

export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const { passed, failed, skipped } = summarize(modules);
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
