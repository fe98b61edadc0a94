/**
 * Every signal, query and update of cutpoint's workflows, in one place. Workflow-safe: workflows, activities (which
 * query a workflow) and the client API import these definitions.
 *
 * Public (docs/interfaces.md section 5; changing a name or shape breaks users): the `progress` query and the `cancel`
 * signal of backups, restores and verifies (the same names, so `cutpoint status` and `cutpoint cancel` work on any
 * id), the `setThrottle` update of a backup, and the `holder` query of a cluster lock. Everything else is internal to
 * a parent workflow and its children.
 *
 * The backup protocol between `clusterBackup` and its `replicaSetBackup` children: each child reports its open cursor
 * (`cursorOpened`); when all are open the parent sends the common timestamp (`extendTo`); each child extends, copies,
 * reports `copied` and keeps its cursor open until `finish`. A child whose cursor is lost re-opens one and reports
 * `cursorOpened` again: the parent moves the common timestamp forward if the new cursor starts later and sends it to
 * every child, which extends again (extend is cumulative) and copies only what the later timestamp adds (journal
 * files), keeping the data files it copied. `finish` goes out once every child has copied through the same common
 * timestamp. The child → parent signals of the protocol are sent by the agent activity that did the step
 * (`checkRepositoryAccess`, `openBackupCursor`, `proveBackupCursorAlive`: activities/agent/tell-workflow.ts) and carry
 * the child's progress; the parent → child ones by the parent's local activity `signalWorkflows`
 * (activities/orchestrator/signal-workflows.ts). Every handler takes a repeated signal (a retried activity) as the
 * same news.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { BackupProgress, ReplicaSetProgress } from './backup-types.ts';
import type { ClusterLockHolder } from './cluster-lock.ts';
import type { CaptureProgress, PitrState } from './pitr-types.ts';
import type { RestoreProgress, RestoreReplicaSetProgress } from './restore-types.ts';
import type { Ts } from './timestamp.ts';

// Backups (clusterBackup and its replicaSetBackup children).
export const progressQuery = defineQuery<BackupProgress>('progress');
export const cancelSignal = defineSignal<[{ reason?: string }?]>('cancel');
export const setThrottleUpdate = defineUpdate<{ bytesPerSec: number }, [{ bytesPerSec: number }]>('setThrottle');

/** The current copy rate for this workflow's copies (bytes/s, 0 = unlimited); copy activities poll it. */
export const throttleQuery = defineQuery<number>('throttle');

/**
 * Child → parent: its node is chosen and its agent opens the repository; it waits for `openCursors`. The protocol's
 * child → parent signals carry the child's progress, so that few separate `replicaSetProgress` signals are needed.
 */
export const agentReadySignal = defineSignal<[{ replicaSet: string; node: string; progress?: ReplicaSetProgress }]>('agentReady');
/** Parent → child: every replica set's agent is ready: open the backup cursor. */
export const openCursorsSignal = defineSignal('openCursors');
/** Child → parent: its cursor is open; the barrier waits for every replica set's. */
export const cursorOpenedSignal = defineSignal<[{ replicaSet: string; node: string; oplogEnd: Ts | null; progress?: ReplicaSetProgress }]>('cursorOpened');
/** Child → parent: its copy's progress (the round's total at its start; each finished batch within a second, the round's last with `replicaSetCopied`). */
export const replicaSetProgressSignal = defineSignal<[ReplicaSetProgress]>('replicaSetProgress');
/** Parent → child: extend to this common timestamp. */
export const extendToSignal = defineSignal<[{ to: Ts }]>('extendTo');
/** Child → parent: everything up to this extend is copied; the cursor stays open until `finish`. */
export const replicaSetCopiedSignal = defineSignal<[{ replicaSet: string; extendedTo: Ts; progress?: ReplicaSetProgress }]>('replicaSetCopied');
/** Parent → child: every replica set has copied through the final common timestamp: prove the cursor, close it. */
export const finishSignal = defineSignal<[{ commonTimestamp: Ts }]>('finish');
/** Parent → child: the child's share of the whole-backup rate. */
export const childThrottleSignal = defineSignal<[{ bytesPerSec: number }]>('childThrottle');

// Restores and verifies (clusterRestore, replicaSetRestore, verifyBackup, seedMember).
export const restoreProgressQuery = defineQuery<RestoreProgress>('progress');
export const restoreCancelSignal = defineSignal<[{ reason?: string }?]>('cancel');
/** Child → parent: the replica set's progress after each step. */
export const restoreReplicaSetProgressSignal = defineSignal<[RestoreReplicaSetProgress]>('restoreReplicaSetProgress');

// The per-cluster backup lock (workflows/backup/cluster-lock.ts).
/** Query `holder` of the lock workflow. */
export const clusterLockHolderQuery = defineQuery<ClusterLockHolder>('holder');
/** Signal `release`: the holder is done (the lock workflow then completes and the id is free). */
export const clusterLockReleaseSignal = defineSignal('release');

// Continuous oplog capture (workflows/pitr/pitr-capture.ts).
/** Query `captureState` of `pitr-<cluster>`: where each replica set's capture stands (public, `cutpoint pitr status`). */
export const pitrStateQuery = defineQuery<PitrState>('captureState');
/** Signal `stop` of `pitr-<cluster>`: seal what was read, end every capture, and complete (public, `cutpoint pitr stop`). */
export const pitrStopSignal = defineSignal('stop');
/** Signal `progress` of `pitr-<cluster>`: a capture activity sealed to here (internal: keeps the shown lag fresh). */
export const pitrProgressSignal = defineSignal<[CaptureProgress]>('progress');
