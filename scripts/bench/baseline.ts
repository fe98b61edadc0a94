/**
 * The physical baseline: `cp -r` of the same bytes to the same filesystem, followed by `sync -f` so that, like a
 * backup (every stored file is fsynced before it counts), the copy is measured until it is durable.
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { prepareCache, type CacheMode } from './page-cache.ts';
import { cpuSecondsOf } from './stack.ts';

/** Wall and CPU seconds of `cp -r src dst && sync -f dst`. `dst` must not exist. */
export function timeCpR(src: string, dst: string): { seconds: number; cpuSeconds: number | null } {
  const cpu0 = cpuSecondsOf('self', true);
  const t0 = process.hrtime.bigint();
  execFileSync('cp', ['-r', src, dst], { stdio: ['ignore', 'ignore', 'inherit'] });
  execFileSync('sync', ['-f', dst], { stdio: ['ignore', 'ignore', 'inherit'] });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu1 = cpuSecondsOf('self', true);
  return { seconds, cpuSeconds: cpu0 === null || cpu1 === null ? null : cpu1 - cpu0 };
}

/**
 * Run `i` of a comparison: `cp -r src` (removed after) and the measured operation, each after the page cache is put in
 * `cache` for `src`, in alternating order so that neither always runs on the cache and disk state the other left.
 */
export async function alternately<T>(i: number, cache: CacheMode, src: string, cpDst: string, measured: () => Promise<T>): Promise<{ first: 'cp' | 'cutpoint'; cp: ReturnType<typeof timeCpR>; result: T }> {
  const cp = () => {
    prepareCache(cache, [src]);
    const r = timeCpR(src, cpDst);
    rmSync(cpDst, { recursive: true, force: true });
    return r;
  };
  const run = () => {
    prepareCache(cache, [src]);
    return measured();
  };
  if (i % 2 === 0) {
    const c = cp();
    return { first: 'cp', cp: c, result: await run() };
  }
  const result = await run();
  return { first: 'cutpoint', cp: cp(), result };
}
