/**
 * The backup-cursor stages and the commands that share their state machine (docs/psmdb-behaviour.md): `$backupCursor`,
 * `$backupCursorExtend` (through the hooks' `aggregate`, state.ts), `fsync {lock}` / `fsyncUnlock`, `createBackup`, and
 * `configureFailPoint` for fault injection. See docs/simulator.md and sim/README.md for what is and is not simulated.
 */
export { configureFailPoint } from './configure-fail-point.ts';
export { createBackup } from './create-backup.ts';
export { fsync, fsyncUnlock } from './fsync.ts';
