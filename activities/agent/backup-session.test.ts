/**
 * The backup session id trick (docs/psmdb-behaviour.md section 8): commands carry the chosen lsid, a later client
 * can continue the cursor in that session, and closing a client never ends the session on the server (an ended
 * session's cursors are killed at the next session refresh: 300 ms here).
 */
import { MongoClient, type Long } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimCluster } from '../../sim/cluster/cluster.ts';
import { sleep, startTestCluster } from '../../sim/testkit.ts';
import { newBackupSessionId, sessionWithId } from './backup-session.ts';

let cluster: SimCluster;
let uri: string;

beforeAll(async () => {
  cluster = await startTestCluster({ replsetOnly: true, members: 1, sessionTimeoutMs: 60_000, sessionRefreshMs: 300 });
  uri = `mongodb://${cluster.shards[0]!.localNodes[0]!.address}/?directConnection=true`;
});
afterAll(async () => {
  await cluster?.stop();
});

describe('sessionWithId', () => {
  it('keeps a backup cursor alive across clients: closing a client does not end the session', async () => {
    const sessionId = newBackupSessionId();
    const first = new MongoClient(uri);
    const session = sessionWithId(first, sessionId);
    const r = await first.db('admin').command({ aggregate: 1, pipeline: [{ $backupCursor: {} }], cursor: {} }, { session });
    const id = r.cursor.id as Long;
    await first.close();
    // Several session refreshes later, the cursor is still there and continues from another client.
    await sleep(1000);
    const second = new MongoClient(uri);
    try {
      const s2 = sessionWithId(second, sessionId);
      await expect(second.db('admin').command({ getMore: id, collection: '$cmd.aggregate' }, { session: s2 })).resolves.toMatchObject({ ok: 1 });
      const k = await second.db('admin').command({ killCursors: '$cmd.aggregate', cursors: [id] }, { session: s2 });
      expect(k.cursorsKilled).toHaveLength(1);
    } finally {
      await second.close();
    }
  });
});
