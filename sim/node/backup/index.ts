/**
 * The backup-cursor stages and the commands that share their state machine (backup-cursor-spec.md): `$backupCursor`,
 * `$backupCursorExtend` (through the hooks' `aggregate`, state.ts), `fsync {lock}` / `fsyncUnlock`, `createBackup`, and
 * `configureFailPoint` for fault injection. See README.md in sim/ for what is and is not simulated.
 */
export { configureFailPoint } from './configure-fail-point.ts';
export { createBackup } from './create-backup.ts';
export { fsync, fsyncUnlock } from './fsync.ts';
