/**
 * The chunk index of a v2 repository (docs/repository-format.md section 8): which pack holds each chunk, loaded
 * from every `index/<pack id>.json`. A backup consults it to skip chunks the repository already holds; a restore to
 * find them.
 *
 * @module
 */
import type { Storage } from '../storage.ts';
import type { ChunkId } from './chunk-id.ts';
import { INDEX_DIR, packIdOfIndexPath, parseIndexFile } from './index-file.ts';
import type { PackedBlob, PackInfo } from './pack-format.ts';

/** Index files read at once by {@link ChunkIndex.load}. */
const LOAD_CONCURRENCY = 16;

/** Where a chunk is: its pack's id and its blob in that pack. */
export interface ChunkLocation {
  pack: string;
  blob: PackedBlob;
}

/**
 * Chunk id → location. A chunk may be in several packs (two backups that ran at once each stored it): any of them
 * serves, and the index keeps the first it learns of.
 */
export class ChunkIndex {
  readonly #chunks = new Map<ChunkId, ChunkLocation>();
  readonly #packs = new Set<string>();

  /**
   * Reads every index file of the repository (files under `index/` not named `<64 hex>.json` are not index files and
   * are left alone). Each is validated; an unreadable or invalid one fails the load with a `CorruptFileError`
   * (`REPO_CORRUPT`) naming it and the first offending field. Packs are not read: an index naming a pack that is gone
   * shows when a chunk of it is read (`REPO_FILE_MISSING`).
   */
  static async load(storage: Storage): Promise<ChunkIndex> {
    const index = new ChunkIndex();
    const paths = (await storage.list(INDEX_DIR)).filter((p) => packIdOfIndexPath(p) !== undefined);
    const infos: PackInfo[] = new Array(paths.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < paths.length) {
        const i = next++;
        const path = paths[i]!;
        infos[i] = parseIndexFile(await storage.readFile(path), path, `${storage.location}/${path}`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(LOAD_CONCURRENCY, paths.length) }, worker));
    // Added in path order, so which of several locations a chunk gets does not depend on read timing.
    for (const info of infos) index.add(info);
    return index;
  }

  /** Whether some pack holds the chunk. */
  has(id: ChunkId): boolean {
    return this.#chunks.has(id);
  }

  /** Where the chunk is, or `undefined`. */
  get(id: ChunkId): ChunkLocation | undefined {
    return this.#chunks.get(id);
  }

  /** Learns the chunks of a pack (e.g. one {@link PackWriter.flush} just wrote); chunks already known keep their location. */
  add(info: PackInfo): void {
    this.#packs.add(info.id);
    for (const blob of info.blobs) if (!this.#chunks.has(blob.id)) this.#chunks.set(blob.id, { pack: info.id, blob });
  }

  /** Every chunk known with its (first) location. */
  entries(): IterableIterator<[ChunkId, ChunkLocation]> {
    return this.#chunks.entries();
  }

  /** Chunks known. */
  get size(): number {
    return this.#chunks.size;
  }

  /** Packs known (those with an index file, and those added). */
  get packCount(): number {
    return this.#packs.size;
  }
}
