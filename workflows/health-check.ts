/**
 * `healthCheck`: runs `describeWorker` on the orchestrator queue and on each given agent queue, in parallel, so a
 * stack (or a test) can prove that every worker it expects is polling and executing activities.
 */
import type { Duration } from '@temporalio/common';
import { isCancellation, proxyActivities } from '@temporalio/workflow';
import type { DescribeWorkerActivities, WorkerDescription } from '../activities/describe-worker.ts';
import { toFailure } from '../common/errors.ts';
import { agentTaskQueue, ORCHESTRATOR_TASK_QUEUE } from '../common/task-queues.ts';

/** Input of {@link healthCheck}. */
export interface HealthCheckInput {
  /** host:port of every mongod whose agent must answer. */
  agents: string[];
  /** How long a worker may take to answer, as a Temporal duration string; default '30 seconds'. */
  timeout?: Duration;
}

/** What {@link healthCheck} returns: who answered on each queue. */
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

/**
 * Asks the worker on `taskQueue` to describe itself. A worker that does not answer fails the check with a
 * WORKER_UNAVAILABLE failure that names its task queue (the activity's own timeout failure stays as the cause), so
 * the user learns which agent is down rather than only that "an activity timed out".
 */
async function askWorker(taskQueue: string, who: string, timeout: Duration): Promise<WorkerDescription> {
  try {
    return await on(taskQueue, timeout).describeWorker();
  } catch (e) {
    if (isCancellation(e)) throw e;
    const within = typeof timeout === 'number' ? `${timeout} ms` : timeout;
    throw toFailure('WORKER_UNAVAILABLE', `${who} did not answer on task queue ${taskQueue} within ${within}`, { taskQueue }, e as Error);
  }
}

/** The health check workflow: every expected worker must answer within `input.timeout`. */
export async function healthCheck(input: HealthCheckInput): Promise<HealthReport> {
  const timeout = input.timeout ?? '30 seconds';
  const [orchestrator, ...agents] = await Promise.all([
    askWorker(ORCHESTRATOR_TASK_QUEUE, 'the orchestrator worker', timeout),
    ...input.agents.map((hp) => askWorker(agentTaskQueue(hp), `the agent of mongod ${hp}`, timeout)),
  ]);
  return { orchestrator: orchestrator!, agents };
}
