/**
 * The catalogue: what backups a repository holds, read from its manifests alone (so it works when Temporal's
 * history is gone). A `running` manifest is checked with the caller's {@link RunningCheck} (the client API and the
 * retention activity ask Temporal): a backup whose workflow is not found or no longer runs is `stale`; without a
 * check (or when it cannot answer) it is `running?`.
 */
import type { BackupKind, IncrementalRecord } from '../common/incremental.ts';
import { fsRepository, type Repository } from './repository.ts';
import { CutpointError } from '../common/errors.ts';
import { type BackupStatus, type ClusterManifest, validateBackupId } from '../common/manifest.ts';
import type { Ts } from '../common/timestamp.ts';

/** A manifest's status, with `running` refined: `stale` (its workflow no longer runs) or `running?` (unknown). */
export type CatalogueStatus = BackupStatus | 'stale' | 'running?';

/** One backup of the listing. */
export interface CatalogueEntry {
  id: string;
  cluster: string;
  status: CatalogueStatus;
  commonTimestamp: Ts | null;
  startedAt: string;
  finishedAt: string | null;
  /** Bytes stored, from the cluster manifest. */
  bytes: number;
  /** `finishedAt - startedAt` in seconds; null while running. */
  durationSecs: number | null;
  /** `full`, `base` or `incremental` (docs/incremental.md); `full` for manifests written before incrementals. */
  kind: BackupKind;
  /** An incremental's parent backup. */
  parent: string | null;
  error?: { code: string; message: string };
}

export interface Catalogue {
  repo: string;
  /** Oldest first (by `startedAt`, then id). */
  backups: CatalogueEntry[];
  /** Directories under `backups/` without a readable cluster manifest, with the reason. */
  problems: Array<{ id: string; error: string }>;
  /** Whether running manifests were checked against Temporal. */
  temporal: 'checked' | 'offline';
}

/** One replica set of {@link describeBackup}; the counts and timestamps are null while its manifest is not written. */
export interface CatalogueReplicaSet {
  name: string;
  configServer: boolean;
  node: string | null;
  files: number | null;
  bytes: number | null;
  oplogStart: Ts | null;
  oplogEnd: Ts | null;
  checkpointTimestamp: Ts | null;
  extendedTo: Ts | null;
  /** The incremental cursor the files were copied under (kind, parent, chain break); absent for a full backup. */
  incremental?: IncrementalRecord;
}

export interface BackupDescription extends CatalogueEntry {
  repo: string;
  balancerWasEnabled: boolean | null;
  replicaSets: CatalogueReplicaSet[];
}

/**
 * Whether the workflow of a running backup still runs: `true` it runs, `false` not found or ended, `undefined` when
 * that cannot be told.
 */
export type RunningCheck = (backupId: string) => Promise<boolean | undefined>;

export interface CatalogueOptions {
  /** Checks `running` manifests (against Temporal); absent or null: offline (`running?`). */
  running?: RunningCheck | null;
  /** Only this cluster's backups. */
  cluster?: string;
}

/** Opens an existing repository at `path` (`REPO_UNUSABLE` when it is not one). */
export async function openRepository(path: string): Promise<Repository> {
  if (!path) throw new CutpointError('BAD_USAGE', 'a repository path is required (--repo)');
  const repo = fsRepository(path);
  await repo.open();
  return repo;
}

async function statusOf(m: ClusterManifest, check: RunningCheck | null | undefined): Promise<CatalogueStatus> {
  if (m.status !== 'running') return m.status;
  if (!check) return 'running?';
  const running = await check(m.id).catch(() => undefined);
  return running === undefined ? 'running?' : running ? 'running' : 'stale';
}

function entryOf(m: ClusterManifest, status: CatalogueStatus): CatalogueEntry {
  const duration = m.finishedAt ? (Date.parse(m.finishedAt) - Date.parse(m.startedAt)) / 1000 : null;
  return {
    id: m.id,
    cluster: m.cluster,
    status,
    commonTimestamp: m.commonTimestamp,
    startedAt: m.startedAt,
    finishedAt: m.finishedAt,
    bytes: m.bytes,
    durationSecs: duration !== null && Number.isFinite(duration) ? duration : null,
    kind: m.kind ?? 'full',
    parent: m.parent ?? null,
    ...(m.error ? { error: m.error } : {}),
  };
}

/** The backups of `repo` (of one cluster with `cluster`), oldest first. */
export async function listBackups(repo: Repository, options: CatalogueOptions = {}): Promise<Catalogue> {
  const listing = await repo.listBackups();
  const manifests = listing.backups
    .map((b) => b.manifest)
    .filter((m) => options.cluster === undefined || m.cluster === options.cluster)
    .sort((a, b) => (a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const backups: CatalogueEntry[] = [];
  for (const m of manifests) backups.push(entryOf(m, await statusOf(m, options.running)));
  return {
    repo: repo.location,
    backups,
    problems: listing.problems.map((p) => ({ id: p.id, error: p.error })),
    temporal: options.running ? 'checked' : 'offline',
  };
}

/** One backup with its replica sets (from their manifests); `BACKUP_NOT_FOUND` when the repository has no such id. */
export async function describeBackup(repo: Repository, id: string, options: Omit<CatalogueOptions, 'cluster'> = {}): Promise<BackupDescription> {
  try {
    validateBackupId(id);
  } catch (e) {
    throw new CutpointError('BAD_USAGE', (e as Error).message);
  }
  const m = await repo.readClusterManifest(id);
  if (!m) throw new CutpointError('BACKUP_NOT_FOUND', `no backup '${id}' in repository ${repo.location} (see: cutpoint list --repo ${repo.location})`);
  const replicaSets: CatalogueReplicaSet[] = [];
  for (const rs of m.replicaSets) {
    const r = await repo.readReplicaSetManifest(id, rs.name);
    replicaSets.push({
      name: rs.name,
      configServer: rs.configServer,
      node: r?.node ?? rs.node,
      files: r ? r.files.length : null,
      bytes: r ? r.files.reduce((sum, f) => sum + f.size, 0) : null,
      oplogStart: r?.oplogStart ?? null,
      oplogEnd: r?.oplogEnd ?? null,
      checkpointTimestamp: r?.checkpointTimestamp ?? null,
      extendedTo: r?.extendedTo ?? null,
      ...(r?.incremental ? { incremental: r.incremental } : {}),
    });
  }
  return { ...entryOf(m, await statusOf(m, options.running)), repo: repo.location, balancerWasEnabled: m.balancerWasEnabled, replicaSets };
}
