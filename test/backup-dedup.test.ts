/**
 * Deduplication across backups (format v2): two backups of an idle replica set into one repository. The second
 * stores no chunk the first stored: every chunk it added belongs to a file that changed between the two (the
 * journal, the checkpoint's metadata, the oplog's no-ops), an unchanged file is the same list of chunks, and its
 * `bytesStored` is a fraction of the first's. Each backup, rebuilt from its chunks and recovered at its common
 * timestamp, is the bank workload's history there. Pruning the first then removes the chunks only it used (the
 * repository shrinks), and the second still recovers to history.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupResult, startBackup } from '../api/backups.ts';
import type { ReplicaSetManifest } from '../common/manifest.ts';
import { toBsonTimestamp } from '../lib/bson-timestamp.ts';
import { prune } from '../repository/prune.ts';
import { MAX_UNUSED_SHARE } from '../repository/v2/sweep.ts';
import { fsRepository } from '../repository/repository.ts';
import { ChunkIndex } from '../repository/v2/chunk-index.ts';
import { Oracle } from '../sim/cluster/oracle.ts';
import { direct, sleep } from '../sim/testkit.ts';
import { createHash, randomBytes } from 'node:crypto';
import { materialize, recoverBankAt } from './helpers/recover.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { tempDir } from './helpers/temp.ts';

let stack: SimStack;

beforeAll(async () => {
  stack = await startSimStack({ replsetOnly: true, members: 1, checkpointMs: 1000, bank: true });
});
afterAll(async () => {
  await stack?.stop();
});

/** Bytes of every file of the repository. */
async function repositoryBytes(repo: string): Promise<number> {
  const storage = fsRepository(repo).storage;
  let n = 0;
  for (const p of await storage.list('')) n += (await storage.stat(p))?.size ?? 0;
  return n;
}

/** Every chunk id the repository's index holds. */
async function indexed(repo: string): Promise<Set<string>> {
  const index = await ChunkIndex.load(fsRepository(repo).storage);
  const ids = new Set<string>();
  for (const path of await fsRepository(repo).storage.list('index')) {
    const doc = JSON.parse((await fsRepository(repo).storage.readFile(path)).toString('utf8')) as { blobs: Array<{ id: string }> };
    for (const b of doc.blobs) ids.add(b.id);
  }
  expect(ids.size).toBe(index.size);
  return ids;
}

describe('deduplication', () => {
  it('a second backup of an idle replica set stores only the chunks of the files that changed; both recover to history', async () => {
    // 4 MiB of incompressible documents besides the bank: what a second backup must not store again.
    const client = direct(stack.cluster.shards[0]!.primary()!.address);
    try {
      await client.db('app').collection('blobs').insertMany(Array.from({ length: 64 }, (_, i) => ({ _id: i, data: randomBytes(64 * 1024) })) as never[]);
    } finally {
      await client.close();
    }
    await sleep(500);
    stack.workload!.stop();
    await sleep(1500); // a checkpoint after the last transfer: the data files are at rest
    const repo = tempDir('cutpoint-repo-dedup-');
    const uri = stack.cluster.describe().shards[0].uri as string;
    const backup = async () => {
      const summary = await backupResult(stack.h.client, (await startBackup(stack.h.client, { uri, repo, keepAliveIntervalMs: 1000 })).id);
      expect(summary.status, JSON.stringify(summary.error)).toBe('complete');
      const rm = (await fsRepository(repo).readReplicaSetManifest(summary.id, 'rs0'))!;
      return { summary, rm, chunks: await indexed(repo) };
    };
    const first = await backup();
    const second = await backup();

    const added = [...second.chunks].filter((c) => !first.chunks.has(c));
    const byPath = (rm: ReplicaSetManifest) => new Map(rm.files.map((f) => [f.path, f]));
    const before = byPath(first.rm);
    // Whether a file changed, from its bytes rebuilt out of each backup (the manifests keep no whole-file hash).
    const contentOf = async (backupId: string, rm: ReplicaSetManifest) => {
      const repository = fsRepository(repo);
      const hashes = new Map<string, string>();
      for (const f of rm.files) {
        const hash = createHash('sha256');
        for await (const part of await repository.openStoredFile(backupId, 'rs0', f)) hash.update(part);
        hashes.set(f.path, hash.digest('hex'));
      }
      return hashes;
    };
    const [was, now] = [await contentOf(first.summary.id, first.rm), await contentOf(second.summary.id, second.rm)];
    const changed = second.rm.files.filter((f) => was.get(f.path) !== now.get(f.path));
    const unchanged = second.rm.files.filter((f) => was.get(f.path) === now.get(f.path));
    // The bank's collection and its index did not change: the same chunks, none stored again.
    expect(unchanged.length).toBeGreaterThan(3);
    for (const f of unchanged) expect(f.chunks, f.path).toEqual(before.get(f.path)!.chunks);
    // Every chunk the second backup added is a chunk of a changed file.
    const ofChanged = new Set(changed.flatMap((f) => f.chunks!));
    expect(added.length).toBeGreaterThan(0);
    expect(added.filter((c) => !ofChanged.has(c))).toEqual([]);
    // Logical sizes alike; the first stored the documents (in their collection and in the oplog), the second only
    // what changed: the oplog's last chunks (the periodic no-ops), the journal, the checkpoint's metadata.
    expect(second.summary.bytes).toBeGreaterThan(first.summary.bytes * 0.5);
    expect(first.summary.bytesStored).toBeGreaterThan(8 * 1024 * 1024);
    expect(second.summary.bytesStored).toBeLessThan(first.summary.bytesStored / 4);
    const blobs = second.rm.files.filter((f) => f.size > 4 * 1024 * 1024 && unchanged.includes(f));
    expect(blobs.length).toBeGreaterThanOrEqual(1);

    // Each backup, rebuilt from its chunks and recovered at its common timestamp, is the workload's history there.
    const oracle = new Oracle(stack.workload!.history);
    for (const b of [first, second]) {
      const accounts = await recoverBankAt(await materialize(repo, b.summary.id, b.rm), b.summary.commonTimestamp!);
      expect(oracle.verify([{ name: 'rs0', accounts }], toBsonTimestamp(b.summary.commonTimestamp!)).mismatches).toEqual([]);
    }

    // Pruning the first backup removes the chunks only it used; the repository shrinks; the second still restores.
    const sizeBefore = await repositoryBytes(repo);
    const pruned = await prune(fsRepository(repo), { policy: { keepLast: 1 } });
    expect(pruned.removed).toEqual([first.summary.id]);
    const onlyFirst = [...first.chunks].filter((c) => !new Set(second.rm.files.flatMap((f) => f.chunks!)).has(c));
    expect(onlyFirst.length).toBeGreaterThan(0);
    const left = await indexed(repo);
    // Gone, but for what the prune may leave in packs the second backup mostly uses: at most MAX_UNUSED_SHARE of the
    // bytes kept (restic's rule), rather than rewriting every pack.
    const index = await ChunkIndex.load(fsRepository(repo).storage);
    const blobBytes = (ids: string[]) => ids.reduce((s, c) => s + index.get(c)!.blob.length, 0);
    expect(onlyFirst.filter((c) => !left.has(c)).length).toBeGreaterThan(0);
    expect(blobBytes(onlyFirst.filter((c) => left.has(c)))).toBeLessThanOrEqual(MAX_UNUSED_SHARE * blobBytes([...left]));
    expect(second.rm.files.flatMap((f) => f.chunks!).filter((c) => !left.has(c))).toEqual([]);
    expect(await repositoryBytes(repo)).toBeLessThan(sizeBefore - pruned.sweep!.bytesFreed / 2);
    expect(pruned.sweep!.bytesFreed).toBeGreaterThan(0);
    const accounts = await recoverBankAt(await materialize(repo, second.summary.id, second.rm), second.summary.commonTimestamp!);
    expect(oracle.verify([{ name: 'rs0', accounts }], toBsonTimestamp(second.summary.commonTimestamp!)).mismatches).toEqual([]);
  });
});
