/**
 * The sealed oplog of continuous capture (docs/repository-format.md section "Oplog segments"): per cluster and
 * replica set, a chain of segments, each a small JSON record naming the first and last timestamps of the entries it
 * holds and the v2 chunks (compressed, and encrypted in an encrypted repository) that hold them, as raw BSON
 * documents one after the other in oplog order.
 *
 * ```
 * pitr/<cluster>/<rs>/<day>/<first>_<last>.json     day = floor(first.t / 86400), 6 digits; a ts = <t 10>-<i 10> digits
 * ```
 *
 * A segment's `prev` is the last timestamp of the segment before it; the capture proved that nothing lies between
 * (the entry at `prev` was the first its tail returned). `prev` null starts a chain; `gap` says the oplog had rolled
 * past `prev` when capture resumed: every entry after `gap.from` and before `gap.to` (= `first`) is lost.
 * Order of a seal: the pack, its index file, then the segment record; a crash before the record leaves an
 * unreferenced pack that prune sweeps.
 */
import { CutpointError } from '../common/errors.ts';
import { compareTs, parseTs, type Ts } from '../common/timestamp.ts';
import type { PitrGap } from '../common/pitr-types.ts';
import { CorruptFileError } from './errors.ts';
import { assertChunkId, type ChunkId } from './v2/chunk-id.ts';
import { ChunkIndex } from './v2/chunk-index.ts';
import { ChunkReader } from './v2/chunk-reader.ts';
import { ChunkWriter } from './v2/chunk-writer.ts';
import { PackWriter } from './v2/pack.ts';
import { validateReplicaSetName, type Repository } from './repository.ts';

export const OPLOG_SEGMENT_FORMAT = 'cutpoint/oplog-segment/v1';
export const PITR_DIR = 'pitr';
/** Largest chunk of a segment: entries are split at document boundaries (one larger entry is a chunk by itself). */
export const SEGMENT_CHUNK_BYTES = 1024 * 1024;

/** One sealed segment's record. */
export interface OplogSegment {
  format: string;
  cluster: string;
  replicaSet: string;
  first: Ts;
  last: Ts;
  /** The last timestamp of the previous segment of the chain; null for the first one. */
  prev: Ts | null;
  /** The oplog had rolled past `prev`: entries after `from` and before `to` are lost. */
  gap?: { from: Ts; to: Ts };
  count: number;
  /** Uncompressed BSON bytes. */
  bytes: number;
  chunks: ChunkId[];
  /** The member it was read from. */
  node: string;
  sealedAt: string;
}

const pad = (n: number, w: number) => String(n).padStart(w, '0');
const tsName = (ts: Ts) => `${pad(ts.t, 10)}-${pad(ts.i, 10)}`;
const SEGMENT_NAME = /^(\d{10})-(\d{10})_(\d{10})-(\d{10})\.json$/;

/** Validates a cluster name for a path (the same rules as a replica set's). */
export function validateClusterName(cluster: string): string {
  try {
    return validateReplicaSetName(cluster);
  } catch {
    throw new CutpointError('BAD_USAGE', `cluster name '${cluster}' cannot be stored: use 1-128 letters, digits, '.', '_' or '-', not starting with '.'`);
  }
}

export const pitrLayout = {
  cluster: (cluster: string) => `${PITR_DIR}/${validateClusterName(cluster)}`,
  replicaSet: (cluster: string, rs: string) => `${pitrLayout.cluster(cluster)}/${validateReplicaSetName(rs)}`,
  segment: (cluster: string, rs: string, first: Ts, last: Ts) => `${pitrLayout.replicaSet(cluster, rs)}/${pad(Math.floor(first.t / 86400), 6)}/${tsName(first)}_${tsName(last)}.json`,
};

function parseSegment(data: Buffer, where: string): OplogSegment {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new CorruptFileError(where, '(the document)', `${where} is not JSON: ${(e as Error).message}`);
  }
  const field = (name: string, check: (x: unknown) => unknown) => {
    try {
      return check(v[name]);
    } catch (e) {
      throw new CorruptFileError(where, name, `${where}: ${name}: ${(e as Error).message}`);
    }
  };
  if (v.format !== OPLOG_SEGMENT_FORMAT) throw new CorruptFileError(where, 'format', `${where}: format ${JSON.stringify(v.format)} is not ${OPLOG_SEGMENT_FORMAT}`);
  const str = (x: unknown) => {
    if (typeof x !== 'string') throw new Error('not a string');
    return x;
  };
  const count = (x: unknown) => {
    if (!Number.isSafeInteger(x) || (x as number) < 0) throw new Error('not a count');
    return x as number;
  };
  const seg: OplogSegment = {
    format: OPLOG_SEGMENT_FORMAT,
    cluster: field('cluster', str) as string,
    replicaSet: field('replicaSet', str) as string,
    first: field('first', (x) => parseTs(x)) as Ts,
    last: field('last', (x) => parseTs(x)) as Ts,
    prev: field('prev', (x) => (x === null ? null : parseTs(x))) as Ts | null,
    count: field('count', count) as number,
    bytes: field('bytes', count) as number,
    chunks: field('chunks', (x) => {
      if (!Array.isArray(x)) throw new Error('not an array');
      for (const c of x) assertChunkId(c);
      return x as string[];
    }) as string[],
    node: field('node', str) as string,
    sealedAt: field('sealedAt', str) as string,
  };
  if (v.gap !== undefined) {
    seg.gap = field('gap', (x) => {
      const g = x as { from?: unknown; to?: unknown };
      return { from: parseTs(g.from, 'gap.from'), to: parseTs(g.to, 'gap.to') };
    }) as { from: Ts; to: Ts };
  }
  if (compareTs(seg.first, seg.last) > 0) throw new CorruptFileError(where, 'last', `${where}: last is before first`);
  return seg;
}

/** The entries of one segment's chunks: raw BSON documents, each starting with its int32 length. */
export function splitDocuments(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; ) {
    const len = data.readInt32LE(at);
    if (len < 5 || at + len > data.length) throw new CutpointError('REPO_CORRUPT', `oplog chunk holds a truncated BSON document at byte ${at}`);
    out.push(data.subarray(at, at + len));
    at += len;
  }
  return out;
}

/** Groups raw documents into chunks of at most {@link SEGMENT_CHUNK_BYTES} (a larger document alone). */
export function packDocuments(docs: Buffer[]): Buffer[] {
  const chunks: Buffer[] = [];
  let part: Buffer[] = [];
  let size = 0;
  for (const d of docs) {
    if (size > 0 && size + d.length > SEGMENT_CHUNK_BYTES) {
      chunks.push(Buffer.concat(part));
      part = [];
      size = 0;
    }
    part.push(d);
    size += d.length;
  }
  if (part.length) chunks.push(Buffer.concat(part));
  return chunks;
}

/** What a chain of segments says: where it ends, its gaps, and where its newest unbroken run starts. */
export interface ChainSummary {
  /** The first entry of the oldest segment. */
  from: Ts | null;
  /** The last entry of the newest segment. */
  to: Ts | null;
  /** Recorded gaps, and breaks of the chain (a `prev` that is not the previous segment's `last`). */
  gaps: Array<{ from: Ts; to: Ts }>;
  /**
   * Where the newest run without a gap starts: every oplog entry after this point (and the entry at it, when it is
   * the run's first) up to `to` is captured. A base backup whose common timestamp is at or after it can be rolled
   * forward to `to`.
   */
  contiguousFrom: Ts | null;
  segments: number;
}

/** Summarises segments sorted by `first`. */
export function summarizeChain(segments: OplogSegment[]): ChainSummary {
  const gaps: Array<{ from: Ts; to: Ts }> = [];
  let contiguousFrom: Ts | null = null;
  let prevLast: Ts | null = null;
  for (const s of segments) {
    if (s.gap) {
      gaps.push(s.gap);
      contiguousFrom = s.first;
    } else if (prevLast === null) {
      // The oldest segment kept: it proves the oplog contiguous from its predecessor's last entry, if it names one
      // (retention removed the segments before it), else from its own first entry.
      contiguousFrom = s.prev ?? s.first;
    } else if (s.prev === null) {
      // A chain restarted without a recorded predecessor: nothing between is known to be captured.
      gaps.push({ from: prevLast, to: s.first });
      contiguousFrom = s.first;
    } else if (compareTs(s.prev, prevLast) !== 0) {
      gaps.push({ from: prevLast, to: s.first });
      contiguousFrom = s.first;
    }
    prevLast = s.last;
  }
  return { from: segments[0]?.first ?? null, to: prevLast, gaps, contiguousFrom, segments: segments.length };
}

/** Reads and writes the oplog segments of a repository. */
export class OplogSegments {
  constructor(private readonly repo: Repository) {}

  /** The replica sets with captured oplog of `cluster`. */
  async replicaSets(cluster: string): Promise<string[]> {
    return (await this.repo.storage.listChildren(pitrLayout.cluster(cluster))).sort();
  }

  /** The clusters with captured oplog. */
  async clusters(): Promise<string[]> {
    return (await this.repo.storage.listChildren(PITR_DIR)).sort();
  }

  /** The segment paths of one replica set, oldest first (by first timestamp). */
  async paths(cluster: string, rs: string, fromDay?: string): Promise<string[]> {
    const dir = pitrLayout.replicaSet(cluster, rs);
    const days = (await this.repo.storage.listChildren(dir)).filter((d) => /^\d{6}$/.test(d) && (fromDay === undefined || d >= fromDay)).sort();
    const out: string[] = [];
    for (const day of days) {
      const names = (await this.repo.storage.listChildren(`${dir}/${day}`)).filter((n) => SEGMENT_NAME.test(n)).sort();
      out.push(...names.map((n) => `${dir}/${day}/${n}`));
    }
    return out;
  }

  async read(path: string): Promise<OplogSegment> {
    return parseSegment(await this.repo.storage.readFile(path), `${this.repo.location}/${path}`);
  }

  /** Every segment of one replica set, oldest first. */
  async list(cluster: string, rs: string): Promise<OplogSegment[]> {
    const out: OplogSegment[] = [];
    for (const p of await this.paths(cluster, rs)) out.push(await this.read(p));
    return out;
  }

  /** The newest segment of one replica set (where a capture resumes), or undefined before the first seal. */
  async last(cluster: string, rs: string): Promise<OplogSegment | undefined> {
    const dir = pitrLayout.replicaSet(cluster, rs);
    const days = (await this.repo.storage.listChildren(dir)).filter((d) => /^\d{6}$/.test(d)).sort().reverse();
    for (const day of days) {
      const names = (await this.repo.storage.listChildren(`${dir}/${day}`)).filter((n) => SEGMENT_NAME.test(n)).sort();
      const newest = names.at(-1);
      if (newest) return this.read(`${dir}/${day}/${newest}`);
    }
    return undefined;
  }

  /**
   * Seals `docs` (raw BSON oplog entries in oplog order, `first` and `last` their timestamps): the chunks into a pack
   * and its index, then the record. Returns the record.
   */
  async seal(input: { cluster: string; replicaSet: string; docs: Buffer[]; first: Ts; last: Ts; prev: Ts | null; gap?: { from: Ts; to: Ts }; node: string; now?: Date }): Promise<OplogSegment> {
    if (!input.docs.length) throw new CutpointError('INTERNAL', 'an oplog segment needs at least one entry');
    // The capture's chunks are new by construction (each holds its entries' timestamps): no lookup in the
    // repository's whole index, only this writer's own.
    const writer = new ChunkWriter(new ChunkIndex(), new PackWriter(this.repo.storage), await this.repo.chunkHasher(), Number.POSITIVE_INFINITY);
    const chunks: ChunkId[] = [];
    let bytes = 0;
    for (const plain of packDocuments(input.docs)) {
      const id = await writer.hash(plain);
      await writer.store(id, plain);
      chunks.push(id);
      bytes += plain.length;
    }
    await writer.flush();
    const seg: OplogSegment = {
      format: OPLOG_SEGMENT_FORMAT,
      cluster: input.cluster,
      replicaSet: input.replicaSet,
      first: input.first,
      last: input.last,
      prev: input.prev,
      ...(input.gap ? { gap: input.gap } : {}),
      count: input.docs.length,
      bytes,
      chunks,
      node: input.node,
      sealedAt: (input.now ?? new Date()).toISOString(),
    };
    await this.repo.storage.writeFile(pitrLayout.segment(input.cluster, input.replicaSet, input.first, input.last), `${JSON.stringify(seg)}\n`);
    return seg;
  }

  /** The raw BSON entries of a segment, read through the repository's index (each chunk checked against its id). */
  async entries(seg: OplogSegment, index?: ChunkIndex): Promise<Buffer[]> {
    const reader = new ChunkReader(this.repo.storage, index ?? (await this.repo.chunkIndex(true)), await this.repo.chunkHasher());
    const out: Buffer[] = [];
    for (const c of seg.chunks) out.push(...splitDocuments(await reader.read(c)));
    return out;
  }

  /** The gaps of every replica set of `cluster`, as the status reports them. */
  async gaps(cluster: string): Promise<PitrGap[]> {
    const out: PitrGap[] = [];
    for (const rs of await this.replicaSets(cluster)) for (const g of summarizeChain(await this.list(cluster, rs)).gaps) out.push({ replicaSet: rs, ...g });
    return out;
  }
}
