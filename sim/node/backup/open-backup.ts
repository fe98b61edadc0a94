/** The backup slot of a node: its state, and what an open `$backupCursor` holds (backup/state.ts drives them). */
import type { Document, UUID } from 'mongodb';
import type { BackupFile, CheckpointPin } from '../../storage/index.ts';
import type { IncrementalPlan } from './incremental.ts';
import type { BackupOptions } from './options.ts';

/** PSMDB's `WiredTigerBackupCursorHooks` states: one slot per node, shared by `$backupCursor`, fsync lock and createBackup. */
export type HooksState = 'inactive' | 'fsyncLocked' | 'backupCursorOpened' | 'hotBackup';

/** An open `$backupCursor`: what its stream lists and what its extends have returned. */
export interface OpenBackup {
  readonly backupId: UUID;
  readonly options: BackupOptions;
  /** The first document, `{metadata: {...}}`. */
  readonly metadata: Document;
  /** Absent for `disableIncrementalBackup: true` (metadata only; the slot is still held). */
  readonly pin: CheckpointPin | undefined;
  /** What the stream lists, in WiredTiger's order (empty without a pin). */
  readonly files: readonly BackupFile[];
  readonly incremental: IncrementalPlan | undefined;
  /** Log files (relative paths) the main stream has emitted (`logFilePathsSeenByGetNextBatch`). */
  readonly streamLogs: Set<string>;
  /** Log files an extend returned: the main stream no longer emits them. */
  readonly extendedLogs: Set<string>;
}
