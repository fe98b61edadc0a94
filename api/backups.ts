/**
 * cutpoint's programmatic API for backups: what the CLI verbs call, and what code that drives cutpoint uses.
 *
 * ```ts
 * const { client } = await connectClient(temporalTargetFromEnv());
 * const { id } = await startBackup(client, { uri: 'mongodb://db1:27017/?replicaSet=rs0', repo: '/backups' });
 * for await (const p of watchBackup(client, id)) console.log(p.phase, p.bytesDone, '/', p.bytesTotal);
 * const summary = await backupResult(client, id);
 * ```
 */
import { randomBytes } from 'node:crypto';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import type { BatchHeartbeat } from '../activities/agent/copy-batch.ts';
import type { BackupInput, BackupProgress, BackupSummary } from '../common/backup-types.ts';
import { resolveBackupOptions } from '../common/options.ts';
import { CutpointError } from '../common/errors.ts';
import { validateBackupId } from '../common/manifest.ts';
import { CutpointCluster, CutpointKind, CutpointStatus } from '../common/search-attributes.ts';
import { assertNoCredentials } from '../common/target.ts';
import { ORCHESTRATOR_TASK_QUEUE } from '../common/task-queues.ts';
import { cancelSignal, progressQuery, setThrottleUpdate } from '../common/messages.ts';
import type { clusterBackup } from '../workflows/backup/cluster-backup.ts';
import { validateLocation } from '../repository/s3-location.ts';

export interface StartBackupOptions extends BackupInput {
  /** The backup id (also the workflow id); default `backup-<UTC time>-<random>`. */
  id?: string;
}

/** A fresh, sortable backup id. */
export function newBackupId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `backup-${stamp}-${randomBytes(2).toString('hex')}`;
}

function usage(message: string): CutpointError {
  return new CutpointError('BAD_USAGE', message);
}

/** Checks the input before anything starts, naming the problem (exit code 2 from the CLI). */
export function validateBackupInput(opts: StartBackupOptions): void {
  try {
    assertNoCredentials(opts.uri);
  } catch (e) {
    throw usage((e as Error).message);
  }
  if (!opts.repo) throw usage('a repository path is required (--repo)');
  validateLocation(opts.repo);
  if (opts.id !== undefined) {
    try {
      validateBackupId(opts.id);
    } catch (e) {
      throw usage((e as Error).message);
    }
  }
  // Defaults and bounds of every tuning option: common/options.ts (the workflow applies them too).
  resolveBackupOptions(opts);
}

/** Starts a backup; returns its id and workflow handle. */
export async function startBackup(client: Client, opts: StartBackupOptions): Promise<{ id: string; handle: WorkflowHandle<typeof clusterBackup> }> {
  validateBackupInput(opts);
  const { id: given, ...input } = opts;
  const id = given ?? newBackupId();
  const handle = await client.workflow.start<typeof clusterBackup>('clusterBackup', {
    taskQueue: ORCHESTRATOR_TASK_QUEUE,
    workflowId: id,
    args: [input],
    typedSearchAttributes: [
      { key: CutpointKind, value: 'backup' },
      { key: CutpointStatus, value: 'running' },
      ...(input.cluster ? [{ key: CutpointCluster, value: input.cluster }] : []),
    ],
    staticSummary: `cutpoint backup of ${input.cluster ?? input.uri} to ${input.repo}`,
  });
  return { id, handle };
}

function handleOf(client: Client, id: string): WorkflowHandle<typeof clusterBackup> {
  return client.workflow.getHandle<typeof clusterBackup>(id);
}

async function notFoundAware<T>(client: Client, id: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof WorkflowNotFoundError)) throw e;
    // Signals and updates to a finished workflow are answered "not found" too: say which case it is.
    const status = await handleOf(client, id)
      .describe()
      .then((d) => d.status.name)
      .catch(() => undefined);
    if (status) throw new CutpointError('BAD_USAGE', `backup '${id}' has already ended (${status.toLowerCase()})`, undefined, { cause: e });
    throw new CutpointError('BAD_USAGE', `no backup '${id}' is known to Temporal`, undefined, { cause: e });
  }
}

/** Options of {@link backupProgress}. */
export interface ProgressOptions {
  /**
   * Add the bytes of copy batches still running, read from their heartbeats (pending activities of the replica-set
   * workflows), so that progress moves inside a batch. Costs one describe per copying replica set. A batch that
   * just ended may be missed for a moment, so successive values can dip; {@link watchBackup} smooths that out.
   */
  inFlight?: boolean;
}

/** The live `progress` query. */
export async function backupProgress(client: Client, id: string, options: ProgressOptions = {}): Promise<BackupProgress> {
  const p = await notFoundAware(client, id, () => handleOf(client, id).query(progressQuery));
  if (!options.inFlight || p.status !== 'running') return p;
  const converter = client.options.loadedDataConverter.payloadConverter;
  await Promise.all(
    p.replicaSets
      .filter((r) => r.phase === 'copy')
      .map(async (r) => {
        const desc = await client.workflow
          .getHandle(`${id}.${r.name}`)
          .describe()
          .catch(() => undefined);
        let extra = 0;
        for (const a of desc?.raw.pendingActivities ?? []) {
          const payload = a.activityType?.name === 'copyBatch' ? a.heartbeatDetails?.payloads?.[0] : undefined;
          if (!payload) continue;
          const beat = converter.fromPayload<BatchHeartbeat>(payload);
          extra += typeof beat?.bytes === 'number' ? beat.bytes : 0;
        }
        const live = Math.min(r.bytesTotal, r.bytesDone + extra);
        p.bytesDone += live - r.bytesDone;
        r.bytesDone = live;
      }),
  );
  return p;
}

/**
 * Yields progress (in-flight copies included) every `intervalMs` until the backup is no longer running. Byte
 * counts never go backwards between two yields.
 */
export async function* watchBackup(client: Client, id: string, intervalMs = 1000): AsyncGenerator<BackupProgress> {
  const high = new Map<string, number>();
  for (;;) {
    const p = await backupProgress(client, id, { inFlight: true });
    for (const r of p.replicaSets) {
      const best = Math.max(r.bytesDone, high.get(r.name) ?? 0);
      p.bytesDone += best - r.bytesDone;
      r.bytesDone = best;
      high.set(r.name, best);
    }
    yield p;
    if (p.status !== 'running') return;
    const { status } = await handleOf(client, id).describe();
    if (status.name !== 'RUNNING') return;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Sends the `cancel` signal: the backup closes its cursors and ends `cancelled`. */
export function cancelBackup(client: Client, id: string, reason?: string): Promise<void> {
  return notFoundAware(client, id, () => handleOf(client, id).signal(cancelSignal, reason ? { reason } : {}));
}

/** The `setThrottle` update: the new whole-backup rate, effective for running copies within seconds. */
export function setBackupThrottle(client: Client, id: string, bytesPerSec: number): Promise<{ bytesPerSec: number }> {
  return notFoundAware(client, id, () => handleOf(client, id).executeUpdate(setThrottleUpdate, { args: [{ bytesPerSec }] }));
}

/**
 * Waits for the backup to end and returns its summary: the workflow's result, or for a failed or cancelled backup
 * the summary it attached to its failure.
 */
export async function backupResult(client: Client, id: string): Promise<BackupSummary> {
  return notFoundAware(client, id, async () => {
    try {
      return await handleOf(client, id).result();
    } catch (e) {
      if (e instanceof WorkflowFailedError) {
        const details = (e.cause as { details?: unknown[] } | undefined)?.details;
        const summary = details?.[0] as BackupSummary | undefined;
        if (summary && typeof summary === 'object' && 'status' in summary) return summary;
      }
      throw e;
    }
  });
}
