/**
 * Pack files of format cutpoint/v2 (docs/repository-format.md section 7): chunks are stored zstd-compressed, as
 * blobs, about {@link PACK_TARGET_BYTES} of them to a file at `data/<first two hex of id>/<id>`, where the id is the
 * SHA-256 of the whole pack. A pack ends with a header listing its blobs and a fixed trailer, so it can be read and
 * checked by itself (pack-format.ts has the byte layout); `index/<id>.json` repeats the header for fast lookups.
 *
 * @module
 */
import { createHash, type Hash } from 'node:crypto';
import { CutpointError } from '../../common/errors.ts';
import { CorruptChunkError, CorruptPackError } from '../errors.ts';
import { type Storage, StorageError } from '../storage.ts';
import { assertChunkId, type ChunkHasher, type ChunkId, sha256Hasher } from './chunk-id.ts';
import { encodeIndexFile, indexPath } from './index-file.ts';
import {
  decodeHeader,
  decodeTrailer,
  encodeHeader,
  encodeTrailer,
  MAX_BLOB_BYTES,
  PACK_TARGET_BYTES,
  type PackedBlob,
  type PackInfo,
  TRAILER_BYTES,
} from './pack-format.ts';
import { readRange } from './read-range.ts';
import { compress, decompress, DEFAULT_COMPRESSION_LEVEL, storedFrame } from './zstd.ts';

export { PACK_TARGET_BYTES };
export type { PackedBlob, PackInfo } from './pack-format.ts';

/** The directory of pack files. */
export const DATA_DIR = 'data';

/** `data/<first two hex digits of id>/<id>`. */
export function packPath(id: string): string {
  assertChunkId(id, 'pack id');
  return `${DATA_DIR}/${id.slice(0, 2)}/${id}`;
}

/** Options of {@link PackWriter}. */
export interface PackWriterOptions {
  /** Compressed bytes a pack is filled to before {@link PackWriter.full} turns true (default {@link PACK_TARGET_BYTES}). */
  targetBytes?: number;
  /** zstd level (default {@link DEFAULT_COMPRESSION_LEVEL}); `'none'`: each blob a zstd frame of raw blocks ({@link storedFrame}). */
  compressionLevel?: number | 'none';
}

/**
 * Fills one pack at a time: {@link add} compresses chunks into it, {@link flush} writes it (then its index file) and
 * starts the next. The caller decides when to flush (when {@link full}, and at the end of a backup).
 *
 * Concurrency: `add` may be called again before an earlier call settles (compressions then run side by side on the
 * libuv pool); blobs enter the pack in the order their compressions finish. A `flush` first waits for the `add`s
 * already under way; an `add` called while a flush runs waits for it to end, so each pack is written whole.
 *
 * A chunk is stored once the flush that wrote its pack has resolved (its {@link PackInfo} lists it); before that it
 * is only buffered. A failed flush keeps the pack buffered: calling `flush` again retries it.
 *
 * The writer trusts `id`: it must be the chunk's id under the repository's hasher (the reader checks it).
 */
/**
 * Pack writes under way in this process, by repository and path. A pack's path is the hash of its bytes, so two
 * writers of one pack (replica sets whose identical small files are copied at the same moment) write the same bytes
 * to the same pending file: the second waits for the first, then writes it again (atomically, the same bytes), where
 * together the second commit would find the pending file renamed away. Writers in other processes are not covered.
 */
const packWrites = new Map<string, Promise<unknown>>();

export class PackWriter {
  readonly #storage: Storage;
  readonly #targetBytes: number;
  readonly #level: number | 'none';
  #blobs: PackedBlob[] = [];
  #parts: Buffer[] = [];
  #bytes = 0;
  /** Chunks in the pack or being compressed for it. */
  #ids = new Set<ChunkId>();
  /** Chunks of the packs this writer already wrote. */
  readonly #written = new Set<ChunkId>();
  /** SHA-256 of the blobs so far (copied, then finished with the header and trailer, at flush). */
  #hash: Hash = createHash('sha256');
  /** `add`s under way (compression and append). */
  readonly #inflight = new Set<Promise<unknown>>();
  #flushing: Promise<unknown> | undefined;

  constructor(storage: Storage, options: PackWriterOptions = {}) {
    const targetBytes = options.targetBytes ?? PACK_TARGET_BYTES;
    const level = options.compressionLevel ?? DEFAULT_COMPRESSION_LEVEL;
    if (!Number.isSafeInteger(targetBytes) || targetBytes < 1) throw new CutpointError('BAD_USAGE', `invalid pack target size ${targetBytes}: expected a positive integer`);
    if (level !== 'none' && (!Number.isInteger(level) || level < -7 || level > 22)) throw new CutpointError('BAD_USAGE', `invalid zstd level ${level}: expected an integer from -7 to 22`);
    this.#storage = storage;
    this.#targetBytes = targetBytes;
    this.#level = level;
  }

  /** Compressed bytes in the pack so far (blobs only). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Blobs in the pack so far. */
  get count(): number {
    return this.#blobs.length;
  }

  /** True when {@link bytes} reached the target size: time to {@link flush}. */
  get full(): boolean {
    return this.#bytes >= this.#targetBytes;
  }

  /** Whether the chunk was added to this writer: it is in the current pack, being compressed for it, or in a pack the writer wrote. */
  has(id: ChunkId): boolean {
    return this.#ids.has(id) || this.#written.has(id);
  }

  /**
   * Compresses and appends one chunk (compression off the main thread); returns the compressed size. Chunks already
   * added to this writer (see {@link has}) are skipped (returns 0). `plain` must not change until the promise settles.
   */
  async add(id: ChunkId, plain: Buffer): Promise<number> {
    assertChunkId(id);
    if (plain.length > MAX_BLOB_BYTES) throw new CutpointError('INTERNAL', `chunk ${id} is ${plain.length} bytes; a pack holds chunks of at most ${MAX_BLOB_BYTES} bytes`);
    while (this.#flushing) await this.#flushing.catch(() => undefined);
    if (this.has(id)) return 0;
    this.#ids.add(id);
    const append = (async () => {
      let blob: Buffer;
      try {
        blob = this.#level === 'none' ? storedFrame(plain) : await compress(plain, this.#level);
      } catch (err) {
        this.#ids.delete(id);
        throw err;
      }
      if (blob.length > MAX_BLOB_BYTES) {
        this.#ids.delete(id);
        throw new CutpointError('INTERNAL', `chunk ${id} compresses to ${blob.length} bytes; a pack holds blobs of at most ${MAX_BLOB_BYTES} bytes`);
      }
      this.#blobs.push({ id, offset: this.#bytes, length: blob.length, rawLength: plain.length });
      this.#parts.push(blob);
      this.#hash.update(blob);
      this.#bytes += blob.length;
      return blob.length;
    })();
    this.#inflight.add(append);
    try {
      return await append;
    } finally {
      this.#inflight.delete(append);
    }
  }

  /**
   * Writes the pack (durable and atomic: {@link Storage.createWriter}, then commit), then its index file; returns what
   * it wrote (`undefined` when the pack is empty) and starts a new empty pack. Memory: one pack is held (at most
   * `targetBytes` plus the blob that crossed it), plus the chunks of `add`s under way.
   */
  async flush(): Promise<PackInfo | undefined> {
    while (this.#flushing) await this.#flushing.catch(() => undefined);
    const writing = this.#write();
    this.#flushing = writing;
    try {
      return await writing;
    } finally {
      if (this.#flushing === writing) this.#flushing = undefined;
    }
  }

  async #write(): Promise<PackInfo | undefined> {
    await Promise.allSettled([...this.#inflight]);
    if (this.#blobs.length === 0) return undefined;
    const header = encodeHeader(this.#blobs);
    const trailer = encodeTrailer(header);
    const id = this.#hash.copy().update(header).update(trailer).digest('hex');
    const path = packPath(id);
    const info: PackInfo = { id, size: this.#bytes + header.length + trailer.length, blobs: this.#blobs.map((b) => ({ ...b })) };
    const key = `${this.#storage.location}\0${path}`;
    for (let other = packWrites.get(key); other; other = packWrites.get(key)) await other.catch(() => undefined);
    const writing = (async () => {
      const writer = await this.#storage.createWriter(path);
      try {
        for (const part of this.#parts) await writer.write(part);
        await writer.write(header);
        await writer.write(trailer);
        await writer.commit();
      } catch (err) {
        await writer.abort().catch(() => undefined);
        throw err;
      }
    })();
    packWrites.set(key, writing);
    try {
      await writing;
    } finally {
      if (packWrites.get(key) === writing) packWrites.delete(key);
    }
    // Only now that the pack is durable may an index point at it.
    await this.#storage.writeFile(indexPath(id), encodeIndexFile(info));
    for (const chunk of this.#ids) this.#written.add(chunk);
    this.#blobs = [];
    this.#parts = [];
    this.#bytes = 0;
    this.#ids = new Set();
    this.#hash = createHash('sha256');
    return info;
  }
}

/** How much of a pack's end {@link readPackHeader} reads first: the trailer and, usually, the whole header. */
const TAIL_READ = 64 * 1024;

function corruptPack(storage: Storage, path: string, field: string, why: string): CorruptPackError {
  const where = `${storage.location}/${path}`;
  return new CorruptPackError(where, field, `pack ${where} is corrupt: ${why}`);
}

/** The error for a pack that is not there. */
function missingPack(storage: Storage, path: string): StorageError {
  return new StorageError('REPO_FILE_MISSING', `pack '${path}' is not in repository ${storage.location}`, 'stat', path, storage.location);
}

/**
 * Reads a pack's trailer and header from its end and checks them (magic, version, lengths, the header's SHA-256,
 * blobs tiling the rest of the file). A truncated or tampered pack is a {@link CorruptPackError} naming the pack's
 * path and what is wrong; a missing one is `REPO_FILE_MISSING`. The blobs themselves are not read.
 */
export async function readPackHeader(storage: Storage, id: string): Promise<PackInfo> {
  const path = packPath(id);
  const stat = await storage.stat(path);
  if (!stat) throw missingPack(storage, path);
  const size = stat.size;
  const tailLength = Math.min(size, TAIL_READ);
  const tail = await readRange(storage, path, size - tailLength, size);
  if (tail.length !== tailLength) throw corruptPack(storage, path, '(the file)', `it shrank from ${size} bytes while being read`);
  const trailer = decodeTrailer(tail.subarray(Math.max(0, tailLength - TRAILER_BYTES)), size);
  if (!trailer.ok) throw corruptPack(storage, path, trailer.field, trailer.why);
  const headerEnd = size - TRAILER_BYTES;
  const headerStart = headerEnd - trailer.headerLength;
  const header =
    headerStart >= size - tailLength
      ? tail.subarray(headerStart - (size - tailLength), headerEnd - (size - tailLength))
      : await readRange(storage, path, headerStart, headerEnd);
  if (header.length !== trailer.headerLength) throw corruptPack(storage, path, '(the file)', 'it shrank while being read');
  const decoded = decodeHeader(header, trailer.headerSha256, size);
  if (!decoded.ok) throw corruptPack(storage, path, decoded.field, decoded.why);
  return { id, size, blobs: decoded.blobs };
}

/**
 * Checks a whole pack: its SHA-256 is its id, its trailer and header are sound, and every blob decompresses to a
 * plaintext of the recorded length whose hash is the recorded chunk id. Reads the whole pack into memory (one pack,
 * {@link PACK_TARGET_BYTES} and a little more). Errors: {@link CorruptPackError} for the file,
 * {@link CorruptChunkError} for a blob, `REPO_FILE_MISSING` for a missing pack.
 */
export async function checkPack(storage: Storage, id: string, hasher: ChunkHasher = sha256Hasher): Promise<PackInfo> {
  const path = packPath(id);
  if (!(await storage.stat(path))) throw missingPack(storage, path);
  const bytes = await storage.readFile(path);
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (actual !== id) throw corruptPack(storage, path, '(the file)', `its SHA-256 is ${actual}, not the id its name says (damaged or tampered with)`);
  const trailer = decodeTrailer(bytes.subarray(Math.max(0, bytes.length - TRAILER_BYTES)), bytes.length);
  if (!trailer.ok) throw corruptPack(storage, path, trailer.field, trailer.why);
  const headerEnd = bytes.length - TRAILER_BYTES;
  const decoded = decodeHeader(bytes.subarray(headerEnd - trailer.headerLength, headerEnd), trailer.headerSha256, bytes.length);
  if (!decoded.ok) throw corruptPack(storage, path, decoded.field, decoded.why);
  for (const blob of decoded.blobs) await unpackBlob(storage.location, path, blob, bytes.subarray(blob.offset, blob.offset + blob.length), hasher);
  return { id, size: bytes.length, blobs: decoded.blobs };
}

/**
 * The plaintext of `blob` (its stored bytes are `stored`, read from pack `path`): decompressed, its length and hash
 * checked against the blob's entry. Any failure is a {@link CorruptChunkError} naming the chunk and the pack.
 */
export async function unpackBlob(location: string, path: string, blob: PackedBlob, stored: Buffer, hasher: ChunkHasher = sha256Hasher): Promise<Buffer> {
  const fail = (why: string, cause?: unknown): never => {
    throw new CorruptChunkError(blob.id, path, location, why, cause === undefined ? undefined : { cause });
  };
  if (stored.length !== blob.length) fail(`expected ${blob.length} bytes at offset ${blob.offset}, the pack holds ${stored.length} there (truncated?)`);
  const plain = await decompress(stored).catch((err: unknown) => fail(`its blob does not decompress (${(err as Error).message})`, err));
  if (plain.length !== blob.rawLength) fail(`it decompresses to ${plain.length} bytes, the index records ${blob.rawLength}`);
  const actual = await hasher(plain);
  if (actual !== blob.id) fail(`its plaintext hashes to ${actual}`);
  return plain;
}
