/**
 * Used only by lock.test.ts and test/s3-lock-race.test.ts ("two processes racing"): one process that, `rounds`
 * times, waits for the round's common start instant and takes the exclusive lock `race` of the repository at
 * `location` (a directory, or s3://bucket/prefix with the AWS environment; acquireLockWaiting), holds it a few
 * milliseconds inside a critical section that detects a second holder (an exclusive create of `<insideDir>/inside`,
 * a local file outside the repository), and releases it. Prints one JSON line: `{pid, held, waited, overlaps}`.
 *
 *   node --import tsx repository/lock-race-child.ts <location> <insideDir> <startAtEpochMs> <rounds> <periodMs> [waitMs]
 *
 * `waitMs` (default 4 periods) bounds each wait for the other holder.
 */
import { openSync, closeSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { acquireLockWaiting } from './lock.ts';
import { RetryStorage } from './retry-storage.ts';
import { storageAt } from './storage-at.ts';

const [location, dir, startArg, roundsArg, periodArg, waitArg] = process.argv.slice(2);
// As a repository's storage is (repository.ts fsRepository): transient errors retried.
const storage = new RetryStorage(storageAt(location!));
const startAt = Number(startArg);
const period = Number(periodArg);
let held = 0;
let waited = 0;
let overlaps = 0;
for (let round = 0; round < Number(roundsArg); round++) {
  const at = startAt + round * period;
  while (Date.now() < at - 2) await delay(1);
  while (Date.now() < at); // the last milliseconds spun, so that both processes write at the same moment
  const release = await acquireLockWaiting(storage, 'race', { waitMs: waitArg ? Number(waitArg) : period * 4, retryMs: 2, maxRetryMs: 10, onWait: () => void waited++ });
  let fd: number | undefined;
  try {
    fd = openSync(join(dir!, 'inside'), 'wx');
  } catch {
    overlaps++; // the other process is inside: both hold the lock
  }
  await delay(5);
  if (fd !== undefined) {
    closeSync(fd);
    unlinkSync(join(dir!, 'inside'));
  }
  await release();
  held++;
}
process.stdout.write(`${JSON.stringify({ pid: process.pid, held, waited, overlaps })}\n`);
