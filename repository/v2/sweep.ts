/**
 * The sweep of a v2 prune (docs/repository-format.md section 12): after retention removed backups, the chunks no
 * remaining backup references are removed from the repository.
 *
 * - **Mark**: every chunk named by every replica-set manifest of every backup still in the repository (whatever its
 *   status), by the saved batch results (work files) of backups still running or left by a crash, and by every
 *   oplog segment of continuous capture still in the repository (repository/pitr-retention.ts removes the old ones).
 * - **Sweep**, pack by pack (every index file):
 *   - a pack none of whose chunks is marked: its index file is removed, then the pack;
 *   - packs holding both: as restic's prune does, the ones with the largest share of unmarked bytes are rewritten
 *     until the unmarked bytes left are at most {@link MAX_UNUSED_SHARE} of the bytes kept: a rewritten pack's
 *     marked chunks that no other kept pack holds are read (each checked) and written to a new pack, which is made
 *     durable with its index file; then the old index file, then the old pack, are removed. The rest are kept as
 *     they are (a little garbage is cheaper than rewriting everything).
 *   Then every pack no index file names (a backup that crashed between a pack and its index) is removed.
 *
 * The order keeps the repository consistent at every step, so a sweep killed midway leaves nothing a later one cannot
 * finish: an index file never names a missing pack (the index goes first), a chunk a kept backup needs is in a
 * durable pack before its old location goes, and a chunk copied twice by a repack that was interrupted is found in
 * the new pack by the next sweep (which then drops the old one without copying again).
 *
 * The caller holds the repository's exclusive lock: no backup writes meanwhile.
 */
import type { Repository } from '../repository.ts';
import { OplogSegments } from '../oplog-segments.ts';
import { ChunkReader } from './chunk-reader.ts';
import { ChunkIndex } from './chunk-index.ts';
import { INDEX_DIR, indexPath, packIdOfIndexPath, parseIndexFile } from './index-file.ts';
import { DATA_DIR, packPath, PackWriter, type PackInfo } from './pack.ts';

/** Packs are rewritten until unreferenced bytes are at most this share of the bytes kept (restic's default 5 %). */
export const MAX_UNUSED_SHARE = 0.05;

/** What a sweep did (or, dry, would do). */
export interface SweepResult {
  /** Packs removed whole (every chunk unreferenced), and packs without an index removed. */
  packsRemoved: number;
  /** Packs rewritten with their referenced chunks only. */
  packsRepacked: number;
  /** Stored bytes the removed and rewritten packs held, less what the new packs hold. */
  bytesFreed: number;
  /** Chunks no backup references any more. */
  chunksRemoved: number;
}

/**
 * Every chunk the repository's backups still reference (manifests, and batch results of unfinished copies), leaving
 * out the backups in `without` (a dry run's planned removals).
 */
export async function referencedChunks(repo: Repository, without: ReadonlySet<string> = new Set(), withoutSegments: ReadonlySet<string> = new Set()): Promise<Set<string>> {
  const marked = new Set<string>();
  const segments = new OplogSegments(repo);
  for (const cluster of await segments.clusters()) {
    for (const rs of await segments.replicaSets(cluster)) {
      for (const path of await segments.paths(cluster, rs)) if (!withoutSegments.has(path)) for (const c of (await segments.read(path)).chunks) marked.add(c);
    }
  }
  const { backups, problems } = await repo.listBackups();
  const ids = [...backups.map((b) => b.id), ...problems.map((p) => p.id)].filter((id) => !without.has(id));
  for (const id of ids) {
    for (const rs of await repo.storage.listChildren(`backups/${id}`)) {
      if (rs === 'manifest.json') continue;
      const m = await repo.readReplicaSetManifest(id, rs).catch(() => undefined);
      for (const f of m?.files ?? []) for (const c of f.chunks ?? []) marked.add(c);
      for (const n of await repo.listBatchResults(id, rs).catch(() => [] as number[])) {
        const r = await repo.readBatchResult(id, rs, n).catch(() => undefined);
        for (const f of r?.files ?? []) for (const c of f.chunks ?? []) marked.add(c);
      }
    }
  }
  return marked;
}

/** Removes (unless `dryRun`) the chunks no backup of `repo` references; see the module comment. */
export async function sweepUnreferenced(repo: Repository, options: { dryRun?: boolean; without?: ReadonlySet<string>; withoutSegments?: ReadonlySet<string> } = {}): Promise<SweepResult> {
  const storage = repo.storage;
  const result: SweepResult = { packsRemoved: 0, packsRepacked: 0, bytesFreed: 0, chunksRemoved: 0 };
  const marked = await referencedChunks(repo, options.without, options.withoutSegments);
  const packs: PackInfo[] = [];
  for (const path of await storage.list(INDEX_DIR)) {
    if (packIdOfIndexPath(path) !== undefined) packs.push(parseIndexFile(await storage.readFile(path), path, `${storage.location}/${path}`));
  }
  const garbageOf = (p: PackInfo) => p.blobs.filter((b) => !marked.has(b.id));
  const bytesOf = (blobs: PackInfo['blobs']) => blobs.reduce((s, b) => s + b.length, 0);
  const whole = packs.filter((p) => garbageOf(p).length === p.blobs.length);
  const mixed = packs
    .filter((p) => garbageOf(p).length > 0 && garbageOf(p).length < p.blobs.length)
    .map((p) => ({ p, garbage: bytesOf(garbageOf(p)), share: bytesOf(garbageOf(p)) / bytesOf(p.blobs) }))
    .sort((a, b) => b.share - a.share || (a.p.id < b.p.id ? -1 : 1));
  let unused = mixed.reduce((s, m) => s + m.garbage, 0);
  let kept = packs.filter((p) => !whole.includes(p)).reduce((s, p) => s + bytesOf(p.blobs), 0);
  const repack: PackInfo[] = [];
  for (const m of mixed) {
    if (unused <= MAX_UNUSED_SHARE * kept) break;
    repack.push(m.p);
    unused -= m.garbage;
    kept -= m.garbage;
  }
  // Chunks that stay where they are: in a pack neither removed nor rewritten.
  const leaving = new Set([...whole, ...repack].map((p) => p.id));
  const staying = new Set(packs.filter((p) => !leaving.has(p.id)).flatMap((p) => p.blobs.map((b) => b.id)));
  const removedChunks = new Set<string>();
  for (const p of [...whole, ...repack]) for (const b of garbageOf(p)) removedChunks.add(b.id);
  result.chunksRemoved = [...removedChunks].filter((c) => !staying.has(c)).length;

  for (const p of whole) {
    result.packsRemoved++;
    result.bytesFreed += p.size;
    if (options.dryRun) continue;
    await storage.remove(indexPath(p.id));
    await storage.remove(packPath(p.id));
  }
  if (repack.length) {
    const reader = new ChunkReader(storage, await ChunkIndex.load(storage), await repo.chunkHasher());
    const writer = new PackWriter(storage);
    for (const p of repack) {
      result.packsRepacked++;
      result.bytesFreed += p.size;
      if (options.dryRun) {
        result.bytesFreed -= p.blobs.filter((b) => marked.has(b.id)).reduce((s, b) => s + b.length, 0);
        continue;
      }
      for (const b of p.blobs) {
        if (!marked.has(b.id) || staying.has(b.id)) continue;
        // Read (checked against its id) and stored once in the new pack.
        await writer.add(b.id, await reader.read(b.id));
        staying.add(b.id);
      }
      const written = await writer.flush();
      if (written) {
        result.bytesFreed -= written.size;
        written.blobs.forEach((b) => staying.add(b.id));
        packs.push(written);
      }
      await storage.remove(indexPath(p.id));
      await storage.remove(packPath(p.id));
    }
  }
  // Packs no index file names: a copy that crashed between writing a pack and its index.
  const indexed = new Set(packs.map((p) => p.id));
  for (const path of await storage.list(DATA_DIR)) {
    const id = path.slice(path.lastIndexOf('/') + 1);
    if (indexed.has(id) || !/^[0-9a-f]{64}$/.test(id)) continue;
    result.packsRemoved++;
    result.bytesFreed += (await storage.stat(path))?.size ?? 0;
    if (!options.dryRun) await storage.remove(path);
  }
  return result;
}
