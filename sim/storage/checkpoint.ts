import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { BlockFile } from './blocks.ts';
import type { BlockRef } from './blocks.ts';
import { SystemIdents, parseCatalogDoc } from './catalog.ts';
import { removeEmptyParents, syncDir } from './dbfiles.ts';
import type { Journal } from './journal.ts';
import { withWrittenChunks } from './backup-ids.ts';
import { blocksOf, encodeMeta, sortTables } from './metadata.ts';
import type { CheckpointMeta, TableMeta } from './metadata.ts';
import { lowerBound } from './mvcc.ts';
import type { ReadAt } from './mvcc.ts';
import { splitEntries } from './pages.ts';
import type { PageState } from './pages.ts';
import type { Store, Table } from './store.ts';
import type { Ts } from './timestamps.ts';
import { writeTurtle } from './turtle.ts';

/** A checkpoint's metadata plus where that metadata itself sits in `WiredTiger.wt`. */
export interface DurableCheckpoint {
  readonly meta: CheckpointMeta;
  readonly metaBlocks: readonly BlockRef[];
}

/** Page index holding `key` given the pages' sorted `lo`s: the last page whose `lo <= key`. */
function pageIndex(los: readonly string[], key: string): number {
  const i = lowerBound(los, key);
  return los[i] === key ? i : Math.max(0, i - 1);
}

const EMPTY_PAGE: PageState = { lo: '', blocks: [], hash: '', records: 0, bytes: 0 };

interface Staged {
  readonly table: Table;
  readonly pages: PageState[];
  /** Dirty keys the checkpoint did not capture (versions newer than its timestamp). */
  readonly stillDirty: string[];
}

/**
 * Writes checkpoints and owns the block files. Invariants (see README): a checkpoint writes only into free blocks;
 * the newest durable checkpoint's blocks and a pinned checkpoint's blocks are never free; the turtle switch is the
 * commit point, and nothing is freed or removed before it.
 */
export class Checkpointer {
  private readonly files = new Map<string, BlockFile>();
  private durableCkpt: DurableCheckpoint;
  private pinnedCkpt: DurableCheckpoint | null = null;
  /** Files written by the checkpoint in progress, which need an fsync before the metadata. */
  private readonly written = new Set<string>();
  /** Whether the checkpoint in progress created a file, which needs an fsync of the dbpath. */
  private created = false;
  /**
   * The granularity-sized chunks of each file the running checkpoint wrote blocks into, when incremental backup ids
   * are registered (null otherwise): added to every id's modified-block bitmap, as WiredTiger's checkpoint does.
   */
  private chunksWritten: { granularity: number; files: Map<string, Set<number>> } | null = null;

  constructor(
    private readonly dbpath: string,
    private readonly metaFile: BlockFile,
    durable: DurableCheckpoint,
    files: Iterable<BlockFile>,
    private readonly pageTarget: number,
    /** fsync at each durability point; false survives a killed process but not a power loss. */
    private readonly fsync: boolean,
  ) {
    this.durableCkpt = durable;
    for (const f of files) this.files.set(f.name, f);
  }

  /** The newest durable checkpoint. */
  get durable(): CheckpointMeta {
    return this.durableCkpt.meta;
  }

  /** The pinned checkpoint, if any. */
  get pinned(): CheckpointMeta | null {
    return this.pinnedCkpt?.meta ?? null;
  }

  /**
   * Takes a checkpoint: data tables at the stable timestamp (or everything when `unstable` or no stable timestamp is
   * set), logged tables with everything. Returns the new durable metadata.
   */
  run(store: Store, journal: Journal, unstable: boolean): CheckpointMeta {
    const timestamp = unstable ? null : store.stable;
    const at: ReadAt = timestamp ?? undefined;
    const gen = this.durable.generation + 1;
    this.written.clear();
    this.created = false;
    this.chunksWritten = store.backupIds ? { granularity: store.backupIds.granularity, files: new Map() } : null;
    try {
      return this.runStaged(store, journal, timestamp, at, gen);
    } finally {
      // Also when the checkpoint fails part-way: the blocks it wrote are in the files.
      if (store.backupIds && this.chunksWritten) store.backupIds = withWrittenChunks(store.backupIds, this.chunksWritten.files);
      this.chunksWritten = null;
    }
  }

  private runStaged(store: Store, journal: Journal, timestamp: Ts | null, at: ReadAt, gen: number): CheckpointMeta {
    const catalog = [...store.catalog.data.scan(at)].map(([, doc]) => parseCatalogDoc(doc));
    const collections = catalog.map((c) => c.ident);
    const indexes = catalog.flatMap((c) => (c.idIndexIdent ? [c.idIndexIdent] : []));
    // Keys that may read differently at a later checkpoint stay dirty: those with versions after the lowest point a
    // later checkpoint can be taken at (this one's timestamp; for an unstable one, the stable or oldest timestamp).
    const floor = timestamp ?? store.stable ?? store.oldest ?? -1n;
    const staged = new Map<string, Staged>();
    const stage = (ident: string): Staged => {
      const table = store.tables.get(ident);
      if (!table) throw new Error(`checkpoint: table ${ident} is in the catalog but not in memory`);
      const s = table.logged ? this.writeTable(table, undefined, gen, null) : this.writeTable(table, at, gen, floor);
      staged.set(ident, s);
      return s;
    };
    for (const ident of [...collections, ...indexes]) stage(ident);
    // sizeStorer is derived from the collection pages just written, so it goes after them.
    const sizes = store.sizeStorer.data;
    const live = new Set(collections);
    for (const ident of collections) {
      const { table, pages } = staged.get(ident) as Staged;
      // A table never read since its checkpoint keeps that checkpoint's pages, which its sizeStorer entry describes.
      if (!table.loaded) continue;
      const numRecords = pages.reduce((n, p) => n + p.records, 0);
      const dataSize = pages.reduce((n, p) => n + p.bytes, 0);
      const old = sizes.read(ident, undefined);
      if (old?.numRecords !== numRecords || old.dataSize !== dataSize) sizes.write(ident, { numRecords, dataSize }, null);
    }
    for (const [ident] of sizes.scan(undefined)) if (!live.has(ident)) sizes.write(ident, null, null);
    for (const ident of Object.values(SystemIdents)) stage(ident);

    for (const name of this.written) this.files.get(name)?.sync();
    if (this.created) syncDir(this.dbpath, this.fsync);
    // The bitmaps this checkpoint's metadata records include its own writes.
    if (store.backupIds && this.chunksWritten) store.backupIds = withWrittenChunks(store.backupIds, this.chunksWritten.files);
    if (this.chunksWritten) this.chunksWritten.files = new Map();
    const tables = sortTables(
      [...staged.values()].map((s): TableMeta => ({
        file: s.table.file,
        fileId: s.table.fileId,
        logged: s.table.logged,
        pages: s.pages.map((p) => ({ lo: p.lo, blocks: p.blocks })),
      })),
    );
    const meta: CheckpointMeta = {
      generation: gen,
      timestamp,
      appliedThrough: store.lastApplied,
      journal: journal.position(),
      blockSize: this.metaFile.blockSize,
      nextFileId: store.nextFileId,
      nextIdent: store.nextIdent,
      wallTime: new Date(),
      tables,
      backupIds: store.backupIds,
    };
    const metaBlocks = this.writeMeta(meta);
    this.commit(store, journal, { meta, metaBlocks }, staged);
    return meta;
  }

  /** Serializes the metadata into `WiredTiger.wt` and switches the turtle to it: the commit point. */
  private writeMeta(meta: CheckpointMeta): BlockRef[] {
    const payload = encodeMeta(meta);
    const refs = this.metaFile.writeChain(payload, meta.generation);
    this.metaFile.sync();
    writeTurtle(
      this.dbpath,
      { generation: meta.generation, blockSize: meta.blockSize, blocks: refs, length: payload.length, crc: crc32(payload) },
      this.fsync,
    );
    return refs;
  }

  /** Writes the changed pages of one table copy-on-write; unchanged pages keep their blocks. */
  private writeTable(table: Table, at: ReadAt, gen: number, floor: Ts | null): Staged {
    // Unread since the checkpoint it came from: unchanged, its pages and blocks stay as they are.
    if (!table.loaded) return { table, pages: table.pages, stillDirty: [] };
    const pages = table.pages.length > 0 ? table.pages : [EMPTY_PAGE];
    const dirty = new Set<number>();
    if (table.pages.length === 0) dirty.add(0);
    const los = pages.map((p) => p.lo);
    for (const key of table.data.dirty) dirty.add(pageIndex(los, key));
    let file = this.files.get(table.file);
    const out: PageState[] = [];
    pages.forEach((page, i) => {
      if (!dirty.has(i)) {
        out.push(page);
        return;
      }
      const entries = [...table.data.scan(at, page.lo, pages[i + 1]?.lo, true)];
      if (entries.length === 0 && out.length > 0) return; // merges into the left neighbour's range
      for (const piece of splitEntries(page.lo, entries, this.pageTarget)) {
        if (piece.lo === page.lo && piece.hash === page.hash) {
          out.push(page);
          continue;
        }
        file ??= this.createFile(table);
        const blocks = file.writeChain(piece.payload, gen);
        this.written.add(table.file);
        this.noteChunks(table.file, blocks);
        out.push({ lo: piece.lo, blocks, hash: piece.hash, records: piece.records, bytes: piece.bytes });
      }
    });
    file ??= this.createFile(table);
    const stillDirty = floor === null ? [] : [...table.data.dirty].filter((k) => table.data.hasVersionAfter(k, floor));
    return { table, pages: out, stillDirty };
  }

  /** Records the chunks `blocks` of `file` fall in (a block may straddle two when the granularity is not a multiple). */
  private noteChunks(file: string, blocks: readonly BlockRef[]): void {
    const w = this.chunksWritten;
    if (!w) return;
    let set = w.files.get(file);
    if (!set) w.files.set(file, (set = new Set()));
    const size = this.metaFile.blockSize;
    for (const { block } of blocks) {
      set.add(Math.floor((block * size) / w.granularity));
      set.add(Math.floor((block * size + size - 1) / w.granularity));
    }
  }

  private createFile(table: Table): BlockFile {
    const file = BlockFile.create(this.dbpath, table.file, table.fileId, this.metaFile.blockSize, this.fsync);
    this.files.set(table.file, file);
    this.created = true;
    return file;
  }

  /**
   * A new table's file, created with the table as WiredTiger creates it: just its descriptor block until a checkpoint
   * writes pages. Backup cursors list it from then on (pin.ts).
   */
  createTableFile(table: Table): void {
    if (this.files.has(table.file)) return;
    this.createFile(table);
    this.created = false;
    syncDir(this.dbpath, this.fsync);
  }

  /** Files of tables that exist but are in no checkpoint yet (created since the newest one). */
  uncheckpointedFiles(store: Store): string[] {
    const inCheckpoint = new Set(this.durable.tables.map((t) => t.file));
    const out: string[] = [];
    for (const info of store.listCollections(undefined)) {
      for (const ident of [info.ident, info.idIndexIdent]) {
        const file = ident === undefined ? undefined : store.tables.get(ident)?.file;
        if (file !== undefined && !inCheckpoint.has(file) && this.files.has(file)) out.push(file);
      }
    }
    return out;
  }

  /** After the turtle switch: free what only the previous checkpoint used, drop dead tables, prune, remove logs. */
  private commit(store: Store, journal: Journal, next: DurableCheckpoint, staged: Map<string, Staged>): void {
    const prev = this.durableCkpt;
    this.durableCkpt = next;
    for (const s of staged.values()) {
      if (!s.table.loaded) continue;
      s.table.pages = s.pages;
      s.table.data.dirty.clear();
      for (const k of s.stillDirty) s.table.data.dirty.add(k);
    }
    const pinned = this.pinnedCkpt;
    for (const table of prev.meta.tables) {
      const keep = new Set([...blocksOf(next.meta, table.file), ...blocksOf(pinned?.meta ?? null, table.file)]);
      this.files.get(table.file)?.release([...blocksOf(prev.meta, table.file)].filter((b) => !keep.has(b)));
    }
    const metaKeep = new Set([...next.metaBlocks, ...(pinned?.metaBlocks ?? [])].map((r) => r.block));
    this.metaFile.release(prev.metaBlocks.map((r) => r.block).filter((b) => !metaKeep.has(b)));

    for (const table of store.tables.values()) if (table.loaded) table.data.prune(store.oldest);
    // A table leaves memory once no catalog version still held (so no read at or after the oldest timestamp, and no
    // later checkpoint) and not the new checkpoint refers to it.
    const referenced = new Set<string>([...Object.values(SystemIdents), ...next.meta.tables.map((t) => t.file)]);
    for (const doc of store.catalog.data.allValues()) {
      const info = parseCatalogDoc(doc);
      referenced.add(`${info.ident}.wt`);
      if (info.idIndexIdent) referenced.add(`${info.idIndexIdent}.wt`);
    }
    for (const [ident, table] of store.tables) if (!referenced.has(table.file)) store.tables.delete(ident);
    this.collectFiles(store);
    if (!pinned) journal.removeBefore(next.meta.journal.file);
  }

  /** Closes and deletes block files no checkpoint (durable or pinned) and no live table refers to. */
  private collectFiles(store: Store): void {
    const keep = new Set<string>();
    for (const t of this.durable.tables) keep.add(t.file);
    for (const t of this.pinned?.tables ?? []) keep.add(t.file);
    for (const t of store.tables.values()) keep.add(t.file);
    for (const [name, file] of this.files) {
      if (keep.has(name)) continue;
      file.close();
      this.files.delete(name);
      fs.rmSync(path.join(this.dbpath, name), { force: true });
      removeEmptyParents(this.dbpath, name);
    }
  }

  /** Pins the newest durable checkpoint: its blocks stay allocated until {@link unpin}. */
  pin(): CheckpointMeta {
    this.pinnedCkpt = this.durableCkpt;
    return this.durableCkpt.meta;
  }

  /** Releases the pin: blocks only the pinned checkpoint used become free; files only it used are deleted. */
  unpin(store: Store): void {
    const pinned = this.pinnedCkpt;
    if (!pinned) return;
    this.pinnedCkpt = null;
    for (const table of pinned.meta.tables) {
      const keep = blocksOf(this.durable, table.file);
      this.files.get(table.file)?.release([...blocksOf(pinned.meta, table.file)].filter((b) => !keep.has(b)));
    }
    const metaKeep = new Set(this.durableCkpt.metaBlocks.map((r) => r.block));
    this.metaFile.release(pinned.metaBlocks.map((r) => r.block).filter((b) => !metaKeep.has(b)));
    this.collectFiles(store);
  }

  /** Closes every file handle. */
  close(): void {
    for (const f of this.files.values()) f.close();
    this.files.clear();
    this.metaFile.close();
  }
}

