/**
 * Incremental backups (docs/incremental.md): the kinds of a backup, what a replica-set manifest records about its
 * place in a chain, and the options that start one. Workflow-safe (types and pure helpers).
 *
 * A chain is per replica set: a base opens `$backupCursor` with `incrementalBackup` and a fresh name and no source;
 * each later backup of the chain names its predecessor's name as the source and reads only the ranges the server
 * lists as changed. Every backup's manifest still lists every file's chunks (a synthetic full): a chain is how a
 * backup is taken, never what a restore, a verify or a prune needs to know.
 */

/** How a backup read its replica sets: whole (`full`, no incremental history kept), or as part of a chain. */
export type BackupKind = 'full' | 'base' | 'incremental';

/** What a replica-set manifest records about the incremental cursor it was copied under (absent for `full`). */
export interface IncrementalRecord {
  kind: 'base' | 'incremental';
  /** The cursor's `thisBackupName`: the source the next backup of the chain names. Unique per open attempt. */
  name: string;
  /** The backup whose chunks the unchanged ranges reuse (an incremental's predecessor); null for a base. */
  parent: string | null;
  /** `blockSize` of the cursor, MB (WiredTiger's granularity; a chain keeps one). */
  blockSizeMB: number;
  /** Backups since the chain's base (0 for the base). */
  depth: number;
  /** Why this replica set took a base although an incremental was asked for. */
  chainBreak?: string;
  /** The bytes of the data files' ranges the cursor listed (a base: their sizes): what changed, as the server says. */
  listedBytes?: number;
}

/** What a replica set's backup asks its agent to open. */
export interface IncrementalOpen {
  blockSizeMB: number;
  /** The predecessor's `thisBackupName` on the pinned node; absent = a base (the node's history cleared first). */
  srcBackupName?: string;
}

/** The incremental options of a backup, resolved (common/options.ts). */
export interface IncrementalOptions {
  /** Start a new chain (a base on every replica set) even where one could continue. */
  forceBase: boolean;
  blockSizeMB: number;
  /** A base every this many backups of a chain (0 = never by count). */
  baseEvery: number;
}

/** The kind of a whole backup: `incremental` when any replica set is, `base` when all are bases, else `full`. */
export function backupKindOf(replicaSets: ReadonlyArray<{ kind: BackupKind }>): BackupKind {
  if (replicaSets.some((r) => r.kind === 'incremental')) return 'incremental';
  if (replicaSets.length > 0 && replicaSets.every((r) => r.kind === 'base')) return 'base';
  return 'full';
}
