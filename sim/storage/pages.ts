import { createHash } from 'node:crypto';
import { BSON } from 'mongodb';
import type { Document } from 'mongodb';
import type { BlockRef } from './blocks.ts';

/**
 * Pages: a table's contents cut into contiguous key ranges, each serialized as one BSON document and stored in a chain
 * of blocks. Page `i` holds the keys in `[lo_i, lo_{i+1})`; the first page's `lo` is `''`. A page that grows past the
 * split size is cut in two or more; a page that empties merges into its left neighbour.
 */

/** Deserialization options used for every stored document: int64 stays `Long` so `t` and friends round-trip. */
export const BSON_READ = { promoteLongs: false } as const;

/** A page as recorded in a checkpoint. */
export interface PageMeta {
  readonly lo: string;
  readonly blocks: readonly BlockRef[];
}

/** A page as the running engine tracks it: where it lives plus what was written there, to skip unchanged pages. */
export interface PageState extends PageMeta {
  /** SHA-1 of the serialized page, `''` for a page never written. */
  readonly hash: string;
  /** Documents on the page (for sizeStorer). */
  readonly records: number;
  /** Sum of the documents' BSON sizes (for sizeStorer). */
  readonly bytes: number;
}

/** A page's serialized form and the facts derived from it. */
export interface EncodedPage {
  readonly lo: string;
  readonly payload: Uint8Array;
  readonly hash: string;
  readonly records: number;
  readonly bytes: number;
}

/** SHA-1 of a payload, hex. */
export function pageHash(payload: Uint8Array): string {
  return createHash('sha1').update(payload).digest('hex');
}

/** Serializes sorted entries as `{k: [keys], v: [values]}`. */
export function encodePage(lo: string, entries: ReadonlyArray<readonly [string, Document]>): EncodedPage {
  const payload = BSON.serialize({ k: entries.map((e) => e[0]), v: entries.map((e) => e[1]) });
  let bytes = 0;
  for (const [, value] of entries) bytes += BSON.calculateObjectSize(value);
  return { lo, payload, hash: pageHash(payload), records: entries.length, bytes };
}

/** Inverse of {@link encodePage}. */
export function decodePage(payload: Uint8Array): Array<[string, Document]> {
  const doc = BSON.deserialize(payload, BSON_READ) as { k?: unknown; v?: unknown };
  if (!Array.isArray(doc.k) || !Array.isArray(doc.v) || doc.k.length !== doc.v.length) {
    throw new Error('page payload is not {k: [...], v: [...]}');
  }
  const keys = doc.k as unknown[];
  const values = doc.v as unknown[];
  return keys.map((k, i) => [String(k), values[i] as Document]);
}

/**
 * Cuts a page's entries into pieces of at most about `target` serialized bytes each. The first piece keeps `lo`; each
 * later piece starts at its first key. An empty input yields one empty page so the range stays covered.
 */
export function splitEntries(
  lo: string,
  entries: ReadonlyArray<readonly [string, Document]>,
  target: number,
): EncodedPage[] {
  const whole = encodePage(lo, entries);
  if (whole.payload.length <= target * 2 || entries.length <= 1) return [whole];
  const pieces: EncodedPage[] = [];
  let start = 0;
  let size = 0;
  for (let i = 0; i < entries.length; i++) {
    const [key, value] = entries[i] as readonly [string, Document];
    const entrySize = BSON.calculateObjectSize(value) + key.length * 2 + 16;
    if (size > 0 && size + entrySize > target) {
      pieces.push(encodePage(start === 0 ? lo : (entries[start] as readonly [string, Document])[0], entries.slice(start, i)));
      start = i;
      size = 0;
    }
    size += entrySize;
  }
  pieces.push(encodePage(start === 0 ? lo : (entries[start] as readonly [string, Document])[0], entries.slice(start)));
  return pieces;
}
