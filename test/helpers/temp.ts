/**
 * Temporary directories of a test file (repositories, restore targets, credential files, state directories), all
 * under one root per test process, removed when the file's tests end (test/helpers/temp-setup.ts, a setup file of
 * both vitest projects): a run leaves nothing behind in the system's temporary directory, secrets included.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(tmpdir(), `cutpoint-test-${process.pid}`);

/** A new, empty directory whose name starts with `prefix`, removed with the others after the test file. */
export function tempDir(prefix: string): string {
  mkdirSync(ROOT, { recursive: true, mode: 0o700 });
  return mkdtempSync(join(ROOT, prefix));
}

/** Removes every directory {@link tempDir} made in this process. */
export function removeTempDirs(): void {
  rmSync(ROOT, { recursive: true, force: true });
}
