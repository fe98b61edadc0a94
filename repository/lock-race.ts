/**
 * Test helper (not used by the product): two processes racing for the exclusive lock of one repository, each running
 * repository/lock-race-child.ts for `rounds` rounds that start at the same instants. Used by lock.test.ts (a
 * directory) and test/s3-lock-race.test.ts (a bucket on a real S3 server).
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';

/** What one racing process reports. */
export interface LockRaceResult {
  held: number;
  waited: number;
  overlaps: number;
}

/** Runs the two processes against `location`; `insideDir` is the local directory of their critical-section file. */
export async function raceForLock(
  location: string,
  insideDir: string,
  options: { rounds: number; periodMs: number; waitMs?: number; env?: NodeJS.ProcessEnv },
): Promise<[LockRaceResult, LockRaceResult]> {
  const startAt = Date.now() + 2500; // after both processes have started (tsx compiles the modules)
  const run = () =>
    new Promise<LockRaceResult>((resolve, reject) => {
      const args = ['--import', 'tsx', join(import.meta.dirname, 'lock-race-child.ts'), location, insideDir, String(startAt), String(options.rounds), String(options.periodMs), ...(options.waitMs ? [String(options.waitMs)] : [])];
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...options.env } });
      let out = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as LockRaceResult) : reject(new Error(`child exited ${code}: ${out}`))));
    });
  return Promise.all([run(), run()]);
}
