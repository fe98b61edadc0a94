/**
 * Retention: applies the keep policy of common/retention.ts to the catalogue of a repository, per cluster, and
 * removes what it does not keep. One prune per repository at a time, and none while a backup runs: it holds the
 * exclusive repository lock `prune` (lock.ts; backups hold shared ones) while it removes, released on every path; a
 * dry run takes no lock. `ifLocked` says whether to wait for the holders or fail at once.
 */
import { CutpointError } from '../common/errors.ts';
import { layout, REPOSITORY_FORMAT } from '../common/manifest.ts';
import { sweepUnreferenced } from './v2/sweep.ts';
import { pruneOplogSegments } from './pitr-retention.ts';
import type { RetentionSummary } from '../common/schedule-types.ts';
import { hasKeepRule, planRetention, type RetentionPolicy, validateRetentionPolicy } from '../common/retention.ts';
import { listBackups, type RunningCheck } from './catalogue.ts';
import { acquireLock, acquireLockWaiting } from './lock.ts';
import { abortPendingUploads } from './pending-uploads.ts';
import type { Repository } from './repository.ts';

export interface PruneOptions {
  /** Only this cluster; default every cluster of the repository, each by itself. */
  cluster?: string;
  policy: RetentionPolicy;
  /** Say what would be removed, remove nothing (takes no lock). */
  dryRun?: boolean;
  /** Checks running manifests (against Temporal); without one, running backups are all kept. */
  running?: RunningCheck | null;
  now?: Date;
  lockStaleMs?: number;
  /**
   * When other locks are held (running backups hold shared ones, lock.ts): `wait` (default) tries again for up to
   * `lockWaitMs` (default 1 hour), then fails; `fail` fails at once. Either failure is REPO_LOCKED naming the holders.
   */
  ifLocked?: 'wait' | 'fail';
  lockWaitMs?: number;
  /** Called each time the lock is refused while waiting (the refusal names the holders). */
  onLockWait?: (error: CutpointError) => void;
}

/** What a prune did: the plan per cluster and the ids removed (empty on a dry run). */
export type PruneResult = RetentionSummary;

/** Plans (and unless `dryRun`, applies) the retention policy. */
export async function prune(repo: Repository, options: PruneOptions): Promise<PruneResult> {
  try {
    validateRetentionPolicy(options.policy);
  } catch (e) {
    throw new CutpointError('BAD_USAGE', (e as Error).message);
  }
  if (!hasKeepRule(options.policy)) {
    throw new CutpointError('BAD_USAGE', 'give at least one keep rule (--keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly)');
  }
  const lockOptions = { kind: 'exclusive' as const, ...(options.lockStaleMs !== undefined ? { staleMs: options.lockStaleMs } : {}) };
  const release = options.dryRun
    ? undefined
    : options.ifLocked === 'fail'
      ? await acquireLock(repo.storage, 'prune', lockOptions)
      : await acquireLockWaiting(repo.storage, 'prune', {
          ...lockOptions,
          ...(options.lockWaitMs !== undefined ? { waitMs: options.lockWaitMs } : {}),
          ...(options.onLockWait ? { onWait: options.onLockWait } : {}),
        });
  try {
    const now = options.now ?? new Date();
    const catalogue = await listBackups(repo, { running: options.running ?? null, ...(options.cluster !== undefined ? { cluster: options.cluster } : {}) });
    const byCluster = new Map<string, typeof catalogue.backups>();
    for (const b of catalogue.backups) byCluster.set(b.cluster, [...(byCluster.get(b.cluster) ?? []), b]);
    const result: PruneResult = { repo: repo.location, dryRun: options.dryRun === true, clusters: [], removed: [] };
    for (const [cluster, backups] of [...byCluster].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const plan = planRetention(
        backups.map((b) => ({
          id: b.id,
          status: b.status === 'stale' || b.status === 'running?' ? 'running' : b.status,
          startedAt: b.startedAt,
          finishedAt: b.finishedAt,
          ...(b.status === 'stale' ? { stale: true } : b.status === 'running' ? { stale: false } : {}),
        })),
        options.policy,
        now,
      );
      result.clusters.push({ cluster, ...plan });
      if (options.dryRun) continue;
      for (const x of plan.remove) {
        // Re-read just before removing: a backup that changed since the listing (e.g. a running one that completed)
        // is left for the next prune.
        const m = await repo.readClusterManifest(x.id);
        if (!m || m.status !== x.status) continue;
        await repo.removeBackup(x.id);
        result.removed.push(x.id);
      }
    }
    if (!options.dryRun) {
      // A removal that crashed after the cluster manifest went leaves an empty directory (listed as a problem): finish it.
      for (const p of catalogue.problems) {
        const dir = layout.backupDir(p.id);
        if ((await repo.storage.list(dir).catch(() => ['?'])).length === 0) await repo.storage.remove(dir);
      }
    }
    // Object storage: no backup writes under the exclusive lock, so every unfinished multipart upload is orphaned.
    if (!options.dryRun) {
      const aborted = await abortPendingUploads(repo.raw);
      if (aborted.length) result.abortedUploads = aborted;
    }
    // v2: the chunks no remaining backup references go (a dry run: those the planned removals alone reference).
    if ((await repo.format()) === REPOSITORY_FORMAT) {
      const planned = new Set(result.clusters.flatMap((c) => c.remove.map((x) => x.id)));
      // The captured oplog that no kept backup's window needs goes first, so its chunks are swept with the rest.
      const segments = await pruneOplogSegments(repo, { dryRun: options.dryRun === true, without: options.dryRun ? planned : new Set() });
      if (segments.length) result.oplogSegmentsRemoved = segments.length;
      result.sweep = await sweepUnreferenced(repo, { dryRun: options.dryRun === true, without: options.dryRun ? planned : new Set(), withoutSegments: new Set(segments) });
    }
    return result;
  } finally {
    await release?.();
  }
}
