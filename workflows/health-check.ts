/**
 * `healthCheck`: runs `describeWorker` on the orchestrator queue and on each given agent queue, in parallel, so a
 * stack (or a test) can prove that every worker it expects is polling and executing activities.
 */
import type { Duration } from '@temporalio/common';
import { proxyActivities } from '@temporalio/workflow';
import type { DescribeWorkerActivities, WorkerDescription } from '../activities/describe-worker.ts';
import { agentTaskQueue, ORCHESTRATOR_TASK_QUEUE } from '../common/task-queues.ts';

export interface HealthCheckInput {
  /** host:port of every mongod whose agent must answer. */
  agents: string[];
  /** How long a worker may take to answer, as a Temporal duration string; default '30 seconds'. */
  timeout?: Duration;
}

export interface HealthReport {
  orchestrator: WorkerDescription;
  agents: WorkerDescription[];
}

function on(taskQueue: string, timeout: Duration) {
  // A worker that is down must fail the check within the timeout instead of leaving it waiting forever.
  return proxyActivities<DescribeWorkerActivities>({
    taskQueue,
    scheduleToCloseTimeout: timeout,
    retry: { maximumAttempts: 3 },
  });
}

export async function healthCheck(input: HealthCheckInput): Promise<HealthReport> {
  const timeout = input.timeout ?? '30 seconds';
  const [orchestrator, ...agents] = await Promise.all([
    on(ORCHESTRATOR_TASK_QUEUE, timeout).describeWorker(),
    ...input.agents.map((hp) => on(agentTaskQueue(hp), timeout).describeWorker()),
  ]);
  return { orchestrator: orchestrator!, agents };
}
