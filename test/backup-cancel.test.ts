/**
 * Cancel of a replica-set backup end to end, on the simulator: cancelled mid-copy (throttled), the backup ends
 * `cancelled`, no backup cursor stays open on any node, nothing is marked complete, and only the cancelled cluster
 * manifest is left (data and work files removed, and nothing reappears afterwards). Cancel in every other phase is
 * checked at the workflow level (test/backup-phases.test.ts) and the open's own cancellation beside it
 * (activities/agent/open-cancel.test.ts).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupResult, cancelBackup, startBackup } from '../api/backups.ts';
import { eventually, sleep } from '../sim/testkit.ts';
import { expectEndedWithoutData, filesUnder, openBackupCursors, pendingActivities } from './helpers/backup-checks.ts';
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

describe('cancel', () => {
  it('mid-copy (throttled): cancelled, no cursor open, only the cancelled manifest left', async () => {
    const dir = tempDir('cutpoint-cancel-repo-');
    const { id } = await startBackup(stack.h.client, { uri: uri(), repo: dir, keepAliveIntervalMs: 1000, bytesPerSec: 50_000, batchMaxFiles: 2 });
    await eventually(async () => (await pendingActivities(stack.h.client, `${id}.rs0`)).includes('copyBatch'), 60_000, 'the copy to run');
    expect(await openBackupCursors(stack.cluster)).toHaveLength(1);
    await cancelBackup(stack.h.client, id, 'cancel during the copy');
    const summary = await backupResult(stack.h.client, id);
    expect(summary.status).toBe('cancelled');
    expect(summary.error).toEqual({ code: 'CANCELLED', message: 'cancelled: cancel during the copy' });
    expect(await openBackupCursors(stack.cluster)).toEqual([]);
    expectEndedWithoutData(dir, id, 'cancelled');
    // The copies had stopped before the data was removed: nothing reappears, no cursor opens late.
    await sleep(2500);
    expect(filesUnder(join(dir, 'backups', id))).toEqual(['manifest.json']);
    expect(await openBackupCursors(stack.cluster)).toEqual([]);
  });
});
