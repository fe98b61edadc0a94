/**
 * Retention: applies the keep policy of common/retention.ts to the catalogue of a repository, per cluster, and
 * removes what it does not keep. One prune per repository at a time: `<repo>/locks/prune.json` (`{host, pid, time,
 * token}`), created exclusively, taken over when stale (its pid is dead on this host, or it is older than
 * `lockStaleMs`), released on every path.
 *
 * ```ts
 * const r = await prune({ repo: '/backups', policy: { keepDaily: 7, keepWeekly: 4 }, client, dryRun: true });
 * for (const c of r.clusters) for (const x of c.remove) console.log(x.id, x.reasons.join('; '));
 * ```
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { CutpointError } from '../common/errors.ts';
import { layout } from '../common/manifest.ts';
import type { RetentionSummary } from '../common/schedule-types.ts';
import { hasKeepRule, planRetention, type RetentionPolicy, validateRetentionPolicy } from '../common/retention.ts';
import { listBackups, openRepository } from './catalogue.ts';

/** A lock older than this is taken over even when its owner may live (a hung prune). */
export const DEFAULT_LOCK_STALE_MS = 6 * 3_600_000;

export interface PruneOptions {
  repo: string;
  /** Only this cluster; default every cluster of the repository, each by itself. */
  cluster?: string;
  policy: RetentionPolicy;
  /** Say what would be removed, remove nothing (takes no lock). */
  dryRun?: boolean;
  /** Checks running manifests against Temporal; without one, running backups are all kept. */
  client?: Client | null;
  now?: Date;
  lockStaleMs?: number;
}

/** What a prune did: the plan per cluster and the ids removed (empty on a dry run). */
export type PruneResult = RetentionSummary;

/** The content of `locks/prune.json`. */
export interface LockInfo {
  host: string;
  pid: number;
  time: string;
  token: string;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Why a lock is stale, or undefined when its owner may still hold it. */
export function lockStaleReason(info: Partial<LockInfo> | undefined, now: Date, staleMs: number): string | undefined {
  if (!info || typeof info.pid !== 'number' || typeof info.time !== 'string') return 'unreadable';
  const age = now.getTime() - Date.parse(info.time);
  if (!(age <= staleMs)) return `older than ${Math.round(staleMs / 60_000)} minutes`;
  if (info.host === hostname() && !pidAlive(info.pid)) return `pid ${info.pid} is no longer running on ${info.host}`;
  return undefined;
}

/**
 * Takes `<repo>/locks/<name>.json` exclusively; returns its release function. A held lock fails with `REPO_LOCKED`
 * naming its owner; a stale one is taken over.
 */
export async function acquireRepoLock(repoDir: string, name: string, options: { now?: Date; staleMs?: number } = {}): Promise<() => Promise<void>> {
  const dir = join(repoDir, 'locks');
  const path = join(dir, `${name}.json`);
  await mkdir(dir, { recursive: true });
  const mine: LockInfo = { host: hostname(), pid: process.pid, time: (options.now ?? new Date()).toISOString(), token: randomBytes(8).toString('hex') };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(path, 'wx');
      try {
        await fh.writeFile(`${JSON.stringify(mine)}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      return async () => {
        const held = await readFile(path, 'utf8').then((t) => JSON.parse(t) as LockInfo, () => undefined);
        if (held?.token === mine.token) await unlink(path).catch(() => undefined);
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const text = await readFile(path, 'utf8').catch(() => undefined);
    if (text === undefined) continue; // released meanwhile
    let info: Partial<LockInfo> | undefined;
    try {
      info = JSON.parse(text) as Partial<LockInfo>;
    } catch {
      info = undefined;
    }
    // A lock being written this instant reads empty: give its owner a moment before calling it unreadable.
    if (text.trim() === '' && attempt === 0) {
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    const stale = lockStaleReason(info, options.now ?? new Date(), options.staleMs ?? DEFAULT_LOCK_STALE_MS);
    if (!stale) {
      throw new CutpointError(
        'REPO_LOCKED',
        `another ${name} holds ${path} (host ${info?.host}, pid ${info?.pid}, since ${info?.time}); wait for it, or remove the file if that process is gone`,
        { path, ...info },
      );
    }
    // Take a stale lock over: move it aside (only one taker's rename succeeds), then create ours exclusively.
    await rename(path, `${path}.stale-${mine.token}`).then(
      () => unlink(`${path}.stale-${mine.token}`),
      () => undefined,
    );
  }
  throw new CutpointError('REPO_LOCKED', `could not take ${path}: other processes keep taking it`, { path });
}

/** Plans (and unless `dryRun`, applies) the retention policy. */
export async function prune(options: PruneOptions): Promise<PruneResult> {
  try {
    validateRetentionPolicy(options.policy);
  } catch (e) {
    throw new CutpointError('BAD_USAGE', (e as Error).message);
  }
  if (!hasKeepRule(options.policy)) {
    throw new CutpointError('BAD_USAGE', 'give at least one keep rule (--keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly)');
  }
  const repo = await openRepository(options.repo);
  const release = options.dryRun ? undefined : await acquireRepoLock(options.repo, 'prune', { staleMs: options.lockStaleMs });
  try {
    const now = options.now ?? new Date();
    const catalogue = await listBackups(options.repo, { client: options.client ?? null, ...(options.cluster !== undefined ? { cluster: options.cluster } : {}) });
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
    return result;
  } finally {
    await release?.();
  }
}
