/**
 * `openBackupCursor` on a member that has taken no stable checkpoint yet (it just started): the server answers with
 * no `checkpointTimestamp`, and files pinned by such a cursor cannot be recovered to a point in time. The open closes
 * that cursor and waits until the member has a stable checkpoint, then opens on it.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Document } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimCluster } from '../../sim/cluster/cluster.ts';
import { direct, startTestCluster } from '../../sim/testkit.ts';
import { fsRepository } from '../../repository/repository.ts';
import { backupCursorActivities, type OpenedCursor } from './backup-cursor.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let cluster: SimCluster;
let host: string;
const repo = mkdtempSync(join(tmpdir(), 'cutpoint-unstable-'));

beforeAll(async () => {
  // Checkpoints every 5 s: for the first seconds the member has only the unstable checkpoint of its start.
  cluster = await startTestCluster({ replsetOnly: true, members: 1, checkpointMs: 5000 });
  host = cluster.shards[0]!.localNodes[0]!.address;
});
afterAll(async () => {
  await cluster?.stop();
  rmSync(repo, { recursive: true, force: true });
});

describe('openBackupCursor on a member without a stable checkpoint', () => {
  it('waits for the first stable checkpoint instead of pinning an unrecoverable one', async () => {
    const c = direct(host);
    try {
      // The premise: right now the server's cursor would carry no checkpointTimestamp.
      const raw = await c.db('admin').command({ aggregate: 1, pipeline: [{ $backupCursor: {} }], cursor: {} });
      const meta = (raw.cursor.firstBatch[0] as { metadata: Document }).metadata;
      await c.db('admin').command({ killCursors: '$cmd.aggregate', cursors: [raw.cursor.id] });
      expect(meta.oplogEnd).toBeDefined();
      expect(meta.checkpointTimestamp).toBeUndefined();

      const acts = backupCursorActivities({ mongod: host, repository: (p) => fsRepository(p) });
      const env = new MockActivityEnvironment();
      const opened = (await env.run(acts.openBackupCursor, {
        target: { uri: `mongodb://${host}/?replicaSet=rs0`, credentials: { kind: 'none' as const } },
        backupId: 'b-unstable',
        replicaSet: 'rs0',
        repo,
        ifBusy: 'fail' as const,
      })) as OpenedCursor;
      expect(opened.checkpointTimestamp).not.toBeNull();
      await env.run(acts.closeBackupCursor, { target: { uri: `mongodb://${host}/?replicaSet=rs0`, credentials: { kind: 'none' as const } }, backupId: 'b-unstable', replicaSet: 'rs0', cursorId: opened.cursorId, sessionId: opened.sessionId });
      // Only the cursor it kept was open, and it is closed now.
      expect((await c.db('admin').command({ serverStatus: 1 })).storageEngine.backupCursorOpen).toBe(false);
    } finally {
      await c.close();
    }
  });
});
