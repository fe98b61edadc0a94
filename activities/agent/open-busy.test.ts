/**
 * `openBackupCursor` on a node whose single backup slot another cursor holds (50886): `ifBusy: 'fail'` fails at once
 * with BACKUP_CURSOR_BUSY, `'wait'` waits (heartbeating) and opens as soon as the slot frees.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Document, MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimCluster } from '../../sim/cluster/cluster.ts';
import { direct, sleep, startTestCluster } from '../../sim/testkit.ts';
import { fsRepository } from '../../repository/repository.ts';
import { backupCursorActivities, type OpenedCursor } from './backup-cursor.ts';

let cluster: SimCluster;
let host: string;
let c: MongoClient;

beforeAll(async () => {
  cluster = await startTestCluster({ replsetOnly: true, members: 1 });
  host = cluster.shards[0]!.localNodes[0]!.address;
  c = direct(host);
});
afterAll(async () => {
  await c?.close();
  await cluster?.stop();
});

const acts = () => backupCursorActivities({ mongod: host, repository: (p) => fsRepository(p) });
const input = (ifBusy: 'fail' | 'wait') => ({
  target: { uri: `mongodb://${host}/?replicaSet=rs0`, credentials: { kind: 'none' as const } },
  backupId: `b-${ifBusy}`,
  replicaSet: 'rs0',
  repo: mkdtempSync(join(tmpdir(), 'cutpoint-busy-')),
  ifBusy,
});
const holdSlot = async (): Promise<Document> => c.db('admin').command({ aggregate: 1, pipeline: [{ $backupCursor: {} }], cursor: {} });
const release = (held: Document) => c.db('admin').command({ killCursors: '$cmd.aggregate', cursors: [held.cursor.id] });

describe('openBackupCursor on a busy node', () => {
  it("'fail': BACKUP_CURSOR_BUSY naming the node, at once", async () => {
    const held = await holdSlot();
    try {
      const started = Date.now();
      await expect(new MockActivityEnvironment().run(acts().openBackupCursor, input('fail'))).rejects.toMatchObject({
        type: 'BACKUP_CURSOR_BUSY',
        nonRetryable: true,
        message: expect.stringContaining(`${host}: another backup cursor is open`),
      });
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await release(held);
    }
  });

  it("'wait': heartbeats while the slot is taken, opens once it frees", async () => {
    const held = await holdSlot();
    const env = new MockActivityEnvironment();
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    let settled = false;
    const opening = env.run(acts().openBackupCursor, input('wait')).finally(() => (settled = true));
    await sleep(3000);
    expect(settled).toBe(false);
    expect(beats.some((b) => typeof b === 'object' && b !== null && 'waitingForSlot' in b)).toBe(true);
    await release(held);
    const opened = (await opening) as OpenedCursor;
    expect(opened.files).toBeGreaterThan(0);
    expect((await c.db('admin').command({ serverStatus: 1 })).storageEngine.backupCursorOpen).toBe(true);
    await new MockActivityEnvironment().run(acts().closeBackupCursor, { ...input('wait'), cursorId: opened.cursorId, sessionId: opened.sessionId });
    expect((await c.db('admin').command({ serverStatus: 1 })).storageEngine.backupCursorOpen).toBe(false);
  });
});
