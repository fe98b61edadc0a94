/**
 * The backup-cursor stages and the commands that share their state machine (backup-cursor-spec.md): `$backupCursor`,
 * `$backupCursorExtend` (through {@link BackupHooks.aggregate}), `fsync {lock}` / `fsyncUnlock`, `createBackup`, and
 * `configureFailPoint` for fault injection. See README.md in sim/ for what is and is not simulated.
 */
export { BackupHooks, type HooksState, type OpenBackup } from './state.ts';
export { configureFailPoint, FAIL_POINTS, type FailPointName } from './faults.ts';
export { createBackup } from './create-backup.ts';
export { fsync, fsyncUnlock } from './fsync.ts';
export { filePath, relativeTo } from './paths.ts';
