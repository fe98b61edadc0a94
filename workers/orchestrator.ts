/**
 * The orchestrator worker (task queue `cutpoint`): every workflow, plus control-plane activities that need only a
 * network path to the cluster.
 */
import { Client } from '@temporalio/client';
import { Worker, type NativeConnection } from '@temporalio/worker';
import type { Logger } from 'pino';
import { describeWorkerActivity } from '../activities/describe-worker.ts';
import { balancerActivities } from '../activities/orchestrator/balancer.ts';
import { distributedTransactionActivities } from '../activities/orchestrator/distributed-transactions.ts';
import { clusterLockActivities } from '../activities/orchestrator/cluster-lock.ts';
import { retentionActivities } from '../activities/orchestrator/retention.ts';
import { signalWorkflowActivities } from '../activities/orchestrator/signal-workflows.ts';
import { repositoryActivities } from '../activities/orchestrator/repository.ts';
import { restoreControlActivities } from '../activities/orchestrator/restore-control.ts';
import { pitrRestoreActivities } from '../activities/orchestrator/pitr-restore.ts';
import type { Repository } from '../repository/repository.ts';
import { topologyActivities } from '../activities/orchestrator/topology.ts';
import { pitrActivities } from '../activities/orchestrator/pitr.ts';
import { ORCHESTRATOR_TASK_QUEUE } from '../common/task-queues.ts';
import { workflowBundle } from './bundle.ts';
import { activityLogContext } from './activity-log-context.ts';
import { installRuntime } from './runtime.ts';

/** Options of {@link createOrchestratorWorker}. */
export interface OrchestratorOptions {
  connection: NativeConnection;
  namespace: string;
  log: Logger;
  /** Default `cutpoint`; tests may use their own queue. */
  taskQueue?: string;
  /** The repository at a path; default the filesystem (tests decorate it to inject faults). */
  repository?: (path: string) => Repository;
}

/** Creates (does not run) the orchestrator worker. */
export async function createOrchestratorWorker(opts: OrchestratorOptions): Promise<Worker> {
  installRuntime();
  // Some activities ask Temporal itself (who holds a cluster lock, whether a `running` backup still runs).
  const client = new Client({ connection: opts.connection, namespace: opts.namespace });
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue ?? ORCHESTRATOR_TASK_QUEUE,
    workflowBundle: await workflowBundle(opts.log),
    activities: {
      describeWorker: describeWorkerActivity('orchestrator'),
      ...topologyActivities,
      ...pitrActivities(),
      ...repositoryActivities(opts.repository ? { repository: opts.repository } : undefined),
      ...balancerActivities(opts.repository ? { repository: opts.repository } : undefined),
      ...distributedTransactionActivities,
      ...clusterLockActivities(client),
      ...signalWorkflowActivities(client),
      ...retentionActivities(client),
      ...restoreControlActivities(opts.repository ? { repository: opts.repository } : undefined),
      ...pitrRestoreActivities(opts.repository ? { repository: opts.repository } : undefined),
    },
    interceptors: { activity: [activityLogContext] },
    // Give activities that must clean up (close a cursor, restore the balancer) time to finish on SIGTERM.
    shutdownGraceTime: '20 seconds',
  });
}
