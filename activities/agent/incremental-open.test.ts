/**
 * openBackupCursor with an incremental chain, against the simulator's PSMDB backup cursor: a base clears the node's
 * history and lists whole files; an incremental names its source and lists each data file's changed ranges (clamped);
 * a source the node does not know (here, never registered: as after an unclean restart) falls back to a base with the
 * reason; every open command gets a fresh name, so an attempt retried after a crash is not refused for reusing one
 * (the server refuses a reused name, as it does here).
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimCluster } from '../../sim/cluster/cluster.ts';
import { direct, sleep, startTestCluster } from '../../sim/testkit.ts';
import { fsRepository } from '../../repository/repository.ts';
import { tempDir } from '../../test/helpers/temp.ts';
import { backupCursorActivities, type OpenedCursor } from './backup-cursor.ts';
import type { IncrementalOpen } from '../../common/incremental.ts';

let c: SimCluster;
const host = () => (c.describe().shards[0] as { hosts: string[] }).hosts[0]!;
const target = () => ({ uri: `mongodb://${host()}/?replicaSet=rs0`, credentials: { kind: 'none' as const } });
const repoDir = tempDir('cutpoint-incr-open-');
const acts = () => backupCursorActivities({ mongod: host(), repository: (p) => fsRepository(p) });

beforeAll(async () => {
  c = await startTestCluster({ replsetOnly: true, members: 1 });
});
afterAll(async () => {
  await c?.stop();
});

async function open(backupId: string, incremental: IncrementalOpen, previousSessionId?: string): Promise<OpenedCursor> {
  const env = new MockActivityEnvironment(previousSessionId ? { heartbeatDetails: { sessionId: previousSessionId } } : {});
  return (await env.run(acts().openBackupCursor, { target: target(), backupId, replicaSet: 'rs0', repo: repoDir, incremental })) as OpenedCursor;
}
async function close(o: OpenedCursor, backupId: string): Promise<void> {
  await new MockActivityEnvironment().run(acts().closeBackupCursor, { target: target(), backupId, replicaSet: 'rs0', cursorId: o.cursorId, sessionId: o.sessionId });
}
const listOf = (id: string) => fsRepository(repoDir).fileList(id, 'rs0').read(0, 1e6);

async function writeAndCheckpoint(n: number): Promise<void> {
  const client = direct(host());
  try {
    await client.db('app').collection('t').insertMany(Array.from({ length: n }, (_, i) => ({ i, pad: 'x'.repeat(500) })));
  } finally {
    await client.close();
  }
  await sleep(2500); // a checkpoint (every second here) takes the writes into the files
}

describe('incremental opens', () => {
  it('base, then an incremental from it; an unknown source falls back to a base; fresh names on retry', async () => {
    await writeAndCheckpoint(200);
    const base = await open('b1', { blockSizeMB: 1 });
    expect(base.incremental).toMatchObject({ kind: 'base', blockSizeMB: 1 });
    expect(base.incremental?.chainBreak).toBeUndefined();
    expect((await listOf('b1')).every((f) => f.ranges === undefined)).toBe(true);
    await close(base, 'b1');

    await writeAndCheckpoint(200);
    const next = await open('b2', { blockSizeMB: 1, srcBackupName: base.incremental!.name });
    expect(next.incremental).toMatchObject({ kind: 'incremental' });
    expect(next.incremental!.name).not.toBe(base.incremental!.name);
    const data = (await listOf('b2')).filter((f) => f.kind === 'data');
    expect(data.length).toBeGreaterThan(0);
    expect(data.every((f) => Array.isArray(f.ranges) && f.ranges.every(([o, l]) => o + l <= f.size))).toBe(true);
    // A retry of this open after a crash (its cursor stranded, its session recorded): freed, and a fresh name.
    const retried = await open('b2', { blockSizeMB: 1, srcBackupName: base.incremental!.name }, next.sessionId);
    expect(retried.incremental).toMatchObject({ kind: 'incremental' });
    expect(retried.incremental!.name).not.toBe(next.incremental!.name);
    await close(retried, 'b2');
    // Reusing a name is what the server refuses ("Incremental identifier already exists").
    const client = direct(host());
    try {
      await expect(
        client.db('admin').command({ aggregate: 1, pipeline: [{ $backupCursor: { incrementalBackup: true, thisBackupName: retried.incremental!.name, srcBackupName: base.incremental!.name, blockSize: 1 } }], cursor: {} }),
      ).rejects.toMatchObject({ message: expect.stringContaining('22: Invalid argument') });
    } finally {
      await client.close();
    }

    const broken = await open('b3', { blockSizeMB: 1, srcBackupName: 'b0.rs0.forgotten.1' });
    expect(broken.incremental).toMatchObject({ kind: 'base' });
    expect(broken.incremental!.chainBreak).toMatch(/no longer knows the previous backup's incremental name b0\.rs0\.forgotten\.1 \(error 8: 2: No such file or directory\)/);
    expect((await listOf('b3')).every((f) => f.ranges === undefined)).toBe(true);
    await close(broken, 'b3');
  });
});
