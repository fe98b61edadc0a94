/**
 * The `simHangBeforeCommand` fail point: a named command waits while the point is set and runs when it is turned
 * off; other commands, and aggregates with another first stage, are not held.
 */
import type { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimCluster } from '../../cluster/cluster.ts';
import { direct, sleep, startTestCluster } from '../../testkit.ts';

let cluster: SimCluster;
let c: MongoClient;

beforeAll(async () => {
  cluster = await startTestCluster({ replsetOnly: true, members: 1 });
  c = direct(cluster.shards[0]!.localNodes[0]!.address);
});
afterAll(async () => {
  await c?.close();
  await cluster?.stop();
});

/** Whether `p` is still pending after `ms`. */
async function pendingAfter(p: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  void p.then(
    () => (settled = true),
    () => (settled = true),
  );
  await sleep(ms);
  return !settled;
}

describe('simHangBeforeCommand', () => {
  it('holds the named command until turned off, and nothing else', async () => {
    const admin = c.db('admin');
    await admin.command({ configureFailPoint: 'simHangBeforeCommand', mode: 'alwaysOn', data: { commands: ['replSetGetStatus'] } });
    const held = admin.command({ replSetGetStatus: 1 });
    expect(await pendingAfter(held, 300)).toBe(true);
    await expect(admin.command({ ping: 1 })).resolves.toMatchObject({ ok: 1 });
    const off = await admin.command({ configureFailPoint: 'simHangBeforeCommand', mode: 'off' });
    expect(off.count).toBe(1);
    await expect(held).resolves.toMatchObject({ ok: 1, set: 'rs0' });
  });

  it('for aggregate, holds only the listed first stages', async () => {
    const admin = c.db('admin');
    await admin.command({ configureFailPoint: 'simHangBeforeCommand', mode: 'alwaysOn', data: { commands: ['aggregate'], stages: ['$backupCursorExtend'] } });
    try {
      // $backupCursor is not held: it opens (and is closed again).
      const r = await admin.command({ aggregate: 1, pipeline: [{ $backupCursor: {} }], cursor: {} });
      await admin.command({ killCursors: '$cmd.aggregate', cursors: [r.cursor.id] });
      const extend = admin.command({ aggregate: 1, pipeline: [{ $backupCursorExtend: {} }], cursor: {} });
      expect(await pendingAfter(extend, 300)).toBe(true);
      await admin.command({ configureFailPoint: 'simHangBeforeCommand', mode: 'off' });
      // Released, it runs and fails as it would have (no backupId given).
      await expect(extend).rejects.toThrow();
    } finally {
      await admin.command({ configureFailPoint: 'simHangBeforeCommand', mode: 'off' });
    }
  });
});
