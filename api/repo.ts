/**
 * Repository maintenance: `check` (repository/check.ts) and `stats` (repository/stats.ts). They read the repository
 * only: no Temporal client is needed.
 *
 * ```ts
 * const report = await checkRepository('/backups', { readData: true });
 * if (report.problems.length) console.log(report.problems);
 * ```
 */
import { openRepository } from '../repository/catalogue.ts';
import * as check from '../repository/check.ts';
import { repositoryStats as stats, type RepoStats } from '../repository/stats.ts';
import { fsRepository } from '../repository/repository.ts';
import { CutpointError } from '../common/errors.ts';
import type { KeyInfo } from '../repository/encryption/keys.ts';

export type { CheckFileRef, CheckGarbage, CheckOptions, CheckProblem, CheckProblemKind, CheckReport } from '../repository/check.ts';
export type { RepoStats } from '../repository/stats.ts';
export type { KeyInfo } from '../repository/encryption/keys.ts';

/**
 * Checks the repository at `repoPath` (its structure; with `readData` every pack's bytes). Damage is in the report's
 * `problems`; a path that is not a repository is `REPO_UNUSABLE`.
 */
export async function checkRepository(repoPath: string, options: check.CheckOptions = {}): Promise<check.CheckReport> {
  if (!repoPath) throw new CutpointError('BAD_USAGE', 'a repository path is required (--repo)');
  // Not openRepository: a damaged cutpoint.json is a problem to report, not an error.
  return check.checkRepository(fsRepository(repoPath), options);
}

/**
 * Creates a v2 repository at `repoPath` (an empty or new location), encrypted when `encrypt` is true (a password is
 * then required) or, by default, when this process has a password (see below).
 */
export async function initRepository(
  repoPath: string,
  options: { encrypt?: boolean; compression?: string } = {},
): Promise<{ repo: string; format: string; encrypted: boolean; compression: 'zstd' | 'none'; created: boolean }> {
  if (!repoPath) throw new CutpointError('BAD_USAGE', 'a repository path is required (--repo)');
  const repo = fsRepository(repoPath);
  const existed = (await repo.storage.listChildren('')).includes('cutpoint.json');
  if (existed) throw new CutpointError('REPO_UNUSABLE', `${repo.location} is already a cutpoint repository`);
  const compression = options.compression ?? 'zstd';
  if (compression !== 'zstd' && compression !== 'none') throw new CutpointError('BAD_USAGE', `--compression must be zstd or none, got '${compression}'`);
  const config = await repo.initWritable(new Date(), { ...(options.encrypt ? { encrypt: true } : {}), compression });
  return { repo: repo.location, format: config.format, encrypted: await repo.encrypted(), compression, created: true };
}

/**
 * Key management of an encrypted repository (docs/repository-format.md section 16). The password that opens it comes
 * from this process's environment (`CUTPOINT_REPO_PASSWORD` or `CUTPOINT_REPO_PASSWORD_FILE`); the new one is given.
 */
export async function listRepositoryKeys(repoPath: string): Promise<Array<KeyInfo & { current: boolean }>> {
  const repo = await openRepository(repoPath);
  const current = (await repo.keys())?.keyId;
  return (await repo.listKeys()).map((k) => ({ ...k, current: k.id === current }));
}

/** Adds a key for `newPassword`; returns its id. */
export async function addRepositoryKey(repoPath: string, newPassword: string): Promise<string> {
  return (await openRepository(repoPath)).addKey(newPassword);
}

/** Removes key `id` (or a unique prefix of it): never the last, nor the one the current password opened. */
export async function removeRepositoryKey(repoPath: string, id: string): Promise<string> {
  return (await openRepository(repoPath)).removeKey(id);
}

/** Replaces the current password's key by one for `newPassword`; no data is rewritten. */
export async function changeRepositoryPassword(repoPath: string, newPassword: string): Promise<{ added: string; removed: string }> {
  return (await openRepository(repoPath)).changePassword(newPassword);
}

/** The statistics of the repository at `repoPath`. */
export async function repositoryStats(repoPath: string): Promise<RepoStats> {
  return stats(await openRepository(repoPath));
}
