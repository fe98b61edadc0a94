/**
 * The gear table of the content-defined chunker (chunker.ts), part of format cutpoint/v2: changing one value changes
 * every CDC chunk boundary, so it is derived by a fixed rule rather than stored: `GEAR[i]` is the first four bytes,
 * read big-endian, of SHA-256 of the ASCII text `cutpoint-gear-<i>` (i in decimal, 0 to 255).
 * Kept as signed 32-bit integers so the rolling hash stays in V8's small-integer arithmetic.
 *
 * @module
 */
import { createHash } from 'node:crypto';

/** 256 pseudo-random 32-bit values, indexed by byte (stored as int32; the bits are what matter). */
export const GEAR: Int32Array = (() => {
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) table[i] = createHash('sha256').update(`cutpoint-gear-${i}`, 'ascii').digest().readInt32BE(0);
  return table;
})();
