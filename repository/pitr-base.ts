/**
 * The preflight of a point-in-time restore, from the repository alone and before any target is touched: which
 * cluster's capture the target map names, the base (the newest complete backup of that cluster whose common timestamp
 * is at or before the target and whose replica sets are the captured ones), and whether every replica set's capture,
 * config server included, is unbroken from the base to the target, reaches the target, and holds the decision of
 * every transaction prepared by then (repository/oplog-replay.ts). Anything else is PITR_NOT_RESTORABLE naming the
 * window and the gap.
 */
import type { Document } from 'mongodb';
import { BSON } from 'mongodb';
import { CutpointError } from '../common/errors.ts';
import type { PitrBase } from '../common/restore-at.ts';
import { compareTs, formatTs, type Ts } from '../common/timestamp.ts';
import { listBackups } from './catalogue.ts';
import { assertDecided, DecisionScan } from './oplog-replay.ts';
import { OplogSegments, summarizeChain, type OplogSegment } from './oplog-segments.ts';
import { pitrWindow, type PitrWindow } from './pitr-window.ts';
import type { Repository } from './repository.ts';
import type { ChunkIndex } from './v2/chunk-index.ts';


const refuse = (message: string, details?: Record<string, unknown>) => new CutpointError('PITR_NOT_RESTORABLE', message, details);

/** "from X to Y" of a window, or why there is none. */
export function describeWindow(w: Pick<PitrWindow, 'cluster' | 'restorableFrom' | 'restorableTo'>): string {
  if (!w.restorableFrom || !w.restorableTo) return `cluster ${w.cluster} has no restorable window (no complete backup that the captured oplog continues unbroken)`;
  return `cluster ${w.cluster} can be restored from ${formatTs(w.restorableFrom)} to ${formatTs(w.restorableTo)}`;
}

/** The cluster whose captured replica sets are exactly the map's (BAD_USAGE when none or several). */
async function clusterOf(repo: Repository, replicaSets: string[]): Promise<string> {
  const segs = new OplogSegments(repo);
  const want = [...replicaSets].sort().join(',');
  const all = await segs.clusters();
  const found: string[] = [];
  for (const c of all) if ((await segs.replicaSets(c)).join(',') === want) found.push(c);
  if (found.length === 1) return found[0]!;
  if (!found.length) {
    throw new CutpointError('BAD_USAGE', `no captured oplog in ${repo.location} has exactly the replica sets of the target map (${want}); captured clusters: ${all.join(', ') || 'none'}`);
  }
  throw new CutpointError('BAD_USAGE', `several captured clusters have the replica sets of the target map: ${found.join(', ')}`);
}

/** The segments of `rs` that hold entries after `base`, oldest first, and the first gap after `base` before `at`. */
function coverage(segments: OplogSegment[], base: Ts, at: Ts): { gap?: { from: Ts; to: Ts }; uncovered?: Ts } {
  const chain = summarizeChain(segments);
  const gap = chain.gaps.find((g) => compareTs(g.to, base) > 0 && compareTs(g.from, at) < 0);
  if (gap) return { gap };
  const first = segments[0];
  const start = first ? (first.prev ?? first.first) : null;
  if (!start || compareTs(start, base) > 0) return { uncovered: start ?? undefined };
  return {};
}

/**
 * Chooses the base of a restore of the cluster captured with the map's replica sets to `at`, and checks the captured
 * oplog covers the replay. `scan`: also read every replica set's entries from the base past `at` for the decisions of
 * prepared transactions (the agents do it again as they replay).
 */
export async function choosePitrBase(repo: Repository, replicaSets: string[], at: Ts, opts: { scan?: boolean } = {}): Promise<PitrBase> {
  const cluster = await clusterOf(repo, replicaSets);
  const window = await pitrWindow(repo, cluster);
  const where = describeWindow(window);
  if (!window.restorableTo || compareTs(at, window.restorableTo) > 0) {
    throw refuse(`${formatTs(at)} is after the captured oplog: ${where}`, { restorableFrom: window.restorableFrom, restorableTo: window.restorableTo });
  }
  const names = [...replicaSets].sort().join(',');
  const backups = (await listBackups(repo, { cluster })).backups.filter((b) => b.status === 'complete' && b.commonTimestamp && compareTs(b.commonTimestamp, at) <= 0);
  backups.sort((a, b) => compareTs(b.commonTimestamp!, a.commonTimestamp!));
  let chosen: (typeof backups)[number] | undefined;
  for (const b of backups) {
    const cm = await repo.readClusterManifest(b.id);
    if (cm && cm.replicaSets.map((r) => r.name).sort().join(',') === names) {
      chosen = b;
      break;
    }
  }
  if (!chosen) throw refuse(`no complete backup of cluster ${cluster} with replica sets ${names} at or before ${formatTs(at)}: ${where}`, { restorableFrom: window.restorableFrom, restorableTo: window.restorableTo });
  const base = chosen.commonTimestamp!;
  const segs = new OplogSegments(repo);
  const lists = new Map<string, OplogSegment[]>();
  for (const rs of replicaSets) lists.set(rs, await segs.list(cluster, rs));
  // Loaded once, after every listing: a seal writes its index file before its record.
  let index: ChunkIndex | undefined;
  for (const rs of replicaSets) {
    const segments = lists.get(rs)!;
    const c = coverage(segments, base, at);
    if (c.gap) {
      throw refuse(
        `replica set ${rs}: the captured oplog has a gap from ${formatTs(c.gap.from)} to ${formatTs(c.gap.to)} between the base backup ${chosen.id} (${formatTs(base)}) and ${formatTs(at)}: ` +
          `from that base the window ends at ${formatTs(c.gap.from)}; after the gap a target needs a backup taken after ${formatTs(c.gap.to)} (${where})`,
        { replicaSet: rs, gap: c.gap },
      );
    }
    if (c.uncovered !== undefined || !segments.length) {
      throw refuse(`replica set ${rs}: the captured oplog starts ${c.uncovered ? `at ${formatTs(c.uncovered)}` : 'nowhere'}, after the base backup ${chosen.id} (${formatTs(base)}): ${where}`, { replicaSet: rs });
    }
    if (opts.scan) {
      const scan = new DecisionScan(base, at);
      index ??= await repo.chunkIndex(true);
      for (const s of segments) {
        if (compareTs(s.last, base) <= 0) continue;
        for (const raw of await segs.entries(s, index)) scan.add(BSON.deserialize(raw) as Document);
        if (scan.done()) break;
      }
      assertDecided(rs, at, scan.undecided());
    }
  }
  return { cluster, backupId: chosen.id, base, at };
}
