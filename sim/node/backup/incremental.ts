/**
 * WiredTiger's incremental backup state as `$backupCursor` sees it (docs/psmdb-behaviour.md section 5): at most two
 * registered ids, a granularity fixed by the first incremental cursor, and the changed ranges of each file since a
 * source id's checkpoint. The ids live in the storage engine (sim/storage/backup-ids.ts), which writes them with every
 * checkpoint as WiredTiger writes `checkpoint_backup_info`: a clean restart keeps them, a crash keeps those of the last
 * durable checkpoint. Only "in use as the source of the open cursor" (`WT_BLKINCR_INUSE`) is memory here.
 *
 * Changed ranges come from each id's modified-block bitmaps, kept as WiredTiger keeps them: every checkpoint after S
 * was registered sets, in each file it wrote, the bit of every granularity-sized chunk holding a block it allocated
 * (sim/storage/checkpoint.ts), and the bitmaps are persisted with the ids; a start after a crash adds the chunks of
 * the blocks the unfinished checkpoint wrote (sim/storage/load.ts). So opening a cursor reads no data file. Like
 * WiredTiger's, the ranges are aligned to the granularity, one chunk each (PSMDB never asks for `consolidate`), and may
 * run past the end of the file.
 */
import type { BackupId, BackupIds, StorageEngine } from '../../storage/index.ts';
import { CommandError, ErrorCodes } from '../../wire/index.ts';
import type { BackupOptions } from './options.ts';

/** `WT_BLKINCR_MAX`. */
const MAX_IDS = 2;
const MB = 1024 * 1024;
/** WiredTiger's `granularity` bounds (4KB..2GB). */
const MIN_GRANULARITY = 4 * 1024;
const MAX_GRANULARITY = 2 * 1024 * MB;

/** `wtRCToStatus(EINVAL)`. */
export function einval(): CommandError {
  return new CommandError(ErrorCodes.BadValue, '22: Invalid argument');
}

/** `wtRCToStatus(ENOENT)` (WT_NOTFOUND for an unknown source id, mapped to ENOENT by `open_cursor`). */
export function enoent(): CommandError {
  return new CommandError(ErrorCodes.UnknownError, '2: No such file or directory');
}

/**
 * A name WiredTiger's `__wt_name_check` (src/schema/schema_util.c) refuses with EINVAL: one in the "WiredTiger" name
 * space, or holding a grouping or quoting character.
 */
function badName(name: string): boolean {
  return name.startsWith('WiredTiger') || /[{},:[\]\\"']/.test(name);
}

/** What an incremental open decided, applied once the checkpoint is pinned. */
export interface IncrementalPlan {
  /** The source id (`src_id`); undefined for a base. */
  readonly source: BackupId | undefined;
  /** The source's files, as a set. */
  readonly sourceFiles: ReadonlySet<string>;
  /**
   * `srcBackupName: ""`: WiredTiger reads an empty `src_id` as none, but PSMDB still asks it for each file's ranges,
   * which it refuses (EINVAL, "Incremental primary cursor must have a known source identifier") at the first file.
   */
  readonly emptySource: boolean;
  /** The id to register (`this_id`); undefined for `thisBackupName: ""`, which WiredTiger reads as none. */
  readonly thisName: string | undefined;
  /** Bytes. */
  readonly granularity: number;
}

export class IncrementalState {
  /** Ids in use as the source of the open cursor (`WT_BLKINCR_INUSE`): memory only, as in WiredTiger. */
  private readonly inUse = new Set<string>();

  constructor(private readonly engine: () => StorageEngine) {}

  private ids(): BackupIds | null {
    return this.engine().backupIds;
  }

  private find(name: string): BackupId | undefined {
    return this.ids()?.slots.find((s) => s?.name === name) ?? undefined;
  }

  /** Registered names, oldest slot first (for tests and logs). */
  names(): string[] {
    return (this.ids()?.slots ?? []).flatMap((s) => (s ? [s.name] : []));
  }

  /**
   * WiredTiger's checks when it opens an incremental backup cursor (`__backup_config`), before anything changes:
   * the granularity's range, then the source id (name, known, not in use), then this id (name, not registered).
   * Callers have already made sure `thisBackupName` is set.
   */
  plan(options: BackupOptions): IncrementalPlan {
    const bytes = options.blockSize * MB;
    if (!(bytes >= MIN_GRANULARITY && bytes <= MAX_GRANULARITY)) throw einval();
    const granularity = this.ids()?.granularity ?? bytes; // later values are ignored while ids exist
    const src = options.srcBackupName;
    let source: BackupId | undefined;
    if (src !== undefined && src !== '') {
      if (badName(src)) throw einval();
      source = this.find(src);
      if (!source) throw enoent();
      if (this.inUse.has(src)) throw einval(); // "Incremental backup structure already in use"
    }
    const name = options.thisBackupName!;
    if (name !== '') {
      if (badName(name)) throw einval();
      // "Incremental identifier already exists" (or "already in use" when it names the source).
      if (this.find(name)) throw einval();
    }
    const sourceFiles = new Set(source?.files ?? []);
    return { source, sourceFiles, emptySource: src === '', thisName: name === '' ? undefined : name, granularity };
  }

  /**
   * Marks the source in use and registers the plan's id (`__backup_add_id`: the first slot whose id is not in use as
   * the source, replacing what was there). It stays registered even if the open then fails (50915): the name is
   * consumed. Memory only until the next checkpoint.
   */
  register(plan: IncrementalPlan, generation: number, files: ReadonlySet<string>): void {
    if (plan.source) this.inUse.add(plan.source.name);
    if (plan.thisName === undefined) return;
    const ids = this.ids();
    const slots: Array<BackupId | null> = Array.from({ length: MAX_IDS }, (_, i) => ids?.slots[i] ?? null);
    const slot = slots.findIndex((s) => !s || !this.inUse.has(s.name));
    slots[slot] = { name: plan.thisName, generation, files: [...files], mods: new Map() };
    this.engine().backupIds = { granularity: ids?.granularity ?? plan.granularity, slots };
  }

  /** The backup cursor closed: its source is free again. */
  release(plan: IncrementalPlan | undefined): void {
    if (plan?.source) this.inUse.delete(plan.source.name);
  }

  /** `incremental=(force_stop=true)` took effect (a `disableIncrementalBackup` cursor closed): everything is forgotten. */
  forceStop(): void {
    this.inUse.clear();
    this.engine().backupIds = null;
  }
}

/** A byte range of a file to copy. */
export interface Range {
  offset: number;
  length: number;
}

/**
 * The granularity-aligned chunks of `file` the source id's modified-block bitmap marks (backup-ids.ts `mods`: every
 * chunk a checkpoint since the id's wrote a block into), one range per chunk in file order. Nothing is read from the
 * file: WiredTiger answers from its metadata too.
 */
export function changedRanges(source: BackupId, file: string, granularity: number): Range[] {
  const chunks = [...(source.mods.get(file) ?? [])].sort((a, b) => a - b);
  return chunks.map((c) => ({ offset: c * granularity, length: granularity }));
}
