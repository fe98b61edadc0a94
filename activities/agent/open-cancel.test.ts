/**
 * `openBackupCursor` cancelled while `$backupCursor` is in flight on the server (held by the simulator's fail point):
 * the command is let finish, the cursor it opened is killed, and the activity ends cancelled — no cursor is left to
 * pin the checkpoint until its session expires. (The workflow waits for this: test/backup-phases.test.ts.)
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import type { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimCluster } from '../../sim/cluster/cluster.ts';
import { direct, sleep, startTestCluster } from '../../sim/testkit.ts';
import { fsRepository } from '../../repository/repository.ts';
import { tempDir } from '../../test/helpers/temp.ts';
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

const backupCursorOpen = async () => (await c.db('admin').command({ serverStatus: 1 })).storageEngine.backupCursorOpen as boolean;
const acts = () => backupCursorActivities({ mongod: host, repository: (p) => fsRepository(p) });
const input = (backupId: string) => ({
  target: { uri: `mongodb://${host}/?replicaSet=rs0`, credentials: { kind: 'none' as const } },
  backupId,
  replicaSet: 'rs0',
  repo: tempDir('cutpoint-open-cancel-'),
});
const failPoint = (mode: 'alwaysOn' | 'off') =>
  c.db('admin').command({ configureFailPoint: 'simHangBeforeCommand', mode, data: { commands: ['aggregate'], stages: ['$backupCursor'] } });

describe('openBackupCursor cancelled', () => {
  it('while $backupCursor is in flight: the command finishes, its cursor is killed, the activity ends cancelled', async () => {
    // A first, normal open and close: the node has a stable checkpoint by then (an open without one closes its
    // cursor and waits for one, which would hide what this test looks at).
    const first = (await new MockActivityEnvironment().run(acts().openBackupCursor, input('b-first'))) as OpenedCursor;
    expect(await backupCursorOpen()).toBe(true);
    await new MockActivityEnvironment().run(acts().closeBackupCursor, { ...input('b-first'), cursorId: first.cursorId, sessionId: first.sessionId });
    expect(await backupCursorOpen()).toBe(false);

    await failPoint('alwaysOn');
    const env = new MockActivityEnvironment();
    const outcome = env.run(acts().openBackupCursor, input('b-cancelled')).then(
      () => 'opened',
      (e: unknown) => e,
    );
    await sleep(500);
    env.cancel();
    await sleep(300);
    // Still held on the server: the cancel does not abandon the command in flight.
    expect(await backupCursorOpen()).toBe(false);
    await failPoint('off');
    const result = await outcome;
    expect(String(result)).toMatch(/cancel/i);
    // The open went through on the server, then the activity killed its session (and so its cursor) before it
    // ended: not later, when the server reaps an ended session.
    expect(await backupCursorOpen()).toBe(false);
  });
});
