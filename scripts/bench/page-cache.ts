/**
 * The page cache, treated the same way before every measured copy (cutpoint's and `cp -r`'s): the source is read
 * cold (caches dropped) when this process may drop them, otherwise warm (read once beforehand), and the mode used is
 * part of every result. Writes are always measured to durability (fsync), see baseline.ts.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** How the source of a copy sits in the page cache when the copy starts. */
export type CacheMode = 'cold' | 'warm';

/** Whether this process can drop the page cache (root, writable /proc/sys/vm/drop_caches). */
export function canDropCaches(): boolean {
  try {
    execFileSync('sync');
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

/** Every regular file under `dir`, recursively. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** Total bytes of the regular files under `dir`. */
export function bytesUnder(dir: string): number {
  return filesUnder(dir).reduce((sum, f) => sum + statSync(f).size, 0);
}

/** Puts the page cache in `mode` for the files under `dirs`: dropped (cold) or holding them (warm). */
export function prepareCache(mode: CacheMode, dirs: string[]): void {
  execFileSync('sync');
  if (mode === 'cold') {
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return;
  }
  // `cat` reads through the cache without keeping the bytes in this process.
  for (const d of dirs) {
    const files = filesUnder(d);
    for (let i = 0; i < files.length; i += 500) execFileSync('cat', files.slice(i, i + 500), { stdio: ['ignore', 'ignore', 'inherit'] });
  }
}
