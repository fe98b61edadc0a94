/**
 * {@link copyFileChunks}: copies one file of a mongod's dbpath into a v2 repository as chunks, exactly as the backup
 * cursor listed it (a data file up to its listed `fileSize`, the journal and storage.bson whole), throttled and
 * abortable, in bounded memory. The file is cut by the chunker of its kind (repository/v2/chunker.ts: fixed-size
 * chunks at absolute offsets for data files, content-defined for the journal); each chunk is hashed (its id,
 * repository/v2/chunk-id.ts) and stored unless the repository already holds it (repository/v2/chunk-writer.ts). No SHA-256 of the whole
 * file is computed: the chunk ids, each a hash of its chunk checked on every read, and the size are the file's
 * integrity (docs/repository-format.md section 9), so every byte is hashed once.
 *
 * A copy interrupted by a crash is not resumed inside the file: the retried batch copies the file again from its
 * start, and every chunk the killed attempt had made durable is found in the index and not stored twice.
 */
import { type FileHandle, open } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { CutpointError } from '../../../common/errors.ts';
import type { FileKind } from '../../../common/manifest.ts';
import type { ChunkWriter } from '../../../repository/v2/chunk-writer.ts';
import { chunkerFor } from '../../../repository/v2/chunker.ts';
import type { RateLimiter } from './rate-limiter.ts';

/** Chunks of one file hashed, compressed and stored at once (ChunkWriter.store takes them concurrently). */
export const CHUNKS_IN_FLIGHT = 4;

/** Default read size: large enough for sequential throughput, small enough for smooth throttling. */
export const DEFAULT_READ_BYTES = 1024 * 1024;

export interface CopyChunksOptions {
  /** Absolute path of the source file in the dbpath. */
  src: string;
  /** Bytes to copy (the listed `fileSize` of a data file), or `'whole'`: the file's size when the copy starts. */
  length: number | 'whole';
  kind: FileKind;
  writer: ChunkWriter;
  /** Throttle shared with the other copies of the replica set; none = unlimited. */
  limiter?: RateLimiter;
  /** Aborts the copy promptly (between reads, and while throttled), rejecting with `signal.reason`. */
  signal?: AbortSignal;
  /** Called after each read is chunked and stored, with the file's bytes done so far. */
  onProgress?: (bytesDone: number) => void;
  /** Read size (default {@link DEFAULT_READ_BYTES}). */
  readBytes?: number;
}

export interface CopyChunksResult {
  /** The file's bytes (the manifest's `size`). */
  size: number;
  /** Chunk ids in file order. */
  chunks: string[];
  /** Bytes read from the source. */
  bytesRead: number;
  /** Compressed bytes of the chunks this file added to the repository (0 when every chunk was known). */
  storedBytes: number;
}

const errnoOf = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | null)?.code;

function sourceError(src: string, why: string, cause?: unknown): CutpointError {
  return new CutpointError('COPY_SOURCE_INVALID', `${src}: ${why}`, { src }, cause === undefined ? undefined : { cause });
}

/** Copies `src` into the repository as chunks; see the module comment. */
export async function copyFileChunks(options: CopyChunksOptions): Promise<CopyChunksResult> {
  const { src, length, kind, writer, limiter, signal, onProgress } = options;
  const readBytes = options.readBytes ?? DEFAULT_READ_BYTES;
  if (!isAbsolute(src)) throw new CutpointError('INTERNAL', `copyFileChunks needs an absolute source path, got '${src}'`);
  if (length !== 'whole' && !(Number.isSafeInteger(length) && length >= 0)) {
    throw new CutpointError('INTERNAL', `copyFileChunks of ${src}: length must be a non-negative integer or 'whole', got ${length}`);
  }
  signal?.throwIfAborted();
  let fh: FileHandle;
  try {
    fh = await open(src, 'r');
  } catch (err) {
    const errno = errnoOf(err);
    if (errno === 'ENOENT') throw sourceError(src, 'listed by the backup cursor but missing from the dbpath', err);
    if (errno === 'EACCES' || errno === 'EPERM') throw sourceError(src, 'permission denied: the agent must run as a user that can read the dbpath', err);
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw sourceError(src, 'not a regular file');
    const target = length === 'whole' ? st.size : length;
    if (st.size < target) throw sourceError(src, `the file is ${st.size} bytes, shorter than the ${target} bytes listed by the backup cursor`);

    const chunker = chunkerFor(kind);
    const chunks: string[] = [];
    let storedBytes = 0;
    // Chunks are hashed and stored CHUNKS_IN_FLIGHT at a time: their compressions run side by side on the thread
    // pool, so one stream (a large file copied alone at the end of a backup) can keep every core busy. Each id takes
    // its chunk's place in file order, whatever order the chunks finish in.
    const inflight = new Set<Promise<void>>();
    const put = (chunk: Buffer) => {
      const at = chunks.push('') - 1;
      const p = (async () => {
        const id = await writer.hash(chunk);
        chunks[at] = id;
        const stored = await writer.store(id, chunk);
        storedBytes += stored; // not `+= await`: that would add to the total read before the wait
      })();
      inflight.add(p);
      p.then(
        () => inflight.delete(p),
        () => undefined, // kept in the set: the next wait throws it
      );
    };
    /** Waits until at most `n` chunks are in flight; throws the first failure. */
    const settleTo = async (n: number) => {
      while (inflight.size > n) await Promise.race(inflight);
    };
    const putAll = async (group: Buffer[]) => {
      for (const chunk of group) {
        await settleTo(CHUNKS_IN_FLIGHT - 1);
        put(chunk);
      }
    };

    // Two buffers: the next read runs while this one is chunked (the chunker copies what it keeps).
    const size = Math.min(readBytes, Math.max(1, target));
    const bufs = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
    let flip = 0;
    let readAt = 0;
    const readNext = async (): Promise<Buffer | undefined> => {
      if (readAt >= target) return undefined;
      const buf = bufs[flip]!;
      flip ^= 1;
      const want = Math.min(buf.length, target - readAt);
      await limiter?.take(want, signal);
      const { bytesRead } = await fh.read(buf, 0, want, readAt);
      if (bytesRead === 0) {
        const now = (await fh.stat()).size;
        throw sourceError(src, `the file is ${now} bytes, shorter than the ${target} bytes listed by the backup cursor (it shrank during the copy)`);
      }
      readAt += bytesRead;
      return buf.subarray(0, bytesRead);
    };
    const readAhead = () => {
      const p = readNext();
      p.catch(() => undefined);
      return p;
    };
    let next: Promise<Buffer | undefined> | undefined = readAhead();
    let done = 0;
    try {
      for (;;) {
        signal?.throwIfAborted();
        const data = await next;
        next = undefined;
        if (!data) break;
        // The chunker's chunks are its own copies: the read buffer is reused by the read ahead.
        const group = chunker.push(data);
        next = readAhead();
        await putAll(group);
        done += data.length;
        onProgress?.(done);
      }
      await putAll(chunker.finish());
      await settleTo(0);
    } finally {
      await next?.catch(() => undefined);
      // Whatever ends the copy, no chunk is still being stored through the writer when this returns.
      await Promise.allSettled(inflight);
    }
    return { size: done, chunks, bytesRead: done, storedBytes };
  } finally {
    await fh.close().catch(() => undefined);
  }
}
