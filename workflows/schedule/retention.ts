/**
 * `retention`: the keep policy applied to a repository as a workflow (CutpointKind `retention`), run after every
 * scheduled backup and startable from the Temporal UI. The repository's prune lock serialises it with other prunes;
 * while another holds it (REPO_LOCKED), this one tries again for up to an hour rather than skip a scheduled cleanup.
 */
import { proxyActivities, setCurrentDetails, sleep, upsertSearchAttributes } from '@temporalio/workflow';
import type { RetentionActivities } from '../../activities/orchestrator/retention.ts';
import { nonRetryableCodes } from '../../common/errors.ts';
import type { RetentionInput, RetentionSummary } from '../../common/schedule-types.ts';
import { CutpointKind, CutpointPhase, CutpointStatus } from '../../common/search-attributes.ts';
import { failureInfo, failWith } from '../common/outcome.ts';

const activities = proxyActivities<RetentionActivities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: nonRetryableCodes() },
});

const LOCKED_RETRY_MS = 60_000;
const LOCKED_ATTEMPTS = 60;

export async function retention(input: RetentionInput): Promise<RetentionSummary> {
  upsertSearchAttributes([
    { key: CutpointKind, value: 'retention' },
    { key: CutpointStatus, value: 'running' },
    { key: CutpointPhase, value: 'prune' },
  ]);
  setCurrentDetails(`**cutpoint retention** of ${input.cluster ? `cluster **${input.cluster}** in ` : ''}\`${input.repo}\``);
  for (let attempt = 1; ; attempt++) {
    try {
      const r = await activities.applyRetention(input);
      upsertSearchAttributes([{ key: CutpointStatus, value: 'complete' }, { key: CutpointPhase, value: 'done' }]);
      setCurrentDetails(`**cutpoint retention** of \`${input.repo}\`: removed ${r.removed.length} (${r.removed.join(', ') || 'none'})`);
      return r;
    } catch (e) {
      const info = failureInfo(e);
      if (info.code !== 'REPO_LOCKED' || attempt >= LOCKED_ATTEMPTS) {
        upsertSearchAttributes([{ key: CutpointStatus, value: 'failed' }, { key: CutpointPhase, value: 'done' }]);
        throw failWith(info);
      }
      upsertSearchAttributes([{ key: CutpointPhase, value: 'waiting' }]);
      await sleep(LOCKED_RETRY_MS);
    }
  }
}
