/**
 * Messages of the backup workflows. Public (interfaces.md section 5): the `progress` query, the `cancel` signal,
 * the `setThrottle` update. Internal: the parent/child barrier (a child reports its open cursor, the parent sends
 * the common timestamp) and the rate copy activities poll.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { BackupProgress, ReplicaSetProgress } from '../../common/backup-types.ts';
import type { Ts } from '../../common/timestamp.ts';

export const progressQuery = defineQuery<BackupProgress>('progress');
export const cancelSignal = defineSignal<[{ reason?: string }?]>('cancel');
export const setThrottleUpdate = defineUpdate<{ bytesPerSec: number }, [{ bytesPerSec: number }]>('setThrottle');

/** The current copy rate for this workflow's copies (bytes/s, 0 = unlimited); copy activities poll it. */
export const throttleQuery = defineQuery<number>('throttle');

/** Child → parent: its cursor is open; the barrier waits for every replica set's. */
export const cursorOpenedSignal = defineSignal<[{ replicaSet: string; node: string; oplogEnd: Ts | null }]>('cursorOpened');
/** Child → parent: progress after each batch. */
export const replicaSetProgressSignal = defineSignal<[ReplicaSetProgress]>('replicaSetProgress');
/** Parent → child: extend to this common timestamp. */
export const extendToSignal = defineSignal<[{ to: Ts }]>('extendTo');
/** Parent → child: the child's share of the whole-backup rate. */
export const childThrottleSignal = defineSignal<[{ bytesPerSec: number }]>('childThrottle');
