/**
 * Export: one replica set of a complete backup as a plain dbpath, into a directory or as a tar stream
 * (repository/export.ts). It reads the repository only: no Temporal client is needed.
 *
 * ```ts
 * await exportBackup('/backups', id, { replicaSet: 'rs0', out: '/tmp/rs0-dbpath' });
 * await exportBackup('/backups', id, { replicaSet: 'rs0', tar: process.stdout });
 * ```
 */
import type { Writable } from 'node:stream';
import { CutpointError } from '../common/errors.ts';
import { openRepository } from '../repository/catalogue.ts';
import { exportToDirectory, exportToTar, exportToTarFile, type ExportSummary } from '../repository/export.ts';

export type { ExportSummary } from '../repository/export.ts';

/** Where an export goes: a directory (`out`), a tar file (`tar` a path) or a tar stream (`tar` a Writable, not ended). */
export interface ExportOptions {
  replicaSet: string;
  out?: string;
  tar?: string | Writable;
  /** Write into a non-empty directory, or over an existing tar file (default: refused with TARGET_NOT_EMPTY). */
  force?: boolean;
}

/** Exports replica set `replicaSet` of backup `id` of the repository at `repoPath`, every chunk and file checked. */
export async function exportBackup(repoPath: string, id: string, options: ExportOptions): Promise<ExportSummary> {
  if ((options.out === undefined) === (options.tar === undefined)) throw new CutpointError('BAD_USAGE', 'export: give exactly one of --out DIR and --tar FILE (or --tar - for stdout)');
  if (!options.replicaSet) throw new CutpointError('BAD_USAGE', 'export: a replica set is required (--replica-set)');
  const repo = await openRepository(repoPath);
  const force = { force: options.force === true };
  if (options.out !== undefined) return exportToDirectory(repo, id, options.replicaSet, options.out, force);
  if (typeof options.tar === 'string') return exportToTarFile(repo, id, options.replicaSet, options.tar, force);
  return exportToTar(repo, id, options.replicaSet, options.tar!, { end: false });
}
