/**
 * Whole-buffer reads of a byte range through {@link Storage.openRead}.
 *
 * @module
 */
import type { Storage } from '../storage.ts';

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
