/**
 * The sweep of a v2 prune: after retention removes an older backup, its chunks that no kept backup uses are gone (a
 * pack of them only removed whole, a pack mostly of them rewritten with the rest), the newer backup's chunks all
 * read back, the repository shrinks; a dry run says so and removes nothing; a prune that fails midway (a removal
 * failing, as a crash would stop it) leaves a repository that a second prune finishes, consistent (`repo check
 * --read-data` clean).
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ReplicaSetManifest } from '../../common/manifest.ts';
import { FaultyStorage } from '../faulty-storage.ts';
import { MemoryStorage } from '../memory-storage.ts';
import { checkRepository } from '../check.ts';
import { prune } from '../prune.ts';
import { Repository } from '../repository.ts';
import type { Storage } from '../storage.ts';
import { ChunkIndex } from './chunk-index.ts';
import { ChunkReader } from './chunk-reader.ts';
import { indexPath } from './index-file.ts';
import { DATA_DIR, packPath } from './pack.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Stores `chunks` as one pack (one writer, one flush); returns their ids and the pack's id. */
async function pack(repo: Repository, chunks: Buffer[]): Promise<{ ids: string[]; pack: string }> {
  const w = await repo.chunkWriter();
  const ids: string[] = [];
  for (const c of chunks) {
    const id = await w.hash(c);
    await w.store(id, c);
    ids.push(id);
  }
  await w.flush();
  const index = await ChunkIndex.load(repo.storage);
  return { ids, pack: index.get(ids[0]!)!.pack };
}

/** A complete backup `id` of one replica set whose one file is `chunks`, finished at minute `minute`. */
async function backup(repo: Repository, id: string, minute: number, chunks: Array<{ id: string; size: number }>): Promise<void> {
  const at = new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString();
  await repo.writeClusterManifest({ format: 'cutpoint/v2', id, cluster: 'rs0', status: 'running', startedAt: at, finishedAt: null, commonTimestamp: null, balancerWasEnabled: null, bytes: 0, replicaSets: [{ name: 'rs0', configServer: false, node: 'h:1' }] });
  const size = chunks.reduce((s, c) => s + c.size, 0);
  const rm: ReplicaSetManifest = {
    format: 'cutpoint/v2', name: 'rs0', node: 'h:1', backupId: 'u', dbpath: '/d', oplogStart: null, oplogEnd: null, checkpointTimestamp: null, extendedTo: { t: minute, i: 1 },
    files: [{ path: 'collection-1-1.wt', size, sha256: sha(Buffer.from(id)), kind: 'data', chunks: chunks.map((c) => c.id) }],
  };
  await repo.writeReplicaSetManifest(id, rm);
  await repo.writeClusterManifest({ format: 'cutpoint/v2', id, cluster: 'rs0', status: 'complete', startedAt: at, finishedAt: at, commonTimestamp: { t: minute, i: 1 }, balancerWasEnabled: null, bytes: size, replicaSets: [{ name: 'rs0', configServer: false, node: 'h:1' }] });
}

/**
 * A repository with an older backup A (chunks a1, a2 in pack P1; a3 and the shared s in pack P2) and a newer one B
 * (s, and b1 in pack P3). Pruning A: P1 is all garbage, P2 mostly (a3 is 16 times s).
 */
async function setup(storage: Storage) {
  const repo = new Repository(storage);
  await repo.init();
  const [a1, a2, a3, s, b1] = [64, 64, 64, 4, 64].map((k) => randomBytes(k * 1024));
  const p1 = await pack(repo, [a1!, a2!]);
  const p2 = await pack(repo, [s!, a3!]);
  const p3 = await pack(repo, [b1!]);
  const [ia1, ia2] = p1.ids;
  const [is, ia3] = p2.ids;
  const [ib1] = p3.ids;
  await backup(repo, 'A', 1, [{ id: ia1!, size: a1!.length }, { id: ia2!, size: a2!.length }, { id: is!, size: s!.length }, { id: ia3!, size: a3!.length }]);
  await backup(repo, 'B', 2, [{ id: is!, size: s!.length }, { id: ib1!, size: b1!.length }]);
  return { repo, only: { a: [ia1!, ia2!, ia3!] }, b: [is!, ib1!], packs: { p1: p1.pack, p2: p2.pack, p3: p3.pack }, plain: new Map([[is!, s!], [ib1!, b1!]]) };
}

const storedBytes = async (s: Storage) => {
  let n = 0;
  for (const p of await s.list('')) n += (await s.stat(p))?.size ?? 0;
  return n;
};

/** Every index file names a pack that exists, every pack has an index file, and B's chunks read back. */
async function expectConsistent(storage: Storage, b: string[], plain: Map<string, Buffer>): Promise<ChunkIndex> {
  const index = await ChunkIndex.load(storage);
  const packs = (await storage.list(DATA_DIR)).map((p) => p.slice(p.lastIndexOf('/') + 1));
  for (const id of packs) expect(await storage.exists(indexPath(id)), `index of ${id}`).toBe(true);
  expect(index.packCount).toBe(packs.length);
  const reader = new ChunkReader(storage, index);
  for (const c of b) expect((await reader.read(c)).equals(plain.get(c)!)).toBe(true);
  return index;
}

describe('the sweep of a v2 prune', () => {
  it('removes the chunks only the pruned backup used: a garbage pack whole, a mostly garbage pack rewritten; the kept backup reads back', async () => {
    const storage = new MemoryStorage();
    const { repo, only, b, packs, plain } = await setup(storage);
    const before = await storedBytes(storage);

    const dry = await prune(repo, { policy: { keepLast: 1 }, dryRun: true });
    expect(dry.sweep).toMatchObject({ packsRemoved: 1, packsRepacked: 1, chunksRemoved: 3 });
    expect(dry.sweep!.bytesFreed).toBeGreaterThan(190 * 1024);
    expect(await storedBytes(storage)).toBe(before);

    const r = await prune(repo, { policy: { keepLast: 1 } });
    expect(r.removed).toEqual(['A']);
    expect(r.sweep).toMatchObject({ packsRemoved: 1, packsRepacked: 1, chunksRemoved: 3 });
    const index = await expectConsistent(storage, b, plain);
    for (const c of only.a) expect(index.has(c), c).toBe(false);
    for (const p of [packs.p1, packs.p2]) expect(await storage.exists(packPath(p))).toBe(false);
    expect(await storage.exists(packPath(packs.p3))).toBe(true);
    const after = await storedBytes(storage);
    expect(before - after).toBeGreaterThan(190 * 1024);
    // The packs' share of what went (A's manifests went too).
    expect(r.sweep!.bytesFreed).toBeLessThanOrEqual(before - after);
    expect(r.sweep!.bytesFreed).toBeGreaterThan(190 * 1024);

    // Nothing is left to sweep.
    expect((await prune(repo, { policy: { keepLast: 1 } })).sweep).toEqual({ packsRemoved: 0, packsRepacked: 0, bytesFreed: 0, chunksRemoved: 0 });
  });

  for (const [what, target] of [
    ['a garbage pack, before its index file', 'p1index'],
    ['a garbage pack, between its index file and the pack itself', 'p1'],
    ['a rewritten pack, after its chunks were copied', 'p2index'],
  ] as const) {
    it(`a prune stopped while removing ${what} is finished by the next one`, async () => {
      const base = new MemoryStorage();
      const { repo, only, b, packs, plain } = await setup(base);
      const path = target === 'p1' ? packPath(packs.p1) : target === 'p1index' ? indexPath(packs.p1) : indexPath(packs.p2);
      const faulty = new FaultyStorage(base, { rules: [{ ops: ['remove'], path, errno: 'EIO', times: 1 }] });
      await expect(prune(new Repository(faulty), { policy: { keepLast: 1 } })).rejects.toMatchObject({ code: 'REPO_IO' });
      // Consistent already: no index names a missing pack, B reads back.
      const index = await ChunkIndex.load(base);
      for (const path of await base.list('index')) expect(await base.exists(packPath(path.slice(6, -5))), path).toBe(true);
      const reader = new ChunkReader(base, index);
      for (const c of b) expect((await reader.read(c)).equals(plain.get(c)!)).toBe(true);

      await prune(repo, { policy: { keepLast: 1 } });
      const finished = await expectConsistent(base, b, plain);
      // `cutpoint repo check --read-data` finds it clean: every pack read whole, every manifest's chunk indexed.
      const check = await checkRepository(repo, { readData: true });
      expect(check.problems).toEqual([]);
      expect(check.garbage).toEqual([]);
      for (const c of only.a) expect(finished.has(c), c).toBe(false);
      // B's shared chunk is stored once.
      expect((await base.list(DATA_DIR)).length).toBe(2);
    });
  }
});
