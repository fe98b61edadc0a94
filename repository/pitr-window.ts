/**
 * The restorable window of a cluster's captured oplog (docs/interfaces.md section 8), from the repository alone: per
 * replica set the chain of segments (repository/oplog-segments.ts), and the cluster's complete backups from the
 * catalogue. `to` is the oldest replica set's newest captured entry; `from` the common timestamp of the oldest
 * complete backup from which every replica set's capture is unbroken up to `to`.
 */
import { compareTs, type Ts } from '../common/timestamp.ts';
import type { PitrGap } from '../common/pitr-types.ts';
import { listBackups } from './catalogue.ts';
import { OplogSegments, summarizeChain, type ChainSummary } from './oplog-segments.ts';
import type { Repository } from './repository.ts';

export interface PitrWindow {
  cluster: string;
  replicaSets: Array<{ name: string; capturedFrom: Ts | null; capturedTo: Ts | null; contiguousFrom: Ts | null; segments: number }>;
  restorableFrom: Ts | null;
  restorableTo: Ts | null;
  gaps: PitrGap[];
}

/** The oldest base (a backup's common timestamp) the captured chains cover up to their common end; null if none. */
export function restorableFrom(chains: ChainSummary[], bases: Ts[]): Ts | null {
  if (!chains.length || chains.some((c) => !c.contiguousFrom || !c.to)) return null;
  const to = chains.map((c) => c.to!).reduce((m, x) => (compareTs(x, m) < 0 ? x : m));
  const ok = bases.filter((b) => compareTs(b, to) <= 0 && chains.every((c) => compareTs(c.contiguousFrom!, b) <= 0)).sort(compareTs);
  return ok[0] ?? null;
}

/** The window of one cluster. */
export async function pitrWindow(repo: Repository, cluster: string): Promise<PitrWindow> {
  const segments = new OplogSegments(repo);
  const names = await segments.replicaSets(cluster);
  const chains = await Promise.all(names.map(async (rs) => summarizeChain(await segments.list(cluster, rs))));
  const backups = (await listBackups(repo, { cluster })).backups.filter((b) => b.status === 'complete' && b.commonTimestamp).map((b) => b.commonTimestamp!);
  const tos = chains.map((c) => c.to);
  const restorableTo = tos.length && tos.every((t) => t) ? (tos as Ts[]).reduce((m, x) => (compareTs(x, m) < 0 ? x : m)) : null;
  return {
    cluster,
    replicaSets: names.map((name, k) => ({ name, capturedFrom: chains[k]!.from, capturedTo: chains[k]!.to, contiguousFrom: chains[k]!.contiguousFrom, segments: chains[k]!.segments })),
    restorableFrom: restorableFrom(chains, backups),
    restorableTo,
    gaps: names.flatMap((rs, k) => chains[k]!.gaps.map((g) => ({ replicaSet: rs, ...g }))),
  };
}

/** Every cluster with captured oplog in the repository. */
export async function pitrWindows(repo: Repository): Promise<PitrWindow[]> {
  const out: PitrWindow[] = [];
  for (const cluster of await new OplogSegments(repo).clusters()) out.push(await pitrWindow(repo, cluster));
  return out;
}

/**
 * The times a backup with common timestamp `base` can be restored to with the captured oplog of `window`: from
 * `base` to the window's end, when every replica set's capture is unbroken from at or before `base`; else null.
 */
export function backupWindow(window: PitrWindow, base: Ts): { from: Ts; to: Ts } | null {
  if (!window.restorableTo || !window.replicaSets.length || compareTs(base, window.restorableTo) > 0) return null;
  if (!window.replicaSets.every((r) => r.contiguousFrom && compareTs(r.contiguousFrom, base) <= 0)) return null;
  return { from: base, to: window.restorableTo };
}
