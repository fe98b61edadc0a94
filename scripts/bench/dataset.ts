/**
 * Benchmark data, loaded straight into a simulated member's storage engine as a bulk import (untimestamped writes,
 * then a checkpoint): the dbpath then holds data files of the wanted sizes, not the same bytes three times over in
 * the oplog and the journal, which is what inserting them through replication would leave.
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { Binary } from 'mongodb';
import type { SimNode } from '../../sim/node/types.ts';

/** One part of a size mix: `count` collections sharing `share` of the total, in documents of `docBytes`. */
export interface MixPart {
  prefix: string;
  count: number;
  share: number;
  docBytes: number;
}

/**
 * A dbpath as a production replica set has it: one large collection of GridFS-sized chunks, a few large and a dozen
 * medium collections, a long tail of small ones and some near-empty ones (their `_id` indexes come with each).
 */
export const REALISTIC_MIX: MixPart[] = [
  { prefix: 'media.fs.chunks', count: 1, share: 0.4, docBytes: 255 * 1024 },
  { prefix: 'app.large', count: 3, share: 0.3, docBytes: 16 * 1024 },
  { prefix: 'app.medium', count: 12, share: 0.24, docBytes: 8 * 1024 },
  { prefix: 'app.small', count: 64, share: 0.058, docBytes: 2 * 1024 },
  { prefix: 'app.tiny', count: 200, share: 0.002, docBytes: 512 },
];

/** Checkpoint every this many bytes of inserts: pages stay small enough to serialize. */
const CHECKPOINT_EVERY = 16 * 1024 * 1024;

/** What a load created. */
export interface Loaded {
  collections: number;
  documents: number;
  /** Document bytes inserted. */
  bytes: number;
  /** The namespace with the most documents, and how many (checked after a restore). */
  largest: { ns: string; documents: number };
}

/** One collection a mix creates: its documents have `_id` 0 … docs-1 and `n` firstN … firstN+docs-1. */
export interface MixCollection {
  ns: string;
  docs: number;
  docBytes: number;
  firstN: number;
}

/** The collections {@link loadMix} creates for `totalBytes` of `mix`, in load order. */
export function mixCollections(totalBytes: number, mix: MixPart[] = REALISTIC_MIX): MixCollection[] {
  const out: MixCollection[] = [];
  let n = 0;
  for (const part of mix) {
    for (let c = 0; c < part.count; c++) {
      const ns = part.count === 1 ? part.prefix : `${part.prefix}${String(c).padStart(3, '0')}`;
      const docs = Math.max(1, Math.round((totalBytes * part.share) / part.count / part.docBytes));
      out.push({ ns, docs, docBytes: part.docBytes, firstN: n });
      n += docs;
    }
  }
  return out;
}

/** Loads about `totalBytes` of documents in the given mix, then takes a checkpoint (what a backup cursor pins). */
export function loadMix(node: SimNode, totalBytes: number, mix: MixPart[] = REALISTIC_MIX, onProgress?: (bytes: number) => void): Loaded {
  const engine = node.engine;
  // Incompressible content, shared by every document so that the load does not hold the data set twice in memory.
  // Consecutive documents take consecutive slices of it, so no two documents within about 8 MiB of the data share a
  // byte: a compressor (restic's zstd compresses each chunk of up to 8 MiB) finds nothing to repeat in the documents.
  const pool = randomBytes(8 * 1024 * 1024);
  let documents = 0;
  let bytes = 0;
  let sinceCheckpoint = 0;
  let largest = { ns: '', documents: 0 };
  const collections = mixCollections(totalBytes, mix);
  for (const { ns, docs, docBytes } of collections) {
    engine.createCollection(ns);
    for (let i = 0; i < docs; i++) {
      const off = bytes % (pool.length - docBytes);
      engine.insert(ns, { _id: i, n: documents, data: new Binary(pool.subarray(off, off + docBytes)) });
      documents++;
      bytes += docBytes;
      sinceCheckpoint += docBytes;
      if (sinceCheckpoint >= CHECKPOINT_EVERY) {
        engine.checkpoint();
        sinceCheckpoint = 0;
        onProgress?.(bytes);
      }
    }
    if (docs > largest.documents) largest = { ns, documents: docs };
  }
  engine.checkpoint();
  return { collections: collections.length, documents, bytes, largest };
}

/**
 * Deterministic pseudo-random bytes and integers from a seed: the AES-256-CTR keystream under a key derived from
 * it (the same seed gives the same stream on every machine).
 */
export function seededStream(seed: number): { bytes(n: number): Buffer; below(n: number): number } {
  const key = createHash('sha256').update(`cutpoint-bench-seed-${seed}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const bytes = (n: number) => cipher.update(Buffer.alloc(n));
  return { bytes, below: (n) => Math.floor((bytes(6).readUIntBE(0, 6) / 2 ** 48) * n) };
}

/** What {@link rewriteShare} changed. */
export interface Rewritten {
  seed: number;
  /** Runs of consecutive documents rewritten, each starting at a random byte of the data set. */
  runs: number;
  documents: number;
  /** Document bytes rewritten (each document keeps its size). */
  bytes: number;
}

/**
 * Rewrites about `share` of the documents {@link loadMix} loaded (by bytes), in place, with new incompressible
 * content from `seed`, then takes a checkpoint: a workload that changed that much data since the last backup. Runs
 * of consecutive `_id`s about `runBytes` long start at random bytes of the data set, so that the pages the
 * checkpoint rewrites (copy-on-write, into freed blocks where there are some) hold about that share of the data
 * rather than a few changed documents each. Every document keeps its `_id`, `n` and size.
 */
export function rewriteShare(node: SimNode, totalBytes: number, share: number, seed: number, mix: MixPart[] = REALISTIC_MIX, runBytes = 256 * 1024): Rewritten {
  if (!(share > 0 && share < 1)) throw new Error(`rewriteShare: share ${share} is not between 0 and 1`);
  const engine = node.engine;
  const collections = mixCollections(totalBytes, mix);
  const sizes = collections.map((c) => c.docs * c.docBytes);
  const total = sizes.reduce((a, b) => a + b, 0);
  const target = total * share;
  const random = seededStream(seed);
  const done = new Set<string>();
  const out: Rewritten = { seed, runs: 0, documents: 0, bytes: 0 };
  while (out.bytes < target) {
    // A random byte of the data set (collections laid end to end), and the document that holds it.
    let at = random.below(total);
    let k = 0;
    for (; at >= sizes[k]!; k++) at -= sizes[k]!;
    const c = collections[k]!;
    const first = Math.floor(at / c.docBytes);
    const end = Math.min(c.docs, first + Math.max(1, Math.round(runBytes / c.docBytes)));
    for (let id = first; id < end && out.bytes < target; id++) {
      if (done.has(`${c.ns} ${id}`)) continue;
      done.add(`${c.ns} ${id}`);
      if (!engine.replace(c.ns, { _id: id, n: c.firstN + id, data: new Binary(random.bytes(c.docBytes)) })) throw new Error(`${c.ns}: no document ${id} to rewrite`);
      out.documents++;
      out.bytes += c.docBytes;
    }
    out.runs++;
  }
  engine.checkpoint();
  return out;
}

/** `files` small files: half as many collections of one document, each with its `_id` index file. */
export function loadSmallFiles(node: SimNode, files: number): Loaded {
  const engine = node.engine;
  const n = Math.ceil(files / 2);
  for (let i = 0; i < n; i++) {
    const ns = `many.c${i}`;
    engine.createCollection(ns);
    engine.insert(ns, { _id: 1, i });
    if (i % 5000 === 4999) engine.checkpoint();
  }
  engine.checkpoint();
  return { collections: n, documents: n, bytes: 0, largest: { ns: 'many.c0', documents: 1 } };
}
