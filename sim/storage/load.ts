import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { withWrittenChunks } from './backup-ids.ts';
import { BlockFile } from './blocks.ts';
import { SystemIdents } from './catalog.ts';
import { Checkpointer } from './checkpoint.ts';
import { Files, listIdentFiles, removeEmptyParents, removeIfExists, syncDir } from './dbfiles.ts';
import { StorageCodes, StorageError } from './errors.ts';
import { tsFromKey } from './keys.ts';
import { blocksOf, decodeMeta, encodeMeta } from './metadata.ts';
import type { CheckpointMeta } from './metadata.ts';
import { decodePage, encodePage, pageHash } from './pages.ts';
import type { PageState } from './pages.ts';
import { Store } from './store.ts';
import { readBackupFile, readTurtle, writeTurtle } from './turtle.ts';

/**
 * Loading a checkpoint: turtle → metadata chain in `WiredTiger.wt` → the header of every block of every page, checked
 * against the (block, generation, checksum) the metadata recorded; a table's pages are read, checksummed and decoded on
 * its first access (store.ts `Table.data`). Also the two ways a dbpath gets its first turtle:
 * a fresh engine, and a restored backup rebuilt from `WiredTiger.backup`.
 */

/** A loaded checkpoint: the block-file owner and the in-memory tables at the checkpoint. */
export interface Loaded {
  readonly checkpointer: Checkpointer;
  readonly store: Store;
  readonly meta: CheckpointMeta;
}

/** Loads and verifies the checkpoint the turtle points to. Throws StorageError naming file, block and generation. */
export function loadCheckpoint(dbpath: string, pageTarget: number, fsync: boolean): Loaded {
  const turtle = readTurtle(dbpath);
  if (!turtle) throw new StorageError(StorageCodes.NonExistentPath, `${Files.turtle} is missing`);
  const metaFile = BlockFile.open(dbpath, Files.metadata, 0, turtle.blockSize, turtle.generation, fsync);
  const opened: BlockFile[] = [];
  try {
    const payload = metaFile.readChain(turtle.blocks);
    if (payload.length !== turtle.length || crc32(payload) !== turtle.crc) {
      throw new StorageError(
        StorageCodes.DataCorruptionDetected,
        `${Files.metadata}: metadata of checkpoint generation ${turtle.generation} does not match the turtle`,
      );
    }
    const meta = decodeMeta(payload);
    const store = new Store(meta.nextFileId, meta.nextIdent);
    const stray = new Map<string, Set<number>>();
    for (const tm of meta.tables) {
      const file = BlockFile.open(dbpath, tm.file, tm.fileId, meta.blockSize, meta.generation, fsync);
      opened.push(file);
      // Every page's block headers now: a block another checkpoint reused or left stale stops the start, naming it.
      for (const page of tm.pages) file.checkChainHeaders(page.blocks);
      const table = store.addTable(tm.file.replace(/\.wt$/, ''), tm.fileId, tm.logged, (data, t) => {
        // The pages themselves on the table's first access; until then it is unchanged and its pages are the
        // checkpoint's (the checkpointer keeps them and their blocks as they are).
        t.pages = tm.pages.map((page): PageState => {
          const bytes = file.readChain(page.blocks);
          const entries = decodePage(bytes);
          const facts = encodePage(page.lo, entries);
          for (const [key, value] of entries) data.loadBase(key, value, tm.logged ? tsFromKey(key) : null);
          return { lo: page.lo, blocks: page.blocks, hash: pageHash(bytes), records: facts.records, bytes: facts.bytes };
        });
      });
      table.pages = tm.pages.map((page): PageState => ({ lo: page.lo, blocks: page.blocks, hash: '', records: 0, bytes: 0 }));
      file.setFree(blocksOf(meta, tm.file));
      if (meta.backupIds) {
        // A checkpoint that never completed wrote blocks the bitmaps it would have recorded miss: every id gets them.
        const g = meta.backupIds.granularity;
        const chunks = new Set(file.strayWritesAfter(meta.generation).flatMap((off) => [Math.floor(off / g), Math.floor((off + meta.blockSize - 1) / g)]));
        if (chunks.size > 0) stray.set(tm.file, chunks);
      }
    }
    for (const ident of Object.values(SystemIdents)) {
      if (!store.tables.has(ident)) {
        throw new StorageError(StorageCodes.DataCorruptionDetected, `checkpoint generation ${meta.generation} has no ${ident}.wt`);
      }
    }
    metaFile.setFree(new Set(turtle.blocks.map((b) => b.block)));
    store.stable = meta.timestamp;
    store.backupIds = meta.backupIds ? withWrittenChunks(meta.backupIds, stray) : null;
    // A checkpoint keeps no history: nothing below the point it was taken at can be read.
    store.oldest = meta.timestamp ?? meta.appliedThrough;
    store.lastApplied = meta.timestamp ?? meta.appliedThrough;
    const durable = { meta, metaBlocks: turtle.blocks };
    const checkpointer = new Checkpointer(dbpath, metaFile, durable, opened, pageTarget, fsync);
    return { checkpointer, store, meta };
  } catch (err) {
    for (const f of opened) f.close();
    metaFile.close();
    throw err;
  }
}

/**
 * Deletes the ident files (`collection-*.wt`, `index-*.wt`, and their forms in subdirectories) the loaded checkpoint
 * does not know (mongod drops unknown idents), and the directories that leaves empty.
 */
export function removeOrphanIdents(dbpath: string, meta: CheckpointMeta): string[] {
  const known = new Set(meta.tables.map((t) => t.file));
  const orphans = listIdentFiles(dbpath).filter((n) => !known.has(n));
  for (const name of orphans) {
    fs.rmSync(path.join(dbpath, name), { force: true });
    removeEmptyParents(dbpath, name);
  }
  return orphans;
}

/**
 * A restored dbpath: rebuilds `WiredTiger.wt` and the turtle from `WiredTiger.backup`, then removes it. The turtle
 * goes first and comes back last, so a crash part-way leaves `WiredTiger.backup` to start over from.
 */
export function rebuildFromBackup(dbpath: string, fsync: boolean): CheckpointMeta {
  const meta = readBackupFile(dbpath);
  removeIfExists(path.join(dbpath, Files.turtle));
  const metaFile = BlockFile.create(dbpath, Files.metadata, 0, meta.blockSize, fsync);
  try {
    const payload = encodeMeta(meta);
    const blocks = metaFile.writeChain(payload, meta.generation);
    metaFile.sync();
    const info = { generation: meta.generation, blockSize: meta.blockSize, length: payload.length, crc: crc32(payload) };
    writeTurtle(dbpath, { ...info, blocks }, fsync);
  } finally {
    metaFile.close();
  }
  removeIfExists(path.join(dbpath, Files.backup));
  syncDir(dbpath, fsync);
  return meta;
}
