/**
 * Agent workers: one Worker per mongod, each on `cutpoint-agent:<host:port>`, with no workflows. One process may
 * serve several mongods of a host (docs/architecture.md, "Processes"), as one pbm-agent serves one mongod.
 */
import { Worker, type NativeConnection } from '@temporalio/worker';
import type { Logger } from 'pino';
import { Client } from '@temporalio/client';
import { backupCursorActivities } from '../activities/agent/backup-cursor.ts';
import { copyActivities } from '../activities/agent/copy-batch.ts';
import { extendAndPlanActivities } from '../activities/agent/extend-and-plan.ts';
import { agentServes } from '../lib/metrics.ts';
import { describeWorkerActivity } from '../activities/describe-worker.ts';
import { memberSteps } from '../activities/agent/restore/member-steps.ts';
import { oplogCaptureActivities } from '../activities/agent/oplog-capture.ts';
import { pitrProgressSignal } from '../common/messages.ts';
import { fsRepository, type Repository } from '../repository/repository.ts';
import { agentTaskQueue, normalizeHostPort } from '../common/task-queues.ts';
import { disposeWorkers } from './run-workers.ts';
import { activityLogContext } from './activity-log-context.ts';
import { installRuntime } from './runtime.ts';

/** One mongod an agent serves. */
export interface AgentTarget {
  /** host:port of the mongod this agent serves, as the replica set knows it. */
  mongod: string;
  /** Its dbpath when the agent cannot ask the mongod (getCmdLineOpts) for it. */
  dbpath?: string;
}

/** Options of {@link createAgentWorkers}. */
export interface AgentOptions {
  connection: NativeConnection;
  namespace: string;
  /** Validated targets, without duplicates (the CLI's `agentTargets` checks what a user typed). */
  targets: AgentTarget[];
  log: Logger;
  /** The repository at a path; default the filesystem (tests decorate it to inject faults). */
  repository?: (path: string) => Repository;
}

/** Creates (does not run) one Worker per mongod. If one cannot be created, those already created are released. */
export async function createAgentWorkers(opts: AgentOptions): Promise<Worker[]> {
  installRuntime();
  // The agent polls its backups' throttle through the same connection it polls tasks with.
  const temporal = new Client({ connection: opts.connection, namespace: opts.namespace });
  const repository = opts.repository ?? ((path: string) => fsRepository(path));
  const workers: Worker[] = [];
  try {
    for (const t of opts.targets) {
      const mongod = normalizeHostPort(t.mongod);
      const cursor = backupCursorActivities({ mongod, dbpath: t.dbpath, repository, temporal });
      const copy = copyActivities({ dbpath: t.dbpath, repository, temporal, mongod });
      workers.push(
        await Worker.create({
          connection: opts.connection,
          namespace: opts.namespace,
          taskQueue: agentTaskQueue(mongod),
          activities: {
            describeWorker: describeWorkerActivity('agent', mongod),
            ...cursor,
            ...copy,
            ...extendAndPlanActivities(cursor, copy),
            ...memberSteps({ mongod, dbpath: t.dbpath, repository }),
            ...oplogCaptureActivities({ mongod, repository, progress: (workflowId, p) => temporal.workflow.getHandle(workflowId).signal(pitrProgressSignal, p) }),
          },
          interceptors: { activity: [activityLogContext] },
          // Cancellation reaches an activity only through a heartbeat's reply: send them often enough that a
          // cancelled or failed backup stops copying within seconds (default: up to 80% of the heartbeat timeout).
          maxHeartbeatThrottleInterval: '2 seconds',
          defaultHeartbeatThrottleInterval: '2 seconds',
          shutdownGraceTime: '20 seconds',
        }),
      );
      agentServes(mongod);
    }
  } catch (e) {
    await disposeWorkers(workers, opts.log);
    throw e;
  }
  return workers;
}
