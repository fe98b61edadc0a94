/**
 * The restore steps on a target member's agent, through workflows/common/agent-activities.ts (an agent that does not
 * pick a step up in time fails the restore with WORKER_UNAVAILABLE instead of hanging).
 */
import { ActivityCancellationType } from '@temporalio/workflow';
import type { MemberStepActivities } from '../../activities/agent/restore/member-steps.ts';
import { nonRetryableCodes } from '../../common/errors.ts';
import { agentActivities, DEFAULT_AGENT_TIMEOUT_MS } from '../common/agent-activities.ts';

export { DEFAULT_AGENT_TIMEOUT_MS };

/** The steps of the member at `host`. */
export function agentSteps(host: string, agentTimeoutMs = DEFAULT_AGENT_TIMEOUT_MS): MemberStepActivities {
  return agentActivities<MemberStepActivities>(host, 'restore target', agentTimeoutMs, {
    startToCloseTimeout: '12 hours',
    // A cancelled step is waited for: it stops its temporary mongod (or finishes placing a file) before the restore
    // rolls the target back, so nothing it does lands in a dbpath the rollback has already emptied.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    // Steps heartbeat every 2 s while they wait on mongod or copy: a killed agent is noticed within this, and the
    // step is retried on the same queue, where the restarted agent resumes it from the member's state file.
    heartbeatTimeout: '20 seconds',
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 20, nonRetryableErrorTypes: nonRetryableCodes() },
  });
}
