import { Timestamp } from 'mongodb';
import { TRUNCATE_POINT_ID, TRUNCATE_POINT_NS } from './catalog.ts';
import { StorageCodes, StorageError } from './errors.ts';
import { idKey, tsFromKey, tsKey } from './keys.ts';
import type { CheckpointMeta } from './metadata.ts';
import { applyEntry } from './oplog.ts';
import type { OplogEntry } from './oplog.ts';
import type { Store } from './store.ts';
import { formatTs, isTimestamp, toTs } from './timestamps.ts';
import type { Ts } from './timestamps.ts';

/**
 * Replication recovery (MongoDB's `ReplicationRecoveryImpl`, reduced to what the sim needs): truncate the oplog after
 * `oplogTruncateAfterPoint`, then bring the data tables from the checkpoint up to the top of the oplog by applying it.
 */

/** How the node starts, which decides whether the oplog is applied at startup. */
export type StartMode = 'standalone' | 'replicaSet' | 'recoverFromOplogAsStandalone';

/** What replication recovery did. */
export interface ReplicationReport {
  /** oplogTruncateAfterPoint found at startup (null when unset or zero). */
  readonly truncateAfterPoint: Ts | null;
  /** The oplog was truncated after this timestamp (null: not truncated). */
  readonly truncatedAfter: Ts | null;
  /** Oplog entries removed by truncation. */
  readonly entriesTruncated: number;
  /** Oplog entries applied to the data tables. */
  readonly entriesApplied: number;
  /** Newest oplog entry applied (or the checkpoint's point when none was). */
  readonly appliedThrough: Ts | null;
}

/** The oplogTruncateAfterPoint, or null when the document is absent, null or `Timestamp(0, 0)`. */
export function readTruncatePoint(store: Store): Ts | null {
  const info = store.collection(TRUNCATE_POINT_NS, undefined);
  const table = info && store.tables.get(info.ident);
  const value: unknown = table?.data.read(idKey(TRUNCATE_POINT_ID), undefined)?.oplogTruncateAfterPoint;
  if (!isTimestamp(value)) return null;
  const ts = toTs(value);
  return ts === 0n ? null : ts;
}

function resetTruncatePoint(store: Store): void {
  const doc = { _id: TRUNCATE_POINT_ID, oplogTruncateAfterPoint: new Timestamp({ t: 0, i: 0 }) };
  store.put(TRUNCATE_POINT_NS, doc, null, 'replace');
}

function oplogTop(store: Store): Ts | null {
  const table = store.oplog(false);
  if (!table) return null;
  for (const [key] of table.data.scanBackward(undefined)) return tsFromKey(key);
  return null;
}

/** Newest oplog entry at or before `ts`. */
function newestAtOrBefore(store: Store, ts: Ts): Ts | null {
  const table = store.oplog(false);
  if (!table) return null;
  let found: Ts | null = null;
  for (const [key] of table.data.scan(undefined, '', tsKey(ts + 1n))) found = tsFromKey(key);
  return found;
}

function truncateAfter(store: Store, ts: Ts): number {
  return store.oplog(false)?.data.removeAfter(tsKey(ts)).length ?? 0;
}

/** MongoDB's `_assertNoRecoveryNeededOnUnstableCheckpoint` (without the minvalid checks, which the sim lacks). */
function assertNothingToRecover(store: Store, meta: CheckpointMeta): void {
  const point = readTruncatePoint(store);
  if (point !== null) {
    throw new StorageError(
      StorageCodes.UnstableCheckpointNeedsTruncation,
      `Unexpected recovery needed, oplog requires truncation. Truncate after point: ${formatTs(point)}`,
    );
  }
  const top = oplogTop(store);
  if (top === null) {
    throw new StorageError(StorageCodes.UnstableCheckpointNoOplog, 'Recovery not possible, no oplog found');
  }
  if (meta.appliedThrough !== null && meta.appliedThrough !== top) {
    throw new StorageError(
      StorageCodes.UnstableCheckpointNotApplied,
      'Unexpected recovery needed, appliedThrough is not at top of oplog, indicating oplog has not been fully ' +
        `applied. appliedThrough: ${formatTs(meta.appliedThrough)} (top of oplog: ${formatTs(top)})`,
    );
  }
}

/**
 * Runs replication recovery for `mode` on a store freshly loaded from `meta` (journal already replayed).
 * The data tables reflect the checkpoint's timestamp, or for an unstable checkpoint its `appliedThrough`.
 */
export function recoverReplication(
  store: Store,
  meta: CheckpointMeta,
  mode: StartMode,
  takeUnstableCheckpointOnShutdown: boolean,
): ReplicationReport {
  const base = meta.timestamp ?? meta.appliedThrough;
  const idle: ReplicationReport = {
    truncateAfterPoint: null,
    truncatedAfter: null,
    entriesTruncated: 0,
    entriesApplied: 0,
    appliedThrough: base,
  };
  if (mode === 'standalone') return idle;
  if (mode === 'recoverFromOplogAsStandalone' && meta.timestamp === null) {
    // Re-running after an unstable shutdown checkpoint must be a no-op, and MongoDB checks there is nothing to do.
    if (takeUnstableCheckpointOnShutdown) {
      assertNothingToRecover(store, meta);
      return idle;
    }
    throw new StorageError(
      StorageCodes.RecoverFromOplogWithoutStableCheckpoint,
      "Cannot use 'recoverFromOplogAsStandalone' without a stable checkpoint",
    );
  }
  const point = readTruncatePoint(store);
  let truncatedAfter: Ts | null = null;
  let entriesTruncated = 0;
  if (point !== null) {
    if (base !== null && point <= base) {
      truncatedAfter = base;
    } else {
      const top = oplogTop(store);
      if (top === null || top < point) {
        throw new StorageError(
          StorageCodes.ManualInterventionRequired,
          `journal does not reach the truncate point: the oplog ends at ${formatTs(top)} but ` +
            `oplogTruncateAfterPoint is ${formatTs(point)} (checkpoint generation ${meta.generation} at ` +
            `${formatTs(meta.timestamp)}); journal files after the checkpoint are missing`,
        );
      }
      truncatedAfter = newestAtOrBefore(store, point);
      if (truncatedAfter === null) {
        throw new StorageError(
          StorageCodes.TruncatePointNotFound,
          `Reached end of oplog looking for an oplog entry at or before ${formatTs(point)} ` +
            `(oplogTruncateAfterPoint) but did not find one`,
        );
      }
    }
    entriesTruncated = truncateAfter(store, truncatedAfter);
    resetTruncatePoint(store);
  }
  let entriesApplied = 0;
  const oplog = store.oplog(false);
  if (oplog) {
    for (const [, entry] of oplog.data.scan(undefined, base === null ? '' : tsKey(base + 1n))) {
      applyEntry(store, entry as OplogEntry);
      entriesApplied++;
    }
  }
  return { truncateAfterPoint: point, truncatedAfter, entriesTruncated, entriesApplied, appliedThrough: store.lastApplied };
}
