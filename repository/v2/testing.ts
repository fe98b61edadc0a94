/**
 * Deterministic data for the tests of format cutpoint/v2 (not used by the product).
 *
 * @module
 */

/** `n` pseudo-random bytes from `seed` (xorshift32): the same seed always gives the same bytes. */
export function pseudoRandomBytes(n: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 0x9e3779b9;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeInt32LE(x | 0, i);
  }
  for (; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Feeds `data` to a chunker in pieces of the given sizes (cycled; 0 pushes an empty buffer) and returns every chunk. */
export function chunkAll(chunker: { push(data: Buffer): Buffer[]; finish(): Buffer[] }, data: Buffer, pieces: number[] = [data.length]): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  for (let k = 0; pos < data.length || k === 0; k++) {
    const n = Math.min(pieces[k % pieces.length]!, data.length - pos);
    out.push(...chunker.push(data.subarray(pos, pos + n)));
    pos += n;
    if (pieces.every((p) => p === 0)) break;
  }
  out.push(...chunker.finish());
  return out;
}
