/**
 * The identity behind "one backup per cluster at a time" and the activity that names who holds it.
 *
 * The lock itself is a workflow (workflows/backup/cluster-lock.ts) whose id is derived here from what identifies a
 * cluster whatever URI reached it: the config server replica set of a sharded cluster (or the replica set itself),
 * by name and by the member hosts its own config lists, sorted. Two URIs naming different members, or a mongos and
 * another mongos of the same cluster, give the same id.
 */
import { createHash } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { CLUSTER_LOCK_PREFIX, type ClusterLockHolder } from '../../common/cluster-lock.ts';
import { clusterLockHolderQuery } from '../../common/messages.ts';

/** The lock workflow id of a cluster: readable prefix, replica-set name, and a digest of the identity. */
export function clusterLockId(kind: 'replicaSet' | 'sharded', name: string, hosts: readonly string[]): string {
  const identity = `${kind}:${name}/${[...hosts].map((h) => h.toLowerCase()).sort().join(',')}`;
  return `${CLUSTER_LOCK_PREFIX}${name}-${createHash('sha256').update(identity).digest('hex').slice(0, 16)}`;
}

/** How long the lookup may take: it only names the holder in a message. */
const LOOKUP_MS = 5_000;

/** Activities that need the Temporal client of the orchestrator worker. */
export function clusterLockActivities(client: Client | undefined) {
  return {
    /** Who holds the cluster lock `lockId` (the lock workflow's `holder` query), or undefined if nobody or unknown. */
    async clusterLockHolder(input: { lockId: string }): Promise<ClusterLockHolder | undefined> {
      if (!client) return undefined;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), LOOKUP_MS)));
      try {
        return await Promise.race([
          client.workflow
            .getHandle(input.lockId)
            .query(clusterLockHolderQuery)
            .catch(() => undefined),
          timeout,
        ]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

export type ClusterLockActivities = ReturnType<typeof clusterLockActivities>;
