/**
 * `$backupCursorExtend` waiting for the committed snapshot (docs/psmdb-behaviour.md section 4.3), through the official
 * driver: on a lagging secondary it blocks until that member's committed snapshot reaches the timestamp, bounded only
 * by maxTimeMS (50 MaxTimeMSExpired); the hooks mutex is held meanwhile, so a killCursors of the backup cursor takes
 * effect only when the wait ends. A client that disconnects interrupts the wait (ClientDisconnect); with the fail point
 * `simExtendWaitFailureFatal` a failed wait aborts the node, as early PSMDB builds do (fatal assertion 29096).
 */
import type { MongoClient, Timestamp } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimCluster } from '../../cluster/cluster.ts';
import { direct, sleep, startTestCluster } from '../../testkit.ts';
import { compareTs } from '../clock.ts';
import type { SimNode } from '../types.ts';
import { extend, killCursor, openBackup, run, stableCheckpoint } from './testkit.ts';

const LAG = 1500;
let cluster: SimCluster;
let primary: MongoClient;
let secondary: MongoClient;
let secondaryNode: SimNode;

beforeAll(async () => {
  cluster = await startTestCluster({ replsetOnly: true, members: 3, lagMs: LAG });
  const [p, s] = cluster.shards[0]!.localNodes;
  secondaryNode = s!;
  primary = direct(p!.address);
  secondary = direct(s!.address);
  await stableCheckpoint(secondaryNode);
});

afterAll(async () => {
  await Promise.all([primary?.close(), secondary?.close()]);
  await cluster?.stop();
});

/** A write on the primary; its timestamp. */
async function write(v: number): Promise<Timestamp> {
  await primary.db('app').collection('lag').insertOne({ v });
  return (await run(primary, { hello: 1 })).lastWrite.opTime.ts as Timestamp;
}

describe('extend on a lagging secondary', () => {
  it('blocks until the committed snapshot reaches the timestamp; fails with maxTimeMS; cumulative across extends', async () => {
    const b = await openBackup(secondary);
    const target = await write(1);
    expect(compareTs(secondaryNode.rs!.committedSnapshot(secondaryNode), target)).toBeLessThan(0);

    const t0 = Date.now();
    await expect(extend(secondary, b.metadata.backupId, target, { maxTimeMS: 300 })).rejects.toMatchObject({
      code: 50,
      codeName: 'MaxTimeMSExpired',
      message: expect.stringMatching(/^Wait for target timestamp has failed/),
    });
    const failedAfter = Date.now() - t0;
    expect(failedAfter).toBeGreaterThanOrEqual(290);
    expect(failedAfter).toBeLessThan(LAG);

    const first = await extend(secondary, b.metadata.backupId, target);
    const waited = Date.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(LAG - 400);
    expect(compareTs(secondaryNode.rs!.committedSnapshot(secondaryNode), target)).toBeGreaterThanOrEqual(0);
    expect(first.length).toBeGreaterThan(0);

    // Without maxTimeMS the wait has no deadline of its own; a second extend repeats the first's files.
    const later = await write(2);
    const second = await extend(secondary, b.metadata.backupId, later);
    expect(second.slice(0, first.length)).toEqual(first);
    expect(second.length).toBe(first.length + 1);
    await killCursor(secondary, b.id);
  });

  it('holds the hooks mutex while waiting: the backup cursor killed meanwhile is released when the wait ends', async () => {
    const b = await openBackup(secondary);
    const target = await write(3);
    const waiting = extend(secondary, b.metadata.backupId, target);
    await sleep(200);
    const other = direct(secondaryNode.address);
    try {
      expect((await killCursor(other, b.id)).cursorsKilled).toHaveLength(1);
      expect((await run(other, { serverStatus: 1 })).storageEngine.backupCursorOpen).toBe(true);
      expect((await waiting).length).toBeGreaterThan(0);
      expect((await run(other, { serverStatus: 1 })).storageEngine.backupCursorOpen).toBe(false);
      await expect(extend(other, b.metadata.backupId, target)).rejects.toMatchObject({ code: 50886 });
    } finally {
      await other.close();
    }
  });

  it('the client gone interrupts the wait (ClientDisconnect): the hooks mutex is free at once, the backup cursor can close', async () => {
    const b = await openBackup(secondary);
    const target = await write(4);
    const other = direct(secondaryNode.address);
    const waiting = extend(other, b.metadata.backupId, target).catch((e: unknown) => e);
    await sleep(200);
    await other.close(true);
    await waiting;
    // Well inside the lag: the wait ended with the connection, not when the node got there.
    const started = Date.now();
    expect((await killCursor(secondary, b.id)).cursorsKilled).toHaveLength(1);
    while ((await run(secondary, { serverStatus: 1 })).storageEngine.backupCursorOpen && Date.now() - started < LAG) await sleep(10);
    expect(Date.now() - started).toBeLessThan(LAG / 2);
  });

  // Last: it aborts the secondary.
  it('simExtendWaitFailureFatal (early PSMDB builds): a failed wait is fatal 29096 and aborts the node', async () => {
    const b = await openBackup(secondary);
    await run(secondary, { configureFailPoint: 'simExtendWaitFailureFatal', mode: 'alwaysOn' });
    const target = await write(5);
    await expect(extend(secondary, b.metadata.backupId, target, { maxTimeMS: 200 })).rejects.toThrow();
    await eventuallyDown();
    expect(secondaryNode.up).toBe(false);
  });
});

async function eventuallyDown(): Promise<void> {
  for (let i = 0; i < 100 && secondaryNode.up; i++) await sleep(20);
}

