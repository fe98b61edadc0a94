/**
 * A prune meets a running backup through the repository's locks (repository/lock.ts): the backup holds a shared
 * `backup` lock from before its first manifest to after its last, so a prune (exclusive `prune` lock) started while it
 * runs refuses with `ifLocked: 'fail'`, naming the backup's lock, and with `wait` (the default) waits until the backup
 * has committed and released it. The rule's reason: docs/repository-format.md section 12.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupResult, startBackup, setBackupThrottle } from '../api/backups.ts';
import { prune } from '../api/prune.ts';
import type { CutpointError } from '../common/errors.ts';
import { eventually } from '../sim/testkit.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { tempDir } from './helpers/temp.ts';

let stack: SimStack;
const uri = () => stack.cluster.describe().shards[0].uri as string;

beforeAll(async () => {
  stack = await startSimStack({ replsetOnly: true, members: 2, checkpointMs: 1000 });
});
afterAll(async () => {
  await stack?.stop();
});

// Lock files only: a lock being written is a temporary file beside it (repository/fs-storage.ts writes atomically).
const backupLocks = (dir: string) => (existsSync(join(dir, 'locks')) ? readdirSync(join(dir, 'locks')).filter((f) => f.startsWith('backup-') && f.endsWith('.json')) : []);

describe('prune while a backup runs', () => {
  it('--if-locked fail refuses naming the backup lock; wait (the default) waits for the backup to commit and release it', async () => {
    const dir = tempDir('cutpoint-prune-lock-repo-');
    const { id } = await startBackup(stack.h.client, { uri: uri(), repo: dir, keepAliveIntervalMs: 1000, bytesPerSec: 50_000, batchMaxFiles: 2 });
    await eventually(() => backupLocks(dir).length === 1, 30_000, 'the backup to lock the repository');
    const [lock] = backupLocks(dir);

    const err = (await prune({ repo: dir, policy: { keepLast: 1 }, client: stack.h.client, ifLocked: 'fail' }).catch((e: unknown) => e)) as CutpointError;
    expect(err.code).toBe('REPO_LOCKED');
    expect(err.message).toContain(`locks/${lock}`);
    expect(err.message).toMatch(/held by backup \(shared; host .*, pid \d+/);
    expect(readdirSync(join(dir, 'locks'))).toEqual([lock]); // the refused prune left nothing

    let refusals = 0;
    let pruned = false;
    const waiting = prune({ repo: dir, policy: { keepLast: 1 }, client: stack.h.client, lockWaitMs: 60_000, onLockWait: () => void refusals++ }).then((r) => ((pruned = true), r));
    await eventually(() => refusals >= 2, 10_000, 'the prune to wait');
    expect(pruned).toBe(false);
    await setBackupThrottle(stack.h.client, id, 0); // let the backup finish
    const summary = await backupResult(stack.h.client, id);
    expect(summary.status).toBe('complete');
    const r = await waiting;
    expect(backupLocks(dir)).toEqual([]);
    expect(r.clusters.flatMap((c) => c.keep.map((k) => k.id))).toEqual([id]);
    expect(r.removed).toEqual([]);
    expect(readdirSync(join(dir, 'locks'))).toEqual([]);
  }, 30_000);
});
