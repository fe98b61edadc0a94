/**
 * Repository bookkeeping on the orchestrator: the backup's shared repository lock (taken before the first manifest,
 * refreshed while the backup runs, released at its end: repository/lock.ts), the cluster manifest (`running` at the
 * start, rewritten at the end; `complete` is the commit point) and each replica-set manifest, assembled from the copy
 * batches' results. Each manifest write also updates the orchestrator's metrics (lib/metrics.ts).
 */
import { log } from '@temporalio/activity';
import { acquireLock, DEFAULT_LOCK_REFRESH_MS, refreshLock } from '../../repository/lock.ts';
import type { BackupStatus, ClusterManifest } from '../../common/manifest.ts';
import { REPOSITORY_FORMAT } from '../../common/manifest.ts';
import type { Ts } from '../../common/timestamp.ts';
import { fsRepository, type Repository } from '../../repository/repository.ts';
import { backupFinished, backupStarted, needsSeed, seedLastSuccess } from '../../lib/metrics.ts';
import type { StartupOptions } from '../../common/startup-options.ts';
import type { BackupKind, IncrementalOptions, IncrementalRecord } from '../../common/incremental.ts';
import { type ChainDecision, findChainParent } from '../../repository/chain.ts';

export interface RepositoryActivityContext {
  repository: (repo: string) => Repository;
}

export function repositoryActivities(ctx: RepositoryActivityContext = { repository: (repo) => fsRepository(repo) }) {
  return {
    /**
     * Creates the repository if needed and takes the backup's shared lock `backup` (it coexists with other backups'
     * and keeps a prune out). Tries once: a prune's exclusive lock fails it with REPO_LOCKED naming the holder, and
     * the workflow waits and tries again. Returns the lock file, which the workflow refreshes and releases.
     */
    async lockRepository(input: { repo: string; backupId: string }): Promise<{ lock: string; refreshMs: number }> {
      const repo = ctx.repository(input.repo);
      await repo.initWritable();
      const held = await acquireLock(repo.storage, 'backup', { kind: 'shared' });
      log.info('repository locked (shared)', { lock: held.path });
      return { lock: held.path, refreshMs: DEFAULT_LOCK_REFRESH_MS };
    },

    /**
     * Rewrites the backup's lock with a new time, so that it does not go stale while the backup runs (the workflow
     * calls it every `refreshMs` that lockRepository returned). A lost lock (removed as stale by a prune) fails with
     * REPO_LOCKED, which fails the backup. The refresh writes this process's pid: after a worker crash the next
     * refresh takes the file over.
     */
    async refreshRepositoryLock(input: { repo: string; lock: string }): Promise<void> {
      await refreshLock(ctx.repository(input.repo).storage, input.lock);
    },

    /** Releases the backup's lock (idempotent: a lock already gone is fine). */
    async releaseRepositoryLock(input: { repo: string; lock: string }): Promise<void> {
      await ctx.repository(input.repo).storage.remove(input.lock);
      log.info('repository lock released', { lock: input.lock });
    },

    /** Creates the repository if needed and writes the `running` cluster manifest (idempotent for a retry). */
    async initBackup(input: {
      repo: string;
      backupId: string;
      cluster: string;
      startedAt: string;
      replicaSets: Array<{ name: string; configServer: boolean }>;
      /** `base` when an incremental was asked for (final kind at the end), `full` otherwise. */
      kind?: BackupKind;
    }): Promise<void> {
      const repo = ctx.repository(input.repo);
      await repo.initWritable();
      const existing = await repo.readClusterManifest(input.backupId);
      if (existing && existing.status !== 'running') {
        throw new Error(`backup ${input.backupId} already exists in ${input.repo} with status ${existing.status}`);
      }
      await repo.writeClusterManifest({
        format: REPOSITORY_FORMAT,
        id: input.backupId,
        cluster: input.cluster,
        status: 'running',
        startedAt: input.startedAt,
        finishedAt: null,
        commonTimestamp: null,
        balancerWasEnabled: null,
        bytes: 0,
        replicaSets: input.replicaSets.map((r) => ({ ...r, node: null })),
        ...(input.kind ? { kind: input.kind } : {}),
      });
      backupStarted(input.cluster, input.backupId);
    },

    /**
     * Where this replica set's incremental chain continues, or why it takes a base (repository/chain.ts). Run under
     * the backup's repository lock, so no prune removes the parent's chunks before the manifest names them.
     */
    async planIncrementalChain(input: { repo: string; cluster: string; backupId: string; replicaSet: string } & IncrementalOptions): Promise<ChainDecision> {
      const decision = await findChainParent(ctx.repository(input.repo), input);
      log.info('incremental chain', { replicaSet: input.replicaSet, parent: decision.parent?.backupId ?? null, ...(decision.chainBreak ? { chainBreak: decision.chainBreak } : {}) });
      return decision;
    },

    /** Assembles the replica-set manifest from the batch results (every listed file exactly once) and writes it. */
    async writeReplicaSetManifest(input: {
      repo: string;
      backupId: string;
      replicaSet: string;
      node: string;
      serverBackupId: string;
      dbpath: string;
      oplogStart: Ts | null;
      oplogEnd: Ts | null;
      checkpointTimestamp: Ts | null;
      extendedTo: Ts;
      startupOptions?: StartupOptions;
      incremental?: IncrementalRecord;
      bytesRead?: number;
    }): Promise<{ files: number; bytes: number }> {
      const repo = ctx.repository(input.repo);
      const manifest = await repo.assembleReplicaSetManifest(input.backupId, input.replicaSet, {
        node: input.node,
        backupId: input.serverBackupId,
        dbpath: input.dbpath,
        oplogStart: input.oplogStart,
        oplogEnd: input.oplogEnd,
        checkpointTimestamp: input.checkpointTimestamp,
        extendedTo: input.extendedTo,
        ...(input.startupOptions ? { startupOptions: input.startupOptions } : {}),
        ...(input.incremental ? { incremental: input.incremental } : {}),
        ...(input.bytesRead !== undefined ? { bytesRead: input.bytesRead } : {}),
      });
      await repo.writeReplicaSetManifest(input.backupId, manifest);
      log.info('replica-set manifest written', { replicaSet: input.replicaSet, files: manifest.files.length });
      return { files: manifest.files.length, bytes: manifest.files.reduce((s, f) => s + f.size, 0) };
    },

    /**
     * Forgets one replica set's copy (its files and work files) before it re-opens a lost cursor: the new cursor's
     * checkpoint is another one, and files of the old checkpoint must not mix with it. Idempotent.
     */
    async resetReplicaSetCopy(input: { repo: string; backupId: string; replicaSet: string }): Promise<void> {
      const repo = ctx.repository(input.repo);
      await repo.removeBackupData(input.backupId, input.replicaSet);
      await repo.removeWorkFiles(input.backupId, input.replicaSet);
      log.info('replica-set copy reset for a re-opened cursor', { replicaSet: input.replicaSet });
    },

    /**
     * Rewrites the cluster manifest with the outcome. For `complete` this is the commit point: it runs only after
     * every replica-set manifest is durable. A failed or cancelled backup keeps its manifest; its data files are
     * removed, since a partial copy can never be restored.
     */
    async finishBackup(input: {
      repo: string;
      backupId: string;
      status: Exclude<BackupStatus, 'running'>;
      finishedAt: string;
      commonTimestamp: Ts | null;
      bytes: number;
      nodes: Record<string, string>;
      kind?: BackupKind;
      parent?: string | null;
      bytesRead?: number;
      error?: { code: string; message: string };
    }): Promise<void> {
      const repo = ctx.repository(input.repo);
      const current = await repo.readClusterManifest(input.backupId);
      if (!current) throw new Error(`backup ${input.backupId} has no manifest in ${input.repo}`);
      if (input.status === 'complete') {
        for (const r of current.replicaSets) {
          if (!(await repo.readReplicaSetManifest(input.backupId, r.name))) {
            throw new Error(`refusing to commit backup ${input.backupId}: replica set ${r.name} has no manifest`);
          }
        }
      } else {
        await repo.removeBackupData(input.backupId);
      }
      const next: ClusterManifest = {
        ...current,
        status: input.status,
        finishedAt: input.finishedAt,
        commonTimestamp: input.commonTimestamp,
        bytes: input.bytes,
        replicaSets: current.replicaSets.map((r) => ({ ...r, node: input.nodes[r.name] ?? r.node })),
        // A failed incremental keeps its provisional kind: the next backup knows it may have moved the history.
        ...(input.kind && input.status === 'complete' ? { kind: input.kind } : {}),
        ...(input.parent !== undefined && input.status === 'complete' ? { parent: input.parent } : {}),
        ...(input.bytesRead !== undefined ? { bytesRead: input.bytesRead } : {}),
        ...(input.error ? { error: input.error } : {}),
      };
      await repo.writeClusterManifest(next);
      if (needsSeed(next.cluster)) await seedFromCatalogue(repo, next.cluster);
      backupFinished(next);
      await repo.removeWorkFiles(input.backupId);
      log.info(`backup ${input.status}`, { status: input.status, bytes: input.bytes, ...(input.error ? { error: input.error.code } : {}) });
    },
  };
}

/**
 * The newest complete backup of `cluster` in the repository, for the metrics of an orchestrator that has not seen
 * one finish yet (restarted). Best effort: an unreadable catalogue leaves the gauge to the next complete backup.
 */
async function seedFromCatalogue(repo: Repository, cluster: string): Promise<void> {
  try {
    const { backups } = await repo.listBackups();
    const done = backups.map((b) => b.manifest).filter((m) => m.cluster === cluster && m.status === 'complete' && m.finishedAt);
    const newest = done.map((m) => m.finishedAt!).sort().at(-1) ?? null;
    seedLastSuccess(cluster, newest);
  } catch (e) {
    log.warn('metrics: the catalogue could not be read for the newest complete backup', { error: String(e) });
  }
}

export type RepositoryActivities = ReturnType<typeof repositoryActivities>;
