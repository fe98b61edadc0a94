/**
 * What the router (mongos.ts), the bank workload (bank.ts) and its oracle (oracle.ts) share with the cluster that
 * builds them (cluster.ts): the sharded namespace, and the replica sets a mongos routes over.
 */
import type { ClusterClock } from '../node/clock.ts';
import type { ReplicaSet } from '../node/replset.ts';

/** The bank workload's collection, the one sharded collection: routed by a hash of `_id` over the shards, in shard order. */
export const BANK_NS = 'bank.accounts';

/** The shard id of a config server replica set that is also a shard (MongoDB 8.0 "config shard"). */
export const CONFIG_SHARD_ID = 'config';

/** A sharded cluster as its mongos sees it (cluster.ts implements it). */
export interface ClusterTopology {
  /** The cluster-wide clock: a cross-shard commit takes one timestamp from it for every shard. */
  readonly clock: ClusterClock;
  readonly configRS: ReplicaSet | undefined;
  readonly shards: readonly ReplicaSet[];
  /** Every replica set, the config server's first. */
  readonly replicaSets: readonly ReplicaSet[];
  /**
   * The replica sets that hold sharded data, in routing order: the shards, then (a MongoDB 8.0 config shard) the
   * config server replica set, whose shard id is {@link CONFIG_SHARD_ID}.
   */
  readonly dataShards: readonly ReplicaSet[];
  readonly options: { readonly auth?: boolean };
}
