/**
 * The mongos-compatible router process (sim/bin/mongos, sim/cluster/remote-router.ts) over a SimCluster it reaches
 * only over the wire: started with `--configdb cfg/<hosts>` and read through with the real driver, it answers as a
 * router, finds the shards and the config server as the cluster has them, and reads the sharded bank collection
 * across every shard exactly as the in-process mongos (sim/cluster/mongos.ts) does: counts, the sum of balances,
 * cursors over several getMores, the pipeline stages, and a snapshot at one cluster timestamp.
 */
import type { CommandStartedEvent, Document, Timestamp } from 'mongodb';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../lib/ports.ts';
import { BankWorkload } from './cluster/bank.ts';
import type { SimCluster } from './cluster/cluster.ts';
import { BANK_NS } from './cluster/topology.ts';
import { applyWrites, ensureCollection } from './node/writes.ts';
import { direct, eventually, quietLog, runMongos, startMongosProcess, startTestCluster, stopMongod, type MongosProcess } from './testkit.ts';

let cluster: SimCluster;
let workload: BankWorkload;
let mongos: MongosProcess;
/** Through the router process. */
let router: MongoClient;
/** Through the in-process mongos of the same cluster: the reference. */
let inProcess: MongoClient;
const started: CommandStartedEvent[] = [];

const conn = (rs: { name: string; config: { members: Array<{ host: string }> } }) => `${rs.name}/${rs.config.members.map((m) => m.host).join(',')}`;

beforeAll(async () => {
  cluster = await startTestCluster({ shards: 2, members: 1 });
  workload = await BankWorkload.start(cluster, { log: quietLog(), seed: 13, accountsPerShard: 20 });
  await eventually(() => workload.crossShard >= 10, 10_000, 'cross-shard transfers');
  workload.stop();
  mongos = await startMongosProcess(conn(cluster.configRS!));
  router = new MongoClient(mongos.uri, { serverSelectionTimeoutMS: 5000, monitorCommands: true });
  router.on('commandStarted', (e) => started.push(e));
  inProcess = new MongoClient(cluster.describe().mongos as string, { serverSelectionTimeoutMS: 5000 });
});

afterAll(async () => {
  workload?.stop();
  await router?.close();
  await inProcess?.close();
  await mongos?.stop();
  await cluster?.stop();
});

/** Every bank account as each shard's primary holds it, read directly. */
async function accountsOnShards(): Promise<Document[]> {
  const all: Document[] = [];
  for (const rs of cluster.shards) {
    const c = direct(rs.primary()!.address);
    try {
      all.push(...(await c.db('bank').collection('accounts').find().toArray()));
    } finally {
      await c.close();
    }
  }
  return all;
}

const sumOf = (docs: Document[]) => docs.reduce((s, d) => s + Number(d.balance), 0);
const totalPipeline = [{ $group: { _id: null, total: { $sum: '$balance' } } }];

describe('sim/bin/mongos over a cluster in another process', () => {
  it('answers hello as a router, and lists the cluster shards and config server as the in-process mongos does', async () => {
    const admin = router.db('admin');
    const hello = await admin.command({ hello: 1 });
    expect(hello).toMatchObject({ isWritablePrimary: true, msg: 'isdbgrid', maxWireVersion: 21 });
    expect(hello.setName).toBeUndefined();
    expect(await admin.command({ isMaster: 1 })).toMatchObject({ ismaster: true, msg: 'isdbgrid' });

    const { shards } = await admin.command({ listShards: 1 });
    expect(Object.fromEntries((shards as Document[]).map((s) => [s._id, s.host]))).toEqual(Object.fromEntries(cluster.shards.map((rs) => [rs.name, conn(rs)])));
    expect(shards).toEqual((await inProcess.db('admin').command({ listShards: 1 })).shards);

    const shardMap = await admin.command({ getShardMap: 1 });
    const cfg = conn(cluster.configRS!);
    expect(shardMap.map).toEqual({ shard0: conn(cluster.shards[0]!), shard1: conn(cluster.shards[1]!), config: cfg });
    expect(shardMap.connStrings).toEqual({ [conn(cluster.shards[0]!)]: 'shard0', [conn(cluster.shards[1]!)]: 'shard1', [cfg]: 'config' });
    expect(shardMap.hosts[cluster.configRS!.config.members[0]!.host]).toBe('config');
    expect(shardMap.hosts[cluster.shards[1]!.config.members[0]!.host]).toBe('shard1');
    const { ok: _a, ...reference } = await inProcess.db('admin').command({ getShardMap: 1 });
    const { ok: _b, ...viaRouter } = shardMap;
    expect(viaRouter).toEqual(reference);
  });

  it('counts bank.accounts and sums its balances across every shard, as the in-process mongos reports them', async () => {
    const onShards = await accountsOnShards();
    const accounts = router.db('bank').collection('accounts');
    expect(onShards).toHaveLength(40);
    expect(await accounts.countDocuments()).toBe(40);
    expect(await accounts.countDocuments()).toBe(await inProcess.db('bank').collection('accounts').countDocuments());
    expect(await accounts.estimatedDocumentCount()).toBe(40);
    // count with skip and limit: each shard counts skip+limit, the router cuts the sum.
    expect((await router.db('bank').command({ count: 'accounts', skip: 5, limit: 30 })).n).toBe(30);
    expect((await router.db('bank').command({ count: 'accounts', skip: 35 })).n).toBe(5);
    const rich = onShards.filter((d) => Number(d.balance) >= 1000).length;
    expect(await accounts.countDocuments({ balance: { $gte: 1000 } })).toBe(rich);

    const [viaRouter] = await accounts.aggregate(totalPipeline).toArray();
    const [reference] = await inProcess.db('bank').collection('accounts').aggregate(totalPipeline).toArray();
    expect(viaRouter!.total).toBe(reference!.total);
    expect(viaRouter!.total).toBe(workload.history.total());
    expect(viaRouter!.total).toBe(sumOf(onShards));
  });

  it('serves a find with a small batchSize over several getMores, every account exactly once', async () => {
    started.length = 0;
    const docs = await router.db('bank').collection('accounts').find({}, { batchSize: 7 }).toArray();
    const getMores = started.filter((e) => e.commandName === 'getMore');
    expect(getMores.length).toBeGreaterThanOrEqual(5);
    expect(getMores.every((e) => Number(e.command.batchSize) === 7)).toBe(true);
    expect(docs.map((d) => String(d._id)).sort()).toEqual((await accountsOnShards()).map((d) => String(d._id)).sort());

    // Sort, skip, limit and projection apply to the merged shards, not to each shard.
    const onShards = await accountsOnShards();
    const expected = [...onShards]
      .sort((a, b) => Number(b.balance) - Number(a.balance) || (String(a._id) < String(b._id) ? -1 : 1))
      .slice(3, 13)
      .map((d) => ({ balance: d.balance }));
    const page = await router.db('bank').collection('accounts').find({}, { sort: { balance: -1, _id: 1 }, skip: 3, limit: 10, projection: { _id: 0, balance: 1 } }).toArray();
    expect(page).toEqual(expected);
  });

  it('runs $match, $group, $sort, $limit, $project and $count over the documents of every shard', async () => {
    const onShards = await accountsOnShards();
    const accounts = router.db('bank').collection('accounts');
    const median = [...onShards].map((d) => Number(d.balance)).sort((a, b) => a - b)[20]!;
    const top = await accounts
      .aggregate([{ $match: { balance: { $gte: median } } }, { $sort: { balance: -1, _id: 1 } }, { $limit: 5 }, { $project: { _id: 0, balance: 1 } }])
      .toArray();
    const expected = onShards
      .filter((d) => Number(d.balance) >= median)
      .sort((a, b) => Number(b.balance) - Number(a.balance) || (String(a._id) < String(b._id) ? -1 : 1))
      .slice(0, 5)
      .map((d) => ({ balance: d.balance }));
    expect(top).toEqual(expected);
    expect(await accounts.aggregate([{ $match: { balance: { $gte: median } } }, { $count: 'n' }]).toArray()).toEqual([
      { n: onShards.filter((d) => Number(d.balance) >= median).length },
    ]);
    // $group after a $match, over both shards.
    const groups = await accounts.aggregate([{ $match: { balance: { $gt: 0 } } }, { $group: { _id: null, n: { $sum: 1 } } }]).toArray();
    expect(groups).toEqual([{ _id: null, n: onShards.filter((d) => Number(d.balance) > 0).length }]);
    await expect(accounts.aggregate([{ $backupCursor: {} }]).toArray()).rejects.toMatchObject({ code: 40324 });
    await expect(accounts.aggregate([{ $lookup: {} }]).toArray()).rejects.toMatchObject({ code: 40324 });
  });

  it('lists databases and collections as a mongos: bank from both shards, no local', async () => {
    // A database on the config server other than admin and config is not the cluster's: mongos leaves it out.
    const cfg = cluster.configRS!.primary()!;
    ensureCollection(cfg, 'stray.things');
    const { databases } = await router.db('admin').admin().listDatabases();
    const names = databases.map((d) => d.name);
    expect(names).toEqual(expect.arrayContaining(['bank', 'config']));
    expect(names).not.toContain('local');
    expect(names).not.toContain('stray');
    expect(Object.keys((databases.find((d) => d.name === 'bank') as Document).shards).sort()).toEqual(['shard0', 'shard1']);
    // The config server adds only its admin and config databases (each shard holds a config database too: its
    // routing caches).
    expect(Object.keys((databases.find((d) => d.name === 'config') as Document).shards).sort()).toEqual(['config', 'shard0', 'shard1']);
    const collections = await router.db('bank').listCollections().toArray();
    expect(collections.map((c) => c.name)).toContain('accounts');
    // A sharded collection whose data is all on the other shard is listed too, as its owner lists it.
    const shard1 = cluster.shards[1]!.primary()!;
    ensureCollection(shard1, 'bank.ledger');
    applyWrites(shard1, [{ op: 'i', ns: 'bank.ledger', o: { _id: 1 } }]);
    ensureCollection(cfg, 'config.collections');
    applyWrites(cfg, [{ op: 'i', ns: 'config.collections', o: { _id: 'bank.ledger', key: { _id: 1 }, unique: false, shards: ['shard1'] } }]);
    try {
      expect((await router.db('bank').listCollections().toArray()).map((c) => c.name).sort()).toEqual(['accounts', 'ledger']);
      expect(await router.db('bank').collection('ledger').find().toArray()).toEqual([{ _id: 1 }]);
    } finally {
      applyWrites(cfg, [{ op: 'd', ns: 'config.collections', o: { _id: 'bank.ledger' } }]);
    }
    const configCollections = (await router.db('config').listCollections().toArray()).map((c) => c.name);
    expect(configCollections).toEqual(expect.arrayContaining(['shards', 'collections', 'databases', 'settings']));
  });

  it('reads an unsharded collection from its database primary shard only', async () => {
    await inProcess.db('bank').collection('notes').insertMany([{ _id: 'n1' as never, v: 1 }, { _id: 'n2' as never, v: 2 }]);
    await inProcess.db('app').collection('things').insertOne({ _id: 't1' as never });
    // A stray copy on the other shard, which the routing says does not hold the collection.
    const other = cluster.shards[1]!.primary()!;
    ensureCollection(other, 'bank.notes');
    applyWrites(other, [{ op: 'i', ns: 'bank.notes', o: { _id: 'stray', v: 3 } }]);
    const notes = await router.db('bank').collection('notes').find({}, { sort: { _id: 1 } }).toArray();
    expect(notes.map((d) => d._id)).toEqual(['n1', 'n2']);
    expect(await router.db('bank').collection('notes').countDocuments()).toBe(2);
    // `app` is in no config.databases document: its primary is the first shard, where the in-process router put it.
    expect(await router.db('app').collection('things').find().toArray()).toEqual([{ _id: 't1' }]);
  });

  it('reads only the shards the collection metadata names, and returns whatever they hold', async () => {
    const cfg = cluster.configRS!.primary()!;
    const entry = cfg.engine.findById('config.collections', BANK_NS)!;
    const accounts = router.db('bank').collection('accounts');
    const shard1 = cluster.shards[1]!.primary()!;
    const onShard1 = shard1.engine.scan(BANK_NS).length;
    try {
      applyWrites(cfg, [{ op: 'u', ns: 'config.collections', o: { ...entry, shards: ['shard1'] }, o2: { _id: BANK_NS } }]);
      expect(await accounts.countDocuments()).toBe(onShard1);
      expect(await accounts.countDocuments()).toBeLessThan(40);
    } finally {
      applyWrites(cfg, [{ op: 'u', ns: 'config.collections', o: entry, o2: { _id: BANK_NS } }]);
    }
    // A document of shard0 also on shard1 (a restore that put it on both) shows twice: no orphan filtering.
    const moved = cluster.shards[0]!.primary()!.engine.scan(BANK_NS)[0]!;
    applyWrites(shard1, [{ op: 'i', ns: BANK_NS, o: moved }]);
    try {
      expect(await accounts.find({ _id: moved._id }).toArray()).toEqual([moved, moved]);
      expect(await accounts.countDocuments()).toBe(41);
    } finally {
      applyWrites(shard1, [{ op: 'd', ns: BANK_NS, o: { _id: moved._id } }]);
    }
    expect(await accounts.countDocuments()).toBe(40);
  });

  it('reads and sets the balancer state on the config server', async () => {
    const admin = router.db('admin');
    expect((await admin.command({ balancerStatus: 1 })).mode).toBe('full');
    await admin.command({ balancerStop: 1 });
    try {
      expect((await inProcess.db('admin').command({ balancerStatus: 1 })).mode).toBe('off');
      expect((await admin.command({ balancerStatus: 1 })).mode).toBe('off');
    } finally {
      await admin.command({ balancerStart: 1 });
    }
    expect((await inProcess.db('admin').command({ balancerStatus: 1 })).mode).toBe('full');
  });

  it('refuses writes and unknown commands as a server does', async () => {
    await expect(router.db('bank').collection('accounts').insertOne({ _id: 'new' as never })).rejects.toMatchObject({
      code: 115,
      message: expect.stringContaining('sim/bin/mongos'),
    });
    await expect(router.db('admin').command({ noSuchCommand: 1 })).rejects.toMatchObject({ code: 59, codeName: 'CommandNotFound' });
    await expect(router.db('bank').command({ listShards: 1 })).rejects.toMatchObject({ code: 13 });
    // Transactions run through the in-process mongos only (sim/cluster/router-transactions.ts).
    const session = router.startSession();
    try {
      session.startTransaction();
      await expect(router.db('bank').collection('accounts').findOne({}, { session })).rejects.toMatchObject({
        code: 115,
        message: "the simulator's mongos process does not support transactions",
      });
    } finally {
      await session.abortTransaction().catch(() => undefined);
      await session.endSession();
    }
  });

  it('reads one cluster timestamp across the shards with readConcern snapshot (passed on to every shard) while transfers go on', async () => {
    workload.resume();
    try {
      const before = workload.committed;
      await eventually(() => workload.committed >= before + 15, 10_000, 'more transfers');
      // Ten transfers back: the latest state differs from it in the accounts those ten moved money between.
      const ts: Timestamp = workload.history.transfers.at(-10)!.ts;
      const at = async (pipeline: Document[]) => {
        const reply = await router.db('bank').command({ aggregate: 'accounts', pipeline, cursor: {}, readConcern: { level: 'snapshot', atClusterTime: ts } });
        return reply.cursor.firstBatch as Document[];
      };
      const got = Object.fromEntries((await at([{ $match: {} }])).map((d) => [String(d._id), Number(d.balance)]));
      const expected = Object.fromEntries(cluster.shards.flatMap((rs) => [...workload.history.stateAt(rs.name, ts)]));
      expect(got).toEqual(expected);
      expect(await at(totalPipeline)).toEqual([{ _id: null, total: workload.history.total() }]);
    } finally {
      workload.stop();
    }
  });
});

describe('sim/bin/mongos as a process', () => {
  it('without a reachable config server, answers hello and fails routed commands with FailedToSatisfyReadPreference', async () => {
    const keyFile = join(mkdtempSync(join(tmpdir(), 'cutpoint-mongos-key-')), 'key');
    writeFileSync(keyFile, 'c2ltdWxhdG9ya2V5', { mode: 0o600 });
    const p = await startMongosProcess(`cfg/127.0.0.1:${await freePort()}`, { keyFile, setParameters: { defaultFindReplicaSetHostTimeoutMS: 500 } });
    const c = new MongoClient(p.uri, { serverSelectionTimeoutMS: 5000 });
    onTestFinished(() => p.stop().then(() => undefined));
    try {
      expect((await c.db('admin').command({ hello: 1 })).msg).toBe('isdbgrid');
      expect((await c.db('admin').command({ getCmdLineOpts: 1 })).parsed).toMatchObject({ sharding: { configDB: expect.stringMatching(/^cfg\//) }, security: { keyFile } });
      const t0 = Date.now();
      await expect(c.db('admin').command({ listShards: 1 })).rejects.toMatchObject({ code: 133, codeName: 'FailedToSatisfyReadPreference' });
      await expect(c.db('bank').collection('accounts').countDocuments()).rejects.toMatchObject({ code: 133 });
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      await c.close();
    }
    expect(await p.stop()).toBe(0);
    expect(p.output()).toContain('"id":23016');
    expect(p.output()).toContain('"msg":"Now exiting"');
  });

  it('exits 2 on a --configdb that is not a replica-set connection string, or an unknown parameter; 1 on a missing key file', async () => {
    const port = String(await freePort());
    const bad = await runMongos(['--configdb', '127.0.0.1:1', '--port', port]);
    onTestFinished(() => void stopMongod(bad));
    expect(await bad.exited).toBe(2);
    expect(bad.output()).toContain('configdb supports only replica set connection string');
    const unknown = await runMongos(['--configdb', 'cfg/127.0.0.1:1', '--port', port, '--setParameter', 'noSuchParameter=1']);
    onTestFinished(() => void stopMongod(unknown));
    expect(await unknown.exited).toBe(2);
    expect(unknown.output()).toContain("Unknown --setParameter 'noSuchParameter'");
    // A key file mongod would refuse ends mongos too (exit 1, mongod's message).
    const noKey = await runMongos(['--configdb', 'cfg/127.0.0.1:1', '--port', port, '--keyFile', '/nonexistent/key']);
    onTestFinished(() => void stopMongod(noKey));
    expect(await noKey.exited).toBe(1);
    expect(noKey.output()).toContain('Error reading file /nonexistent/key: No such file or directory');
  });
});
