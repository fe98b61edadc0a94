/**
 * {@link copyFileRanges}: the incremental copy of one data file. Only the chunks the reuse plan (reuse-plan.ts) marks
 * as changed are read from the dbpath, hashed and stored; the others are the parent backup's chunk ids. The result is
 * the file's full chunk list, so the new manifest describes the whole file by itself. There is no whole-file SHA-256
 * (computing it would read the unchanged bytes too): every chunk is checked against its id when read back.
 */
import { type FileHandle, open } from 'node:fs/promises';
import { CutpointError } from '../../../common/errors.ts';
import type { ChunkWriter } from '../../../repository/v2/chunk-writer.ts';
import type { RateLimiter } from './rate-limiter.ts';
import { readSpans, reusePlan, type ReuseInput } from './reuse-plan.ts';

export interface CopyRangesOptions extends Omit<ReuseInput, 'chunkBytes'> {
  /** Absolute path of the source file in the dbpath. */
  src: string;
  chunkBytes: number;
  writer: ChunkWriter;
  limiter?: RateLimiter;
  signal?: AbortSignal;
  /** Called after each span is stored, with the bytes read so far. */
  onProgress?: (bytesRead: number) => void;
  /** Largest read (a span of changed chunks is read in pieces of at most this many bytes, on the grid). */
  readBytes?: number;
}

export interface CopyRangesResult {
  size: number;
  chunks: string[];
  bytesRead: number;
  storedBytes: number;
  /** Chunks taken from the parent. */
  reused: number;
}

function sourceError(src: string, why: string, cause?: unknown): CutpointError {
  return new CutpointError('COPY_SOURCE_INVALID', `${src}: ${why}`, { src }, cause === undefined ? undefined : { cause });
}

export async function copyFileRanges(options: CopyRangesOptions): Promise<CopyRangesResult> {
  const { src, size, writer, limiter, signal, onProgress, chunkBytes } = options;
  const plan = reusePlan(options);
  // Reads on the grid: a multiple of the chunk size, at least one chunk.
  const readBytes = Math.max(chunkBytes, Math.floor((options.readBytes ?? 4 * chunkBytes) / chunkBytes) * chunkBytes);
  const chunks = plan.map((c) => ('reuse' in c ? c.reuse : ''));
  let fh: FileHandle;
  try {
    fh = await open(src, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw sourceError(src, 'listed by the backup cursor but missing from the dbpath', err);
    throw err;
  }
  let bytesRead = 0;
  let storedBytes = 0;
  try {
    const st = await fh.stat();
    if (st.size < size) throw sourceError(src, `the file is ${st.size} bytes, shorter than the ${size} bytes listed by the backup cursor`);
    for (const span of readSpans(plan, readBytes)) {
      signal?.throwIfAborted();
      await limiter?.take(span.length, signal);
      const buf = Buffer.allocUnsafe(span.length);
      const { bytesRead: n } = await fh.read(buf, 0, span.length, span.offset);
      if (n !== span.length) throw sourceError(src, `short read at ${span.offset}: ${n} of ${span.length} bytes (the file shrank during the copy)`);
      bytesRead += n;
      const pieces = Array.from({ length: span.count }, (_, j) => buf.subarray(j * chunkBytes, Math.min(span.length, (j + 1) * chunkBytes)));
      const ids = await Promise.all(pieces.map((p) => writer.hash(p)));
      for (const [j, p] of pieces.entries()) {
        chunks[span.first + j] = ids[j]!;
        // Each span has its own buffer (never reused), so the chunk may point into it.
        storedBytes += await writer.store(ids[j]!, p);
      }
      onProgress?.(bytesRead);
    }
  } finally {
    await fh.close().catch(() => undefined);
  }
  return { size, chunks, bytesRead, storedBytes, reused: plan.filter((c) => 'reuse' in c).length };
}
