/**
 * Activity proxies for the restore steps on a target member's agent, and the one rule that keeps a restore from
 * hanging on a host whose agent is not running: every agent activity has a schedule-to-start timeout, and its expiry
 * (which Temporal does not retry) becomes a WORKER_UNAVAILABLE failure naming the agent's task queue.
 */
import { TimeoutType } from '@temporalio/common';
import { ActivityFailure, isCancellation, proxyActivities, TimeoutFailure } from '@temporalio/workflow';
import type { MemberStepActivities } from '../../activities/agent/restore/member-steps.ts';
import { nonRetryableCodes, toFailure } from '../../common/errors.ts';
import { agentTaskQueue } from '../../common/task-queues.ts';

/** Default schedule-to-start timeout of agent activities. */
export const DEFAULT_AGENT_TIMEOUT_MS = 120_000;

function proxies(host: string, agentTimeoutMs: number) {
  return proxyActivities<MemberStepActivities>({
    taskQueue: agentTaskQueue(host),
    scheduleToStartTimeout: agentTimeoutMs,
    startToCloseTimeout: '12 hours',
    // Steps heartbeat every 2 s while they wait on mongod or copy: a killed agent is noticed within this, and the
    // step is retried on the same queue, where the restarted agent resumes it from the member's state file.
    heartbeatTimeout: '20 seconds',
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 20, nonRetryableErrorTypes: nonRetryableCodes() },
  });
}

// The proxy creates its functions on access and has no keys of its own: the names are listed here.
const STEP_NAMES: Array<keyof MemberStepActivities> = [
  'inspectRestoreTarget',
  'placeRestoreFiles',
  'prepareRestoredNode',
  'recoverRestoredNode',
  'resetRestoredMetadata',
  'startRestoredNode',
  'rollbackRestoreTarget',
  'commitRestoreTarget',
];

/** True when the failure is an activity that no worker picked up in time. */
function notPickedUp(e: unknown): boolean {
  return e instanceof ActivityFailure && e.cause instanceof TimeoutFailure && e.cause.timeoutType === TimeoutType.SCHEDULE_TO_START;
}

/**
 * The steps of the member at `host`, each wrapped so that an agent that does not answer fails with
 * WORKER_UNAVAILABLE (the timeout stays as the cause).
 */
export function agentSteps(host: string, agentTimeoutMs = DEFAULT_AGENT_TIMEOUT_MS): MemberStepActivities {
  const raw = proxies(host, agentTimeoutMs);
  const wrapped = {} as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const name of STEP_NAMES) {
    wrapped[name] = async (...args: unknown[]) => {
      try {
        return await (raw[name] as (...a: unknown[]) => Promise<unknown>)(...args);
      } catch (e) {
        if (!isCancellation(e) && notPickedUp(e)) {
          throw toFailure(
            'WORKER_UNAVAILABLE',
            `the agent of restore target ${host} did not pick up '${name}' within ${agentTimeoutMs} ms: start \`cutpoint agent --mongod ${host}\` on that host (task queue ${agentTaskQueue(host)})`,
            { host, taskQueue: agentTaskQueue(host) },
            e as Error,
          );
        }
        throw e;
      }
    };
  }
  return wrapped as unknown as MemberStepActivities;
}
