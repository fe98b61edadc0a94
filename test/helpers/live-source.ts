/**
 * Comparing a copy of a simulator file with its source while the source keeps changing (the node serves the bank
 * workload during and after the copy). Only bytes the source cannot have changed since they were copied are compared,
 * following the simulator's formats (sim/storage/README.md, "On disk"):
 * - a journal file only grows its chain of records into zeros, so the records the copy holds must be the source's
 *   bytes at the same offsets, and every byte after them in the copy must be zero or the source's (a record the copy
 *   read while it was being appended);
 * - a block file rewrites a block only with a newer checkpoint generation in its header, so a block whose header
 *   generation is the same in the copy and in the source was not rewritten in between and must be byte-equal.
 */
import { crc32 } from 'node:zlib';
import { BLOCK_HEADER } from '../../sim/storage/blocks.ts';

export interface LiveComparison {
  /** Byte ranges `[from, to)` of the copy held to equality with the source (or to zeros, past a journal's records). */
  compared: Array<[number, number]>;
  /** What differs, by offset; empty when the copy is exact. */
  mismatches: string[];
}

const DATA_MAGIC = 0x53494d42;
const RECORD_HEADER = 8;

export function compareWithLiveSource(relPath: string, copy: Buffer, source: Buffer): LiveComparison {
  return relPath.startsWith('journal/') ? compareJournal(copy, source) : compareBlocks(copy, source);
}

/** End of the chain of whole records from offset 0: `[u32 length][u32 crc32(length bytes + payload)][payload]`. */
function recordsEnd(buf: Buffer): number {
  let off = 0;
  while (off + RECORD_HEADER <= buf.length) {
    const len = buf.readUInt32LE(off);
    const end = off + RECORD_HEADER + len;
    if (len === 0 || end > buf.length) break;
    if (buf.readUInt32LE(off + 4) !== crc32(buf.subarray(off + RECORD_HEADER, end), crc32(buf.subarray(off, off + 4)))) break;
    off = end;
  }
  return off;
}

function compareJournal(copy: Buffer, source: Buffer): LiveComparison {
  const end = recordsEnd(copy);
  const mismatches: string[] = [];
  const first = firstDifference(copy.subarray(0, end), source.subarray(0, end));
  if (first !== undefined) mismatches.push(`journal record bytes differ from the source at offset ${first}`);
  for (let i = end; i < copy.length; i++) {
    if (copy[i] !== 0 && copy[i] !== source[i]) {
      mismatches.push(`byte at offset ${i}, after the copy's last whole record (which ends at ${end}), is neither zero nor the source's`);
      break;
    }
  }
  return { compared: [[0, copy.length]], mismatches };
}

function compareBlocks(copy: Buffer, source: Buffer): LiveComparison {
  // Block 0 is the descriptor: magic, file id, block size, ...
  const blockSize = copy.readUInt32LE(8);
  const compared: Array<[number, number]> = [];
  const mismatches: string[] = [];
  for (let off = 0; off + blockSize <= copy.length; off += blockSize) {
    const c = copy.subarray(off, off + blockSize);
    const s = source.subarray(off, off + blockSize);
    const sameGeneration = off === 0 || (c.readUInt32LE(0) === DATA_MAGIC && s.length === blockSize && s.readUInt32LE(0) === DATA_MAGIC && c.readBigUInt64LE(12) === s.readBigUInt64LE(12));
    if (!sameGeneration) continue;
    compared.push([off, off + blockSize]);
    const first = firstDifference(c, s);
    if (first !== undefined) mismatches.push(`block ${off / blockSize} (generation ${off === 0 ? '-' : c.readBigUInt64LE(12)}) differs from the source at byte ${first}${first < BLOCK_HEADER ? ' (header)' : ''}`);
  }
  return { compared, mismatches };
}

function firstDifference(a: Buffer, b: Buffer): number | undefined {
  if (a.equals(b)) return undefined;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}
