/**
 * `describeWorker`: which process serves a task queue. The health check runs it on the orchestrator queue and on
 * every agent queue, proving each worker polls and runs activities.
 */
import { hostname } from 'node:os';
import { activityInfo } from '@temporalio/activity';

/** What a worker says about itself. */
export interface WorkerDescription {
  role: 'orchestrator' | 'agent';
  taskQueue: string;
  hostname: string;
  pid: number;
  nodeVersion: string;
  /** For an agent: the mongod it serves. */
  mongod?: string;
}

/** Builds the activity bound to one worker's identity. */
export function describeWorkerActivity(role: WorkerDescription['role'], mongod?: string) {
  return async function describeWorker(): Promise<WorkerDescription> {
    return {
      role,
      taskQueue: activityInfo().taskQueue,
      hostname: hostname(),
      pid: process.pid,
      nodeVersion: process.version,
      ...(mongod ? { mongod } : {}),
    };
  };
}

/** The activity's type, for `proxyActivities` in workflows. */
export type DescribeWorkerActivities = { describeWorker: ReturnType<typeof describeWorkerActivity> };
