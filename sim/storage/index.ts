/**
 * The simulator's crash-consistent storage engine. See README.md in this directory for the invariants.
 */
export { StorageEngine } from './engine.ts';
export { checkpointInfo } from './api.ts';
export type { CheckpointInfo, LogFileInfo, RecoveryReport, ReplicationSummary, StorageEngineOptions } from './api.ts';
export { StorageCodes, StorageError } from './errors.ts';
export type { BackupFile, CheckpointPin } from './pin.ts';
export type { BackupId, BackupIds } from './backup-ids.ts';
export type { OplogEntry, OplogOperation, OplogOp } from './oplog.ts';
export type { CollectionInfo } from './catalog.ts';
export { OPLOG_NS, TRUNCATE_POINT_ID, TRUNCATE_POINT_NS, isReplicated } from './catalog.ts';
export type { StartMode } from './replication.ts';
export type { StartupReport } from './startup.ts';
export type { LogPosition } from './metadata.ts';
export { logFileName, logFilePath } from './journal.ts';
export type { CipherMode, EncryptionOptions } from './keydb.ts';
export { CIPHER_MODES, DEFAULT_CIPHER_MODE } from './keydb.ts';
