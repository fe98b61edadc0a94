import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkRepository } from './check.ts';
import { MemoryStorage } from './memory-storage.ts';
import { Repository } from './repository.ts';
import { repositoryStats } from './stats.ts';
import { backup, packOf } from './testing.ts';
import { sha256Hasher } from './v2/chunk-id.ts';
import { encodeIndexFile, indexPath } from './v2/index-file.ts';
import { packPath } from './v2/pack.ts';
import type { PackInfo } from './v2/pack-format.ts';
import { pseudoRandomBytes } from './v2/testing.ts';

const X = pseudoRandomBytes(1000, 1);
const Y = pseudoRandomBytes(1000, 2);
const Z = Buffer.alloc(1000, 7);
const W = pseudoRandomBytes(500, 3);

/**
 * b1: a.wt = X Y (pack P1); b2: b.wt = X Z (X deduplicated: in P1; Z in pack P2). So P1 is needed by b1 and b2,
 * P2 by b2 only.
 */
async function twoBackups(): Promise<{ storage: MemoryStorage; repo: Repository; p1: PackInfo; p2: PackInfo }> {
  const storage = new MemoryStorage('check');
  const repo = new Repository(storage);
  await repo.init();
  await backup(repo, 'b1', { 'a.wt': [X, Y] });
  await backup(repo, 'b2', { 'b.wt': [X, Z] });
  return { storage, repo, p1: await packOf(storage, X), p2: await packOf(storage, Z) };
}

describe('checkRepository', () => {
  it('finds a clean repository clean, with and without reading data', async () => {
    const { repo } = await twoBackups();
    for (const readData of [false, true]) {
      const r = await checkRepository(new Repository(repo.storage), { readData });
      expect(r).toMatchObject({ repo: 'memory:check', format: 'cutpoint/v2', readData, problems: [], garbage: [] });
      expect(r.checked).toEqual({ packs: 2, indexes: 2, chunks: 3, backups: 2, files: 2 });
    }
  });

  it('finds a flipped byte inside a blob only when reading data, naming the pack, its backups and files', async () => {
    const { storage, repo, p1 } = await twoBackups();
    const path = packPath(p1.id);
    const bytes = await storage.readFile(path);
    bytes[p1.blobs[0]!.offset + 500]! ^= 0xff;
    await storage.writeFile(path, bytes);

    // The header is intact: a structure check cannot see it.
    expect((await checkRepository(repo)).problems).toEqual([]);

    const progress: Array<[number, number]> = [];
    const r = await checkRepository(repo, { readData: true, onProgress: (d, t) => progress.push([d, t]) });
    expect(r.problems).toEqual([
      {
        kind: 'pack',
        object: path,
        message: expect.stringMatching(/SHA-256/),
        backups: ['b1', 'b2'],
        files: [
          { backup: 'b1', replicaSet: 'rs0', path: 'a.wt' },
          { backup: 'b2', replicaSet: 'rs0', path: 'b.wt' },
        ],
      },
    ]);
    expect(progress.at(-1)).toEqual([2, 2]);
  });

  it('names a missing pack with the backups that need it', async () => {
    const { storage, repo, p2 } = await twoBackups();
    await storage.remove(packPath(p2.id));
    const r = await checkRepository(repo);
    expect(r.problems).toEqual([
      { kind: 'pack-missing', object: packPath(p2.id), message: expect.stringMatching(/missing/), backups: ['b2'], files: [{ backup: 'b2', replicaSet: 'rs0', path: 'b.wt' }] },
    ]);
  });

  it('names an index file whose pack was never written', async () => {
    const { storage, repo } = await twoBackups();
    const ghost = 'ab'.repeat(32);
    const wid = await sha256Hasher(W);
    await storage.writeFile(indexPath(ghost), encodeIndexFile({ id: ghost, size: 10 + 40 + 48, blobs: [{ id: wid, offset: 0, length: 10, rawLength: 500 }] }));
    const r = await checkRepository(repo);
    expect(r.problems).toMatchObject([{ kind: 'pack-missing', object: packPath(ghost), backups: [] }]);
    expect(r.checked.indexes).toBe(3);
  });

  it('names a manifest chunk in no index file with its file and backup, and an unindexed pack as garbage', async () => {
    const { storage, repo, p2 } = await twoBackups();
    await storage.remove(indexPath(p2.id));
    const r = await checkRepository(repo);
    const zid = await sha256Hasher(Z);
    expect(r.problems).toEqual([
      { kind: 'chunk-missing', object: zid, message: expect.stringContaining('rs0/b.wt of backup b2'), backups: ['b2'], files: [{ backup: 'b2', replicaSet: 'rs0', path: 'b.wt' }] },
    ]);
    expect(r.garbage).toMatchObject([{ kind: 'unreferenced-pack', object: packPath(p2.id), size: p2.size }]);
  });

  it('checks the manifests of failed backups too, and reports a bad index file', async () => {
    const { storage, repo, p1 } = await twoBackups();
    await backup(repo, 'b3', { 'c.wt': [W] }, 'failed');
    await storage.remove(indexPath((await packOf(storage, W)).id));
    await storage.writeFile(indexPath(p1.id), '{"format": "cutpoint/v2"');
    const r = await checkRepository(repo);
    const xid = await sha256Hasher(X);
    const yid = await sha256Hasher(Y);
    const wid = await sha256Hasher(W);
    expect(r.problems.map((p) => [p.kind, p.object, p.backups])).toEqual(
      expect.arrayContaining([
        ['chunk-missing', xid, ['b1', 'b2']],
        ['chunk-missing', yid, ['b1']],
        ['chunk-missing', wid, ['b3']],
        ['index', indexPath(p1.id), []],
      ]),
    );
    expect(r.problems).toHaveLength(4);
    expect(r.problems.find((p) => p.kind === 'index')!.message).toMatch(/not valid JSON/);
  });

  it('finds a pack whose header disagrees with its index file', async () => {
    const { storage, repo, p2 } = await twoBackups();
    const lying = { ...p2, blobs: [{ ...p2.blobs[0]!, rawLength: 999 }] };
    await storage.writeFile(indexPath(p2.id), encodeIndexFile(lying));
    const r = await checkRepository(repo);
    expect(r.problems).toMatchObject([{ kind: 'pack', object: packPath(p2.id), message: expect.stringMatching(/header/), backups: ['b2'] }]);
  });
});

describe('checkRepository on a v1 repository', () => {
  it('checks that every stored file exists with its size, and with readData its SHA-256', async () => {
    const storage = new MemoryStorage('v1');
    await storage.writeFile('cutpoint.json', JSON.stringify({ format: 'cutpoint/v1', createdAt: '2026-01-01T00:00:00.000Z' }));
    const repo = new Repository(storage);
    const files = { 'a.wt': X, 'b.wt': Y, 'c.wt': Z };
    await repo.writeReplicaSetManifest('b1', {
      format: 'cutpoint/v1',
      name: 'rs0',
      node: 'localhost:27017',
      backupId: '7d3c4a1e-0000-4000-8000-000000000001',
      dbpath: '/data/db',
      oplogStart: { t: 1, i: 1 },
      oplogEnd: { t: 2, i: 3 },
      checkpointTimestamp: { t: 2, i: 1 },
      extendedTo: { t: 2, i: 3 },
      files: Object.entries(files).map(([path, data]) => ({ path, size: data.length, sha256: createHash('sha256').update(data).digest('hex'), kind: 'data' as const })),
    });
    for (const [path, data] of Object.entries(files)) await storage.writeFile(repo.dataFilePath('b1', 'rs0', path), data);
    await repo.writeClusterManifest({
      format: 'cutpoint/v1',
      id: 'b1',
      cluster: 'rs0',
      status: 'complete',
      startedAt: '2025-01-02T03:04:05.000Z',
      finishedAt: '2025-01-02T03:05:05.000Z',
      commonTimestamp: { t: 2, i: 3 },
      balancerWasEnabled: null,
      bytes: 3000,
      replicaSets: [{ name: 'rs0', configServer: false, node: 'localhost:27017' }],
    });
    expect(await checkRepository(repo, { readData: true })).toMatchObject({ format: 'cutpoint/v1', problems: [], checked: { backups: 1, files: 3 } });

    await storage.remove(repo.dataFilePath('b1', 'rs0', 'a.wt'));
    await storage.writeFile(repo.dataFilePath('b1', 'rs0', 'b.wt'), Y.subarray(1));
    const flipped = Buffer.from(Z);
    flipped[3] = 0;
    await storage.writeFile(repo.dataFilePath('b1', 'rs0', 'c.wt'), flipped);
    const kinds = (r: Awaited<ReturnType<typeof checkRepository>>) => r.problems.map((p) => [p.object, p.backups, p.kind, p.message]);
    expect(kinds(await checkRepository(repo))).toEqual([
      ['backups/b1/rs0/files/a.wt', ['b1'], 'file', expect.stringMatching(/is missing/)],
      ['backups/b1/rs0/files/b.wt', ['b1'], 'file', expect.stringMatching(/has 999 bytes, its manifest says 1000/)],
    ]);
    expect(kinds(await checkRepository(repo, { readData: true }))).toEqual([
      ['backups/b1/rs0/files/a.wt', ['b1'], 'file', expect.stringMatching(/is missing/)],
      ['backups/b1/rs0/files/b.wt', ['b1'], 'file', expect.stringMatching(/has 999 bytes/)],
      ['backups/b1/rs0/files/c.wt', ['b1'], 'file', expect.stringMatching(/hashes to/)],
    ]);
  });
});

describe('repositoryStats', () => {
  it('counts complete backups, chunks, bytes and the compression and dedup ratios', async () => {
    const { storage, repo, p1, p2 } = await twoBackups();
    await backup(repo, 'b3', { 'c.wt': [W] }, 'failed');
    const p3 = await packOf(storage, W);
    const s = await repositoryStats(repo);
    const stored = [...p1.blobs, ...p2.blobs, ...p3.blobs].reduce((n, b) => n + b.length, 0);
    expect(s).toEqual({
      format: 'cutpoint/v2',
      encrypted: false,
      backups: 2,
      chunks: 4,
      storedBytes: p1.size + p2.size + p3.size,
      logicalBytes: 4000,
      compressionRatio: 3500 / stored,
      // 4000 bytes of files made of 3000 distinct bytes (X twice).
      dedupRatio: 4000 / 3000,
    });
    // Z (1000 equal bytes) compresses: more than its own share.
    expect(s.compressionRatio).toBeGreaterThan(1.2);
  });
});
