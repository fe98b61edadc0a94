/**
 * The documents of a `$backupCursor` (docs/psmdb-behaviour.md sections 2.2–2.4): the metadata first, then the files
 * pulled lazily 100 at a time as PSMDB's stage pulls them from WiredTiger, each batch's sizes read when it is pulled.
 * Log files an extend already returned are skipped, and log files the stream emits are remembered for the extends.
 * After the last file the source reports "nothing now", which the tailable cursor turns into empty batches.
 */
import path from 'node:path';
import fs from 'node:fs';
import type { Document } from 'mongodb';
import { Long } from 'mongodb';
import type { BackupFile } from '../../storage/index.ts';
import { CommandError } from '../../wire/index.ts';
import type { CursorSource } from '../cursors.ts';
import type { SimNode } from '../types.ts';
import { changedRanges, einval } from './incremental.ts';
import { filePath } from './paths.ts';
import type { OpenBackup } from './open-backup.ts';

/** `getNextBatch(100)`. */
const WT_BATCH = 100;

function fileSize(abs: string): number {
  try {
    return fs.statSync(abs).size;
  } catch (e) {
    throw new CommandError(31403, `Failed to get a file's size. Filename: ${abs} Error: ${(e as Error).message}`);
  }
}

function whole(filename: string, size: number): Document {
  return { filename, fileSize: Long.fromNumber(size) };
}

function block(filename: string, offset: number, length: number, size: number): Document {
  return { filename, offset: Long.fromNumber(offset), length: Long.fromNumber(length), fileSize: Long.fromNumber(size) };
}

/** The documents of one file: `{filename, fileSize}`, or its blocks `{filename, offset, length, fileSize}`. */
function documentsOf(node: SimNode, open: OpenBackup, file: BackupFile): Document[] {
  const filename = filePath(node.dbpath, file.path);
  const size = fileSize(path.join(node.dbpath, file.path));
  const plan = open.incremental;
  if (!plan) return [whole(filename, size)];
  // PSMDB opens a duplicate cursor per file, which WiredTiger refuses when the primary cursor has no source.
  if (plan.emptySource) throw einval();
  const source = plan.source;
  if (source && file.kind === 'data' && plan.sourceFiles.has(file.path)) {
    const ranges = changedRanges(source, file.path, plan.granularity);
    // Unchanged: offset and length 0, which the two-field form says (a file absent from the list was deleted).
    if (ranges.length === 0) return [whole(filename, size)];
    return ranges.map((r) => block(filename, r.offset, r.length, size));
  }
  // A base backup, a file new since the source, a WiredTiger-owned file (log files, `WiredTiger.backup`,
  // `WiredTiger`: `__wt_curbackup_open_incr` forces them whole): one block `offset 0, length fileSize` (a zero-byte
  // file in the two-field form).
  return size === 0 ? [whole(filename, size)] : [block(filename, 0, size, size)];
}

export function backupCursorSource(node: SimNode, open: OpenBackup): CursorSource {
  let metadataSent = false;
  const pending: BackupFile[] = [...open.files];
  let batch: Document[] = [];
  const pull = (): Document[] => {
    const files: BackupFile[] = [];
    while (files.length < WT_BATCH && pending.length > 0) {
      const f = pending.shift()!;
      if (f.kind === 'log' && open.extendedLogs.has(f.path)) continue;
      files.push(f);
    }
    for (const f of files) if (f.kind === 'log') open.streamLogs.add(f.path);
    return files.flatMap((f) => documentsOf(node, open, f));
  };
  return () => {
    if (!metadataSent) {
      metadataSent = true;
      return open.metadata;
    }
    while (batch.length === 0) {
      if (pending.length === 0) return undefined;
      batch = pull();
    }
    return batch.shift();
  };
}
