import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { pseudoRandomBytes } from './testing.ts';
import { compress, decompress, storedFrame } from './zstd.ts';

/** Text-like, compressible bytes. */
function compressible(n: number): Buffer {
  const words = pseudoRandomBytes(n / 4, 3).toString('hex');
  return Buffer.from(Array.from({ length: n / 16 }, (_, i) => words.slice((i * 7) % 4000, ((i * 7) % 4000) + 16)).join('')).subarray(0, n);
}

describe('zstd', () => {
  it('round-trips, and honours the level (the package wrapper would silently drop it)', async () => {
    const plain = compressible(1 << 20);
    const fast = await compress(plain, 1);
    const strong = await compress(plain, 19);
    expect((await decompress(fast)).equals(plain)).toBe(true);
    expect((await decompress(strong)).equals(plain)).toBe(true);
    expect(strong.length).toBeLessThan(fast.length);
    expect((await decompress(await compress(Buffer.alloc(0)))).length).toBe(0);
  });

  it('a stored frame (raw blocks, for compression none) decompresses to its input, at its input size plus headers', async () => {
    for (const n of [0, 1, 128 * 1024 - 1, 128 * 1024, 128 * 1024 + 1, 4 * 1024 * 1024 + 3]) {
      const plain = pseudoRandomBytes(n, n);
      const frame = storedFrame(plain);
      expect(frame.length, `${n} bytes`).toBe(n + 9 + 3 * Math.max(1, Math.ceil(n / (128 * 1024))));
      expect((await decompress(frame)).equals(plain), `${n} bytes`).toBe(true);
    }
  });

  it('rejects a damaged frame with an error that has a stack', async () => {
    const blob = await compress(compressible(4096));
    blob[Math.floor(blob.length / 2)]! ^= 0xff;
    blob.writeUInt32LE(0, 0);
    const err = await decompress(blob).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/^zstd decompress: /);
    expect((err as Error).stack).toMatch(/zstd\.ts/);
  });

  it('compress and decompress run off the main thread: the call returns long before the work ends', async () => {
    const plain = pseudoRandomBytes(32 << 20, 5);
    const blob = await compress(plain, 3);
    for (const run of [() => compress(plain, 3), () => decompress(blob)]) {
      const t0 = performance.now();
      let ticks = 0;
      const timer = setInterval(() => ticks++, 1);
      const pending = run();
      const returned = performance.now() - t0;
      await pending;
      const done = performance.now() - t0;
      clearInterval(timer);
      expect(returned).toBeLessThan(done / 4);
      expect(ticks).toBeGreaterThan(0);
    }
  });
});
