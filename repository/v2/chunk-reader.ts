/**
 * Reads chunks of a v2 repository back (docs/repository-format.md section 11): one ranged read of the pack
 * the index names, decompression, and checks of length and hash.
 *
 * @module
 */
import { MissingChunkError } from '../errors.ts';
import { isStorageError, type RangeReader, type Storage } from '../storage.ts';
import { type ChunkHasher, type ChunkId, sha256Hasher } from './chunk-id.ts';
import type { ChunkIndex } from './chunk-index.ts';
import { packPath, unpackBlob } from './pack.ts';
import { openRanges, readRange } from './read-range.ts';

/** Packs a reader that keeps them open holds open at once: the pack being read and the one the read ahead starts. */
const OPEN_PACKS = 2;

interface OpenPack {
  reader: Promise<RangeReader>;
  /** Reads in flight on it. */
  users: number;
  /** No longer held: closed when its last read ends. */
  released: boolean;
}

export interface ChunkReaderOptions {
  /**
   * Keep the last packs read open across chunks (one open per pack, not per chunk: a file's chunks sit together in
   * its packs). The caller must then {@link ChunkReader.close} the reader.
   */
  keepPacksOpen?: boolean;
}

/** Reads and checks chunks through an index. */
export class ChunkReader {
  readonly #open = new Map<string, OpenPack>();

  constructor(
    private readonly storage: Storage,
    private readonly index: ChunkIndex,
    private readonly hasher: ChunkHasher = sha256Hasher,
    private readonly options: ChunkReaderOptions = {},
  ) {}

  /**
   * Reads one chunk: a ranged read of its pack ({@link Storage.openRead} with start/end, or a pack handle kept open),
   * decompression, and checks that the plaintext has the recorded length and hashes to `id`. Errors: a
   * {@link CorruptChunkError} (`CHECKSUM_MISMATCH`) naming the chunk and the pack; a {@link MissingChunkError}
   * (`REPO_FILE_MISSING`) when no index names the chunk or its pack is gone; other storage errors as they come.
   */
  async read(id: ChunkId): Promise<Buffer> {
    const location = this.index.get(id);
    if (!location) throw new MissingChunkError(id, undefined, this.storage.location);
    const path = packPath(location.pack);
    const { blob } = location;
    let stored: Buffer;
    try {
      stored = this.options.keepPacksOpen
        ? await this.#readOpen(path, blob.offset, blob.offset + blob.length)
        : await readRange(this.storage, path, blob.offset, blob.offset + blob.length);
    } catch (err) {
      if (isStorageError(err) && err.code === 'REPO_FILE_MISSING') throw new MissingChunkError(id, path, this.storage.location, { cause: err });
      throw err;
    }
    return unpackBlob(this.storage.location, path, blob, stored, this.hasher);
  }

  /** Closes the packs held open (after their reads in flight end). The reader may be used again afterwards. */
  async close(): Promise<void> {
    const held = [...this.#open.keys()];
    await Promise.all(held.map((path) => this.#release(path)));
  }

  async #readOpen(path: string, start: number, end: number): Promise<Buffer> {
    let pack = this.#open.get(path);
    if (!pack) {
      pack = { reader: openRanges(this.storage, path), users: 0, released: false };
      const opened = pack;
      // A failed open is forgotten, so the next read of the pack tries again.
      opened.reader.catch(() => {
        if (this.#open.get(path) === opened) this.#open.delete(path);
      });
      this.#open.set(path, opened);
      for (const old of this.#open.keys()) {
        if (this.#open.size <= OPEN_PACKS) break;
        if (old !== path) void this.#release(old);
      }
    } else {
      // Most recently used last: the oldest is the one let go.
      this.#open.delete(path);
      this.#open.set(path, pack);
    }
    pack.users++;
    try {
      return await (await pack.reader).read(start, end);
    } finally {
      pack.users--;
      if (pack.released && pack.users === 0) await closeQuietly(pack);
    }
  }

  async #release(path: string): Promise<void> {
    const pack = this.#open.get(path);
    if (!pack) return;
    this.#open.delete(path);
    pack.released = true;
    if (pack.users === 0) await closeQuietly(pack);
  }
}

async function closeQuietly(pack: OpenPack): Promise<void> {
  const reader = await pack.reader.catch(() => undefined);
  await reader?.close().catch(() => undefined);
}
