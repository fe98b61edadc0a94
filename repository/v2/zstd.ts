/**
 * zstd for format cutpoint/v2, from `@mongodb-js/zstd` 1.2 (installed under the alias `cutpoint-zstd`: the MongoDB
 * driver declares an optional peer dependency on `@mongodb-js/zstd` ^7, which downloads its binary at install time,
 * so 1.2 cannot take that name). It is a napi-rs addon whose prebuilt binary comes as an optional npm dependency.
 *
 * Both functions are napi async tasks: the work runs on the libuv thread pool and the call returns at once (the main
 * thread still spends about 0.5 ms per MiB taking over the result buffer). The addon keeps a reference to the input
 * (no copy) until the task ends, so the caller must not change the buffer before the promise settles (chunker.ts
 * hands out chunks of their own).
 *
 * The package's JavaScript wrapper drops the level argument, so this module calls its bindings directly.
 *
 * @module
 */
import { createRequire } from 'node:module';
import { CutpointError } from '../../common/errors.ts';

interface ZstdBindings {
  compress(data: Buffer, level?: number): Promise<Buffer>;
  decompress(data: Buffer): Promise<Buffer>;
}

const bindings = createRequire(import.meta.url)('cutpoint-zstd/bindings') as ZstdBindings;

/** The zstd level packs are written with unless told otherwise; docs/repository-format.md section 6 says why. */
export const DEFAULT_COMPRESSION_LEVEL = 1;

/** Compresses `plain` into one zstd frame at `level` (1-22; negative levels are zstd's fast modes), off the main thread. */
export async function compress(plain: Buffer, level: number = DEFAULT_COMPRESSION_LEVEL): Promise<Buffer> {
  if (!Number.isInteger(level) || level < -7 || level > 22) throw new CutpointError('BAD_USAGE', `invalid zstd level ${level}: expected an integer from -7 to 22`);
  try {
    return await bindings.compress(plain, level);
  } catch (err) {
    // napi errors carry no JavaScript stack: make one here.
    throw new Error(`zstd compress: ${(err as Error).message}`, { cause: err });
  }
}

/** Decompresses one or more concatenated zstd frames, off the main thread. */
export async function decompress(blob: Buffer): Promise<Buffer> {
  try {
    return await bindings.decompress(blob);
  } catch (err) {
    throw new Error(`zstd decompress: ${(err as Error).message}`, { cause: err });
  }
}

/** Largest block of a zstd frame (RFC 8878 section 3.1.1.2.4: Block_Maximum_Size). */
const MAX_BLOCK_BYTES = 128 * 1024;

/**
 * `plain` as one zstd frame of raw (uncompressed) blocks, for repositories whose `compression` is `none`
 * (docs/repository-format.md section 6): every reader decompresses it as it does any frame, and writing it costs one
 * copy. The frame (RFC 8878 section 3.1.1) is a single segment with its 4-byte content size and no checksum, then
 * blocks of at most 128 KiB, each a 3-byte header (last-block bit, type 0 = Raw_Block, size) and the bytes.
 */
export function storedFrame(plain: Uint8Array): Buffer {
  if (plain.length > 0xffffffff) throw new CutpointError('INTERNAL', `a stored zstd frame holds at most 4 GiB, got ${plain.length} bytes`);
  const blocks = Math.max(1, Math.ceil(plain.length / MAX_BLOCK_BYTES));
  const out = Buffer.allocUnsafe(4 + 1 + 4 + 3 * blocks + plain.length);
  out.writeUInt32LE(0xfd2fb528, 0); // magic
  out[4] = (2 << 6) | (1 << 5); // Frame_Content_Size_flag 2 (4 bytes), Single_Segment_flag
  out.writeUInt32LE(plain.length, 5);
  let at = 9;
  for (let b = 0; b < blocks; b++) {
    const from = b * MAX_BLOCK_BYTES;
    const size = Math.min(MAX_BLOCK_BYTES, plain.length - from);
    out.writeUIntLE((size << 3) | (b === blocks - 1 ? 1 : 0), at, 3); // Block_Type 0 (Raw_Block)
    at += 3;
    out.set(plain.subarray(from, from + size), at);
    at += size;
  }
  return out;
}
