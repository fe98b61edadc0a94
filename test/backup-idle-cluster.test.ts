/**
 * An idle sharded cluster backs up without waiting for the replica sets' periodic no-op writes: while an extend waits
 * for the common timestamp, the agent writes a no-op note (`appendOplogNote`) on the replica set's primary. The
 * simulator's no-op writer is set to ten minutes here, so without the notes every extend but one would wait that long
 * and the test would time out.
 */
import type { Timestamp } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareTs } from '../common/timestamp.ts';
import { backupResult, startBackup } from '../api/backups.ts';
import { direct } from '../sim/testkit.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { toBsonTimestamp } from '../lib/bson-timestamp.ts';
import { tempDir } from './helpers/temp.ts';

let stack: SimStack;

beforeAll(async () => {
  stack = await startSimStack({ shards: 2, members: 1, noopMs: 600_000 });
}, 120_000);
afterAll(async () => {
  await stack?.stop();
});

/** The entries of a member's oplog at or after `from`, oldest first. */
async function oplogFrom(host: string, from: Timestamp) {
  const c = direct(host);
  try {
    return await c.db('local').collection('oplog.rs').find({ ts: { $gte: from } }).toArray();
  } finally {
    await c.close();
  }
}

describe('an idle cluster', () => {
  it('reaches the common timestamp through no-op notes on the lagging primaries', async () => {
    const hosts = stack.cluster.replicaSets.map((rs) => rs.config.members[0]!.host);
    const { id } = await startBackup(stack.h.client, { uri: stack.cluster.describe().mongos as string, repo: tempDir('cutpoint-idle-') });
    const summary = await backupResult(stack.h.client, id);
    expect(summary.status, JSON.stringify(summary.error)).toBe('complete');
    const common = toBsonTimestamp(summary.commonTimestamp!);
    let noted = 0;
    for (const host of hosts) {
      const entries = await oplogFrom(host, common);
      // Every extend returned, so every replica set wrote at or past the common timestamp: on its own (the
      // replica set whose oplogEnd it is, the balancer's stop on the config server) or through a note.
      expect(entries.length, host).toBeGreaterThan(0);
      const notes = entries.filter((e) => e.op === 'n' && (e.o as { backupId?: string }).backupId === id);
      for (const n of notes) {
        expect(n.o, host).toMatchObject({ msg: 'cutpoint: backup cursor extend', backupId: id });
        expect(compareTs(n.ts as Timestamp, common), host).toBeGreaterThan(0);
      }
      if (notes.length > 0 && entries.every((e) => notes.includes(e) || compareTs(e.ts as Timestamp, common) === 0)) noted++;
    }
    // At least one replica set (a shard that took no write) got past the common timestamp only through a note.
    expect(noted).toBeGreaterThan(0);
  }, 120_000);
});
