/**
 * Messages of the restore and verify workflows. Public (interfaces.md section 5): the `progress` query and the
 * `cancel` signal, under the same names as a backup's, so `cutpoint status` and `cutpoint cancel` work on any id.
 * Internal: a replica-set child's progress report to its parent.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { RestoreProgress, RestoreReplicaSetProgress } from '../../common/restore-types.ts';

export const restoreProgressQuery = defineQuery<RestoreProgress>('progress');
export const restoreCancelSignal = defineSignal<[{ reason?: string }?]>('cancel');
/** Child → parent: the replica set's progress after each step. */
export const restoreReplicaSetProgressSignal = defineSignal<[RestoreReplicaSetProgress]>('restoreReplicaSetProgress');
