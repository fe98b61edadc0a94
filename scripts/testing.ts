/**
 * Test helpers for the scripts that find or build tools (go-install.ts, temporal/, bench/restic.ts): stand-in
 * executables and a scratch root with a cache, a bin directory for PATH and an empty one.
 */
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A shell script `dir/name` running `body`, executable. */
export function fakeExecutable(dir: string, name: string, body = 'exit 0'): string {
  mkdirSync(dir, { recursive: true });
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

/** A fresh scratch root: `cache` (CUTPOINT_CACHE_DIR), `bin` (for PATH) and `empty` (a PATH with nothing). */
export function toolSandbox(prefix: string): { root: string; cache: string; bin: string; empty: string } {
  const root = mkdtempSync(join(tmpdir(), `cutpoint-${prefix}-`));
  return { root, cache: join(root, 'cache'), bin: join(root, 'bin'), empty: join(root, 'empty') };
}
