/**
 * Retention: applies a keep policy to the catalogue of a repository, per cluster, and removes what it does not keep
 * (repository/prune.ts), holding the repository's `prune` lock (repository/lock.ts). With a client, running
 * manifests are checked against Temporal; without one they are all kept.
 *
 * ```ts
 * const r = await prune({ repo: '/backups', policy: { keepDaily: 7, keepWeekly: 4 }, client, dryRun: true });
 * for (const c of r.clusters) for (const x of c.remove) console.log(x.id, x.reasons.join('; '));
 * ```
 */
import type { Client } from '@temporalio/client';
import { openRepository } from '../repository/catalogue.ts';
import * as retention from '../repository/prune.ts';
import { runningCheck } from './catalogue.ts';

export type { PruneResult } from '../repository/prune.ts';

export interface PruneOptions extends Omit<retention.PruneOptions, 'running'> {
  repo: string;
  /** Checks running manifests against Temporal; without one, running backups are all kept. */
  client?: Client | null;
}

/** Plans (and unless `dryRun`, applies) the retention policy. */
export async function prune(options: PruneOptions): Promise<retention.PruneResult> {
  const { repo: path, client, ...rest } = options;
  return retention.prune(await openRepository(path), { ...rest, running: runningCheck(client) });
}
