/**
 * Benchmark data, loaded straight into a simulated member's storage engine as a bulk import (untimestamped writes,
 * then a checkpoint): the dbpath then holds data files of the wanted sizes, not the same bytes three times over in
 * the oplog and the journal, which is what inserting them through replication would leave.
 */
import { randomBytes } from 'node:crypto';
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

/** Loads about `totalBytes` of documents in the given mix, then takes a checkpoint (what a backup cursor pins). */
export function loadMix(node: SimNode, totalBytes: number, mix: MixPart[] = REALISTIC_MIX, onProgress?: (bytes: number) => void): Loaded {
  const engine = node.engine;
  // Incompressible content, shared by every document so that the load does not hold the data set twice in memory.
  const pool = randomBytes(8 * 1024 * 1024);
  let documents = 0;
  let bytes = 0;
  let sinceCheckpoint = 0;
  let collections = 0;
  let largest = { ns: '', documents: 0 };
  for (const part of mix) {
    for (let c = 0; c < part.count; c++) {
      const ns = part.count === 1 ? part.prefix : `${part.prefix}${String(c).padStart(3, '0')}`;
      engine.createCollection(ns);
      collections++;
      const docs = Math.max(1, Math.round((totalBytes * part.share) / part.count / part.docBytes));
      for (let i = 0; i < docs; i++) {
        const off = (documents * 8191) % (pool.length - part.docBytes);
        engine.insert(ns, { _id: i, n: documents, data: new Binary(pool.subarray(off, off + part.docBytes)) });
        documents++;
        bytes += part.docBytes;
        sinceCheckpoint += part.docBytes;
        if (sinceCheckpoint >= CHECKPOINT_EVERY) {
          engine.checkpoint();
          sinceCheckpoint = 0;
          onProgress?.(bytes);
        }
      }
      if (docs > largest.documents) largest = { ns, documents: docs };
    }
  }
  engine.checkpoint();
  return { collections, documents, bytes, largest };
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
