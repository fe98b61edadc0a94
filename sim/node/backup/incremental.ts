/**
 * WiredTiger's incremental backup state as `$backupCursor` sees it (docs/psmdb-behaviour.md section 5): at most two
 * registered ids, a granularity fixed by the first incremental cursor, and the changed ranges of each file since a
 * source id's checkpoint.
 *
 * Changed ranges come from the bytes: every block of a `.wt` file carries the checkpoint generation that wrote it, so
 * the ranges to copy since source id S are the granularity-aligned chunks holding a block written by a generation newer
 * than the checkpoint S's backup pinned. Like WiredTiger's, they are aligned to the granularity and may run past the
 * end of the file.
 */
import fs from 'node:fs';
import { CommandError, ErrorCodes } from '../../wire/index.ts';
import type { BackupOptions } from './options.ts';

/** `WT_BLKINCR_MAX`. */
const MAX_IDS = 2;
const MB = 1024 * 1024;
/** WiredTiger's `granularity` bounds (4KB..2GB). */
const MIN_GRANULARITY = 4 * 1024;
const MAX_GRANULARITY = 2 * 1024 * MB;
const DATA_MAGIC = 0x53494d42; // sim/storage/blocks.ts: "SIMB"

export interface IncrementalId {
  readonly name: string;
  /** Generation of the checkpoint the registering backup pinned: changes are blocks written after it. */
  readonly generation: number;
  /** Data files (relative paths) that backup listed: a file not among them is new, copied whole. */
  readonly files: ReadonlySet<string>;
  inUse: boolean;
}

/** `wtRCToStatus(EINVAL)`. */
export function einval(): CommandError {
  return new CommandError(ErrorCodes.BadValue, '22: Invalid argument');
}

/** `wtRCToStatus(ENOENT)` (WT_NOTFOUND for an unknown source id). */
export function enoent(): CommandError {
  return new CommandError(ErrorCodes.UnknownError, '2: No such file or directory');
}

/** What an incremental open decided, applied once the checkpoint is pinned. */
export interface IncrementalPlan {
  readonly source: IncrementalId | undefined;
  readonly thisName: string;
  readonly granularity: number;
}

export class IncrementalState {
  private readonly slots: Array<IncrementalId | undefined> = new Array<IncrementalId | undefined>(MAX_IDS).fill(undefined);
  private granularityMB: number | null = null;

  private find(name: string): IncrementalId | undefined {
    return this.slots.find((s) => s?.name === name);
  }

  /** Registered names, oldest slot first (for tests and logs). */
  names(): string[] {
    return this.slots.flatMap((s) => (s ? [s.name] : []));
  }

  /**
   * WiredTiger's checks when it opens an incremental backup cursor (`__backup_config`), before anything changes:
   * the granularity's range, the source id, then this id. Callers have already made sure `thisBackupName` is set.
   */
  plan(options: BackupOptions): IncrementalPlan {
    const bytes = options.blockSize * MB;
    if (!(bytes >= MIN_GRANULARITY && bytes <= MAX_GRANULARITY)) throw einval();
    const granularityMB = this.granularityMB ?? options.blockSize; // later values are ignored, as in WiredTiger
    let source: IncrementalId | undefined;
    if (options.srcBackupName !== undefined) {
      source = this.find(options.srcBackupName);
      if (!source) throw enoent();
      if (source.inUse) throw einval(); // "Incremental backup structure already in use"
    }
    if (this.find(options.thisBackupName!)) throw einval(); // "Incremental identifier already exists"
    return { source, thisName: options.thisBackupName!, granularity: granularityMB * MB };
  }

  /**
   * Registers the plan's id (in the first slot whose id is not in use as the source, replacing what was there) and
   * marks the source in use. It stays registered even if the open then fails (50915): the name is consumed.
   */
  register(plan: IncrementalPlan, generation: number, files: ReadonlySet<string>): void {
    this.granularityMB ??= plan.granularity / MB;
    if (plan.source) plan.source.inUse = true;
    const slot = this.slots.findIndex((s) => !s?.inUse);
    this.slots[slot] = { name: plan.thisName, generation, files, inUse: false };
  }

  /** The backup cursor closed: its source is free again. */
  release(plan: IncrementalPlan | undefined): void {
    if (plan?.source) plan.source.inUse = false;
  }

  /** `incremental=(force_stop=true)` took effect (a `disableIncrementalBackup` cursor closed): everything is forgotten. */
  forceStop(): void {
    this.slots.fill(undefined);
    this.granularityMB = null;
  }
}

/** A byte range of a file to copy. */
export interface Range {
  offset: number;
  length: number;
}

/** Bytes of a data file read at a time while its block headers are scanned (a file may be larger than a Buffer). */
const SCAN_WINDOW = 16 * MB;

/**
 * The granularity-aligned ranges of `file` holding a block written after checkpoint generation `since` (adjacent chunks
 * coalesced). An unreadable or unrecognised block counts as changed.
 */
export function changedRanges(file: string, since: number, granularity: number): Range[] {
  const chunks = new Set<number>();
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    if (size < 12) return size === 0 ? [] : [{ offset: 0, length: granularity }];
    const head = Buffer.alloc(12);
    fs.readSync(fd, head, 0, 12, 0);
    const blockSize = head.readUInt32LE(8);
    // Whole blocks at a time, from a block's start: a header in the file is then always within the window read.
    const window = Buffer.alloc(Math.max(1, Math.floor(SCAN_WINDOW / blockSize)) * blockSize);
    let start = 0;
    let got = 0;
    for (let off = blockSize; off < size; off += blockSize) {
      if (off + 20 > size) {
        chunks.add(Math.floor(off / granularity));
        continue;
      }
      if (off + 20 > start + got) {
        start = off;
        got = fs.readSync(fd, window, 0, window.length, off);
      }
      const at = off - start;
      if (window.readUInt32LE(at) !== DATA_MAGIC || Number(window.readBigUInt64LE(at + 12)) > since) chunks.add(Math.floor(off / granularity));
    }
  } finally {
    fs.closeSync(fd);
  }
  const sorted = [...chunks].sort((a, b) => a - b);
  const ranges: Range[] = [];
  for (const c of sorted) {
    const last = ranges.at(-1);
    if (last && last.offset + last.length === c * granularity) last.length += granularity;
    else ranges.push({ offset: c * granularity, length: granularity });
  }
  return ranges;
}
