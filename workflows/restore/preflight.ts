/**
 * What a restore checks before it writes anything to a target: every target agent answers and its dbpath and port
 * are free (or the restore is told to overwrite), and, before data is moved aside (`overwrite`) or a member is seeded,
 * every file in the repository still has its manifest's size and SHA-256. Both run for every replica set first, so a
 * bad target or a corrupted file anywhere leaves every such target untouched.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { PlannedReplicaSet, RestoreControlActivities } from '../../activities/orchestrator/restore-control.ts';
import { nonRetryableCodes, toFailure } from '../../common/errors.ts';
import type { BadFile, RestoreMember } from '../../common/restore-types.ts';
import { agentSteps } from './agent-steps.ts';

const verify = proxyActivities<RestoreControlActivities>({
  startToCloseTimeout: '24 hours',
  heartbeatTimeout: '1 minute',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: nonRetryableCodes() },
});

/** Inspects every target through its agent; refuses non-empty dbpaths (unless `overwrite`) and busy ports. */
export async function checkTargets(restoreId: string, members: RestoreMember[], overwrite: boolean, agentTimeoutMs: number): Promise<void> {
  const found = await Promise.all(members.map((m) => agentSteps(m.host, agentTimeoutMs).inspectRestoreTarget({ restoreId, dbpath: m.dbpath })));
  const problems: string[] = [];
  for (const t of found) {
    if (t.portBusy) problems.push(`${t.host}: something already answers on this port (stop it, or map the replica set to another port)`);
    if (t.nonEmpty && !t.ours && !overwrite) problems.push(`${t.host}: dbpath ${t.dbpath} is not empty (give --overwrite to keep its data aside and restore anyway)`);
  }
  if (problems.length) throw toFailure('TARGET_NOT_EMPTY', `restore targets in use, nothing was written: ${problems.join('; ')}`, { problems });
}

/** Human-readable list of bad files, for failure messages. */
export function describeBadFiles(bad: BadFile[]): string {
  const shown = bad.slice(0, 20).map((b) => `${b.replicaSet}/${b.path}: ${b.problem}`);
  return shown.join('; ') + (bad.length > 20 ? `; and ${bad.length - 20} more` : '');
}

/** Re-hashes every file of every replica set; returns the bad ones. `onBytes` reports the bytes checked so far. */
export async function hashAll(repo: string, backupId: string, rss: PlannedReplicaSet[], onBytes: (bytes: number) => void): Promise<{ files: number; bytes: number; bad: BadFile[] }> {
  let bytes = 0;
  const results = await Promise.all(
    rss.map(async (r) => {
      const res = await verify.verifyReplicaSetFiles({ repo, backupId, replicaSet: r.name });
      bytes += res.bytes;
      onBytes(bytes);
      return res;
    }),
  );
  return { files: results.reduce((s, r) => s + r.files, 0), bytes, bad: results.flatMap((r) => r.bad) };
}

/** {@link hashAll}, failing with CHECKSUM_MISMATCH naming every bad file. */
export async function verifyAll(repo: string, backupId: string, rss: PlannedReplicaSet[], onBytes: (bytes: number) => void): Promise<void> {
  const { bad } = await hashAll(repo, backupId, rss, onBytes);
  if (bad.length) {
    throw toFailure('CHECKSUM_MISMATCH', `backup ${backupId} is damaged, nothing was written to the targets: ${describeBadFiles(bad)}`, { bad });
  }
}
