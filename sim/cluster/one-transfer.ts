/**
 * {@link oneCrossShardTransfer}: for tests, a two-shard cluster whose bank makes exactly one cross-shard transfer (a
 * distributed transaction with two-phase commit) after a stable checkpoint on each shard, and where each shard wrote
 * its commit entry: the material of a cut between commit entries (docs/simulator.md, "A cut between the commit
 * entries of a distributed transaction").
 */
import type { Timestamp } from 'mongodb';
import { compareTs } from '../node/clock.ts';
import { eventually } from '../testkit.ts';
import { BankWorkload } from './bank.ts';
import type { SimCluster } from './cluster.ts';

export interface OneTransfer {
  workload: BankWorkload;
  /** The transfer as the history has it (`ts` = its commitTimestamp). */
  transfer: BankWorkload['history']['transfers'][number];
  /** Each shard's commit entry of the transfer, oldest first. */
  commits: Array<{ rs: SimCluster['shards'][number]; ts: Timestamp }>;
}

export async function oneCrossShardTransfer(cluster: SimCluster, seed = 5): Promise<OneTransfer> {
  const workload = await BankWorkload.start(cluster, { log: cluster.shards[0]!.localNodes[0]!.log, seed, rate: 1 });
  workload.stop();
  for (const rs of cluster.shards) await eventually(() => rs.primary()!.engine.checkpoint().timestamp !== null, 10_000, 'a stable checkpoint');
  const before = workload.crossShard;
  for (let n = 0; workload.crossShard === before && n < 10; n++) workload.transferOnce();
  if (workload.crossShard !== before + 1) throw new Error('the bank made no cross-shard transfer in 10 tries');
  const commits = cluster.shards
    .map((rs) => ({ rs, ts: rs.primary()!.engine.readOplog().filter((e) => e.o.commitTransaction === 1).at(-1)!.ts }))
    .sort((x, y) => compareTs(x.ts, y.ts));
  return { workload, transfer: workload.history.transfers.at(-1)!, commits };
}
