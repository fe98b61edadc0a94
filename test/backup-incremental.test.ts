/**
 * Incremental backups end to end, under the bank workload.
 *
 * A replica set whose agent is a separate process (`cutpoint agent`): a base, then an incremental that reads only what
 * changed (the agent's reads counted by the kernel: `rchar` of /proc/<pid>/io), whose manifest still lists every file
 * whole (unchanged files are the base's chunks); each recovers at its common timestamp to the workload's history; the
 * base pruned, the incremental still recovers.
 *
 * A sharded cluster where one shard's node lost its incremental history between two backups (another tool cleared
 * it): that shard takes a base and says why, the config server and the other shard stay incremental, and the backup
 * restores through the restore workflow to one common timestamp the oracle confirms.
 */
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { backupResult, startBackup } from '../api/backups.ts';
import { restoreResult, startRestore } from '../api/restores.ts';
import type { BackupInput, BackupSummary } from '../common/backup-types.ts';
import type { ReplicaSetManifest } from '../common/manifest.ts';
import type { StartedMember } from '../common/restore-types.ts';
import { toBsonTimestamp } from '../lib/bson-timestamp.ts';
import { prune } from '../repository/prune.ts';
import { exportToDirectory } from '../repository/export.ts';
import { fsRepository } from '../repository/repository.ts';
import { FIXED_CHUNK_BYTES } from '../repository/v2/chunker.ts';
import { Oracle } from '../sim/cluster/oracle.ts';
import { direct, sleep } from '../sim/testkit.ts';
import { startCli } from './helpers/cli.ts';
import { materialize, recoverBankAt } from './helpers/recover.ts';
import { expectShardsAtHistory, newMembers, startTargetAgents, stopMembers, toTimestamp, useSimMongod } from './helpers/restore-targets.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { tempDir } from './helpers/temp.ts';

let stack: SimStack | undefined;
const processes: Array<ReturnType<typeof startCli>> = [];
const started: StartedMember[] = [];
const agents: Array<{ stop(): Promise<void> }> = [];

afterEach(async () => {
  for (const p of processes.splice(0)) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await stopMembers(started.splice(0));
  for (const a of agents.splice(0)) await a.stop();
  await stack?.stop();
  stack = undefined;
});
afterAll(async () => {
  await stack?.stop();
});

/** Bytes a process has read through read(2) and friends (`rchar` of /proc/<pid>/io). */
function rchar(pid: number): number {
  const line = readFileSync(`/proc/${pid}/io`, 'utf8').split('\n').find((l) => l.startsWith('rchar:'));
  return Number(line!.split(':')[1]);
}

async function backup(s: SimStack, input: BackupInput): Promise<{ summary: BackupSummary; rm: (rs: string) => Promise<ReplicaSetManifest> }> {
  const summary = await backupResult(s.h.client, (await startBackup(s.h.client, { keepAliveIntervalMs: 1000, ...input })).id);
  expect(summary.status, JSON.stringify(summary.error)).toBe('complete');
  return { summary, rm: async (rs) => (await fsRepository(input.repo).readReplicaSetManifest(summary.id, rs))! };
}

async function insertBlobs(host: string, mib: number): Promise<void> {
  const client = direct(host);
  try {
    await client.db('app').collection('blobs').insertMany(Array.from({ length: mib * 16 }, (_, i) => ({ _id: i, data: randomBytes(64 * 1024) })) as never[]);
  } finally {
    await client.close();
  }
}

describe('incremental backups', () => {
  it('a replica set: base, then an incremental reading only the changed chunks; both recover to history; the base pruned, the incremental still does', async () => {
    const s = (stack = await startSimStack({ replsetOnly: true, members: 1, checkpointMs: 1000, bank: true, agents: false }));
    const host = (s.cluster.describe().shards[0].hosts as string[])[0]!;
    // 8 MiB of incompressible documents that no later write touches: what the incremental must not read again.
    await insertBlobs(host, 8);
    const agent = startCli(['agent', '--mongod', host], { TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_NAMESPACE: inject('temporalNamespace') });
    processes.push(agent);
    const repo = tempDir('cutpoint-repo-incr-');
    const uri = s.cluster.describe().shards[0].uri as string;

    const first = await backup(s, { uri, repo, incremental: true, blockSizeMB: 1 });
    expect(first.summary).toMatchObject({ kind: 'base', parent: null });
    expect(first.summary.replicaSets[0]).toMatchObject({ kind: 'base', parent: null, chainBreak: expect.stringMatching(/no earlier incremental backup/) });
    const base = await first.rm('rs0');
    expect(base.incremental).toMatchObject({ kind: 'base', parent: null, depth: 0, blockSizeMB: 1 });

    await sleep(3000); // the bank workload goes on: the bank's files, the oplog and the journal change
    const before = rchar(agent.child.pid!);
    const second = await backup(s, { uri, repo, incremental: true, blockSizeMB: 1 });
    const read = rchar(agent.child.pid!) - before;
    expect(second.summary).toMatchObject({ kind: 'incremental', parent: first.summary.id });
    expect(second.summary.replicaSets[0]).toMatchObject({ kind: 'incremental', parent: first.summary.id });
    expect(second.summary.replicaSets[0]!.chainBreak).toBeUndefined();
    const incr = await second.rm('rs0');
    expect(incr.incremental).toMatchObject({ kind: 'incremental', parent: first.summary.id, depth: 1 });

    // A synthetic full: every file listed with its chunks. The bytes the agent read from the disk are at most the
    // chunks that differ from the base's at the same place, the files the base did not have, and the journal and
    // storage.bson (copied whole), with a little for its sockets; far less than the dbpath.
    const old = new Map(base.files.map((f) => [f.path, f]));
    let changed = 0;
    for (const f of incr.files) {
      const o = old.get(f.path);
      if (f.kind !== 'data' || !o) {
        changed += f.size;
        continue;
      }
      changed += f.chunks!.filter((c, k) => o.chunks![k] !== c || Math.min(FIXED_CHUNK_BYTES, o.size - k * FIXED_CHUNK_BYTES) !== Math.min(FIXED_CHUNK_BYTES, f.size - k * FIXED_CHUNK_BYTES)).length * FIXED_CHUNK_BYTES;
    }
    const total = incr.files.reduce((sum, f) => sum + f.size, 0);
    expect(read).toBeLessThanOrEqual(changed + 1024 * 1024);
    expect(read).toBeLessThan(total / 2);
    expect(second.summary.bytesRead).toBeLessThan(total / 2);
    // The blobs' collection did not change: the same chunks (the oplog, as large, did change).
    const large = incr.files.filter((f) => f.kind === 'data' && f.size >= 8 * 1024 * 1024);
    expect(large.filter((f) => JSON.stringify(f.chunks) === JSON.stringify(old.get(f.path)?.chunks)).length).toBe(1);

    const oracle = new Oracle(s.workload!.history);
    const recovers = async (b: typeof first) => {
      const accounts = await recoverBankAt(await materialize(repo, b.summary.id, await b.rm('rs0')), b.summary.commonTimestamp!);
      expect(oracle.verify([{ name: 'rs0', accounts }], toBsonTimestamp(b.summary.commonTimestamp!)).mismatches).toEqual([]);
    };
    await recovers(first);
    await recovers(second);

    // Chunks are shared, not chained: the base pruned, the incremental still restores by itself (exported to a
    // dbpath here, every chunk checked against its id on the way, and recovered).
    const pruned = await prune(fsRepository(repo), { policy: { keepLast: 1 } });
    expect(pruned.removed).toEqual([first.summary.id]);
    const exported = tempDir('cutpoint-incr-export-');
    await exportToDirectory(fsRepository(repo), second.summary.id, 'rs0', exported, { force: true });
    const accounts = await recoverBankAt(exported, second.summary.commonTimestamp!);
    expect(oracle.verify([{ name: 'rs0', accounts }], toBsonTimestamp(second.summary.commonTimestamp!)).mismatches).toEqual([]);
  });

  it("a sharded cluster: one shard's node lost its history, that shard takes a base and says why, the others stay incremental; the restore is consistent", async () => {
    useSimMongod();
    const s = (stack = await startSimStack({ shards: 2, members: 1, checkpointMs: 1000, bank: true }));
    const mongos = s.cluster.describe().mongos as string;
    const repo = tempDir('cutpoint-repo-incr-sharded-');
    const first = await backup(s, { uri: mongos, repo, incremental: true, blockSizeMB: 1 });
    expect(first.summary.kind).toBe('base');

    // Another tool clears shard1's node's incremental history (a disableIncrementalBackup cursor, closed).
    const client = direct(s.cluster.shards.find((x) => x.name === 'shard1')!.primary()!.address);
    try {
      const r = await client.db('admin').command({ aggregate: 1, pipeline: [{ $backupCursor: { disableIncrementalBackup: true } }], cursor: {} });
      await client.db('admin').command({ killCursors: '$cmd.aggregate', cursors: [(r.cursor as { id: never }).id] });
    } finally {
      await client.close();
    }
    await sleep(2000);
    const second = await backup(s, { uri: mongos, repo, incremental: true, blockSizeMB: 1 });
    expect(second.summary).toMatchObject({ kind: 'incremental', parent: first.summary.id });
    const byName = new Map(second.summary.replicaSets.map((r) => [r.name, r]));
    expect(byName.get('shard1')).toMatchObject({ kind: 'base', parent: null, chainBreak: expect.stringMatching(/no longer knows the previous backup's incremental name/) });
    for (const rs of ['cfg', 'shard0']) expect(byName.get(rs), rs).toMatchObject({ kind: 'incremental', parent: first.summary.id });
    expect((await second.rm('shard1')).incremental).toMatchObject({ kind: 'base', chainBreak: expect.any(String) });

    const [cfg, s0, s1] = await newMembers(3, 'incr');
    agents.push(await startTargetAgents(s.h, [cfg!, s0!, s1!]));
    const restoreId = (await startRestore(s.h.client, { backupId: second.summary.id, repo, to: { cfg: [cfg!], shard0: [s0!], shard1: [s1!] } })).id;
    const restored = await restoreResult(s.h.client, restoreId);
    started.push(...restored.replicaSets.flatMap((r) => r.members));
    expect(restored.status, JSON.stringify(restored.error)).toBe('complete');
    await expectShardsAtHistory(
      s.workload!.history,
      [
        { name: 'shard0', host: s0!.host },
        { name: 'shard1', host: s1!.host },
      ],
      toTimestamp(restored.commonTimestamp!),
    );
  });
});
