/**
 * Where a replica set's incremental chain continues (docs/incremental.md): {@link chooseParent} over the cluster's
 * earlier backups, and {@link findChainParent} reading them from the repository. A chain continues from the newest
 * earlier backup of the cluster that took incremental cursors, when that backup is complete, holds this replica set
 * with an incremental record at the same block size, and the chain is not due for a base; otherwise the replica set
 * takes a base and the reason is returned. Whether the node still knows the parent's name is the server's to say,
 * when the cursor opens (activities/agent/backup-cursor.ts).
 */
import type { BackupStatus, ClusterManifest, ReplicaSetManifest } from '../common/manifest.ts';
import type { IncrementalOptions } from '../common/incremental.ts';
import type { Repository } from './repository.ts';

/** The backup an incremental continues from, on this replica set. */
export interface ChainParent {
  backupId: string;
  /** Its `thisBackupName` on the replica set: the new cursor's source. */
  name: string;
  /** The member it was taken on: the chain is pinned to it. */
  node: string;
  /** The new backup's depth in the chain. */
  depth: number;
  blockSizeMB: number;
}

export type ChainDecision = { parent: ChainParent; chainBreak?: undefined } | { parent: null; chainBreak: string };

/** The newest earlier backup that took incremental cursors, with this replica set's manifest if it has one. */
export interface ChainTip {
  id: string;
  status: BackupStatus;
  replicaSet?: Pick<ReplicaSetManifest, 'node' | 'incremental'>;
}

/** The decision for one replica set; see the module comment. */
export function chooseParent(tip: ChainTip | undefined, replicaSet: string, options: IncrementalOptions): ChainDecision {
  const base = (chainBreak: string): ChainDecision => ({ parent: null, chainBreak });
  if (options.forceBase) return base('a new base was asked for');
  if (!tip) return base('no earlier incremental backup of this cluster in the repository');
  if (tip.status !== 'complete') return base(`the previous backup of the chain, ${tip.id}, is ${tip.status}: it may have changed the nodes' incremental history, and its copy cannot be reused`);
  if (!tip.replicaSet) return base(`replica set ${replicaSet} is not in the previous backup ${tip.id} (the topology changed)`);
  const record = tip.replicaSet.incremental;
  if (!record) return base(`the previous backup ${tip.id} took no incremental cursor on ${replicaSet}`);
  if (record.blockSizeMB !== options.blockSizeMB) return base(`the block size changed from ${record.blockSizeMB} MB to ${options.blockSizeMB} MB (a chain keeps one granularity)`);
  if (options.baseEvery > 0 && record.depth + 1 >= options.baseEvery) return base(`a base every ${options.baseEvery} backups: ${tip.id} was backup ${record.depth + 1} of its chain`);
  return { parent: { backupId: tip.id, name: record.name, node: tip.replicaSet.node, depth: record.depth + 1, blockSizeMB: record.blockSizeMB } };
}

/** The chain tip of `cluster` before `backupId`: the newest other backup whose manifest says it took incremental cursors. */
export async function chainTip(repo: Repository, cluster: string, backupId: string, replicaSet: string): Promise<ChainTip | undefined> {
  const { backups } = await repo.listBackups();
  const ours = backups.find((b) => b.id === backupId)?.manifest;
  const earlier = (m: ClusterManifest) => m.id !== backupId && m.cluster === cluster && (m.kind === 'base' || m.kind === 'incremental') && (!ours || m.startedAt <= ours.startedAt);
  const tip = backups
    .map((b) => b.manifest)
    .filter(earlier)
    .sort((a, b) => b.startedAt.localeCompare(a.startedAt) || b.id.localeCompare(a.id))[0];
  if (!tip) return undefined;
  const rs = tip.status === 'complete' && tip.replicaSets.some((r) => r.name === replicaSet) ? await repo.readReplicaSetManifest(tip.id, replicaSet) : undefined;
  return { id: tip.id, status: tip.status, ...(rs ? { replicaSet: { node: rs.node, ...(rs.incremental ? { incremental: rs.incremental } : {}) } } : {}) };
}

/** {@link chooseParent} for the repository's backups. */
export async function findChainParent(repo: Repository, q: { cluster: string; backupId: string; replicaSet: string } & IncrementalOptions): Promise<ChainDecision> {
  return chooseParent(q.forceBase ? undefined : await chainTip(repo, q.cluster, q.backupId, q.replicaSet), q.replicaSet, q);
}
