/**
 * The node and router command surface through the official driver: replica-set configuration (priority, hidden,
 * secondaryDelaySecs) reflected in hello and replSetGetStatus, the balancer's state living in the config server's
 * data, the periodic no-op writer, parameters, flavours, and MongoDB's own errors for what the sim does not do.
 */
import type { Document, Timestamp } from 'mongodb';
import { afterEach, describe, expect, it } from 'vitest';
import type { SimCluster } from '../cluster/cluster.ts';
import { direct, eventually, sleep, startTestCluster } from '../testkit.ts';
import { compareTs } from './clock.ts';

let cluster: SimCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

describe('replica-set configuration', () => {
  it('replSetReconfig sets priority, hidden and secondaryDelaySecs, reflected in hello and replSetGetStatus', async () => {
    cluster = await startTestCluster({ replsetOnly: true, members: 3 });
    const hosts = cluster.shards[0]!.config.members.map((m) => m.host);
    const p = direct(hosts[0]!);
    try {
      const { config } = await p.db('admin').command({ replSetGetConfig: 1 });
      expect(config.members.map((m: Document) => m.host)).toEqual(hosts);
      config.version += 1;
      config.members[1].priority = 0;
      config.members[1].hidden = true;
      config.members[2].priority = 0;
      config.members[2].secondaryDelaySecs = 3600;
      await p.db('admin').command({ replSetReconfig: config });

      const hidden = await direct(hosts[1]!).db('admin').command({ hello: 1 });
      expect(hidden.hidden).toBe(true);
      expect(hidden.hosts).toEqual([hosts[0]]);
      expect(hidden.passives).toEqual([hosts[2]]);
      const delayed = await direct(hosts[2]!).db('admin').command({ hello: 1 });
      expect(Number(delayed.secondaryDelaySecs)).toBe(3600);
      expect(delayed.passive).toBe(true);
      const status = await p.db('admin').command({ replSetGetStatus: 1 });
      expect(status.members.map((m: Document) => m.stateStr)).toEqual(['PRIMARY', 'SECONDARY', 'SECONDARY']);
      expect((await p.db('admin').command({ replSetGetConfig: 1 })).config.version).toBe(config.version);

      // The delayed member now stays an hour behind: a write reaches the others but not it.
      await p.db('app').collection('t').insertOne({ _id: 1 as never });
      await eventually(async () => (await direct(hosts[1]!).db('app').collection('t').countDocuments()) === 1, 5000, 'hidden member to apply');
      await sleep(300);
      expect(await direct(hosts[2]!).db('app').collection('t').countDocuments()).toBe(0);

      await expect(p.db('admin').command({ replSetReconfig: { ...config } })).rejects.toMatchObject({ code: 103 });
      const bad = structuredClone(config);
      bad.version += 1;
      bad.members[0].hidden = true;
      await expect(p.db('admin').command({ replSetReconfig: bad })).rejects.toMatchObject({ code: 93 });
    } finally {
      await p.close();
    }
  });

  it('the periodic no-op writer advances an idle replica set', async () => {
    cluster = await startTestCluster({ replsetOnly: true, members: 1, noopMs: 300 });
    const c = direct(cluster.shards[0]!.config.members[0]!.host);
    try {
      const first = (await c.db('admin').command({ hello: 1 })).lastWrite.opTime.ts as Timestamp;
      await sleep(1200);
      const later = (await c.db('admin').command({ hello: 1 })).lastWrite.opTime.ts as Timestamp;
      expect(compareTs(later, first)).toBeGreaterThan(0);
      const noops = await c.db('local').collection('oplog.rs').find({ op: 'n' }).toArray();
      expect(noops.length).toBeGreaterThanOrEqual(2);
    } finally {
      await c.close();
    }
  });
});

describe('appendOplogNote', () => {
  it('writes a no-op entry with its data on the primary; a secondary and bad input are refused', async () => {
    cluster = await startTestCluster({ replsetOnly: true, members: 2, noopMs: 0 });
    const [h0, h1] = cluster.shards[0]!.config.members.map((m) => m.host);
    const p = direct(h0!);
    const s = direct(h1!);
    try {
      const before = (await p.db('admin').command({ hello: 1 })).lastWrite.opTime.ts as Timestamp;
      await p.db('admin').command({ appendOplogNote: 1, data: { note: 'advance' } });
      const after = (await p.db('admin').command({ hello: 1 })).lastWrite.opTime.ts as Timestamp;
      expect(compareTs(after, before)).toBeGreaterThan(0);
      const [top] = await p.db('local').collection('oplog.rs').find().sort({ $natural: -1 }).limit(1).toArray();
      expect(top).toMatchObject({ op: 'n', o: { note: 'advance' } });
      expect(compareTs(top!.ts as Timestamp, after)).toBe(0);
      await expect(s.db('admin').command({ appendOplogNote: 1, data: {} })).rejects.toMatchObject({ code: 10107 });
      await expect(p.db('admin').command({ appendOplogNote: 1 })).rejects.toMatchObject({ code: 40414 });
      await expect(p.db('admin').command({ appendOplogNote: 1, data: 'x' })).rejects.toMatchObject({ code: 14 });
    } finally {
      await p.close();
      await s.close();
    }
  });
});

describe('mongos', () => {
  it('lists shards and keeps the balancer state in the config server data', async () => {
    cluster = await startTestCluster({ shards: 2, members: 1 });
    const ms = direct(cluster.mongos!.address);
    const cfg = direct(cluster.configRS!.primary()!.address);
    try {
      const shards = (await ms.db('admin').command({ listShards: 1 })).shards as Document[];
      expect(shards.map((s) => s._id)).toEqual(['shard0', 'shard1']);
      expect((await ms.db('admin').command({ balancerStatus: 1 })).mode).toBe('full');
      await ms.db('admin').command({ balancerStop: 1 });
      expect((await ms.db('admin').command({ balancerStatus: 1 })).mode).toBe('off');
      const stored = await cfg.db('config').collection('settings').findOne({ _id: 'balancer' as never });
      expect(stored).toMatchObject({ mode: 'off', stopped: true });
      await ms.db('admin').command({ balancerStart: 1 });
      expect((await ms.db('admin').command({ balancerStatus: 1 })).mode).toBe('full');
      await expect(ms.db('admin').command({ aggregate: 1, pipeline: [{ $backupCursor: {} }], cursor: {} })).rejects.toMatchObject({ code: 40324 });
      // Each shard knows its identity and its config server.
      const identity = await direct(cluster.shards[1]!.primary()!.address).db('admin').collection('system.version').findOne({ _id: 'shardIdentity' as never });
      expect(identity).toMatchObject({ shardName: 'shard1' });
    } finally {
      await Promise.all([ms.close(), cfg.close()]);
    }
  });
});

describe('node commands', () => {
  it('answers what cutpoint reads, and refuses what it does not implement with MongoDB codes', async () => {
    cluster = await startTestCluster({ replsetOnly: true, members: 1 });
    const node = cluster.shards[0]!.localNodes[0]!;
    const c = direct(node.address);
    try {
      const info = await c.db('admin').command({ buildInfo: 1 });
      expect(info.version).toMatch(/^7\.0\./);
      expect(info.psmdbVersion).toBeDefined();
      expect((await c.db('admin').command({ getCmdLineOpts: 1 })).parsed.storage.dbPath).toBe(node.dbpath);
      expect((await c.db('admin').command({ serverStatus: 1 })).storageEngine.backupCursorOpen).toBe(false);
      await expect(c.db('admin').command({ frobnicate: 1 })).rejects.toMatchObject({ code: 59, codeName: 'CommandNotFound' });
      expect((await c.db('admin').command({ getParameter: 1, cursorTimeoutMillis: 1 })).cursorTimeoutMillis).toBe(600_000);
      expect((await c.db('admin').command({ setParameter: 1, cursorTimeoutMillis: 5000 })).was).toBe(600_000);
      await expect(c.db('admin').command({ setParameter: 1, recoverFromOplogAsStandalone: true })).rejects.toMatchObject({ code: 2 });
      await expect(c.db('app').collection('t').aggregate([{ $lookup: {} }]).toArray()).rejects.toMatchObject({ code: 40324 });
    } finally {
      await c.close();
    }
  });

  it('a node started as MongoDB Community has no $backupCursor (40324) and no psmdbVersion', async () => {
    cluster = await startTestCluster({ replsetOnly: true, members: 1, flavor: 'community' });
    const c = direct(cluster.shards[0]!.localNodes[0]!.address);
    try {
      expect((await c.db('admin').command({ buildInfo: 1 })).psmdbVersion).toBeUndefined();
      await expect(c.db('admin').command({ aggregate: 1, pipeline: [{ $backupCursor: {} }], cursor: {} })).rejects.toMatchObject({
        code: 40324,
        message: "Unrecognized pipeline stage name: '$backupCursor'",
      });
    } finally {
      await c.close();
    }
  });
});
