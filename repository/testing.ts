/**
 * Test helpers (not used by the product): small v2 backups written through the real code paths, the repository's
 * chunk writer and manifest writes.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import type { BackupStatus } from '../common/manifest.ts';
import type { Repository } from './repository.ts';
import type { Storage } from './storage.ts';
import { type ChunkHasher, sha256Hasher } from './v2/chunk-id.ts';
import { INDEX_DIR, parseIndexFile } from './v2/index-file.ts';
import type { PackInfo } from './v2/pack-format.ts';

/**
 * Writes backup `id` (replica set rs0) through the real code paths: chunks stored by the repository's chunk writer
 * (one pack per backup, for the chunks the repository lacks), then the manifests, the cluster one last.
 */
export async function backup(repo: Repository, id: string, files: Record<string, Buffer[]>, status: BackupStatus = 'complete'): Promise<void> {
  const writer = await repo.chunkWriter();
  const hasher = await repo.chunkHasher();
  const entries = [];
  for (const [path, chunks] of Object.entries(files)) {
    const ids = [];
    for (const c of chunks) {
      const cid = await hasher(c);
      await writer.store(cid, c);
      ids.push(cid);
    }
    const whole = Buffer.concat(chunks);
    entries.push({ path, size: whole.length, sha256: createHash('sha256').update(whole).digest('hex'), kind: 'data' as const, chunks: ids });
  }
  await writer.flush();
  await repo.writeReplicaSetManifest(id, {
    format: 'cutpoint/v2',
    name: 'rs0',
    node: 'localhost:27017',
    backupId: '7d3c4a1e-0000-4000-8000-000000000001',
    dbpath: '/data/db',
    oplogStart: { t: 1, i: 1 },
    oplogEnd: { t: 2, i: 3 },
    checkpointTimestamp: { t: 2, i: 1 },
    extendedTo: { t: 2, i: 3 },
    files: entries,
  });
  await repo.writeClusterManifest({
    format: 'cutpoint/v2',
    id,
    cluster: 'rs0',
    status,
    startedAt: '2025-01-02T03:04:05.000Z',
    finishedAt: '2025-01-02T03:05:05.000Z',
    commonTimestamp: { t: 2, i: 3 },
    balancerWasEnabled: null,
    bytes: entries.reduce((n, e) => n + e.size, 0),
    replicaSets: [{ name: 'rs0', configServer: false, node: 'localhost:27017' }],
  });
}

/** The pack holding chunk `data` (read from the index files). */
export async function packOf(storage: Storage, data: Buffer, hasher: ChunkHasher = sha256Hasher): Promise<PackInfo> {
  const id = await hasher(data);
  for (const path of await storage.list(INDEX_DIR)) {
    const info = parseIndexFile(await storage.readFile(path), path, path);
    if (info.blobs.some((b) => b.id === id)) return info;
  }
  throw new Error('no pack holds the chunk');
}

