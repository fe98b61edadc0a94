/**
 * {@link ChunkWriter}: how a copy stores chunks in a v2 repository. A chunk whose id the repository's index already
 * knows (from this backup or any earlier one), or that this writer already packed, is not stored again; a new one is
 * compressed into the current pack. {@link ChunkWriter.flush} makes every chunk put so far durable and indexed: the
 * pack first, then its index file (docs/repository-format.md), so an index never names a pack that is not there.
 * One writer per copy activity. {@link ChunkWriter.hash} and {@link ChunkWriter.store} may be called concurrently (a
 * copy keeps several chunks of a file in flight): the stores that fill a pack share one flush. {@link ChunkWriter.flush}
 * is called when no store is under way.
 *
 * Besides a full pack, time flushes too (`flushEveryMs`): a long file copied slowly has its chunks made durable every
 * few seconds, so a crash loses at most those seconds of stored chunks, and the retried copy, which reads the file
 * again, stores none of the earlier ones twice.
 */
import type { ChunkHasher, ChunkId } from './chunk-id.ts';
import type { ChunkIndex } from './chunk-index.ts';
import type { PackWriter } from './pack.ts';

export class ChunkWriter {
  /** Compressed bytes this writer added to the repository (packs, not counting their headers). */
  storedBytes = 0;
  /** Flushes that wrote a pack so far. */
  flushes = 0;
  #lastFlush = Date.now();

  constructor(
    private readonly index: ChunkIndex,
    private readonly pack: PackWriter,
    private readonly hasher: ChunkHasher,
    private readonly flushEveryMs = 2000,
  ) {}

  /** The id of a chunk (its plaintext's hash); safe to call concurrently. */
  hash(plain: Uint8Array): Promise<ChunkId> {
    return this.hasher(plain);
  }

  /** A flush started by {@link store}, which the stores that see the pack full meanwhile wait for too. */
  #storeFlush: Promise<void> | undefined;

  /**
   * Stores chunk `id` unless the repository or this writer holds it; returns the compressed bytes added (0 if known).
   * Resolves once the chunk is in a pack buffer (or, when it filled one, once that pack is written and indexed).
   */
  async store(id: ChunkId, plain: Buffer): Promise<number> {
    if (this.index.has(id) || this.pack.has(id)) return 0;
    const stored = await this.pack.add(id, plain);
    this.storedBytes += stored;
    if (this.#storeFlush) await this.#storeFlush;
    else if (this.pack.full || Date.now() - this.#lastFlush >= this.flushEveryMs) {
      this.#storeFlush = this.flush().finally(() => (this.#storeFlush = undefined));
      await this.#storeFlush;
    }
    return stored;
  }

  /** Chunks packed but not yet durable and indexed. */
  get unflushed(): number {
    return this.pack.count;
  }

  /** Writes the current pack and its index (nothing when empty); afterwards every stored chunk is in the index. */
  async flush(): Promise<void> {
    const info = await this.pack.flush();
    this.#lastFlush = Date.now();
    if (info) {
      this.index.add(info);
      this.flushes++;
    }
  }
}
