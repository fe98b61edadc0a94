/**
 * `cutpoint repo stats`: what a repository holds and how well it compresses and deduplicates, from its index files
 * (repository/v2/chunk-index.ts), its pack sizes and its manifests. Packs are not read.
 *
 * @module
 */
import { REPOSITORY_FORMAT } from '../common/manifest.ts';
import type { Repository } from './repository.ts';
import { ChunkIndex } from './v2/chunk-index.ts';
import { DATA_DIR } from './v2/pack.ts';

/** The numbers of {@link repositoryStats}. A ratio is null when its denominator is 0 (nothing stored). */
export interface RepoStats {
  format: string;
  /** Whether the repository is encrypted (docs/repository-format.md section 16). */
  encrypted: boolean;
  /** Complete backups. */
  backups: number;
  /** Distinct chunks the index files name. */
  chunks: number;
  /** Bytes of every file under `data/` (packs, garbage included); v1: the sizes of every stored file of every backup. */
  storedBytes: number;
  /** The sizes of the files of every complete backup, added up. */
  logicalBytes: number;
  /** Plaintext bytes of the distinct indexed chunks / their stored (compressed) bytes. */
  compressionRatio: number | null;
  /** logicalBytes / plaintext bytes of the distinct chunks complete backups reference. */
  dedupRatio: number | null;
}

const ratio = (a: number, b: number): number | null => (b > 0 ? a / b : null);

/** The statistics of the repository (loads its index; a bad index file fails with `REPO_CORRUPT`: run `repo check`). */
export async function repositoryStats(repo: Repository): Promise<RepoStats> {
  const format = (await repo.open()).format;
  const encrypted = await repo.encrypted();
  const { backups } = await repo.listBackups();
  const v2 = format === REPOSITORY_FORMAT;
  const index = v2 ? await ChunkIndex.load(repo.storage) : undefined;

  let complete = 0;
  let logicalBytes = 0;
  let v1Stored = 0;
  const referenced = new Set<string>();
  for (const { id, manifest } of backups) {
    const isComplete = manifest.status === 'complete';
    if (isComplete) complete++;
    else if (v2) continue;
    for (const rs of manifest.replicaSets) {
      const rm = await repo.readReplicaSetManifest(id, rs.name);
      for (const f of rm?.files ?? []) {
        if (isComplete) logicalBytes += f.size;
        if (!v2) v1Stored += f.size;
        for (const c of f.chunks ?? []) referenced.add(c);
      }
    }
  }

  if (!index) {
    // v1: every backup stores its files whole, uncompressed.
    return { format, encrypted, backups: complete, chunks: 0, storedBytes: v1Stored, logicalBytes, compressionRatio: null, dedupRatio: ratio(logicalBytes, logicalBytes) };
  }
  let raw = 0;
  let stored = 0;
  for (const [, { blob }] of index.entries()) {
    raw += blob.rawLength;
    stored += blob.length;
  }
  let referencedRaw = 0;
  for (const c of referenced) referencedRaw += index.get(c)?.blob.rawLength ?? 0;
  let storedBytes = 0;
  // Bytes on storage (an encrypted pack is a little larger than its plaintext: docs/repository-format.md section 16).
  for (const path of await repo.storage.list(DATA_DIR)) storedBytes += (await repo.raw.stat(path))?.size ?? 0;
  return {
    format,
    encrypted,
    backups: complete,
    chunks: index.size,
    storedBytes,
    logicalBytes,
    compressionRatio: ratio(raw, stored),
    dedupRatio: ratio(logicalBytes, referencedRaw),
  };
}
