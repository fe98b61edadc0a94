/**
 * The physical baseline: `cp -r` of the same bytes to the same filesystem, followed by `sync -f` so that, like a
 * backup (every stored file is fsynced before it counts), the copy is measured until it is durable.
 */
import { execFileSync } from 'node:child_process';
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
