/**
 * Sharded restore: a 2-shard simulated cluster backed up through mongos under the bank workload (transfers across
 * shards at one cluster timestamp) is restored, config server and both shards, to new ports and dbpaths in one
 * workflow. Every restored replica set runs at the common timestamp, together they equal history there and keep
 * the bank invariant, the config server's newest write is exactly the source's newest at or before the common
 * timestamp, the shard map and shard identities name the new hosts, and the balancer is as the backup recorded it
 * (the backup itself stopped it, so the restored config data alone would say "off"); a backup taken with the balancer
 * disabled restores with it disabled. Each shard's routing caches and sessions are emptied, their collections (and
 * UUIDs) kept.
 *
 * The restored cluster is checked member by member with the driver, and then as an operator checks it: through a
 * router (sim/bin/mongos) started over the restored config server, which must name the new hosts and show every
 * account exactly once with the invariant total.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Document } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterManifest } from '../common/manifest.ts';
import type { StartedMember } from '../common/restore-types.ts';
import { compareTs } from '../common/timestamp.ts';
import { backupResult, startBackup } from '../api/backups.ts';
import { restoreResult, startRestore } from '../api/restores.ts';
import { connect, helloOf, lastRealOplogTs, expectShardsAtHistory, newMembers, startTargetAgents, stopMembers, toTimestamp, useSimMongod } from './helpers/restore-targets.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { fromBsonTimestamp } from '../lib/bson-timestamp.ts';
import { tempDir } from './helpers/temp.ts';
import { expectRoutedView, startMongosProcess, type MongosProcess } from './helpers/mongos.ts';

let stack: SimStack;
const started: StartedMember[] = [];
const agents: Array<{ stop(): Promise<void> }> = [];
const routers: MongosProcess[] = [];

beforeAll(async () => {
  useSimMongod();
  stack = await startSimStack({ shards: 2, members: 3, checkpointMs: 1000, bank: true });
});
afterAll(async () => {
  for (const r of routers) await r.stop();
  await stopMembers(started);
  for (const a of agents) await a.stop();
  await stack?.stop();
});

async function findAll(host: string, db: string, coll: string): Promise<Document[]> {
  const c = connect(host);
  try {
    return await c.db(db).collection(coll).find().toArray();
  } finally {
    await c.close();
  }
}

/** A member's `config.cache.*` and `config.system.sessions`: collection UUID and document count, by name. */
async function cacheCollections(host: string): Promise<Record<string, { uuid: string; count: number }>> {
  const c = connect(host);
  try {
    const config = c.db('config');
    const out: Record<string, { uuid: string; count: number }> = {};
    for (const info of await config.listCollections().toArray()) {
      if (!info.name.startsWith('cache.') && info.name !== 'system.sessions') continue;
      out[info.name] = { uuid: String((info as { info?: { uuid?: { toHexString(): string } } }).info?.uuid?.toHexString()), count: await config.collection(info.name).countDocuments() };
    }
    return out;
  } finally {
    await c.close();
  }
}

describe('sharded restore', () => {
  it('restores the config server and both shards to one common timestamp, with the new hosts and the recorded balancer state', async () => {
    const repo = tempDir('cutpoint-repo-sharded-');
    const backup = await backupResult(stack.h.client, (await startBackup(stack.h.client, { uri: stack.cluster.describe().mongos as string, repo, keepAliveIntervalMs: 1000 })).id);
    expect(backup.status).toBe('complete');
    const cm = JSON.parse(readFileSync(join(repo, 'backups', backup.id, 'manifest.json'), 'utf8')) as ClusterManifest;
    expect(cm.replicaSets.map((r) => r.name).sort()).toEqual(['cfg', 'shard0', 'shard1']);
    expect(cm.balancerWasEnabled).toBe(true);

    const [cfg, s0, s1] = await newMembers(3, 'sharded');
    agents.push(await startTargetAgents(stack.h, [cfg!, s0!, s1!]));
    const { id } = await startRestore(stack.h.client, { backupId: backup.id, repo, to: { cfg: [cfg!], shard0: [s0!], shard1: [s1!] } });
    const summary = await restoreResult(stack.h.client, id);
    started.push(...summary.replicaSets.flatMap((r) => r.members));
    expect(summary.error).toBeUndefined();
    expect(summary.status).toBe('complete');
    const common = summary.commonTimestamp!;
    expect(common).toEqual(cm.commonTimestamp);

    // Each replica set runs as its own primary, in its cluster role, cut at the common timestamp.
    for (const [name, m] of [['cfg', cfg!], ['shard0', s0!], ['shard1', s1!]] as const) {
      const hello = await helloOf(m.host);
      expect(hello.setName, name).toBe(name);
      expect(hello.isWritablePrimary, name).toBe(true);
      expect(hello.hosts, name).toEqual([m.host]);
      const top = await lastRealOplogTs(m.host);
      expect(top, name).not.toBeNull();
      expect(compareTs(top!, common), name).toBeLessThanOrEqual(0);
    }
    expect((await helloOf(cfg!.host)).configsvr).toBe(2);
    // The config server is pinned exactly: its newest write is the source config server's newest write at or before
    // the common timestamp (not merely something at or before it).
    const sourceCfg = stack.cluster.configRS!.primary()!.address;
    const c = connect(sourceCfg);
    let expectedTop: Document | null;
    try {
      expectedTop = await c.db('local').collection('oplog.rs').findOne({ ts: { $lte: toTimestamp(common) }, op: { $ne: 'n' } }, { sort: { ts: -1 } });
    } finally {
      await c.close();
    }
    expect(expectedTop).not.toBeNull();
    expect(await lastRealOplogTs(cfg!.host)).toEqual(fromBsonTimestamp(expectedTop!.ts));

    // Both shards together equal history at the common timestamp, and the invariant holds across them.
    const ts = toTimestamp(common);
    const verdict = await expectShardsAtHistory(
      stack.workload!.history,
      [
        { name: 'shard0', host: s0!.host },
        { name: 'shard1', host: s1!.host },
      ],
      ts,
    );

    // Through a router over the restored config server: the new hosts, every account once, the invariant total.
    const router = await startMongosProcess(`cfg/${cfg!.host}`);
    routers.push(router);
    await expectRoutedView(router.uri, {
      shards: { shard0: `shard0/${s0!.host}`, shard1: `shard1/${s1!.host}` },
      accounts: new Map([...stack.workload!.history.stateAt('shard0', ts), ...stack.workload!.history.stateAt('shard1', ts)]),
      bankTotal: verdict.expectedTotal,
    });

    // The shard map names the new hosts; each shard knows the new config server; the balancer is as recorded.
    const shards = await findAll(cfg!.host, 'config', 'shards');
    expect(Object.fromEntries(shards.map((s) => [s._id, s.host]))).toEqual({ shard0: `shard0/${s0!.host}`, shard1: `shard1/${s1!.host}` });
    for (const [name, m] of [['shard0', s0!], ['shard1', s1!]] as const) {
      const identity = (await findAll(m.host, 'admin', 'system.version')).find((d) => d._id === 'shardIdentity');
      expect(identity, name).toMatchObject({ shardName: name, configsvrConnectionString: `cfg/${cfg!.host}` });
    }
    const balancer = (await findAll(cfg!.host, 'config', 'settings')).find((d) => d._id === 'balancer');
    expect(balancer).toMatchObject({ mode: 'full', stopped: false });

    // Each shard's routing caches and the sessions collection are emptied, not dropped: the same collections, with
    // the source's UUIDs, and no documents.
    for (const [name, m] of [['shard0', s0!], ['shard1', s1!]] as const) {
      const source = await cacheCollections(stack.cluster.shards.find((x) => x.name === name)!.primary()!.address);
      const restored = await cacheCollections(m.host);
      expect(Object.keys(source).length, name).toBeGreaterThanOrEqual(3);
      expect(Object.fromEntries(Object.entries(restored).map(([n, c]) => [n, c.uuid])), name).toEqual(Object.fromEntries(Object.entries(source).map(([n, c]) => [n, c.uuid])));
      expect(Object.values(source).some((c) => c.count > 0), name).toBe(true);
      expect(Object.values(restored).map((c) => c.count), name).toEqual(Object.values(restored).map(() => 0));
    }
  });

  it('a backup taken while the balancer was disabled restores with the balancer disabled', async () => {
    const mongos = connect((stack.cluster.describe().mongos as string).slice('mongodb://'.length));
    const repo = tempDir('cutpoint-repo-balancer-off-');
    try {
      await mongos.db('admin').command({ balancerStop: 1 });
      const backup = await backupResult(stack.h.client, (await startBackup(stack.h.client, { uri: stack.cluster.describe().mongos as string, repo, keepAliveIntervalMs: 1000 })).id);
      expect(backup.status).toBe('complete');
      const cm = JSON.parse(readFileSync(join(repo, 'backups', backup.id, 'manifest.json'), 'utf8')) as ClusterManifest;
      expect(cm.balancerWasEnabled).toBe(false);
      // The backup left it as it found it.
      expect((await mongos.db('admin').command({ balancerStatus: 1 })).mode).toBe('off');

      const [cfg, s0, s1] = await newMembers(3, 'balancer-off');
      agents.push(await startTargetAgents(stack.h, [cfg!, s0!, s1!]));
      const summary = await restoreResult(stack.h.client, (await startRestore(stack.h.client, { backupId: backup.id, repo, to: { cfg: [cfg!], shard0: [s0!], shard1: [s1!] } })).id);
      started.push(...summary.replicaSets.flatMap((r) => r.members));
      expect(summary.status, JSON.stringify(summary.error)).toBe('complete');
      expect(summary.balancerWasEnabled).toBe(false);
      const balancer = (await findAll(cfg!.host, 'config', 'settings')).find((d) => d._id === 'balancer');
      expect(balancer).toMatchObject({ mode: 'off', stopped: true });
    } finally {
      await mongos.db('admin').command({ balancerStart: 1 });
      await mongos.close();
    }
  });
});
