/**
 * `verifyBackup`: re-hashes every file of a backup in the repository against its manifests (`cutpoint verify`).
 * It ends `complete` when every file matches, `failed` with CHECKSUM_MISMATCH naming every bad file otherwise; the
 * summary lists them.
 */
import { proxyActivities, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { RestoreControlActivities, RestorePlan } from '../../activities/orchestrator/restore-control.ts';
import { nonRetryableCodes } from '../../common/errors.ts';
import type { BadFile, RestorePhase, RestoreProgress, VerifyInput, VerifySummary } from '../../common/restore-types.ts';
import { CutpointCluster, CutpointKind } from '../../common/search-attributes.ts';
import { cancellableBySignal, publishStatus } from '../common/live-status.ts';
import { outcomeOf, settle } from '../common/outcome.ts';
import { restoreMarkdown } from './restore-markdown.ts';
import { restoreCancelSignal, restoreProgressQuery } from '../../common/messages.ts';
import { describeBadFiles, hashAll } from './preflight.ts';

const control = proxyActivities<RestoreControlActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: nonRetryableCodes() },
});

export async function verifyBackup(input: VerifyInput): Promise<VerifySummary> {
  const id = workflowInfo().workflowId;
  let status: RestoreProgress['status'] = 'running';
  let phase: RestorePhase = 'plan';
  let plan: RestorePlan | undefined;
  let bytesDone = 0;
  const snapshot = (): RestoreProgress => ({
    kind: 'verify',
    status,
    phase,
    bytesDone,
    bytesTotal: plan?.replicaSets.reduce((s, r) => s + r.bytes, 0) ?? 0,
    bytesPerSec: 0,
    ...(plan ? { commonTimestamp: plan.commonTimestamp } : {}),
    replicaSets: (plan?.replicaSets ?? []).map((r) => ({ name: r.name, node: null, phase, filesDone: 0, filesTotal: r.files, bytesDone: 0, bytesTotal: r.bytes })),
  });
  const publish = () => {
    const p = snapshot();
    publishStatus(restoreMarkdown(id, input.backupId, p), p);
  };
  setHandler(restoreProgressQuery, snapshot, { description: 'Live progress: bytes re-hashed of the total' });
  const cancel = cancellableBySignal(restoreCancelSignal, 'Cancel the verification ({"reason": "..."} optional)');
  const scope = cancel.scope;
  upsertSearchAttributes([{ key: CutpointKind, value: 'verify' }]);
  publish();

  let result: { files: number; bytes: number; bad: BadFile[] } = { files: 0, bytes: 0, bad: [] };
  let failure: unknown;
  try {
    await scope.run(async () => {
      // Only a complete backup is verified: a failed or cancelled one has had its data removed by design.
      plan = await control.loadRestorePlan({ repo: input.repo, backupId: input.backupId });
      upsertSearchAttributes([{ key: CutpointCluster, value: plan.cluster }]);
      phase = 'verify';
      publish();
      result = await hashAll(input.repo, input.backupId, plan.replicaSets, (b) => {
        bytesDone = b;
        publish();
      });
    });
  } catch (e) {
    failure = e;
  }
  const ended = outcomeOf(failure, cancel.reason());
  // A verify that ran through but found bad files fails with CHECKSUM_MISMATCH.
  const outcome =
    ended.status === 'complete' && result.bad.length
      ? { status: 'failed' as const, error: { code: 'CHECKSUM_MISMATCH', message: `backup ${input.backupId}: ${result.bad.length} bad file(s): ${describeBadFiles(result.bad)}` } }
      : ended;
  status = outcome.status;
  phase = 'done';
  publish();
  const summary: VerifySummary = { id, backupId: input.backupId, status: outcome.status, files: result.files, bytes: result.bytes, bad: result.bad, ...(outcome.error ? { error: outcome.error } : {}) };
  return settle(outcome, summary);
}
