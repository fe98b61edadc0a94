/**
 * An idle sharded cluster backs up without waiting for the replica sets' periodic no-op writes: while an extend waits
 * for the common timestamp, the agent writes a no-op note (`appendOplogNote`) on the replica set's primary. The
 * simulator's no-op writer is set to ten minutes here, so without the notes every extend but one would wait that long
 * and the test would time out.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Timestamp } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareTs } from '../common/timestamp.ts';
import { backupResult, startBackup } from '../scripts/api/backups.ts';
import { direct } from '../sim/testkit.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';

let stack: SimStack;

beforeAll(async () => {
  stack = await startSimStack({ shards: 2, members: 1, noopMs: 600_000 });
}, 120_000);
afterAll(async () => {
  await stack?.stop();
});

/** The newest oplog entry of each replica set, and the notes a backup wrote there. */
async function oplogOf(host: string, backupId?: string) {
  const c = direct(host);
  try {
    const oplog = c.db('local').collection('oplog.rs');
    const [top] = await oplog.find().sort({ $natural: -1 }).limit(1).toArray();
    const notes = backupId ? await oplog.find({ op: 'n', 'o.backupId': backupId }).toArray() : [];
    return { top: top!.ts as Timestamp, notes };
  } finally {
    await c.close();
  }
}

describe('an idle cluster', () => {
  it('reaches the common timestamp through no-op notes on the lagging primaries', async () => {
    const hosts = stack.cluster.replicaSets.map((rs) => rs.config.members[0]!.host);
    const before = await Promise.all(hosts.map((h) => oplogOf(h)));
    const { id } = await startBackup(stack.h.client, { uri: stack.cluster.describe().mongos as string, repo: mkdtempSync(join(tmpdir(), 'cutpoint-idle-')) });
    const summary = await backupResult(stack.h.client, id);
    expect(summary.status, JSON.stringify(summary.error)).toBe('complete');
    const common = new Timestamp({ t: summary.commonTimestamp!.t, i: summary.commonTimestamp!.i });
    const after = await Promise.all(hosts.map((h) => oplogOf(h, id)));
    // Every replica set that was behind the common timestamp got there by a note written after it was chosen.
    const behind = hosts.filter((_, i) => compareTs(before[i]!.top, common) < 0);
    expect(behind.length).toBeGreaterThan(0);
    for (const [i, host] of hosts.entries()) {
      if (!behind.includes(host)) continue;
      expect(after[i]!.notes.length, host).toBeGreaterThan(0);
      expect(after[i]!.notes[0]!.o).toMatchObject({ msg: 'cutpoint: backup cursor extend', backupId: id });
      expect(compareTs(after[i]!.notes[0]!.ts as Timestamp, common), host).toBeGreaterThan(0);
    }
  }, 120_000);
});
