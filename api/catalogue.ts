/**
 * The catalogue: what backups a repository holds, read from its manifests alone (so it works when Temporal's
 * history is gone). A `running` manifest is checked against Temporal when a client is given: a backup whose workflow
 * is not found or no longer RUNNING is `stale`; without a client (or when Temporal cannot answer) it is `running?`.
 * The listing itself is repository/catalogue.ts.
 *
 * ```ts
 * const { backups } = await listBackups('/backups', { client });
 * const d = await describeBackup('/backups', backups[0].id, { client });
 * ```
 */
import type { Client } from '@temporalio/client';
import { workflowRunning } from '../lib/temporal-connection.ts';
import * as catalogue from '../repository/catalogue.ts';
import type { BackupDescription, Catalogue, RunningCheck } from '../repository/catalogue.ts';

export type { BackupDescription, Catalogue, CatalogueEntry, CatalogueReplicaSet, CatalogueStatus } from '../repository/catalogue.ts';
export { openRepository } from '../repository/catalogue.ts';

export interface CatalogueOptions {
  /** Checks `running` manifests against Temporal; absent or null: offline (`running?`). */
  client?: Client | null;
  /** Only this cluster's backups. */
  cluster?: string;
}

/** The check of running manifests against Temporal, or null without a client. */
export function runningCheck(client: Client | null | undefined): RunningCheck | null {
  return client ? (id) => workflowRunning(client, id) : null;
}

/** The backups of the repository at `repoPath` (of one cluster with `cluster`), oldest first. */
export async function listBackups(repoPath: string, options: CatalogueOptions = {}): Promise<Catalogue> {
  const repo = await catalogue.openRepository(repoPath);
  return catalogue.listBackups(repo, { running: runningCheck(options.client), ...(options.cluster !== undefined ? { cluster: options.cluster } : {}) });
}

/** One backup with its replica sets (from their manifests); `BACKUP_NOT_FOUND` when the repository has no such id. */
export async function describeBackup(repoPath: string, id: string, options: Omit<CatalogueOptions, 'cluster'> = {}): Promise<BackupDescription> {
  const repo = await catalogue.openRepository(repoPath);
  return catalogue.describeBackup(repo, id, { running: runningCheck(options.client) });
}
