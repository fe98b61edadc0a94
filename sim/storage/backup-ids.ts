/**
 * The incremental backup ids a node has registered, persisted as WiredTiger persists its `WT_BLKINCR` slots: in the
 * metadata of every checkpoint (WiredTiger's `checkpoint_backup_info` on the metadata file's own entry, read back by
 * `__wt_backup_open` in src/cursor/cur_backup.c at startup). So a clean shutdown (whose final checkpoint writes them)
 * keeps them, and a crash keeps those of the last durable checkpoint: an id registered after it is lost, and an id it
 * replaced comes back.
 *
 * `WiredTiger.backup` does not carry them (WiredTiger writes there the metadata table's entries, not the metadata
 * file's own), so a restored dbpath starts with none. docs/psmdb-behaviour.md section 5.
 */
import { Binary } from 'mongodb';
import type { Document } from 'mongodb';

/** One registered id. */
export interface BackupId {
  readonly name: string;
  /**
   * Generation of the checkpoint the registering backup pinned: the blocks changed since are those a later generation
   * wrote (what WiredTiger records as each file's modified-block bitmap for the id, checkpoint by checkpoint).
   */
  readonly generation: number;
  /** The data files (relative paths) that backup listed: any other file is new since, and is listed whole. */
  readonly files: readonly string[];
  /**
   * The modified-block bitmap of each of those files (WiredTiger's per-file `block_mods` for the id): the numbers of
   * the granularity-sized chunks holding a block some checkpoint wrote since the id was registered. A file without an
   * entry has had nothing written. Kept by the checkpointer (checkpoint.ts), persisted with the ids.
   */
  readonly mods: ReadonlyMap<string, ReadonlySet<number>>;
}

/** The ids and their granularity; slots hold at most `WT_BLKINCR_MAX` ids, oldest slot first. */
export interface BackupIds {
  /** Bytes; fixed while any id is registered (`conn->incr_granularity`). */
  readonly granularity: number;
  /** Slot contents; `null` is a free slot. */
  readonly slots: ReadonlyArray<BackupId | null>;
}

/** A chunk set as a bitmap, bit k of byte k >> 3 for chunk k (WiredTiger writes its bitmaps as hex strings). */
function toBitmap(chunks: ReadonlySet<number>): Binary {
  let top = -1;
  for (const c of chunks) top = Math.max(top, c);
  const bits = Buffer.alloc(Math.ceil((top + 1) / 8));
  for (const c of chunks) bits[c >> 3]! |= 1 << (c & 7);
  return new Binary(bits);
}

function fromBitmap(value: unknown): Set<number> {
  const bits = value instanceof Binary ? value.buffer : (value as Uint8Array);
  const chunks = new Set<number>();
  for (let i = 0; i < bits.length; i++) for (let b = 0; b < 8; b++) if (bits[i]! & (1 << b)) chunks.add(i * 8 + b);
  return chunks;
}

/** The persisted form: the registered ids in slot order (WiredTiger writes only valid slots and refills from 0). */
export function backupIdsDoc(ids: BackupIds): Document {
  return {
    granularity: ids.granularity,
    ids: ids.slots.flatMap((s) =>
      s ? [{ name: s.name, generation: s.generation, files: [...s.files], mods: [...s.mods].map(([file, chunks]) => ({ file, bits: toBitmap(chunks) })) }] : [],
    ),
  };
}

/**
 * `ids` with `written` (file → chunk numbers a checkpoint wrote) added to every id's bitmaps; `ids` itself when
 * nothing was written.
 */
export function withWrittenChunks(ids: BackupIds, written: ReadonlyMap<string, ReadonlySet<number>>): BackupIds {
  if (written.size === 0) return ids;
  const slots = ids.slots.map((slot) => {
    if (!slot) return slot;
    const mods = new Map(slot.mods);
    for (const [file, chunks] of written) mods.set(file, new Set([...(mods.get(file) ?? []), ...chunks]));
    return { ...slot, mods };
  });
  return { ...ids, slots };
}

function num(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'object' && value !== null && typeof (value as { toNumber?: unknown }).toNumber === 'function') {
    return (value as { toNumber(): number }).toNumber();
  }
  throw new Error(`backup ids: not a number: ${String(value)}`);
}

/** Parses {@link backupIdsDoc}; no ids means no incremental history (and no granularity). */
export function parseBackupIdsDoc(doc: Document | undefined | null): BackupIds | null {
  const list = (doc?.ids as Document[] | undefined) ?? [];
  if (!doc || list.length === 0) return null;
  const slots = list.map((d): BackupId => ({
    name: String(d.name),
    generation: num(d.generation),
    files: (d.files as unknown[]).map(String),
    mods: new Map(((d.mods as Document[] | undefined) ?? []).map((m) => [String(m.file), fromBitmap(m.bits)])),
  }));
  return { granularity: num(doc.granularity), slots };
}
