/**
 * Error codes the storage engine raises, with MongoDB's numbers where MongoDB has a code for the same condition
 * (mongodb/mongo `src/mongo/base/error_codes.yml`, or the bare `uassert`/`fassert` number for unnamed ones).
 */
export const StorageCodes = {
  BadValue: 2,
  IllegalOperation: 20,
  NamespaceNotFound: 26,
  NonExistentPath: 29,
  NamespaceExists: 48,
  /** No MongoDB equivalent: a real mongod silently recovers to the top of a short oplog. The sim refuses instead. */
  ManualInterventionRequired: 51,
  InvalidOptions: 72,
  InvalidNamespace: 73,
  DBPathInUse: 98,
  OplogOutOfOrder: 152,
  OplogOperationUnsupported: 62,
  SnapshotTooOld: 239,
  DataCorruptionDetected: 301,
  ObjectIsBusy: 314,
  DuplicateKey: 11000,
  /** `Cannot use 'recoverFromOplogAsStandalone' without a stable checkpoint` (fassert in replication_recovery.cpp). */
  RecoverFromOplogWithoutStableCheckpoint: 31229,
  /** `_assertNoRecoveryNeededOnUnstableCheckpoint`: the oplog still needs truncation. */
  UnstableCheckpointNeedsTruncation: 31363,
  /** `_assertNoRecoveryNeededOnUnstableCheckpoint`: there is no oplog. */
  UnstableCheckpointNoOplog: 31364,
  /** `_assertNoRecoveryNeededOnUnstableCheckpoint`: appliedThrough is not the top of the oplog. */
  UnstableCheckpointNotApplied: 31365,
  /** No oplog entry at or before oplogTruncateAfterPoint (fassert 40296 in replication_recovery.cpp). */
  TruncatePointNotFound: 40296,
  /** WiredTiger could not be opened (EINVAL from `wiredtiger_open`: fassert 28561 in wiredtiger_kv_engine.cpp). */
  WiredTigerOpenFailed: 28561,
  /** PSMDB's key database could not be opened with the given master key (encryption_keydb.cpp, log 29055/29056). */
  EncryptionKeyDbOpenFailed: 29056,
} as const;

/** Name of each code, for `codeName` (unnamed MongoDB codes read `Location<code>`, as mongod reports them). */
const codeNames = new Map<number, string>([
  [2, 'BadValue'],
  [9, 'FailedToParse'],
  [20, 'IllegalOperation'],
  [26, 'NamespaceNotFound'],
  [29, 'NonExistentPath'],
  [48, 'NamespaceExists'],
  [51, 'ManualInterventionRequired'],
  [62, 'OplogOperationUnsupported'],
  [72, 'InvalidOptions'],
  [73, 'InvalidNamespace'],
  [98, 'DBPathInUse'],
  [152, 'OplogOutOfOrder'],
  [239, 'SnapshotTooOld'],
  [301, 'DataCorruptionDetected'],
  [314, 'ObjectIsBusy'],
  [11000, 'DuplicateKey'],
]);

/**
 * Every failure the engine reports on purpose: a startup that must not proceed (bad block, missing file, journal too
 * short) or a refused operation. The message names the file, block and generation involved when there is one.
 */
export class StorageError extends Error {
  /** MongoDB-like numeric code. */
  readonly code: number;
  /** MongoDB's name for {@link code}, or `Location<code>`. */
  readonly codeName: string;

  /**
   * How a mongod that fails startup with this error exits, when not with 100 (an uncaught exception in
   * `initAndListen`): 14 for mongod's fatal assertions (`fassert`, `LOGV2_FATAL`).
   */
  readonly exitCode: number | undefined;

  constructor(code: number, message: string, opts: { exitCode?: number } = {}) {
    super(message);
    this.name = 'StorageError';
    this.code = code;
    this.codeName = codeNames.get(code) ?? `Location${code}`;
    this.exitCode = opts.exitCode;
  }
}
