import { describe, expect, it } from 'vitest';
import { LOCK_DIR } from '../repository/lock.ts';
import { raceForLock } from '../repository/lock-race.ts';
import { freshS3Location, s3Env, s3Storage } from './helpers/s3.ts';
import { tempDir } from './helpers/temp.ts';

// The repository lock on object storage (repository/README.md, invariants 20-21): no exclusive create, no rename,
// only "write your own lock object, then list": two processes racing on one bucket never both hold it.
describe('two processes racing for the exclusive lock of a repository on S3 (versitygw)', () => {
  it('never both hold it: at each common start one holds and the other waits', async () => {
    const location = await freshS3Location();
    const rounds = 20;
    // A wait bound of seconds, not periods: each try is several requests, slow on a loaded machine.
    const [a, b] = await raceForLock(location, tempDir('s3-lock-race-'), { rounds, periodMs: 200, waitMs: 10_000, env: s3Env() });
    expect(a.overlaps + b.overlaps).toBe(0);
    expect(a.held).toBe(rounds);
    expect(b.held).toBe(rounds);
    // They did meet: in most rounds one of them found the other's lock and waited.
    expect(a.waited + b.waited).toBeGreaterThanOrEqual(rounds / 2);
    expect(await s3Storage(location).list(LOCK_DIR)).toEqual([]);
  }, 60_000);
});
