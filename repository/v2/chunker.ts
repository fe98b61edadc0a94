/**
 * Chunkers of format cutpoint/v2 (docs/repository-format.md section 5): they cut a file's byte stream into chunks,
 * streaming and with bounded memory, the same way whatever the read sizes, so equal content gives equal chunks.
 *
 * - {@link fixedChunker}: chunks of `size` bytes at absolute offsets `k × size` (the last one shorter). WiredTiger
 *   data files change in place in allocation-size blocks and never shift, so a fixed grid keeps every unchanged
 *   MiB identical, costs nothing per byte, and a copy resumed at offset `k × size` chunks exactly as a whole one.
 * - {@link cdcChunker}: FastCDC (gear rolling hash, normalized chunking), for files whose content may move: a
 *   boundary depends only on the bytes just before it, so bytes inserted or removed change only nearby chunks.
 *
 * Ownership: every chunk `push` or `finish` returns is a Buffer of its own (a copy), never a view of the caller's
 * `data`, and the chunker keeps no reference to it. The caller may reuse `data` as soon as `push` returns, and may
 * hand a chunk to an asynchronous compressor that reads it later.
 *
 * @module
 */
import { CutpointError } from '../../common/errors.ts';
import type { FileKind } from '../../common/manifest.ts';
import { GEAR } from './gear.ts';

/** Cuts a stream of bytes into chunks. */
export interface Chunker {
  /** Feeds the next bytes of the stream; returns the chunks completed by them, in order (often none). */
  push(data: Buffer): Buffer[];
  /** Ends the stream: returns the last, possibly short, chunk (none when no bytes are pending) and resets the chunker for a new stream. */
  finish(): Buffer[];
}

/** Size of the fixed chunks of WiredTiger data files and storage.bson. */
export const FIXED_CHUNK_BYTES = 1024 * 1024;

/** FastCDC parameters: no chunk but a stream's last is shorter than `minBytes` or longer than `maxBytes`. */
export interface CdcParams {
  minBytes: number;
  /** The normal size, a power of two: cuts are 4 times less likely than 1/avgBytes below it, 4 times more likely above it (normalized chunking, level 2). */
  avgBytes: number;
  maxBytes: number;
}

/** The CDC parameters of format cutpoint/v2 for the journal: 256 KiB / 1 MiB / 4 MiB. */
export const DEFAULT_CDC_PARAMS: Readonly<CdcParams> = Object.freeze({ minBytes: 256 * 1024, avgBytes: 1024 * 1024, maxBytes: 4 * 1024 * 1024 });

/** Fixed-size chunks: `size` bytes each at offsets `k × size` of the stream, the last one shorter. */
export function fixedChunker(size: number = FIXED_CHUNK_BYTES): Chunker {
  if (!Number.isSafeInteger(size) || size < 1) throw new CutpointError('BAD_USAGE', `invalid fixed chunk size ${size}: expected a positive integer`);
  return new FixedChunker(size);
}

class FixedChunker implements Chunker {
  /** The chunk being filled (allocated on first use, handed out whole when full). */
  #cur: Buffer | undefined;
  #len = 0;

  constructor(readonly size: number) {}

  push(data: Buffer): Buffer[] {
    const out: Buffer[] = [];
    const size = this.size;
    let pos = 0;
    while (pos < data.length) {
      if (this.#len === 0 && data.length - pos >= size) {
        // A whole chunk inside `data`: one copy.
        out.push(Buffer.from(data.subarray(pos, pos + size)));
        pos += size;
        continue;
      }
      const take = Math.min(size - this.#len, data.length - pos);
      this.#cur ??= Buffer.allocUnsafeSlow(size);
      data.copy(this.#cur, this.#len, pos, pos + take);
      this.#len += take;
      pos += take;
      if (this.#len === size) {
        out.push(this.#cur);
        this.#cur = undefined;
        this.#len = 0;
      }
    }
    return out;
  }

  finish(): Buffer[] {
    const out = this.#len > 0 && this.#cur ? [Buffer.from(this.#cur.subarray(0, this.#len))] : [];
    this.#cur = undefined;
    this.#len = 0;
    return out;
  }
}

/** A mask of the top `bits` bits of a 32-bit word, as an int32. */
function topBits(bits: number): number {
  return (0xffffffff << (32 - bits)) | 0;
}

/**
 * FastCDC with normalized chunking (level 2), streaming. For a chunk starting at stream offset `s`, with `b` the
 * chunk's byte at index `i` and `h` starting at 0: for `i = minBytes - 1, minBytes, …`, `h = (2h + GEAR[b]) mod 2^32`
 * and `L = i + 1`; the chunk ends after byte `i` when `L = maxBytes`, or when `h & mask == 0` with `mask` the top
 * `log2(avgBytes) + 2` bits while `L < avgBytes` and the top `log2(avgBytes) - 2` bits from there on. Bytes before
 * index `minBytes - 1` are not hashed (no cut can fall there). Memory: one buffer of `maxBytes`, reused.
 */
export function cdcChunker(params: Partial<CdcParams> = {}): Chunker {
  const p = { ...DEFAULT_CDC_PARAMS, ...params };
  const bad = (why: string): never => {
    throw new CutpointError('BAD_USAGE', `invalid CDC chunker parameters ${JSON.stringify(p)}: ${why}`);
  };
  for (const k of ['minBytes', 'avgBytes', 'maxBytes'] as const) if (!Number.isSafeInteger(p[k]) || p[k] < 1) bad(`${k} must be a positive integer`);
  if (!(p.minBytes <= p.avgBytes && p.avgBytes <= p.maxBytes)) bad('expected minBytes <= avgBytes <= maxBytes');
  const bits = Math.log2(p.avgBytes);
  if (!Number.isInteger(bits) || bits < 3 || bits > 30) bad('avgBytes must be a power of two from 8 to 2^30');
  if (p.maxBytes > 2 ** 31) bad('maxBytes must be at most 2 GiB');
  return new CdcChunker(p, topBits(bits + 2), topBits(bits - 2));
}

class CdcChunker implements Chunker {
  /** Pending bytes of the current chunk (those not yet part of a returned chunk). */
  #cur: Buffer | undefined;
  #pending = 0;
  /** Length of the current chunk so far (pending bytes plus those consumed from the current push). */
  #len = 0;
  #h = 0;

  constructor(
    readonly params: CdcParams,
    readonly maskS: number,
    readonly maskL: number,
  ) {}

  push(data: Buffer): Buffer[] {
    const out: Buffer[] = [];
    const { minBytes, avgBytes, maxBytes } = this.params;
    const { maskS, maskL } = this;
    const n = data.length;
    let h = this.#h;
    let len = this.#len;
    /** Start in `data` of the current chunk's bytes not yet copied anywhere. */
    let start = 0;
    let j = 0;
    while (j < n) {
      if (len < minBytes - 1) {
        const skip = Math.min(n - j, minBytes - 1 - len);
        j += skip;
        len += skip;
        continue;
      }
      // Hash bytes while the mask stays the same: lengths up to avgBytes - 1 use maskS, then maskL up to maxBytes.
      const small = len < avgBytes - 1;
      const mask = small ? maskS : maskL;
      const stop = Math.min(n, j + ((small ? avgBytes - 1 : maxBytes) - len));
      const from = j;
      let cut = false;
      while (j < stop) {
        h = ((h << 1) + GEAR[data[j++]!]!) | 0;
        if ((h & mask) === 0) {
          cut = true;
          break;
        }
      }
      len += j - from;
      if (cut || len === maxBytes) {
        out.push(this.#take(data, start, j));
        start = j;
        len = 0;
        h = 0;
      }
    }
    // Keep the rest of `data` (the start of the next chunk) in the chunker's own buffer.
    if (start < n) {
      this.#cur ??= Buffer.allocUnsafeSlow(maxBytes);
      data.copy(this.#cur, this.#pending, start, n);
      this.#pending += n - start;
    }
    this.#h = h;
    this.#len = len;
    return out;
  }

  /** The chunk made of the pending bytes and `data[from, to)`, as one new Buffer. */
  #take(data: Buffer, from: number, to: number): Buffer {
    if (this.#pending === 0) return Buffer.from(data.subarray(from, to));
    const chunk = Buffer.allocUnsafe(this.#pending + to - from);
    this.#cur!.copy(chunk, 0, 0, this.#pending);
    data.copy(chunk, this.#pending, from, to);
    this.#pending = 0;
    return chunk;
  }

  finish(): Buffer[] {
    const out = this.#pending > 0 ? [Buffer.from(this.#cur!.subarray(0, this.#pending))] : [];
    this.#pending = 0;
    this.#len = 0;
    this.#h = 0;
    this.#cur = undefined;
    return out;
  }
}

/**
 * The chunker format cutpoint/v2 uses for a kind of file: WiredTiger data files and storage.bson on the fixed 1 MiB
 * grid, the journal with CDC at the default parameters.
 */
export function chunkerFor(kind: FileKind): Chunker {
  switch (kind) {
    case 'data':
    case 'storage.bson':
      return fixedChunker(FIXED_CHUNK_BYTES);
    case 'journal':
      return cdcChunker(DEFAULT_CDC_PARAMS);
  }
}
