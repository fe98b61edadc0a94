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

export type { CheckFileRef, CheckGarbage, CheckOptions, CheckProblem, CheckProblemKind, CheckReport } from '../repository/check.ts';
export type { RepoStats } from '../repository/stats.ts';

/**
 * Checks the repository at `repoPath` (its structure; with `readData` every pack's bytes). Damage is in the report's
 * `problems`; a path that is not a repository is `REPO_UNUSABLE`.
 */
export async function checkRepository(repoPath: string, options: check.CheckOptions = {}): Promise<check.CheckReport> {
  if (!repoPath) throw new CutpointError('BAD_USAGE', 'a repository path is required (--repo)');
  // Not openRepository: a damaged cutpoint.json is a problem to report, not an error.
  return check.checkRepository(fsRepository(repoPath), options);
}

/** The statistics of the repository at `repoPath`. */
export async function repositoryStats(repoPath: string): Promise<RepoStats> {
  return stats(await openRepository(repoPath));
}
