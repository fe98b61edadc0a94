/**
 * Continuous oplog capture through the client API (docs/interfaces.md section 8): start the `pitr-<cluster>` workflow,
 * stop it, and its status: where each replica set's capture stands (the workflow's `captureState` query, which a
 * stopped or failed workflow answers too) and the restorable window and gaps read from the repository.
 */
import type { Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { CutpointError } from '../common/errors.ts';
import { pitrStateQuery, pitrStopSignal } from '../common/messages.ts';
import { resolvePitrOptions } from '../common/options.ts';
import { minCaptured, pitrWorkflowId, type PitrInput, type PitrStatus } from '../common/pitr-types.ts';
import { CutpointCluster, CutpointKind, CutpointStatus } from '../common/search-attributes.ts';
import { assertNoCredentials, parseMongoUri } from '../common/target.ts';
import { ORCHESTRATOR_TASK_QUEUE } from '../common/task-queues.ts';
import { openRepository } from '../repository/catalogue.ts';
import { backupWindow, pitrWindow, pitrWindows } from '../repository/pitr-window.ts';
import type { Ts } from '../common/timestamp.ts';
import { validateClusterName } from '../repository/oplog-segments.ts';
import { validateLocation } from '../repository/s3-location.ts';
import type { pitrCapture } from '../workflows/pitr/pitr-capture.ts';

export type StartPitrOptions = Omit<PitrInput, 'cluster' | 'state'> & { cluster?: string };

/** The cluster name of a capture: the one given, else the URI's `replicaSet` option (a mongos URI needs `--cluster`). */
export function pitrCluster(opts: { uri: string; cluster?: string }): string {
  if (opts.cluster) return validateClusterName(opts.cluster);
  const rs = parseMongoUri(opts.uri).options.find(([k]) => k.toLowerCase() === 'replicaset')?.[1];
  if (!rs) throw new CutpointError('BAD_USAGE', `give --cluster: the URI ${opts.uri} names no replicaSet to call the cluster by (a mongos URI, or a single host)`);
  return validateClusterName(rs);
}

/** Starts the capture of a cluster (workflow `pitr-<cluster>`); one per cluster: a second start is refused. */
export async function startPitr(client: Client, opts: StartPitrOptions): Promise<{ id: string; cluster: string }> {
  try {
    assertNoCredentials(opts.uri);
    validateLocation(opts.repo);
  } catch (e) {
    throw new CutpointError('BAD_USAGE', (e as Error).message);
  }
  resolvePitrOptions(opts);
  const cluster = pitrCluster(opts);
  const id = pitrWorkflowId(cluster);
  const input: PitrInput = { ...opts, cluster };
  try {
    await client.workflow.start<typeof pitrCapture>('pitrCapture', {
      taskQueue: ORCHESTRATOR_TASK_QUEUE,
      workflowId: id,
      args: [input],
      typedSearchAttributes: [
        { key: CutpointKind, value: 'pitr' },
        { key: CutpointCluster, value: cluster },
        { key: CutpointStatus, value: 'running' },
      ],
      staticSummary: `cutpoint continuous oplog capture of ${cluster} to ${opts.repo}`,
    });
  } catch (e) {
    if (e instanceof WorkflowExecutionAlreadyStartedError) throw new CutpointError('CLUSTER_BUSY', `the oplog of ${cluster} is already captured (workflow ${id}); 'cutpoint pitr stop --cluster ${cluster}' ends it`);
    throw e;
  }
  return { id, cluster };
}

/** Stops the capture of `cluster` (what was read is sealed first) and waits for the workflow to complete. */
export async function stopPitr(client: Client, cluster: string): Promise<void> {
  const handle = client.workflow.getHandle<typeof pitrCapture>(pitrWorkflowId(cluster));
  try {
    await handle.signal(pitrStopSignal);
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) throw new CutpointError('BAD_USAGE', `no running capture of cluster ${cluster} (workflow ${pitrWorkflowId(cluster)})`, undefined, { cause: e });
    throw e;
  }
  await handle.result();
}

/** The clusters whose capture workflow Temporal knows (running or not), newest run of each. */
export async function pitrClusters(client: Client): Promise<string[]> {
  const out = new Set<string>();
  for await (const w of client.workflow.list({ query: `CutpointKind = 'pitr'` })) {
    const c = w.typedSearchAttributes.get(CutpointCluster);
    if (c) out.add(c);
  }
  return [...out].sort();
}

/**
 * The status of the capture of `cluster`: the workflow's state (running, stopped or failed; each replica set's
 * capturedTo and lag), and from the repository (`repo`, default the workflow's) the restorable window and every gap.
 */
export async function pitrStatus(client: Client, cluster: string, opts: { repo?: string } = {}): Promise<PitrStatus> {
  const handle = client.workflow.getHandle<typeof pitrCapture>(pitrWorkflowId(cluster));
  let description;
  try {
    description = await handle.describe();
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) throw new CutpointError('BAD_USAGE', `no capture of cluster ${cluster} is known to Temporal (workflow ${pitrWorkflowId(cluster)})`, undefined, { cause: e });
    throw e;
  }
  const name = description.status.name;
  const status: PitrStatus['status'] = name === 'RUNNING' || name === 'CONTINUED_AS_NEW' ? 'running' : name === 'COMPLETED' ? 'stopped' : 'failed';
  const state = await handle.query(pitrStateQuery);
  const states = state.replicaSets;
  const repo = opts.repo ?? state.repo;
  const window = await pitrWindow(await openRepository(repo), cluster);
  const byName = new Map(states.map((s) => [s.replicaSet, s]));
  const names = [...new Set([...states.map((s) => s.replicaSet), ...window.replicaSets.map((r) => r.name)])].sort();
  const replicaSets = names.map((n) => {
    const s = byName.get(n);
    const stored = window.replicaSets.find((r) => r.name === n)?.capturedTo ?? null;
    return { name: n, capturedTo: stored ?? s?.capturedTo ?? null, lagSecs: status === 'running' ? (s?.lagSecs ?? null) : null };
  });
  return {
    cluster,
    status,
    replicaSets,
    restorableFrom: window.restorableFrom,
    restorableTo: window.restorableTo ?? minCaptured(replicaSets.map((r) => r.capturedTo)),
    gaps: window.gaps,
  };
}


/** One cluster's restorable window as `list --json` shows it (docs/interfaces.md section 8). */
export interface PitrListing {
  cluster: string;
  from: Ts | null;
  to: Ts | null;
  gaps: Array<{ replicaSet: string; from: Ts; to: Ts }>;
}

/** The restorable window of every cluster (or of `cluster`) with captured oplog in the repository at `repoPath`. */
export async function listPitrWindows(repoPath: string, cluster?: string): Promise<PitrListing[]> {
  const repo = await openRepository(repoPath);
  const windows = cluster !== undefined ? [await pitrWindow(repo, cluster)].filter((w) => w.replicaSets.length) : await pitrWindows(repo);
  return windows.map((w) => ({ cluster: w.cluster, from: w.restorableFrom, to: w.restorableTo, gaps: w.gaps }));
}

/** The times the backup with common timestamp `base` of `cluster` can be restored to with the captured oplog, or null. */
export async function backupPitrWindow(repoPath: string, cluster: string, base: Ts | null): Promise<{ from: Ts; to: Ts } | null> {
  if (!base) return null;
  return backupWindow(await pitrWindow(await openRepository(repoPath), cluster), base);
}
