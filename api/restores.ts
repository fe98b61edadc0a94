/**
 * cutpoint's programmatic API for restores, verification and seeding a new member: what the CLI verbs call.
 *
 * ```ts
 * const { id } = await startRestore(client, { backupId, repo: '/backups', to: readTargetMap('map.json') });
 * for await (const p of watchRestore(client, id)) console.log(p.phase, p.bytesDone, '/', p.bytesTotal);
 * const summary = await restoreResult(client, id); // members: host, pid, port, state
 * ```
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Client } from '@temporalio/client';
import { WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { CutpointError } from '../common/errors.ts';
import { validateBackupId } from '../common/manifest.ts';
import { RESTORE_OPTIONS, resolveNumber } from '../common/options.ts';
import { restoreSource } from '../common/restore-at.ts';
import {
  parseTargetMap,
  type RestoreInput,
  type RestoreProgress,
  type RestoreSummary,
  type RestoreTargetMap,
  type SeedInput,
  type VerifyInput,
  type VerifySummary,
} from '../common/restore-types.ts';
import { CutpointKind, CutpointStatus } from '../common/search-attributes.ts';
import { assertNoCredentials } from '../common/target.ts';
import { ORCHESTRATOR_TASK_QUEUE } from '../common/task-queues.ts';
import { restoreCancelSignal, restoreProgressQuery } from '../common/messages.ts';
import type { SeedSummary } from '../workflows/restore/seed-member.ts';
import { validateLocation } from '../repository/s3-location.ts';

const usage = (message: string) => new CutpointError('BAD_USAGE', message);

function stamp(now = new Date()): string {
  return now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** A fresh id for a restore, verify or seed workflow. */
export function newOperationId(kind: 'restore' | 'verify' | 'seed', now = new Date()): string {
  return `${kind}-${stamp(now)}-${randomBytes(2).toString('hex')}`;
}

/** Reads and checks `--to MAP.json` (BAD_USAGE naming the problem). */
export function readTargetMap(path: string): RestoreTargetMap {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw usage(`--to ${path}: ${(e as Error).message}`);
  }
  try {
    return parseTargetMap(raw);
  } catch (e) {
    throw usage(`--to ${path}: ${(e as Error).message}`);
  }
}

function checkCommon(opts: { backupId?: string; repo: string; id?: string }): void {
  if (!opts.repo) throw usage('a repository path is required (--repo)');
  validateLocation(opts.repo);
  for (const [what, v] of [
    ['backup id', opts.backupId],
    ['id', opts.id],
  ] as const) {
    if (v === undefined) continue;
    try {
      validateBackupId(v);
    } catch (e) {
      throw usage(`${what}: ${(e as Error).message}`);
    }
  }
}

/** Starts one of the restore-side workflows on the orchestrator queue, findable by its search attributes. */
async function startOperation(client: Client, workflowType: string, id: string, kind: 'restore' | 'verify', input: unknown, summary: string): Promise<void> {
  await client.workflow.start(workflowType, {
    taskQueue: ORCHESTRATOR_TASK_QUEUE,
    workflowId: id,
    args: [input],
    typedSearchAttributes: [
      { key: CutpointKind, value: kind },
      { key: CutpointStatus, value: 'running' },
    ],
    staticSummary: summary,
  });
}

export interface StartRestoreOptions extends RestoreInput {
  /** The restore id (also the workflow id); default `restore-<UTC time>-<random>`. */
  id?: string;
}

/** Starts a restore; the workflow checks the backup and the targets before it writes anything. */
export async function startRestore(client: Client, opts: StartRestoreOptions): Promise<{ id: string }> {
  checkCommon(opts);
  const source = restoreSource(opts);
  resolveNumber('agentTimeoutMs', RESTORE_OPTIONS.agentTimeoutMs, opts.agentTimeoutMs);
  resolveNumber('replayBatchOps', RESTORE_OPTIONS.replayBatchOps, opts.replayBatchOps);
  const { id: given, ...input } = opts;
  try {
    input.to = parseTargetMap(input.to);
  } catch (e) {
    throw usage((e as Error).message);
  }
  const id = given ?? newOperationId('restore');
  const what = 'at' in source ? `to ${input.at} (cluster time Timestamp(${source.at.t}, ${source.at.i}))` : `of backup ${input.backupId}`;
  await startOperation(client, 'clusterRestore', id, 'restore', input, `cutpoint restore ${what} from ${input.repo}`);
  return { id };
}

/** Starts the re-hash of every file of a backup. */
export async function startVerify(client: Client, opts: VerifyInput & { id?: string }): Promise<{ id: string }> {
  checkCommon(opts);
  const { id: given, ...input } = opts;
  const id = given ?? newOperationId('verify');
  await startOperation(client, 'verifyBackup', id, 'verify', input, `cutpoint verify of backup ${input.backupId} in ${input.repo}`);
  return { id };
}

/** Starts seeding a new member of a running replica set from a backup. */
export async function startSeed(client: Client, opts: SeedInput & { id?: string }): Promise<{ id: string }> {
  checkCommon(opts);
  resolveNumber('agentTimeoutMs', RESTORE_OPTIONS.agentTimeoutMs, opts.agentTimeoutMs);
  const { id: given, ...input } = opts;
  try {
    parseTargetMap({ [input.replicaSet]: [input.member] });
    if (input.join) assertNoCredentials(input.join.uri);
  } catch (e) {
    throw usage((e as Error).message);
  }
  const id = given ?? newOperationId('seed');
  await startOperation(client, 'seedMember', id, 'restore', input, `cutpoint seed of ${input.member.host} (${input.replicaSet}) from backup ${input.backupId}`);
  return { id };
}

async function known<T>(client: Client, id: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof WorkflowNotFoundError)) throw e;
    const status = await client.workflow
      .getHandle(id)
      .describe()
      .then((d) => d.status.name)
      .catch(() => undefined);
    if (status) throw new CutpointError('BAD_USAGE', `'${id}' has already ended (${status.toLowerCase()})`, undefined, { cause: e });
    throw new CutpointError('BAD_USAGE', `no restore or verify '${id}' is known to Temporal`, undefined, { cause: e });
  }
}

/** The live `progress` query of a restore or verify. */
export function restoreProgress(client: Client, id: string): Promise<RestoreProgress> {
  return known(client, id, () => client.workflow.getHandle(id).query(restoreProgressQuery));
}

/** Yields progress every `intervalMs` until the workflow is no longer running. */
export async function* watchRestore(client: Client, id: string, intervalMs = 1000): AsyncGenerator<RestoreProgress> {
  for (;;) {
    const p = await restoreProgress(client, id);
    yield p;
    if (p.status !== 'running') return;
    const { status } = await client.workflow.getHandle(id).describe();
    if (status.name !== 'RUNNING') return;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Sends the `cancel` signal: the restore stops and rolls every target back. */
export function cancelRestore(client: Client, id: string, reason?: string): Promise<void> {
  return known(client, id, () => client.workflow.getHandle(id).signal(restoreCancelSignal, reason ? { reason } : {}));
}

/** Waits for the workflow and returns its summary, also for a failed or cancelled one (attached to its failure). */
async function resultOf<T extends { status: string }>(client: Client, id: string): Promise<T> {
  return known(client, id, async () => {
    try {
      return (await client.workflow.getHandle(id).result()) as T;
    } catch (e) {
      if (e instanceof WorkflowFailedError) {
        const details = (e.cause as { details?: unknown[] } | undefined)?.details;
        const summary = details?.[0] as T | undefined;
        if (summary && typeof summary === 'object' && 'status' in summary) return summary;
      }
      throw e;
    }
  });
}

/** The restore's summary (members with their pids and ports), once it has ended. */
export function restoreResult(client: Client, id: string): Promise<RestoreSummary> {
  return resultOf<RestoreSummary>(client, id);
}

/** The verify's summary (every bad file), once it has ended. */
export function verifyResult(client: Client, id: string): Promise<VerifySummary> {
  return resultOf<VerifySummary>(client, id);
}

/** The seed's summary; a failed seed rejects with its error. */
export function seedResult(client: Client, id: string): Promise<SeedSummary> {
  return known(client, id, () => client.workflow.getHandle(id).result() as Promise<SeedSummary>);
}
