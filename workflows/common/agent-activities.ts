/**
 * The one way workflows call activities on a mongod's agent (backup cursor, copy, restore steps alike). An agent's
 * task queue is named after its mongod (common/task-queues.ts), so a host whose agent is not running would leave an
 * activity scheduled forever. Every agent activity therefore has a schedule-to-start timeout, and its expiry (which
 * Temporal does not retry) becomes a WORKER_UNAVAILABLE failure naming the mongod, the activity and the command that
 * starts the agent; the timeout stays as its cause.
 */
import { TimeoutType } from '@temporalio/common';
import { ActivityFailure, type ActivityOptions, isCancellation, proxyActivities, TimeoutFailure } from '@temporalio/workflow';
import { toFailure } from '../../common/errors.ts';
import { BACKUP_OPTIONS } from '../../common/options.ts';
import { agentTaskQueue } from '../../common/task-queues.ts';

/** Default schedule-to-start timeout of agent activities: how long an agent may be away before the work fails. */
export const DEFAULT_AGENT_TIMEOUT_MS: number = BACKUP_OPTIONS.agentTimeoutMs.default;

/** True when the failure is an activity that no worker picked up in time. */
export function notPickedUp(e: unknown): boolean {
  return e instanceof ActivityFailure && e.cause instanceof TimeoutFailure && e.cause.timeoutType === TimeoutType.SCHEDULE_TO_START;
}

/**
 * Activities `A` on the agent of the mongod `node`, with `options` (timeouts, retry, cancellation) on that agent's task
 * queue; `agentTimeoutMs` is the schedule-to-start timeout. `role` names the work in the failure ("backup source",
 * "restore target").
 */
export function agentActivities<A extends object>(node: string, role: string, agentTimeoutMs: number, options: Omit<ActivityOptions, 'taskQueue' | 'scheduleToStartTimeout'>): A {
  const taskQueue = agentTaskQueue(node);
  const raw = proxyActivities<Record<string, (...args: unknown[]) => Promise<unknown>>>({ ...options, taskQueue, scheduleToStartTimeout: agentTimeoutMs });
  return new Proxy({} as A, {
    get(_, name) {
      // Not a thenable: `then` is never an activity, so the object can be returned from async functions.
      if (typeof name !== 'string' || name === 'then') return undefined;
      return async (...args: unknown[]) => {
        try {
          return await raw[name]!(...args);
        } catch (e) {
          if (isCancellation(e) || !notPickedUp(e)) throw e;
          throw toFailure(
            'WORKER_UNAVAILABLE',
            `the agent of ${role} ${node} did not pick up '${name}' within ${agentTimeoutMs} ms: start \`cutpoint agent --mongod ${node}\` on that host (task queue ${taskQueue})`,
            { node, taskQueue, activity: name },
            e as Error,
          );
        }
      };
    },
  });
}
