/**
 * Retention of the captured oplog (docs/repository-format.md, "Oplog segments"): once retention has chosen the
 * backups it keeps, a cluster's oplog segments that only cover time before its oldest kept complete backup are
 * removed (a restore replays from a base backup's common timestamp onwards: what came before no kept base needs).
 * The chunks of the segments kept are marked by the sweep (repository/v2/sweep.ts), the others go with it. A cluster
 * without a complete backup keeps its whole capture (its first base may be running).
 *
 * The chain stays checkable: the oldest segment kept still names its predecessor in `prev`, which proves the oplog
 * contiguous from that point (repository/oplog-segments.ts, `summarizeChain`).
 */
import { compareTs, type Ts } from '../common/timestamp.ts';
import { listBackups } from './catalogue.ts';
import { OplogSegments } from './oplog-segments.ts';
import type { Repository } from './repository.ts';

/** The segment paths retention removes (removed unless `dryRun`); `without`: backups treated as removed already. */
export async function pruneOplogSegments(repo: Repository, options: { dryRun?: boolean; without?: ReadonlySet<string> } = {}): Promise<string[]> {
  const segments = new OplogSegments(repo);
  const removed: string[] = [];
  const catalogue = await listBackups(repo);
  for (const cluster of await segments.clusters()) {
    const bases = catalogue.backups
      .filter((b) => b.cluster === cluster && b.status === 'complete' && b.commonTimestamp && !options.without?.has(b.id))
      .map((b) => b.commonTimestamp!)
      .sort(compareTs);
    const oldest: Ts | undefined = bases[0];
    if (!oldest) continue;
    for (const rs of await segments.replicaSets(cluster)) {
      for (const path of await segments.paths(cluster, rs)) {
        const seg = await segments.read(path);
        if (compareTs(seg.last, oldest) > 0) break; // sorted by first: the rest are needed
        removed.push(path);
        if (!options.dryRun) await repo.storage.remove(path);
      }
    }
  }
  return removed;
}
