/**
 * How a benchmark reports: a table on stdout and a JSON result (machine, command line, date, sizes, figures) in
 * bench/results/, the files bench/RESULTS.md is written from.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statfsSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's bench/results directory. */
export const RESULTS_DIR = fileURLToPath(new URL('../../bench/results/', import.meta.url));

/** The machine a result was measured on. */
export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  filesystem: string;
  node: string;
  commit: string;
}

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

/** The filesystem type of the mount holding `dir` (`/proc/mounts`: `stat -f` says ext2/ext3 for ext4). */
function filesystemOf(dir: string): string {
  try {
    let best = { mount: '', type: 'unknown' };
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [, mount, type] = line.split(' ');
      if (mount && type && (dir === mount || dir.startsWith(mount.endsWith('/') ? mount : `${mount}/`)) && mount.length > best.mount.length) best = { mount, type };
    }
    return best.type;
  } catch {
    return sh('stat', ['-f', '-c', '%T', dir]);
  }
}

/** Facts of this machine, for the result file. */
export function machine(workDir: string): Machine {
  const fsType = filesystemOf(workDir);
  const free = statfsSync(workDir);
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: sh('uname', ['-r']),
    filesystem: `${fsType} (${Math.round((free.bavail * free.bsize) / 2 ** 30)} GiB free at ${workDir})`,
    node: process.version,
    commit: sh('git', ['-C', dirname(RESULTS_DIR), 'rev-parse', '--short', 'HEAD']),
  };
}

/** Prints rows as an aligned table. */
export function printTable(title: string, rows: Array<Record<string, string | number>>): void {
  process.stdout.write(`\n${title}\n`);
  if (rows.length === 0) return;
  const cols = Object.keys(rows[0]!);
  const cell = (v: string | number | undefined) => (typeof v === 'number' ? fmt(v) : (v ?? ''));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padStart(widths[i]!)).join('  ');
  process.stdout.write(`${line(cols)}\n${line(widths.map((w) => '-'.repeat(w)))}\n`);
  for (const r of rows) process.stdout.write(`${line(cols.map((c) => cell(r[c])))}\n`);
}

/** A number as a table shows it: 3 significant digits, no exponent. */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/** Writes `bench/results/<name>.json` (or `out`) and says where. */
export function writeResult(name: string, result: Record<string, unknown>, out?: string): string {
  const path = out ?? join(RESULTS_DIR, `${name}.json`);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`\nresult: ${path}\n`);
  return path;
}

/** Reads a result back (RESULTS.md generation, the smoke test). */
export function readResult(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
}

/** Median of a non-empty list. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** Shows a data load's progress on a terminal (a log file gets only the final line). */
export function loadingProgress(bytes: number): void {
  if (process.stderr.isTTY) process.stderr.write(`\rloading ${(bytes / MiB).toFixed(0)} MiB`);
}

/** Journal file size for a data set of `bytes`: PSMDB's 100 MiB, smaller for small runs (about 1/40 of the data). */
export function journalFileSize(bytes: number): number {
  return Math.min(100 * MiB, Math.max(MiB, Math.round(bytes / 40 / MiB) * MiB));
}
