import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { cdcChunker, type Chunker, chunkerFor, DEFAULT_CDC_PARAMS, FIXED_CHUNK_BYTES, fixedChunker } from './chunker.ts';
import { GEAR } from './gear.ts';
import { chunkAll, pseudoRandomBytes } from './testing.ts';

const SMALL = { minBytes: 64, avgBytes: 256, maxBytes: 1024 };
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const lengths = (chunks: Buffer[]) => chunks.map((c) => c.length);

/** Feeds `data` through a read buffer the caller reuses (overwritten after every push), as the copy loop does. */
function chunkThroughReusedBuffer(chunker: Chunker, data: Buffer, bufferBytes: number): Buffer[] {
  const buf = Buffer.alloc(bufferBytes);
  const out: Buffer[] = [];
  for (let pos = 0; pos < data.length; pos += bufferBytes) {
    const n = data.copy(buf, 0, pos, pos + bufferBytes);
    out.push(...chunker.push(buf.subarray(0, n)));
    buf.fill(0xee);
  }
  out.push(...chunker.finish());
  return out;
}

describe('fixedChunker', () => {
  it('cuts at absolute offsets k × size, the last chunk shorter', () => {
    const data = pseudoRandomBytes(10 * 1000 + 123, 7);
    const chunks = chunkAll(fixedChunker(1000), data, [333]);
    expect(lengths(chunks)).toEqual([...Array(10).fill(1000), 123]);
    chunks.forEach((c, k) => expect(c.equals(data.subarray(k * 1000, (k + 1) * 1000)), `chunk ${k}`).toBe(true));
  });

  it('a stream resumed at offset k × size gives the same chunks as the tail of the whole one', () => {
    const data = pseudoRandomBytes(3 * FIXED_CHUNK_BYTES + 5000, 8);
    const whole = chunkAll(fixedChunker(), data, [200_000]).map(sha);
    const resumed = chunkAll(fixedChunker(), data.subarray(2 * FIXED_CHUNK_BYTES), [77_777]).map(sha);
    expect(resumed).toEqual(whole.slice(2));
  });

  it('gives identical chunks whatever the push segmentation, and nothing for an empty stream', () => {
    const data = pseudoRandomBytes(5000, 9);
    const reference = chunkAll(fixedChunker(512), data).map(sha);
    for (const pieces of [[1], [511], [512], [513], [0, 3, 1024, 0, 7], [4999]]) {
      expect(chunkAll(fixedChunker(512), data, pieces).map(sha), `pieces ${pieces}`).toEqual(reference);
    }
    expect(chunkAll(fixedChunker(512), Buffer.alloc(0))).toEqual([]);
  });

  it('returns chunks of their own: the caller may reuse its read buffer', () => {
    const data = pseudoRandomBytes(10_000, 10);
    // Read buffers aligned with the chunks (whole chunks inside one push) and not (chunks spanning pushes).
    for (const bufferBytes of [1000, 4000, 700]) {
      const chunks = chunkThroughReusedBuffer(fixedChunker(1000), data, bufferBytes);
      expect(Buffer.concat(chunks).equals(data), `buffer ${bufferBytes}`).toBe(true);
    }
  });

  it('is deterministic and resets after finish', () => {
    const data = pseudoRandomBytes(4000, 11);
    const c = fixedChunker(1500);
    const first = chunkAll(c, data, [999]).map(sha);
    expect(chunkAll(c, data, [999]).map(sha)).toEqual(first);
  });

  it('refuses a size that is not a positive integer', () => {
    expect(() => fixedChunker(0)).toThrow(/positive integer/);
    expect(() => fixedChunker(1.5)).toThrow(/positive integer/);
  });
});

describe('cdcChunker', () => {
  it('respects minBytes and maxBytes (only the last chunk may be shorter) and covers the stream exactly', () => {
    const data = pseudoRandomBytes(200_000, 12);
    const chunks = chunkAll(cdcChunker(SMALL), data, [4096]);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    for (const c of chunks.slice(0, -1)) {
      expect(c.length).toBeGreaterThanOrEqual(SMALL.minBytes);
      expect(c.length).toBeLessThanOrEqual(SMALL.maxBytes);
    }
    // Some cuts fall right at minBytes and some are forced at maxBytes: both ends of the range are reachable.
    expect(Math.min(...lengths(chunks.slice(0, -1)))).toBeLessThan(SMALL.minBytes + 16);
    // Bytes that never make a cut (zeros: the gear hash settles on a constant) are cut at exactly maxBytes.
    expect(lengths(chunkAll(cdcChunker(SMALL), Buffer.alloc(5000)))).toEqual([1024, 1024, 1024, 1024, 904]);
  });

  it('gives identical chunks whatever the push segmentation', () => {
    const data = pseudoRandomBytes(60_000, 13);
    const reference = chunkAll(cdcChunker(SMALL), data).map(sha);
    expect(reference.length).toBeGreaterThan(60_000 / SMALL.maxBytes);
    for (const pieces of [[1], [63], [64], [65], [255, 0, 1], [1024], [1025], [7, 3000, 1, 0, 50]]) {
      expect(chunkAll(cdcChunker(SMALL), data, pieces).map(sha), `pieces ${pieces}`).toEqual(reference);
    }
  });

  it('returns chunks of their own: the caller may reuse its read buffer', () => {
    const data = pseudoRandomBytes(50_000, 14);
    for (const bufferBytes of [100, 1000, 5000]) {
      expect(Buffer.concat(chunkThroughReusedBuffer(cdcChunker(SMALL), data, bufferBytes)).equals(data), `buffer ${bufferBytes}`).toBe(true);
    }
  });

  it('an insertion, removal, prepend or append changes only the chunks around it', () => {
    const data = pseudoRandomBytes(100_000, 15);
    const original = chunkAll(cdcChunker(SMALL), data).map(sha);
    expect(original.length).toBeGreaterThan(100);
    /** The chunks of `edited` outside its common prefix and suffix with the original: count and byte range. */
    const differing = (edited: Buffer) => {
      const chunks = chunkAll(cdcChunker(SMALL), edited);
      const hashes = chunks.map(sha);
      let head = 0;
      while (head < hashes.length && hashes[head] === original[head]) head++;
      let tail = 0;
      while (tail < hashes.length - head && hashes[hashes.length - 1 - tail] === original[original.length - 1 - tail]) tail++;
      const from = chunks.slice(0, head).reduce((n, c) => n + c.length, 0);
      const bytes = chunks.slice(head, chunks.length - tail).reduce((n, c) => n + c.length, 0);
      return { chunks: chunks.length - head - tail, from, to: from + bytes };
    };
    // Forty edits across the stream, half insertions, half removals. Normalized chunking makes a cut depend a little
    // on where its chunk started, so resynchronizing may take a few chunks, rarely more; never the rest of the stream.
    const counts: number[] = [];
    for (let k = 0; k < 40; k++) {
      const at = 1000 + k * 2400 + ((k * 37) % 500);
      const edited = k % 2 ? Buffer.concat([data.subarray(0, at), Buffer.from(`ins${k}`), data.subarray(at)]) : Buffer.concat([data.subarray(0, at), data.subarray(at + 1 + (k % 9))]);
      const d = differing(edited);
      expect(d.from, `edit ${k}`).toBeLessThanOrEqual(at);
      expect(d.to, `edit ${k}`).toBeGreaterThanOrEqual(at);
      expect(d.to - d.from, `edit ${k}`).toBeLessThanOrEqual(6 * SMALL.maxBytes);
      counts.push(d.chunks);
    }
    expect(counts.reduce((a, b) => a + b, 0) / counts.length).toBeLessThan(2.5);
    // Prepended or appended bytes: only the first or last chunks differ.
    const few = Buffer.from('inserted!');
    expect(differing(Buffer.concat([few, data])).to).toBeLessThanOrEqual(6 * SMALL.maxBytes);
    expect(differing(Buffer.concat([data, few])).from).toBeGreaterThanOrEqual(data.length - 6 * SMALL.maxBytes);
    // The fixed grid, by contrast, loses every chunk after a prepend: what CDC is for.
    const fixed = new Set(chunkAll(fixedChunker(256), data).map(sha));
    const shifted = chunkAll(fixedChunker(256), Buffer.concat([few, data])).map(sha);
    expect(shifted.filter((h) => fixed.has(h))).toEqual([]);
  });

  it('with the default parameters, chunks of random data average near 1 MiB', () => {
    const data = pseudoRandomBytes(48 * 1024 * 1024, 16);
    const chunks = chunkAll(cdcChunker(), data, [1024 * 1024]);
    const inner = lengths(chunks.slice(0, -1));
    const mean = inner.reduce((a, b) => a + b, 0) / inner.length;
    expect(mean).toBeGreaterThan(0.8 * 1024 * 1024);
    expect(mean).toBeLessThan(1.6 * 1024 * 1024);
    expect(Math.min(...inner)).toBeGreaterThanOrEqual(DEFAULT_CDC_PARAMS.minBytes);
    expect(Math.max(...inner)).toBeLessThanOrEqual(DEFAULT_CDC_PARAMS.maxBytes);
  });

  it('cuts exactly where format cutpoint/v2 says (a reimplementation must give these lengths)', () => {
    // The gear table as docs/repository-format.md section 5.2 derives it.
    expect([GEAR[0], GEAR[1], GEAR[255]]).toEqual([
      createHash('sha256').update('cutpoint-gear-0').digest().readInt32BE(0),
      createHash('sha256').update('cutpoint-gear-1').digest().readInt32BE(0),
      createHash('sha256').update('cutpoint-gear-255').digest().readInt32BE(0),
    ]);
    // The test vector of docs/repository-format.md section 5.2.
    const vector = Buffer.concat(Array.from({ length: 128 }, (_, j) => createHash('sha256').update(`cutpoint-cdc-test-${j}`).digest()));
    const expected = [170, 77, 324, 242, 89, 275, 262, 303, 659, 444, 90, 280, 351, 316, 214];
    expect(lengths(chunkAll(cdcChunker(SMALL), vector, [100]))).toEqual(expected);
    expect(referenceCdc(vector, SMALL)).toEqual(expected);
    expect([GEAR[0]! >>> 0, GEAR[1]! >>> 0, GEAR[255]! >>> 0]).toEqual([0x09828d08, 0x9034c92d, 0xee9a2333]);
    const data = pseudoRandomBytes(8000, 17);
    expect(lengths(chunkAll(cdcChunker(SMALL), data))).toEqual(referenceCdc(data, SMALL));
    const big = pseudoRandomBytes(12 * 1024 * 1024, 18);
    expect(lengths(chunkAll(cdcChunker(), big, [1 << 20]))).toEqual(referenceCdc(big, DEFAULT_CDC_PARAMS));
  });

  it('refuses inconsistent parameters', () => {
    expect(() => cdcChunker({ minBytes: 2048, avgBytes: 1024 })).toThrow(/minBytes <= avgBytes <= maxBytes/);
    expect(() => cdcChunker({ avgBytes: 1000 * 1000 })).toThrow(/power of two/);
    expect(() => cdcChunker({ maxBytes: 0 })).toThrow(/positive integer/);
  });
});

/**
 * The chunk lengths of the CDC rule as docs/repository-format.md section 5.2 states it, written as plainly as possible (whole
 * buffer, byte by byte, BigInt-free 32-bit arithmetic), to check the streaming implementation against.
 */
function referenceCdc(data: Buffer, p: { minBytes: number; avgBytes: number; maxBytes: number }): number[] {
  const bits = Math.log2(p.avgBytes);
  const top = (k: number) => (0xffffffff << (32 - k)) >>> 0;
  const maskS = top(bits + 2);
  const maskL = top(bits - 2);
  const gear = Array.from({ length: 256 }, (_, i) => createHash('sha256').update(`cutpoint-gear-${i}`).digest().readUInt32BE(0));
  const out: number[] = [];
  let s = 0;
  while (s < data.length) {
    let h = 0;
    let len = data.length - s; // no cut: the rest is the last chunk
    for (let i = p.minBytes - 1; s + i < data.length; i++) {
      h = (h * 2 + gear[data[s + i]!]!) % 2 ** 32;
      const L = i + 1;
      if (L >= p.maxBytes || (h & (L < p.avgBytes ? maskS : maskL)) >>> 0 === 0) {
        len = L;
        break;
      }
    }
    out.push(len);
    s += len;
  }
  return out;
}

describe('chunkerFor', () => {
  it('data and storage.bson: the fixed 1 MiB grid; journal: CDC with the default parameters', () => {
    const data = pseudoRandomBytes(3 * FIXED_CHUNK_BYTES + 10, 19);
    expect(lengths(chunkAll(chunkerFor('data'), data))).toEqual([FIXED_CHUNK_BYTES, FIXED_CHUNK_BYTES, FIXED_CHUNK_BYTES, 10]);
    expect(lengths(chunkAll(chunkerFor('storage.bson'), data))).toEqual([FIXED_CHUNK_BYTES, FIXED_CHUNK_BYTES, FIXED_CHUNK_BYTES, 10]);
    expect(lengths(chunkAll(chunkerFor('journal'), data))).toEqual(lengths(chunkAll(cdcChunker(DEFAULT_CDC_PARAMS), data)));
    expect(lengths(chunkAll(chunkerFor('journal'), data))).not.toEqual(lengths(chunkAll(fixedChunker(), data)));
  });
});
