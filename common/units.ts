/**
 * Sizes, rates, counts and durations as people type and read them. Each rule is written once, here; the CLI
 * (cli/options.ts), the benchmarks (scripts/bench/main.ts) and the client API (api/schedules.ts) use these.
 * Workflow-safe: no Node imports.
 *
 * The parsers throw a plain Error whose message quotes the text they were given; callers turn it into their own usage
 * error (BAD_USAGE in the CLI, commander's InvalidArgumentError in the benchmarks).
 *
 * Numbers are plain decimal digits, with an optional fraction where a fraction makes sense (`1.5GiB`); `1e3`, `0x10`,
 * `.5` and the empty string are refused.
 */

/**
 * Bytes per unit, keyed by the unit in upper case. Decimal units are powers of 1000 (`KB`, `MB`, ...), binary ones
 * powers of 1024 (`KiB`, `MiB`, ...), and the bare letters `K`, `M`, `G`, `T` are binary too, as in `dd`. Units are
 * case-insensitive: `mb`, `MB` and `Mb` are the same.
 */
const SIZE_UNITS: Record<string, number> = {
  '': 1,
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KIB: 1024,
  MIB: 1024 ** 2,
  GIB: 1024 ** 3,
  TIB: 1024 ** 4,
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
  T: 1024 ** 4,
};

/** Bytes from `<number> [unit]` (`/s` allowed after the unit when `perSecond`), or undefined when it is not one. */
function bytesOf(text: string, perSecond: boolean): number | undefined {
  const m = (perSecond ? /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*(?:\/s)?\s*$/ : /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/).exec(text);
  const unit = m ? SIZE_UNITS[m[2]!.toUpperCase()] : undefined;
  if (!m || unit === undefined) return undefined;
  return Math.round(Number(m[1]) * unit);
}

/** A size in bytes: `4GiB`, `512MiB`, `800KB`, `10M`, `4096`. At least `min` bytes (default 0). */
export function parseSize(text: string, min = 0): number {
  const n = bytesOf(text, false);
  if (n === undefined) throw new Error(`'${text}' is not a size: use a number of bytes with an optional unit, e.g. 4GiB, 512MiB, 800KB`);
  if (!Number.isSafeInteger(n)) throw new Error(`'${text}' is too large`);
  if (n < min) throw new Error(`'${text}' is too small: at least ${formatBytes(min)}`);
  return n;
}

/** A copy rate in bytes per second: a size as {@link parseSize} takes it, `/s` allowed after it; `0` = unlimited. */
export function parseRate(text: string): number {
  const n = bytesOf(text, true);
  if (n === undefined) {
    throw new Error(`'${text}' is not a rate: use a number of bytes per second with an optional unit, e.g. 50MB, 1.5GiB, 800KB, or 0 for unlimited`);
  }
  if (!Number.isSafeInteger(n)) throw new Error(`'${text}' is too large`);
  return n;
}

/** A whole number (`12`, `-3`; not `1.5`, `1e3`, `0x10`) of at least `min`. `what` names it in the error (`--parallel`). */
export function parseInteger(text: string, what: string, min = 0): number {
  const n = /^\s*-?\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`${what} must be an integer >= ${min}, got '${text}'`);
  return n;
}

/** A number, fraction allowed (`24`, `1.5`), of at least `min`. `what` names it in the error. */
export function parseNumber(text: string, what: string, min = 0): number {
  const n = /^\s*-?\d+(?:\.\d+)?\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(n) || n < min) throw new Error(`${what} must be a number >= ${min}, got '${text}'`);
  return n;
}

/** Comma-separated integers of at least `min` each: `1,4,16` → [1, 4, 16]. `what` names the list in the error. */
export function parseIntegerList(text: string, what: string, min = 0): number[] {
  try {
    return text.split(',').map((item) => parseInteger(item, what, min));
  } catch {
    throw new Error(`${what} must be a comma-separated list of integers >= ${min}, got '${text}'`);
  }
}

/** `1.5 GiB`, `12.0 KiB`, `0 B`: powers of 1024, one decimal above bytes. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** A rate for people: `52.4 MB/s` (powers of 1000), or `unlimited` for 0. */
export function formatRate(bytesPerSec: number): string {
  if (!bytesPerSec) return 'unlimited';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = bytesPerSec;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(v >= 100 || i === 0 ? 0 : 1)} ${units[i]}/s`;
}

/**
 * A duration given in milliseconds, for people. Two styles:
 * - `exact` (default), for an interval the user chose: the largest unit that divides it, so nothing is lost
 *   (`86400000` → `1d`, `21600000` → `6h`, `90000` → `90s`, `1500` → `1500ms`);
 * - `elapsed`, for how long something took: rounded to the second, at most two units, the second one zero-padded
 *   (`42s`, `3m05s`, `10m00s`, `2h01m`).
 */
export function formatDuration(ms: number, style: 'exact' | 'elapsed' = 'exact'): string {
  if (style === 'elapsed') {
    const s = Math.round(ms / 1000);
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
    return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  }
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
