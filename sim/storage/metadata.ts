import { BSON } from 'mongodb';
import type { Document, Timestamp } from 'mongodb';
import type { BackupIds } from './backup-ids.ts';
import { backupIdsDoc, parseBackupIdsDoc } from './backup-ids.ts';
import type { BlockRef } from './blocks.ts';
import type { PageMeta } from './pages.ts';
import { BSON_READ } from './pages.ts';
import { fromTs, isTimestamp, toTs } from './timestamps.ts';
import type { Ts } from './timestamps.ts';

/**
 * The checkpoint's metadata: what `WiredTiger.wt` holds for one checkpoint (and `WiredTiger.backup` dumps). It is
 * everything recovery needs besides the data blocks themselves: every table's file, file id and page → block list
 * (each block with the generation that wrote it and its checksum), the checkpoint's timestamp and generation, and the
 * journal position recovery replays from.
 */

/** A byte position in the journal: log file number and offset of the next record. */
export interface LogPosition {
  readonly file: number;
  readonly offset: number;
}

/** One table of a checkpoint. */
export interface TableMeta {
  /** File name relative to the dbpath, e.g. `collection-4-817.wt`. */
  readonly file: string;
  readonly fileId: number;
  /** Logged tables (the oplog) are checkpointed with everything committed, regardless of the stable timestamp. */
  readonly logged: boolean;
  readonly pages: readonly PageMeta[];
}

/** One checkpoint. */
export interface CheckpointMeta {
  readonly generation: number;
  /** Stable timestamp the data tables were written at; null for an unstable checkpoint (everything committed). */
  readonly timestamp: Ts | null;
  /** Newest oplog entry applied to the data tables, when known: where an unstable checkpoint resumes from. */
  readonly appliedThrough: Ts | null;
  /** Journal position at the checkpoint; every oplog entry not in the checkpoint was journaled after it. */
  readonly journal: LogPosition;
  readonly blockSize: number;
  readonly nextFileId: number;
  readonly nextIdent: number;
  readonly wallTime: Date;
  /** Tables in metadata key order (`file:<name>`), which is also WiredTiger's backup order. */
  readonly tables: readonly TableMeta[];
  /**
   * The incremental backup ids registered when the checkpoint was taken (backup-ids.ts). Only in `WiredTiger.wt`:
   * `WiredTiger.backup` leaves them out, so a restored dbpath has none.
   */
  readonly backupIds?: BackupIds | null;
}

/** Metadata key of a table file, as WiredTiger spells it. */
export function metadataKey(file: string): string {
  return `file:${file}`;
}

/** Sorts tables into metadata key order. */
export function sortTables<T extends { readonly file: string }>(tables: T[]): T[] {
  return tables.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
}

function tsField(ts: Ts | null): Timestamp | null {
  return ts === null ? null : fromTs(ts);
}

function readTs(value: unknown): Ts | null {
  if (value === null || value === undefined) return null;
  if (!isTimestamp(value)) throw new Error('metadata timestamp is not a Timestamp');
  return toTs(value);
}

function num(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'object' && value !== null && typeof (value as { toNumber?: unknown }).toNumber === 'function') {
    return (value as { toNumber(): number }).toNumber();
  }
  throw new Error(`metadata field is not a number: ${String(value)}`);
}

/** The checkpoint's own fields (everything but the tables) as a document. */
export function checkpointDoc(meta: CheckpointMeta): Document {
  return {
    generation: meta.generation,
    timestamp: tsField(meta.timestamp),
    appliedThrough: tsField(meta.appliedThrough),
    journal: { file: meta.journal.file, offset: meta.journal.offset },
    blockSize: meta.blockSize,
    nextFileId: meta.nextFileId,
    nextIdent: meta.nextIdent,
    wallTime: meta.wallTime,
  };
}

/** A table entry as a document; blocks are `[block, generation, checksum]` triples to keep the metadata small. */
export function tableDoc(table: TableMeta): Document {
  return {
    file: table.file,
    fileId: table.fileId,
    logged: table.logged,
    pages: table.pages.map((p) => ({ lo: p.lo, b: p.blocks.map((r) => [r.block, r.gen, r.crc]) })),
  };
}

/** Parses {@link tableDoc}. */
export function parseTableDoc(doc: Document): TableMeta {
  const pages = (doc.pages as Document[]).map((p) => ({
    lo: String(p.lo),
    blocks: (p.b as unknown[][]).map((r): BlockRef => ({ block: num(r[0]), gen: num(r[1]), crc: num(r[2]) })),
  }));
  return { file: String(doc.file), fileId: num(doc.fileId), logged: doc.logged === true, pages };
}

/** Parses {@link checkpointDoc} plus a table list. */
export function parseCheckpointDoc(doc: Document, tables: TableMeta[]): CheckpointMeta {
  const journal = doc.journal as Document;
  return {
    generation: num(doc.generation),
    timestamp: readTs(doc.timestamp),
    appliedThrough: readTs(doc.appliedThrough),
    journal: { file: num(journal.file), offset: num(journal.offset) },
    blockSize: num(doc.blockSize),
    nextFileId: num(doc.nextFileId),
    nextIdent: num(doc.nextIdent),
    wallTime: doc.wallTime instanceof Date ? doc.wallTime : new Date(0),
    tables,
  };
}

/** The BSON payload stored in `WiredTiger.wt`. */
export function encodeMeta(meta: CheckpointMeta): Uint8Array {
  const doc: Document = { checkpoint: checkpointDoc(meta), tables: meta.tables.map(tableDoc) };
  if (meta.backupIds) doc.checkpointBackupInfo = backupIdsDoc(meta.backupIds);
  return BSON.serialize(doc);
}

/** Inverse of {@link encodeMeta}. */
export function decodeMeta(payload: Uint8Array): CheckpointMeta {
  const doc = BSON.deserialize(payload, BSON_READ);
  const meta = parseCheckpointDoc(doc.checkpoint as Document, (doc.tables as Document[]).map(parseTableDoc));
  return { ...meta, backupIds: parseBackupIdsDoc(doc.checkpointBackupInfo as Document | undefined) };
}

/** Tables of a checkpoint by file name, built once per (immutable) metadata: a search per table is quadratic. */
const tablesByFile = new WeakMap<CheckpointMeta, Map<string, TableMeta>>();

/** The table of `meta` stored in `file`, if any. */
export function tableOf(meta: CheckpointMeta, file: string): TableMeta | undefined {
  let index = tablesByFile.get(meta);
  if (!index) {
    index = new Map(meta.tables.map((t) => [t.file, t]));
    tablesByFile.set(meta, index);
  }
  return index.get(file);
}

/** Every block number a checkpoint references in `file`. */
export function blocksOf(meta: CheckpointMeta | null, file: string): Set<number> {
  const used = new Set<number>();
  const table = meta ? tableOf(meta, file) : undefined;
  for (const page of table?.pages ?? []) for (const ref of page.blocks) used.add(ref.block);
  return used;
}
