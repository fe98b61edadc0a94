/**
 * Messages of the backup workflows. Public (interfaces.md section 5): the `progress` query, the `cancel` signal,
 * the `setThrottle` update. Internal: the parent/child protocol and the rate copy activities poll.
 *
 * The protocol: each child reports its open cursor (`cursorOpened`); when all are open the parent sends the common
 * timestamp (`extendTo`); each child extends, copies, reports `copied` and keeps its cursor open until `finish`.
 * A child whose cursor is lost re-opens one and reports `cursorOpened` again: the parent moves the common timestamp
 * forward if the new cursor starts later and sends it to every child, which extends again (extend is cumulative) and
 * copies only what the later timestamp adds (journal files), keeping the data files it copied. `finish` goes out
 * once every child has copied through the same common timestamp.
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
/** Child → parent: everything up to this extend is copied; the cursor stays open until `finish`. */
export const replicaSetCopiedSignal = defineSignal<[{ replicaSet: string; extendedTo: Ts }]>('replicaSetCopied');
/** Parent → child: every replica set has copied through the final common timestamp: prove the cursor, close it. */
export const finishSignal = defineSignal<[{ commonTimestamp: Ts }]>('finish');
/** Parent → child: the child's share of the whole-backup rate. */
export const childThrottleSignal = defineSignal<[{ bytesPerSec: number }]>('childThrottle');
