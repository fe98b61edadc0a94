/**
 * Reads chunks of a v2 repository back (docs/repository-format.md section 11): one ranged read of the pack
 * the index names, decompression, and checks of length and hash.
 *
 * @module
 */
import { MissingChunkError } from '../errors.ts';
import { isStorageError, type Storage } from '../storage.ts';
import { type ChunkHasher, type ChunkId, sha256Hasher } from './chunk-id.ts';
import type { ChunkIndex } from './chunk-index.ts';
import { packPath, unpackBlob } from './pack.ts';
import { readRange } from './read-range.ts';

/** Reads and checks chunks through an index. */
export class ChunkReader {
  constructor(
    private readonly storage: Storage,
    private readonly index: ChunkIndex,
    private readonly hasher: ChunkHasher = sha256Hasher,
  ) {}

  /**
   * Reads one chunk: a ranged read of its pack ({@link Storage.openRead} with start/end), decompression, and checks
   * that the plaintext has the recorded length and hashes to `id`. Errors: a {@link CorruptChunkError}
   * (`CHECKSUM_MISMATCH`) naming the chunk and the pack; a {@link MissingChunkError} (`REPO_FILE_MISSING`) when no
   * index names the chunk or its pack is gone; other storage errors as they come.
   */
  async read(id: ChunkId): Promise<Buffer> {
    const location = this.index.get(id);
    if (!location) throw new MissingChunkError(id, undefined, this.storage.location);
    const path = packPath(location.pack);
    const { blob } = location;
    let stored: Buffer;
    try {
      stored = await readRange(this.storage, path, blob.offset, blob.offset + blob.length);
    } catch (err) {
      if (isStorageError(err) && err.code === 'REPO_FILE_MISSING') throw new MissingChunkError(id, path, this.storage.location, { cause: err });
      throw err;
    }
    return unpackBlob(this.storage.location, path, blob, stored, this.hasher);
  }
}
