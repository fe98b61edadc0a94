/**
 * Continuous oplog capture (point-in-time recovery's capture half, docs/interfaces.md section 8): the workflow's
 * input and state, what one capture activity reports, and the status shape of `cutpoint pitr status --json`.
 * Workflow-safe (types and pure helpers).
 */
import type { MongoTarget } from './target.ts';
import { compareTs, type Ts } from './timestamp.ts';

/** Where the capture of one replica set stands, as the workflow last heard it from its capture activity. */
export interface CaptureState {
  replicaSet: string;
  /** The newest entry sealed into the repository (null before the first seal). */
  capturedTo: Ts | null;
  /** Seconds the newest majority-committed write of the member was ahead of `capturedTo` at the last seal. */
  lagSecs: number;
  /** The member the capture ran on last. */
  node: string | null;
  /** Gaps found so far in this workflow run and its predecessors (the repository's segments are the record). */
  gaps: PitrGap[];
}

/** What the `captureState` query of `pitr-<cluster>` answers. */
export interface PitrState {
  cluster: string;
  /** The repository as the workers see it. */
  repo: string;
  replicaSets: CaptureState[];
}

/** A stretch of oplog that was never captured: every entry after `from` and before `to` is missing. */
export interface PitrGap {
  replicaSet: string;
  from: Ts;
  to: Ts;
}

/** The input of workflow `pitrCapture` (id `pitr-<cluster>`); `state` carries what continue-as-new passes on. */
export interface PitrInput {
  uri: string;
  credentials?: MongoTarget['credentials'];
  repo: string;
  cluster: string;
  sealEveryMs?: number;
  leaseMs?: number;
  leasesPerRun?: number;
  maxLagSecs?: number;
  agentTimeoutMs?: number;
  agentHeartbeatTimeoutMs?: number;
  /** Set by continue-as-new: the per-replica-set state of the previous run. */
  state?: CaptureState[];
  /** Set by continue-as-new: per replica set, the members whose capture failed or never completed a lease last run. */
  avoid?: Record<string, string[]>;
}

/** What one capture activity did before it returned (its lease ran out, or it was cancelled). */
export interface CaptureResult {
  capturedTo: Ts | null;
  lagSecs: number;
  node: string;
  /** Segments sealed by this activity. */
  segments: number;
  /** Oplog entries sealed by this activity. */
  entries: number;
  /** A gap found when this activity resumed (the oplog had rolled past the last sealed point). */
  gap?: { from: Ts; to: Ts };
}

/** What an activity heartbeats while it captures. */
export type CaptureHeartbeat = Pick<CaptureResult, 'capturedTo' | 'lagSecs' | 'node' | 'segments' | 'entries'>;

/** What a capture activity signals its workflow after a seal, at most every few seconds (activities/agent/oplog-capture.ts). */
export interface CaptureProgress {
  replicaSet: string;
  capturedTo: Ts;
  lagSecs: number;
  node: string;
}

/** `cutpoint pitr status --json` for one cluster (docs/interfaces.md section 8). */
export interface PitrStatus {
  cluster: string;
  status: 'running' | 'stopped' | 'failed';
  replicaSets: Array<{ name: string; capturedTo: Ts | null; lagSecs: number | null }>;
  restorableFrom: Ts | null;
  restorableTo: Ts | null;
  gaps: PitrGap[];
}

/** The workflow id of a cluster's capture. */
export function pitrWorkflowId(cluster: string): string {
  return `pitr-${cluster}`;
}

/** The oldest of timestamps that may be missing (null when any is). */
export function minCaptured(values: Array<Ts | null>): Ts | null {
  let min: Ts | null = null;
  for (const v of values) {
    if (!v) return null;
    if (!min || compareTs(v, min) < 0) min = v;
  }
  return min;
}
