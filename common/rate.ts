/**
 * Copy rates as users type them: `50MB` (per second), `1.5GiB`, `800KB`, `0` (unlimited). Decimal units are powers
 * of 1000, binary ones of 1024, as in `dd` and restic's --limit-upload. Workflow-safe.
 */
const UNITS: Record<string, number> = {
  '': 1, B: 1,
  KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12,
  KIB: 1024, MIB: 1024 ** 2, GIB: 1024 ** 3, TIB: 1024 ** 4,
  K: 1024, M: 1024 ** 2, G: 1024 ** 3,
};

/** Bytes per second from a rate string; throws naming the problem. `/s` may follow the unit. */
export function parseRate(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*(?:\/s)?\s*$/.exec(text);
  const unit = m?.[2]?.toUpperCase() ?? '';
  if (!m || !(unit in UNITS)) {
    throw new Error(`'${text}' is not a rate: use a number of bytes per second with an optional unit, e.g. 50MB, 1.5GiB, 800KB, or 0 for unlimited`);
  }
  const value = Math.round(Number(m[1]) * UNITS[unit]!);
  if (!Number.isSafeInteger(value)) throw new Error(`'${text}' is too large`);
  return value;
}

/** A human rate, e.g. `52.4 MB/s`, or `unlimited` for 0. */
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
