/**
 * A MongoDB 8.0 config shard end to end: a cluster whose config server replica set also holds bank accounts (listed
 * by `listShards` as shard `config`) is backed up under the bank workload through mongos and restored to new hosts.
 * The config server is backed up once and restored once; the restored cluster is checked through a mongos started
 * over it, as an operator would: the bank invariant and the document count read through the router, and the shard
 * map naming the new hosts, the config shard's entry included. The topology rule itself is unit-tested in
 * activities/orchestrator/topology.test.ts; the two-shard restore in test/restore-sharded.test.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterManifest } from '../common/manifest.ts';
import type { StartedMember } from '../common/restore-types.ts';
import { backupResult, startBackup } from '../api/backups.ts';
import { restoreResult, startRestore } from '../api/restores.ts';
import { Oracle } from '../sim/cluster/oracle.ts';
import { connect, newMembers, readAccounts, startTargetAgents, stopMembers, toTimestamp, useSimMongod } from './helpers/restore-targets.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { expectRoutedView, startMongosProcess, type MongosProcess } from './helpers/mongos.ts';
import { tempDir } from './helpers/temp.ts';

let stack: SimStack;
const started: StartedMember[] = [];
const agents: Array<{ stop(): Promise<void> }> = [];
const routers: MongosProcess[] = [];

beforeAll(async () => {
  useSimMongod();
  stack = await startSimStack({ shards: 1, members: 1, configShard: true, checkpointMs: 1000, bank: true });
});
afterAll(async () => {
  for (const r of routers) await r.stop();
  await stopMembers(started);
  for (const a of agents) await a.stop();
  await stack?.stop();
});

describe('config shard restore', () => {
  it('backs up and restores the config server once, shard and config shard at one timestamp, checked through a mongos', async () => {
    const repo = tempDir('cutpoint-repo-config-shard-');
    const backup = await backupResult(stack.h.client, (await startBackup(stack.h.client, { uri: stack.cluster.describe().mongos as string, repo, keepAliveIntervalMs: 1000 })).id);
    expect(backup.status, JSON.stringify(backup.error)).toBe('complete');
    const cm = JSON.parse(readFileSync(join(repo, 'backups', backup.id, 'manifest.json'), 'utf8')) as ClusterManifest;
    expect(cm.replicaSets.map((r) => [r.name, r.configServer])).toEqual([
      ['cfg', true],
      ['shard0', false],
    ]);

    const [cfg, s0] = await newMembers(2, 'config-shard');
    agents.push(await startTargetAgents(stack.h, [cfg!, s0!]));
    const summary = await restoreResult(stack.h.client, (await startRestore(stack.h.client, { backupId: backup.id, repo, to: { cfg: [cfg!], shard0: [s0!] } })).id);
    started.push(...summary.replicaSets.flatMap((r) => r.members));
    expect(summary.status, JSON.stringify(summary.error)).toBe('complete');
    expect(summary.replicaSets.map((r) => r.name).sort()).toEqual(['cfg', 'shard0']);

    // Both data-holding replica sets, the config shard included, equal history at the common timestamp.
    const ts = toTimestamp(summary.commonTimestamp!);
    const states = [
      { name: 'cfg', accounts: await readAccounts(cfg!.host) },
      { name: 'shard0', accounts: await readAccounts(s0!.host) },
    ];
    expect(states[0]!.accounts.size).toBeGreaterThan(0);
    const verdict = new Oracle(stack.workload!.history).verify(states, ts);
    expect(verdict.mismatches).toEqual([]);

    // Through a router over the restored config server: both shards by their new hosts, every account once, the total.
    const router = await startMongosProcess(`cfg/${cfg!.host}`);
    routers.push(router);
    await expectRoutedView(router.uri, {
      shards: { shard0: `shard0/${s0!.host}`, config: `cfg/${cfg!.host}` },
      accounts: new Map([...stack.workload!.history.stateAt('cfg', ts), ...stack.workload!.history.stateAt('shard0', ts)]),
      bankTotal: verdict.expectedTotal,
    });

    // The shard map names the new hosts, the config shard's entry too; its shard identity names the new config server.
    const c = connect(cfg!.host);
    try {
      const shards = await c.db('config').collection('shards').find().toArray();
      expect(Object.fromEntries(shards.map((s) => [s._id, s.host]))).toEqual({ shard0: `shard0/${s0!.host}`, config: `cfg/${cfg!.host}` });
      expect(await c.db('admin').collection('system.version').findOne({ _id: 'shardIdentity' as never })).toMatchObject({
        shardName: 'config',
        configsvrConnectionString: `cfg/${cfg!.host}`,
      });
    } finally {
      await c.close();
    }
  });
});
