/**
 * Shapes of the per-cluster backup lock (workflows/backup/cluster-lock.ts), shared by the workflow, the activity
 * that names a holder, and the API. Workflow-safe. Its query and signal are in messages.ts.
 */
/** Every cluster lock workflow id starts with this. */
export const CLUSTER_LOCK_PREFIX = 'cutpoint-cluster-lock-';

/** Who holds a cluster lock. */
export interface ClusterLockHolder {
  /** The backup id (its workflow id). */
  backupId: string;
  cluster: string;
  /** When it took the lock (ISO 8601). */
  since: string;
}
