/**
 * The preflight of a point-in-time restore (repository/pitr-base.ts) over a repository alone: the base is the newest
 * complete backup at or before the target; a target after the captured oplog, before every backup, or with a gap
 * between the base and it is refused with PITR_NOT_RESTORABLE naming the window (and the gap); a capture that holds a
 * transaction prepared by the target but not yet decided refuses it too; the cluster is the one whose captured replica
 * sets are the map's.
 */
import { BSON, Long, Timestamp } from 'mongodb';
import { describe, expect, it } from 'vitest';
import type { Ts } from '../common/timestamp.ts';
import { MemoryStorage } from './memory-storage.ts';
import { OplogSegments } from './oplog-segments.ts';
import { choosePitrBase } from './pitr-base.ts';
import { Repository } from './repository.ts';

const RS = ['cfg', 'shard0'];
const noop = (t: number) => ({ ts: new Timestamp({ t, i: 1 }), op: 'n', ns: '', o: { msg: 'noop' } });

async function backup(repo: Repository, id: string, minute: number, common: Ts): Promise<void> {
  const at = new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString();
  const replicaSets = RS.map((name) => ({ name, configServer: name === 'cfg', node: `${name}:1` }));
  await repo.writeClusterManifest({ format: 'cutpoint/v2', id, cluster: 'c1', status: 'running', startedAt: at, finishedAt: null, commonTimestamp: null, balancerWasEnabled: null, bytes: 0, replicaSets });
  for (const r of replicaSets) {
    await repo.writeReplicaSetManifest(id, { format: 'cutpoint/v2', name: r.name, node: r.node, backupId: 'u', dbpath: '/d', oplogStart: null, oplogEnd: null, checkpointTimestamp: null, extendedTo: common, files: [] });
  }
  await repo.writeClusterManifest({ format: 'cutpoint/v2', id, cluster: 'c1', status: 'complete', startedAt: at, finishedAt: at, commonTimestamp: common, balancerWasEnabled: null, bytes: 0, replicaSets });
}

/** Seals one segment of `docs` (entries at seconds) for `rs`. */
async function seal(segs: OplogSegments, rs: string, docs: Array<Record<string, unknown>>, prev: Ts | null, gap?: { from: Ts; to: Ts }): Promise<Ts> {
  const first = { t: (docs[0]!.ts as Timestamp).t, i: 1 };
  const last = { t: (docs.at(-1)!.ts as Timestamp).t, i: 1 };
  await segs.seal({ cluster: 'c1', replicaSet: rs, docs: docs.map((d) => Buffer.from(BSON.serialize(d))), first, last, prev, ...(gap ? { gap } : {}), node: `${rs}:1` });
  return last;
}
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, k) => noop(a + k));

async function setup(): Promise<{ repo: Repository; segs: OplogSegments }> {
  const repo = new Repository(new MemoryStorage());
  await repo.init();
  const segs = new OplogSegments(repo);
  for (const rs of RS) {
    const p = await seal(segs, rs, range(100, 119), null);
    await seal(segs, rs, range(120, 139), p);
  }
  await backup(repo, 'b-105', 1, { t: 105, i: 1 });
  await backup(repo, 'b-125', 2, { t: 125, i: 1 });
  return { repo, segs };
}

describe('the point-in-time preflight', () => {
  it('takes the newest complete backup at or before the target', async () => {
    const { repo } = await setup();
    expect(await choosePitrBase(repo, RS, { t: 130, i: 7 }, { scan: true })).toEqual({ cluster: 'c1', backupId: 'b-125', base: { t: 125, i: 1 }, at: { t: 130, i: 7 } });
    expect((await choosePitrBase(repo, RS, { t: 124, i: 1 })).backupId).toBe('b-105');
    expect((await choosePitrBase(repo, RS, { t: 125, i: 1 })).backupId).toBe('b-125');
  });

  it('refuses a target after the capture or before every backup, naming the window', async () => {
    const { repo } = await setup();
    const window = 'cluster c1 can be restored from Timestamp(105, 1) to Timestamp(139, 1)';
    await expect(choosePitrBase(repo, RS, { t: 139, i: 2 })).rejects.toMatchObject({ code: 'PITR_NOT_RESTORABLE', message: expect.stringContaining(`Timestamp(139, 2) is after the captured oplog: ${window}`) });
    await expect(choosePitrBase(repo, RS, { t: 104, i: 9 })).rejects.toMatchObject({ code: 'PITR_NOT_RESTORABLE', message: expect.stringContaining(window) });
  });

  it('refuses a target with a gap between its base and it on any replica set, naming the gap', async () => {
    const { repo, segs } = await setup();
    await seal(segs, 'cfg', range(150, 159), { t: 139, i: 1 }, { from: { t: 139, i: 1 }, to: { t: 150, i: 1 } });
    await seal(segs, 'shard0', range(140, 159), { t: 139, i: 1 });
    await expect(choosePitrBase(repo, RS, { t: 155, i: 1 })).rejects.toMatchObject({
      code: 'PITR_NOT_RESTORABLE',
      message: expect.stringMatching(/replica set cfg: the captured oplog has a gap from Timestamp\(139, 1\) to Timestamp\(150, 1\) between the base backup b-125 \(Timestamp\(125, 1\)\) and Timestamp\(155, 1\): from that base the window ends at Timestamp\(139, 1\); after the gap a target needs a backup taken after Timestamp\(150, 1\)/),
    });
    // Before the gap the window stands; a base after the gap makes the target restorable again.
    expect((await choosePitrBase(repo, RS, { t: 138, i: 1 })).backupId).toBe('b-125');
    await backup(repo, 'b-152', 3, { t: 152, i: 1 });
    expect((await choosePitrBase(repo, RS, { t: 155, i: 1 })).backupId).toBe('b-152');
  });

  it('refuses a target by which a transaction was prepared that the capture has not seen decided', async () => {
    const { repo, segs } = await setup();
    const prepared = { ts: new Timestamp({ t: 140, i: 1 }), op: 'c', ns: 'admin.$cmd', o: { applyOps: [{ op: 'i', ns: 'bank.a', o: { _id: 1 } }], prepare: true }, lsid: { id: 's' }, txnNumber: Long.fromNumber(1), prevOpTime: { ts: new Timestamp({ t: 0, i: 0 }), t: -1 } };
    await seal(segs, 'shard0', [prepared, ...range(141, 145)], { t: 139, i: 1 });
    await seal(segs, 'cfg', range(140, 145), { t: 139, i: 1 });
    await expect(choosePitrBase(repo, RS, { t: 142, i: 1 }, { scan: true })).rejects.toMatchObject({ code: 'PITR_NOT_RESTORABLE', message: expect.stringContaining('replica set shard0: the transaction prepared at Timestamp(140, 1) is not yet committed or aborted') });
    expect((await choosePitrBase(repo, RS, { t: 139, i: 5 }, { scan: true })).backupId).toBe('b-125');
  });

  it('names the captured clusters when none has the map replica sets', async () => {
    const { repo } = await setup();
    await expect(choosePitrBase(repo, ['rs0'], { t: 130, i: 1 })).rejects.toMatchObject({ code: 'BAD_USAGE', message: expect.stringContaining('captured clusters: c1') });
  });
});
