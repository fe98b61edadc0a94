/**
 * Whole-buffer reads of a byte range through {@link Storage.openRead}, and {@link openRanges}: many ranges of one file
 * through one handle where the backend keeps one open.
 *
 * @module
 */
import type { RangeReader, Storage } from '../storage.ts';

/** Bytes `[start, end)` of the file at `path` (fewer when the file is shorter). */
export async function readRange(storage: Storage, path: string, start: number, end: number): Promise<Buffer> {
  const stream = await storage.openRead(path, { start, end });
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of stream) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    parts.push(b);
    n += b.length;
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
}

/** A {@link RangeReader} of `path`: the backend's own ({@link Storage.openRanges}), else one {@link readRange} per read. */
export async function openRanges(storage: Storage, path: string): Promise<RangeReader> {
  if (storage.openRanges) return storage.openRanges(path);
  return { read: (start, end) => readRange(storage, path, start, end), close: async () => undefined };
}
